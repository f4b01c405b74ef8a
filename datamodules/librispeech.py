"""``LibriSpeechDataModule``: LibriSpeech-layout corpora (real, or the synthetic embedded default) as padded batches."""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path
from typing import Sequence

import lightning as L
from torch.utils.data import DataLoader

from core.audio_io import FormatPolicy, load_audio
from core.errors import DataError
from datamodules.length_bucketing import LengthBucketBatchSampler
from datamodules.librispeech_index import BadInputPolicy, SkipReport, Utterance, scan_split
from datamodules.selection import filter_by_duration, seeded_subset
from datamodules.speech_dataset import UtteranceDataset, collate_examples
from datamodules.synthetic.corpus_config import SyntheticCorpusConfig
from datamodules.synthetic.generate import default_corpus_dir, generate_corpus

log = logging.getLogger(__name__)

_SYNTHETIC_SPLITS = {"train": ["train"], "val": ["dev"], "test": ["test"]}
_LIBRISPEECH_SPLITS = {"train": ["train-clean-100"], "val": ["dev-clean"], "test": ["test-clean"]}


class LibriSpeechDataModule(L.LightningDataModule):
    """Serves ``SpeechBatch`` batches from a corpus in LibriSpeech layout.

    Without ``root`` the synthetic corpus (``synthetic`` config) is generated into the cache on first use
    and served instead, with splits ``train`` / ``dev`` / ``test``.

    Args:
        root: folder holding ``LibriSpeech/<split>/...`` (or the ``LibriSpeech`` folder); ``None`` = synthetic.
        train_splits, val_splits, test_splits: split folder names per stage (default: LibriSpeech's
            train-clean-100 / dev-clean / test-clean, or the synthetic train / dev / test).
        sample_rate: rate of the served waveforms, Hz.
        min_duration, max_duration: keep utterances within these durations (seconds).
        train_subset, val_subset, test_subset: seeded random subset sizes ("2,000 random utterances").
        seed: seeds subsets and the training order.
        batch_size: utterances per batch.
        num_workers: DataLoader worker processes.
        bucket_by_length: batch utterances of similar length together (less padding).
        format_policy: ``"convert"`` resamples / downmixes other formats (and logs how many);
            ``"error"`` refuses them.
        on_bad_input: ``"error"`` stops at the first bad file with its name and problem; ``"skip"`` logs each
            bad file and leaves it out, with a count.
        verify_audio: decode every file at setup (finds truncated or NaN files before training starts).
        synthetic: configuration of the synthetic corpus used without ``root``.
        synthetic_dir: where to generate it (default: the cache).
    """

    def __init__(
        self,
        root: str | None = None,
        train_splits: Sequence[str] | None = None,
        val_splits: Sequence[str] | None = None,
        test_splits: Sequence[str] | None = None,
        sample_rate: int = 16_000,
        min_duration: float | None = None,
        max_duration: float | None = None,
        train_subset: int | None = None,
        val_subset: int | None = None,
        test_subset: int | None = None,
        seed: int = 0,
        batch_size: int = 8,
        num_workers: int = 0,
        bucket_by_length: bool = True,
        format_policy: FormatPolicy = "convert",
        on_bad_input: BadInputPolicy = "error",
        verify_audio: bool = False,
        synthetic: SyntheticCorpusConfig | None = None,
        synthetic_dir: str | None = None,
    ) -> None:
        super().__init__()
        if format_policy not in ("convert", "error"):
            raise ValueError(f"format_policy must be 'convert' or 'error', got {format_policy!r}")
        if on_bad_input not in ("error", "skip"):
            raise ValueError(f"on_bad_input must be 'error' or 'skip', got {on_bad_input!r}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.root = root
        self.synthetic = synthetic or SyntheticCorpusConfig()
        self.synthetic_dir = synthetic_dir
        defaults = _LIBRISPEECH_SPLITS if root is not None else _SYNTHETIC_SPLITS
        self.splits = {
            "train": list(train_splits or defaults["train"]),
            "val": list(val_splits or defaults["val"]),
            "test": list(test_splits or defaults["test"]),
        }
        self.subset_sizes = {"train": train_subset, "val": val_subset, "test": test_subset}
        self.sample_rate = sample_rate
        self.min_duration, self.max_duration = min_duration, max_duration
        self.seed = seed
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.bucket_by_length = bucket_by_length
        self.format_policy: FormatPolicy = format_policy
        self.on_bad_input: BadInputPolicy = on_bad_input
        self.verify_audio = verify_audio
        self.utterances: dict[str, list[Utterance]] = {}
        self.skip_report = SkipReport()

    @property
    def corpus_root(self) -> Path:
        """The corpus folder in use (the synthetic one without ``root``)."""
        if self.root is not None:
            return Path(self.root)
        return Path(self.synthetic_dir) if self.synthetic_dir else default_corpus_dir(self.synthetic)

    def prepare_data(self) -> None:
        """Generate the synthetic corpus when no ``root`` is set (runs once, on rank 0)."""
        if self.root is None:
            generate_corpus(self.synthetic, self.corpus_root)

    def stage_utterances(self, stage: str) -> list[Utterance]:
        """Index, check, filter and subset the utterances of ``stage`` ("train", "val" or "test")."""
        if stage not in self.utterances:
            if self.root is None and not (self.corpus_root / "corpus.json").is_file():
                self.prepare_data()
            found: list[Utterance] = []
            for split in self.splits[stage]:
                utterances, report = scan_split(self.corpus_root, split, self.on_bad_input)
                self.skip_report.skipped.extend(report.skipped)
                found.extend(utterances)
            kept = filter_by_duration(found, self.min_duration, self.max_duration)
            if not kept:
                raise DataError(
                    self.corpus_root,
                    f"no {stage} utterance lies within {self.min_duration}-{self.max_duration} s "
                    f"(of {len(found)} in {self.splits[stage]})",
                )
            kept = seeded_subset(kept, self.subset_sizes[stage], self.seed)
            if self.verify_audio:
                kept = self._verified(kept)
            self._log_format_conversions(stage, kept)
            self.utterances[stage] = kept
        return self.utterances[stage]

    def _verified(self, utterances: list[Utterance]) -> list[Utterance]:
        good = []
        for utterance in utterances:
            try:
                load_audio(utterance.audio_path, self.sample_rate, self.format_policy)
            except DataError as error:
                if self.on_bad_input == "error":
                    raise
                self.skip_report.add(error)
                continue
            good.append(utterance)
        return good

    def _log_format_conversions(self, stage: str, utterances: list[Utterance]) -> None:
        rates = Counter(u.sample_rate for u in utterances if u.sample_rate != self.sample_rate)
        multichannel = sum(u.channels > 1 for u in utterances)
        if self.format_policy == "convert" and (rates or multichannel):
            log.warning(
                "%s: resampling %d files to %d Hz (%s) and down-mixing %d multi-channel files",
                stage, sum(rates.values()), self.sample_rate, dict(rates), multichannel,
            )
        elif self.format_policy == "error" and (rates or multichannel):
            bad = next(u for u in utterances if u.sample_rate != self.sample_rate or u.channels > 1)
            load_audio(bad.audio_path, self.sample_rate, "error")  # raises AudioFormatError naming the file

    def setup(self, stage: str | None = None) -> None:
        wanted = {"fit": ["train", "val"], "validate": ["val"], "test": ["test"], "predict": ["test"], None: ["train", "val", "test"]}
        for name in wanted.get(stage, ["train", "val", "test"]):
            self.stage_utterances(name)

    @property
    def num_train_utterances(self) -> int:
        """Training-set size N (scales the KL term of an ELBO)."""
        return len(self.stage_utterances("train"))

    def dataset(self, stage: str) -> UtteranceDataset:
        return UtteranceDataset(self.stage_utterances(stage), self.sample_rate, self.format_policy, self.on_bad_input)

    def _loader(self, stage: str, shuffle: bool) -> DataLoader:
        dataset = self.dataset(stage)
        common = dict(num_workers=self.num_workers, collate_fn=collate_examples, persistent_workers=self.num_workers > 0)
        if self.bucket_by_length:
            sampler = LengthBucketBatchSampler(
                [dataset.num_samples(i) for i in range(len(dataset))], self.batch_size, shuffle=shuffle, seed=self.seed
            )
            return DataLoader(dataset, batch_sampler=sampler, **common)
        return DataLoader(dataset, batch_size=self.batch_size, shuffle=shuffle, **common)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)

    def predict_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)
