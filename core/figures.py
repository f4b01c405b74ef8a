"""Every figure the project draws (matplotlib's object-oriented API: no pyplot state, no global backend switch):
ROC curves and the paper's Fig. 2 density view (detectors), WER bars with intervals (Task 1, Fig. 3) and
success-versus-queries curves (attacks). Each saves a PNG and returns its path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure


def roc_points(scores, labels) -> tuple[np.ndarray, np.ndarray]:
    """(false-positive rates, true-positive rates) over all thresholds, from (0, 0) to (1, 1)."""
    scores, labels = np.asarray(scores, float), np.asarray(labels).astype(bool)
    order = np.argsort(-scores, kind="stable")
    hits = labels[order]
    tpr = np.concatenate([[0.0], np.cumsum(hits) / max(1, hits.sum())])
    fpr = np.concatenate([[0.0], np.cumsum(~hits) / max(1, (~hits).sum())])
    return fpr, tpr


def plot_roc(curves: dict[str, tuple], path: str | Path, title: str = "ROC") -> Path:
    """curves: name -> (scores, labels, auc)."""
    figure = Figure(figsize=(4.5, 4.5))
    axis = figure.subplots()
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
    figure = Figure(figsize=(5.5, 3.5))
    axis = figure.subplots()
    values = np.concatenate([v for v in groups.values() if len(v)]) if groups else np.zeros(1)
    bins = np.linspace(values.min(), values.max() + 1e-12, 40)
    for name, v in groups.items():
        if len(v):
            axis.hist(v, bins=bins, density=True, alpha=0.45, label=f"{name} (n={len(v)})")
    axis.set(xlabel=xlabel, ylabel="density", title=title)
    axis.legend(fontsize=8)
    return save_figure(figure, path)


def bars(groups: dict[str, dict], path: str | Path, ylabel: str, title: str) -> Path:
    """Grouped bars: groups (e.g. backends) x series (e.g. clean / AG / AE / AZ) of estimates with ``value``,
    ``low``, ``high`` (error bars = their interval)."""
    series = list(dict.fromkeys(s for g in groups.values() for s in g))
    figure = Figure(figsize=(1.5 + 1.2 * len(groups) * max(1, len(series)) / 2, 3.2))
    axis = figure.subplots()
    width = 0.8 / max(1, len(series))
    for k, name in enumerate(series):
        x = np.arange(len(groups)) + k * width
        values = [g[name].value if name in g else np.nan for g in groups.values()]
        low = [g[name].value - g[name].low if name in g and np.isfinite(g[name].low) else 0 for g in groups.values()]
        high = [g[name].high - g[name].value if name in g and np.isfinite(g[name].high) else 0
                for g in groups.values()]
        axis.bar(x, values, width, yerr=[low, high], capsize=3, label=name)
    axis.set_xticks(np.arange(len(groups)) + 0.4 - width / 2, list(groups))
    axis.set_ylabel(ylabel)
    axis.set_title(title)
    if axis.get_legend_handles_labels()[0]:
        axis.legend(fontsize=8)
    return save_figure(figure, path)


def success_curves(histories: dict[str, list[list]], budget: int, path: str | Path, title: str) -> Path:
    """Share of utterances whose attack has succeeded after q queries; ``histories``: name -> per-utterance
    [(queries, objective, success), ...] lists (as stored in campaign records)."""
    figure = Figure(figsize=(4.5, 3.2))
    axis = figure.subplots()
    grid = np.linspace(0, budget, 200)
    for name, runs in histories.items():
        first = [next((q for q, _, s in run if s), np.inf) for run in runs]
        axis.plot(grid, [100.0 * np.mean([f <= q for f in first]) if first else 0 for q in grid], label=name)
    axis.set_xlabel("queries")
    axis.set_ylabel("success %")
    axis.set_ylim(-2, 102)
    axis.set_title(title)
    axis.legend(fontsize=8)
    return save_figure(figure, path)


def save_figure(figure: Figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    return path
