"""The Bayesian heads ``BNNDetectorModule`` trains on a frozen backend's activations, behind one interface
(``DetectorHead``); a config names one by ``class_path`` (``model.init_args.head``), the module adds ``input_dim``.

- ``SupervisedFlipoutHead``: the Flipout classifier (``FlipoutDetectorHead``) trained on labelled clean, benign-noisy
  and adversarial examples with the ELBO; score = mean adversarial probability over S Monte Carlo samples.
- ``UnsupervisedProbeHead``: the Bayesian CTC probe (``BayesianCTCProbe``) trained on clean speech only (CTC loss of
  the transcripts + KL / N); it keeps the clean reference distribution of its per-frame output dispersion, and its
  score is one of ``UNSUPERVISED_SCORES`` (docs/detector.md).

The module owns what both share (the backend, activation cache, N, the KL weight and warm-up, the threshold buffers,
metrics); a head answers for its likelihood, its scores and what it keeps from training.
"""

from __future__ import annotations

import importlib
import inspect
from abc import ABC, abstractmethod
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from lit_modules.detectors.bayesian_probe import (BayesianCTCProbe, epistemic_fraction, utterance_dispersion,
                                                  wasserstein_scores)
from lit_modules.detectors.flipout_head import FlipoutDetectorHead
from lit_modules.vocabulary import CharacterVocabulary

UNSUPERVISED_SCORES = ("wasserstein", "dispersion", "mutual_information", "epistemic_fraction")
REFERENCE_POINTS = 1024  # quantiles kept of the clean reference distribution


class DetectorHead(ABC):
    """The interface of a BNN detector head (an ``nn.Module`` whose first argument is ``input_dim``, the backend
    layer's width D).

    Class attributes: ``label`` (its name in logs and plots), ``training_kinds`` (which training examples its
    likelihood sums over: None = all; N for the KL / N term counts those), ``spread`` (the per-utterance diagnostic its
    density plot shows)."""

    label: str
    training_kinds: tuple[str, ...] | None
    spread: str

    @abstractmethod
    def training_terms(self, hidden: torch.Tensor, lengths: torch.Tensor, batch) -> tuple | None:
        """(negative log-likelihood, summed KL, examples) of one batch; None when it holds nothing to learn from."""

    @abstractmethod
    def scores(self, hidden: torch.Tensor, lengths: torch.Tensor, samples: int) -> dict[str, torch.Tensor]:
        """``score`` [B] (higher = more adversarial) and diagnostics [B] from S Monte Carlo samples."""

    def start_epoch(self) -> None:
        """A training epoch begins."""

    def end_training_epoch(self, gather_mean: Callable[[torch.Tensor], torch.Tensor]) -> None:
        """A training epoch ended (``gather_mean`` averages a tensor over DDP ranks)."""

    def density_reference(self) -> dict[str, np.ndarray]:
        """Reference distributions its density plot shows beside the evaluated kinds (label -> values)."""
        return {}


BENIGN_KINDS = ("clean", "AG")  # the benign examples every supervised head learns from


class SupervisedFlipoutHead(FlipoutDetectorHead, DetectorHead):
    """Args: input_dim (the backend layer's width D), hidden_dim, prior_variance, posterior_rho_init (Flipout);
    adversarial_kinds: the attack families whose examples it learns as adversarial (None: all), e.g. ``[AE]`` for a
    detector that never sees AZ or AC (Task 1's cross-attack matrix); the other adversarial examples are left out of
    its likelihood and of N."""

    label = "supervised"
    training_kinds = None  # the likelihood sums over every training example
    spread = "predictive_std"  # the per-utterance spread its density plot shows

    def __init__(self, input_dim: int, hidden_dim: int = 64, prior_variance: float = 1.0,
                 posterior_rho_init: float = -4.0, adversarial_kinds: list[str] | None = None) -> None:
        super().__init__(input_dim, hidden_dim, prior_variance, posterior_rho_init)
        if adversarial_kinds is not None and not adversarial_kinds:
            raise ValueError("adversarial_kinds: name at least one attack family, or None for all")
        self.adversarial_kinds = None if adversarial_kinds is None else tuple(adversarial_kinds)
        if self.adversarial_kinds is not None:
            self.training_kinds = BENIGN_KINDS + self.adversarial_kinds

    def training_terms(self, hidden: torch.Tensor, lengths: torch.Tensor, batch) -> tuple | None:
        """(negative log-likelihood: mean binary cross-entropy of the labels, summed KL, examples) of one batch (of its
        examples of ``training_kinds``; None when it has none)."""
        labels = batch.labels
        if self.training_kinds is not None:
            keep = torch.tensor([kind in self.training_kinds for kind in batch.kinds], device=labels.device)
            if not bool(keep.any()):
                return None
            hidden, lengths, labels = hidden[keep], lengths[keep], labels[keep]
        logits, kl = self(hidden, lengths)
        return F.binary_cross_entropy_with_logits(logits.float(), labels.float()), kl, len(labels)

    @torch.no_grad()
    def scores(self, hidden: torch.Tensor, lengths: torch.Tensor, samples: int) -> dict[str, torch.Tensor]:
        probabilities = torch.sigmoid(self.sample(hidden, lengths, samples))  # [S, B]
        mean = probabilities.mean(0)
        entropy = -(mean * (mean + 1e-8).log() + (1 - mean) * (1 - mean + 1e-8).log())
        return {"score": mean, "predictive_std": probabilities.std(0), "entropy": entropy}


