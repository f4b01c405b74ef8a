"""On-disk cache of adversarial examples: one folder per (system, attack, goal, budget, seed) configuration.

Layout::

    <root>/<label>-<hash>/config.json             what produced the folder (its hash names the folder)
    <root>/<label>-<hash>/audio/<utterance>.wav   float32 WAV (exact samples: 16-bit PCM would move them)
    <root>/<label>-<hash>/manifest-rank<r>.jsonl  one JSON line per finished example, written after its audio

An example is finished when its manifest line exists. Its audio is written first, atomically (temporary file, fsync,
rename), then its line is appended and fsynced, so a killed run loses at most the example in progress and never
duplicates one. A run killed inside the append leaves a torn last line (no newline); the next append cuts it off
first, and readers skip it. Any other line that does not decode, and any utterance recorded twice, is an error that
names the file and line: nothing is dropped silently. Each DDP rank appends to its own manifest; readers take the
union.
"""

from __future__ import annotations

import glob
import io
import json
import logging
import os
from pathlib import Path

import numpy as np
import soundfile

from core.hashing import config_hash


log = logging.getLogger(__name__)


class ManifestError(RuntimeError):
    """A manifest line that cannot be read, or an example recorded twice (the message names the file and line)."""


class AdversarialCache:
    def __init__(self, root: str | Path, config: dict, label: str = "attack") -> None:
        self.config = config
        self.directory = Path(root) / f"{label}-{config_hash(config)}"
        self.audio_dir = self.directory / "audio"
        self.audio_dir.mkdir(parents=True, exist_ok=True)
        config_file = self.directory / "config.json"
        if not config_file.exists():
            temporary = config_file.with_name(f"config.{os.getpid()}.tmp")  # ranks race here: one name each
            temporary.write_text(json.dumps(config, indent=2, sort_keys=True, default=str))
            os.replace(temporary, config_file)

    @classmethod
    def existing(cls, directory: str | Path) -> "AdversarialCache":
        """A reader of a campaign folder that already exists (nothing is created or written)."""
        directory = Path(directory)
        config_file = directory / "config.json"
        if not config_file.is_file():
            raise FileNotFoundError(f"{directory}: not a campaign folder (no config.json)")
        cache = cls.__new__(cls)
        cache.config = json.loads(config_file.read_text())
        cache.directory, cache.audio_dir = directory, directory / "audio"
        return cache

    def manifest_path(self, rank: int) -> Path:
        return self.directory / f"manifest-rank{rank}.jsonl"

    def records(self) -> list[dict]:
        """All finished examples (every rank), sorted by utterance id. A torn last line (a run killed while appending
        it) is skipped with a warning; any other undecodable line, or an utterance recorded twice, raises
        ``ManifestError``."""
        records: dict[str, tuple[dict, str]] = {}
        for path in sorted(self.directory.glob("manifest-rank*.jsonl")):
            data = path.read_bytes()
            lines = data.split(b"\n")
            for number, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                torn = number == len(lines)  # after the last newline: an append that did not finish
                try:
                    record = json.loads(line)
                    if not isinstance(record, dict) or not isinstance(record.get("utterance_id"), str):
                        raise ValueError("not a record with an utterance_id")
                except ValueError as error:  # (json.JSONDecodeError and UnicodeDecodeError are ValueErrors)
                    if torn:
                        log.warning("%s:%d: skipping a torn last line (a run was killed while writing it; that "
                                    "example will be attacked again)", path, number)
                        continue
                    raise ManifestError(f"{path}:{number}: cannot decode this manifest line ({error}); the folder is "
                                        "damaged: move the line out (its example is then attacked again) or delete "
                                        "the folder") from None
                where = f"{path.name}:{number}"
                if record["utterance_id"] in records:
                    raise ManifestError(f"{self.directory}: {record['utterance_id']} is recorded twice "
                                        f"({records[record['utterance_id']][1]} and {where}): were two runs of the "
                                        "same rank writing here at once?")
                records[record["utterance_id"]] = (record, where)
        return [records[key][0] for key in sorted(records)]

    def done_ids(self) -> set[str]:
        return {record["utterance_id"] for record in self.records()}

    def audio_path(self, utterance_id: str) -> Path:
        return self.audio_dir / f"{utterance_id}.wav"

    def write(self, utterance_id: str, audio: np.ndarray, sample_rate: int, record: dict, rank: int = 0) -> dict:
        """Store one finished example: audio first (atomic), then its manifest line (fsynced)."""
        path = self.audio_path(utterance_id)
        for stale in self.audio_dir.glob(f"{glob.escape(utterance_id)}.*.part.wav"):  # left by a killed run
            stale.unlink(missing_ok=True)
        temporary = path.with_name(f"{path.stem}.{os.getpid()}.part.wav")
        with temporary.open("wb") as handle:
            handle.write(wav_bytes(audio, sample_rate))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
        record = {**record, "utterance_id": utterance_id, "audio": str(path.relative_to(self.directory))}
        line = (json.dumps(record, sort_keys=True, default=float) + "\n").encode()
        manifest = self.manifest_path(rank)
        with manifest.open("ab") as handle:
            _end_on_a_fresh_line(handle, manifest)
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())
        return record


def wav_bytes(audio: np.ndarray, sample_rate: int) -> bytes:
    """A float32 WAV file of ``audio`` [T], the same bytes for the same samples: libsndfile stamps the write time
    into the PEAK chunk of float files, which is zeroed here (so a rerun's files can be compared byte for byte)."""
    encoded = io.BytesIO()
    soundfile.write(encoded, np.asarray(audio, np.float32), sample_rate, subtype="FLOAT", format="WAV")
    data = bytearray(encoded.getvalue())
    peak = data.find(b"PEAK", 12, 128)  # chunk id, size, version, then the 4-byte timestamp
    if peak >= 0:
        data[peak + 12:peak + 16] = bytes(4)
    return bytes(data)


def _end_on_a_fresh_line(handle, path: Path) -> None:
    """Before an append: a manifest that does not end with a newline was cut inside a write. A complete record
    without its newline gets one; a torn fragment is cut off (its example is not finished, it runs again)."""
    size = handle.seek(0, os.SEEK_END)
    if size == 0:
        return
    with path.open("rb") as reader:
        reader.seek(size - 1)
        if reader.read(1) == b"\n":
            return
    data = path.read_bytes()  # (only after a kill: the torn line's start is wanted)
    start = data.rfind(b"\n") + 1
    try:
        complete = isinstance(json.loads(data[start:]).get("utterance_id"), str)
    except (ValueError, AttributeError):
        complete = False
    if complete:
        handle.write(b"\n")
    else:
        log.warning("%s: cutting off a torn last line (%d bytes) before appending", path, len(data) - start)
        handle.truncate(start)
        handle.seek(start)
