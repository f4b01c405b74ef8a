"""What every CTC model shares: loss from transcripts, greedy decoding, hidden states by layer name."""

from __future__ import annotations

import torch
from torch import nn

from lit_modules.vocabulary import CharacterVocabulary


class CTCModel(nn.Module):
    """Base for character CTC models. Subclasses define ``forward`` -> (log-probs [B, T', V], lengths [B]),
    ``encode(waveforms, lengths, upto)`` and ``layer_names``."""

    def __init__(self) -> None:
        super().__init__()
        self.vocabulary = CharacterVocabulary()

    def loss(self, waveforms: torch.Tensor, lengths: torch.Tensor, transcripts: list[str],
             reduction: str = "mean") -> torch.Tensor:
        """CTC negative log-likelihood. ``"mean"``: per target character, averaged (training);
        ``"none"``: [B] nats per utterance (scores)."""
        log_probs, out_lengths = self(waveforms, lengths)
        targets, target_lengths = self.vocabulary.encode_batch(transcripts)
        return nn.functional.ctc_loss(
            log_probs.transpose(0, 1).float(), targets.to(log_probs.device), out_lengths, target_lengths.to(log_probs.device),
            blank=self.vocabulary.blank, reduction=reduction, zero_infinity=True,
        )

    def decode(self, waveforms: torch.Tensor, lengths: torch.Tensor) -> list[str]:
        """Greedy CTC: best class per frame, merge repeats, drop blanks."""
        log_probs, out_lengths = self(waveforms, lengths)
        best = log_probs.argmax(dim=-1).cpu()
        texts = []
        for row, length in zip(best, out_lengths.cpu().tolist()):
            ids = torch.unique_consecutive(row[:length]).tolist()
            texts.append(self.vocabulary.decode(ids))
        return texts

    def hidden(self, waveforms: torch.Tensor, lengths: torch.Tensor, layer: str) -> tuple[torch.Tensor, torch.Tensor]:
        return self.encode(waveforms, lengths, upto=layer)
