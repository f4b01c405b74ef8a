"""The benchmark figures against values computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from evaluation import metrics
from evaluation.report import flat, markdown_table
from evaluation.task2 import wide


def test_corpus_wer_counts_edits_over_all_reference_words():
    # 1 substitution of 4 words, 1 deletion of 2 words, an empty hypothesis of 1 word: 3 edits / 7 words
    value = metrics.corpus_wer(["A B C D", "E F", "G"], ["A X C D", "E", ""], resamples=0).value
    assert value == pytest.approx(100 * 3 / 7)


def test_corpus_wer_rejects_an_empty_reference():
    with pytest.raises(ValueError, match="empty reference"):
        metrics.corpus_wer(["A", ""], ["A", "B"])


def test_auc_and_error_rates_at_a_threshold():
    scores = np.array([0.1, 0.4, 0.35, 0.8])
    labels = np.array([0, 0, 1, 1])
    found = metrics.detection(scores, labels, threshold=0.3, resamples=0)
    assert found["auc"].value == pytest.approx(75.0)  # 3 of 4 (positive, negative) pairs ordered correctly
    assert found["fp"].value == pytest.approx(50.0)  # 0.4 flagged of two benign
    assert found["fn"].value == pytest.approx(0.0)


def test_filtering_removes_flagged_inputs_from_the_wer():
    references, hypotheses = ["A B", "C D", "E F"], ["A B", "X Y", "E"]  # 0, 2, 1 edits
    out = metrics.filtered_wer(references, hypotheses, flagged=[False, True, False], resamples=0)
    assert out["wer_filtered"].value == pytest.approx(100 * 1 / 4)
    assert out["wer_change"].value == pytest.approx(100 * 1 / 4 - 100 * 3 / 6)


def test_unsuccessful_rate_counts_failures_and_flags():
    success = [True, True, False, True]
    assert metrics.unsuccessful_rate(success).value == pytest.approx(25.0)
    assert metrics.unsuccessful_rate(success, [True, False, False, False]).value == pytest.approx(50.0)


def test_flag_rate_counts_inputs_at_or_above_the_threshold():
    assert metrics.flag_rate([0.1, 0.5, 0.7, 0.2], threshold=0.5).value == pytest.approx(50.0)
    assert math.isnan(metrics.flag_rate([], threshold=0.5).value)


def test_interval_brackets_the_value_and_narrows_with_data():
    generator = np.random.default_rng(0)
    small, large = generator.random(20) < 0.3, generator.random(2000) < 0.3
    a, b = metrics.unsuccessful_rate(small), metrics.unsuccessful_rate(large)
    assert a.low <= a.value <= a.high and b.low <= b.value <= b.high
    assert (b.high - b.low) < (a.high - a.low)
    words = generator.integers(1, 10, 20)
    wer = metrics.corpus_wer([" ".join(["A"] * n) for n in words], [" ".join(["A"] * (n // 2)) for n in words])
    assert wer.low < wer.value < wer.high  # bootstrap, over utterances


def test_rates_of_counts_carry_wilson_intervals_that_stay_open_when_every_input_agrees():
    """13 attacks, none reached the target: UR 100 %, but 13 of 13 says >= 77.2 % (Wilson), not [100, 100] (what a
    bootstrap of 13 identical outcomes reports). The same for FP / FN / TPR / the share flagged at a threshold."""
    wilson_13 = 100 * 1.959964**2 / (13 + 1.959964**2)  # the Wilson upper bound of 0 of 13: 22.8 %
    ur = metrics.unsuccessful_rate([False] * 13)
    assert ur.value == 100.0 and ur.low == pytest.approx(100 - wilson_13, rel=1e-4) and ur.high == pytest.approx(100)
    scores, labels = np.array([0.1] * 13 + [0.9] * 13), np.array([0] * 13 + [1] * 13)
    found = metrics.detection(scores, labels, threshold=0.5, resamples=200)
    assert found["fp"].value == 0.0 and found["fp"].high == pytest.approx(wilson_13, rel=1e-4)
    assert found["fn"].value == 0.0 and found["fn"].high == pytest.approx(wilson_13, rel=1e-4)
    tpr = metrics.true_positive_rate(scores, labels, threshold=0.5)
    assert tpr.value == 100.0 and tpr.low == pytest.approx(100 - wilson_13, rel=1e-4)
    assert metrics.flag_rate(scores[:13], 0.5).high == pytest.approx(wilson_13, rel=1e-4)
    # FP counts the benign inputs only, FN the adversarial ones: 1 of 4 benign flagged, 2 of 2 adversarial missed
    found = metrics.detection([0.6, 0.1, 0.2, 0.3, 0.4, 0.45], [0, 0, 0, 0, 1, 1], threshold=0.5, resamples=0)
    assert found["fp"].value == pytest.approx(25.0) and found["fn"].value == pytest.approx(100.0)
    assert math.isnan(metrics.detection([0.1, 0.2], [0, 0], 0.5, resamples=0)["fn"].value)


def test_bootstrap_skips_resamples_where_auc_is_undefined():
    found = metrics.detection([0.1, 0.9, 0.2, 0.8], [0, 1, 0, 1], threshold=0.5, resamples=200)
    assert found["auc"].value == pytest.approx(100.0) and math.isfinite(found["auc"].low)


def test_tables_render_estimates_and_flatten_for_csv():
    row = {"backend": "x", "UR %": metrics.Estimate(50.0, 40.0, 60.0)}
    assert "50.0 [40.0, 60.0]" in markdown_table([row])
    assert flat(row) == {"backend": "x", "UR %": 50.0, "UR %_ci_low": 40.0, "UR %_ci_high": 60.0}


def test_table3_layout_averages_over_backends():
    rows = [{"budget": "snr10", "setting": "non-adaptive", "attack": "AE", "defense": d, "backend": b,
             "UR %": metrics.Estimate(v, math.nan, math.nan)}
            for d, b, v in [("none", "a", 10.0), ("none", "b", 30.0), ("LS", "a", 50.0), ("LS", "b", 70.0)]]
    table = wide(rows, ["a", "b"])
    assert [r["evaluation"] for r in table] == ["AE", "AE + LS"]
    assert [r["Avg."] for r in table] == [20.0, 60.0]


def test_asr_wer_beam_rows_ask_for_beam_search_whatever_the_backend_default(monkeypatch, tmp_path):
    """The RNN-T's registry default is greedy: its "beam + LM" row must pass the beam decoding itself."""
    from benchmarks import asr_wer
    from lit_modules.backends.registry import BACKEND_DECODING, DEFAULT_DECODING

    monkeypatch.setattr(asr_wer, "default_language_model", lambda: tmp_path / "lm.json")  # no corpus, no LM training
    rows = {label: options for label, _, options in asr_wer.decoding_variants(["rnnt", "whisper"], 10.0)}
    assert BACKEND_DECODING["rnnt"]["beam_size"] == 1
    assert rows["rnnt (greedy)"]["decoding"]["beam_size"] == 1
    beam = rows[f"rnnt (beam {DEFAULT_DECODING['beam_size']} + char LM)"]["decoding"]
    assert beam["beam_size"] > 1 and beam["lm_path"] == str(tmp_path / "lm.json")
    assert rows["whisper"] == {} and rows["whisper (window >= 10 s)"] == {"min_context_s": 10.0}


