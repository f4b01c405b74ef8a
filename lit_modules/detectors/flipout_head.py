"""The Bayesian detector head: frame-wise Flipout layer -> mean/std pooling over time -> Flipout classifier.

Flipout layers (Wen et al. 2018) come from bayesian-torch (``LinearFlipout``): a factorized Gaussian posterior
(mean, softplus(rho) std) over every weight, a Gaussian prior, one weight-noise sample per forward pass decorrelated
across examples (and frames) by random sign flips. The KL term is computed here (``flipout_kl``): bayesian-torch
0.5.0 returns the KL *averaged* over a layer's parameters, not summed, which would shrink the ELBO's KL / N by the
parameter count (a 20k-weight layer: 20,000x).
"""

from __future__ import annotations

import math

import torch
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
        x = self.frame_layer(self.normalize(hidden.float()), return_kl=False)
        pooled = masked_mean_std(self.activation(x), lengths)
        x = self.pooled_layer(pooled, return_kl=False)
        logits = self.classifier(self.activation(x), return_kl=False)
        return logits.squeeze(-1), self.kl()

    def kl(self) -> torch.Tensor:
        """Summed closed-form KL of all Flipout layers."""
        return sum(flipout_kl(layer) for layer in (self.frame_layer, self.pooled_layer, self.classifier))

    def sample(self, hidden: torch.Tensor, lengths: torch.Tensor, samples: int) -> torch.Tensor:
        """Monte Carlo logits [S, B] by batch tiling: the batch is repeated S times in one forward pass, so each copy
        gets its own Flipout sign pattern (only the head is sampled, never the backbone)."""
        tiled = hidden.repeat(samples, 1, 1)
        logits, _ = self(tiled, lengths.repeat(samples))
        return logits.view(samples, hidden.shape[0])
