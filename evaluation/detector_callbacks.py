"""Lightning callbacks that calibrate and report a ``BNNDetectorModule`` (``trainer.callbacks`` in configs/bnn.yaml;
the benchmarks add them to the trainers they build).

- ``ThresholdCalibration``: after each validation epoch, the thresholds at ``target_fpr`` and by Youden's J from the
  epoch's validation scores (``evaluation.calibration.calibrate_thresholds``, as TD and consistency are calibrated),
  written into the module's ``threshold_fpr`` / ``threshold_youden`` buffers (so they travel in its checkpoint);
  logs ``val/fp`` and ``val/fn`` (%) at the threshold the module decides with.
- ``DetectorTestReport``: after a test epoch, FP % and FN % at the saved threshold (``test/fp``, ``test/fn``,
  ``results``) and, on rank 0, the ROC curve and the density of the head's per-utterance spread per input kind
  (``plots/roc_<head>.png``, ``plots/dispersion_<head>.png``, logged as images by loggers that take them).
"""

from __future__ import annotations

import math
from pathlib import Path

import lightning as L
import torch
from torchmetrics.functional.classification import binary_auroc

from core import figures
from evaluation.calibration import calibrate_thresholds, error_rates


def _has_both_classes(results: dict) -> bool:
    labels = results.get("labels")
    return labels is not None and labels.size > 0 and 0 < labels.sum() < labels.size


class ThresholdCalibration(L.Callback):
    """Args: target_fpr: the false-positive rate the threshold holds on benign validation inputs; per_kind: hold it
    on each kind of benign input (clean, AG, ...) rather than on all of them pooled (single-process validation)."""

    def __init__(self, target_fpr: float = 0.05, per_kind: bool = False) -> None:
        if not 0 <= target_fpr < 1:
            raise ValueError(f"target_fpr must be in [0, 1), got {target_fpr}")
        self.target_fpr, self.per_kind = target_fpr, per_kind

    def on_validation_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        results = module.epoch_results()
        if not _has_both_classes(results):
            return
        at_fpr, youden = calibrate_thresholds(results["score"], results["labels"], results.get("kinds"),
                                              self.target_fpr, self.per_kind)
        module.threshold_fpr.fill_(at_fpr)
        module.threshold_youden.fill_(youden)
        rates = error_rates(results["score"], results["labels"], float(module.threshold))
        module.log_dict({"val/fp": rates["fp"], "val/fn": rates["fn"]}, sync_dist=False)


class DetectorTestReport(L.Callback):
    """Args: plot_dir: where ``plots/`` goes (default: the trainer's log folder); plots: draw them."""

    def __init__(self, plot_dir: str | None = None, plots: bool = True) -> None:
        self.plot_dir, self.plots = plot_dir, plots
        self.results: dict = {}
        self.plot_paths: list[Path] = []

    def on_test_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        results = module.epoch_results()
        if not _has_both_classes(results):
            return
        threshold = float(module.threshold)
        if math.isnan(threshold):
            raise RuntimeError("the detector has no calibrated threshold: fit it (with validation data) with the "
                               "evaluation.detector_callbacks.ThresholdCalibration callback first")
        rates = error_rates(results["score"], results["labels"], threshold)
        module.log_dict({"test/fp": rates["fp"], "test/fn": rates["fn"]}, sync_dist=False)
        auc = float(binary_auroc(torch.from_numpy(results["score"]), torch.from_numpy(results["labels"]).long()))
        self.results = {"auc": auc, **rates, "threshold": threshold,
                        "n": int(len(results["labels"]))}
        if self.plots and trainer.is_global_zero and "kinds" in results:
            self.plot_paths = self._plot(trainer, module, results)

    def _plot(self, trainer: L.Trainer, module: L.LightningModule, results: dict) -> list[Path]:
        folder = Path(self.plot_dir or (trainer.log_dir or ".")) / "plots"
        head = module.head.label
        roc = figures.plot_roc({f"BNN ({head})": (results["score"], results["labels"], self.results["auc"])},
                               folder / f"roc_{head}.png", title=f"BNN detector ({head})")
        spread, kinds = results[module.head.spread], results["kinds"]
        groups = {**module.head.density_reference(), **{kind: spread[kinds == kind] for kind in sorted(set(kinds))}}
        density = figures.plot_density(groups, folder / f"dispersion_{head}.png",
                                       xlabel="per-utterance std of MC-sampled outputs")
        for logger in trainer.loggers:
            if hasattr(logger, "log_image"):
                logger.log_image(key=f"test/plots_{head}", images=[str(roc), str(density)])
        return [roc, density]


def detector_callbacks(target_fpr: float = 0.05, per_kind: bool = False, plot_dir: str | None = None
                       ) -> list[L.Callback]:
    """The callbacks a BNN detector's trainer needs: calibration (and the test report with its plots)."""
    return [ThresholdCalibration(target_fpr, per_kind), DetectorTestReport(plot_dir)]