def test_attack_strength_reads_success_within_a_budget_from_each_history(tmp_path):
    from benchmarks.attack_strength import success_by
    from core.figures import success_curves

    records = [{"history": [(50, 0.9, False), (400, 0.2, True)]},    # succeeds at 400 queries
               {"history": [(50, 0.9, False), (1500, 0.1, True)]},   # at 1,500
               {"history": [(50, 0.9, False), (2000, 0.8, False)]}]  # never
    assert success_by(records, 399) == 0
    assert success_by(records, 1000) == pytest.approx(1 / 3)
    assert success_by(records, 2000) == pytest.approx(2 / 3)
    path = success_curves({"AZ targeted": [r["history"] for r in records]}, 2000, tmp_path / "curve.png", "t")
    assert path.is_file() and path.stat().st_size > 1000


def test_success_rate_has_a_wilson_interval_that_stays_open_at_zero_and_one_hundred():
    from evaluation.metrics import success_rate

    none = success_rate([False] * 8)
    assert none.value == 0.0 and none.low == pytest.approx(0.0, abs=1e-9)
    assert none.high == pytest.approx(100 * 1.959964**2 / (8 + 1.959964**2), rel=1e-4)  # 32.4 %, not 0
    every = success_rate([True] * 8)
    assert every.value == 100.0 and every.low == pytest.approx(100 - none.high, rel=1e-4)
    half = success_rate([True, False] * 10)
    assert half.low < 50.0 < half.high and half.high - 50.0 == pytest.approx(50.0 - half.low)
    assert np.isnan(success_rate([]).value)
