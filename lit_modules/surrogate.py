"""The attacker's own recognizer(s), the source of a transfer prior (``attacks.transfer_prior``).

A transfer attacker trains or downloads models of its own (here: small backends trained with other seeds on another
synthetic corpus, or any backend with scores) and uses their input gradients as a hint of where the attacked model's
loss falls. Several members form an ensemble (Liu et al. 2017): the loss is their mean, so a direction must lower
all of them, which is what makes it more likely to lower an unseen model's loss too. The surrogate lives in its own
process, like the victim behind the oracle; the attack receives only loss values and gradient arrays. It must be
another model than the victim: ``describe`` carries every member's fingerprint, which the attack compares with the
oracle's.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from lit_modules.backends.base import ASRBackend, Capability


class Surrogate(nn.Module):
    """Args: backends: one backend with scores (``Capability.SCORE``) or several (an ensemble), e.g.
    ``load_backend(name, checkpoint=...)``; label: how tables and cache keys name it."""

    def __init__(self, backends: ASRBackend | Sequence[ASRBackend], label: str = "surrogate") -> None:
        super().__init__()
        members = [backends] if isinstance(backends, ASRBackend) else list(backends)
        if not members:
            raise ValueError("a surrogate needs at least one backend")
        for member in members:
            if Capability.SCORE not in member.capabilities:
                raise ValueError(f"{type(member).__name__} offers no scores: it cannot serve as a transfer surrogate")
            if member.sample_rate != members[0].sample_rate:
                raise ValueError("the surrogate's members must share one sample rate")
        self.members = nn.ModuleList(member.freeze() for member in members)
        self.label = label

    @property
    def backend(self) -> ASRBackend:
        """The first member (the only one of a single-model surrogate)."""
        return self.members[0]

    def describe(self) -> dict:
        fingerprints = [member.fingerprint() for member in self.members]
        return {"label": self.label, "sample_rate": self.backend.sample_rate, "members": len(self.members),
                "fingerprint": "+".join(fingerprints), "fingerprints": fingerprints}

    def losses_and_gradients(self, waveforms: torch.Tensor, lengths: torch.Tensor,
                             texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """The members' mean negative log-likelihood of each text [P] (nats) and its gradient d / d waveform [P, T],
        for waveforms [P, T] in [-1, 1] (float32, on the CPU)."""
        losses, gradients = 0.0, 0.0
        for member in self.members:
            loss, gradient = member.score_and_gradient(waveforms.to(member.device), lengths.to(member.device), texts)
            losses, gradients = losses + loss.cpu(), gradients + gradient.cpu()
        return losses / len(self.members), gradients / len(self.members)

    def gradients(self, waveforms: torch.Tensor, lengths: torch.Tensor, texts: list[str]) -> torch.Tensor:
        """d mean NLL(text) / d waveform [P, T] (see ``losses_and_gradients``)."""
        return self.losses_and_gradients(waveforms, lengths, texts)[1]


def build_surrogate(backend: str = "conformer_ctc", checkpoint: str | None = None, device: str = "cpu",
                    label: str | None = None, members: list[dict] | None = None, **backend_options) -> Surrogate:
    """Factory for ``attacks.TransferPrior`` (runs in the prior's process): a registry backend, optionally from
    another checkpoint than the embedded default's (the attacker's own training run); or, with ``members``, an
    ensemble, one mapping per member: ``{backend, checkpoint}``, or ``{backend, seed[, corpus_seed]}`` for the
    attacker's copy trained by ``provisioning.train_surrogate`` (which must have run: nothing is trained here)."""
    from lit_modules.backends.registry import TRAINED, load_backend, surrogate_checkpoint_path

    specs = members if members else [{"backend": backend, "checkpoint": checkpoint, **backend_options}]
    models, names = [], []
    for spec in specs:
        spec = dict(spec)
        name, path, seed = spec.pop("backend", "conformer_ctc"), spec.pop("checkpoint", None), spec.pop("seed", None)
        corpus = spec.pop("corpus_seed", 1)
        if path is None and seed is not None:
            path = str(surrogate_checkpoint_path(name, seed, corpus))
        if name in TRAINED:  # only its scores are used: no beam search or LM to load
            spec.setdefault("decoding", {"beam_size": 1})
        models.append(load_backend(name, device=device, checkpoint=path, **spec))
        names.append(f"{name}@seed{seed}/corpus{corpus}" if seed is not None else
                     name if path is None else f"{name}:{path}")
    return Surrogate(models, label or " + ".join(names))


def surrogate_members(names: Sequence[str], train_missing: bool = False) -> list[dict]:
    """``"backend:seed[:corpus]"`` names (e.g. ``conformer_ctc:1``, or ``conformer_ctc:1:0`` for one trained on the
    victim's own public corpus 0; default corpus 1) -> ``build_surrogate``'s ``members``; ``train_missing``: train
    each missing one now (``provisioning.train_surrogate``), in this process, so the prior's process only loads."""
    from lit_modules.backends.provisioning import train_surrogate
    from lit_modules.backends.registry import TRAINED

    members = []
    for name in names:
        backend, *numbers = name.split(":")
        if backend not in TRAINED or not 1 <= len(numbers) <= 2 or not all(n.isdigit() for n in numbers):
            raise ValueError(f"surrogate {name!r} must be 'backend:seed' or 'backend:seed:corpus' with a backend "
                             f"trained here {TRAINED}, e.g. conformer_ctc:1")
        seed, corpus = int(numbers[0]), int(numbers[1]) if len(numbers) == 2 else 1
        members.append({"backend": backend, "seed": seed, "corpus_seed": corpus})
        if train_missing:
            train_surrogate(backend, seed, corpus)
    return members


def prior_members(backend: str, checkpoints: Sequence[str] | None, surrogates: Sequence[str] | None) -> list[dict]:
    """A transfer prior's members: checkpoints of ``backend`` (the attacker's own files) and ``surrogates`` names
    (``surrogate_members``; trained here when missing)."""
    return ([{"backend": backend, "checkpoint": c} for c in checkpoints or []]
            + surrogate_members(surrogates or [], train_missing=True))
