"""The Bayesian detector head: frame-wise Flipout layer -> mean/std pooling over time -> Flipout classifier.

Flipout layers (Wen et al. 2018) come from bayesian-torch (``LinearFlipout``): a factorized Gaussian posterior
(mean, softplus(rho) std) over every weight, a Gaussian prior, one weight-noise sample per forward pass decorrelated
across examples by random sign flips. The KL term is computed here (``flipout_kl``): bayesian-torch 0.5.0 returns the
KL *averaged* over a layer's parameters, not summed, which would shrink the ELBO's KL / N by the parameter count (a
20k-weight layer: 20,000x).

The layers are applied with ``utterance_flipout`` / ``copy_flipout``: the layer's own parameters, but
- one sign pattern per (Monte Carlo copy, utterance), shared by all its frames, so every frame of an utterance sees
  the same pseudo-independent weight sample (the utterance is Flipout's "example"; bayesian-torch's forward would
  draw new signs per frame, as if each frame were an example);
- one weight-noise draw eps per Monte Carlo copy. bayesian-torch draws one eps per forward pass; with the S copies
  tiled into one pass they would all share it and differ only by their signs, so an utterance's S samples would
  estimate the spread under that one eps (for a D-input unit, a chi-square of D terms: ~12 % relative error at
  D = 144) and every utterance of a batch would share the error: scores would depend on an input's batch-mates.
  With S draws the samples are independent across copies (tested). Training (S = 1) draws one eps per pass, as
  bayesian-torch does.
The frame layer's mean path is computed once for all S copies, and its perturbation is one [T, D] x [D, S x H] product
per utterance, the input signs folded into the noise matrices (measured in docs/detector.md).
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
    return torch.randint(0, 2, shape, dtype=like.dtype, device=like.device).mul_(2).sub_(1)


def flipout_perturbation(layer: LinearFlipout, x: torch.Tensor, samples: int) -> torch.Tensor:
    """The weight-noise part of ``layer``'s output for S copies: x [S or 1, B, *, D] -> [S, B, *, H].

    ((x * s_in) dW_s^T + db_s) * s_out with dW_s = softplus(rho) * eps_s, one eps_s per copy s, and Rademacher signs
    s_in [S, B, 1.., D], s_out [S, B, 1.., H] per (copy, example), shared along the middle (time) axes."""
    width, out = layer.mu_weight.shape[1], layer.mu_weight.shape[0]
    batch, middle = x.shape[1], x.dim() - 3
    delta_weight, delta_bias = weight_noise(layer, samples, x)
    signs_in = rademacher((samples, batch, *(1,) * middle, width), x)
    signs_out = rademacher((samples, batch, *(1,) * middle, out), x)
    product = torch.einsum("s...d,shd->s...h", x * signs_in, delta_weight)
    if delta_bias is not None:
        product = product + delta_bias.view(samples, *(1,) * (x.dim() - 2), out)
    return product * signs_out


def weight_noise(layer: LinearFlipout, samples: int, like: torch.Tensor
                 ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """S weight-noise draws softplus(rho) * eps: [S, H, D] and [S, H] (bias; None without one).

    With gradients enabled (training) every call draws anew. Without (evaluation, scoring) the draws are kept on the
    layer and reused until its parameters change (their version counters) or S changes: S fixed posterior samples,
    each call still drawing fresh Flipout signs. Drawing S x H x D normals costs ~1.3 ms per call at S = 32, H = 64,
    D = 144 on a 2-core CPU, more than the rest of the head (docs/detector.md)."""
    def draw() -> tuple[torch.Tensor, torch.Tensor | None]:
        weight = F.softplus(layer.rho_weight) * torch.randn(samples, *layer.mu_weight.shape, dtype=like.dtype,
                                                           device=like.device)
        bias = None if layer.mu_bias is None else F.softplus(layer.rho_bias) * torch.randn(
            samples, layer.mu_bias.shape[0], dtype=like.dtype, device=like.device)
        return weight, bias

    if torch.is_grad_enabled():
        return draw()
    parameters = [p for p in (layer.mu_weight, layer.rho_weight, layer.mu_bias, layer.rho_bias) if p is not None]
    key = (samples, like.dtype, like.device, tuple((p.data_ptr(), p._version) for p in parameters))
    cached = layer.__dict__.get("_evaluation_noise")
    if cached is None or cached[0] != key:
        cached = (key, draw())
        layer.__dict__["_evaluation_noise"] = cached
    return cached[1]


def utterance_flipout(layer: LinearFlipout, x: torch.Tensor, samples: int) -> torch.Tensor:
    """Flipout through ``layer`` with one weight sample per (copy, utterance): x [B, T, D] -> [S, B, T, H].

    The same sum as ``F.linear(x, W_mu, b_mu) + flipout_perturbation(layer, x[None], S)``, computed the other way
    round: an utterance's input signs are shared by all its frames, so they are folded into its S noise matrices
    (dW_s * s_in: S x H x D values, not S x T x D) and its frames meet them in one [T, D] x [D, S x H] product; the
    mean path is computed once. The result is a view of a [B, T, S, H] tensor."""
    out_features, width = layer.mu_weight.shape
    batch, length = x.shape[:2]
    delta_weight, delta_bias = weight_noise(layer, samples, x)  # [S, H, D], [S, H]
    signs_in = rademacher((samples, batch, 1, width), x)
    signs_out = rademacher((samples, batch, 1, out_features), x)
    noise = (delta_weight[:, None] * signs_in).permute(1, 3, 0, 2).reshape(batch, width, samples * out_features)
    product = torch.bmm(x, noise).view(batch, length, samples, out_features)  # [B, T, S, H]
    if delta_bias is not None:
        product = product + delta_bias
    frames = torch.addcmul(F.linear(x, layer.mu_weight, layer.mu_bias)[:, :, None], product,
                           signs_out[:, :, 0].transpose(0, 1)[:, None])  # [B, T, S, H]
    return frames.permute(2, 0, 1, 3)


def copy_flipout(layer: LinearFlipout, x: torch.Tensor) -> torch.Tensor:
    """Flipout through ``layer`` for inputs that already differ per copy: x [S, B, D] -> [S, B, H], one weight-noise
    draw per copy and signs per (copy, example)."""
    return F.linear(x, layer.mu_weight, layer.mu_bias) + flipout_perturbation(layer, x, x.shape[0])


def masked_mean_std(frames: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """frames [*, B, T, H], lengths [B] -> concatenated mean and std over each item's valid frames, [*, B, 2H]."""
    length = frames.shape[-2]
    if bool((lengths == length).all()):  # nothing padded (one utterance at a time, as deployed): no mask
        mean = frames.mean(-2)  # (torch.var_mean is ~10x slower here on CPU)
        variance = (frames - mean.unsqueeze(-2)).square().mean(-2)
    else:
        valid = (torch.arange(length, device=frames.device)[None, :] < lengths[:, None]).unsqueeze(-1)
        count = lengths.clamp(min=1)[:, None].to(frames.dtype)
        mean = (frames * valid).sum(-2) / count
        variance = (((frames - mean.unsqueeze(-2)) * valid) ** 2).sum(-2) / count
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
        """Monte Carlo logits [S, B] in one pass: the frame layer's output is produced for S copies (each with its own
        weight-noise draw and Flipout signs), the pooled layers see the S x B copies (only the head is sampled, never
        the backbone)."""
        frames = utterance_flipout(self.frame_layer, self.normalize(hidden.float()), samples)  # [S, B, T, H]
        x = copy_flipout(self.pooled_layer, masked_mean_std(self.activation(frames), lengths))  # [S, B, 2H] -> [S, B, H]
        return copy_flipout(self.classifier, self.activation(x))[..., 0]
