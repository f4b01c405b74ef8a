"""The attacker's own recognizer, the source of a transfer prior (``attacks.transfer_prior``).

A transfer attacker trains or downloads a model of its own (here: a small backend trained with another seed, or
any backend with scores) and uses its input gradients as a hint of where the attacked model's loss falls. The
surrogate lives in its own process, like the victim behind the oracle; the attack receives only gradient arrays.
It must be another model than the victim: ``describe`` carries its fingerprint, which the attack compares with the
oracle's.
"""

from __future__ import annotations

import torch
from torch import nn

from lit_modules.backends.base import ASRBackend, Capability


class Surrogate(nn.Module):
    """Args: backend: a backend with scores (``Capability.SCORE``), e.g. ``load_backend(name, checkpoint=...)``;
    label: how tables and cache keys name it."""

    def __init__(self, backend: ASRBackend, label: str = "surrogate") -> None:
        super().__init__()
        if Capability.SCORE not in backend.capabilities:
            raise ValueError(f"{type(backend).__name__} offers no scores: it cannot serve as a transfer surrogate")
        self.backend = backend.freeze()
        self.label = label

    def describe(self) -> dict:
        return {"label": self.label, "sample_rate": self.backend.sample_rate,
                "fingerprint": self.backend.fingerprint()}

    def gradients(self, waveforms: torch.Tensor, lengths: torch.Tensor, texts: list[str]) -> torch.Tensor:
        """d NLL(text) / d waveform [P, T] for waveforms [P, T] in [-1, 1] (float32, on the CPU)."""
        waveforms = waveforms.to(self.backend.device)
        return self.backend.score_gradient(waveforms, lengths.to(self.backend.device), texts).cpu()


def build_surrogate(backend: str = "conformer_ctc", checkpoint: str | None = None, device: str = "cpu",
                    label: str | None = None, **backend_options) -> Surrogate:
    """Factory for ``attacks.TransferPrior`` (runs in the prior's process): a registry backend, optionally from
    another checkpoint than the embedded default's (the attacker's own training run)."""
    from lit_modules.backends.registry import TRAINED, load_backend

    if backend in TRAINED:  # only its scores are used: no beam search or LM to load
        backend_options.setdefault("decoding", {"beam_size": 1})
    model = load_backend(backend, device=device, checkpoint=checkpoint, train_if_missing=False, **backend_options)
    return Surrogate(model, label or (backend if checkpoint is None else f"{backend}:{checkpoint}"))
