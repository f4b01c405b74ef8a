"""The Bayesian detector head: frame-wise Flipout layer -> mean/std pooling over time -> Flipout classifier.

Flipout layers (Wen et al. 2018) come from bayesian-torch (``LinearFlipout``): a factorized Gaussian posterior
(mean, softplus(rho) std) over every weight, a Gaussian prior, one weight-noise sample per forward pass decorrelated
across examples by random sign flips. The KL term is computed here (``flipout_kl``): bayesian-torch 0.5.0 returns the
KL *averaged* over a layer's parameters, not summed, which would shrink the ELBO's KL / N by the parameter count (a
20k-weight layer: 20,000x).

The frame-wise layer is applied with ``utterance_flipout``: the layer's own parameters, but one sign pattern per
(Monte Carlo copy, utterance) shared by all its frames, so every frame of an utterance sees the same pseudo-independent
weight sample (the utterance is Flipout's "example"; bayesian-torch's forward would draw new signs per frame, as if
each frame were an example). It also computes the mean path once for all S copies and draws S x (D + H) signs
instead of S x T x (D + H): the head's sampling cost is one [S x T, D] x [D, H] product (measured in
docs/detector.md).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from bayesian_torch.layers.flipout_layers.linear_flipout import LinearFlipout
from torch import nn


def flipout_kl(layer: LinearFlipout) -> torch.Tensor:
    """Closed-form KL(q || p) of a Flipout layer, summed over all its weights and biases (scalar)."""

    def summed(mu: torch.Tensor, rho: torch.Tensor, prior_mu: float, prior_sigma: float) -> torch.Tensor:
        sigma = torch.nn.functional.softplus(rho)
        return (math.log(prior_sigma) - sigma.log() + (sigma**2 + (mu - prior_mu) ** 2) / (2 * prior_sigma**2)
                - 0.5).sum()

    kl = summed(layer.mu_weight, layer.rho_weight, layer.prior_mean, layer.prior_variance**0.5)
    if layer.mu_bias is not None:
        kl = kl + summed(layer.mu_bias, layer.rho_bias, layer.prior_mean, layer.prior_variance**0.5)
    return kl


def rademacher(shape: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
    """Random signs +-1 of ``shape`` with ``like``'s dtype and device."""
    return torch.randint(0, 2, shape, device=like.device).to(like.dtype).mul_(2).sub_(1)


def utterance_flipout(layer: LinearFlipout, x: torch.Tensor, samples: int) -> torch.Tensor:
    """Flipout through ``layer`` with one weight sample per (copy, utterance): x [B, T, D] -> [S, B, T, H].

    out = x W_mu^T + b_mu + ((x * s_in) dW^T + db) * s_out, dW = softplus(rho) * eps (one eps per call, as in
    bayesian-torch), s_in [S, B, 1, D] and s_out [S, B, 1, H] Rademacher signs."""
    mean = F.linear(x, layer.mu_weight, layer.mu_bias)
    delta_weight = F.softplus(layer.rho_weight) * torch.randn_like(layer.mu_weight)
    delta_bias = None if layer.mu_bias is None else F.softplus(layer.rho_bias) * torch.randn_like(layer.mu_bias)
    batch, _, width = x.shape
    signs_in = rademacher((samples, batch, 1, width), x)
    signs_out = rademacher((samples, batch, 1, mean.shape[-1]), x)
    return mean[None] + F.linear(x[None] * signs_in, delta_weight, delta_bias) * signs_out


def masked_mean_std(frames: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """frames [B, T, H], lengths [B] -> concatenated mean and std over each item's valid frames, [B, 2H]."""
    valid = (torch.arange(frames.shape[1], device=frames.device)[None, :] < lengths[:, None]).unsqueeze(-1)
    count = lengths.clamp(min=1)[:, None].to(frames.dtype)
    mean = (frames * valid).sum(1) / count
    variance = (((frames - mean[:, None]) * valid) ** 2).sum(1) / count
    return torch.cat([mean, (variance + 1e-6).sqrt()], dim=-1)


class FlipoutDetectorHead(nn.Module):
    """hidden activations [B, T, D] + frame lengths [B] -> (adversarial logits [B], KL of all Flipout layers).

    Args:
        input_dim: D, the backend layer's width. hidden_dim: width of the frame-wise and pooled layers.
        prior_variance: variance of the Gaussian prior. posterior_rho_init: initial rho (std = softplus(rho)).
    The input is layer-normalized (no learned affine) so every backend's scale looks alike to the head.
    """

    def __init__(self, input_dim: int, hidden_dim: int = 64, prior_variance: float = 1.0,
                 posterior_rho_init: float = -4.0) -> None:
        super().__init__()
        flipout = dict(prior_mean=0.0, prior_variance=prior_variance, posterior_rho_init=posterior_rho_init)
        self.input_dim = input_dim
        self.normalize = nn.LayerNorm(input_dim, elementwise_affine=False)
        self.frame_layer = LinearFlipout(input_dim, hidden_dim, **flipout)
        self.pooled_layer = LinearFlipout(2 * hidden_dim, hidden_dim, **flipout)
        self.classifier = LinearFlipout(hidden_dim, 1, **flipout)
        self.activation = nn.GELU()

    def forward(self, hidden: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One Monte Carlo sample (training): logits [B] and the summed KL."""
        return self.sample(hidden, lengths, 1)[0], self.kl()

    def kl(self) -> torch.Tensor:
        """Summed closed-form KL of all Flipout layers."""
        return sum(flipout_kl(layer) for layer in (self.frame_layer, self.pooled_layer, self.classifier))

    def sample(self, hidden: torch.Tensor, lengths: torch.Tensor, samples: int) -> torch.Tensor:
        """Monte Carlo logits [S, B] in one pass: the frame layer's output is tiled S times (each copy with its own
        Flipout signs), the pooled layers see the S x B tiled batch (only the head is sampled, never the backbone)."""
        frames = utterance_flipout(self.frame_layer, self.normalize(hidden.float()), samples)  # [S, B, T, H]
        batch, length = hidden.shape[:2]
        pooled = masked_mean_std(self.activation(frames).reshape(samples * batch, length, -1), lengths.repeat(samples))
        x = self.pooled_layer(pooled, return_kl=False)
        logits = self.classifier(self.activation(x), return_kl=False)
        return logits.view(samples, batch)
