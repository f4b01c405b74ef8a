"""What the unsupervised BNN sees: ``python benchmarks/unsupervised_statistics.py [--preset cpu] [--set ...]``.

For each Task 1 cell of the preset (backend x budget, untargeted), the unsupervised BNN detector's Monte Carlo
statistics (``BNNDetectorModule.score_features``: per-utterance dispersion, Wasserstein distance to clean training
speech, mutual information (BALD), epistemic fraction) on the test split, per kind of input (clean, AG, AE, AZ), and
the AUC of each statistic for adversarial (AE + AZ) against the benign Gaussian control (Task 1's contrast) and
against clean speech. The cell's campaigns and detector come from the cache when Task 1 ran with the same preset
(otherwise they are made, as ``benchmarks/task1.py`` would). Results: a Markdown table and
``<cache>/results/unsupervised_statistics.json``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from campaigns.campaign import GoalSpec
from core.cache_dir import default_cache_dir
from evaluation import scoring
from evaluation.detector_suite import detector_workdir, train_bnn
from evaluation.metrics import detection
from evaluation.preset import load_preset
from evaluation.report import publish_rows
from evaluation.setting import adversarial_data, budget_of, generated
from lit_modules.detectors.bnn_detector import BNNDetector
from lit_modules.detectors.detector_heads import UNSUPERVISED_SCORES

ADVERSARIAL = ("AE", "AZ")


def statistic_rows(statistics: dict[str, np.ndarray], kinds: np.ndarray, cell: dict, resamples: int) -> list[dict]:
    """One row per statistic: its mean per kind of input and the AUCs of adversarial vs AG and vs clean."""
    adversarial = np.isin(kinds, ADVERSARIAL)
    rows = []
    for name, values in statistics.items():
        row = {**cell, "statistic": name}
        row.update({f"mean {kind}": float(values[kinds == kind].mean()) for kind in sorted(set(kinds))})
        for benign in ("AG", "clean"):
            chosen = adversarial | (kinds == benign)
            row[f"AUC % vs {benign}"] = detection(values[chosen], adversarial[chosen].astype(int), 0.5,
                                                  resamples)["auc"]
        rows.append(row)
    return rows


def per_example(details: dict) -> list[tuple[float, ...]]:
    """The unsupervised statistics of a batch, one tuple (in ``UNSUPERVISED_SCORES`` order) per example."""
    return list(zip(*(details[key].float().cpu().tolist() for key in UNSUPERVISED_SCORES)))


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="smoke", help="smoke | cpu | paper | a YAML path (default: smoke)")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="preset overrides, as for task1.py")
    parser.add_argument("--cache-dir", type=Path, default=None, help="as for task1.py (default: the project cache)")
    parser.add_argument("--samples", type=int, default=None, help="Monte Carlo samples (default: the detector's own)")
    args = parser.parse_args(argv)
    preset = load_preset(args.preset, args.set)
    cache_root = args.cache_dir or default_cache_dir()
    rows = []
    for backend in preset.backends:
        for budget_settings in preset.task1_budgets:
            budget = budget_of(budget_settings).label
            data = adversarial_data(preset, backend, GoalSpec("untargeted"), budget_settings,
                                    cache_root / "adversarial", preset.detectors.bnn_batch_size, progress=False)
            generated(data)
            checkpoint = train_bnn(preset, backend, data, "unsupervised", detector_workdir(cache_root, preset, data,
                                                                                          budget))
            detector = BNNDetector(str(checkpoint), samples=args.samples)
            test = data.examples["test"]
            statistics = {key: np.array(values) for key, values in zip(UNSUPERVISED_SCORES, zip(*scoring.over_examples(
                lambda w, n: per_example(detector.details(w, n)), test, data.source.sample_rate, data.batch_size)))}
            kinds = np.array([e.kind for e in test])
            rows += statistic_rows(statistics, kinds, {"backend": backend, "budget": budget, "n": len(test)},
                                   preset.bootstrap_resamples)
    publish_rows(rows, "unsupervised_statistics", digits=4)
    return rows


if __name__ == "__main__":
    main()
