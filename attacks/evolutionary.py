"""AE: multi-objective evolutionary attack (Khare et al. 2019; query-efficient variant of Taori et al. 2019).

Population in a low-rate latent space (``LowRateBasis``), initialized uniformly in the budget's box; two objectives,
both minimized: the goal's attack loss and the acoustic dissimilarity 1 - MFCC cosine similarity. Selection is
NSGA-II: non-dominated sorting and crowding distance from pymoo, binary tournaments for parents, (mu + lambda)
survival, so the non-dominated front (which holds the best-loss candidate) is elitist. Offspring: uniform crossover
and Gaussian mutation of a fraction of coordinates whose rate follows Taori et al.'s momentum update
p <- momentum * p + beta / |change of the best loss|. Every candidate is projected into the budget and the MFCC
floor before it is queried. Optional final phase: zeroth-order gradient estimation (AZ) from the best candidate.
"""

from __future__ import annotations

import numpy as np
import torch
from pymoo.operators.survival.rank_and_crowding.metrics import calc_crowding_distance
from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting

from attacks.base import Attack, SearchState
from attacks.constraints import Constraints
from attacks.goals import Goal
from attacks.oracle import QueryOracle
from attacks.subspace import make_basis
from attacks.zeroth_order import LatentState, ZerothOrderAttack, budget_scale


