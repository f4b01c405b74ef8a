"""The ELBO objective of the Bayesian detector (paper Eq. 2), as a pure function."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def elbo_loss(logits: torch.Tensor, labels: torch.Tensor, kl: torch.Tensor, num_train: int,
              kl_weight: float = 1.0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Negative ELBO per example: mean binary cross-entropy + ``kl_weight`` x KL / N.

    ``num_train`` is N, the training-set size (not the batch size): the KL of the whole posterior is spread over the
    N examples the likelihood sums over. ``kl_weight`` in [0, 1] allows a warm-up. Returns (loss, nll, kl / N).
    """
    if num_train < 1:
        raise ValueError(f"num_train (N) must be >= 1, got {num_train}")
    nll = F.binary_cross_entropy_with_logits(logits.float(), labels.float())
    scaled_kl = kl / num_train
    return nll + kl_weight * scaled_kl, nll, scaled_kl


def kl_warmup(step: int, warmup_steps: int) -> float:
    """Linear KL warm-up weight in [0, 1] (1 from ``warmup_steps`` on; always 1 without warm-up)."""
    return 1.0 if warmup_steps <= 0 else min(1.0, (step + 1) / warmup_steps)
