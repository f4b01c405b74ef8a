"""Attack base: an attack object holds only hyper-parameters; what it attacks (an oracle session), the clean audio,
the goal and the constraints are given at call time. Attacks see the oracle and nothing else."""

from __future__ import annotations

import math
import time
from abc import ABC, abstractmethod

import numpy as np
import torch

from attacks.constraints import Constraints
from attacks.goals import Evaluation, Goal
from attacks.oracle import QueryBudgetExceeded, QueryOracle
from attacks.result import AttackResult
from attacks.transfer_prior import TransferPrior

MIN_DURATION_S = 0.1
SILENCE_RMS = 1e-4


class SearchState:
    """Best feasible candidate so far, success, and the (queries, objective, success) history; ``prior``: the
    attacker's transfer prior, if it has one (attacks that can use it read it here)."""

    def __init__(self, oracle: QueryOracle, clean: torch.Tensor, prior: TransferPrior | None = None) -> None:
        self.oracle = oracle
        self.prior = prior
        self.best_delta = torch.zeros_like(clean)
        self.best_objective = math.inf
        self.best_transcript: str | None = None
        self.best_detector: float | None = None
        self.success = False
        self.history: list[tuple[int, float, bool]] = []

    def observe(self, deltas: torch.Tensor, evaluation: Evaluation) -> bool:
        """Record an evaluated population [P, T]; returns True once the goal is met (a success is kept over any
        better-scoring failure)."""
        order = np.lexsort((evaluation.objective, ~evaluation.success))  # successes first, then by objective
        index = int(order[0])
        found = bool(evaluation.success[index])
        objective = float(evaluation.objective[index])
        if (found and not self.success) or (found == self.success and objective < self.best_objective):
            self.best_delta = deltas[index].clone()
            self.best_objective = objective
            self.best_transcript = evaluation.transcripts[index]
            if evaluation.detector_scores is not None:
                self.best_detector = float(evaluation.detector_scores[index])
            self.success = self.success or found
        self.history.append((self.oracle.queries_used, self.best_objective, self.success))
        return self.success


class Attack(ABC):
    """Subclasses implement ``_search``; ``__call__`` validates, runs, stops cleanly at the budget and measures."""

    name: str = "attack"
    revision: int = 1  # bumped when the search changes, so cached campaigns of the old search are not reused
    uses_prior: bool = False  # whether a transfer prior changes the search (campaigns key their caches on it then)
    bounded: bool = True  # whether its output must respect the perturbation budget and the MFCC floor (campaigns check)

    def __call__(self, oracle: QueryOracle, clean, goal: Goal, constraints: Constraints | None = None,
                 seed: int = 0, transcript_clean: str = "", prior: TransferPrior | None = None) -> AttackResult:
        """Attack one utterance. ``clean``: [T] float waveform in [-1, 1] at the oracle's sample rate; ``prior``:
        an optional transfer prior (the attacker's own surrogate; must not be the attacked model)."""
        constraints = constraints or Constraints(sample_rate=oracle.sample_rate)
        clean = torch.as_tensor(np.asarray(clean, np.float32)).flatten()
        self._check(oracle, clean)
        if prior is not None:
            prior.check_distinct(oracle)
        generator = torch.Generator().manual_seed(int(seed))
        state = SearchState(oracle, clean, prior)
        started, system_before = time.perf_counter(), oracle.system_seconds
        with torch.inference_mode():
            try:
                self._search(oracle, clean, goal, constraints, generator, state)
            except QueryBudgetExceeded:
                pass  # the budget is spent: keep the best result found
            adversarial = (clean + state.best_delta).clamp(-1, 1)
            measured = constraints.measure(clean, adversarial)
        return AttackResult(
            attack=self.name, adversarial=adversarial.numpy().astype(np.float32), success=state.success,
            queries=oracle.queries_used, transcript_clean=transcript_clean,
            transcript_adversarial=state.best_transcript if state.best_transcript is not None else transcript_clean,
            objective=state.best_objective, **measured, detector_score=state.best_detector, history=state.history, wall_time_s=time.perf_counter() - started,
            system_time_s=oracle.system_seconds - system_before,
        )

    @staticmethod
    def _check(oracle: QueryOracle, clean: torch.Tensor) -> None:
        if clean.numel() < MIN_DURATION_S * oracle.sample_rate:
            raise ValueError(f"clean audio has {clean.numel()} samples: shorter than {MIN_DURATION_S} s, nothing to attack")
        if not torch.isfinite(clean).all():
            raise ValueError("clean audio contains NaN or infinite samples")
        if float(clean.pow(2).mean().sqrt()) < SILENCE_RMS:
            raise ValueError("clean audio is silent (RMS < 1e-4): there is no speech to attack")
        if oracle.remaining < 1:
            raise ValueError(f"the oracle session has no queries left (budget {oracle.budget})")

    @abstractmethod
    def _search(self, oracle: QueryOracle, clean: torch.Tensor, goal: Goal, constraints: Constraints,
                generator: torch.Generator, state: SearchState) -> None:
        """Query the oracle, ``state.observe`` each evaluated population; return when successful or done."""

    def describe(self) -> dict:
        """Name and hyper-parameters (for cache keys and tables)."""
        params = {}
        for key, value in vars(self).items():
            if not key.startswith("_"):
                params[key] = value.describe() if hasattr(value, "describe") else value
        return {"attack": self.name, "revision": self.revision, **params}
