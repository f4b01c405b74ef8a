"""Convolutional front-end subsampling shared by the small models trained here."""

from __future__ import annotations

import torch
from torch import nn


class ConvSubsampling(nn.Module):
    """Two stride-2 3x3 convolutions: features [B, F, n_mels] -> [B, F/4, d_model] (40 ms frames).

    Frames past an utterance's length are zeroed after each convolution, so batching never changes its valid frames.
    """

    def __init__(self, n_mels: int, d_model: int, channels: int = 64) -> None:
        super().__init__()
        self.convs = nn.ModuleList([nn.Conv2d(1, channels, 3, stride=2, padding=1), nn.Conv2d(channels, channels, 3, stride=2, padding=1)])
        self.activation = nn.SiLU()
        self.project = nn.Linear(channels * ((n_mels + 3) // 4), d_model)

    @staticmethod
    def _halve(lengths: torch.Tensor) -> torch.Tensor:
        return torch.div(lengths - 1, 2, rounding_mode="floor") + 1

    @classmethod
    def output_lengths(cls, lengths: torch.Tensor) -> torch.Tensor:
        return cls._halve(cls._halve(lengths))

    def forward(self, features: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = features.unsqueeze(1)  # [B, 1, F, n_mels]
        for conv in self.convs:
            x = self.activation(conv(x))
            lengths = self._halve(lengths).clamp(max=x.shape[2])
            x = x * (torch.arange(x.shape[2], device=x.device)[None, :] < lengths[:, None])[:, None, :, None]
        return self.project(x.permute(0, 2, 1, 3).flatten(2)), lengths
