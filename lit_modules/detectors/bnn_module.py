"""``BNNDetectorModule``: the Bayesian Flipout detector on a frozen backend's hidden activations (Lightning).

One module, two heads behind one interface (``lit_modules.detectors.detector_heads``), chosen by ``mode``:
- ``supervised``: ``SupervisedFlipoutHead`` trained on labelled clean / benign-noisy / adversarial examples with the
  ELBO (binary cross-entropy + KL / N). Score: the mean adversarial probability over S Monte Carlo samples; also the
  predictive std and entropy.
- ``unsupervised``: ``UnsupervisedProbeHead`` trained on the clean examples only (CTC loss of their transcripts +
  KL / N); score: the 1-Wasserstein distance of an input's per-frame output dispersion to that of clean training
  speech (``unsupervised_score: wasserstein``), the per-utterance dispersion itself (``dispersion``), the mean
  per-frame mutual information between outputs and weights (``mutual_information``, BALD) or its share of the
  predictive entropy (``epistemic_fraction``).

N is the number of training examples the likelihood sums over (all of them, or the clean ones in unsupervised mode),
read from the data module at setup unless given. Thresholds are calibrated on validation data (at ``target_fpr``
and by Youden's J) and saved as buffers in the checkpoint; ``test`` reports AUC, FP % and FN % at the saved one.
The backend is not a submodule: it is never trained and its weights are not copied into detector checkpoints
(it is rebuilt by name from the hyper-parameters).
"""

from __future__ import annotations

import importlib
import math
from pathlib import Path

import lightning as L
import numpy as np
import torch
from lightning.pytorch.cli import OptimizerCallable
from torchmetrics.functional.classification import binary_auroc

from datamodules.adversarial.batch import LabelledSpeechBatch
from core.cache_dir import default_cache_dir
from core import figures
from lit_modules.detectors import calibration
from lit_modules.detectors.activation_cache import ActivationCache
from lit_modules.detectors.detector_heads import UNSUPERVISED_SCORES, SupervisedFlipoutHead, UnsupervisedProbeHead
from lit_modules.detectors.elbo import kl_warmup

MODES = ("supervised", "unsupervised")


def _adam(parameters):
    return torch.optim.Adam(parameters, lr=1e-3)


def build_backend(factory: str, name: str | None, options: dict | None):
    module, _, function = factory.rpartition(".")
    builder = getattr(importlib.import_module(module), function)
    return builder(name, **(options or {})) if name is not None else builder(**(options or {}))


