"""Task 1's detection rows and Task 2's table on fixtures whose every outcome is known, cell by cell (issue:
integrity): some attacks reach the target, some are flagged, some both; ties in the detector's scores.

The fixtures are real audio files read through the benchmarks' own scoring path: tones whose level is the detector's
score (RMS) and whose frequency decides what the recognizer hears behind down-sampling (content above 4 kHz is
removed, so a 6 kHz tone falls silent and a 1 kHz one passes).
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import soundfile
import torch
from scipy import stats

from datamodules.adversarial.datamodule import LabelledExample
from evaluation import metrics
from evaluation.detector_suite import CalibratedDetector
from evaluation.task1 import detection_row
from evaluation.task2 import console_tables, defense_outcomes, ur_rows, wide
from lit_modules.backends.base import ASRBackend
from lit_modules.defenses import DownSampling
from tests.toy_system import LoudnessDetector

TARGET = "OPEN THE DOOR"


class LoudnessRecognizer(ASRBackend):
    """Hears the target phrase when the audio's RMS exceeds ``level``, else silence ("NOTHING")."""

    def __init__(self, level: float) -> None:
        super().__init__()
        self.level = level

    def _transcribe(self, waveforms, lengths):
        rms = ((waveforms**2).sum(1) / lengths).sqrt()
        return [TARGET if value > self.level else "NOTHING" for value in rms.tolist()]


def tone_example(folder, name: str, frequency: float, rms: float, label: int = 1, kind: str = "AE",
                 transcript: str = "A B") -> LabelledExample:
    t = np.arange(16_000) / 16_000
    path = folder / f"{name}.wav"
    soundfile.write(str(path), (rms * 2**0.5 * np.sin(2 * np.pi * frequency * t)).astype(np.float32), 16_000,
                    subtype="FLOAT")
    return LabelledExample(str(path), label, kind, transcript, name, f"{name}/{kind}")


# (frequency Hz, RMS, the attack's own success): the detector flags RMS >= 0.15; behind DS a 6 kHz tone is silent
AE = [(1_000, 0.212, True), (1_000, 0.127, True), (6_000, 0.212, True), (6_000, 0.127, True), (1_000, 0.212, False),
      (1_000, 0.035, False)]
AZ = [(6_000, 0.127, True), (1_000, 0.127, True), (6_000, 0.212, False), (6_000, 0.035, False)]
# hand-computed UR % per (attack, defense, backend); b1 hears the target above RMS 0.1, b2 above RMS 0.2
#   AE none: 2 of 6 failed; BNN: passed unflagged = #2, #4 -> 4 of 6 stopped;
#   AE DS, b1: reached = #1, #2, #5 -> 3 of 6 stopped; b2: #1, #5 -> 4 of 6
#   AZ none: 2 of 4; BNN: passed = #1, #2 -> 2 of 4; DS, b1: #2 -> 3 of 4; b2: none -> 4 of 4
EXPECTED = {("AE", "none"): (100 * 2 / 6, 100 * 2 / 6), ("AE", "BNN"): (100 * 4 / 6, 100 * 4 / 6),
            ("AE", "DS"): (100 * 3 / 6, 100 * 4 / 6), ("AZ", "none"): (50.0, 50.0), ("AZ", "BNN"): (50.0, 50.0),
            ("AZ", "DS"): (75.0, 100.0)}


