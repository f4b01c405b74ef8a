"""The project's one transcript convention: upper-case words, apostrophes kept, single spaces.

Every transcript read from disk and every hypothesis a backend returns goes through
``normalize_transcript`` so that WER is computed on like-for-like strings.
"""

from __future__ import annotations

import re
import unicodedata

_NOT_WORD_CHARACTER = re.compile(r"[^A-Z0-9' ]+")
_SPACES = re.compile(r"\s+")


def normalize_transcript(text: str) -> str:
    """Upper-case, strip accents and punctuation (apostrophes stay), collapse whitespace.

    >>> normalize_transcript("  Open the door, please!  ")
    'OPEN THE DOOR PLEASE'
    """
    decomposed = unicodedata.normalize("NFKD", text)
    ascii_text = "".join(ch for ch in decomposed if not unicodedata.combining(ch)).upper()
    ascii_text = ascii_text.replace("\u2019", "'").replace("-", " ")
    cleaned = _NOT_WORD_CHARACTER.sub(" ", ascii_text)
    words = [word.strip("'") for word in _SPACES.split(cleaned)]
    return " ".join(word for word in words if word)
