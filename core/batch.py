"""The typed batch every data module yields and every backend, attack and detector consumes."""

from __future__ import annotations

from typing import NamedTuple

import torch


class SpeechBatch(NamedTuple):
    """A batch of zero-padded utterances.

    Attributes:
        waveforms: [B, T] float32, mono, 16 kHz, values in [-1, 1], zero-padded after ``lengths``.
        lengths: [B] int64, number of valid samples of each waveform.
        transcripts: B reference transcripts (upper-case words, see ``core.text``).
        utterance_ids: B LibriSpeech-style ids ``<speaker>-<chapter>-<utt>``.
    """

    waveforms: torch.Tensor
    lengths: torch.Tensor
    transcripts: list[str]
    utterance_ids: list[str]

    def to(self, device: torch.device | str) -> "SpeechBatch":
        """The same batch with its tensors on ``device``."""
        return self._replace(waveforms=self.waveforms.to(device), lengths=self.lengths.to(device))


def pad_waveforms(waveforms: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack waveforms [T_i] into ([B, max T_i] zero-padded, lengths [B])."""
    lengths = torch.tensor([w.shape[-1] for w in waveforms], dtype=torch.long)
    padded = torch.zeros(len(waveforms), int(lengths.max()) if len(waveforms) else 0, dtype=torch.float32)
    for row, waveform in enumerate(waveforms):
        padded[row, : waveform.shape[-1]] = waveform
    return padded, lengths
