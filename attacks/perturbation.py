"""Pure functions on perturbations: SNR, l_inf size, and Gaussian noise at a given SNR (the AG control's signal)."""

from __future__ import annotations

import torch


def _valid_mask(waveforms: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    return (torch.arange(waveforms.shape[1], device=waveforms.device)[None, :] < lengths[:, None]).to(waveforms.dtype)


def signal_power(waveforms: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Mean square of each item's valid samples, [B]."""
    mask = _valid_mask(waveforms, lengths)
    return (waveforms.pow(2) * mask).sum(1) / lengths.clamp(min=1).to(waveforms.dtype)


def snr_db(clean: torch.Tensor, perturbed: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Signal-to-noise ratio (dB) of ``perturbed`` against ``clean``, [B]; inf for an unchanged item."""
    noise = signal_power(perturbed - clean, lengths)
    return 10 * torch.log10(signal_power(clean, lengths) / noise)


def gaussian_noise_at_snr(waveforms: torch.Tensor, lengths: torch.Tensor, snr: float,
                          generator: torch.Generator | None = None) -> torch.Tensor:
    """Waveforms plus white Gaussian noise at ``snr`` dB of each item's own power (padding stays zero), [B, T]."""
    noise = torch.randn(waveforms.shape, generator=generator, dtype=waveforms.dtype, device=waveforms.device)
    noise = noise * _valid_mask(waveforms, lengths)
    scale = (signal_power(waveforms, lengths) / (10 ** (snr / 10)) / signal_power(noise, lengths)).sqrt()
    return waveforms + noise * scale[:, None]
