"""The carrier attack (AC): a start the system already hears as the goal, a decision-based shrink toward the
source, transcripts only, inside every budget. On the toy recognizer (tests/toy_system.py), which hears no words,
the carrier is a fixed harmonic signal instead of espeak-ng speech."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch

from attacks.carrier import CarrierAttack
from attacks.constraints import Constraints, PerturbationBudget
from attacks.evolutionary import EvolutionaryAttack
from attacks.goals import DetectorEvasion, Targeted, Untargeted
from attacks.oracle import OracleServer, QueryOracle
from attacks.subspace import BandNoiseBasis
from attacks.zeroth_order import ZerothOrderAttack
from tests.test_attacks import server, speech_like  # noqa: F401 - server: the toy's oracle fixture
from tests.toy_system import toy_system


class ToyCarrier(CarrierAttack):
    """The carrier attack with a fixed 'rendering' (a harmonic signal of another pitch) for the toy recognizer."""

    def render(self, text: str, sample_rate: int, rate: int) -> list[torch.Tensor]:
        return [torch.from_numpy(speech_like(0.8, seed=3))]


class TwoRateCarrier(ToyCarrier):
    """A 'rendering' that differs with the speaking rate; remembers the rates it rendered."""

    def __init__(self, **options) -> None:
        super().__init__(**options)
        self.rendered: list[int] = []

    def render(self, text: str, sample_rate: int, rate: int) -> list[torch.Tensor]:
        self.rendered.append(rate)
        return [torch.from_numpy(speech_like(0.8, seed=3 if rate == 120 else 5))]


class RecordingOracle(QueryOracle):
    """A query session that remembers what each call asked for."""

    def __init__(self, ticket) -> None:
        super().__init__(ticket)
        self.requests: list[dict] = []

    def query(self, waveforms, **request):
        self.requests.append(request)
        return super().query(waveforms, **request)


@pytest.fixture(scope="module")
def hard_label_server():
    with OracleServer(functools.partial(toy_system, 0, hard_label=True)) as server:
        yield server


def toy_target(server, clean: np.ndarray, attack: CarrierAttack) -> str:
    """The toy's transcript of the attack's first start (the carrier mixed in at its first level): a target the
    carrier reaches at once and a score-based search has to find character by character."""
    start = attack.starts(torch.from_numpy(clean), "", 16_000)[0]
    return server.session(1).transcribe((torch.from_numpy(clean) + start).numpy())[0]


def test_the_band_split_sums_to_the_signal():
    signal = torch.from_numpy(speech_like(0.7, seed=1))
    signal[::2] += 0.05  # content at every frequency up to the Nyquist bin
    split = BandNoiseBasis(bands=8, low_hz=0.0, high_hz=8_000.0, envelope=False).split(signal)
    assert split.shape == (8, signal.numel())
    torch.testing.assert_close(split.sum(0), signal, atol=1e-5, rtol=0)
    assert (split.pow(2).sum(1) > 0).all()  # every band holds some of it


def test_espeak_renders_the_target_in_every_voice():
    attack = CarrierAttack(voices=["en-us+m3", "en+f2"], levels_db=[-5.0, 0.0])
    spoken = attack.render("OPEN THE DOOR", 16_000, 160)
    assert len(spoken) == 2
    for audio in spoken:
        assert 0.4 < audio.numel() / 16_000 < 2.5  # a short phrase, its silences trimmed
        assert float(audio.abs().max()) == pytest.approx(1.0)
    clean = torch.from_numpy(speech_like(1.0))
    starts = attack.starts(clean, "OPEN THE DOOR", 16_000)
    assert starts.shape == (2 * 3, clean.numel())  # per voice: two levels and the replacement
    rms = starts.pow(2).mean(1).sqrt() / clean.pow(2).mean().sqrt()
    torch.testing.assert_close(rms[:2], torch.tensor([10 ** (-5 / 20), 1.0]), rtol=1e-4, atol=0)
    torch.testing.assert_close(starts[2] + clean, starts[1])  # replacing = the carrier alone at the speech's level


def test_renderings_do_not_depend_on_what_the_process_synthesized_before():
    from core.espeak import EspeakEngine, VoiceSettings

    voices = ["en-us+m3", "en+m1"]  # voices whose samples drift with espeak-ng's state in one process
    first = CarrierAttack(voices=voices).render("OPEN THE DOOR", 16_000, 160)
    for _ in range(2):  # what earlier utterances of an attacker process leave behind
        EspeakEngine.instance().synthesize("turn on the lights", VoiceSettings("en-us", "m3", rate=120))
    again = CarrierAttack(voices=voices).render("OPEN THE DOOR", 16_000, 160)
    for a, b in zip(first, again):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_carrier_reaches_a_target_that_score_based_attacks_miss(server):
    clean = speech_like(1.5)
    attack = ToyCarrier(levels_db=[0.0], replace=False)
    goal = Targeted(toy_target(server, clean, attack))
    constraints = Constraints(PerturbationBudget(mode="snr", snr_db=10.0))
    result = attack(server.session(600), clean, goal, constraints, seed=0)
    assert result.success, result.transcript_adversarial
    assert result.transcript_adversarial == goal.target
    assert result.snr_db >= 10.0 - 1e-3 and result.mfcc_similarity >= 0.95 - 1e-4
    start_snr = -10 * np.log10(1.0)  # the start: the carrier at the speech's own level, 0 dB
    assert result.snr_db - start_snr >= 10.0  # the shrink moved it 10 dB toward the source


@pytest.mark.slow
def test_score_based_attacks_miss_the_carrier_target(server):
    clean = speech_like(1.5)
    goal = Targeted(toy_target(server, clean, ToyCarrier(levels_db=[0.0], replace=False)))
    constraints = Constraints(PerturbationBudget(mode="snr", snr_db=10.0))
    for other in (ZerothOrderAttack(directions=8, basis="bands", envelope=False),
                  EvolutionaryAttack(population=16, basis="bands", envelope=False)):
        missed = other(server.session(600), clean, goal, constraints, seed=0)
        assert not missed.success, f"{other.name} met the target: the toy case is not a carrier-only case"


@pytest.mark.parametrize("mode", ["snr", "linf"])
def test_carrier_never_exceeds_its_budgets(server, mode):
    clean = speech_like(1.0)
    attack = ToyCarrier(levels_db=[0.0], replace=False)
    goal = Targeted(toy_target(server, clean, attack))
    constraints = Constraints(PerturbationBudget(mode=mode))
    oracle = server.session(40)
    result = attack(oracle, clean, goal, constraints, seed=0)
    assert not result.success  # 40 queries are not enough to get inside the budget
    assert result.queries == 40 and server.usage(oracle.session_id) == (40, 40)
    adversarial = torch.from_numpy(result.adversarial)
    clean = torch.from_numpy(clean)
    assert bool(constraints.feasible(clean, (adversarial - clean)[None])[0])  # the output is always feasible
    assert not torch.equal(adversarial, clean)  # and it is the best feasible point queried, not the clean audio


def test_carrier_needs_transcripts_only(server, hard_label_server):
    clean = speech_like(1.0)
    transcript = server.session(1).transcribe(clean)[0]
    oracle = RecordingOracle(server.session(200).hand_over())
    result = ToyCarrier()(oracle, clean, Untargeted(transcript), Constraints(PerturbationBudget(mode="snr")))
    assert result.success and oracle.requests
    assert all(request.get("score_texts") is None for request in oracle.requests)  # never asks for a score
    hard = hard_label_server.session(200)
    assert not hard.can_score
    result = ToyCarrier()(hard, clean, Untargeted(transcript), Constraints(PerturbationBudget(mode="snr")))
    assert result.success and result.queries <= 200


def test_adaptive_carrier_evades_the_detector():
    clean = speech_like(1.0)
    with OracleServer(functools.partial(toy_system, 0, detector_threshold=0.105)) as server:
        transcript = server.session(1).transcribe(clean)[0]
        goal = DetectorEvasion(Untargeted(transcript), samples=1)
        result = ToyCarrier()(server.session(300), clean, goal, Constraints(PerturbationBudget(mode="snr")), seed=0)
    assert result.success
    assert result.detector_score is not None and result.detector_score < 0.105


def test_a_carrier_the_system_never_hears_as_the_target_stops_early_with_a_feasible_output(server):
    clean = speech_like(1.0)
    attack = ToyCarrier(levels_db=[-5.0, 0.0])  # the toy transcribes gibberish: never "OPEN THE DOOR"
    constraints = Constraints(PerturbationBudget(mode="snr"))
    result = attack(server.session(100), clean, Targeted("OPEN THE DOOR"), constraints, seed=0)
    assert not result.success and result.queries == 2 * 3 + 1  # the starts at 160 and at 120 wpm, a projection
    clean = torch.from_numpy(clean)
    delta = torch.from_numpy(result.adversarial) - clean
    assert bool(constraints.feasible(clean, delta[None])[0]) and delta.abs().max() > 0


def test_a_slower_rendering_is_tried_only_where_no_faster_one_is_heard(server):
    clean = speech_like(1.0)

    def heard(rate: int) -> str:
        start = TwoRateCarrier(levels_db=[0.0], replace=False).starts(torch.from_numpy(clean), "", 16_000, rate)[0]
        return server.session(1).transcribe((torch.from_numpy(clean) + start).numpy())[0]

    assert heard(120) != heard(160)
    constraints = Constraints(PerturbationBudget(mode="snr"))
    for target, rounds in ((heard(160), [160]), (heard(120), [160, 120])):
        attack = TwoRateCarrier(levels_db=[0.0], replace=False)
        result = attack(server.session(60), clean, Targeted(target), constraints, seed=0)
        assert attack.rendered == rounds
        assert result.queries > len(rounds) + 1  # a start was heard: the search went on past its projection
