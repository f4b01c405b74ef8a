"""``AdversarialDataModule``: clean, benign-noisy (AG) and adversarial (AE / AZ ...) examples with labels.

For the source utterances of a data module and a target system it names one campaign per attack (``jobs()``, run
by ``campaigns.launcher.generate``: ``python train.py`` and the benchmarks do it first, each DDP rank its own shard
of the sources) and serves every finished example with its label: clean and AG = 0, adversarial = 1. It only reads:
a campaign that is not finished is an error naming how to generate it. Train / val / test are disjoint by source
utterance: all versions of one recording land in the same split (a seeded hash of its id decides).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset

from attacks.base import Attack
from attacks.constraints import PerturbationBudget
from attacks.gaussian import GaussianNoise
from campaigns.campaign import GoalSpec, SourceUtterance
from campaigns.launcher import DEFAULT_PRIOR_FACTORY, DEFAULT_SYSTEM_FACTORY, CampaignJob, CampaignLauncher
from campaigns.store import AdversarialCache
from core.audio_io import load_audio
from core.cache_dir import default_cache_dir
from core.hashing import seeded_fraction
from datamodules.adversarial.batch import collate_labelled
from datamodules.librispeech import LibriSpeechDataModule
from datamodules.selection import seeded_subset

log = logging.getLogger(__name__)
STAGES = ("train", "val", "test")


@dataclass
class AttackSpec:
    """One attack of the mix: the attack object, and whether its examples count as adversarial (label 1)."""

    attack: Attack
    adversarial: bool = True
    only_successful: bool = True  # adversarial examples that failed their goal are left out


@dataclass(frozen=True)
class LabelledExample:
    path: str
    label: int
    kind: str
    transcript: str
    source_id: str
    example_id: str


def split_of(source_id: str, fractions: tuple[float, float, float], seed: int) -> str:
    """Seeded assignment of a source utterance to train / val / test (each on its own: the shares hold on average,
    so a handful of sources can leave a split empty; ``rank_splits`` holds them exactly)."""
    value = seeded_fraction(seed, source_id)
    if value < fractions[0]:
        return "train"
    return "val" if value < fractions[0] + fractions[1] else "test"


def rank_splits(source_ids: list[str], fractions: tuple[float, float, float], seed: int) -> dict[str, str]:
    """Seeded assignment of a set of sources with exact shares: sorted by the same seeded value as ``split_of``, the
    first n_train go to train, the next n_val to val, the rest to test, the sizes being the shares of n rounded by
    largest remainder; with 3 or more sources no split whose share is positive is left empty."""
    ordered = sorted(source_ids, key=lambda i: (seeded_fraction(seed, i), i))
    n = len(ordered)
    exact = [f * n for f in fractions]
    sizes = [math.floor(x) for x in exact]
    for index in sorted(range(3), key=lambda j: sizes[j] - exact[j])[:n - sum(sizes)]:
        sizes[index] += 1
    if n >= 3:
        for index, share in enumerate(fractions):
            if share > 0 and sizes[index] == 0:
                sizes[max(range(3), key=lambda j: sizes[j])] -= 1
                sizes[index] = 1
    n_train, n_val = sizes[0], sizes[1]
    return {i: "train" if k < n_train else "val" if k < n_train + n_val else "test" for k, i in enumerate(ordered)}


class LabelledAudioDataset(Dataset):
    def __init__(self, examples: list[LabelledExample], sample_rate: int) -> None:
        self.examples, self.sample_rate = examples, sample_rate

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, index: int):
        e = self.examples[index]
        return load_audio(e.path, sample_rate=self.sample_rate), e.label, e.kind, e.transcript, e.source_id, e.example_id


def _default_attacks() -> list[AttackSpec]:
    from attacks.evolutionary import EvolutionaryAttack
    from attacks.zeroth_order import ZerothOrderAttack

    return [AttackSpec(GaussianNoise(10.0), adversarial=False), AttackSpec(EvolutionaryAttack()),
            AttackSpec(ZerothOrderAttack())]


class CampaignsNotGeneratedError(RuntimeError):
    """The data module was asked for examples of a campaign that has not been run (or finished)."""


class AdversarialDataModule(L.LightningDataModule):
    """Args:
        source: the clean data (default: the synthetic corpus); ``source_stage`` which of its stages to attack.
        system / system_factory: the target system (built in the oracle's process).
        attacks: the mix (default AG at 10 dB as benign, AE and AZ as adversarial).
        goal, budget, query_budget, seed: the attack setting.
        split_fractions: train / val / test shares of source utterances; split_method: ``"hash"`` (each source on
            its own, ``split_of``: a source keeps its split however many others there are) or ``"rank"`` (exact
            shares of this module's sources, ``rank_splits``: for a handful of sources, where hashing can leave a
            split empty).
        include_clean: serve the clean recordings (label 0) too.
        attack_splits: attack only the sources of these splits (e.g. ``("test",)`` for an evaluation-only campaign).
        calibration_sources: benign-only validation sources for the detectors' thresholds: that many utterances
            (seeded draw) of ``calibration_source`` (default: ``source``) stage ``calibration_stage`` that are not
            attacked are served in the val split as clean + benign-attack (AG) examples, never attacked adversarially.
            A false-positive-rate threshold needs only benign scores, and 5 % of 16 benign inputs is none of them.
        benign_train_sources: benign-only training sources, drawn like the calibration sources (from the same pool,
            never one of them) and served in the train split as clean + benign-attack examples: benign audio costs
            one query, and the detector sees more of what it must not flag (docs/detector.md measures it).
        prior: the attacker's transfer prior, as keyword arguments of ``lit_modules.surrogate.build_surrogate`` (e.g.
            ``{"members": [{"backend": "conformer_ctc", "seed": 1}]}``; its checkpoints must exist); it runs in a
            process of its own during generation and reaches the attacks that use one (``Attack.uses_prior``);
            prior_factory: the dotted path that builds it from those arguments.
    """

    def __init__(self, source: LibriSpeechDataModule | None = None, source_stage: str = "test",
                 system: dict | None = None, system_factory: str = DEFAULT_SYSTEM_FACTORY,
                 attacks: list[AttackSpec] | None = None, goal: GoalSpec | None = None,
                 budget: PerturbationBudget | None = None, query_budget: int = 2_000, seed: int = 0,
                 split_fractions: tuple[float, float, float] = (0.6, 0.2, 0.2), include_clean: bool = True,
                 batch_size: int = 16, num_workers: int = 0, cache_root: str | None = None,
                 progress: bool = True, attack_splits: tuple[str, ...] = STAGES, prior: dict | None = None,
                 prior_factory: str = DEFAULT_PRIOR_FACTORY, calibration_sources: int = 0,
                 calibration_source: LibriSpeechDataModule | None = None, calibration_stage: str = "val",
                 benign_train_sources: int = 0, split_method: str = "hash") -> None:
        super().__init__()
        if abs(sum(split_fractions) - 1.0) > 1e-6 or min(split_fractions) < 0:
            raise ValueError(f"split_fractions must be >= 0 and sum to 1, got {split_fractions}")
        if split_method not in ("hash", "rank"):
            raise ValueError(f"split_method must be 'hash' or 'rank', got {split_method!r}")
        self.split_method = split_method
        self._rank_cache: dict[str, str] | None = None
        self.source = source or LibriSpeechDataModule()
        self.source_stage = source_stage
        self.system = system if system is not None else {"backend": "conformer_ctc"}
        self.system_factory = system_factory
        self.attacks = attacks if attacks is not None else _default_attacks()
        self.goal, self.budget = goal or GoalSpec(), budget or PerturbationBudget()
        self.query_budget, self.seed, self.split_fractions = query_budget, seed, tuple(split_fractions)
        self.include_clean, self.batch_size, self.num_workers = include_clean, batch_size, num_workers
        self.cache_root = Path(cache_root) if cache_root else default_cache_dir() / "adversarial"
        self.progress = progress
        unknown = sorted(set(attack_splits) - set(STAGES))
        if unknown:
            raise ValueError(f"attack_splits must be among {STAGES}, got {unknown}")
        self.attack_splits = tuple(attack_splits)
        self.prior, self.prior_factory = prior, prior_factory
        if calibration_sources < 0:
            raise ValueError(f"calibration_sources must be >= 0, got {calibration_sources}")
        if calibration_stage not in STAGES:
            raise ValueError(f"calibration_stage must be one of {STAGES}, got {calibration_stage!r}")
        if benign_train_sources < 0:
            raise ValueError(f"benign_train_sources must be >= 0, got {benign_train_sources}")
        self.calibration_sources, self.calibration_stage = calibration_sources, calibration_stage
        self.benign_train_sources = benign_train_sources
        self.calibration_source = calibration_source
        self.examples: dict[str, list[LabelledExample]] = {}
        self.campaign_dirs: list[Path] = []

    def launcher(self, rank: int = 0, world_size: int = 1) -> CampaignLauncher:
        """The campaign setting of this module (its system, goal, budget, seed and store folder)."""
        return CampaignLauncher(self.system, self.cache_root, self.query_budget, self.seed, self.system_factory,
                                self.prior_factory, rank, world_size, self.progress)

    @property
    def system_label(self) -> str:
        return self.launcher().label

    def jobs(self) -> list[CampaignJob]:
        """One campaign per attack of the mix: adversarial attacks on the attacked sources, benign ones also on the
        benign-only sources; the transfer prior reaches the attacks that use it."""
        attacked, benign = self.sources(), self.benign_sources()
        return [CampaignJob(spec.attack, attacked if spec.adversarial else attacked + benign, self.goal, self.budget,
                            self._prior_of(spec)) for spec in self.attacks]

    def split(self, source_id: str) -> str:
        """The split (train / val / test) of one of the source stage's utterances."""
        if self.split_method == "hash":
            return split_of(source_id, self.split_fractions, self.seed)
        return self._ranked()[source_id]

    def _ranked(self) -> dict[str, str]:
        if self._rank_cache is None:
            ids = [u.utterance_id for u in self.source.stage_utterances(self.source_stage)]
            self._rank_cache = rank_splits(ids, self.split_fractions, self.seed)
        return self._rank_cache

    def split_sizes(self) -> dict[str, int]:
        """How many of the source stage's utterances each split holds (attacked or not)."""
        sizes = {stage: 0 for stage in STAGES}
        for u in self.source.stage_utterances(self.source_stage):
            sizes[self.split(u.utterance_id)] += 1
        return sizes

    def sources(self) -> list[SourceUtterance]:
        return [SourceUtterance(u.utterance_id, str(u.audio_path), u.transcript)
                for u in self.source.stage_utterances(self.source_stage)
                if self.split(u.utterance_id) in self.attack_splits]

    def benign_sources(self) -> list[SourceUtterance]:
        """The benign-only sources (calibration, then training): their examples are clean and benign attacks only."""
        return self.benign_calibration_sources() + self.benign_training_sources()

    def _benign_pool(self) -> list:
        """Utterances of the calibration stage that are not attacked sources (where benign-only sources come from)."""
        attacked = {u.utterance_id for u in self.source.stage_utterances(self.source_stage)}
        return [u for u in (self.calibration_source or self.source).stage_utterances(self.calibration_stage)
                if u.utterance_id not in attacked]

    def _draw_benign(self, pool: list, size: int, name: str, seed: int) -> list[SourceUtterance]:
        if len(pool) < size:
            raise ValueError(f"{name}={size} but only {len(pool)} utterances of stage {self.calibration_stage!r} are "
                             "left (not attacked sources, not already drawn)")
        return [SourceUtterance(u.utterance_id, str(u.audio_path), u.transcript)
                for u in seeded_subset(pool, size, seed)]

    def benign_calibration_sources(self) -> list[SourceUtterance]:
        """The benign-only validation sources (``calibration_sources`` of them, none of them attacked sources)."""
        if not self.calibration_sources:
            return []
        return self._draw_benign(self._benign_pool(), self.calibration_sources, "calibration_sources", self.seed)

    def benign_training_sources(self) -> list[SourceUtterance]:
        """The benign-only training sources (``benign_train_sources``; neither attacked nor calibration sources)."""
        if not self.benign_train_sources:
            return []
        taken = {s.utterance_id for s in self.benign_calibration_sources()}
        pool = [u for u in self._benign_pool() if u.utterance_id not in taken]
        return self._draw_benign(pool, self.benign_train_sources, "benign_train_sources", self.seed + 1)

    def _prior_of(self, spec: AttackSpec) -> dict | None:
        """The prior spec an attack of the mix runs with (None: no prior, or an attack that cannot use one)."""
        return self.prior if self.prior is not None and spec.attack.uses_prior else None

    def campaign_plans(self) -> list["AdversarialDataModule"]:
        """What generates this module's data (``campaigns.launcher.generate`` of each): the module itself."""
        return [self]

    def setup(self, stage: str | None = None) -> None:
        if self.examples:
            return
        if self.trainer is not None and self.trainer.world_size > 1:  # every rank has finished its shard
            self.trainer.strategy.barrier("adversarial-generation")
        self.check_generated()
        self.examples = self._collect()

    def check_generated(self) -> None:
        """Raise ``CampaignsNotGeneratedError`` naming each campaign that lacks examples."""
        launcher = self.launcher()
        missing = [f"{launcher.store(job).directory}: {len(pending)} of {len(job.sources)} sources not attacked"
                   for job in self.jobs() if (pending := launcher.pending(job))]
        if missing:
            raise CampaignsNotGeneratedError(
                "the adversarial data module only reads finished campaigns, and these are not: " + "; ".join(missing)
                + ". Generate them first: `python train.py fit|test ...` does it before training or testing, and in "
                "code `campaigns.launcher.generate(datamodule)` (each DDP rank: generate(datamodule, rank, world)).")

    def campaigns(self) -> list[tuple[AttackSpec, AdversarialCache]]:
        """Each attack of the mix with its campaign's cache (records: transcripts, SNR, queries, success)."""
        launcher = self.launcher()  # (a store is named by its setting, not by its sources)
        return [(spec, launcher.store(CampaignJob(spec.attack, [], self.goal, self.budget, self._prior_of(spec))))
                for spec in self.attacks]

    def _collect(self) -> dict[str, list[LabelledExample]]:
        sources = {s.utterance_id: s for s in self.sources()}
        eligible = {i for i, s in sources.items() if self.goal.eligible(s)}
        examples: dict[str, list[LabelledExample]] = {stage: [] for stage in STAGES}
        if self.include_clean:
            for source_id in sorted(eligible):
                examples[self.split(source_id)].append(
                    LabelledExample(sources[source_id].audio_path, 0, "clean", sources[source_id].transcript, source_id,
                                    f"{source_id}/clean"))
        for spec, cache in self.campaigns():
            self.campaign_dirs.append(cache.directory)
            for record in cache.records():
                source_id = record["utterance_id"]
                if source_id not in eligible or (spec.adversarial and spec.only_successful and not record["success"]):
                    continue
                examples[self.split(source_id)].append(LabelledExample(
                    str(cache.directory / record["audio"]), int(spec.adversarial), spec.attack.name,
                    sources[source_id].transcript, source_id, f"{source_id}/{cache.directory.name}"))
        for stage, benign in (("val", self.benign_calibration_sources()), ("train", self.benign_training_sources())):
            if benign:
                examples[stage].extend(self._benign_examples({s.utterance_id: s for s in benign}))
        counts = {stage: {} for stage in STAGES}
        for stage in STAGES:
            for e in examples[stage]:
                counts[stage][e.kind] = counts[stage].get(e.kind, 0) + 1
        log.debug("adversarial data %s: %s", self.system_label, counts)
        return examples

    def _benign_examples(self, sources: dict[str, SourceUtterance]) -> list[LabelledExample]:
        """Clean (if ``include_clean``) and benign-attack examples of benign-only sources, all label 0."""
        out = []
        if self.include_clean:
            out += [LabelledExample(s.audio_path, 0, "clean", s.transcript, i, f"{i}/clean")
                    for i, s in sorted(sources.items())]
        for spec, cache in self.campaigns():
            if spec.adversarial:
                continue
            out += [LabelledExample(str(cache.directory / r["audio"]), 0, spec.attack.name,
                                    sources[r["utterance_id"]].transcript, r["utterance_id"],
                                    f"{r['utterance_id']}/{cache.directory.name}")
                    for r in cache.records() if r["utterance_id"] in sources]
        return out

    def attacked_records(self, cache: AdversarialCache) -> list[dict]:
        """``cache``'s records of this module's attacked sources (a benign campaign also holds the benign-only
        sources', which statistics over the attacked sources must leave out)."""
        ids = {s.utterance_id for s in self.sources()}
        return [r for r in cache.records() if r["utterance_id"] in ids]

    @property
    def num_train_examples(self) -> int:
        """Training-set size N (scales the KL term of the ELBO)."""
        if not self.examples:
            self.setup("fit")
        return len(self.examples["train"])

    def count_train_examples(self, kinds: tuple[str, ...] | None = None) -> int:
        """Training examples (of the given kinds, default all): N for the ELBO's KL / N."""
        if not self.examples:
            self.setup("fit")
        return sum(1 for e in self.examples["train"] if kinds is None or e.kind in kinds)

    def _loader(self, stage: str, shuffle: bool) -> DataLoader:
        if not self.examples[stage]:
            raise ValueError(f"the {stage} split has no examples (sources: {len(self.sources())}, "
                             f"fractions {self.split_fractions}); attack more source utterances")
        return DataLoader(LabelledAudioDataset(self.examples[stage], self.source.sample_rate),
                          batch_size=self.batch_size, shuffle=shuffle, collate_fn=collate_labelled,
                          num_workers=self.num_workers, generator=torch.Generator().manual_seed(self.seed))

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", False)
