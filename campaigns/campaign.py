"""Run one attack over many source utterances through one oracle server, caching every finished example.

Resumable (finished utterances are skipped), shardable (rank r of w attacks sources[r::w] of the sorted list, so
each utterance is attacked exactly once), and seeded per utterance (the result does not depend on order or sharding).
The campaign owns the oracle server; each attack call runs in the attacker's process (``attacks.attacker_process``)
on a session handed over to it, and what comes back is checked before it is recorded.
"""

from __future__ import annotations

import importlib
import logging
import time
from dataclasses import asdict, dataclass, replace
from typing import Callable

import numpy as np
import soundfile
import torch
from tqdm import tqdm

from attacks.attacker_process import AttackerError, AttackerProcess, AttackJob
from attacks.base import Attack
from campaigns.store import AdversarialCache
from attacks.constraints import Constraints, PerturbationBudget
from attacks.goals import CRITERIA, TARGET_PHRASE, DetectorEvasion, Goal, Targeted, Untargeted
from attacks.oracle import DEFAULT_QUERY_BUDGET, OracleServer
from attacks.result import AttackResult
from core.hashing import seeded_int
from core.logs import progress_options
from core.text import normalize_transcript

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SourceUtterance:
    """A clean utterance to attack (plain and picklable)."""

    utterance_id: str
    audio_path: str
    transcript: str


@dataclass(frozen=True)
class GoalSpec:
    """kind: ``untargeted`` or ``targeted``; adaptive: also evade the system's detector; criterion: when a targeted
    attack succeeds (``exact`` transcript, the target's words ``contains``-ed in it, or target ``wer`` <= max_wer)."""

    kind: str = "untargeted"
    target: str = TARGET_PHRASE
    min_wer: float = 0.5
    adaptive: bool = False
    evasion_weight: float = 10.0
    evasion_margin: float = 0.05
    detector_samples: int = 4
    criterion: str = "exact"
    max_wer: float = 0.34

    def __post_init__(self) -> None:
        if self.kind not in ("untargeted", "targeted"):
            raise ValueError(f"goal kind must be 'untargeted' or 'targeted', got {self.kind!r}")
        if self.criterion not in CRITERIA:
            raise ValueError(f"goal criterion must be one of {CRITERIA}, got {self.criterion!r}")

    def build(self, clean_transcript: str) -> Goal:
        goal: Goal = (Targeted(self.target, self.criterion, self.max_wer) if self.kind == "targeted"
                      else Untargeted(clean_transcript, self.min_wer))
        if self.adaptive:
            goal = DetectorEvasion(goal, self.evasion_weight, self.evasion_margin, self.detector_samples)
        return goal

    def eligible(self, source: SourceUtterance) -> bool:
        """Targeted attacks skip sources whose transcript already contains the target."""
        return self.kind != "targeted" or normalize_transcript(self.target) not in normalize_transcript(source.transcript)

    @property
    def label(self) -> str:
        criterion = {"exact": "", "contains": "-contains", "wer": f"-wer{self.max_wer:g}"}[self.criterion]
        return (("targeted" + criterion if self.kind == "targeted" else "untargeted")
                + ("-adaptive" if self.adaptive else ""))

    def key(self) -> dict:
        """What identifies the goal in a campaign's cache key: its fields, the success criterion's only where it is
        not the default ``exact`` (so campaigns cached before criteria existed keep their folders)."""
        fields = asdict(self)
        if self.criterion == "exact":
            del fields["criterion"], fields["max_wer"]
        return fields


def build_by_name(dotted_path: str, **kwargs):
    """Import ``package.module.function`` and call it: a picklable system factory is
    ``functools.partial(build_by_name, "lit_modules.target_system.build_system", backend=...)``; the import happens
    in the oracle's process, never in the attacker's."""
    module, _, name = dotted_path.rpartition(".")
    return getattr(importlib.import_module(module), name)(**kwargs)


def utterance_seed(seed: int, utterance_id: str) -> int:
    return seeded_int(seed, utterance_id)


