"""Dimension reduction for query-efficient search: perturbations decoded from a low-rate latent vector.

``delta = envelope(clean) * upsample(z)``: ``z`` [P, d] lives at ``sample_rate / factor`` (d ~ T / factor, band-limited
to sample_rate / (2 factor)); linear interpolation brings it to the waveform's T samples; an optional amplitude
envelope of the clean speech (20 ms moving average of |x|, peak 1, floor ``envelope_floor``) hides the
perturbation under the speech, where MFCC similarity and listeners notice it least. The decoder is linear in z.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


class LowRateBasis:
    """Args: factor: down-sampling factor of the latent (1 = full rate); envelope: shape by the clean envelope;
    envelope_window_s: moving-average window; envelope_floor: envelope minimum (perturbation allowed in pauses)."""

    def __init__(self, factor: int = 4, envelope: bool = True, envelope_window_s: float = 0.02,
                 envelope_floor: float = 0.05, sample_rate: int = 16_000) -> None:
        if factor < 1:
            raise ValueError(f"factor must be >= 1, got {factor}")
        if not 0 <= envelope_floor <= 1:
            raise ValueError(f"envelope_floor must be in [0, 1], got {envelope_floor}")
        self.factor, self.envelope, self.floor = factor, envelope, envelope_floor
        self.window = max(1, int(envelope_window_s * sample_rate))

    def dimension(self, length: int) -> int:
        """Latent size d for a waveform of ``length`` samples."""
        return max(2, math.ceil(length / self.factor))

    def shape(self, clean: torch.Tensor) -> torch.Tensor:
        """Envelope weights [T] in [floor, 1] (all ones without envelope shaping)."""
        if not self.envelope:
            return torch.ones_like(clean)
        smooth = F.avg_pool1d(clean.abs()[None, None], self.window, stride=1, padding=self.window // 2,
                              count_include_pad=False)[0, 0, : clean.shape[0]]
        return (smooth / smooth.max().clamp(min=1e-8)).clamp(min=self.floor)

    def decode(self, z: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """z [P, d], envelope weights [T] -> perturbations [P, T]."""
        length = weights.shape[0]
        upsampled = z[:, None, :] if z.shape[1] == length else F.interpolate(
            z[:, None, :], size=length, mode="linear", align_corners=True)
        return upsampled[:, 0, :] * weights[None]

    def describe(self) -> dict:
        return {"factor": self.factor, "envelope": self.envelope, "envelope_floor": self.floor}
