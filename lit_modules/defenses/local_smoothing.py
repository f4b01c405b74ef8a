"""LS: median filtering of the waveform with a sliding window (Yang et al. 2019's local smoothing)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class LocalSmoothing(nn.Module):
    """Each sample becomes the median of the ``window`` samples centred on it (odd ``window``; edges reflect).
    Samples past each length stay zero and never leak into valid ones."""

    def __init__(self, window: int = 3) -> None:
        super().__init__()
        if window < 1 or window % 2 == 0:
            raise ValueError(f"window must be a positive odd number of samples, got {window}")
        self.window = window

    def forward(self, waveforms: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.window == 1:
            return waveforms, lengths
        half = self.window // 2
        out = torch.zeros_like(waveforms)
        for row in range(waveforms.shape[0]):  # per item, so reflection happens at its own end, not in the padding
            valid = waveforms[row, : int(lengths[row])]
            padded = F.pad(valid[None, None], (half, half), mode="reflect" if valid.numel() > half else "replicate")
            out[row, : valid.numel()] = padded[0, 0].unfold(0, self.window, 1).median(dim=-1).values
        return out, lengths
