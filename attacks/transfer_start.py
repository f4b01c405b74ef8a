"""A query-free starting point for a closed-model search: a white-box attack on the attacker's *own* surrogate.

Transfer-based black-box attacks (Papernot et al. 2017; Liu et al. 2017: ensembles; Cheng et al. 2019 and Huang &
Zhang 2020, TREMBA: transfer first, then queries) start the query search where a surrogate's white-box attack
ends. Here the descent runs inside the attack's own latent and constraints (``LatentState``: the same basis, the
same size budget and MFCC floor), with Adam on the surrogate's NLL of the goal's text per character, taken through
``TransferPrior.loss_and_gradient`` (the surrogate is in its own process; the attack sees loss values and gradient
arrays of *its* model only). The attacked model is not consulted during the descent: the attack then queries a few
points of the trajectory (one batched oracle call) and starts its own search from the best of them.
"""

from __future__ import annotations

import torch

from attacks.goals import Evaluation, Goal
from attacks.oracle import QueryOracle
from attacks.transfer_prior import TransferPrior


def surrogate_descent(prior: TransferPrior, latent, z: torch.Tensor, text: str, steps: int, step_size: float,
                      keep: int) -> tuple[torch.Tensor, list[float]]:
    """Adam on the surrogate's NLL(text) per character from latent ``z`` [d] inside ``latent``'s feasible set.

    Args:
        latent: the attack's ``LatentState`` (decoder, budget, MFCC repair).
        steps: surrogate evaluations (forward + backward each, no oracle query); the last point returned is the one
            the last evaluation was taken at.
        step_size: Adam's step per latent coordinate (in waveform units, e.g. 0.1 x the budget's per-sample scale).
        keep: how many points of the trajectory to return, evenly spaced, the last one included.
    Returns: feasible latents [keep', d] (keep' <= keep, fewer when ``steps`` < ``keep``) and the surrogate's loss
    per character at each of them.
    """
    z, delta = latent.pull_back(z)
    first, second = torch.zeros_like(z), torch.zeros_like(z)
    marks = set(torch.linspace(1, steps, min(keep, steps)).round().long().tolist()) if steps > 0 else set()
    points, losses = [], []
    for t in range(1, steps + 1):
        loss, gradient = prior.loss_and_gradient((latent.clean + delta).numpy(), text)
        if t in marks:  # the point this step starts from, with its loss (no extra pass)
            points.append(z.clone())
            losses.append(loss / max(1, len(text)))
        g = latent.basis.adjoint(torch.from_numpy(gradient)[None], latent.weights)[0] / max(1, len(text))
        first = 0.9 * first + 0.1 * g
        second = 0.999 * second + 0.001 * g.pow(2)
        update = (first / (1 - 0.9**t)) / ((second / (1 - 0.999**t)).sqrt() + 1e-12)
        z, delta = latent.pull_back(z - step_size * update)
    return (torch.stack(points) if points else z[None].clone()), losses


def transfer_start(prior: TransferPrior, oracle: QueryOracle, latent, goal: Goal, steps: int, step_size: float,
                   candidates: int) -> tuple[torch.Tensor, torch.Tensor, Evaluation]:
    """Descend on the surrogate from the clean point (``surrogate_descent``), then query ``candidates`` evenly spaced
    points of the trajectory in one batched oracle call (as many queries; fewer if the budget has fewer left).
    Returns their latents [k, d], perturbations [k, T] and the oracle's evaluation of them."""
    points, _ = surrogate_descent(prior, latent, torch.zeros(latent.dimension), goal.scored_text, steps, step_size,
                                  max(1, min(candidates, oracle.remaining)))
    points, deltas = latent.pull_back(points)
    return points, deltas, goal.evaluate(oracle, latent.clean[None] + deltas)
