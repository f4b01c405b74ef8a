"""Detector figures (matplotlib, Agg backend): ROC curves and the paper's Fig. 2 density view."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def roc_points(scores, labels) -> tuple[np.ndarray, np.ndarray]:
    """(false-positive rates, true-positive rates) over all thresholds, from (0, 0) to (1, 1)."""
    scores, labels = np.asarray(scores, float), np.asarray(labels).astype(bool)
    order = np.argsort(-scores, kind="stable")
    hits = labels[order]
    tpr = np.concatenate([[0.0], np.cumsum(hits) / max(1, hits.sum())])
    fpr = np.concatenate([[0.0], np.cumsum(~hits) / max(1, (~hits).sum())])
    return fpr, tpr


def plot_roc(curves: dict[str, tuple], path: str | Path, title: str = "ROC") -> Path:
    """curves: name -> (scores, labels, auc). Saves a PNG."""
    figure, axis = plt.subplots(figsize=(4.5, 4.5))
    for name, (scores, labels, auc) in curves.items():
        fpr, tpr = roc_points(scores, labels)
        axis.plot(fpr, tpr, label=f"{name} (AUC {100 * auc:.1f} %)")
    axis.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
    axis.set(xlabel="false-positive rate", ylabel="true-positive rate", title=title, xlim=(0, 1), ylim=(0, 1.01))
    axis.legend(loc="lower right", fontsize=8)
    return save_figure(figure, path)


def plot_density(groups: dict[str, np.ndarray], path: str | Path, xlabel: str,
                 title: str = "per-utterance output std") -> Path:
    """Fig. 2 view: one histogram density per group (e.g. train / test / adversarial)."""
    figure, axis = plt.subplots(figsize=(5.5, 3.5))
    values = np.concatenate([v for v in groups.values() if len(v)]) if groups else np.zeros(1)
    bins = np.linspace(values.min(), values.max() + 1e-12, 40)
    for name, v in groups.items():
        if len(v):
            axis.hist(v, bins=bins, density=True, alpha=0.45, label=f"{name} (n={len(v)})")
    axis.set(xlabel=xlabel, ylabel="density", title=title)
    axis.legend(fontsize=8)
    return save_figure(figure, path)


def save_figure(figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path
