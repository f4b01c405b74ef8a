"""On-disk cache of adversarial examples: one folder per (system, attack, goal, budget, seed) configuration.

Layout::

    <root>/<label>-<hash>/config.json             what produced the folder (its hash names the folder)
    <root>/<label>-<hash>/audio/<utterance>.wav   float32 WAV (exact samples: 16-bit PCM would move them)
    <root>/<label>-<hash>/manifest-rank<r>.jsonl  one JSON line per finished example, written after its audio

An example is finished when its manifest line exists; audio is written atomically (temporary file + rename) and the
line appended and fsynced afterwards, so a killed run loses at most the example in progress and never duplicates one.
Each DDP rank appends to its own manifest; readers take the union.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import soundfile


def config_hash(config: dict) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:12]


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

    def manifest_path(self, rank: int) -> Path:
        return self.directory / f"manifest-rank{rank}.jsonl"

    def records(self) -> list[dict]:
        """All finished examples (every rank), sorted by utterance id; a torn last line (killed mid-write) is ignored."""
        records: dict[str, dict] = {}
        for path in sorted(self.directory.glob("manifest-rank*.jsonl")):
            for line in path.read_text().splitlines():
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    continue
                records.setdefault(record["utterance_id"], record)
        return [records[key] for key in sorted(records)]

    def done_ids(self) -> set[str]:
        return {record["utterance_id"] for record in self.records()}

    def audio_path(self, utterance_id: str) -> Path:
        return self.audio_dir / f"{utterance_id}.wav"

    def write(self, utterance_id: str, audio: np.ndarray, sample_rate: int, record: dict, rank: int = 0) -> dict:
        """Store one finished example: audio first (atomic), then its manifest line (fsynced)."""
        path = self.audio_path(utterance_id)
        temporary = path.with_name(f"{path.stem}.{os.getpid()}.part.wav")
        soundfile.write(str(temporary), np.asarray(audio, np.float32), sample_rate, subtype="FLOAT")
        os.replace(temporary, path)
        record = {**record, "utterance_id": utterance_id, "audio": str(path.relative_to(self.directory))}
        with self.manifest_path(rank).open("a") as manifest:
            manifest.write(json.dumps(record, sort_keys=True, default=float) + "\n")
            manifest.flush()
            os.fsync(manifest.fileno())
        return record
