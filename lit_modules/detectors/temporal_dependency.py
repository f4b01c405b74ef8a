"""TD: temporal-dependency detection (Yang et al., ICLR 2019). Transcribe the first k fraction of the audio and
compare it with the same-length prefix of the whole utterance's transcript: benign speech agrees with itself,
adversarial perturbations optimized for the whole utterance usually do not survive the cut."""

from __future__ import annotations

import jiwer
import torch

from lit_modules.backends.base import ASRBackend
from lit_modules.detectors.base import Detector


def prefix_mismatch(prefix_transcript: str, full_transcript: str, metric: str = "cer") -> float:
    """Distance between the k-prefix's transcript and the same-length prefix of the full transcript.

    ``wer`` / ``cer``: error rate against the first as many words / characters of the full transcript;
    ``lcp``: 1 - (longest common prefix length) / (prefix transcript length)."""
    if metric == "wer":
        words = prefix_transcript.split()
        reference = " ".join(full_transcript.split()[: max(1, len(words))])
        if not reference:
            return 0.0 if not words else 1.0
        return float(jiwer.wer(reference, prefix_transcript)) if words else 1.0
    if metric == "cer":
        reference = full_transcript[: max(1, len(prefix_transcript))]
        if not reference:
            return 0.0 if not prefix_transcript else 1.0
        return float(jiwer.cer(reference, prefix_transcript)) if prefix_transcript else 1.0
    if metric == "lcp":
        if not prefix_transcript:
            return 0.0 if not full_transcript else 1.0
        common = 0
        for a, b in zip(prefix_transcript, full_transcript):
            if a != b:
                break
            common += 1
        return 1.0 - common / len(prefix_transcript)
    raise ValueError(f"metric must be 'wer', 'cer' or 'lcp', got {metric!r}")


class TemporalDependencyDetector(Detector):
    """Args: backend: any recognizer that transcribes (PocketSphinx included); k: the prefix fraction
    (paper grid: 1/2, 2/3, 3/4, 4/5); metric: ``wer``, ``cer`` or ``lcp``; threshold: calibrated on validation data."""

    def __init__(self, backend: ASRBackend, k: float = 0.5, metric: str = "cer", threshold: float = 0.5) -> None:
        super().__init__(threshold)
        if not 0 < k < 1:
            raise ValueError(f"k must be in (0, 1), got {k}")
        prefix_mismatch("", "", metric)  # validates the metric name
        self.backend, self.k, self.metric = backend, k, metric

    @torch.no_grad()
    def score(self, waveforms: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        full = self.backend.transcribe(waveforms, lengths)
        prefix_lengths = (lengths.float() * self.k).long().clamp(min=self.backend.min_samples)
        prefix = self.backend.transcribe(waveforms[:, : int(prefix_lengths.max())], prefix_lengths)
        return torch.tensor([prefix_mismatch(p, f, self.metric) for p, f in zip(prefix, full)])
