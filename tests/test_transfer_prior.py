"""Transfer prior: the attacker's own surrogate guides AZ; it never is, or reaches, the attacked model."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch

from attacks.constraints import Constraints, PerturbationBudget
from attacks.evolutionary import EvolutionaryAttack
from attacks.goals import Targeted
from attacks.subspace import BandNoiseBasis, LowRateBasis
from attacks.transfer_prior import TransferPrior
from attacks.zeroth_order import ZerothOrderAttack
from tests.test_attacks import reachable_models_and_tensors, server, speech_like  # noqa: F401 (fixture)
from tests.toy_system import toy_ensemble, toy_surrogate


@pytest.mark.parametrize("basis", [LowRateBasis(4), LowRateBasis(1, envelope=False), BandNoiseBasis(bands=8)],
                         ids=["lowrate4", "fullrate", "bands"])
def test_basis_adjoint_is_the_transpose_of_decode(basis):
    """<decode(z), y> = <z, adjoint(y)>: a waveform gradient maps to the latent gradient."""
    generator = torch.Generator().manual_seed(0)
    clean = torch.randn(12_345, generator=generator) * 0.1
    weights = basis.shape(clean)
    z = torch.randn(3, basis.dimension(clean.numel()), generator=generator)
    y = torch.randn(3, clean.numel(), generator=generator)
    lhs = (basis.decode(z, weights) * y).sum(1)
    rhs = (z * basis.adjoint(y, weights)).sum(1)
    assert torch.allclose(lhs, rhs, rtol=1e-4, atol=1e-3), (lhs, rhs)


@pytest.fixture(scope="module")
def close_prior():
    """The attacker's surrogate: the victim's toy with its output weights perturbed by 30 %."""
    with TransferPrior(functools.partial(toy_surrogate, 0, 0.3)) as prior:
        yield prior


def test_a_surrogate_identical_to_the_victim_is_refused(server):
    with TransferPrior(functools.partial(toy_surrogate, 0, 0.0)) as copy:
        assert copy.fingerprint == server.session(1).fingerprint
        with pytest.raises(ValueError, match="attacked model itself"):
            ZerothOrderAttack()(server.session(10), speech_like(), Targeted("A"), prior=copy)


def test_the_prior_answers_plain_arrays_and_reaches_no_model(close_prior):
    gradient = close_prior.gradient(speech_like(), "OPEN THE DOOR")
    assert isinstance(gradient, np.ndarray) and gradient.shape == (16_000,) and np.abs(gradient).max() > 0
    assert not reachable_models_and_tensors(close_prior)
    assert close_prior.describe()["label"] == "toy0+0.3"


def test_a_good_prior_makes_the_targeted_attack_stronger(server, close_prior):
    """The attacker's surrogate is close to the victim (toy with its weights perturbed by 30 %): at the same query
    budget AZ with the prior gets the target's loss far lower than AZ without, on each of two utterances (measured:
    NLL per character 7.1-7.5 without, 1.7-2.0 with, at 60 queries)."""
    budget = Constraints(PerturbationBudget("snr", snr_db=10.0))
    attack = ZerothOrderAttack(directions=8, basis="bands", envelope=False)
    for seed in range(2):
        clean = speech_like(seed=seed)
        plain = attack(server.session(60), clean, Targeted("OPEN THE DOOR"), budget, seed=0)
        guided = attack(server.session(60), clean, Targeted("OPEN THE DOOR"), budget, seed=0, prior=close_prior)
        assert guided.queries <= 60 and guided.mfcc_similarity >= 0.95 - 1e-4
        assert guided.objective < 0.5 * plain.objective, (seed, guided.objective, plain.objective)


def test_an_ensemble_averages_its_members_losses_and_gradients():
    """Two toy surrogates form an ensemble whose loss and gradient are the mean of theirs (Liu et al. 2017)."""
    from lit_modules.surrogate import Surrogate

    a, b = toy_surrogate(1, 0.0), toy_surrogate(2, 0.0)
    ensemble = Surrogate([a.backend, b.backend], label="pair")
    waveforms = torch.from_numpy(np.stack([speech_like(seed=0), speech_like(seed=1)]))
    lengths, texts = torch.full((2,), waveforms.shape[1]), ["OPEN THE DOOR", "A B"]
    losses, gradients = ensemble.losses_and_gradients(waveforms, lengths, texts)
    (loss_a, grad_a), (loss_b, grad_b) = (s.losses_and_gradients(waveforms, lengths, texts) for s in (a, b))
    assert torch.allclose(losses, (loss_a + loss_b) / 2) and torch.allclose(gradients, (grad_a + grad_b) / 2)
    assert not torch.allclose(grad_a, grad_b)  # the members differ, so the mean is not either one
    described = ensemble.describe()
    assert described["members"] == 2 and described["fingerprints"] == [a.describe()["fingerprint"],
                                                                        b.describe()["fingerprint"]]


def test_an_ensemble_that_contains_the_victim_is_refused(server):
    with TransferPrior(functools.partial(toy_ensemble, [(1, 0.3), (0, 0.0)])) as mixed:
        with pytest.raises(ValueError, match="attacked model itself"):
            ZerothOrderAttack(transfer_steps=2)(server.session(10), speech_like(), Targeted("A"), prior=mixed)


def test_the_surrogate_descent_lowers_the_surrogates_loss_inside_the_constraints(close_prior):
    from attacks.transfer_start import surrogate_descent
    from attacks.zeroth_order import LatentState, budget_scale

    clean = torch.from_numpy(speech_like())
    constraints = Constraints(PerturbationBudget("snr", snr_db=10.0))
    latent = LatentState(BandNoiseBasis(bands=8, envelope=False), clean, constraints)
    points, losses = surrogate_descent(close_prior, latent, torch.zeros(latent.dimension), "OPEN THE DOOR", steps=40,
                                       step_size=0.1 * budget_scale(constraints, clean), keep=5)
    assert points.shape == (5, latent.dimension) and len(losses) == 5
    assert losses[-1] < 0.5 * losses[0], losses  # measured: 8.3 -> 0.8 nats per character
    deltas = latent.pull_back(points)[1]
    assert bool(constraints.feasible(clean, deltas).all())


@pytest.mark.parametrize("make_attack", [
    functools.partial(ZerothOrderAttack, directions=8, basis="bands", envelope=False),
    functools.partial(EvolutionaryAttack, population=8, basis="bands", envelope=False)], ids=["AZ", "AE"])
def test_a_transfer_start_beats_the_prior_alone_at_a_small_budget(server, close_prior, make_attack):
    """Starting where a white-box descent on the surrogate ends (no queries spent on it) leaves the victim's target
    loss far lower after 20 queries than the prior-guided search from the clean point (measured: 0.22 nats per
    character, the target reached, against 8.0 (AZ) and 8.1 (AE) from the clean point)."""
    budget = Constraints(PerturbationBudget("snr", snr_db=10.0))
    clean, target = speech_like(seed=1), Targeted("OPEN THE DOOR")
    plain = make_attack(transfer_steps=0)(server.session(20), clean, target, budget, seed=0, prior=close_prior)
    started = make_attack(transfer_steps=60)(server.session(20), clean, target, budget, seed=0, prior=close_prior)
    assert started.queries <= 20 and started.mfcc_similarity >= 0.95 - 1e-4
    assert started.objective < 0.5 * plain.objective, (started.objective, plain.objective)


def test_subspace_probes_are_orthonormal_start_with_the_iterates_gradient_and_keep_the_budget(server, close_prior):
    from attacks.base import SearchState
    from attacks.zeroth_order import LatentState

    clean = torch.from_numpy(speech_like())
    constraints = Constraints(PerturbationBudget("snr", snr_db=10.0))
    attack = ZerothOrderAttack(directions=4, basis="bands", envelope=False, prior_samples=5)
    latent = LatentState(attack.basis, clean, constraints)
    z = torch.zeros(latent.dimension)
    state = SearchState(server.session(1), clean, close_prior)
    directions = attack._prior_directions(state, latent, z, torch.zeros_like(clean), Targeted("OPEN THE DOOR"),
                                          torch.Generator().manual_seed(0))
    assert directions.shape == (6, latent.dimension)  # the iterate's gradient + 5 noisy copies' (independent)
    assert torch.allclose(directions @ directions.T, torch.eye(6), atol=1e-4)
    at_iterate = latent.basis.adjoint(torch.from_numpy(close_prior.gradient(clean.numpy(), "OPEN THE DOOR"))[None],
                                      latent.weights)[0]
    assert abs(float(torch.nn.functional.cosine_similarity(directions[0], at_iterate, dim=0))) > 0.999
    result = attack(server.session(40), speech_like(), Targeted("OPEN THE DOOR"), constraints, seed=0,
                    prior=close_prior)
    assert result.queries <= 40 and result.mfcc_similarity >= 0.95 - 1e-4 and np.isfinite(result.objective)
