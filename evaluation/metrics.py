"""The benchmark tables' figures (pure functions over per-utterance arrays), each with a 95 % interval.

- corpus WER: total word edits / total reference words (jiwer alignments), not a mean of per-utterance WERs;
- detection: AUC (torchmetrics), FP % / FN % at a calibrated threshold (``evaluation.calibration``);
- UR %: share of targeted attacks that did not end with the target transcript *and* no detector flag.

Rates that count inputs (success, UR, FP, FN, TPR, share flagged: k of n at a fixed threshold) carry the Wilson
score interval (``scipy.stats.binomtest``): a bootstrap of 13 attacks that all failed resamples only failures and
reports [100, 100], where 13 of 13 says no more than >= 77 %. Ratios and rank statistics (WER, AUC, ECE) carry a
percentile bootstrap over utterances: ``scipy.stats.bootstrap`` was not used because AUC is undefined on resamples
holding one class; here such resamples are skipped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import jiwer
import numpy as np
import torch
from torchmetrics.functional.classification import binary_auroc

INTERVALS = ("95 %, Wilson score for rates that count inputs (success, UR, FP, FN, TPR, flagged), bootstrap over "
             "utterances for WER, AUC and ECE")


@dataclass(frozen=True)
class Estimate:
    """A figure with its 95 % interval (``low`` / ``high`` are NaN when there is none, e.g. a single utterance)."""

    value: float
    low: float
    high: float

    def as_dict(self) -> dict:
        return {"value": self.value, "ci_low": self.low, "ci_high": self.high}

    def format(self, digits: int = 1) -> str:
        if not np.isfinite(self.value):
            return "-"
        if not (np.isfinite(self.low) and np.isfinite(self.high)):
            return f"{self.value:.{digits}f}"
        return f"{self.value:.{digits}f} [{self.low:.{digits}f}, {self.high:.{digits}f}]"


def word_edits(references: list[str], hypotheses: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Per utterance: word edits (S + D + I) [N] and reference words [N]."""
    if len(references) != len(hypotheses):
        raise ValueError(f"{len(references)} references but {len(hypotheses)} hypotheses")
    edits, words = np.zeros(len(references)), np.zeros(len(references))
    for i, (reference, hypothesis) in enumerate(zip(references, hypotheses)):
        words[i] = len(reference.split())
        if not words[i]:
            raise ValueError(f"utterance {i}: empty reference transcript (WER is undefined)")
        if hypothesis.split():
            out = jiwer.process_words(reference, hypothesis)
            edits[i] = out.substitutions + out.deletions + out.insertions
        else:
            edits[i] = words[i]
    return edits, words


