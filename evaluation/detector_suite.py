"""The detectors a benchmark compares, built for one backend and calibrated on the validation split.

TD and the transform-consistency detector need no training: their thresholds are set on validation scores at the
preset's target false-positive rate. The BNN detector (supervised and unsupervised) is trained with Lightning on the
training split of the cell's adversarial data module and calibrates itself on validation data; its checkpoint is
kept in the work folder, so a rerun reuses it.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from core.hashing import config_hash
from datamodules.adversarial import AdversarialDataModule
from evaluation import scoring
from evaluation.calibration import calibrate_thresholds
from evaluation.components import instantiate_component
from evaluation.preset import BenchmarkPreset
from evaluation.setting import backend_options, trainer_for
from lit_modules.detectors.base import Detector

log = logging.getLogger(__name__)

DETECTORS = ("TD", "consistency", "BNN-supervised", "BNN-unsupervised")
BNN_CONFIG = "detectors/bnn.yaml"  # the BNN component train.py uses, under configs/
REPORTED_FPRS = (0.01, 0.05)  # Task 1 reports TPR at these false-positive rates, thresholds set on validation data


@dataclass
class CalibratedDetector:
    """A detector with its decision threshold (flag: score >= threshold) and, for the oracle, how to rebuild it."""

    name: str
    detector: Detector
    threshold: float
    spec: dict | None = None  # {"class_path": ..., "init_args": ...} for ``build_system`` (adaptive attacks)
    threshold_youden: float = float("nan")  # the validation split's Youden-J threshold, reported alongside
    thresholds_at: dict[float, float] = field(default_factory=dict)  # validation thresholds at REPORTED_FPRS
    probability: bool = False  # whether its score is a probability of "adversarial" (then its ECE is reported)


def detector_workdir(cache_root: Path, preset: BenchmarkPreset, data: AdversarialDataModule, budget: str) -> Path:
    """Where one untargeted cell's detectors (and SE enhancer) are trained: keyed by its campaigns, its source
    utterances (the split follows from them), its benign calibration sources and the settings, so a cell grown to more
    sources never reuses detectors trained on fewer."""
    sources = sorted(s.utterance_id for s in data.sources())
    calibration = sorted(s.utterance_id for s in data.benign_calibration_sources())
    settings = {**asdict(preset.detectors), "bnn_layer": preset.detectors.layer_for(data.system["backend"])}
    del settings["cross_attack"]  # its detectors have their own checkpoint names: the others are reused
    key = config_hash({"campaigns": [spec.attack.name + "/" + cache.directory.name for spec, cache in data.campaigns()],
                       "sources": sources, "calibration": calibration,
                       "benign_train": sorted(s.utterance_id for s in data.benign_training_sources()),
                       "detectors": settings, "split": preset.split_fractions, "seed": preset.seed,
                       **({} if preset.split_method == "hash" else {"split_method": preset.split_method}),
                       "se_epochs": preset.se_epochs})
    return cache_root / "detectors" / f"{data.system_label}-untargeted-{budget}-{key}"


def consistency_transform(name: str) -> torch.nn.Module:
    from lit_modules.defenses.down_sampling import DownSampling
    from lit_modules.defenses.local_smoothing import LocalSmoothing

    transforms = {"local_smoothing": LocalSmoothing, "down_sampling": DownSampling}
    if name not in transforms:
        raise ValueError(f"consistency_transform must be one of {sorted(transforms)}, got {name!r}")
    return transforms[name]()


def validation_scores(detector: Detector, data: AdversarialDataModule, batch_size: int) -> tuple:
    """(scores [N], labels [N], kinds [N]) of the validation split."""
    examples = data.examples["val"]
    return (scoring.scores(detector, examples, data.source.sample_rate, batch_size), scoring.labels(examples),
            [e.kind for e in examples])


def calibrate(detector: Detector, data: AdversarialDataModule, target_fpr: float, batch_size: int,
              per_kind: bool = False) -> tuple[float, float, dict[float, float]]:
    """Thresholds on the validation split, as the BNN's ``ThresholdCalibration`` sets them: at ``target_fpr`` (set on
    the detector; ``per_kind``: on each benign kind), by Youden's J, and at each of ``REPORTED_FPRS``."""
    values, labels, kinds = validation_scores(detector, data, batch_size)
    at_fpr, youden = calibrate_thresholds(values, labels, kinds, target_fpr, per_kind)
    detector.threshold.fill_(at_fpr)
    return at_fpr, youden, thresholds_at(values, labels, kinds, per_kind)


def thresholds_at(values, labels, kinds, per_kind: bool) -> dict[float, float]:
    """Validation thresholds at each false-positive rate of ``REPORTED_FPRS`` (for TPR at that FPR)."""
    return {fpr: calibrate_thresholds(values, labels, kinds, fpr, per_kind)[0] for fpr in REPORTED_FPRS}


