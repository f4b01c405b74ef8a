"""Wall-clock timing for the cost benchmarks."""

from __future__ import annotations

import time
from typing import Callable


def timed(function: Callable[[], object], repeats: int = 3) -> float:
    """The fastest of ``repeats`` calls of ``function`` (seconds), after one warm-up call."""
    function()  # warm-up
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return min(times)
