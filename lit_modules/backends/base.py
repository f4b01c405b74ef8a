"""The one narrow interface every ASR backend offers to attacks (through an oracle), detectors and benchmarks.

Conventions: waveforms [B, T] float32 mono at ``sample_rate`` (16 kHz) in [-1, 1], zero-padded, with
``lengths`` [B] (valid samples). Transcripts are normalized upper-case words (``core.text``).
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from enum import Enum

import torch
from torch import nn

from core.errors import DataError


class Capability(str, Enum):
    """What a backend can do. PocketSphinx, a black box, can only transcribe."""

    TRANSCRIBE = "transcribe"
    HIDDEN = "hidden"
    SCORE = "score"


PRECISIONS = {"32": None, "bf16": torch.bfloat16, "16": torch.float16}  # forward passes under autocast (None: fp32)


class Float32(nn.Module):
    """Runs ``module`` (a feature extractor: STFT, filterbanks, logs) in float32 even under autocast."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, inputs: torch.Tensor, *args, **kwargs):
        with torch.autocast(inputs.device.type, enabled=False):
            return self.module(inputs.float(), *args, **kwargs)


def scatter_groups(batch: int, parts: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]):
    """Per length group (rows [G], states [G, T', D], frame counts [G]) -> states [batch, T'max, D] zero-padded and
    frame counts [batch] (for backends that run each length unpadded)."""
    frames = max(states.shape[1] for _, states, _ in parts)
    out = parts[0][1].new_zeros(batch, frames, parts[0][1].shape[-1])
    counts = torch.zeros(batch, dtype=torch.long, device=out.device)
    for rows, states, group_counts in parts:
        out[rows, : states.shape[1]] = states
        counts[rows] = group_counts.long().to(out.device)
    return out, counts


class UnsupportedCapabilityError(RuntimeError):
    """The backend cannot offer this method (e.g. hidden activations of a black-box recognizer)."""


