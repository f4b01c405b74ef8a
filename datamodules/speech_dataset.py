"""A map-style dataset of indexed utterances and its collate function."""

from __future__ import annotations

import logging
from typing import NamedTuple, Sequence

import torch
from torch.utils.data import Dataset

from core.audio_io import FormatPolicy, load_audio
from core.batch import SpeechBatch, pad_waveforms
from core.errors import DataError
from datamodules.librispeech_index import BadInputPolicy, Utterance

log = logging.getLogger(__name__)


class Example(NamedTuple):
    """One decoded utterance: waveform [T] float32 at the dataset's sample rate."""

    waveform: torch.Tensor
    transcript: str
    utterance_id: str


class UtteranceDataset(Dataset):
    """Decodes ``Utterance`` records on access.

    With ``on_bad_input="skip"`` an item that fails to decode is logged and returned as ``None``;
    ``collate_examples`` drops it. With ``"error"`` the ``DataError`` (naming the file) propagates.
    """

    def __init__(
        self,
        utterances: Sequence[Utterance],
        sample_rate: int = 16_000,
        format_policy: FormatPolicy = "convert",
        on_bad_input: BadInputPolicy = "error",
    ) -> None:
        self.utterances = list(utterances)
        self.sample_rate = sample_rate
        self.format_policy = format_policy
        self.on_bad_input = on_bad_input

    def __len__(self) -> int:
        return len(self.utterances)

    def __getitem__(self, index: int) -> Example | None:
        utterance = self.utterances[index]
        try:
            waveform = load_audio(utterance.audio_path, self.sample_rate, self.format_policy)
        except DataError as error:
            if self.on_bad_input == "error":
                raise
            log.warning("skipping bad input: %s", error)
            return None
        return Example(waveform, utterance.transcript, utterance.utterance_id)

    def num_samples(self, index: int) -> int:
        """Length of item ``index`` in samples at the dataset's rate, from the header (no decoding)."""
        utterance = self.utterances[index]
        return round(utterance.num_frames * self.sample_rate / utterance.sample_rate)


def collate_examples(examples: Sequence[Example | None]) -> SpeechBatch:
    """Pad a list of examples into a ``SpeechBatch``; ``None`` (skipped) items are dropped."""
    kept = [example for example in examples if example is not None]
    if not kept:
        raise DataError("<batch>", f"all {len(examples)} utterances of this batch were skipped as bad input")
    waveforms, lengths = pad_waveforms([example.waveform for example in kept])
    return SpeechBatch(
        waveforms=waveforms,
        lengths=lengths,
        transcripts=[example.transcript for example in kept],
        utterance_ids=[example.utterance_id for example in kept],
    )
