"""Closed-model attacks through the query oracle, on a fixed untrained toy recognizer (tests/toy_system.py)."""

from __future__ import annotations

import ast
import functools
import gc
import pickle
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from attacks.constraints import Constraints, PerturbationBudget
from attacks.evolutionary import EvolutionaryAttack
from attacks.gaussian import GaussianNoise
from attacks.goals import DetectorEvasion, Targeted, Untargeted
from attacks.subspace import LowRateBasis
from attacks.oracle import OracleServer, QueryBudgetExceeded
from attacks.zeroth_order import ZerothOrderAttack
from tests.toy_system import toy_system

CODE_NOT_DATA = (type, types.ModuleType, types.FunctionType, types.BuiltinFunctionType, types.CodeType,
                 types.FrameType, types.MethodType)
ATTACKS_DIR = Path(__file__).resolve().parents[1] / "attacks"
SEARCH_ATTACKS = [  # full-rate search space: the toy model listens up to 8 kHz
    pytest.param(lambda: ZerothOrderAttack(directions=8, factor=1, envelope=False), id="AZ"),
    pytest.param(lambda: EvolutionaryAttack(population=16, gradient_phase=0.0, factor=1, envelope=False), id="AE"),
    pytest.param(lambda: ZerothOrderAttack(directions=8, basis="bands", envelope=False), id="AZ-bands"),
    pytest.param(lambda: ZerothOrderAttack(directions=4, factor=1, envelope=False, estimator="antithetic"),
                 id="AZ-antithetic"),
    pytest.param(lambda: EvolutionaryAttack(population=16, gradient_phase=0.5, basis="bands", envelope=False),
                 id="AE-bands"),
]


def speech_like(seconds: float = 1.0, seed: int = 0) -> np.ndarray:
    """Harmonic 'vowels' with a syllable envelope at speech level (RMS ~ 0.1), plus a faint noise floor."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * 16_000)) / 16_000
    pitch = 120 + 20 * np.sin(2 * np.pi * 0.7 * t)
    voiced = sum(np.sin(2 * np.pi * k * np.cumsum(pitch) / 16_000) / k for k in range(1, 12))
    envelope = np.clip(np.sin(2 * np.pi * 3 * t), 0, None) ** 0.5
    audio = voiced * envelope + 0.003 * rng.standard_normal(t.shape)
    return (audio * 0.1 / np.sqrt(np.mean(audio**2))).astype(np.float32)


@pytest.fixture(scope="module")
def server():
    with OracleServer(functools.partial(toy_system, 0)) as server:
        yield server


@pytest.fixture(scope="module")
def detector_server():
    with OracleServer(functools.partial(toy_system, 0, detector_threshold=0.105, detector_noise=0.002)) as server:
        yield server


# ------------------------------------------------------------------------------------------ closed model
def test_attack_code_never_imports_models_or_autograd():
    forbidden = ("lit_modules", "torch.autograd", "torch.nn.parameter")
    for path in sorted(ATTACKS_DIR.glob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            elif isinstance(node, ast.Attribute) and node.attr in ("backward", "grad", "requires_grad_", "autograd"):
                pytest.fail(f"{path.name}:{node.lineno} touches {node.attr!r}")
            else:
                continue
            for name in names:
                assert not name.startswith(forbidden), f"{path.name} imports {name}"


def reachable_models_and_tensors(holding) -> list[str]:
    """Type names of every module or tensor reachable from ``holding`` (what an attack holds)."""
    seen, stack, reached = set(), [holding], []
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, CODE_NOT_DATA):
            continue  # classes, functions and modules are code the attacker could import anyway, not state
        seen.add(id(obj))
        if isinstance(obj, (torch.nn.Module, torch.Tensor)):
            reached.append(type(obj).__name__)
        stack.extend(gc.get_referents(obj))
    return reached


def test_oracle_session_reaches_no_model_parameter_or_tensor(server):
    oracle = server.session(10)
    reached = reachable_models_and_tensors(oracle)
    assert not reached, f"an attack could reach {reached}"
    assert oracle.query(speech_like(0.5), score_texts="A").scores.dtype == np.float64  # plain NumPy answers
    for thing in (oracle, server):
        with pytest.raises(pickle.PicklingError):
            pickle.dumps(thing)


def test_attack_results_carry_no_autograd(server):
    result = ZerothOrderAttack(directions=4)(server.session(20), speech_like(), Untargeted("A B"))
    assert isinstance(result.adversarial, np.ndarray)
    assert all(not isinstance(v, torch.Tensor) for v in result.summary().values())


# ------------------------------------------------------------------------------------------ budget
def test_budget_is_never_exceeded(server):
    oracle = server.session(50)
    clean = speech_like()
    result = EvolutionaryAttack(population=16)(oracle, clean, Targeted("OPEN THE DOOR"))
    assert result.queries == oracle.queries_used <= 50
    assert len(result.history) >= 2 and result.history[-1][0] <= 50
    with pytest.raises(QueryBudgetExceeded):
        oracle.query(np.stack([clean] * (oracle.remaining + 1)))


def test_every_waveform_in_a_call_is_one_query(server):
    oracle = server.session(100)
    oracle.query(np.stack([speech_like()] * 5), score_texts="A", detect=False)
    assert oracle.queries_used == 5 and oracle.remaining == 95


def test_a_seeded_session_draws_its_own_randomness(detector_server):
    """A stochastic detector answers a session from the session's own seeded stream: the same seed gives the same
    draws whatever other sessions query in between (a resumed campaign sees what an uninterrupted one saw)."""
    clean = speech_like()

    def scores(seed: int, interleaved: bool) -> np.ndarray:
        oracle, drawn = detector_server.session(6, seed=seed), []
        for _ in range(3):
            if interleaved:
                detector_server.session(2).detect(clean[None])
            drawn.append(oracle.detect(np.stack([clean] * 2)))
        return np.concatenate(drawn)

    first = scores(5, interleaved=False)
    assert np.array_equal(first, scores(5, interleaved=True))
    assert not np.array_equal(first, scores(6, interleaved=False))
    assert len(np.unique(first)) == len(first)  # fresh draws within and across calls


def test_the_oracle_times_the_systems_own_work_and_attacks_record_it():
    """system_seconds counts the server's time answering (>= 0.05 s per call here, however fast the machine), which
    is part of the time the caller waited, not the attacker's own work."""
    import time

    from tests.toy_system import slow_toy_system

    with OracleServer(functools.partial(slow_toy_system, 0.05)) as slow:
        oracle = slow.session(100)
        waited = 0.0
        for _ in range(3):
            started = time.perf_counter()
            oracle.query(np.stack([speech_like()] * 2), score_texts="A")
            waited += time.perf_counter() - started
        assert 0.15 <= oracle.system_seconds <= waited
        result = ZerothOrderAttack(directions=4)(slow.session(20), speech_like(), Untargeted("A B C"), seed=0)
    calls = len(result.history)  # one oracle call per recorded step at least
    assert result.system_time_s >= 0.05 * calls and result.system_time_s <= result.wall_time_s