class UnsupervisedProbeHead(BayesianCTCProbe, DetectorHead):
    """Args: input_dim (D), prior_variance, posterior_rho_init (Flipout); score: which statistic is the score
    (``UNSUPERVISED_SCORES``; all are returned). Buffers ``reference`` / ``reference_utterances``: quantiles of the
    per-frame / per-utterance dispersion of the clean training speech of the last epoch."""

    label = "unsupervised"
    training_kinds = ("clean",)  # clean speech only
    spread = "dispersion"

    def __init__(self, input_dim: int, prior_variance: float = 1.0, posterior_rho_init: float = -4.0,
                 score: str = "wasserstein") -> None:
        if score not in UNSUPERVISED_SCORES:
            raise ValueError(f"score must be one of {UNSUPERVISED_SCORES}, got {score!r}")
        vocabulary = CharacterVocabulary()
        super().__init__(input_dim, len(vocabulary), prior_variance, posterior_rho_init)
        self.vocabulary, self.score_name = vocabulary, score
        self.register_buffer("reference", torch.zeros(REFERENCE_POINTS))
        self.register_buffer("reference_utterances", torch.zeros(REFERENCE_POINTS))
        self._frames: list[np.ndarray] = []
        self._utterances: list[np.ndarray] = []

    def training_terms(self, hidden: torch.Tensor, lengths: torch.Tensor, batch) -> tuple | None:
        """(CTC negative log-likelihood of the clean examples' transcripts, KL, clean examples), or None for a batch
        without clean speech; records the clean frames' dispersion for the reference."""
        clean = [i for i, kind in enumerate(batch.kinds) if kind == "clean"]
        if not clean:
            return None
        hidden, lengths = hidden[clean], lengths[clean]
        log_probs, kl = self(hidden)
        targets, target_lengths = self.vocabulary.encode_batch([batch.transcripts[i] for i in clean])
        nll = F.ctc_loss(log_probs[0].transpose(0, 1), targets.to(hidden.device), lengths,
                         target_lengths.to(hidden.device), blank=self.vocabulary.blank, zero_infinity=True)
        with torch.no_grad():
            dispersion = self.frame_dispersion(hidden, lengths, 8)
            for row in range(len(clean)):
                self._frames.append(dispersion[row, : int(lengths[row])].cpu().numpy())
            self._utterances.append(utterance_dispersion(dispersion, lengths).cpu().numpy())
        return nll, kl, len(clean)

    @torch.no_grad()
    def scores(self, hidden: torch.Tensor, lengths: torch.Tensor, samples: int) -> dict[str, torch.Tensor]:
        frames = self.frame_statistics(hidden, lengths, samples)
        scores = {
            "dispersion": utterance_dispersion(frames["dispersion"], lengths),
            "wasserstein": wasserstein_scores(frames["dispersion"], lengths,
                                              self.reference.cpu().numpy()).to(hidden.device),
            "mutual_information": utterance_dispersion(frames["mutual_information"], lengths),
            "epistemic_fraction": epistemic_fraction(frames["mutual_information"], frames["entropy"])}
        return {"score": scores[self.score_name], **scores}

    def start_epoch(self) -> None:
        self._frames, self._utterances = [], []

    def end_training_epoch(self, gather_mean: Callable[[torch.Tensor], torch.Tensor]) -> None:
        """The reference from the clean training speech of the epoch that just ran (``gather_mean`` averages the
        ranks' quantile functions under DDP)."""
        if not self._frames:
            return
        points = np.linspace(0, 1, REFERENCE_POINTS)
        frames = torch.from_numpy(np.quantile(np.concatenate(self._frames), points)).float()
        utterances = torch.from_numpy(np.quantile(np.concatenate(self._utterances), points)).float()
        self.reference.copy_(gather_mean(frames).to(self.reference.device))
        self.reference_utterances.copy_(gather_mean(utterances).to(self.reference.device))

    def density_reference(self) -> dict[str, np.ndarray]:
        return {"train (clean)": self.reference_utterances.cpu().numpy()}


def build_head(spec: dict, input_dim: int) -> DetectorHead:
    """A head from its config ``{"class_path": ..., "init_args": {...}}`` on a layer of width ``input_dim``."""
    if not isinstance(spec, dict) or "class_path" not in spec or set(spec) - {"class_path", "init_args"}:
        raise ValueError(f"head: give {{class_path: ..., init_args: {{...}}}}, got {spec!r}")
    module, _, name = spec["class_path"].rpartition(".")
    try:
        head_class = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError) as error:
        raise ValueError(f"head: cannot import {spec['class_path']!r} ({error})") from error
    if not (isinstance(head_class, type) and issubclass(head_class, DetectorHead)):
        raise ValueError(f"head: {spec['class_path']} is not a DetectorHead")
    init_args = dict(spec.get("init_args") or {})
    accepted = set(inspect.signature(head_class).parameters) - {"input_dim"}
    unknown = sorted(set(init_args) - accepted)
    if unknown:
        raise ValueError(f"head: {spec['class_path']} takes no {unknown}; it takes {sorted(accepted)}")
    return head_class(input_dim, **init_args)
