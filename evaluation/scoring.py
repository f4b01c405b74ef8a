"""Batched passes of a backend or a detector over labelled examples (evaluation side, not the attacker's)."""

from __future__ import annotations

from typing import Callable, Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader

from datamodules.adversarial.batch import LabelledSpeechBatch, collate_labelled
from datamodules.adversarial.datamodule import LabelledAudioDataset, LabelledExample


def batches(examples: list[LabelledExample], sample_rate: int, batch_size: int = 8) -> Iterator[LabelledSpeechBatch]:
    yield from DataLoader(LabelledAudioDataset(examples, sample_rate), batch_size=batch_size, shuffle=False,
                          collate_fn=collate_labelled)


@torch.no_grad()
def over_examples(function: Callable[[torch.Tensor, torch.Tensor], list], examples: list[LabelledExample],
                  sample_rate: int, batch_size: int = 8) -> list:
    """``function(waveforms [B, T], lengths [B])`` over every example, in order."""
    out: list = []
    for batch in batches(examples, sample_rate, batch_size):
        out.extend(function(batch.waveforms, batch.lengths))
    return out


def transcripts(backend, examples: list[LabelledExample], batch_size: int = 8, defense=None) -> list[str]:
    """The system's transcripts (optionally behind a preprocessing defense)."""
    def transcribe(waveforms, lengths):
        if defense is not None:
            waveforms, lengths = defense(waveforms, lengths)
        return backend.transcribe(waveforms, lengths)
    return over_examples(transcribe, examples, backend.sample_rate, batch_size)


def scores(detector, examples: list[LabelledExample], sample_rate: int, batch_size: int = 8) -> np.ndarray:
    """Detector scores [N] (higher = more adversarial)."""
    return np.asarray(over_examples(lambda w, n: detector.score(w, n).float().cpu().tolist(), examples,
                                    sample_rate, batch_size), np.float64)


def labels(examples: list[LabelledExample]) -> np.ndarray:
    return np.array([e.label for e in examples], int)
