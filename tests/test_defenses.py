"""Preprocessing defenses (LS, DS, SE) and transcript-based detectors (TD, transform consistency)."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch

from core.batch import pad_waveforms
from lit_modules.defenses import DownSampling, LocalSmoothing
from lit_modules.defenses.attention_unet import AttentionUNet
from lit_modules.defenses.enhancer_module import EnhancerModule
from lit_modules.detectors.temporal_dependency import TemporalDependencyDetector, prefix_mismatch
from lit_modules.detectors.transform_consistency import TransformConsistencyDetector
from lit_modules.target_system import TargetSystem
from tests.conftest import tone
from tests.test_attacks import speech_like
from tests.toy_system import toy_backend


def sine(frequency: float, seconds: float = 0.5, rate: int = 16_000) -> torch.Tensor:
    return 0.5 * torch.sin(2 * np.pi * frequency * torch.arange(int(seconds * rate)) / rate)


def band_energy(x: torch.Tensor, low: float, high: float, rate: int = 16_000) -> float:
    spectrum = torch.fft.rfft(x).abs() ** 2
    freqs = torch.fft.rfftfreq(x.numel(), 1 / rate)
    return float(spectrum[(freqs >= low) & (freqs < high)].sum())


def test_local_smoothing_keeps_low_frequencies_and_padding():
    clean = sine(300.0)[None]
    padded = torch.cat([clean, torch.zeros(1, 100)], dim=1)
    smoothed, lengths = LocalSmoothing(window=5)(padded, torch.tensor([clean.shape[1]]))
    assert torch.allclose(smoothed[0, 2 : clean.shape[1] - 2], clean[0, 2:-2], atol=0.01)
    assert smoothed[0, clean.shape[1]:].abs().max() == 0
    speech = torch.from_numpy(speech_like())[None]
    out, _ = LocalSmoothing(3)(speech, torch.tensor([speech.shape[1]]))
    assert float((out - speech).pow(2).mean() / speech.pow(2).mean()) < 0.05
    with pytest.raises(ValueError, match="odd"):
        LocalSmoothing(4)


def test_down_sampling_removes_content_above_4_khz_and_keeps_speech_band():
    mixture = (sine(500.0) + sine(6_000.0))[None]
    out, _ = DownSampling()(mixture, torch.tensor([mixture.shape[1]]))
    assert band_energy(out[0], 5_000, 8_000) < 1e-3 * band_energy(mixture[0], 5_000, 8_000)
    assert band_energy(out[0], 400, 600) > 0.95 * band_energy(mixture[0], 400, 600)


def test_prefix_mismatch_metrics():
    assert prefix_mismatch("TURN ON", "TURN ON THE LIGHT", "wer") == 0.0
    assert prefix_mismatch("OPEN THE", "TURN ON THE LIGHT", "wer") == 1.0
    assert prefix_mismatch("TURN", "TURN ON", "lcp") == 0.0
    assert prefix_mismatch("TXRN", "TURN ON", "lcp") == 0.75
    assert prefix_mismatch("TURN", "TURN ON", "cer") == 0.0
    with pytest.raises(ValueError, match="metric"):
        prefix_mismatch("A", "A", "bleu")


def test_temporal_dependency_is_low_on_clean_and_high_on_a_spliced_two_utterance_input():
    """A splice of a quiet utterance and a normal-level one is not temporally consistent for a recognizer with
    utterance-level feature normalization (the toy's and the small backends' front-end): in the whole input the
    loud part sets the statistics, so the quiet part's transcript differs from what its own prefix gives."""
    detector = TemporalDependencyDetector(toy_backend(0), k=0.5, metric="cer")
    clean = [torch.from_numpy(speech_like(2.0, seed=s)) for s in range(4)]
    spliced = [torch.cat([0.1 * torch.from_numpy(speech_like(1.0, seed=s)), torch.from_numpy(speech_like(1.0, seed=s + 10))])
               for s in range(4)]
    clean_scores = detector.score(*pad_waveforms(clean))
    spliced_scores = detector.score(*pad_waveforms(spliced))
    assert clean_scores.max() < 0.3, clean_scores
    assert spliced_scores.min() > 0.6, spliced_scores


def test_enhancer_trains_a_few_steps_and_reduces_noise():
    torch.manual_seed(0)
    clean = torch.from_numpy(np.stack([speech_like(0.5, seed=s) for s in range(4)]))
    noisy = clean + 0.03 * torch.randn_like(clean)
    lengths = torch.full((4,), clean.shape[1])
    module = EnhancerModule(AttentionUNet(channels=(8, 16), kernel=9), spectral_weight=0.0)
    optimizer = torch.optim.Adam(module.parameters(), lr=3e-3)

    def error() -> float:
        with torch.no_grad():
            return float((module.enhancer(noisy, lengths)[0] - clean).pow(2).mean())

    before = error()
    for _ in range(60):
        enhanced, _ = module.enhancer(noisy, lengths)
        loss = torch.nn.functional.l1_loss(enhanced, clean)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert error() < 0.7 * before, (before, error())
    assert before == pytest.approx(float((noisy - clean).pow(2).mean()))  # untrained: the identity


def test_defenses_and_detectors_plug_into_the_target_system():
    backend = toy_backend(0)
    x = torch.from_numpy(speech_like())[None]
    n = torch.tensor([x.shape[1]])
    for defense in (LocalSmoothing(3), DownSampling(), AttentionUNet(channels=(8,), kernel=5)):
        answer = TargetSystem(backend, defense=defense).respond(x, n, ["A"])
        assert len(answer["transcripts"]) == 1 and len(answer["scores"]) == 1
    for detector in (TemporalDependencyDetector(backend, k=0.5), TransformConsistencyDetector(backend, DownSampling())):
        answer = TargetSystem(backend, detector=detector).respond(x, n, detect=True)
        assert 0.0 <= answer["detector_scores"][0] <= 1.5
        assert detector.decide(x, n).dtype == torch.bool


def test_defended_system_runs_behind_the_oracle():
    from attacks.oracle import OracleServer
    from tests.toy_system import toy_system_with_defense

    with OracleServer(functools.partial(toy_system_with_defense, "down_sampling")) as server:
        oracle = server.session(4)
        assert len(oracle.transcribe(np.stack([speech_like()] * 2))) == 2


def test_the_recognizer_hears_the_defended_audio_and_the_detector_the_submitted_audio():
    """A 6 kHz probe tone (RMS 0.21): down-sampling removes it before the recognizer, which hears LOW and almost no
    energy above 4 kHz, while the detector, which guards the input, sees it whole; without the defense the
    recognizer hears it too."""
    from attacks.oracle import OracleServer
    from tests.toy_system import probe_system

    probe = tone(1.0, frequency=6_000.0)[None]
    plain = probe_system(None).respond(torch.from_numpy(probe), torch.tensor([probe.shape[1]]), ["A"], detect=True)
    assert plain["transcripts"] == ["HIGH"] and plain["scores"][0] == pytest.approx(0.3 / 2**0.5, rel=0.01)
    assert plain["detector_scores"][0] == pytest.approx(plain["scores"][0])
    with OracleServer(functools.partial(probe_system, "down_sampling")) as server:
        answer = server.session(1).query(probe, score_texts="A", detect=True)
    assert answer.transcripts == ["LOW"] and answer.scores[0] < 0.01 * plain["scores"][0]
    assert answer.detector_scores[0] == pytest.approx(plain["detector_scores"][0])
