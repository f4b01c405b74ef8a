"""Benchmark figures: WER bars with intervals (Task 1, paper Fig. 3), success-versus-queries curves, UR bars."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from evaluation.metrics import Estimate
from lit_modules.detectors.plots import save_figure


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def bars(groups: dict[str, dict[str, Estimate]], path: Path, ylabel: str, title: str) -> Path:
    """Grouped bars: groups (e.g. backends) x series (e.g. clean / AG / AE / AZ), error bars = 95 % intervals."""
    plt = _pyplot()
    series = list(dict.fromkeys(s for g in groups.values() for s in g))
    figure, axis = plt.subplots(figsize=(1.5 + 1.2 * len(groups) * max(1, len(series)) / 2, 3.2))
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
    axis.legend(fontsize=8)
    return save_figure(figure, path)


def success_curves(histories: dict[str, list[list]], budget: int, path: Path, title: str) -> Path:
    """Share of utterances whose attack has succeeded after q queries; ``histories``: name -> per-utterance
    [(queries, objective, success), ...] lists (as cached in attack records)."""
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(4.5, 3.2))
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
