"""Unsupervised Bayesian detection (paper Eq. 3 and Fig. 2, after BATer): a variational CTC layer trained on clean
speech only; adversarial inputs make its Monte Carlo outputs disperse unlike clean speech does.

``BayesianCTCProbe``: hidden activations [B, T, D] -> Flipout linear layer -> character log-probabilities [B, T, V],
trained with the CTC loss of the clean transcripts plus KL / N (the recognizer's own kind of loss, on top of the
frozen backend's layer). Detection statistics from S Monte Carlo samples:
- per-frame dispersion: the std over samples of the output probabilities, averaged over the vocabulary, [T];
- per-utterance dispersion: its mean over valid frames (the Fig. 2 quantity);
- 1-Wasserstein distance between an utterance's per-frame dispersion values and the reference distribution of
  per-frame dispersion on clean training speech;
- per-frame mutual information between the output and the weights (BALD: entropy of the mean prediction minus the
  mean entropy of the samples, nats; the epistemic part of the predictive entropy), and the utterance's epistemic
  fraction (summed mutual information / summed predictive entropy).
"""

from __future__ import annotations

import numpy as np
import torch
from bayesian_torch.layers.flipout_layers.linear_flipout import LinearFlipout
from scipy.stats import wasserstein_distance
from torch import nn

from lit_modules.detectors.flipout_head import flipout_kl, utterance_flipout


class BayesianCTCProbe(nn.Module):
    def __init__(self, input_dim: int, vocabulary_size: int, prior_variance: float = 1.0,
                 posterior_rho_init: float = -4.0) -> None:
        super().__init__()
        self.normalize = nn.LayerNorm(input_dim, elementwise_affine=False)
        self.output = LinearFlipout(input_dim, vocabulary_size, prior_mean=0.0, prior_variance=prior_variance,
                                    posterior_rho_init=posterior_rho_init)

    def forward(self, hidden: torch.Tensor, samples: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
        """hidden [B, T, D] -> (log-probabilities [S, B, T, V] of S Monte Carlo copies, KL). One weight sample per
        (copy, utterance), an independent weight-noise draw per copy (``utterance_flipout``)."""
        logits = utterance_flipout(self.output, self.normalize(hidden.float()), samples)
        return logits.log_softmax(-1), flipout_kl(self.output)

    @torch.no_grad()
    def frame_statistics(self, hidden: torch.Tensor, lengths: torch.Tensor, samples: int) -> dict[str, torch.Tensor]:
        """From one pass of S Monte Carlo copies (``utterance_flipout``), each [B, T] and zero past each length:
        ``dispersion`` (std over samples of the output probabilities, mean over the vocabulary), ``entropy`` (of the
        mean prediction, nats) and ``mutual_information`` (BALD: that entropy minus the samples' mean entropy)."""
        log_probs, _ = self(hidden, samples)
        probs = log_probs.exp()
        mean = probs.mean(0)
        entropy = -(mean * mean.clamp_min(1e-12).log()).sum(-1)
        expected_entropy = -(probs * log_probs).sum(-1).mean(0)
        valid = torch.arange(hidden.shape[1], device=hidden.device)[None, :] < lengths[:, None]
        return {"dispersion": probs.std(dim=0).mean(-1) * valid, "entropy": entropy * valid,
                "mutual_information": (entropy - expected_entropy).clamp_min(0) * valid}

    def frame_dispersion(self, hidden: torch.Tensor, lengths: torch.Tensor, samples: int) -> torch.Tensor:
        """Per-frame std over S Monte Carlo samples of the output probabilities, mean over the vocabulary, [B, T]
        (zero past each length)."""
        return self.frame_statistics(hidden, lengths, samples)["dispersion"]


def utterance_dispersion(frame_dispersion: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Mean per-frame dispersion (or any per-frame statistic zero past the lengths) over valid frames, [B]."""
    return frame_dispersion.sum(1) / lengths.clamp(min=1).to(frame_dispersion.dtype)


def epistemic_fraction(mutual_information: torch.Tensor, entropy: torch.Tensor) -> torch.Tensor:
    """Share of an utterance's predictive entropy that is epistemic (summed over frames), [B] in [0, 1]."""
    return mutual_information.sum(1) / entropy.sum(1).clamp_min(1e-12)


def wasserstein_scores(frame_dispersion: torch.Tensor, lengths: torch.Tensor, reference: np.ndarray) -> torch.Tensor:
    """1-Wasserstein distance between each utterance's per-frame dispersion values and ``reference`` values, [B]."""
    values = frame_dispersion.detach().cpu().numpy()
    scores = [wasserstein_distance(values[i, : int(lengths[i])], reference) for i in range(values.shape[0])]
    return torch.tensor(scores, dtype=torch.float32)
