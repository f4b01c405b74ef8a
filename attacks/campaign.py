"""Run one attack over many source utterances through one oracle server, caching every finished example.

Resumable (finished utterances are skipped), shardable (rank r of w attacks sources[r::w] of the sorted list, so
each utterance is attacked exactly once), and seeded per utterance (the result does not depend on order or sharding).
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import time
from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np
import soundfile
from tqdm import tqdm

from attacks.base import Attack
from attacks.cache import AdversarialCache
from attacks.constraints import Constraints, PerturbationBudget
from attacks.goals import TARGET_PHRASE, DetectorEvasion, Goal, Targeted, Untargeted
from attacks.oracle import DEFAULT_QUERY_BUDGET, OracleServer
from attacks.transfer_prior import TransferPrior
from datamodules.text import normalize_transcript

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SourceUtterance:
    """A clean utterance to attack (plain and picklable)."""

    utterance_id: str
    audio_path: str
    transcript: str


@dataclass(frozen=True)
class GoalSpec:
    """kind: ``untargeted`` or ``targeted``; adaptive: also evade the system's detector."""

    kind: str = "untargeted"
    target: str = TARGET_PHRASE
    min_wer: float = 0.5
    adaptive: bool = False
    evasion_weight: float = 10.0
    evasion_margin: float = 0.05
    detector_samples: int = 4

    def __post_init__(self) -> None:
        if self.kind not in ("untargeted", "targeted"):
            raise ValueError(f"goal kind must be 'untargeted' or 'targeted', got {self.kind!r}")

    def build(self, clean_transcript: str) -> Goal:
        goal: Goal = Targeted(self.target) if self.kind == "targeted" else Untargeted(clean_transcript, self.min_wer)
        if self.adaptive:
            goal = DetectorEvasion(goal, self.evasion_weight, self.evasion_margin, self.detector_samples)
        return goal

    def eligible(self, source: SourceUtterance) -> bool:
        """Targeted attacks skip sources whose transcript already contains the target."""
        return self.kind != "targeted" or normalize_transcript(self.target) not in normalize_transcript(source.transcript)

    @property
    def label(self) -> str:
        return ("targeted" if self.kind == "targeted" else "untargeted") + ("-adaptive" if self.adaptive else "")


def build_by_name(dotted_path: str, **kwargs):
    """Import ``package.module.function`` and call it: a picklable system factory is
    ``functools.partial(build_by_name, "lit_modules.target_system.build_system", backend=...)``; the import happens
    in the oracle's process, never in the attacker's."""
    module, _, name = dotted_path.rpartition(".")
    return getattr(importlib.import_module(module), name)(**kwargs)


def utterance_seed(seed: int, utterance_id: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{seed}:{utterance_id}".encode()).digest()[:4], "little")


def load_source(source: SourceUtterance, sample_rate: int) -> np.ndarray:
    from datamodules.audio_io import load_audio

    return load_audio(source.audio_path, sample_rate=sample_rate).numpy()


def campaign_cache(system_label: str, attack: Attack, goal: GoalSpec, budget: PerturbationBudget, cache_root,
                   query_budget: int = DEFAULT_QUERY_BUDGET, seed: int = 0,
                   prior: TransferPrior | dict | None = None) -> AdversarialCache:
    """The cache folder of one campaign configuration (created empty if new). ``prior``: the live transfer prior
    (keyed by its ``describe()``: label and fingerprint) or the spec it is built from (keyed as it is)."""
    config = {"system": system_label, "attack": attack.describe(), "goal": asdict(goal), "budget": asdict(budget),
              "query_budget": query_budget, "seed": seed}
    if prior is not None:  # (no key otherwise: campaigns without a prior keep their folders)
        config["prior"] = prior if isinstance(prior, dict) else prior.describe()
    label = f"{system_label}-{attack.name}{'-prior' if prior is not None else ''}-{goal.label}-{budget.label}"
    return AdversarialCache(cache_root, config, label=label)


def pending_sources(sources: list[SourceUtterance], goal: GoalSpec, cache: AdversarialCache, rank: int = 0,
                    world_size: int = 1) -> list[SourceUtterance]:
    """This rank's share (``[rank::world_size]`` of the eligible sources sorted by id) not yet in ``cache``."""
    eligible = sorted((s for s in sources if goal.eligible(s)), key=lambda s: s.utterance_id)
    skipped = len(sources) - len(eligible)
    if skipped:
        log.info("%d sources already contain the target %r: excluded", skipped, goal.target)
    done = cache.done_ids()
    return [s for s in eligible[rank::world_size] if s.utterance_id not in done]


def run_campaign(sources: list[SourceUtterance], system_factory: Callable, system_label: str, attack: Attack,
                 goal: GoalSpec, budget: PerturbationBudget, cache_root, query_budget: int = DEFAULT_QUERY_BUDGET,
                 seed: int = 0, rank: int = 0, world_size: int = 1, progress: bool = True,
                 server: OracleServer | None = None, prior: TransferPrior | None = None,
                 prior_key: dict | None = None) -> AdversarialCache:
    """Attack every eligible source (this rank's shard), skipping finished ones; returns the cache. ``prior``: the
    attacker's transfer prior (its own surrogate model), passed to every attack call; ``prior_key``: what names it
    in the cache key instead of its ``describe()`` (the spec it was built from, so that readers need not start it)."""
    if query_budget < 1:
        raise ValueError(f"query budget must be >= 1, got {query_budget}")
    cache = campaign_cache(system_label, attack, goal, budget, cache_root, query_budget, seed,
                           prior_key if prior is not None and prior_key is not None else prior)
    todo = pending_sources(sources, goal, cache, rank, world_size)
    if not todo:
        return cache
    own_server = server is None
    server = server or OracleServer(system_factory)
    constraints = Constraints(budget, sample_rate=server.info["sample_rate"])
    successes = queries = 0
    started = time.perf_counter()
    bar = tqdm(todo, desc=f"{attack.name} {goal.label} {budget.label}", disable=not progress, unit="utt")
    try:
        for count, source in enumerate(bar, start=1):
            clean = load_source(source, server.info["sample_rate"])
            session = server.session(query_budget)
            clean_transcript = session.transcribe(clean)[0]
            result = attack(session, clean, goal.build(clean_transcript), constraints,
                            seed=utterance_seed(seed, source.utterance_id), transcript_clean=clean_transcript,
                            prior=prior)
            record = {**result.summary(), "reference": source.transcript, "source_audio": source.audio_path,
                      "budget": budget.label, "goal": goal.label, "system": system_label}
            cache.write(source.utterance_id, result.adversarial, server.info["sample_rate"], record, rank=rank)
            successes += result.success
            queries += result.queries
            bar.set_postfix(success=f"{successes / count:.0%}", qps=f"{queries / (time.perf_counter() - started):.0f}")
    finally:
        if own_server:
            server.close()
    return cache


def read_example(cache: AdversarialCache, record: dict) -> np.ndarray:
    audio, _ = soundfile.read(str(cache.directory / record["audio"]), dtype="float32")
    return audio
