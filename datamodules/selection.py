"""Choosing which utterances to use: duration limits and seeded random subsets."""

from __future__ import annotations

import random
from typing import Sequence

from datamodules.librispeech_index import Utterance


def filter_by_duration(
    utterances: Sequence[Utterance], min_duration: float | None = None, max_duration: float | None = None
) -> list[Utterance]:
    """Keep utterances with ``min_duration <= duration <= max_duration`` (seconds; ``None`` = no limit)."""
    if min_duration is not None and max_duration is not None and min_duration > max_duration:
        raise ValueError(f"min_duration {min_duration} s exceeds max_duration {max_duration} s")
    return [
        u for u in utterances
        if (min_duration is None or u.duration >= min_duration) and (max_duration is None or u.duration <= max_duration)
    ]


def seeded_subset(utterances: Sequence[Utterance], size: int | None, seed: int) -> list[Utterance]:
    """``size`` utterances drawn at random with ``seed`` ("2,000 random utterances of dev-clean").

    The draw depends only on the set of utterance ids and the seed, not on file-system order.
    ``None`` or a size >= the number available keeps everything. Returned sorted by id.
    """
    ordered = sorted(utterances, key=lambda u: u.utterance_id)
    if size is None or size >= len(ordered):
        return ordered
    if size < 1:
        raise ValueError(f"subset size must be >= 1, got {size}")
    chosen = random.Random(seed).sample(ordered, size)
    return sorted(chosen, key=lambda u: u.utterance_id)
