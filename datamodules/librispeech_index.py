"""Scanning a corpus in LibriSpeech layout into a validated list of utterances.

Layout: ``<root>/LibriSpeech/<split>/<speaker>/<chapter>/<speaker>-<chapter>-<utt>.flac`` with one
``<speaker>-<chapter>.trans.txt`` per chapter (lines ``<utterance id> <TRANSCRIPT>``). ``root`` may also
be the ``LibriSpeech`` folder itself. Any split names work (train-clean-100, dev-clean, test-clean, ...).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from core.audio_io import AudioHeader, read_header
from core.errors import (
    DataError,
    MissingAudioError,
    MissingRootError,
    MissingTranscriptError,
    TranscriptFormatError,
)
from core.text import normalize_transcript

log = logging.getLogger(__name__)

BadInputPolicy = Literal["error", "skip"]
AUDIO_EXTENSIONS = (".flac", ".wav")


@dataclass(frozen=True)
class Utterance(AudioHeader):
    """One recording and its transcript; ``num_frames`` / ``sample_rate`` / ``channels`` (and ``duration``) come from
    the header."""

    utterance_id: str
    audio_path: Path
    transcript: str
    speaker_id: str
    chapter_id: str
    split: str


@dataclass
class SkipReport:
    """Problems that were skipped (``on_bad_input="skip"``), one ``DataError`` each."""

    skipped: list[DataError] = field(default_factory=list)

    def add(self, error: DataError) -> None:
        log.warning("skipping bad input: %s", error)
        self.skipped.append(error)

    def __len__(self) -> int:
        return len(self.skipped)


def resolve_corpus_dir(root: str | Path) -> Path:
    """The folder that holds the split folders: ``root/LibriSpeech`` if present, else ``root``."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise MissingRootError(root, "corpus root does not exist (expected <root>/LibriSpeech/<split>/...)")
    nested = root / "LibriSpeech"
    return nested if nested.is_dir() else root


def available_splits(root: str | Path) -> list[str]:
    """Split folder names found under the corpus root."""
    corpus = resolve_corpus_dir(root)
    return sorted(p.name for p in corpus.iterdir() if p.is_dir() and not p.name.startswith("."))


def _read_transcript_file(path: Path, fail=None) -> tuple[dict[str, tuple[str, int]], set[str]]:
    """Map utterance id -> (normalized transcript, line number), and the ids of lines that could not be decoded.
    A line that is not valid UTF-8 raises ``TranscriptFormatError`` naming it, or with ``fail`` (skip mode) is
    reported there and left out alone (the rest of the file still counts)."""
    entries: dict[str, tuple[str, int]] = {}
    undecodable: set[str] = set()
    for number, data in enumerate(path.read_bytes().split(b"\n"), start=1):
        try:
            raw = data.decode("utf-8")
        except UnicodeDecodeError as error:
            problem = TranscriptFormatError(f"{path}:{number}", f"not valid UTF-8 ({error.reason} at byte {error.start} "
                                                               "of the line)")
            if fail is None:
                raise problem from error
            fail(problem)
            undecodable.add(data.decode("utf-8", errors="replace").split(maxsplit=1)[0] if data.split() else "")
            continue
        if not raw.strip():
            continue
        parts = raw.strip().split(maxsplit=1)
        if len(parts) < 2 or not normalize_transcript(parts[1]):
            raise TranscriptFormatError(f"{path}:{number}", f"line has an utterance id but no transcript: {raw!r}")
        utterance_id, words = parts
        if utterance_id in entries:
            raise TranscriptFormatError(f"{path}:{number}", f"utterance id {utterance_id} appears twice")
        entries[utterance_id] = (normalize_transcript(words), number)
    return entries, undecodable


def _scan_chapter(chapter_dir: Path, split: str, report: SkipReport | None) -> list[Utterance]:
    speaker_id, chapter_id = chapter_dir.parent.name, chapter_dir.name
    audio_files = sorted(p for p in chapter_dir.iterdir() if p.suffix.lower() in AUDIO_EXTENSIONS)
    transcript_path = chapter_dir / f"{speaker_id}-{chapter_id}.trans.txt"

    def fail(error: DataError) -> None:
        if report is None:
            raise error
        report.add(error)

    if not transcript_path.is_file():
        if audio_files:
            fail(MissingTranscriptError(chapter_dir, f"{len(audio_files)} audio files but no {transcript_path.name}"))
        return []
    try:
        transcripts, undecodable = _read_transcript_file(transcript_path, None if report is None else fail)
    except DataError as error:
        fail(error)
        return []
    utterances: list[Utterance] = []
    audio_ids = set()
    for audio_path in audio_files:
        utterance_id = audio_path.stem
        audio_ids.add(utterance_id)
        if utterance_id in undecodable:
            continue  # (already reported: its transcript line)
        if utterance_id not in transcripts:
            fail(MissingTranscriptError(audio_path, f"no line for {utterance_id} in {transcript_path.name}"))
            continue
        try:
            header: AudioHeader = read_header(audio_path)
        except DataError as error:
            fail(error)
            continue
        utterances.append(
            Utterance(
                utterance_id=utterance_id,
                audio_path=audio_path,
                transcript=transcripts[utterance_id][0],
                speaker_id=speaker_id,
                chapter_id=chapter_id,
                split=split,
                num_frames=header.num_frames,
                sample_rate=header.sample_rate,
                channels=header.channels,
            )
        )
    for utterance_id, (_, line) in transcripts.items():
        if utterance_id not in audio_ids:
            fail(MissingAudioError(f"{transcript_path}:{line}", f"transcript for {utterance_id} but no audio file"))
    return utterances


def scan_split(root: str | Path, split: str, on_bad_input: BadInputPolicy = "error") -> tuple[list[Utterance], SkipReport]:
    """Index one split: pairs every audio file with its transcript line and reads its header.

    Args:
        root: corpus root (holding ``LibriSpeech/``) or the ``LibriSpeech`` folder.
        split: split folder name, e.g. ``"dev-clean"``.
        on_bad_input: ``"error"`` raises the first ``DataError``; ``"skip"`` logs each and leaves it out.

    Returns:
        Utterances sorted by id, and the report of what was skipped.
    """
    if on_bad_input not in ("error", "skip"):
        raise ValueError(f"on_bad_input must be 'error' or 'skip', got {on_bad_input!r}")
    corpus = resolve_corpus_dir(root)
    split_dir = corpus / split
    if not split_dir.is_dir():
        raise MissingRootError(split_dir, f"split {split!r} not found; available: {available_splits(root) or 'none'}")
    report = SkipReport()
    utterances: list[Utterance] = []
    for speaker_dir in sorted(p for p in split_dir.iterdir() if p.is_dir()):
        for chapter_dir in sorted(p for p in speaker_dir.iterdir() if p.is_dir()):
            utterances.extend(_scan_chapter(chapter_dir, split, report if on_bad_input == "skip" else None))
    if not utterances and report.skipped:
        raise DataError(split_dir, f"all {len(report)} inputs found were skipped as bad (first: {report.skipped[0]})")
    if not utterances:
        raise MissingRootError(split_dir, "no utterances found (expected <speaker>/<chapter>/<id>.flac + .trans.txt)")
    if report.skipped:
        log.warning("split %s: skipped %d bad inputs, kept %d utterances", split, len(report), len(utterances))
    return sorted(utterances, key=lambda u: u.utterance_id), report
