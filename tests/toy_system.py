"""A fixed, untrained toy recognizer and detector for attack tests: deterministic, fast, no training, no data.

ToyCTC: log-mel frames pooled to 40 ms -> one seeded linear layer -> character CTC. Its transcripts are gibberish,
but they depend on the audio like a real model's do, and it offers transcribe / hidden / score.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lit_modules.backends.base import ASRBackend, Capability
from lit_modules.backends.trained import TrainedModelBackend
from lit_modules.detectors.base import Detector
from lit_modules.features import LogMelFrontend
from lit_modules.models.ctc import CTCModel
from lit_modules.target_system import TargetSystem


class ToyCTC(CTCModel):
    def __init__(self, seed: int = 0, n_mels: int = 24) -> None:
        super().__init__()
        self.frontend = LogMelFrontend(n_mels)
        generator = torch.Generator().manual_seed(seed)
        self.output = nn.Linear(n_mels, len(self.vocabulary))
        with torch.no_grad():
            self.output.weight.copy_(torch.randn(self.output.weight.shape, generator=generator))
            self.output.bias.zero_()
            self.output.bias[self.vocabulary.blank] = 1.0

    @property
    def layer_names(self) -> list[str]:
        return ["frames"]

    def encode(self, waveforms, lengths, upto=None):
        features, frames = self.frontend(waveforms, lengths)
        pooled = F.avg_pool1d(features.transpose(1, 2), 4, ceil_mode=True).transpose(1, 2)
        return pooled, torch.div(frames + 3, 4, rounding_mode="floor")

    def forward(self, waveforms, lengths):
        pooled, out_lengths = self.encode(waveforms, lengths)
        return self.output(pooled).log_softmax(-1), out_lengths


class HardLabelOnly(ASRBackend):
    """The toy model behind a transcripts-only interface (like PocketSphinx)."""

    capabilities = frozenset({Capability.TRANSCRIBE})

    def __init__(self, inner: ASRBackend) -> None:
        super().__init__()
        self.inner = inner

    def _transcribe(self, waveforms, lengths):
        return self.inner.transcribe(waveforms, lengths)


class LoudnessDetector(Detector):
    """Flags audio whose RMS exceeds a threshold; ``stochastic`` adds N(0, noise^2) to the score."""

    def __init__(self, threshold: float = 0.1, noise: float = 0.0) -> None:
        super().__init__(threshold)
        self.noise = noise
        self.stochastic = noise > 0

    def score(self, waveforms, lengths):
        mask = torch.arange(waveforms.shape[1])[None] < lengths[:, None]
        rms = ((waveforms**2 * mask).sum(1) / lengths).sqrt()
        return rms + self.noise * torch.randn_like(rms)


def toy_backend(seed: int = 0) -> TrainedModelBackend:
    return TrainedModelBackend(ToyCTC(seed))


def toy_system(seed: int = 0, hard_label: bool = False, detector_threshold: float | None = None,
               detector_noise: float = 0.0) -> TargetSystem:
    """Picklable-by-reference factory (use ``functools.partial(toy_system, ...)``) for ``OracleServer``."""
    torch.manual_seed(seed)
    backend = toy_backend(seed)
    if hard_label:
        backend = HardLabelOnly(backend)
    detector = None if detector_threshold is None else LoudnessDetector(detector_threshold, detector_noise)
    return TargetSystem(backend, detector=detector)


class SlowTargetSystem(TargetSystem):
    """A target system that takes at least ``delay_s`` per call (to check what the oracle's timing measures)."""

    def __init__(self, *args, delay_s: float = 0.05, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.delay_s = delay_s

    def respond(self, *args, **kwargs) -> dict:
        import time

        time.sleep(self.delay_s)
        return super().respond(*args, **kwargs)


def slow_toy_system(delay_s: float = 0.05) -> TargetSystem:
    return SlowTargetSystem(toy_backend(0), delay_s=delay_s)


def toy_system_with_defense(defense: str = "down_sampling", seed: int = 0) -> TargetSystem:
    from lit_modules.defenses import DownSampling, LocalSmoothing

    modules = {"down_sampling": DownSampling, "local_smoothing": LocalSmoothing}
    return TargetSystem(toy_backend(seed), defense=modules[defense]())


def toy_surrogate(seed: int = 0, weight_noise: float = 0.0):
    """The attacker's own model for transfer-prior tests: the toy with ``seed``, its output weights perturbed by
    N(0, weight_noise^2) (0: an exact copy of the victim with that seed, which an attack must refuse)."""
    from lit_modules.surrogate import Surrogate

    model = ToyCTC(seed)
    with torch.no_grad():
        model.output.weight.add_(weight_noise * torch.randn(model.output.weight.shape,
                                                            generator=torch.Generator().manual_seed(1000 + seed)))
    return Surrogate(TrainedModelBackend(model), label=f"toy{seed}+{weight_noise:g}")


def toy_ensemble(members: list[tuple[int, float]]):
    """An ensemble surrogate of toys, one ``(seed, weight_noise)`` per member (see ``toy_surrogate``)."""
    from lit_modules.surrogate import Surrogate

    return Surrogate([toy_surrogate(seed, noise).backend for seed, noise in members], label="toy-ensemble")


def high_band_rms(waveforms: torch.Tensor, lengths: torch.Tensor, cutoff_hz: float = 4_000.0,
                  sample_rate: int = 16_000) -> torch.Tensor:
    """RMS [B] of each item's content above ``cutoff_hz`` (valid samples only; Parseval on the one-sided FFT)."""
    valid = torch.arange(waveforms.shape[1], device=waveforms.device)[None] < lengths[:, None]
    power = torch.fft.rfft(waveforms * valid).abs().pow(2)
    high = torch.fft.rfftfreq(waveforms.shape[1], 1 / sample_rate, device=waveforms.device) > cutoff_hz
    return (2 * power[:, high].sum(1) / (waveforms.shape[1] * lengths)).sqrt()


class BandProbeBackend(ASRBackend):
    """Reports what it hears: transcribes HIGH when the content above 4 kHz has an RMS over 0.01, else LOW; its
    "score" of any text is that RMS (so a test reads off exactly which audio reached the recognizer)."""

    capabilities = frozenset({Capability.TRANSCRIBE, Capability.SCORE})

    def _transcribe(self, waveforms, lengths):
        return ["HIGH" if rms > 0.01 else "LOW" for rms in high_band_rms(waveforms, lengths).tolist()]

    def _score(self, waveforms, lengths, texts):
        return high_band_rms(waveforms, lengths)


class BandProbeDetector(Detector):
    """Scores the RMS of the content above 4 kHz of the audio it is given."""

    def score(self, waveforms, lengths):
        return high_band_rms(waveforms, lengths)


def probe_system(defense: str | None = "down_sampling") -> TargetSystem:
    """The band probes behind a defense (``down_sampling`` / ``local_smoothing`` / None)."""
    from lit_modules.defenses import DownSampling, LocalSmoothing

    modules = {"down_sampling": DownSampling, "local_smoothing": LocalSmoothing}
    return TargetSystem(BandProbeBackend(), defense=None if defense is None else modules[defense](),
                        detector=BandProbeDetector())
