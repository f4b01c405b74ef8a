"""``EnhancerModule``: trains the attention U-Net on (perturbed, clean) pairs; ``SpeechEnhancement``: the trained
enhancer as a preprocessing defense (``python train.py fit --config configs/se.yaml``)."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.cli import OptimizerCallable
from torch import nn

from lit_modules.defenses.attention_unet import AttentionUNet


def _adam(parameters):
    return torch.optim.Adam(parameters, lr=1e-3)


def stft_magnitude_loss(estimate: torch.Tensor, target: torch.Tensor, n_fft: int = 512) -> torch.Tensor:
    """L1 distance of log STFT magnitudes (25 % overlap Hann windows)."""
    window = torch.hann_window(n_fft, device=estimate.device)

    def magnitude(x):
        return torch.stft(x, n_fft, n_fft // 4, window=window, return_complex=True).abs().clamp(min=1e-5).log()

    return F.l1_loss(magnitude(estimate), magnitude(target))


class EnhancerModule(L.LightningModule):
    """Loss: waveform L1 + ``spectral_weight`` x log-STFT-magnitude L1 between enhanced and clean audio.
    Logs the SNR of the input and of the enhanced output against the clean reference (dB) on val / test."""

    def __init__(self, enhancer: nn.Module | None = None, spectral_weight: float = 0.1,
                 optimizer: OptimizerCallable = _adam) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["optimizer", "enhancer"])
        self.enhancer = enhancer or AttentionUNet()
        self.optimizer_factory = optimizer

    def _step(self, batch, stage: str) -> torch.Tensor:
        perturbed, clean, lengths = batch
        enhanced, _ = self.enhancer(perturbed, lengths)
        loss = F.l1_loss(enhanced, clean) + self.hparams.spectral_weight * stft_magnitude_loss(enhanced, clean)
        self.log(f"{stage}/loss", loss, prog_bar=True, batch_size=len(lengths))
        if stage != "train":
            def snr(x):
                return (10 * torch.log10(clean.pow(2).sum(1) / (x - clean).pow(2).sum(1).clamp(min=1e-10))).mean()

            self.log_dict({f"{stage}/snr_in": snr(perturbed), f"{stage}/snr_out": snr(enhanced)},
                          batch_size=len(lengths))
        return loss

    def training_step(self, batch, batch_idx):
        return self._step(batch, "train")

    def validation_step(self, batch, batch_idx):
        self._step(batch, "val")

    def test_step(self, batch, batch_idx):
        self._step(batch, "test")

    def configure_optimizers(self):
        return self.optimizer_factory(self.enhancer.parameters())


class SpeechEnhancement(nn.Module):
    """SE as a preprocessing defense: waveforms -> enhanced waveforms, from an ``EnhancerModule`` checkpoint."""

    def __init__(self, checkpoint: str, device: str = "cpu") -> None:
        super().__init__()
        path = Path(checkpoint)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no enhancer checkpoint (train one: python train.py fit --config "
                                    "configs/se.yaml)")
        self.enhancer = EnhancerModule.load_from_checkpoint(path, map_location=device, weights_only=True).enhancer.eval()

    @torch.no_grad()
    def forward(self, waveforms: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.enhancer(waveforms, lengths)
