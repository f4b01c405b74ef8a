"""Transform-consistency detection (WaveGuard, Hussain et al. 2021): adversarial transcripts are fragile, so the
distance between the transcript of an input and that of a mildly transformed copy (LS or DS) flags them."""

from __future__ import annotations

import jiwer
import torch
from torch import nn

from lit_modules.backends.base import ASRBackend
from lit_modules.detectors.base import Detector


class TransformConsistencyDetector(Detector):
    """Score = CER between transcribe(x) and transcribe(transform(x)); ``transform``: a preprocessing defense."""

    def __init__(self, backend: ASRBackend, transform: nn.Module, threshold: float = 0.3) -> None:
        super().__init__(threshold)
        self.backend, self.transform = backend, transform

    @torch.no_grad()
    def score(self, waveforms: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        original = self.backend.transcribe(waveforms, lengths)
        transformed = self.backend.transcribe(*self.transform(waveforms, lengths))
        scores = []
        for a, b in zip(original, transformed):
            scores.append(0.0 if not a and not b else 1.0 if not a or not b else float(jiwer.cer(a, b)))
        return torch.tensor(scores)
