"""Transfer prior: the attacker's own surrogate guides AZ; it never is, or reaches, the attacked model."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch

from attacks.constraints import Constraints, PerturbationBudget
from attacks.goals import Targeted
from attacks.subspace import BandNoiseBasis, LowRateBasis
from attacks.transfer_prior import TransferPrior
from attacks.zeroth_order import ZerothOrderAttack
from tests.test_attacks import reachable_models_and_tensors, server, speech_like  # noqa: F401 (fixture)
from tests.toy_system import toy_surrogate


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
