"""AZ: zeroth-order optimization (ZOO, Chen et al. 2017; AutoZOOM, Tu et al. 2019) in a low-rate latent space.

Gradient estimate from q random unit directions u_i of the latent z (one-sided differences, as in the paper):
    g = b / q * sum_i (f(z + beta u_i) - f(z)) / beta * u_i          (paper: b = 1)
then an Adam step, projection into the budget and the MFCC floor, and more directions when progress stalls
(adaptive q). Each step costs q + 1 queries; f(z) also tells whether the goal is met.
"""

from __future__ import annotations

import math

import torch

from attacks.base import Attack, SearchState
from attacks.constraints import Constraints
from attacks.goals import Goal
from attacks.oracle import QueryOracle
from attacks.subspace import LowRateBasis, make_basis


def budget_scale(constraints: Constraints, clean: torch.Tensor) -> float:
    """Per-sample size the budget allows: delta_max (l_inf) or the allowed perturbation RMS (SNR mode)."""
    budget = constraints.budget
    if budget.mode == "linf":
        return budget.delta_max
    return budget.l2_radius(clean) / math.sqrt(clean.numel())


class LatentState:
    """A latent z [d] decoded to a feasible perturbation; keeps z consistent with the projection."""

    def __init__(self, basis: LowRateBasis, clean: torch.Tensor, constraints: Constraints) -> None:
        self.basis, self.clean, self.constraints = basis, clean, constraints
        self.weights = basis.shape(clean)
        self.dimension = basis.dimension(clean.numel())

    def perturbations(self, latents: torch.Tensor) -> torch.Tensor:
        """Feasible perturbations [P, T] for latents [P, d]."""
        return self.constraints.repair(self.clean, self.basis.decode(latents, self.weights))

    def pull_back(self, latents: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Project latents [P, d] (or [d]) themselves: (feasible latents, their perturbations [P, T] (or [T])).
        l_inf: clamp; then shrink each latent by the factor the projection / MFCC repair applied to its
        perturbation, so a search never drifts outside the feasible set."""
        single = latents.ndim == 1
        z = latents[None] if single else latents
        if self.constraints.budget.mode == "linf":
            z = z.clamp(-self.constraints.budget.delta_max, self.constraints.budget.delta_max)
        raw = self.basis.decode(z, self.weights)
        delta = self.constraints.repair(self.clean, raw)
        ratio = (delta.norm(dim=1) / raw.norm(dim=1).clamp(min=1e-12)).clamp(max=1.0)
        z = z * ratio[:, None]
        return (z[0], delta[0]) if single else (z, delta)


class ZerothOrderAttack(Attack):
    """Args:
        directions: q, random directions per gradient estimate (adaptive: doubled on a stall, up to max_directions).
        smoothing: beta as a fraction of the budget's per-sample scale (per latent coordinate).
        learning_rate: Adam step per coordinate as a fraction of the budget's per-sample scale.
        gradient_scale: b in the estimator (paper: 1).
        patience: steps without improvement before q doubles (or, at max_directions, the step size halves).
        basis: ``lowrate`` (``LowRateBasis(factor)``) or ``bands`` (``BandNoiseBasis(bands, frame_s)``); envelope:
            shape the perturbation by the clean speech's amplitude envelope.
    """

    name = "AZ"

    def __init__(self, directions: int = 16, max_directions: int = 64, smoothing: float = 0.5,
                 learning_rate: float = 0.1, gradient_scale: float = 1.0, patience: int = 10,
                 factor: int = 4, envelope: bool = True, basis: str = "lowrate", bands: int = 16,
                 frame_s: float = 0.032) -> None:
        if directions < 1 or max_directions < directions:
            raise ValueError("need 1 <= directions <= max_directions")
        self.directions, self.max_directions = directions, max_directions
        self.smoothing, self.learning_rate, self.gradient_scale = smoothing, learning_rate, gradient_scale
        self.patience = patience
        self.basis = make_basis(basis, factor, envelope, bands, frame_s)
        self.basis_settings = {"basis": basis, "factor": factor, "envelope": envelope, "bands": bands,
                               "frame_s": frame_s}

    def _search(self, oracle: QueryOracle, clean: torch.Tensor, goal: Goal, constraints: Constraints,
                generator: torch.Generator, state: SearchState, start: torch.Tensor | None = None) -> None:
        latent = LatentState(self.basis, clean, constraints)
        z = torch.zeros(latent.dimension) if start is None else start.clone()
        self.optimize(oracle, latent, z, goal, generator, state)

    def optimize(self, oracle: QueryOracle, latent: LatentState, z: torch.Tensor, goal: Goal,
                 generator: torch.Generator, state: SearchState) -> None:
        """Adam on the estimated gradient from latent ``z`` until success or the budget runs out."""
        scale = budget_scale(latent.constraints, latent.clean)
        beta = self.smoothing * scale * math.sqrt(latent.dimension)  # unit directions: per-coordinate ~ smoothing x scale
        step = self.learning_rate * scale
        first, second = torch.zeros_like(z), torch.zeros_like(z)
        directions, stall, best, t = self.directions, 0, math.inf, 0
        z, delta = latent.pull_back(z)
        while oracle.remaining >= 2:
            q = min(directions, oracle.remaining - 1)
            u = torch.randn(q, latent.dimension, generator=generator)
            u = u / u.norm(dim=1, keepdim=True)
            probes = torch.cat([delta[None], latent.perturbations(z[None] + beta * u)])
            evaluation = goal.evaluate(oracle, latent.clean[None] + probes)
            if state.observe(probes, evaluation):
                return
            values = torch.as_tensor(evaluation.objective, dtype=torch.float32)
            differences = (values[1:] - values[0]) / beta
            gradient = self.gradient_scale * (differences[:, None] * u).mean(0)
            t += 1
            first = 0.9 * first + 0.1 * gradient
            second = 0.999 * second + 0.001 * gradient.pow(2)
            update = (first / (1 - 0.9**t)) / ((second / (1 - 0.999**t)).sqrt() + 1e-12)
            z, delta = latent.pull_back(z - step * update)
            if float(values[0]) < best - 1e-4:
                best, stall = float(values[0]), 0
            else:
                stall += 1
                if stall >= self.patience:  # stalled: better gradient estimates first, then smaller steps
                    if directions < self.max_directions:
                        directions = min(2 * directions, self.max_directions)
                    else:
                        step = max(step * 0.5, 0.02 * self.learning_rate * scale)
                    stall = 0
