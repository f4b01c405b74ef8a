"""The project's one transcript convention: upper-case words, apostrophes kept, single spaces.

Every transcript read from disk and every hypothesis a backend returns goes through
``normalize_transcript`` so that WER is computed on like-for-like strings.
"""

from __future__ import annotations

import re
import unicodedata

_NOT_WORD_CHARACTER = re.compile(r"[^A-Z0-9' ]+")
_SPACES = re.compile(r"\s+")


_CLOCK_TIME = re.compile(r"\b(\d{1,2}):(\d{2})\b")
_NUMBER = re.compile(r"\d+")


def _spell_time(match: re.Match[str]) -> str:
    hour, minute = int(match.group(1)), int(match.group(2))
    if minute == 0:
        return f" {number_to_words(hour)} O'CLOCK "
    if minute < 10:
        return f" {number_to_words(hour)} OH {number_to_words(minute)} "
    return f" {number_to_words(hour)} {number_to_words(minute)} "


def spell_out_numbers(text: str) -> str:
    """Write digits as words, as the corpora's transcripts do ("7:30" -> "SEVEN THIRTY", "40%" -> "FORTY PERCENT").

    Numbers above 999,999 are read digit by digit.
    """
    text = _CLOCK_TIME.sub(_spell_time, text).replace("%", " PERCENT ").replace("\u00b0", " DEGREES ")
    text = re.sub(r"(?<=\d),(?=\d{3}\b)", "", text)

    def spell(match: re.Match[str]) -> str:
        digits = match.group(0)
        if len(digits) > 6 or (len(digits) > 1 and digits.startswith("0")):
            return " " + " ".join(number_to_words(int(d)) for d in digits) + " "
        return f" {number_to_words(int(digits))} "

    return _NUMBER.sub(spell, text)


def normalize_transcript(text: str) -> str:
    """Upper-case, digits as words, strip accents and punctuation (apostrophes stay), collapse whitespace.

    >>> normalize_transcript("  Open the door, please!  ")
    'OPEN THE DOOR PLEASE'
    """
    decomposed = unicodedata.normalize("NFKD", spell_out_numbers(text))
    ascii_text = "".join(ch for ch in decomposed if not unicodedata.combining(ch)).upper()
    ascii_text = ascii_text.replace("\u2019", "'").replace("-", " ")
    cleaned = _NOT_WORD_CHARACTER.sub(" ", ascii_text)
    words = [word.strip("'") for word in _SPACES.split(cleaned)]
    return " ".join(word for word in words if word)


_ONES = ["ZERO", "ONE", "TWO", "THREE", "FOUR", "FIVE", "SIX", "SEVEN", "EIGHT", "NINE", "TEN", "ELEVEN",
         "TWELVE", "THIRTEEN", "FOURTEEN", "FIFTEEN", "SIXTEEN", "SEVENTEEN", "EIGHTEEN", "NINETEEN"]
_TENS = ["", "", "TWENTY", "THIRTY", "FORTY", "FIFTY", "SIXTY", "SEVENTY", "EIGHTY", "NINETY"]


def number_to_words(number: int) -> str:
    """Spell 0 <= number < 1,000,000 in upper-case words ("ONE HUNDRED TWENTY FIVE")."""
    if not 0 <= number < 1_000_000:
        raise ValueError(f"number_to_words supports 0..999999, got {number}")
    if number >= 1000:
        thousands, rest = divmod(number, 1000)
        return number_to_words(thousands) + " THOUSAND" + ("" if rest == 0 else " " + number_to_words(rest))
    if number < 20:
        return _ONES[number]
    if number < 100:
        tens, ones = divmod(number, 10)
        return _TENS[tens] + ("" if ones == 0 else " " + _ONES[ones])
    hundreds, rest = divmod(number, 100)
    return _ONES[hundreds] + " HUNDRED" + ("" if rest == 0 else " " + number_to_words(rest))
