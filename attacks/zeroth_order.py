"""AZ: zeroth-order optimization (ZOO, Chen et al. 2017; AutoZOOM, Tu et al. 2019) in a low-rate latent space.

Gradient estimate from q random unit directions u_i of the latent z:
    forward (the paper's, b = 1):  g = b / q * sum_i (f(z + beta u_i) - f(z)) / beta * u_i            q + 1 queries
    antithetic (central):          g = b / q * sum_i (f(z + beta u_i) - f(z - beta u_i)) / (2 beta) * u_i  2q + 1
With a transfer prior (``attacks.transfer_prior``: the attacker's own surrogate model, never the attacked one),
its gradient v at the iterate, mapped into the latent by the basis's transpose, is one extra direction and the
random ones are drawn orthogonal to it (P-RGF, Cheng et al. 2019):
    g = b * [ (f(z + beta v) - f(z)) / beta * v + sum_i (f(z + beta u_i) - f(z)) / beta * u_i ]   q + 2 queries
exact along v, plus the orthogonal estimate shrunk by q / d (its MSE-optimal weight: the random part alone has
squared error ~ d / q times its signal), so a good prior dominates and a useless one leaves plain AZ. With
``prior_samples`` = k, the surrogate's gradients at k noisy copies of the iterate join v (Subspace Attack, Yan et al.
2019): their orthonormalized span is probed exactly (k more queries a step), random directions orthogonal to it.
With ``transfer_steps``, the search starts where a white-box descent on the surrogate ends (``attacks.transfer_start``).
Then an Adam step, projection into the budget and the MFCC floor, and more directions when progress stalls
(adaptive q); f(z) also tells whether the goal is met. Probes are projected into the size budget but not repaired
to the MFCC floor (the repair's rescaling would add noise to the differences and cost most of the attack's own
time); only feasible points are recorded: the iterate, and a successful probe after its repair and one more query.
Measured (docs/attacks.md): the attack losses are strongly curved at the budget's scale, so beta must be small
(smoothing 0.01 of the budget's per-sample scale; 0.5 gave estimates uncorrelated with the true gradient).
"""

from __future__ import annotations

import math

import torch

