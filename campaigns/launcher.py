"""The one campaign launcher: provision the target system, then run (or finish) a list of campaigns through one
query oracle. ``python attack.py``, the adversarial data's generation step and the benchmarks all start attacks here.

The target system, its provisioning step and the attacker's prior are named by dotted path (built in the oracle's,
a child's and the attacker's process), so this package never imports a model.
"""

from __future__ import annotations

import dataclasses
import functools
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from attacks.attacker_process import AttackerProcess
from attacks.base import Attack
from attacks.constraints import PerturbationBudget
from attacks.oracle import DEFAULT_QUERY_BUDGET, OracleServer
from attacks.process_host import run_in_child
from campaigns.campaign import (GoalSpec, PriorSpec, SourceUtterance, build_by_name, campaign_cache, pending_sources,
                                run_campaign)
from campaigns.store import AdversarialCache
from core.hashing import config_hash

DEFAULT_SYSTEM_FACTORY = "lit_modules.target_system.build_system"
DEFAULT_SYSTEM_PREPARER = "lit_modules.target_system.prepare_system"  # trains a missing small backend
DEFAULT_PRIOR_FACTORY = "lit_modules.surrogate.build_surrogate"


def system_label(system: dict) -> str:
    """Readable name of a target system (its scalar settings), plus a hash when it holds a defense / detector spec:
    campaigns against differently defended systems never share a store folder."""
    label = "-".join(str(v) for v in system.values() if isinstance(v, (str, int, float))) or "system"
    nested = {k: v for k, v in system.items() if not isinstance(v, (str, int, float))}
    return f"{label}-{config_hash(nested)[:8]}" if nested else label


@dataclass
class CampaignJob:
    """One campaign: an attack with a goal under a perturbation budget on sources; ``prior``: the keyword arguments
    of the attacker's transfer prior (its surrogate, built by the launcher's ``prior_factory``), or None."""

    attack: Attack
    sources: list[SourceUtterance]
    goal: GoalSpec = field(default_factory=GoalSpec)
    budget: PerturbationBudget = field(default_factory=PerturbationBudget)
    prior: dict | None = None


@dataclass
class CampaignLauncher:
    """The setting every campaign of one launch shares.

    system: keyword arguments of ``system_factory`` (built in the oracle's process); query_budget, seed: queries per
    source and the seed of every draw; cache_root: where the stores live; rank / world_size: this process's shard
    of the sources under DDP; progress: tqdm bars.
    """

    system: dict
    cache_root: Path
    query_budget: int = DEFAULT_QUERY_BUDGET
    seed: int = 0
    system_factory: str = DEFAULT_SYSTEM_FACTORY
    prior_factory: str = DEFAULT_PRIOR_FACTORY
    rank: int = 0
    world_size: int = 1
    progress: bool = True

    @property
    def label(self) -> str:
        return system_label(self.system)

    def prepare(self, in_child: bool = False) -> None:
        """The explicit provisioning step: ``prepare_system(**system)`` (trains a missing small backend, checks a
        pretrained one is on this machine) when the system is the default factory's; other factories prepare
        themselves. ``in_child``: in a process of its own, so that nothing of it stays in this one."""
        if self.system_factory != DEFAULT_SYSTEM_FACTORY:
            return
        call = functools.partial(build_by_name, DEFAULT_SYSTEM_PREPARER, **self.system, world_size=self.world_size)
        if in_child:
            run_in_child(call, name="backend-training")
        else:
            call()

    def store(self, job: CampaignJob) -> AdversarialCache:
        """The store folder of ``job``'s campaign (created empty if new)."""
        return campaign_cache(self.label, job.attack, job.goal, job.budget, self.cache_root, self.query_budget,
                              self.seed, job.prior)

    def pending(self, job: CampaignJob) -> list[SourceUtterance]:
        """``job``'s sources of this rank's shard that its store does not hold yet."""
        return pending_sources(job.sources, job.goal, self.store(job), self.rank, self.world_size)

    def launch(self, jobs: list[CampaignJob], prepare: bool = True, prepare_in_child: bool = False,
               threads: int | None = None) -> list[AdversarialCache]:
        """Run (or finish) every job for this rank's shard; returns their stores. The system is prepared once, and
        only when something is left to attack; one oracle server serves every campaign and one attacker process
        per prior setting runs their attacks."""
        server, attackers = None, {}
        try:
            for job in jobs:
                if not self.pending(job):
                    continue
                if server is None:
                    if prepare:
                        self.prepare(in_child=prepare_in_child)
                    server = OracleServer(self._factory(), threads=threads)
                prior = None if job.prior is None else PriorSpec(
                    functools.partial(build_by_name, self.prior_factory, **job.prior), job.prior)
                key = None if prior is None else config_hash(job.prior)
                if key not in attackers:
                    attackers[key] = AttackerProcess(None if prior is None else prior.factory, threads=threads)
                run_campaign(job.sources, self._factory(), self.label, job.attack, job.goal, job.budget,
                             self.cache_root, query_budget=self.query_budget, seed=self.seed, rank=self.rank,
                             world_size=self.world_size, progress=self.progress, prior=prior, server=server,
                             attacker=attackers[key], threads=threads)
        finally:
            for attacker in attackers.values():
                attacker.close()
            if server is not None:
                server.close()
        return [self.store(job) for job in jobs]

    def _factory(self):
        return functools.partial(build_by_name, self.system_factory, **self.system)


class CampaignPlan(Protocol):
    """What names a set of campaigns (e.g. ``datamodules.adversarial.AdversarialDataModule``): their shared setting
    and one job per campaign."""

    def launcher(self, rank: int = 0, world_size: int = 1) -> CampaignLauncher: ...

    def jobs(self) -> list[CampaignJob]: ...


def launch_side_by_side(launcher: CampaignLauncher, jobs: list[CampaignJob], processes: int,
                        threads: int | None = None) -> list[AdversarialCache]:
    """Run (or finish) ``jobs`` as ``processes`` shards of one machine (rank r attacks sources r, r + processes, ...),
    each with its own oracle and attacker processes, all at once: several oracles keep one GPU busy, where one
    attack's sequential queries would leave it idle. Returns the jobs' stores (they read every shard's records)."""
    if processes == 1:
        return launcher.launch(jobs, threads=threads)
    shards = [dataclasses.replace(launcher, rank=rank, world_size=processes) for rank in range(processes)]
    if any(shard.pending(job) for shard in shards for job in jobs):
        shards[0].prepare()  # once, before any shard starts: a shard never trains
    with ThreadPoolExecutor(processes) as pool:  # each thread only waits on its own oracle's and attacker's pipes
        list(pool.map(lambda shard: shard.launch(jobs, prepare=False, threads=threads), shards))
    return [launcher.store(job) for job in jobs]


def generate(plan: CampaignPlan, rank: int = 0, world_size: int = 1) -> list[AdversarialCache]:
    """Run (or finish) every campaign ``plan`` names, for this rank's shard of the sources; returns their stores."""
    return plan.launcher(rank, world_size).launch(plan.jobs())