def test_task2_table_matches_hand_computed_values_in_every_cell(tmp_path):
    bnn = CalibratedDetector("BNN-supervised", LoudnessDetector(threshold=0.15), threshold=0.15)
    long_rows = []
    for backend_name, level in (("b1", 0.1), ("b2", 0.2)):
        backend = LoudnessRecognizer(level)
        for attack, cases in (("AE", AE), ("AZ", AZ)):
            examples = [tone_example(tmp_path, f"{attack}{i}", f, rms) for i, (f, rms, _) in enumerate(cases)]
            success = np.array([ok for _, _, ok in cases])
            outcomes = defense_outcomes(["none", "BNN", "DS"], examples, success, backend, {"BNN-supervised": bnn},
                                        lambda name: DownSampling(), TARGET)
            long_rows += ur_rows("snr10", "non-adaptive", attack, backend_name, outcomes)
    table = wide(long_rows, ["b1", "b2"])
    assert [row["evaluation"] for row in table] == ["AE", "AE + BNN", "AE + DS", "AZ", "AZ + BNN", "AZ + DS"]
    for row in table:
        attack, _, defense = row["evaluation"].partition(" + ")
        b1, b2 = EXPECTED[(attack, defense or "none")]
        assert row["b1"].value == pytest.approx(b1) and row["b2"].value == pytest.approx(b2), row
        assert row["Avg."] == pytest.approx((b1 + b2) / 2)
        assert row["budget"] == "snr10" and row["setting"] == "non-adaptive"
    assert {(r["attack"], r["n"]) for r in long_rows} == {("AE", 6), ("AZ", 4)}
    console = console_tables({"unsuccessful_rate": table, "unsuccessful_rate_long": long_rows})["unsuccessful_rate"]
    assert [(r["backend"], r["attack"], r["n"]) for r in console] == [("b1", "AE", 6), ("b1", "AZ", 4), ("b2", "AE", 6),
                                                                      ("b2", "AZ", 4)]
    for row in console:  # one column per defense, the same values as the full table's
        assert [row[d] for d in ("none", "BNN", "DS")] == pytest.approx(
            [EXPECTED[(row["attack"], d)][row["backend"] == "b2"] for d in ("none", "BNN", "DS")])


def test_task1_detection_row_matches_hand_computed_values(tmp_path):
    """Benign AG at RMS 0.05 / 0.10 / 0.20 / 0.30, adversarial at 0.10 (a tie) / 0.25 / 0.35 / 0.40; threshold
    0.22, Youden's 0.32; three clean inputs at 0.05, 0.08 and 0.25."""
    benign = [tone_example(tmp_path, f"ag{i}", 1_000, rms, label=0, kind="AG") for i, rms in
              enumerate((0.05, 0.10, 0.20, 0.30))]
    adversarial = [tone_example(tmp_path, f"ae{i}", 1_000, rms) for i, rms in enumerate((0.10, 0.25, 0.35, 0.40))]
    clean = [tone_example(tmp_path, f"clean{i}", 1_000, rms, label=0, kind="clean") for i, rms in
             enumerate((0.05, 0.08, 0.25))]
    hypotheses = ["A B", "A B", "A X", "A B", "X Y", "A X", "X Y", "X Y Z"]  # edits 0 0 1 0 | 2 1 2 3 of 2 words each
    calibrated = CalibratedDetector("probe", LoudnessDetector(), threshold=0.22, threshold_youden=0.32,
                                    thresholds_at={0.01: 0.31, 0.05: 0.22})
    preset = SimpleNamespace(seed=0, bootstrap_resamples=0)
    harder = {"babble": [tone_example(tmp_path, f"babble{i}", 1_000, rms, label=0, kind="babble")
                         for i, rms in enumerate((0.05, 0.30))]}
    row, (values, labels, auc) = detection_row("probe", calibrated, benign + adversarial, hypotheses, clean, preset,
                                               16_000, batch_size=3, negatives=harder)
    assert values == pytest.approx([0.05, 0.10, 0.20, 0.30, 0.10, 0.25, 0.35, 0.40], abs=1e-4)
    assert list(labels) == [0, 0, 0, 0, 1, 1, 1, 1]
    # AUC: of 16 (adversarial, benign) pairs, 12 ordered right and one tie counted half
    assert row["AUC %"].value == pytest.approx(100 * 12.5 / 16) and auc == pytest.approx(12.5 / 16)
    assert row["FP %"].value == pytest.approx(25.0) and row["FN %"].value == pytest.approx(25.0)  # 0.30; 0.10
    assert row["FP % (J)"] == pytest.approx(0.0) and row["FN % (J)"] == pytest.approx(50.0)  # 0.10 and 0.25 pass
    assert row["FP % clean"].value == pytest.approx(100 / 3)
    assert row["FP % babble"].value == pytest.approx(50.0)  # 0.30 is flagged at 0.22
    assert row["TPR % @1% FPR"].value == pytest.approx(50.0)  # 0.35 and 0.40 reach 0.31
    assert row["TPR % @5% FPR"].value == pytest.approx(75.0)  # and 0.25 reaches 0.22
    assert np.isnan(row["ECE %"].value)  # an RMS is no probability
    assert row["WER %"].value == pytest.approx(100 * 9 / 16)
    # flagged at 0.22: benign 0.30 (0 edits) and adversarial 0.25, 0.35, 0.40 (6 edits): 3 edits of 8 words left
    assert row["WER filtered %"].value == pytest.approx(100 * 3 / 8)
    assert row["WER change"].value == pytest.approx(100 * 3 / 8 - 100 * 9 / 16)
    assert row["n"] == 8


