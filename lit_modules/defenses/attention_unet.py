"""A self-attention gated U-Net speech enhancer on raw waveforms (after Yang et al., ICASSP 2020).

Encoder: ``levels`` blocks of Conv1d (kernel ``kernel``) + GELU, each followed by stride-2 down-sampling; decoder:
linear up-sampling, an attention gate on the skip connection (additive attention: the decoder state decides which
encoder features pass, Oktay et al. 2018), concatenation, Conv1d + GELU. The output is a residual correction:
enhanced = input + tanh-bounded correction, so an untrained enhancer is the identity.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class AttentionGate(nn.Module):
    """skip [B, C, T], gate [B, G, T] -> skip * sigmoid(psi(relu(W_s skip + W_g gate))) (a per-frame weight)."""

    def __init__(self, skip_channels: int, gate_channels: int, inner: int) -> None:
        super().__init__()
        self.skip = nn.Conv1d(skip_channels, inner, 1)
        self.gate = nn.Conv1d(gate_channels, inner, 1)
        self.psi = nn.Conv1d(inner, 1, 1)

    def forward(self, skip: torch.Tensor, gate: torch.Tensor) -> torch.Tensor:
        weights = torch.sigmoid(self.psi(F.relu(self.skip(skip) + self.gate(gate))))
        return skip * weights


class AttentionUNet(nn.Module):
    """waveforms [B, T] -> enhanced waveforms [B, T] (samples past ``lengths`` stay zero)."""

    def __init__(self, channels: tuple[int, ...] = (16, 32, 64, 96), kernel: int = 15,
                 correction_scale: float = 0.5) -> None:
        super().__init__()
        self.levels = len(channels)
        self.correction_scale = correction_scale
        self.encoders = nn.ModuleList()
        previous = 1
        for width in channels:
            self.encoders.append(nn.Sequential(nn.Conv1d(previous, width, kernel, padding=kernel // 2), nn.GELU()))
            previous = width
        self.bottleneck = nn.Sequential(nn.Conv1d(previous, previous, kernel, padding=kernel // 2), nn.GELU())
        self.gates, self.decoders = nn.ModuleList(), nn.ModuleList()
        for width in reversed(channels):
            self.gates.append(AttentionGate(width, previous, max(8, width // 2)))
            self.decoders.append(nn.Sequential(nn.Conv1d(width + previous, width, 5, padding=2), nn.GELU()))
            previous = width
        self.output = nn.Conv1d(previous, 1, 1)
        nn.init.zeros_(self.output.weight)  # start as the identity: an untrained enhancer changes nothing
        nn.init.zeros_(self.output.bias)

    def forward(self, waveforms: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        length = waveforms.shape[1]
        multiple = 2**self.levels
        padded = F.pad(waveforms, (0, (-length) % multiple))[:, None]  # [B, 1, T']
        x, skips = padded, []
        for encoder in self.encoders:
            x = encoder(x)
            skips.append(x)
            x = F.avg_pool1d(x, 2)
        x = self.bottleneck(x)
        for gate, decoder, skip in zip(self.gates, self.decoders, reversed(skips)):
            x = F.interpolate(x, size=skip.shape[-1], mode="linear", align_corners=False)
            x = decoder(torch.cat([gate(skip, x), x], dim=1))
        correction = self.correction_scale * torch.tanh(self.output(x))
        enhanced = (padded + correction)[:, 0, :length]
        valid = torch.arange(length, device=waveforms.device)[None, :] < lengths[:, None]
        return enhanced * valid, lengths
