"""DS: band-limiting by down-sampling and up-sampling again (16 kHz -> 8 kHz -> 16 kHz, torchaudio resampling)."""

from __future__ import annotations

import torch
import torchaudio.functional as audio_functional
from torch import nn


class DownSampling(nn.Module):
    """Removes content above ``intermediate_rate / 2`` (default 4 kHz) with torchaudio's band-limited sinc resampler."""

    def __init__(self, intermediate_rate: int = 8_000, sample_rate: int = 16_000) -> None:
        super().__init__()
        if not 0 < intermediate_rate < sample_rate:
            raise ValueError(f"intermediate_rate must be in (0, {sample_rate}), got {intermediate_rate}")
        self.intermediate_rate, self.sample_rate = intermediate_rate, sample_rate

    def forward(self, waveforms: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        low = audio_functional.resample(waveforms, self.sample_rate, self.intermediate_rate)
        restored = audio_functional.resample(low, self.intermediate_rate, self.sample_rate)[:, : waveforms.shape[1]]
        if restored.shape[1] < waveforms.shape[1]:
            restored = torch.nn.functional.pad(restored, (0, waveforms.shape[1] - restored.shape[1]))
        valid = torch.arange(waveforms.shape[1], device=waveforms.device)[None, :] < lengths[:, None]
        return restored * valid, lengths
