"""Errors for bad corpus input. Each names the file (or folder) and the problem in its message."""

from __future__ import annotations

from pathlib import Path


class DataError(ValueError):
    """A problem with one file or folder of a corpus.

    Attributes:
        path: the offending file or folder (with ``:LINE`` for a transcript line).
        problem: what is wrong, in words.
    """

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class MissingRootError(DataError, FileNotFoundError):
    """The corpus root or a split folder does not exist."""


class CorruptAudioError(DataError):
    """An audio file cannot be decoded (unknown format, damaged or truncated)."""


class EmptyAudioError(DataError):
    """An audio file has zero bytes or zero samples."""


class NonFiniteAudioError(DataError):
    """An audio file holds NaN or infinite samples."""


class AudioFormatError(DataError):
    """An audio file has a sample rate or channel count the strict format policy refuses."""


class MissingTranscriptError(DataError):
    """An audio file has no line in its chapter's transcript (or the chapter has no transcript file)."""


class MissingAudioError(DataError):
    """A transcript line names an utterance that has no audio file."""


class TranscriptFormatError(DataError):
    """A transcript file cannot be decoded as UTF-8 or holds a malformed line."""