def train_bnn(preset: BenchmarkPreset, backend: str, data: AdversarialDataModule, head: str, workdir: Path,
              progress: bool = True, trained_on: list[str] | None = None) -> Path:
    """Fit the BNN detector with head ``head`` (a key of ``preset.detectors.bnn_heads``) on ``data`` (or reuse the
    checkpoint in ``workdir``): configs/detectors/bnn.yaml with the preset's overrides; returns the checkpoint path.
    ``trained_on``: the attack families the (supervised) head learns as adversarial (None: every one in ``data``)."""
    from evaluation.detector_callbacks import detector_callbacks
    from lit_modules.detectors.bnn_module import BNNDetectorModule

    checkpoint = workdir / (f"bnn-{head}.ckpt" if trained_on is None else f"bnn-{head}-{'+'.join(trained_on)}.ckpt")
    if checkpoint.is_file():
        log.debug("reusing %s", checkpoint)
        return checkpoint
    settings = preset.detectors
    if head not in settings.bnn_heads:
        raise ValueError(f"no head {head!r} in detectors.bnn_heads ({sorted(settings.bnn_heads)})")
    head_spec = settings.bnn_heads[head]
    if trained_on is not None:
        head_spec = {**head_spec, "init_args": {**head_spec.get("init_args", {}), "adversarial_kinds": trained_on}}
    callbacks = detector_callbacks(settings.target_fpr, settings.fpr_per_kind, plot_dir=str(workdir))
    trainer = trainer_for(preset, workdir, f"bnn-{head}", settings.bnn_epochs, progress, callbacks)  # seeds first
    module = instantiate_component(BNNDetectorModule, BNN_CONFIG, settings.bnn, {
        "backend": backend, "backend_options": backend_options(preset, backend, device="cpu"),
        "layer": settings.layer_for(backend), "head": head_spec,
        "activation_cache_dir": str(workdir.parent / "activations")})
    trainer.fit(module, datamodule=data)
    if torch.isnan(module.threshold):
        raise RuntimeError(f"BNN ({head}) on {backend}: no calibrated threshold (the validation split needs benign "
                           "and adversarial examples; attack more source utterances)")
    trainer.save_checkpoint(str(checkpoint))
    return checkpoint


def build_detectors(preset: BenchmarkPreset, backend_name: str, backend, data: AdversarialDataModule,
                    workdir: Path, names: tuple[str, ...] = DETECTORS, progress: bool = True
                    ) -> dict[str, CalibratedDetector]:
    """Every requested detector for ``backend``, calibrated on ``data``'s validation split."""
    from lit_modules.detectors.bnn_detector import BNNDetector
    from lit_modules.detectors.temporal_dependency import TemporalDependencyDetector
    from lit_modules.detectors.transform_consistency import TransformConsistencyDetector

    settings, batch = preset.detectors, data.batch_size
    workdir.mkdir(parents=True, exist_ok=True)
    out: dict[str, CalibratedDetector] = {}
    for name in names:
        if name == "TD":
            detector = TemporalDependencyDetector(backend, settings.td_k, settings.td_metric)
        elif name == "consistency":
            detector = TransformConsistencyDetector(backend, consistency_transform(settings.consistency_transform))
        elif name.startswith("BNN-"):
            head, _, trained_on = name.split("-", 1)[1].partition(" trained on ")
            checkpoint = train_bnn(preset, backend_name, data, head, workdir, progress,
                                   trained_on.split("+") if trained_on else None)
            detector = BNNDetector(str(checkpoint))
            torch.manual_seed(preset.seed)  # Monte Carlo: the same samples on every run
            values, labels, kinds = validation_scores(detector, data, batch)
            out[name] = CalibratedDetector(name, detector, float(detector.threshold), {
                "class_path": "lit_modules.detectors.bnn_detector.BNNDetector",
                "init_args": {"checkpoint": str(checkpoint), "samples": detector.samples}},
                float(detector.module.threshold_youden), thresholds_at(values, labels, kinds, settings.fpr_per_kind),
                probability=detector.module.head.label == "supervised")
            continue
        else:
            raise ValueError(f"unknown detector {name!r}; choose from {DETECTORS} (or 'BNN-supervised trained on "
                             "AE+AZ' for a supervised BNN that learns some attack families only)")
        at_fpr, youden, at_reported = calibrate(detector, data, settings.target_fpr, batch, settings.fpr_per_kind)
        out[name] = CalibratedDetector(name, detector, at_fpr, threshold_youden=youden, thresholds_at=at_reported)
    return out


def cross_attack_names(preset: BenchmarkPreset) -> tuple[str, ...]:
    """The supervised BNNs of Task 1's cross-attack matrix, one per ``detectors.cross_attack`` training set."""
    return tuple(f"BNN-supervised trained on {'+'.join(kinds)}" for kinds in preset.detectors.cross_attack)


def flags(detector: CalibratedDetector, values: np.ndarray) -> np.ndarray:
    return np.asarray(values) >= detector.threshold
