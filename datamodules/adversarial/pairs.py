"""(perturbed, clean) waveform pairs for training a speech enhancer: every non-clean example of an
``AdversarialDataModule`` (Gaussian-noisy and adversarial) with its clean source recording."""

from __future__ import annotations

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset

from datamodules.adversarial.datamodule import AdversarialDataModule
from core.audio_io import load_audio
from core.batch import pad_waveforms


class PairDataset(Dataset):
    def __init__(self, pairs: list[tuple[str, str]], crop_samples: int | None, seed: int) -> None:
        self.pairs, self.crop, self.generator = pairs, crop_samples, torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int):
        perturbed, clean = (load_audio(path) for path in self.pairs[index])
        if perturbed.shape != clean.shape:
            raise ValueError(f"{self.pairs[index][0]}: {perturbed.numel()} samples, its clean source {clean.numel()}")
        if self.crop and clean.numel() > self.crop:
            start = int(torch.randint(0, clean.numel() - self.crop + 1, (1,), generator=self.generator))
            perturbed, clean = perturbed[start : start + self.crop], clean[start : start + self.crop]
        return perturbed, clean


def collate_pairs(items):
    perturbed, lengths = pad_waveforms([item[0] for item in items])
    clean, _ = pad_waveforms([item[1] for item in items])
    return perturbed, clean, lengths


class EnhancementPairsDataModule(L.LightningDataModule):
    """Args: adversarial: where the examples come from (its splits are kept: disjoint by source utterance);
    crop_seconds: random training crops (val / test use whole utterances); identity_pairs: also a (clean, clean)
    pair per source, so the enhancer learns to leave clean speech alone (one trained on perturbed inputs only
    distorts clean ones: docs/defenses.md)."""

    def __init__(self, adversarial: AdversarialDataModule | None = None, crop_seconds: float = 2.0,
                 batch_size: int = 16, num_workers: int = 0, seed: int = 0, identity_pairs: bool = False) -> None:
        super().__init__()
        self.adversarial = adversarial or AdversarialDataModule()
        self.crop_seconds, self.batch_size, self.num_workers, self.seed = crop_seconds, batch_size, num_workers, seed
        self.identity_pairs = identity_pairs
        self.pairs: dict[str, list[tuple[str, str]]] = {}

    def campaign_plans(self) -> list[AdversarialDataModule]:
        """What generates this module's data: the adversarial data module it pairs."""
        return [self.adversarial]

    def setup(self, stage: str | None = None) -> None:
        if self.pairs:
            return
        self.adversarial.trainer = self.trainer
        self.adversarial.setup(stage)
        # the benign-only sources' noisy examples pair with their clean recordings too
        sources = {s.utterance_id: s.audio_path for s in self.adversarial.sources() + self.adversarial.benign_sources()}
        self.pairs = {split: [(e.path, sources[e.source_id]) for e in examples
                              if e.kind != "clean" or self.identity_pairs]
                      for split, examples in self.adversarial.examples.items()}

    def _loader(self, split: str, train: bool) -> DataLoader:
        if not self.pairs.get(split):
            raise ValueError(f"no (perturbed, clean) pairs in the {split} split")
        crop = int(self.crop_seconds * self.adversarial.source.sample_rate) if train else None
        return DataLoader(PairDataset(self.pairs[split], crop, self.seed), batch_size=self.batch_size, shuffle=train,
                          collate_fn=collate_pairs, num_workers=self.num_workers,
                          generator=torch.Generator().manual_seed(self.seed))

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", False)
