"""The interface every detector offers (BNN, temporal dependency, transform consistency): scores + a threshold."""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch
from torch import nn


class Detector(nn.Module, ABC):
    """Scores a batch of waveforms [B, T] with lengths [B]; higher = more likely adversarial.

    ``threshold`` is calibrated on validation data (flag when score >= threshold) and saved with the detector.
    ``stochastic`` detectors (e.g. Monte Carlo sampled BNNs) give different scores for the same input; an adaptive
    attacker then averages several queries.
    """

    stochastic: bool = False

    def __init__(self, threshold: float = 0.5) -> None:
        super().__init__()
        self.register_buffer("threshold", torch.tensor(float(threshold)))

    @abstractmethod
    def score(self, waveforms: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Adversarial scores [B] (float)."""

    @torch.no_grad()
    def decide(self, waveforms: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Flags [B] (bool): score >= threshold."""
        return self.score(waveforms, lengths) >= self.threshold
