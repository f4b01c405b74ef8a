"""Backend activations computed once per example and memory-mapped afterwards (the detector head trains for many
epochs on a frozen backbone: recomputing the backbone every epoch would dominate the cost).

One ``.npy`` file per example (float16 on disk, float32 in memory), written atomically; ``np.load(mmap_mode="r")``
reads only what a batch needs. The folder must be keyed by everything the activations depend on (backend, layer,
data): ``ActivationCache.for_setting``.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from core.hashing import config_hash


class ActivationCache:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.hits = self.misses = 0

    @classmethod
    def for_setting(cls, base: str | Path, setting: dict) -> "ActivationCache":
        key = config_hash(setting)
        cache = cls(Path(base) / key)
        temporary = cache.root / f"setting.{os.getpid()}.tmp"  # every DDP rank writes it: one name each
        temporary.write_text(json.dumps(setting, indent=2, sort_keys=True, default=str))
        os.replace(temporary, cache.root / "setting.json")
        return cache

    def path(self, example_id: str) -> Path:
        digest = hashlib.sha1(example_id.encode()).hexdigest()
        return self.root / digest[:2] / f"{digest}.npy"

    def _load(self, example_id: str) -> np.ndarray | None:
        path = self.path(example_id)
        return np.load(path, mmap_mode="r", allow_pickle=False) if path.is_file() else None

    def _store(self, example_id: str, activations: torch.Tensor) -> None:
        path = self.path(example_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(path.stem + f".{os.getpid()}.tmp.npy")
        np.save(temporary, activations.detach().cpu().to(torch.float16).numpy())
        os.replace(temporary, path)

    def get_batch(self, example_ids: list[str],
                  compute: Callable[[list[int]], tuple[torch.Tensor, torch.Tensor]],
                  device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
        """Activations [B, T', D] (zero-padded) and frame lengths [B]; ``compute(indices)`` returns the missing
        items' (activations [b, T', D], lengths [b]) from the backend, which are then stored."""
        loaded: list[np.ndarray | None] = [self._load(i) for i in example_ids]
        missing = [k for k, a in enumerate(loaded) if a is None]
        self.hits += len(example_ids) - len(missing)
        self.misses += len(missing)
        if missing:
            activations, lengths = compute(missing)
            for row, k in enumerate(missing):
                item = activations[row, : int(lengths[row])]
                self._store(example_ids[k], item)
                loaded[k] = item.detach().cpu().to(torch.float16).numpy()  # same rounding as a later cache hit
        lengths = torch.tensor([a.shape[0] for a in loaded], dtype=torch.long)
        dim = loaded[0].shape[1]
        out = torch.zeros(len(loaded), int(lengths.max()), dim)
        for row, a in enumerate(loaded):
            out[row, : a.shape[0]] = torch.from_numpy(np.asarray(a, dtype=np.float32))
        return out.to(device), lengths.to(device)
