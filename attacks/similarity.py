"""Acoustic similarity the attacks must respect: cosine similarity of MFCC matrices (clean vs perturbed)."""

from __future__ import annotations

import torch
import torchaudio


class MFCCSimilarity:
    """Cosine similarity between the flattened MFCC matrices of a clean waveform and perturbed versions of it.

    MFCC: torchaudio ``transforms.MFCC`` (13 coefficients of 40 log-mel bands, 25 ms windows, 10 ms hop, dB scale
    with an 80 dB floor). The whole [coefficients x frames] matrix is compared at once, so loud and quiet frames
    both count. Measured: 10 dB white noise gives 0.51 on the synthetic corpus and 0.84 on real read speech; 25 dB
    gives 0.97 and 0.96 (docs/design.md), so the 0.95 threshold sits near a 25 dB noise-equivalent.
    """

    def __init__(self, sample_rate: int = 16_000, n_mfcc: int = 13, n_mels: int = 40) -> None:
        self.transform = torchaudio.transforms.MFCC(
            sample_rate, n_mfcc=n_mfcc,
            melkwargs={"n_fft": int(0.025 * sample_rate), "hop_length": int(0.010 * sample_rate), "n_mels": n_mels},
        )
        self._reference: tuple[torch.Tensor, torch.Tensor] | None = None  # (clean, its features): attacks reuse one

    def _reference_features(self, clean: torch.Tensor) -> torch.Tensor:
        cached = self._reference
        if cached is None or cached[0].shape != clean.shape or not torch.equal(cached[0], clean):
            cached = self._reference = (clean.clone(), self.features(clean.reshape(1, -1)))
        return cached[1]

    @torch.no_grad()
    def features(self, waveforms: torch.Tensor) -> torch.Tensor:
        """[P, T] -> flattened MFCC [P, n_mfcc * frames]."""
        return self.transform(waveforms.float()).flatten(1)

    @torch.no_grad()
    def __call__(self, clean: torch.Tensor, perturbed: torch.Tensor) -> torch.Tensor:
        """clean [T], perturbed [P, T] (same length) -> similarity [P] in [-1, 1]."""
        if perturbed.ndim == 1:
            perturbed = perturbed[None]
        if clean.shape[-1] != perturbed.shape[-1]:
            raise ValueError(f"clean has {clean.shape[-1]} samples, perturbed {perturbed.shape[-1]}")
        reference = self._reference_features(clean.reshape(-1))
        return torch.nn.functional.cosine_similarity(self.features(perturbed), reference, dim=1)