def test_expected_calibration_error_by_hand():
    # 10 bins: 0.15 (labels 0, 1): |0.5 - 0.15| x 2/5; 0.85 (1, 1): |1 - 0.85| x 2/5; 0.55 (0): 0.55 x 1/5
    ece = metrics.expected_calibration_error([0.15, 0.15, 0.85, 0.85, 0.55], [0, 1, 1, 1, 0], resamples=0)
    assert ece.value == pytest.approx(100 * (0.35 * 2 / 5 + 0.15 * 2 / 5 + 0.55 / 5))
    assert metrics.expected_calibration_error([0.95, 0.05], [1, 0], resamples=0).value == pytest.approx(5.0)


def test_auc_counts_tied_scores_as_half_a_correct_order():
    # every score tied: chance; one tie among four pairs: (3 + 0.5) / 4
    assert metrics.auc([0.5, 0.5, 0.5, 0.5], [0, 1, 0, 1]) == pytest.approx(50.0)
    assert metrics.auc([0.1, 0.4, 0.4, 0.8], [0, 0, 1, 1]) == pytest.approx(100 * 3.5 / 4)
    assert np.isnan(metrics.auc([0.1, 0.2], [1, 1]))


def test_bootstrap_percentiles_match_the_binomial_distribution():
    """The share of 15 failures in n = 50 attacks, bootstrapped: a resample's share is Binomial(50, 0.3) / 50, so
    the percentile interval is that distribution's 2.5 % and 97.5 % quantiles (up to resampling noise: 4,000
    resamples)."""
    failed = np.array([True] * 15 + [False] * 35)
    estimate = metrics.bootstrap(lambda i: 100.0 * failed[i].mean(), failed.size, resamples=4_000, seed=1)
    low, high = 100 * stats.binom.ppf([0.025, 0.975], 50, 0.3) / 50
    assert estimate.value == pytest.approx(30.0)
    assert abs(estimate.low - low) <= 2.0 and abs(estimate.high - high) <= 2.0, (estimate, low, high)
    assert estimate.low < 30.0 < estimate.high


def test_loudness_fixture_scores_its_own_rms(tmp_path):
    """(The fixture's premise: the detector's score of a tone file is the RMS it was written with.)"""
    example = tone_example(tmp_path, "probe", 1_000, 0.25)
    audio, _ = soundfile.read(example.path, dtype="float32")
    score = LoudnessDetector().score(torch.from_numpy(audio)[None], torch.tensor([audio.size]))
    assert float(score) == pytest.approx(0.25, abs=1e-4)


def test_task1_console_keeps_wer_and_success_and_the_main_detection_columns():
    from evaluation.task1 import CONSOLE_DETECTION, console_tables

    wer = [{"backend": "w", "budget": "snr10", "n": 8, "clean": metrics.Estimate(30.0, 10.0, 50.0),
            "AE": metrics.Estimate(50.0, 30.0, 70.0), "AE success %": 62.5, "AE SNR dB": 22.0}]
    detection = [{"backend": "w", "budget": "snr10", "detector": "BNN-supervised", "n": 12,
                  "AUC %": metrics.Estimate(88.9, 54.5, 100.0), "FP %": metrics.Estimate(0.0, 0.0, 0.0),
                  "FN %": metrics.Estimate(33.3, 0.0, 62.5), "ECE %": metrics.Estimate(13.8, 7.8, 30.1)}]
    console = console_tables({"wer": wer, "detection": detection})
    assert console["wer"] == [{"backend": "w", "budget": "snr10", "n": 8, "clean": 30.0, "AE": 50.0,
                               "AE success %": 62.5}]
    assert list(console["detection"][0]) == [c for c in CONSOLE_DETECTION if c in detection[0]]
    assert console["detection"][0]["AUC %"] == 88.9 and "ECE %" not in console["detection"][0]