def test_calls_larger_than_a_forward_pass_are_split_and_answered_in_order():
    waveforms = np.stack([speech_like(seed=i) for i in range(5)])
    with OracleServer(functools.partial(toy_system, 0), max_batch=2) as small:  # 5 -> passes of 2, 2, 1
        split = small.session(5).query(waveforms, score_texts="A", detect=False)
    with OracleServer(functools.partial(toy_system, 0)) as whole:
        single = whole.session(5).query(waveforms, score_texts="A", detect=False)
    assert split.transcripts == single.transcripts
    assert np.allclose(split.scores, single.scores, atol=1e-4)


# ------------------------------------------------------------------------------------------ constraints
@pytest.mark.parametrize("budget", [PerturbationBudget("linf", delta_max=0.01), PerturbationBudget("snr", snr_db=10.0)],
                         ids=["linf", "snr"])
def test_repair_makes_any_candidate_feasible(budget):
    clean = torch.from_numpy(speech_like())
    constraints = Constraints(budget)
    wild = torch.randn(6, clean.numel()) * 0.3
    repaired = constraints.repair(clean, wild)
    assert bool(constraints.feasible(clean, repaired).all())
    shrunk = constraints.mfcc_similarity(clean, repaired) < 0.99  # those the floor made it shrink ...
    assert bool(shrunk.any())
    assert bool((constraints.mfcc_similarity(clean, repaired)[shrunk] <= 0.951 + 1e-4).all())  # ... no more than needed
    small = torch.randn(2, clean.numel()) * 1e-4  # already feasible: unchanged
    assert torch.allclose(constraints.repair(clean, small), small, atol=1e-7)
    for i in range(len(wild)):  # each repaired candidate is feasible on its own, not only inside its batch
        assert bool(constraints.feasible(clean, repaired[i : i + 1]).all())


