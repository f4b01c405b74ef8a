"""Stable hashes: of a configuration (names cache folders) and of a seed with a key (seeded per-item draws that do
not depend on iteration order)."""

from __future__ import annotations

import hashlib
import json


def config_hash(config: dict, length: int = 12) -> str:
    """First ``length`` hex digits of SHA-256 over the configuration as sorted JSON (unknown types as ``str``)."""
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:length]


def seeded_int(seed: int, key: str, num_bytes: int = 4) -> int:
    """An integer in [0, 256 ** num_bytes) fixed by (seed, key): SHA-256 of ``"<seed>:<key>"``, little-endian."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{key}".encode()).digest()[:num_bytes], "little")


def seeded_fraction(seed: int, key: str) -> float:
    """A number in [0, 1) fixed by (seed, key), uniform over keys (64 bits of ``seeded_int``)."""
    return seeded_int(seed, key, num_bytes=8) / 2**64
