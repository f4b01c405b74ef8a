"""A backend around a recognizer trained here (Conformer-CTC, RNN-T, small wav2vec 2.0), loaded frozen."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from lit_modules.backends.base import ASRBackend, Capability


class TrainedModelBackend(ASRBackend):
    """Wraps an ``nn.Module`` offering ``decode``, ``loss(..., reduction="none")``, ``hidden`` and ``layer_names``.

    Args:
        model: the recognizer (its weights are frozen here).
        device: where it runs.
        decoding: passed to ``model.set_decoding`` (``beam_size``, ``lm_path``, ``lm_weight``, ``length_bonus``).
    """

    capabilities = frozenset({Capability.TRANSCRIBE, Capability.HIDDEN, Capability.SCORE})

    def __init__(self, model: nn.Module, device: str = "cpu", decoding: dict | None = None) -> None:
        super().__init__()
        for required in ("decode", "loss", "hidden", "layer_names"):
            if not hasattr(model, required):
                raise TypeError(f"{type(model).__name__} lacks {required!r}, which a trained backend needs")
        if decoding:
            model.set_decoding(**decoding)
        self.model = model.to(device)
        self.freeze()

    @classmethod
    def from_checkpoint(cls, checkpoint: str | Path, device: str = "cpu", decoding: dict | None = None) -> "TrainedModelBackend":
        """Load the recognizer of an ``ASRModule`` checkpoint written by ``train.py fit``."""
        from lit_modules.asr_module import ASRModule

        path = Path(checkpoint)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such checkpoint (train one with `python train.py fit --config ...`)")
        module = ASRModule.load_from_checkpoint(path, map_location=device, weights_only=True)
        return cls(module.model, device=device, decoding=decoding)

    @property
    def hidden_layers(self) -> list[str]:
        return list(self.model.layer_names)

    def _transcribe(self, waveforms: torch.Tensor, lengths: torch.Tensor) -> list[str]:
        return self.model.decode(waveforms, lengths)

    def _hidden(self, waveforms: torch.Tensor, lengths: torch.Tensor, layer: str) -> tuple[torch.Tensor, torch.Tensor]:
        return self.model.hidden(waveforms, lengths, layer)

    def _transcribe_with_hidden(self, waveforms: torch.Tensor, lengths: torch.Tensor, layer: str):
        shared = getattr(self.model, "decode_with_hidden", None)
        return shared(waveforms, lengths, layer) if shared is not None else None

    def _score(self, waveforms: torch.Tensor, lengths: torch.Tensor, texts: list[str]) -> torch.Tensor:
        return self.model.loss(waveforms, lengths, texts, reduction="none")