def test_mfcc_similarity_of_an_item_does_not_depend_on_its_batch_and_scaling_reuses_spectra():
    similarity = Constraints().similarity
    clean = torch.from_numpy(speech_like())
    clean[4_000:8_000] = 0.0  # digital silence: where torchaudio's batch-wide 80 dB floor would bind
    deltas = torch.randn(4, clean.numel(), generator=torch.Generator().manual_seed(0)) * 0.02
    deltas[0, 3_000:9_000] = 0.0  # the first candidate leaves the silence silent ...
    deltas[1] *= 30.0  # ... and has a loud batch-mate
    alone = similarity(clean, clean[None] + deltas[:1])
    batched = similarity(clean, clean[None] + deltas)
    assert torch.allclose(alone, batched[:1], atol=1e-6)
    scales = torch.tensor([0.2, 1.0, 0.5])
    rows = torch.tensor([0, 2, 3])
    direct = similarity(clean, clean[None] + scales[:, None] * deltas[rows])
    assert torch.allclose(similarity.along(clean, deltas)(scales, rows), direct, atol=1e-5)


# ------------------------------------------------------------------------------------------ strength
@pytest.mark.parametrize("make_attack", SEARCH_ATTACKS)
def test_attack_beats_random_noise_of_the_same_linf(server, make_attack):
    """Untargeted: the attack lowers the likelihood of the clean transcript more than uniform noise of the same size."""
    clean = speech_like()
    budget = PerturbationBudget("linf", delta_max=0.01)
    original = server.session(1).transcribe(clean)[0]
    goal = Untargeted(original, min_wer=10.0)  # unreachable: the attack spends its budget optimizing
    result = make_attack()(server.session(200), clean, goal, Constraints(budget), seed=0)
    rng = np.random.default_rng(0)
    noise = torch.from_numpy(rng.uniform(-0.01, 0.01, (32, clean.size)).astype(np.float32))
    noise = Constraints(budget).repair(torch.from_numpy(clean), noise).numpy()  # same constraints as the attack
    random_objective = goal.evaluate(server.session(32), clean[None] + noise).objective
    assert result.linf <= 0.01 + 1e-6 and result.mfcc_similarity >= 0.95
    assert result.objective < random_objective.min(), (result.objective, random_objective.min())


def test_targeted_success_on_an_easy_case(server):
    """The target is what the toy model says for the clean audio plus a perturbation from the attack's own search
    space (envelope-shaped, low-rate, inside the budget): reachable by construction."""
    clean = speech_like(seed=3)
    basis = LowRateBasis()
    latent = np.random.default_rng(1).uniform(-0.005, 0.005, basis.dimension(clean.size)).astype(np.float32)
    hidden = basis.decode(torch.from_numpy(latent)[None], basis.shape(torch.from_numpy(clean)))[0].numpy()
    original, target = server.session(2).transcribe(np.stack([clean, clean + hidden]))
    assert original != target
    oracle = server.session(3000)
    result = ZerothOrderAttack(directions=16)(oracle, clean, Targeted(target), seed=0)
    assert result.success and result.transcript_adversarial == target
    assert result.history[-1][2] and result.queries == oracle.queries_used < 3000  # stopped at success
    assert oracle.transcribe(result.adversarial)[0] == target  # the saved waveform itself does it


def test_gaussian_control_measures_its_snr(server):
    result = GaussianNoise(snr_db=10.0)(server.session(5), speech_like(), Untargeted("A"), seed=0)
    assert result.queries == 1 and abs(result.snr_db - 10.0) < 0.3


def test_adaptive_attack_queries_the_detector_with_repeats(detector_server):
    oracle = detector_server.session(400)
    clean = speech_like()
    goal = DetectorEvasion(Untargeted(oracle.transcribe(clean)[0], min_wer=0.5), samples=4)
    result = ZerothOrderAttack(directions=4)(oracle, clean, goal, Constraints(PerturbationBudget("snr", snr_db=10)))
    assert result.detector_score is not None
    assert (oracle.queries_used - 1) % 4 == 0  # each candidate was queried 4 times (stochastic detector)
    if result.success:
        assert result.detector_score < oracle.detector_threshold


# ------------------------------------------------------------------------------------------ bad input
def test_bad_inputs_give_clear_errors(server):
    with pytest.raises(ValueError, match="silent"):
        ZerothOrderAttack()(server.session(10), np.zeros(16_000, np.float32), Untargeted("A"))
    with pytest.raises(ValueError, match="shorter than"):
        ZerothOrderAttack()(server.session(10), speech_like(0.05), Untargeted("A"))
    with pytest.raises(ValueError, match="budget must be >= 1"):
        server.session(0)
    with pytest.raises(ValueError, match="characters a transcript cannot contain"):
        Targeted("OPEN THE DOOR #1")
    with pytest.raises(ValueError, match="empty"):
        Untargeted("   ")
    with pytest.raises(ValueError, match="budget mode"):
        PerturbationBudget("l2")
    with pytest.raises(ValueError, match="estimator must be"):
        EvolutionaryAttack(estimator="backward")