from attacks.base import Attack, SearchState
from attacks.constraints import Constraints
from attacks.goals import Goal
from attacks.oracle import QueryOracle
from attacks.subspace import LowRateBasis, make_basis
from attacks.transfer_start import transfer_start


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

    def probes(self, latents: torch.Tensor) -> torch.Tensor:
        """Perturbations [P, T] inside the size budget but not repaired to the MFCC floor: finite-difference probes
        around a feasible point (they may sit up to beta below the floor; they are never saved as such)."""
        return self.constraints.budget.project(self.clean, self.basis.decode(latents, self.weights))

    def pull_back(self, latents: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Project latents [P, d] (or [d]) themselves: (feasible latents, their perturbations [P, T] (or [T])).
        l_inf: clamp; then shrink each latent by the factor the projection / MFCC repair applied to its
        perturbation, so a search never drifts outside the feasible set."""
        return self.pull_back_measured(latents)[:2]

    def pull_back_measured(self, latents: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``pull_back`` plus the MFCC similarity [P] (or scalar) of the perturbations, from the repair."""
        single = latents.ndim == 1
        z = latents[None] if single else latents
        if self.constraints.budget.mode == "linf":
            z = z.clamp(-self.constraints.budget.delta_max, self.constraints.budget.delta_max)
        raw = self.basis.decode(z, self.weights)
        delta, similarity = self.constraints.repair_measured(self.clean, raw)
        ratio = (delta.norm(dim=1) / raw.norm(dim=1).clamp(min=1e-12)).clamp(max=1.0)
        z = z * ratio[:, None]
        return (z[0], delta[0], similarity[0]) if single else (z, delta, similarity)


class ZerothOrderAttack(Attack):
    """Args:
        directions: q, random directions per gradient estimate (adaptive: doubled on a stall, up to max_directions).
        smoothing: beta as a fraction of the budget's per-sample scale (per latent coordinate).
        estimator: ``forward`` (one-sided differences, the paper's) or ``antithetic`` (central differences).
        learning_rate: Adam step per coordinate as a fraction of the budget's per-sample scale.
        gradient_scale: b in the estimator (paper: 1).
        patience: steps without improvement before q doubles (or, at max_directions, the step size halves).
        basis: ``lowrate`` (``LowRateBasis(factor)``) or ``bands`` (``BandNoiseBasis(bands, frame_s)``); envelope:
            shape the perturbation by the clean speech's amplitude envelope.
        transfer_steps: with a transfer prior, white-box steps on the attacker's surrogate before the first query
            (``attacks.transfer_start``; 0 = start from the clean point); transfer_learning_rate: their Adam step
            (fraction of the budget's per-sample scale); transfer_candidates: points of that trajectory queried (one
            batched call) to pick where the zeroth-order search starts.
        prior_samples, prior_noise: with a transfer prior, each step also takes the surrogate's gradients at
            ``prior_samples`` noisy copies of the iterate (latent noise std ``prior_noise`` x the budget's scale) and
            probes along their span first (Subspace Attack, Yan et al. 2019); 0 = its gradient at the iterate only.
    """

    name = "AZ"
    uses_prior = True
    revision = 2  # small smoothing, unrepaired probes

    def __init__(self, directions: int = 16, max_directions: int = 64, smoothing: float = 0.01,
                 learning_rate: float = 0.1, gradient_scale: float = 1.0, patience: int = 10,
                 factor: int = 4, envelope: bool = True, basis: str = "lowrate", bands: int = 16,
                 frame_s: float = 0.032, estimator: str = "forward", transfer_steps: int = 0,
                 transfer_learning_rate: float = 0.1, transfer_candidates: int = 8, prior_samples: int = 0,
                 prior_noise: float = 0.5) -> None:
        if directions < 1 or max_directions < directions:
            raise ValueError("need 1 <= directions <= max_directions")
        if transfer_steps < 0 or transfer_candidates < 1 or transfer_learning_rate <= 0:
            raise ValueError("need transfer_steps >= 0, transfer_candidates >= 1 and transfer_learning_rate > 0")
        if estimator not in ("forward", "antithetic"):
            raise ValueError(f"estimator must be 'forward' or 'antithetic', got {estimator!r}")
        self.estimator = estimator
        self.directions, self.max_directions = directions, max_directions
        self.smoothing, self.learning_rate, self.gradient_scale = smoothing, learning_rate, gradient_scale
        self.patience = patience
        self.transfer_steps, self.transfer_learning_rate = transfer_steps, transfer_learning_rate
        self.transfer_candidates = transfer_candidates
        if prior_samples < 0 or prior_noise < 0:
            raise ValueError("need prior_samples >= 0 and prior_noise >= 0")
        self.prior_samples, self.prior_noise = prior_samples, prior_noise
        self.basis = make_basis(basis, factor, envelope, bands, frame_s)
        self.basis_settings = {"basis": basis, "factor": factor, "envelope": envelope, "bands": bands,
                               "frame_s": frame_s}

    def _search(self, oracle: QueryOracle, clean: torch.Tensor, goal: Goal, constraints: Constraints,
                generator: torch.Generator, state: SearchState, start: torch.Tensor | None = None) -> None:
        latent = LatentState(self.basis, clean, constraints)
        z = torch.zeros(latent.dimension) if start is None else start.clone()
        if start is None and state.prior is not None and self.transfer_steps > 0:
            points, deltas, evaluation = self.start_from_surrogate(oracle, latent, goal, state)
            if state.observe(deltas, evaluation):
                return
            z = points[int(evaluation.objective.argmin())]
        self.optimize(oracle, latent, z, goal, generator, state)

    def start_from_surrogate(self, oracle: QueryOracle, latent: LatentState, goal: Goal, state: SearchState):
        """The transfer start (``attacks.transfer_start``): latents [k, d], perturbations [k, T], their evaluation."""
        scale = budget_scale(latent.constraints, latent.clean)
        return transfer_start(state.prior, oracle, latent, goal, self.transfer_steps,
                              self.transfer_learning_rate * scale, self.transfer_candidates)

    @staticmethod
    def _confirm(oracle: QueryOracle, latent: LatentState, probes: torch.Tensor, evaluation, goal: Goal,
                 state: SearchState) -> bool:
        """A probe met the goal: repair it to the MFCC floor and query it once more (it must still succeed)."""
        hits = [i for i in range(1, len(probes)) if evaluation.success[i]]
        if not hits or oracle.remaining < 1:
            return False
        candidate = latent.constraints.repair(latent.clean, probes[hits[0] : hits[0] + 1])
        return state.observe(candidate, goal.evaluate(oracle, latent.clean[None] + candidate))

    def _prior_directions(self, state: SearchState, latent: LatentState, z: torch.Tensor, delta: torch.Tensor,
                          goal: Goal, generator: torch.Generator) -> torch.Tensor | None:
        """Orthonormal directions [k, d] from the transfer prior, or None without one: its gradient at the iterate
        (P-RGF) and, with ``prior_samples``, at that many noisy copies of it (latent noise of std ``prior_noise`` x the
        budget's scale: the span of such gradients holds more of the attacked model's gradient than one of them, the
        Subspace Attack's observation), all from one batched surrogate call, mapped into the latent."""
        if state.prior is None:
            return None
        deltas = delta[None]
        if self.prior_samples:
            scale = budget_scale(latent.constraints, latent.clean)
            noisy = z[None] + self.prior_noise * scale * torch.randn(self.prior_samples, latent.dimension,
                                                                     generator=generator)
            deltas = torch.cat([deltas, latent.probes(noisy)])
        _, gradients = state.prior.losses_and_gradients((latent.clean[None] + deltas).numpy(), goal.scored_text)
        directions = latent.basis.adjoint(torch.from_numpy(gradients), latent.weights).double()
        directions = directions[torch.isfinite(directions).all(1) & (directions.norm(dim=1) > 0)]
        if len(directions) == 0:
            return None
        q, r = torch.linalg.qr(directions.T)  # orthonormal basis of their span, the iterate's gradient first
        keep = r.diagonal().abs() > 1e-6 * r.diagonal().abs().max()
        return q.T[keep].float()

    def optimize(self, oracle: QueryOracle, latent: LatentState, z: torch.Tensor, goal: Goal,
                 generator: torch.Generator, state: SearchState) -> None:
        """Adam on the estimated gradient from latent ``z`` until success or the budget runs out."""
        scale = budget_scale(latent.constraints, latent.clean)
        beta = self.smoothing * scale * math.sqrt(latent.dimension)  # unit directions: per-coordinate ~ smoothing x scale
        step = self.learning_rate * scale
        first, second = torch.zeros_like(z), torch.zeros_like(z)
        directions, stall, best, t = self.directions, 0, math.inf, 0
        z, delta = latent.pull_back(z)
        central = self.estimator == "antithetic"
        while oracle.remaining >= (3 if central else 2):
            prior = self._prior_directions(state, latent, z, delta, goal, generator)
            k = 0 if prior is None else len(prior)
            q = min(directions + k, (oracle.remaining - 1) // (2 if central else 1))
            u = torch.randn(q, latent.dimension, generator=generator)
            if prior is not None:  # the prior's directions first, random directions orthogonal to them
                k = min(k, q)
                u = torch.cat([prior[:k], u[k:] - (u[k:] @ prior[:k].T) @ prior[:k]])
            u = u / u.norm(dim=1, keepdim=True)
            steps = torch.cat([beta * u, -beta * u]) if central else beta * u
            probes = torch.cat([delta[None], latent.probes(z[None] + steps)])
            evaluation = goal.evaluate(oracle, latent.clean[None] + probes)
            if state.observe(delta[None], evaluation.select([0])) or self._confirm(oracle, latent, probes, evaluation,
                                                                                   goal, state):
                return
            values = torch.as_tensor(evaluation.objective, dtype=torch.float32)
            if central:
                differences = (values[1 : q + 1] - values[q + 1 :]) / (2 * beta)
            else:
                differences = (values[1:] - values[0]) / beta
            if prior is None:
                gradient = self.gradient_scale * (differences[:, None] * u).mean(0)
            else:  # exact inside the prior's span + the orthogonal part's MSE-optimal shrinkage (q / d) of its estimate
                gradient = self.gradient_scale * (differences[:, None] * u).sum(0)
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
