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
        """[P, T] -> flattened MFCC [P, n_mfcc * frames]. Each item is its own [1, T] "channel" so that the dB
        floor (80 dB below the maximum) is per item: on [P, T] torchaudio takes the maximum over the whole batch,
        and an item's features would depend on what it is batched with."""
        return self.transform(waveforms.float()[:, None]).flatten(1)

    @torch.no_grad()
    def spectra(self, waveforms: torch.Tensor) -> torch.Tensor:
        """[P, T] -> the complex STFT [P, 1, bins, frames] that ``features`` starts from (linear in the waveform)."""
        stft = self.transform.MelSpectrogram.spectrogram
        return torchaudio.functional.spectrogram(
            waveforms.float()[:, None], pad=stft.pad, window=stft.window, n_fft=stft.n_fft, hop_length=stft.hop_length,
            win_length=stft.win_length, power=None, normalized=stft.normalized, center=stft.center,
            pad_mode=stft.pad_mode, onesided=stft.onesided)

    @torch.no_grad()
    def features_from_spectra(self, spectra: torch.Tensor) -> torch.Tensor:
        """Complex STFTs [P, 1, bins, frames] -> flattened MFCC [P, n_mfcc * frames] (``features`` after its STFT)."""
        parts = torch.view_as_real(spectra)  # |X|^2 as re^2 + im^2: measured 3x faster than abs().pow(2)
        mel = self.transform.MelSpectrogram.mel_scale(parts[..., 0] * parts[..., 0] + parts[..., 1] * parts[..., 1])
        decibels = self.transform.amplitude_to_DB(mel)
        return torch.matmul(decibels.transpose(-1, -2), self.transform.dct_mat).transpose(-1, -2).flatten(1)

    def along(self, clean: torch.Tensor, deltas: torch.Tensor):
        """For repeated scalings of fixed perturbations: returns ``at(scales [K], rows [K])`` = the similarity of
        ``clean + scales[k] * deltas[rows[k]]`` [K]. The STFT is linear, so clean's and each delta's are taken once
        and every call only redoes the power, mel, dB and DCT steps (measured 2.6x cheaper than a full pass)."""
        reference = self._reference_features(clean.reshape(-1))
        clean_spectrum = self.spectra(clean.reshape(1, -1))
        delta_spectra = self.spectra(deltas)

        def at(scales: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
            spectra = clean_spectrum + scales.to(torch.float32)[:, None, None, None] * delta_spectra[rows]
            return torch.nn.functional.cosine_similarity(self.features_from_spectra(spectra), reference, dim=1)

        return at

    @torch.no_grad()
    def __call__(self, clean: torch.Tensor, perturbed: torch.Tensor) -> torch.Tensor:
        """clean [T], perturbed [P, T] (same length) -> similarity [P] in [-1, 1]."""
        if perturbed.ndim == 1:
            perturbed = perturbed[None]
        if clean.shape[-1] != perturbed.shape[-1]:
            raise ValueError(f"clean has {clean.shape[-1]} samples, perturbed {perturbed.shape[-1]}")
        reference = self._reference_features(clean.reshape(-1))
        return torch.nn.functional.cosine_similarity(self.features(perturbed), reference, dim=1)