# ------------------------------------------------------------------------------------------ cache
def _open_caches(root: str) -> None:
    from campaigns.store import AdversarialCache
    for i in range(100):
        AdversarialCache(root, {"campaign": i})


def test_cache_folders_can_be_opened_by_several_ranks_at_once(tmp_path):
    """DDP ranks open the same campaign folder at the same moment; none may trip over another's config write."""
    import multiprocessing
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_open_caches, args=(str(tmp_path),)) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert [w.exitcode for w in workers] == [0] * 4
    assert len(list(tmp_path.glob("*/config.json"))) == 100 and not list(tmp_path.glob("*/*.tmp"))


def test_band_noise_basis_is_linear_band_limited_and_low_dimensional():
    from attacks.subspace import BandNoiseBasis

    basis = BandNoiseBasis(bands=8, frame_s=0.032, low_hz=500.0, high_hz=4000.0, envelope=False)
    clean = torch.randn(16_000) * 0.1
    weights = basis.shape(clean)
    assert basis.dimension(16_000) == 8 * 32 and weights.shape == (8, 16_000)
    z = torch.randn(2, basis.dimension(16_000), generator=torch.Generator().manual_seed(0))
    a, b, both = basis.decode(z[:1], weights), basis.decode(z[1:], weights), basis.decode(z[:1] + z[1:], weights)
    assert torch.allclose(a + b, both, atol=1e-5)
    spectrum = torch.fft.rfft(both[0]).abs().pow(2)
    frequencies = torch.fft.rfftfreq(16_000, 1 / 16_000)
    inside = spectrum[(frequencies >= 450) & (frequencies <= 4100)].sum()
    assert inside / spectrum.sum() > 0.95
    # all-ones gains give unit-RMS noise: the latent is in waveform units, like the low-rate basis
    assert basis.decode(torch.ones(1, basis.dimension(16_000)), weights).pow(2).mean().sqrt() == pytest.approx(1.0, 0.05)


@pytest.mark.parametrize("length", [16_000, 16_001, 9_731, 700])
def test_band_noise_decoder_equals_upsampling_every_band(length):
    """The interval-table decoder is the definition: linear upsampling (align_corners) of each band's gains to T
    samples, times carrier x envelope, summed over bands; its tables follow the utterance (no stale reuse)."""
    import torch.nn.functional as F

    from attacks.subspace import BandNoiseBasis

    basis = BandNoiseBasis(bands=8)
    generator = torch.Generator().manual_seed(length)
    for _ in range(2):  # a second utterance of the same length must not reuse the first one's tables
        weights = basis.shape(torch.randn(length, generator=generator) * 0.1)
        z = torch.randn(3, basis.dimension(length), generator=generator)
        upsampled = F.interpolate(z.reshape(3 * 8, 1, -1), size=length, mode="linear", align_corners=True)
        expected = (upsampled.reshape(3, 8, length) * weights[None]).sum(1)
        assert torch.allclose(basis.decode(z, weights), expected, atol=1e-5)
        assert basis.decode(z.double(), weights).dtype == torch.float64


def test_attacks_accept_the_band_basis():
    from attacks.subspace import BandNoiseBasis

    assert isinstance(ZerothOrderAttack(basis="bands").basis, BandNoiseBasis)
    assert isinstance(EvolutionaryAttack(basis="bands").basis, BandNoiseBasis)
    with pytest.raises(ValueError, match="basis"):
        ZerothOrderAttack(basis="wavelets")


def test_targeted_success_criteria():
    from attacks.goals import meets_target
    from attacks.oracle import QueryResult
    from campaigns.campaign import GoalSpec

    heard = ["OPEN THE DOOR", "please open the door now", "REOPEN THE DOOR", "OPEN A DOOR", "CLOSE A WINDOW"]
    expected = {"exact": [True, False, False, False, False], "contains": [True, True, False, False, False],
                "wer": [True, False, True, True, False]}  # WER <= 0.34: one word of three may differ
    for criterion, wanted in expected.items():
        assert [meets_target("OPEN THE DOOR", t, criterion, 0.34) for t in heard] == wanted, criterion
        goal = GoalSpec("targeted", criterion=criterion).build("")
        assert goal.judge(QueryResult(transcripts=heard))[1].tolist() == wanted
    with pytest.raises(ValueError, match="criterion"):
        GoalSpec("targeted", criterion="close enough")
    # the default criterion leaves the cache key of campaigns cached before criteria existed unchanged
    assert set(GoalSpec("targeted").key()) == {"kind", "target", "min_wer", "adaptive", "evasion_weight",
                                               "evasion_margin", "detector_samples"}
    assert GoalSpec("targeted", criterion="contains").key()["criterion"] == "contains"
    assert GoalSpec("targeted", criterion="wer").label == "targeted-wer0.34"
