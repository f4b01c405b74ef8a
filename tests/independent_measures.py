"""SNR, l_inf and MFCC similarity written again from their definitions with NumPy / SciPy only, to judge saved
adversarial audio without trusting the code under test (``attacks.constraints`` / ``attacks.similarity``).

MFCC as the project defines it (docs/attacks.md): 13 coefficients (orthonormal DCT-II) of 40 HTK mel bands (no
filter normalization, 0 Hz to Nyquist) of the power spectrum of 25 ms periodic-Hann windows every 10 ms, centred
(reflect padding), in dB with the floor 80 dB below the utterance's maximum; similarity = cosine of the flattened
[13 x frames] matrices.
"""

from __future__ import annotations

import numpy as np
from scipy.fft import dct


def snr_db(clean: np.ndarray, adversarial: np.ndarray) -> float:
    noise = adversarial.astype(np.float64) - clean.astype(np.float64)
    return float(10 * np.log10(np.sum(clean.astype(np.float64) ** 2) / np.sum(noise**2)))


def linf(clean: np.ndarray, adversarial: np.ndarray) -> float:
    return float(np.max(np.abs(adversarial.astype(np.float64) - clean.astype(np.float64))))


def _mel_filters(sample_rate: int, n_fft: int, n_mels: int) -> np.ndarray:
    """[n_fft // 2 + 1, n_mels] triangular filters on the HTK mel scale."""
    def to_mel(hz):
        return 2595.0 * np.log10(1.0 + hz / 700.0)

    def to_hz(mel):
        return 700.0 * (10 ** (mel / 2595.0) - 1.0)

    bins = np.linspace(0, sample_rate // 2, n_fft // 2 + 1)
    edges = to_hz(np.linspace(to_mel(0.0), to_mel(sample_rate / 2), n_mels + 2))
    filters = np.zeros((bins.size, n_mels))
    for m in range(n_mels):
        low, centre, high = edges[m], edges[m + 1], edges[m + 2]
        rising = (bins - low) / (centre - low)
        falling = (high - bins) / (high - centre)
        filters[:, m] = np.clip(np.minimum(rising, falling), 0.0, None)
    return filters


def mfcc(waveform: np.ndarray, sample_rate: int = 16_000, n_mfcc: int = 13, n_mels: int = 40) -> np.ndarray:
    """[T] -> [n_mfcc, frames]."""
    n_fft, hop = int(0.025 * sample_rate), int(0.010 * sample_rate)
    padded = np.pad(waveform.astype(np.float64), n_fft // 2, mode="reflect")
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)  # periodic Hann
    frames = 1 + (padded.size - n_fft) // hop
    windows = np.stack([padded[i * hop:i * hop + n_fft] * window for i in range(frames)])
    power = np.abs(np.fft.rfft(windows, axis=1)) ** 2  # [frames, bins]
    decibels = 10 * np.log10(np.maximum(power @ _mel_filters(sample_rate, n_fft, n_mels), 1e-10))
    decibels = np.maximum(decibels, decibels.max() - 80.0)
    return dct(decibels, type=2, norm="ortho", axis=1)[:, :n_mfcc].T


def mfcc_similarity(clean: np.ndarray, adversarial: np.ndarray, sample_rate: int = 16_000) -> float:
    a, b = mfcc(clean, sample_rate).ravel(), mfcc(adversarial, sample_rate).ravel()
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))