def rank_and_crowding(objectives: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pareto rank (0 = non-dominated) and crowding distance of each row of ``objectives`` [N, M]."""
    fronts = NonDominatedSorting().do(objectives)
    rank = np.empty(len(objectives), np.int64)
    crowding = np.empty(len(objectives))
    for level, front in enumerate(fronts):
        rank[front] = level
        crowding[front] = calc_crowding_distance(objectives[front])
    return rank, crowding


class EvolutionaryAttack(Attack):
    """Args:
        population: candidates per generation (each generation costs ``population`` queries).
        mutation_rate: initial fraction of latent coordinates mutated; mutation_scale: mutation std as a fraction of
            the budget's per-sample scale; momentum, momentum_beta: Taori et al.'s mutation-rate update;
            min_rate / max_rate: its bounds.
        gradient_phase: fraction of the budget left to a final zeroth-order phase (0 = none).
        basis, factor, envelope, bands, frame_s: the latent basis (see ``ZerothOrderAttack``).
        directions, smoothing, estimator: the zeroth-order phase's settings (see ``ZerothOrderAttack``).
        transfer_steps, transfer_learning_rate, transfer_candidates: with a transfer prior, the initial population
            holds ``transfer_candidates`` points of a white-box descent on the attacker's surrogate (see
            ``ZerothOrderAttack``; the rest is drawn uniformly as without a prior); prior_samples, prior_noise: the
            zeroth-order phase's use of the prior (see ``ZerothOrderAttack``).
    """

    name = "AE"
    uses_prior = True
    revision = 2  # faster MFCC repair, the zeroth-order phase's revision 2

    def __init__(self, population: int = 32, mutation_rate: float = 0.05, mutation_scale: float = 0.5,
                 momentum: float = 0.9, momentum_beta: float = 0.001, min_rate: float = 0.005,
                 max_rate: float = 0.5, gradient_phase: float = 0.5, factor: int = 4, envelope: bool = True,
                 directions: int = 16, basis: str = "lowrate", bands: int = 16, frame_s: float = 0.032,
                 smoothing: float = 0.01, estimator: str = "forward", transfer_steps: int = 0,
                 transfer_learning_rate: float = 0.1, transfer_candidates: int = 8, prior_samples: int = 0,
                 prior_noise: float = 0.5) -> None:
        if population < 4:
            raise ValueError(f"population must be >= 4, got {population}")
        if not 0 <= gradient_phase < 1:
            raise ValueError(f"gradient_phase must be in [0, 1), got {gradient_phase}")
        self.population, self.mutation_rate, self.mutation_scale = population, mutation_rate, mutation_scale
        self.momentum, self.momentum_beta, self.min_rate, self.max_rate = momentum, momentum_beta, min_rate, max_rate
        self.gradient_phase = gradient_phase
        self.basis = make_basis(basis, factor, envelope, bands, frame_s)
        self.basis_settings = {"basis": basis, "factor": factor, "envelope": envelope, "bands": bands,
                               "frame_s": frame_s}
        self.gradient_settings = {"directions": directions, "smoothing": smoothing, "estimator": estimator,
                                  "transfer_steps": transfer_steps, "transfer_learning_rate": transfer_learning_rate,
                                  "transfer_candidates": min(transfer_candidates, population),
                                  "prior_samples": prior_samples, "prior_noise": prior_noise}
        ZerothOrderAttack(**self.gradient_settings)  # validates them

    @staticmethod
    def _objectives(similarity: torch.Tensor, loss: np.ndarray) -> np.ndarray:
        """[P, 2]: the attack loss and the acoustic dissimilarity 1 - MFCC similarity (measured by the repair)."""
        return np.stack([loss, 1.0 - similarity.double().numpy()], axis=1)

    def _tournament(self, rank: np.ndarray, crowding: np.ndarray, count: int, generator: torch.Generator) -> np.ndarray:
        a, b = (torch.randint(len(rank), (count,), generator=generator).numpy() for _ in range(2))
        a_wins = (rank[a] < rank[b]) | ((rank[a] == rank[b]) & (crowding[a] >= crowding[b]))
        return np.where(a_wins, a, b)

    def _seeded_population(self, oracle: QueryOracle, latent: LatentState, goal: Goal, state: SearchState):
        """With a transfer prior and ``transfer_steps``: (latents [k, d], perturbations [k, T], evaluation) of the
        transfer start's points (observed into ``state``); else None."""
        if state.prior is None or self.gradient_settings["transfer_steps"] == 0:
            return None
        points, deltas, evaluation = ZerothOrderAttack(**self.gradient_settings).start_from_surrogate(
            oracle, latent, goal, state)
        state.observe(deltas, evaluation)
        return points, deltas, evaluation

    def _search(self, oracle: QueryOracle, clean: torch.Tensor, goal: Goal, constraints: Constraints,
                generator: torch.Generator, state: SearchState) -> None:
        latent = LatentState(self.basis, clean, constraints)
        scale = budget_scale(constraints, clean)
        reserve = int(self.gradient_phase * oracle.remaining)
        size = min(self.population, oracle.remaining)
        bound = scale if constraints.budget.mode == "linf" else scale * 3**0.5  # uniform with RMS = scale
        seeded = self._seeded_population(oracle, latent, goal, state)
        if state.success:
            return
        queried = 0 if seeded is None else len(seeded[0])  # the transfer start's points, already queried
        size = min(size, oracle.remaining + queried)
        z, deltas, similarity = latent.pull_back_measured(
            (torch.rand(size, latent.dimension, generator=generator) * 2 - 1) * bound)
        loss = []
        if seeded is not None:  # they replace the first random candidates
            z[:queried], deltas[:queried] = seeded[0], seeded[1]
            similarity[:queried] = latent.constraints.mfcc_similarity(clean, seeded[1])
            loss.append(seeded[2].objective)
        if queried < size:
            evaluation = goal.evaluate(oracle, clean[None] + deltas[queried:])
            if state.observe(deltas[queried:], evaluation):
                return
            loss.append(evaluation.objective)
        objectives = self._objectives(similarity, np.concatenate(loss))
        rate, previous_best = self.mutation_rate, float(objectives[:, 0].min())
        while oracle.remaining - reserve >= 2:
            rank, crowding = rank_and_crowding(objectives)
            count = min(self.population, oracle.remaining - reserve)
            mothers = self._tournament(rank, crowding, count, generator)
            fathers = self._tournament(rank, crowding, count, generator)
            mask = torch.rand(count, latent.dimension, generator=generator) < 0.5
            children = torch.where(mask, z[mothers], z[fathers])
            mutate = torch.rand(count, latent.dimension, generator=generator) < rate
            noise = torch.randn(count, latent.dimension, generator=generator) * (self.mutation_scale * scale)
            children, child_deltas, similarity = latent.pull_back_measured(children + mutate * noise)
            evaluation = goal.evaluate(oracle, clean[None] + child_deltas)
            if state.observe(child_deltas, evaluation):
                return
            child_objectives = self._objectives(similarity, evaluation.objective)
            # (mu + lambda) NSGA-II survival
            z, deltas = torch.cat([z, children]), torch.cat([deltas, child_deltas])
            objectives = np.concatenate([objectives, child_objectives])
            rank, crowding = rank_and_crowding(objectives)
            keep = np.lexsort((-crowding, rank))[: self.population]
            z, deltas, objectives = z[keep], deltas[keep], objectives[keep]
            best = float(objectives[:, 0].min())
            change = abs(previous_best - best)
            rate = float(np.clip(self.momentum * rate + self.momentum_beta / max(change, 1e-12),
                                 self.min_rate, self.max_rate))
            previous_best = best
        if reserve and oracle.remaining >= 2:
            start = z[int(np.argmin(objectives[:, 0]))]
            ZerothOrderAttack(**self.gradient_settings, **self.basis_settings).optimize(
                oracle, latent, start, goal, generator, state)
