"""``ASRModule``: trains any small recognizer that offers ``loss(waveforms, lengths, transcripts)`` and ``decode``."""

from __future__ import annotations

import math
import warnings

import lightning as L
import torch
from lightning.pytorch.cli import OptimizerCallable
from torch import nn
from torchmetrics.text import CharErrorRate, WordErrorRate

from core.batch import SpeechBatch


def _adamw(parameters):
    return torch.optim.AdamW(parameters, lr=1e-3, weight_decay=1e-2)


class ASRModule(L.LightningModule):
    """One shared step for train / val / test: loss on every stage, greedy WER / CER on val and test.

    Args:
        model: an ``nn.Module`` with ``loss(waveforms, lengths, transcripts) -> scalar`` and
            ``decode(waveforms, lengths) -> list[str]`` (e.g. ``ConformerCTC``).
        optimizer: optimizer factory (``OptimizerCallable``; YAML ``class_path: torch.optim.AdamW``).
        warmup_fraction: linear warm-up share of all steps, then cosine decay to ``final_lr_fraction``.
        final_lr_fraction: last learning rate / peak learning rate.
    """

    def __init__(self, model: nn.Module, optimizer: OptimizerCallable = _adamw, warmup_fraction: float = 0.08,
                 final_lr_fraction: float = 0.02) -> None:
        super().__init__()
        with warnings.catch_warnings():
            # the model's config (not the module) is what the Lightning CLI records; keep it for load_from_checkpoint
            warnings.filterwarnings("ignore", message="Attribute 'model' is an instance of `nn.Module`")
            self.save_hyperparameters(ignore=["optimizer"])
        self.model = model
        self.optimizer_factory = optimizer
        self.metrics = nn.ModuleDict({
            f"{stage}_{name}": metric() for stage in ("val", "test") for name, metric in (("wer", WordErrorRate), ("cer", CharErrorRate))
        })

    def _step(self, batch: SpeechBatch, stage: str) -> torch.Tensor:
        loss = self.model.loss(batch.waveforms, batch.lengths, batch.transcripts)
        self.log(f"{stage}/loss", loss, prog_bar=True, batch_size=len(batch.transcripts), sync_dist=stage != "train")
        if stage != "train":
            hypotheses = self.model.decode(batch.waveforms, batch.lengths)
            for name in ("wer", "cer"):
                metric = self.metrics[f"{stage}_{name}"]
                metric.update(hypotheses, batch.transcripts)
                self.log(f"{stage}/{name}", metric, prog_bar=name == "wer", batch_size=len(batch.transcripts))
        return loss

    def training_step(self, batch: SpeechBatch, batch_idx: int) -> torch.Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch: SpeechBatch, batch_idx: int) -> None:
        self._step(batch, "val")

    def test_step(self, batch: SpeechBatch, batch_idx: int) -> None:
        self._step(batch, "test")

    def predict_step(self, batch: SpeechBatch, batch_idx: int) -> list[str]:
        return self.model.decode(batch.waveforms, batch.lengths)

    def configure_optimizers(self):
        optimizer = self.optimizer_factory(self.model.parameters())
        total = max(1, int(self.trainer.estimated_stepping_batches))
        warmup = max(1, int(self.hparams.warmup_fraction * total))
        floor = self.hparams.final_lr_fraction

        def schedule(step: int) -> float:
            if step < warmup:
                return (step + 1) / warmup
            progress = min(1.0, (step - warmup) / max(1, total - warmup))
            return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
