"""AG: additive white Gaussian noise at a fixed SNR, the benign-noise control (paper: 10 dB). One query."""

from __future__ import annotations

import torch

from attacks.base import Attack, SearchState
from attacks.constraints import Constraints
from attacks.goals import Goal
from attacks.oracle import QueryOracle
from attacks.perturbation import gaussian_noise_at_snr


class GaussianNoise(Attack):
    """Not an attack: it ignores the size budget and the MFCC floor (it is the control those are compared with);
    its measurements are reported all the same."""

    name = "AG"
    bounded = False

    def __init__(self, snr_db: float = 10.0) -> None:
        self.snr_db = snr_db

    def _search(self, oracle: QueryOracle, clean: torch.Tensor, goal: Goal, constraints: Constraints,
                generator: torch.Generator, state: SearchState) -> None:
        noisy = gaussian_noise_at_snr(clean[None], torch.tensor([clean.numel()]), self.snr_db, generator)
        noisy = noisy.clamp(-1, 1)
        state.observe(noisy - clean[None], goal.evaluate(oracle, noisy))
