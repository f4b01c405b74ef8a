"""The benchmark tables' figures (pure functions over per-utterance arrays), each with a bootstrap 95 % interval.

- corpus WER: total word edits / total reference words (jiwer alignments), not a mean of per-utterance WERs;
- detection: AUC (torchmetrics), FP % / FN % at a calibrated threshold (``evaluation.calibration``);
- UR %: share of targeted attacks that did not end with the target transcript *and* no detector flag.

The bootstrap resamples utterances with replacement (percentile interval). ``scipy.stats.bootstrap`` was not used
because AUC is undefined on resamples holding one class; here such resamples are skipped and counted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import jiwer
import numpy as np
import torch
from torchmetrics.functional.classification import binary_auroc

from evaluation.calibration import error_rates


@dataclass(frozen=True)
class Estimate:
    """A figure with its bootstrap 95 % interval (``low`` / ``high`` are NaN when it could not be resampled)."""

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


def detection(scores, labels, threshold: float, resamples: int = 1000, seed: int = 0) -> dict[str, Estimate]:
    """AUC %, FP % and FN % at ``threshold`` (flag: score >= threshold) with intervals."""
    scores, labels = np.asarray(scores, np.float64), np.asarray(labels).astype(int)

    def rate(key: str) -> Callable[[np.ndarray], float]:
        def statistic(i: np.ndarray) -> float:
            if labels[i].min() == labels[i].max():
                return float("nan")
            return error_rates(scores[i], labels[i], threshold)[key]
        return statistic

    return {"auc": bootstrap(lambda i: auc(scores[i], labels[i]), len(scores), resamples, seed),
            "fp": bootstrap(rate("fp"), len(scores), resamples, seed),
            "fn": bootstrap(rate("fn"), len(scores), resamples, seed)}


def flag_rate(scores, threshold: float, resamples: int = 1000, seed: int = 0) -> Estimate:
    """% of inputs flagged (score >= threshold), e.g. clean speech a detector would reject."""
    flagged = np.asarray(scores, np.float64) >= threshold
    if not flagged.size:
        return Estimate(float("nan"), np.nan, np.nan)
    return bootstrap(lambda i: 100.0 * flagged[i].mean(), len(flagged), resamples, seed)


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


def unsuccessful_rate(success, flagged=None, resamples: int = 1000, seed: int = 0) -> Estimate:
    """UR %: attacks that failed (no target transcript) or were flagged by a detector."""
    success = np.asarray(success, bool)
    passed = success if flagged is None else success & ~np.asarray(flagged, bool)
    if not passed.size:
        return Estimate(float("nan"), np.nan, np.nan)
    return bootstrap(lambda i: 100.0 * (1.0 - passed[i].mean()), len(passed), resamples, seed)


def success_rate(success) -> Estimate:
    """% of attacks that met their goal, with the Wilson score 95 % interval (``scipy.stats.binomtest``): unlike a
    bootstrap of a few utterances it does not collapse to a point at 0 % or 100 %."""
    from scipy.stats import binomtest

    success = np.asarray(success, bool)
    if not success.size:
        return Estimate(float("nan"), np.nan, np.nan)
    interval = binomtest(int(success.sum()), success.size).proportion_ci(0.95, method="wilson")
    return Estimate(100.0 * float(success.mean()), 100.0 * interval.low, 100.0 * interval.high)


def true_positive_rate(scores, labels, threshold: float, resamples: int = 1000, seed: int = 0) -> Estimate:
    """TPR % (adversarial inputs flagged, score >= ``threshold``) with its interval: 100 - FN %."""
    fn = detection(scores, labels, threshold, resamples, seed)["fn"]
    return Estimate(100.0 - fn.value, 100.0 - fn.high, 100.0 - fn.low)


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
