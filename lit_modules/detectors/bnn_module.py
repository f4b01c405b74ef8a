"""``BNNDetectorModule``: the Bayesian Flipout detector on a frozen backend's hidden activations (Lightning).

One module; its head is a component named by ``class_path`` (``lit_modules.detectors.detector_heads``):
- ``SupervisedFlipoutHead`` (the default) is trained on labelled clean / benign-noisy / adversarial examples with the
  ELBO (binary cross-entropy + KL / N). Score: the mean adversarial probability over S Monte Carlo samples; also the
  predictive std and entropy.
- ``UnsupervisedProbeHead`` is trained on the clean examples only (CTC loss of their transcripts + KL / N); score: the
  1-Wasserstein distance of an input's per-frame output dispersion to that of clean training speech (its ``score``
  argument picks another statistic: ``dispersion``, ``mutual_information``, ``epistemic_fraction``).

N is the number of training examples the likelihood sums over (all of them, or the clean ones for the probe), read
from the data module at setup unless given: it is known only once the campaigns have run (failed attacks give no
example), so no parse-time link can carry it. The module keeps the decision thresholds as buffers (they travel in the
checkpoint); ``evaluation.detector_callbacks.ThresholdCalibration`` sets them on validation data and
``DetectorTestReport`` reports FP / FN and plots. The module logs ``{stage}/auc`` from one metric object per stage.
The backend is not a submodule: it is never trained and its weights are not copied into detector checkpoints (it is
rebuilt by name from the hyper-parameters).
"""

from __future__ import annotations

import importlib
import math

import lightning as L
import numpy as np
import torch
from lightning.pytorch.cli import OptimizerCallable
from torchmetrics.classification import BinaryAUROC

from core.cache_dir import default_cache_dir
from datamodules.adversarial.batch import LabelledSpeechBatch
from lit_modules.detectors.activation_cache import ActivationCache
from lit_modules.detectors.detector_heads import build_head
from lit_modules.detectors.elbo import kl_warmup

SUPERVISED_HEAD = {"class_path": "lit_modules.detectors.detector_heads.SupervisedFlipoutHead"}
STAGES = ("val", "test")


def _adam(parameters):
    return torch.optim.Adam(parameters, lr=1e-3)


def build_backend(factory: str, name: str | None, options: dict | None):
    module, _, function = factory.rpartition(".")
    builder = getattr(importlib.import_module(module), function)
    return builder(name, **(options or {})) if name is not None else builder(**(options or {}))


class BNNDetectorModule(L.LightningModule):
    """Args:
        backend: registry name (``conformer_ctc``, ``whisper``, ...; ``train.py`` links it to the data module's
            ``system.backend``); ``backend_factory`` / ``backend_options`` build it (a dotted function called as
            ``factory(backend, **options)``, or ``factory(**options)`` when ``backend`` is null).
        layer: which hidden layer feeds the detector (default: the backend's last).
        head: ``{class_path, init_args}`` of a ``DetectorHead`` (default: ``SupervisedFlipoutHead``); the module adds
            ``input_dim``, the layer's width, measured on a probe waveform.
        mc_samples: S, Monte Carlo samples at evaluation (training uses 1).
        kl_weight: beta, the KL term's weight (1 = the exact ELBO; < 1 = a tempered posterior, see docs/detector.md).
        kl_warmup_steps: linear KL warm-up (0 = none). num_train_examples: N (default: from the data module).
        decision: which saved threshold ``threshold`` is (``fpr`` or ``youden``).
        cache_activations: memory-map backend activations after their first computation (``activation_cache_dir``,
            default ``<cache>/activations``).
    """

    def __init__(self, backend: str | None = "conformer_ctc",
                 backend_factory: str = "lit_modules.backends.registry.load_backend",
                 backend_options: dict | None = None, layer: str | None = None, head: dict | None = None,
                 mc_samples: int = 32, kl_weight: float = 1.0, kl_warmup_steps: int = 0,
                 num_train_examples: int | None = None, decision: str = "fpr",
                 optimizer: OptimizerCallable = _adam,
                 cache_activations: bool = True, activation_cache_dir: str | None = None) -> None:
        super().__init__()
        if decision not in ("fpr", "youden"):
            raise ValueError(f"decision must be 'fpr' or 'youden', got {decision!r}")
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
        self.head = build_head(head or SUPERVISED_HEAD, input_dim)
        self.register_buffer("threshold_fpr", torch.tensor(math.nan))
        self.register_buffer("threshold_youden", torch.tensor(math.nan))
        self.auroc = torch.nn.ModuleDict({stage: BinaryAUROC() for stage in STAGES})
        self.num_train = num_train_examples
        self.cache: ActivationCache | None = None
        self._outputs: dict[str, list] = {}
        self._results: dict[str, np.ndarray] | None = None

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
        self._start_evaluation()

    def on_test_epoch_start(self) -> None:
        self._start_evaluation()

    def on_predict_epoch_start(self) -> None:
        self._start_evaluation()

    def _start_evaluation(self) -> None:
        self._outputs, self._results = {}, None

    def _evaluate(self, batch: LabelledSpeechBatch, stage: str) -> dict:
        """The shared evaluation step: scores of the batch, kept for the epoch's results and its stage's AUC."""
        hidden, lengths = self.features(batch)
        scores = self.score_features(hidden, lengths)
        self._outputs.setdefault("labels", []).append(batch.labels.detach())
        for key, value in scores.items():
            self._outputs.setdefault(key, []).append(value.detach())
        self._outputs.setdefault("kinds", []).extend(batch.kinds)
        if stage in self.auroc:
            self.auroc[stage].update(scores["score"].float(), batch.labels.long())
            self.log(f"{stage}/auc", self.auroc[stage], on_step=False, on_epoch=True, batch_size=len(batch.labels))
        return scores

    def validation_step(self, batch: LabelledSpeechBatch, batch_idx: int) -> None:
        self._evaluate(batch, "val")

    def test_step(self, batch: LabelledSpeechBatch, batch_idx: int) -> None:
        self._evaluate(batch, "test")

    def predict_step(self, batch: LabelledSpeechBatch, batch_idx: int) -> list[dict]:
        scores = self._evaluate(batch, "predict")
        flags = scores["score"] >= self.threshold
        return [{"example_id": batch.example_ids[i], "kind": batch.kinds[i], "flagged": bool(flags[i]),
                 **{k: float(v[i]) for k, v in scores.items()}} for i in range(len(batch.labels))]

    def epoch_results(self) -> dict[str, np.ndarray]:
        """The evaluation epoch's outputs over all ranks: ``labels`` [N], ``score`` [N], every diagnostic [N] and,
        in a single process, ``kinds`` [N] (strings do not gather). A collective under DDP: call it on every rank."""
        if self._results is None:
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
                out.pop("kinds", None)
            self._results = out
        return self._results

    # ------------------------------------------------------------------------------------------- optimizer
    def configure_optimizers(self):
        return self.optimizer_factory(self.head.parameters())
