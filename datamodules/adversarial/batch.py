"""The batch detectors train and evaluate on."""

from __future__ import annotations

from typing import NamedTuple

import torch

from core.batch import pad_waveforms


class LabelledSpeechBatch(NamedTuple):
    """waveforms [B, T] float32 zero-padded, lengths [B], labels [B] (1 = adversarial, 0 = clean or benign noise),
    kinds (``clean``, ``AG``, ``AE``, ``AZ``, ...), reference transcripts of the source recordings, source utterance
    ids, and example ids (unique per audio file: they key the activation cache)."""

    waveforms: torch.Tensor
    lengths: torch.Tensor
    labels: torch.Tensor
    kinds: list[str]
    transcripts: list[str]
    source_ids: list[str]
    example_ids: list[str]

    def to(self, device) -> "LabelledSpeechBatch":
        return self._replace(waveforms=self.waveforms.to(device), lengths=self.lengths.to(device),
                             labels=self.labels.to(device))


def collate_labelled(items: list[tuple[torch.Tensor, int, str, str, str, str]]) -> LabelledSpeechBatch:
    """Items: (waveform [T], label, kind, transcript, source id, example id)."""
    waveforms, lengths = pad_waveforms([item[0] for item in items])
    columns = list(zip(*items))
    return LabelledSpeechBatch(waveforms, lengths, torch.tensor(columns[1], dtype=torch.long), list(columns[2]),
                               list(columns[3]), list(columns[4]), list(columns[5]))