def load_source(source: SourceUtterance, sample_rate: int) -> np.ndarray:
    from core.audio_io import load_audio

    return load_audio(source.audio_path, sample_rate=sample_rate).numpy()


@dataclass(frozen=True)
class PriorSpec:
    """The attacker's transfer prior for a campaign: ``factory`` (picklable zero-argument callable building a
    ``Surrogate``; started inside the attacker's process) and ``key``, what names it in cache keys (e.g. the keyword
    arguments it is built from)."""

    factory: Callable
    key: dict


class CampaignIntegrityError(RuntimeError):
    """An attack returned something the campaign will not record (audio outside its budget, say); the examples
    finished before it stay recorded."""


def campaign_cache(system_label: str, attack: Attack, goal: GoalSpec, budget: PerturbationBudget, cache_root,
                   query_budget: int = DEFAULT_QUERY_BUDGET, seed: int = 0,
                   prior: dict | None = None) -> AdversarialCache:
    """The cache folder of one campaign configuration (created empty if new). ``prior``: the key of the transfer
    prior the attack runs with (``PriorSpec.key``), or None."""
    config = {"system": system_label, "attack": attack.describe(), "goal": goal.key(), "budget": asdict(budget),
              "query_budget": query_budget, "seed": seed}
    if prior is not None:  # (no key otherwise: campaigns without a prior keep their folders)
        config["prior"] = prior
    label = f"{system_label}-{attack.name}{'-prior' if prior is not None else ''}-{goal.label}-{budget.label}"
    return AdversarialCache(cache_root, config, label=label)


def shard_of(sources: list[SourceUtterance], goal: GoalSpec, rank: int = 0,
             world_size: int = 1) -> list[SourceUtterance]:
    """Rank ``rank``'s share of the eligible sources: ``[rank::world_size]`` of them sorted by id (disjoint across
    ranks, together all of them)."""
    if not 0 <= rank < world_size:
        raise ValueError(f"rank must be in [0, world_size={world_size}), got {rank}")
    eligible = sorted((s for s in sources if goal.eligible(s)), key=lambda s: s.utterance_id)
    skipped = len(sources) - len(eligible)
    if skipped:
        log.debug("%d sources already contain the target %r: excluded", skipped, goal.target)
    return eligible[rank::world_size]


def pending_sources(sources: list[SourceUtterance], goal: GoalSpec, cache: AdversarialCache, rank: int = 0,
                    world_size: int = 1) -> list[SourceUtterance]:
    """This rank's share (``shard_of``) not yet in ``cache``."""
    done = cache.done_ids()
    return [s for s in shard_of(sources, goal, rank, world_size) if s.utterance_id not in done]


def checked_result(result: AttackResult, clean: np.ndarray, constraints: Constraints, queries_used: int,
                   utterance_id: str, bounded: bool = True) -> AttackResult:
    """The owner's view of an attack's result: the audio must be finite, in [-1, 1] and (``bounded``: for every
    attack but the noise control) inside the perturbation budget and the MFCC floor, measured here, not taken from
    the attack; the query count is the server's."""
    adversarial = np.asarray(result.adversarial, np.float32)
    if not np.isfinite(adversarial).all() or np.abs(adversarial).max() > 1.0:
        raise CampaignIntegrityError(f"{utterance_id}: the attack returned audio that is not finite or leaves [-1, 1]")
    clean_t, adversarial_t = torch.from_numpy(clean), torch.from_numpy(adversarial)
    measured = constraints.measure(clean_t, adversarial_t)
    budget = constraints.budget
    inside = bool(budget.size_ok(clean_t, (adversarial_t - clean_t)[None], tolerance=1e-4)[0])
    if bounded and (not inside or measured["mfcc_similarity"] < budget.min_mfcc_similarity - 1e-4):
        raise CampaignIntegrityError(
            f"{utterance_id}: the attack returned audio outside its budget {budget.label} / MFCC >= "
            f"{budget.min_mfcc_similarity} (SNR {measured['snr_db']:.2f} dB, l_inf {measured['linf']:.4f}, MFCC "
            f"{measured['mfcc_similarity']:.4f}); nothing was recorded for it")
    return replace(result, adversarial=adversarial, queries=queries_used, **measured)


