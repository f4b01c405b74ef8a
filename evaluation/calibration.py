"""Decision thresholds and error rates of a detector's scores (pure functions; higher score = more adversarial)."""

from __future__ import annotations

import numpy as np


def _as_arrays(scores, labels) -> tuple[np.ndarray, np.ndarray]:
    scores = np.asarray(scores, np.float64).ravel()
    labels = np.asarray(labels).astype(bool).ravel()
    if scores.shape != labels.shape or not scores.size:
        raise ValueError(f"need equally many scores and labels, got {scores.shape} and {labels.shape}")
    if labels.all() or not labels.any():
        raise ValueError("calibration needs both benign (0) and adversarial (1) examples")
    return scores, labels


def threshold_at_fpr(scores, labels, target_fpr: float = 0.05) -> float:
    """A threshold whose false-positive rate on benign examples is <= ``target_fpr`` (flag: score >= t), as low as
    possible: midway between the highest benign score that must pass and the next higher score (midpoints survive
    rounding to float32, where a threshold is stored)."""
    scores, labels = _as_arrays(scores, labels)
    benign = np.sort(scores[~labels])[::-1]
    allowed = int(np.floor(target_fpr * benign.size))  # benign scores that may sit at or above the threshold
    if allowed >= benign.size:
        return float(benign.min())
    passing = benign[allowed]
    above = scores[scores > passing]
    return float((passing + above.min()) / 2) if above.size else float(passing + max(1e-6, abs(passing) * 1e-6))


def threshold_at_fpr_per_kind(scores, labels, kinds, target_fpr: float = 0.05) -> float:
    """The lowest threshold whose false-positive rate is <= ``target_fpr`` on *every* kind of benign input
    (``kinds``: one name per example, e.g. clean / AG): the highest of the per-kind thresholds. A pooled threshold
    lets one kind take all the false positives when another is easy to tell apart (half clean, half 10 dB noise that
    scores near 0: up to 2 x ``target_fpr`` on clean speech)."""
    scores, labels = _as_arrays(scores, labels)
    kinds = np.asarray(kinds).ravel()
    if kinds.shape != scores.shape:
        raise ValueError(f"need one kind per score, got {kinds.shape} and {scores.shape}")
    return max(threshold_at_fpr(scores[(kinds == kind) | labels], labels[(kinds == kind) | labels], target_fpr)
               for kind in np.unique(kinds[~labels]))


def threshold_youden(scores, labels) -> float:
    """Threshold maximizing Youden's J = TPR - FPR over all distinct scores (ties: the lowest such threshold)."""
    scores, labels = _as_arrays(scores, labels)
    best_j, best_t = -np.inf, float(scores.max())
    for t in np.unique(scores):
        flagged = scores >= t
        j = flagged[labels].mean() - flagged[~labels].mean()
        if j > best_j:
            best_j, best_t = j, float(t)
    return best_t


def error_rates(scores, labels, threshold: float) -> dict:
    """FP % (benign flagged) and FN % (adversarial passed) at ``threshold``."""
    scores, labels = _as_arrays(scores, labels)
    flagged = scores >= threshold
    return {"fp": 100.0 * float(flagged[~labels].mean()), "fn": 100.0 * float((~flagged[labels]).mean())}


def calibrate_thresholds(scores, labels, kinds=None, target_fpr: float = 0.05, per_kind: bool = False
                         ) -> tuple[float, float]:
    """(threshold at ``target_fpr``, Youden-J threshold) of validation scores: how every detector is calibrated
    (the BNN through ``evaluation.detector_callbacks.ThresholdCalibration``, TD and consistency in
    ``evaluation.detector_suite``). ``per_kind``: hold ``target_fpr`` on each benign kind (needs ``kinds``)."""
    if per_kind:
        if kinds is None:
            raise RuntimeError("per-kind calibration needs each validation input's kind, which a multi-process "
                               "validation does not gather: validate on one device, or calibrate on the pooled benign "
                               "inputs (fpr_per_kind false)")
        at_fpr = threshold_at_fpr_per_kind(scores, labels, kinds, target_fpr)
    else:
        at_fpr = threshold_at_fpr(scores, labels, target_fpr)
    return at_fpr, threshold_youden(scores, labels)