class ASRBackend(nn.Module, ABC):
    """A frozen, batched speech recognizer.

    Subclasses implement ``_transcribe`` (and ``_hidden`` / ``_score`` when they declare those capabilities);
    the public methods validate inputs, run without autograd, and return detached tensors.
    """

    sample_rate: int = 16_000
    capabilities: frozenset[Capability] = frozenset({Capability.TRANSCRIBE})
    min_samples: int = 1_600  # 0.1 s: shorter input gives no meaningful transcript
    precision: str = "32"  # "bf16" / "16": forward passes under autocast (``set_precision``)

    @property
    def hidden_layers(self) -> list[str]:
        """Names accepted by ``hidden(..., layer=...)``; empty without the HIDDEN capability."""
        return []

    def freeze(self) -> "ASRBackend":
        """Eval mode, no parameter requires grad. Returns self."""
        self.eval()
        for parameter in self.parameters():
            parameter.requires_grad_(False)
        return self

    def set_precision(self, precision: str) -> "ASRBackend":
        """Run every forward pass in float32 (``"32"``) or under autocast in bfloat16 (``"bf16"``, the GPU default of
        the ``paper`` preset) or float16 (``"16"``); inputs and outputs stay float32. Returns self."""
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {sorted(PRECISIONS)}, got {precision!r}")
        self.precision = precision
        return self

    def _autocast(self):
        dtype = PRECISIONS[self.precision]
        return torch.autocast(self.device.type, dtype=dtype or torch.bfloat16, enabled=dtype is not None)

    def train(self, mode: bool = True) -> "ASRBackend":
        # A backend is frozen: dropout and friends stay off even inside a training LightningModule.
        return super().train(False)

    @property
    def device(self) -> torch.device:
        parameter = next(self.parameters(), None)
        return parameter.device if parameter is not None else torch.device("cpu")

    def check_input(self, waveforms: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Validate a batch; returns (waveforms, lengths) on the backend's device as float32 / int64."""
        if waveforms.ndim != 2:
            raise ValueError(f"waveforms must be [B, T], got shape {tuple(waveforms.shape)}")
        if lengths.ndim != 1 or lengths.shape[0] != waveforms.shape[0]:
            raise ValueError(f"lengths must be [B={waveforms.shape[0]}], got shape {tuple(lengths.shape)}")
        if waveforms.shape[0] == 0:
            raise ValueError("empty batch")
        if int(lengths.max()) > waveforms.shape[1]:
            raise ValueError(f"a length ({int(lengths.max())}) exceeds the padded size {waveforms.shape[1]}")
        too_short = (lengths < self.min_samples).nonzero().flatten().tolist()
        if too_short:
            raise DataError(
                "<batch>",
                f"items {too_short} have fewer than {self.min_samples} samples ({self.min_samples / self.sample_rate:.2f} s "
                f"at {self.sample_rate} Hz): too short to recognize (is the audio empty or at the wrong rate?)",
            )
        if not torch.isfinite(waveforms).all():
            raise DataError("<batch>", "waveforms contain NaN or infinite samples")
        return waveforms.to(self.device, torch.float32), lengths.to(self.device, torch.long)

    def _require(self, capability: Capability) -> None:
        if capability not in self.capabilities:
            raise UnsupportedCapabilityError(f"{type(self).__name__} does not offer {capability.value!r}")

    @torch.no_grad()
    def transcribe(self, waveforms: torch.Tensor, lengths: torch.Tensor) -> list[str]:
        """Greedy / configured decoding; B normalized transcripts."""
        self._require(Capability.TRANSCRIBE)
        with self._autocast():
            return self._transcribe(*self.check_input(waveforms, lengths))

    @torch.no_grad()
    def hidden(self, waveforms: torch.Tensor, lengths: torch.Tensor, layer: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Activations [B, T', D] of ``layer`` (zero past each item's length) and valid lengths [B] (frames)."""
        self._require(Capability.HIDDEN)
        if layer not in self.hidden_layers:
            raise ValueError(f"unknown layer {layer!r} for {type(self).__name__}; choose from {self.hidden_layers}")
        with self._autocast():
            activations, frame_lengths = self._hidden(*self.check_input(waveforms, lengths), layer)
        valid = torch.arange(activations.shape[1], device=activations.device)[None, :] < frame_lengths[:, None]
        return (activations * valid.unsqueeze(-1)).detach().float(), frame_lengths.detach()

    @torch.no_grad()
    def transcribe_with_hidden(self, waveforms: torch.Tensor, lengths: torch.Tensor,
                               layer: str) -> tuple[list[str], torch.Tensor, torch.Tensor]:
        """Transcripts, activations [B, T', D] of ``layer`` and frame lengths [B], from one forward pass where the
        backend can share it (else two)."""
        self._require(Capability.TRANSCRIBE)
        self._require(Capability.HIDDEN)
        if layer not in self.hidden_layers:
            raise ValueError(f"unknown layer {layer!r} for {type(self).__name__}; choose from {self.hidden_layers}")
        waveforms, lengths = self.check_input(waveforms, lengths)
        with self._autocast():
            shared = self._transcribe_with_hidden(waveforms, lengths, layer)
            if shared is None:
                texts = self._transcribe(waveforms, lengths)
                activations, frame_lengths = self._hidden(waveforms, lengths, layer)
            else:
                texts, activations, frame_lengths = shared
        valid = torch.arange(activations.shape[1], device=activations.device)[None, :] < frame_lengths[:, None]
        return texts, (activations * valid.unsqueeze(-1)).detach().float(), frame_lengths.detach()

    def _transcribe_with_hidden(self, waveforms: torch.Tensor, lengths: torch.Tensor, layer: str):
        """Override to share one forward pass; ``None`` = not shareable for this layer."""
        return None

    @torch.no_grad()
    def score(self, waveforms: torch.Tensor, lengths: torch.Tensor, texts: list[str]) -> torch.Tensor:
        """Negative log-likelihood [B] (nats) the model assigns to each text; lower = more likely."""
        self._require(Capability.SCORE)
        if len(texts) != waveforms.shape[0]:
            raise ValueError(f"{len(texts)} texts for a batch of {waveforms.shape[0]}")
        with self._autocast():
            return self._score(*self.check_input(waveforms, lengths), texts).detach().float()

    def score_gradient(self, waveforms: torch.Tensor, lengths: torch.Tensor, texts: list[str]) -> torch.Tensor:
        """d (negative log-likelihood of each text) / d waveform, [B, T] (per item: items do not interact).
        White-box: for an attacker's *own* surrogate model (``lit_modules.surrogate``); no oracle offers it."""
        return self.score_and_gradient(waveforms, lengths, texts)[1]

    def score_and_gradient(self, waveforms: torch.Tensor, lengths: torch.Tensor,
                           texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """(negative log-likelihood [B] of each text, nats; its gradient d NLL / d waveform [B, T]) from one forward
        and backward pass. White-box, like ``score_gradient``."""
        self._require(Capability.SCORE)
        if len(texts) != waveforms.shape[0]:
            raise ValueError(f"{len(texts)} texts for a batch of {waveforms.shape[0]}")
        waveforms, lengths = self.check_input(waveforms, lengths)
        with torch.enable_grad():
            inputs = waveforms.detach().clone().requires_grad_(True)
            losses = self._score(inputs, lengths, texts)
            (gradient,) = torch.autograd.grad(losses.sum(), inputs)
        return losses.detach().float(), gradient.detach().float()

    def fingerprint(self) -> str:
        """SHA-256 (first 16 hex digits) of the parameters and buffers: tells two models apart without revealing
        either (a transfer attack's surrogate must not be the attacked model itself)."""
        digest = hashlib.sha256(type(self).__name__.encode())
        for name, tensor in sorted(self.state_dict().items()):
            digest.update(name.encode())
            digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
        return digest.hexdigest()[:16]

    @abstractmethod
    def _transcribe(self, waveforms: torch.Tensor, lengths: torch.Tensor) -> list[str]: ...

    def _hidden(self, waveforms: torch.Tensor, lengths: torch.Tensor, layer: str) -> tuple[torch.Tensor, torch.Tensor]:
        raise UnsupportedCapabilityError(f"{type(self).__name__} does not offer hidden activations")

    def _score(self, waveforms: torch.Tensor, lengths: torch.Tensor, texts: list[str]) -> torch.Tensor:
        raise UnsupportedCapabilityError(f"{type(self).__name__} does not offer scores")