def bootstrap(statistic: Callable[[np.ndarray], float], size: int, resamples: int = 1000, seed: int = 0,
              value: float | None = None) -> Estimate:
    """``statistic(indices)`` on all N items and on ``resamples`` resamples of them; NaN results are skipped."""
    full = statistic(np.arange(size)) if value is None else value
    if size < 2 or resamples < 1:
        return Estimate(float(full), np.nan, np.nan)
    generator = np.random.default_rng(seed)
    values = np.array([statistic(generator.integers(0, size, size)) for _ in range(resamples)], dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size < max(10, resamples // 2):
        return Estimate(float(full), np.nan, np.nan)
    low, high = np.percentile(values, [2.5, 97.5])
    return Estimate(float(full), float(low), float(high))


def corpus_wer(references: list[str], hypotheses: list[str], resamples: int = 1000, seed: int = 0) -> Estimate:
    """Corpus WER in % with its interval."""
    edits, words = word_edits(references, hypotheses)
    return bootstrap(lambda i: 100.0 * edits[i].sum() / words[i].sum(), len(edits), resamples, seed)


def auc(scores, labels) -> float:
    """Area under the ROC curve in % (NaN when only one class is present)."""
    scores, labels = np.asarray(scores, np.float64), np.asarray(labels).astype(int)
    if labels.min(initial=1) == labels.max(initial=0):
        return float("nan")
    return 100.0 * float(binary_auroc(torch.from_numpy(scores), torch.from_numpy(labels)))


def proportion(outcomes) -> Estimate:
    """% of true ``outcomes`` [N] (bool) with the Wilson score 95 % interval; NaN for N = 0."""
    from scipy.stats import binomtest

    outcomes = np.asarray(outcomes, bool)
    if not outcomes.size:
        return Estimate(float("nan"), np.nan, np.nan)
    interval = binomtest(int(outcomes.sum()), outcomes.size).proportion_ci(0.95, method="wilson")
    return Estimate(100.0 * float(outcomes.mean()), 100.0 * interval.low, 100.0 * interval.high)


def detection(scores, labels, threshold: float, resamples: int = 1000, seed: int = 0) -> dict[str, Estimate]:
    """AUC % (bootstrap interval), FP % of the benign and FN % of the adversarial inputs at ``threshold`` (flag:
    score >= threshold; Wilson intervals)."""
    scores, labels = np.asarray(scores, np.float64), np.asarray(labels).astype(int)
    fp, fn = proportion(scores[labels == 0] >= threshold), proportion(scores[labels == 1] < threshold)
    return {"auc": bootstrap(lambda i: auc(scores[i], labels[i]), len(scores), resamples, seed), "fp": fp, "fn": fn}


def flag_rate(scores, threshold: float) -> Estimate:
    """% of inputs flagged (score >= threshold), e.g. clean speech a detector would reject (Wilson interval)."""
    return proportion(np.asarray(scores, np.float64) >= threshold)


def filtered_wer(references: list[str], hypotheses: list[str], flagged, resamples: int = 1000,
                 seed: int = 0) -> dict[str, Estimate]:
    """WER % of the inputs a detector lets through, and its change against no filtering (negative = better)."""
    edits, words = word_edits(references, hypotheses)
    kept = ~np.asarray(flagged, bool)

    def after(i: np.ndarray) -> float:
        k = i[kept[i]]
        return 100.0 * edits[k].sum() / words[k].sum() if k.size else float("nan")

    def change(i: np.ndarray) -> float:
        return after(i) - 100.0 * edits[i].sum() / words[i].sum()

    return {"wer_filtered": bootstrap(after, len(edits), resamples, seed),
            "wer_change": bootstrap(change, len(edits), resamples, seed)}


def unsuccessful_rate(success, flagged=None) -> Estimate:
    """UR %: attacks that failed (no target transcript) or were flagged by a detector (Wilson interval)."""
    success = np.asarray(success, bool)
    passed = success if flagged is None else success & ~np.asarray(flagged, bool)
    return proportion(~passed)


def success_rate(success) -> Estimate:
    """% of attacks that met their goal (Wilson interval)."""
    return proportion(success)


def true_positive_rate(scores, labels, threshold: float) -> Estimate:
    """TPR % (adversarial inputs flagged, score >= ``threshold``; Wilson interval)."""
    scores, labels = np.asarray(scores, np.float64), np.asarray(labels).astype(int)
    return proportion(scores[labels == 1] >= threshold)


def expected_calibration_error(probabilities, labels, bins: int = 10, resamples: int = 1000, seed: int = 0
                               ) -> Estimate:
    """ECE % of predicted probabilities of "adversarial" against the labels (torchmetrics, ``bins`` equal-width bins,
    L1): the gap between how sure a detector says it is and how often it is right."""
    from torchmetrics.functional.classification import binary_calibration_error

    probabilities = torch.as_tensor(np.asarray(probabilities, np.float64)).float()
    labels = torch.as_tensor(np.asarray(labels).astype(np.int64))
    if not len(labels):
        return Estimate(float("nan"), np.nan, np.nan)
    return bootstrap(lambda i: 100.0 * float(binary_calibration_error(probabilities[i], labels[i], n_bins=bins)),
                     len(labels), resamples, seed)
