"""What a closed-model attacker queries: optional preprocessing defense -> frozen backend, plus an optional detector.

Only the query oracle (``attacks/oracle.py``) holds a ``TargetSystem``, in its own process; attacks never do.
"""

from __future__ import annotations

import torch
from torch import nn

from lit_modules.backends.base import ASRBackend, Capability
from lit_modules.detectors.base import Detector


class TargetSystem(nn.Module):
    """``defense`` maps (waveforms [B, T], lengths [B]) -> (waveforms, lengths); the backend transcribes / scores
    the defended audio; the detector sees the audio as submitted (it guards the input)."""

    def __init__(self, backend: ASRBackend, defense: nn.Module | None = None, detector: Detector | None = None) -> None:
        super().__init__()
        self.backend = backend.freeze()
        self.defense = defense
        self.detector = detector
        for module in (defense, detector):
            if module is not None:
                module.eval()
                for parameter in module.parameters():
                    parameter.requires_grad_(False)

    @property
    def sample_rate(self) -> int:
        return self.backend.sample_rate

    def describe(self) -> dict:
        """Public facts an attacker may know: sample rate, what can be queried, the detector's threshold, and an
        opaque fingerprint of the backend (so a transfer attack can prove its surrogate is another model)."""
        return {
            "sample_rate": self.sample_rate,
            "can_score": Capability.SCORE in self.backend.capabilities,
            "can_detect": self.detector is not None,
            "detector_stochastic": bool(self.detector is not None and self.detector.stochastic),
            "detector_threshold": float(self.detector.threshold) if self.detector is not None else None,
            "fingerprint": self.backend.fingerprint(),
        }

    @torch.no_grad()
    def respond(self, waveforms: torch.Tensor, lengths: torch.Tensor, score_texts: list[str] | None = None,
                transcribe: bool = True, detect: bool = False) -> dict:
        """One batched query. Returns plain values: transcripts (list[str]), scores / detector_scores (float lists)."""
        out: dict = {}
        defended, defended_lengths = (waveforms, lengths) if self.defense is None else self.defense(waveforms, lengths)
        if transcribe:
            out["transcripts"] = self.backend.transcribe(defended, defended_lengths)
        if score_texts is not None:
            out["scores"] = self.backend.score(defended, defended_lengths, score_texts).cpu().tolist()
        if detect:
            if self.detector is None:
                raise RuntimeError("this system has no detector to query")
            out["detector_scores"] = self.detector.score(waveforms, lengths).float().cpu().tolist()
        return out




def prepare_system(backend: str = "conformer_ctc", checkpoint: str | None = None, world_size: int = 1,
                   **_other_options) -> None:
    """The caller's side of ``build_system``, run before an oracle starts: check that a pretrained backend's files
    are on this machine, and train the small backend it will load when the cached checkpoint is missing. The oracle's process cannot train: it is a daemon (no data-loader
    workers) and must answer within its start-up timeout. Under several processes (``world_size`` > 1) a missing
    checkpoint is an error: each rank would train its own."""
    from lit_modules.backends.catalog import require_available
    from lit_modules.backends.provisioning import train_backend
    from lit_modules.backends.registry import TRAINED, checkpoint_path

    require_available(backend, _other_options)  # a missing pretrained model stops here, naming its fetch command
    if backend not in TRAINED or checkpoint is not None or checkpoint_path(backend).is_file():
        return
    if world_size > 1:
        raise FileNotFoundError(f"{checkpoint_path(backend)}: no checkpoint for {backend}; train it once before a "
                                f"multi-process run: python train.py fit --config configs/asr/{backend}.yaml")
    train_backend(backend)


def build_system(backend: str = "conformer_ctc", device: str = "cpu", defense: dict | None = None,
                 detector: dict | None = None, **backend_options) -> TargetSystem:
    """Factory for ``attacks.OracleServer`` (runs in the oracle's process): a backend by registry name, plus an
    optional defense / detector given as ``{"class_path": ..., "init_args": {...}}``. A small backend's checkpoint must
    exist (``prepare_system`` trains it in the caller's process); a missing one is an error that names the command."""
    from jsonargparse import ArgumentParser

    from lit_modules.backends.registry import load_backend

    def instantiate(spec: dict | None, base: type):
        if spec is None:
            return None
        parser = ArgumentParser(exit_on_error=False)
        parser.add_argument("--component", type=base)
        return parser.instantiate(parser.parse_object({"component": spec})).component

    return TargetSystem(load_backend(backend, device=device, **backend_options),
                        defense=instantiate(defense, nn.Module), detector=instantiate(detector, Detector))
