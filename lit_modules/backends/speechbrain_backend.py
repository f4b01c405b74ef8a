"""SpeechBrain pretrained recognizers (``EncoderDecoderASR`` / ``EncoderASR``) behind the backend interface.

Loads with SpeechBrain's own ``from_hparams(source=..., savedir=...)``: a local folder holding
``hyperparams.yaml`` and the files its pretrainer names, or a hub id already present in ``savedir``
(e.g. ``speechbrain/asr-conformer-transformerlm-librispeech``). Nothing is downloaded here: without network
a missing model fails with SpeechBrain's error, re-raised with the source named.
"""

from __future__ import annotations

from pathlib import Path

import torch

from datamodules.text import normalize_transcript
from lit_modules.backends.base import ASRBackend, Capability

INTERFACES = ("EncoderDecoderASR", "EncoderASR")


class SpeechBrainBackend(ASRBackend):
    """Args:
        source: folder (or cached hub id) with ``hyperparams.yaml``.
        savedir: where SpeechBrain collects the model files (default: ``<source>/.collected`` for a folder).
        interface: ``"EncoderDecoderASR"`` (attention / transducer decoders) or ``"EncoderASR"`` (CTC).
        device: where it runs.

    Offers transcripts and the encoder output (``hidden(..., "encoder.output")``); scores are not exposed
    by SpeechBrain's inference interfaces.
    """

    capabilities = frozenset({Capability.TRANSCRIBE, Capability.HIDDEN})

    def __init__(self, source: str, savedir: str | None = None, interface: str = "EncoderDecoderASR",
                 device: str = "cpu") -> None:
        super().__init__()
        if interface not in INTERFACES:
            raise ValueError(f"interface must be one of {INTERFACES}, got {interface!r}")
        import speechbrain.inference.ASR as speechbrain_asr

        if savedir is None and Path(source).is_dir():
            savedir = str(Path(source) / ".collected")
        try:
            self.asr = getattr(speechbrain_asr, interface).from_hparams(
                source=source, savedir=savedir, run_opts={"device": device}
            )
        except Exception as error:  # SpeechBrain raises many types (fetch, YAML, missing keys)
            raise RuntimeError(f"SpeechBrain could not load {interface} from {source!r}: {error}") from error
        self.speechbrain_modules = self.asr.mods  # registered so that freeze() covers the weights
        self.freeze()

    @property
    def hidden_layers(self) -> list[str]:
        return ["encoder.output"]

    @staticmethod
    def _relative(waveforms: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """SpeechBrain's length convention: fraction of the padded size."""
        return lengths.float() / waveforms.shape[1]

    def _transcribe(self, waveforms: torch.Tensor, lengths: torch.Tensor) -> list[str]:
        words, _ = self.asr.transcribe_batch(waveforms, self._relative(waveforms, lengths))
        return [normalize_transcript(w if isinstance(w, str) else " ".join(w)) for w in words]

    def _hidden(self, waveforms: torch.Tensor, lengths: torch.Tensor, layer: str) -> tuple[torch.Tensor, torch.Tensor]:
        relative = self._relative(waveforms, lengths)
        states = self.asr.encode_batch(waveforms, relative)
        frames = torch.round(relative * states.shape[1]).long().clamp(min=1, max=states.shape[1])
        return states, frames
