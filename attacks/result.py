"""What one attack on one utterance produced, with every measurement the benchmarks report."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np


@dataclass
class AttackResult:
    """adversarial: float32 [T] waveform (the best feasible candidate; the clean audio when nothing was found).

    success: the goal was met (targeted: exact target transcript; untargeted: WER >= threshold; adaptive: and the
    detector did not flag it). history: (queries used, best objective so far, success so far) after each step.
    """

    attack: str
    adversarial: np.ndarray
    success: bool
    queries: int
    transcript_clean: str
    transcript_adversarial: str
    objective: float
    snr_db: float
    linf: float
    mfcc_similarity: float
    detector_score: float | None = None
    history: list[tuple[int, float, bool]] = field(default_factory=list)
    wall_time_s: float = 0.0
    system_time_s: float = 0.0  # of wall_time_s, the target system's own time answering the queries (server side)

    def summary(self) -> dict:
        """JSON-ready measurements (everything but the waveform)."""
        out = asdict(self)
        out.pop("adversarial")
        out["history"] = [list(h) for h in self.history]
        return out