class BNNDetectorModule(L.LightningModule):
    """Args:
        backend: registry name (``conformer_ctc``, ``whisper``, ...); ``backend_factory`` / ``backend_options``
            build it (a dotted function called as ``factory(backend, **options)``, or ``factory(**options)`` when
            ``backend`` is null).
        layer: which hidden layer feeds the detector (default: the backend's last).
        mode: ``supervised`` or ``unsupervised``.
        hidden_dim, prior_variance, posterior_rho_init: the Flipout layers.
        mc_samples: S, Monte Carlo samples at evaluation (training uses 1).
        kl_weight: beta, the KL term's weight (1 = the exact ELBO; < 1 = a tempered posterior, see docs/detector.md).
        kl_warmup_steps: linear KL warm-up (0 = none). num_train_examples: N (default: from the data module).
        target_fpr: calibration target; decision: which saved threshold ``decide`` uses (``fpr`` or ``youden``).
        fpr_per_kind: hold ``target_fpr`` on each kind of benign validation input (clean, AG, ...) rather than on
            all of them pooled (``calibration.threshold_at_fpr_per_kind``; single-process validation only).
        cache_activations: memory-map backend activations after their first computation.
        unsupervised_score: which unsupervised statistic is the score (``UNSUPERVISED_SCORES``; all are returned).
    """

    def __init__(self, backend: str | None = "conformer_ctc",
                 backend_factory: str = "lit_modules.backends.registry.load_backend",
                 backend_options: dict | None = None, layer: str | None = None, mode: str = "supervised",
                 hidden_dim: int = 64, prior_variance: float = 1.0, posterior_rho_init: float = -4.0,
                 mc_samples: int = 32, kl_weight: float = 1.0, kl_warmup_steps: int = 0,
                 num_train_examples: int | None = None,
                 target_fpr: float = 0.05, decision: str = "fpr", fpr_per_kind: bool = False,
                 optimizer: OptimizerCallable = _adam,
                 cache_activations: bool = True, activation_cache_dir: str | None = None,
                 unsupervised_score: str = "wasserstein", plot_dir: str | None = None) -> None:
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if decision not in ("fpr", "youden"):
            raise ValueError(f"decision must be 'fpr' or 'youden', got {decision!r}")
        if unsupervised_score not in UNSUPERVISED_SCORES:
            raise ValueError(f"unsupervised_score must be one of {UNSUPERVISED_SCORES}, got {unsupervised_score!r}")
        if mc_samples < 1:
            raise ValueError(f"mc_samples must be >= 1, got {mc_samples}")
        self.save_hyperparameters(ignore=["optimizer"])
        self.optimizer_factory = optimizer
        backend_object = build_backend(backend_factory, backend, backend_options)
        object.__setattr__(self, "backend", backend_object)  # not a submodule (frozen, not checkpointed)
        layers = backend_object.hidden_layers
        if not layers:
            raise ValueError(f"backend {backend!r} offers no hidden activations: the BNN detector needs them")
        self.layer = layer or layers[-1]
        if self.layer not in layers:
            raise ValueError(f"unknown layer {self.layer!r} for backend {backend!r}; choose from {layers}")
        probe = torch.zeros(1, 16_000)
        probe[0, ::50] = 0.01
        input_dim = backend_object.hidden(probe, torch.tensor([16_000]), self.layer)[0].shape[-1]
        heads = {"supervised": lambda: SupervisedFlipoutHead(input_dim, hidden_dim, prior_variance, posterior_rho_init),
                 "unsupervised": lambda: UnsupervisedProbeHead(input_dim, prior_variance, posterior_rho_init,
                                                               unsupervised_score)}
        self.head = heads[mode]()
        self.register_buffer("threshold_fpr", torch.tensor(math.nan))
        self.register_buffer("threshold_youden", torch.tensor(math.nan))
        self.num_train = num_train_examples
        self.cache: ActivationCache | None = None
        self._outputs: dict[str, list] = {}

    # ------------------------------------------------------------------------------------------- setup
    def setup(self, stage: str) -> None:
        datamodule = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        if self.num_train is None and datamodule is not None and stage == "fit":
            self.num_train = datamodule.count_train_examples(self.head.training_kinds)
        if self.hparams.cache_activations and self.cache is None:
            corpus = getattr(getattr(datamodule, "source", None), "corpus_root", None)
            base = self.hparams.activation_cache_dir or default_cache_dir() / "activations"
            self.cache = ActivationCache.for_setting(base, {
                "backend": self.hparams.backend, "factory": self.hparams.backend_factory,
                "options": self.hparams.backend_options, "layer": self.layer, "corpus": str(corpus)})

    def features(self, batch: LabelledSpeechBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """Backend activations [B, T', D] and frame lengths [B] (from the cache when possible)."""
        if self.backend.device != self.device:
            self.backend.to(self.device)

        def compute(indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
            index = torch.tensor(indices, device=batch.waveforms.device)
            lengths = batch.lengths[index]
            return self.backend.hidden(batch.waveforms[index, : int(lengths.max())], lengths, self.layer)

        if self.cache is None:
            return compute(list(range(len(batch.labels))))
        return self.cache.get_batch(batch.example_ids, compute, device=self.device)

    # ------------------------------------------------------------------------------------------- scores
    @torch.no_grad()
    def score_features(self, hidden: torch.Tensor, lengths: torch.Tensor, samples: int | None = None) -> dict:
        """Scores of a batch [B] (higher = more adversarial) and diagnostics, from S Monte Carlo samples."""
        return self.head.scores(hidden, lengths, samples or self.hparams.mc_samples)

    @property
    def threshold(self) -> torch.Tensor:
        return self.threshold_fpr if self.hparams.decision == "fpr" else self.threshold_youden

    # ------------------------------------------------------------------------------------------- training
    def training_step(self, batch: LabelledSpeechBatch, batch_idx: int):
        hidden, lengths = self.features(batch)
        terms = self.head.training_terms(hidden, lengths, batch)
        if terms is None:
            return None  # nothing to learn from in this batch (e.g. no clean speech for the unsupervised head)
        nll, kl, size = terms
        scaled_kl = kl / self._num_train()
        loss = nll + self.hparams.kl_weight * kl_warmup(self.global_step, self.hparams.kl_warmup_steps) * scaled_kl
        self.log_dict({"train/loss": loss, "train/nll": nll, "train/kl": scaled_kl}, batch_size=size, prog_bar=True)
        return loss

    def _num_train(self) -> int:
        if not self.num_train:
            raise ValueError("the ELBO needs N, the training-set size: set model.num_train_examples or use a data "
                             "module with count_train_examples()")
        return int(self.num_train)

    def on_train_epoch_start(self) -> None:
        self.head.start_epoch()

    def _gather_mean(self, tensor: torch.Tensor) -> torch.Tensor:
        """The mean of ``tensor`` over the ranks (itself in one process)."""
        if self.trainer.world_size > 1:
            return self.all_gather(tensor.to(self.device)).mean(0)
        return tensor

    # ------------------------------------------------------------------------------------------- evaluation
    def on_validation_epoch_start(self) -> None:
        if self.trainer.state.fn == "fit":
            self.head.end_training_epoch(self._gather_mean)  # e.g. the clean reference of the epoch that just ran
        self._outputs = {}

    def on_test_epoch_start(self) -> None:
        self._outputs = {}

    def on_predict_epoch_start(self) -> None:
        self._outputs = {}

    def _evaluate(self, batch: LabelledSpeechBatch) -> dict:
        hidden, lengths = self.features(batch)
        scores = self.score_features(hidden, lengths)
        self._outputs.setdefault("labels", []).append(batch.labels.detach())
        for key, value in scores.items():
            self._outputs.setdefault(key, []).append(value.detach())
        self._outputs.setdefault("kinds", []).extend(batch.kinds)
        return scores

    def validation_step(self, batch: LabelledSpeechBatch, batch_idx: int) -> None:
        self._evaluate(batch)

    def test_step(self, batch: LabelledSpeechBatch, batch_idx: int) -> None:
        self._evaluate(batch)

    def predict_step(self, batch: LabelledSpeechBatch, batch_idx: int) -> list[dict]:
        scores = self._evaluate(batch)
        flags = scores["score"] >= self.threshold
        return [{"example_id": batch.example_ids[i], "kind": batch.kinds[i], "flagged": bool(flags[i]),
                 **{k: float(v[i]) for k, v in scores.items()}} for i in range(len(batch.labels))]

    def _gathered(self) -> dict[str, np.ndarray]:
        out = {}
        for key, values in self._outputs.items():
            if key == "kinds":
                out[key] = np.array(values)
                continue
            tensor = torch.cat(values)
            if self.trainer.world_size > 1:
                tensor = self.all_gather(tensor).flatten()
            out[key] = tensor.float().cpu().numpy()
        if self.trainer.world_size > 1:
            out.pop("kinds", None)  # strings do not gather; per-kind figures come from single-process runs
        return out

    def on_validation_epoch_end(self) -> None:
        results = self._gathered()
        if not self._has_both_classes(results):
            return
        scores, labels = results["score"], results["labels"]
        if self.hparams.fpr_per_kind:
            if "kinds" not in results:
                raise RuntimeError("fpr_per_kind needs the validation inputs' kinds, which a multi-process "
                                   "validation does not gather: validate on one device, or set fpr_per_kind false")
            threshold = calibration.threshold_at_fpr_per_kind(scores, labels, results["kinds"],
                                                              self.hparams.target_fpr)
        else:
            threshold = calibration.threshold_at_fpr(scores, labels, self.hparams.target_fpr)
        self.threshold_fpr.fill_(threshold)
        self.threshold_youden.fill_(calibration.threshold_youden(scores, labels))
        rates = calibration.error_rates(scores, labels, float(self.threshold))
        auc = float(binary_auroc(torch.from_numpy(scores), torch.from_numpy(labels).long()))
        self.log_dict({"val/auc": auc, "val/fp": rates["fp"], "val/fn": rates["fn"]}, sync_dist=False)

    def on_test_epoch_end(self) -> None:
        results = self._gathered()
        if not self._has_both_classes(results):
            return
        scores, labels = results["score"], results["labels"]
        if torch.isnan(self.threshold):
            raise RuntimeError("the detector has no calibrated threshold: run fit (with validation data) first")
        rates = calibration.error_rates(scores, labels, float(self.threshold))
        auc = float(binary_auroc(torch.from_numpy(scores), torch.from_numpy(labels).long()))
        self.log_dict({"test/auc": auc, "test/fp": rates["fp"], "test/fn": rates["fn"]}, sync_dist=False)
        self.test_results = {"auc": auc, **rates, "threshold": float(self.threshold), "n": int(len(labels))}
        if self.trainer.is_global_zero and "kinds" in results:
            self._plot(results, auc)

    @staticmethod
    def _has_both_classes(results: dict) -> bool:
        labels = results.get("labels")
        return labels is not None and labels.size > 0 and 0 < labels.sum() < labels.size

    def _plot(self, results: dict, auc: float) -> None:
        folder = Path(self.hparams.plot_dir or (self.trainer.log_dir or ".")) / "plots"
        mode = self.hparams.mode
        roc = figures.plot_roc({f"BNN ({mode})": (results["score"], results["labels"], auc)},
                               folder / f"roc_{mode}.png", title=f"BNN detector ({mode})")
        spread = results[self.head.spread]
        groups = {**self.head.density_reference(),
                  **{kind: spread[results["kinds"] == kind] for kind in sorted(set(results["kinds"]))}}
        density = figures.plot_density(groups, folder / f"dispersion_{mode}.png",
                                     xlabel="per-utterance std of MC-sampled outputs")
        self.plot_paths = [roc, density]
        for logger in self.loggers:
            if hasattr(logger, "log_image"):
                logger.log_image(key=f"test/plots_{mode}", images=[str(roc), str(density)])

    # ------------------------------------------------------------------------------------------- optimizer
    def configure_optimizers(self):
        return self.optimizer_factory(self.head.parameters())