def run_campaign(sources: list[SourceUtterance], system_factory: Callable, system_label: str, attack: Attack,
                 goal: GoalSpec, budget: PerturbationBudget, cache_root, query_budget: int = DEFAULT_QUERY_BUDGET,
                 seed: int = 0, rank: int = 0, world_size: int = 1, progress: bool = True,
                 server: OracleServer | None = None, prior: PriorSpec | None = None,
                 threads: int | None = None, attacker: AttackerProcess | None = None) -> AdversarialCache:
    """Attack every eligible source (this rank's shard), skipping finished ones; returns the cache.

    This process is the owner: it holds the oracle server (``server``, or one started from ``system_factory``),
    opens one session per source, asks it for the clean transcript (one query) and hands the session over to an
    ``AttackerProcess`` where the attack runs; the result is checked (``checked_result``) and recorded with the
    server's query count. ``prior``: the attacker's transfer prior, started in the attacker's process and passed to
    every attack call; ``threads``: torch threads of the attacker's process. ``server`` / ``attacker``: running ones
    to reuse across campaigns (the attacker must have been started with ``prior``'s factory when there is one)."""
    if query_budget < 1:
        raise ValueError(f"query budget must be >= 1, got {query_budget}")
    cache = campaign_cache(system_label, attack, goal, budget, cache_root, query_budget, seed,
                           None if prior is None else prior.key)
    todo = pending_sources(sources, goal, cache, rank, world_size)
    if not todo:
        return cache
    if attacker is not None and (prior is not None) != (attacker.prior_description is not None):
        raise ValueError("the attacker process given was started " + ("without" if prior else "with") +
                         " a transfer prior, this campaign runs " + ("with" if prior else "without") + " one")
    own_server, own_attacker = server is None, attacker is None
    server = server or OracleServer(system_factory)
    successes = queries = 0
    started = time.perf_counter()
    bar = tqdm(todo, desc=f"{attack.name} {goal.label} {budget.label}", unit="utt", **progress_options(progress))
    try:
        sample_rate = server.info["sample_rate"]
        constraints = Constraints(budget, sample_rate=sample_rate)
        attacker = attacker or AttackerProcess(None if prior is None else prior.factory, threads=threads)
        for count, source in enumerate(bar, start=1):
            clean = load_source(source, sample_rate)
            source_seed = utterance_seed(seed, source.utterance_id)
            session = server.session(query_budget, seed=source_seed)
            clean_transcript = session.transcribe(clean)[0]
            ticket = session.hand_over()
            job = AttackJob(attack, clean, goal.build(clean_transcript), budget, source_seed, clean_transcript,
                            use_prior=prior is not None)
            try:
                result = attacker.run(job, ticket)
            except AttackerError as error:
                raise AttackerError(f"{source.utterance_id} ({source.audio_path}): {error}") from None
            finally:
                ticket.connection.close()
                _, used = server.end(ticket.session_id)
            result = checked_result(result, clean, constraints, used, source.utterance_id, attack.bounded)
            record = {**result.summary(), "reference": source.transcript, "source_audio": source.audio_path,
                      "budget": budget.label, "goal": goal.label, "system": system_label}
            cache.write(source.utterance_id, result.adversarial, sample_rate, record, rank=rank)
            successes += result.success
            queries += result.queries
            bar.set_postfix(success=f"{successes / count:.0%}", qps=f"{queries / (time.perf_counter() - started):.0f}",
                            refresh=False)  # the bar redraws at its own pace (once a minute off a terminal)
    finally:
        if own_attacker and attacker is not None:
            attacker.close()
        if own_server:
            server.close()
    return cache


def read_example(cache: AdversarialCache, record: dict) -> np.ndarray:
    audio, _ = soundfile.read(str(cache.directory / record["audio"]), dtype="float32")
    return audio
