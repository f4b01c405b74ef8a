"""Acoustic front-end shared by the small models: log-mel features and SpecAugment."""

from __future__ import annotations

import torch
import torchaudio
from torch import nn


class LogMelFrontend(nn.Module):
    """Waveforms [B, T] at 16 kHz -> log-mel features [B, F, n_mels] with per-utterance mean/variance normalization.

    Frames: 25 ms windows every 10 ms, uncentred (F = (T - 400) // 160 + 1), so a frame depends only on its own
    samples and an utterance's valid frames are the same alone or zero-padded in a batch. Padding frames are set to
    zero after normalization.
    """

    hop_length = 160

    def __init__(self, n_mels: int = 80, sample_rate: int = 16_000) -> None:
        super().__init__()
        self.n_mels = n_mels
        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=sample_rate, n_fft=400, win_length=400, hop_length=self.hop_length, n_mels=n_mels, center=False
        )

    def frame_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        return (torch.div(lengths - 400, self.hop_length, rounding_mode="floor") + 1).clamp(min=1)

    def forward(self, waveforms: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.autocast(device_type=waveforms.device.type, enabled=False):
            features = (self.mel(waveforms.float()) + 1e-6).log().transpose(1, 2)  # [B, F, n_mels]
        frames = self.frame_lengths(lengths).clamp(max=features.shape[1])
        valid = (torch.arange(features.shape[1], device=features.device)[None, :] < frames[:, None]).unsqueeze(-1)
        count = frames.clamp(min=1)[:, None, None].to(features.dtype)
        mean = (features * valid).sum(1, keepdim=True) / count
        variance = (((features - mean) * valid) ** 2).sum(1, keepdim=True) / count
        normalized = (features - mean) / (variance + 1e-5).sqrt()
        return normalized * valid, frames


class SpecAugment(nn.Module):
    """Frequency and time masking (torchaudio) applied only in training mode; features [B, F, n_mels]."""

    def __init__(self, freq_masks: int = 2, freq_width: int = 15, time_masks: int = 2, time_width: int = 25) -> None:
        super().__init__()
        self.masks = nn.ModuleList(
            [torchaudio.transforms.FrequencyMasking(freq_width) for _ in range(freq_masks)]
            + [torchaudio.transforms.TimeMasking(time_width) for _ in range(time_masks)]
        )

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return features
        x = features.transpose(1, 2)  # torchaudio masks expect [..., freq, time]
        for mask in self.masks:
            x = mask(x)
        return x.transpose(1, 2)
