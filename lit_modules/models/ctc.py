"""What every CTC model shares: loss from transcripts, greedy decoding, hidden states by layer name."""

from __future__ import annotations

import torch
from torch import nn

from lit_modules.ctc_beam_search import ctc_prefix_beam_search
from lit_modules.language_model import CharacterNGramLM
from lit_modules.vocabulary import CharacterVocabulary


class CTCModel(nn.Module):
    """Base for character CTC models. Subclasses define ``forward`` -> (log-probs [B, T', V], lengths [B]),
    ``encode(waveforms, lengths, upto)`` and ``layer_names``.

    Decoding is greedy unless ``set_decoding(beam_size > 1, ...)`` selects prefix beam search, optionally with a
    character n-gram LM (``lit_modules.language_model``).
    """

    def __init__(self) -> None:
        super().__init__()
        self.vocabulary = CharacterVocabulary()
        self.beam_size = 1
        self.lm: CharacterNGramLM | None = None
        self.lm_weight = 0.0
        self.length_bonus = 0.0

    def set_decoding(self, beam_size: int = 1, lm_path: str | None = None, lm_weight: float = 0.5,
                     length_bonus: float = 0.0) -> "CTCModel":
        """Choose greedy (``beam_size=1``) or beam-search decoding, with an optional LM."""
        if lm_path and not hasattr(self.vocabulary, "symbols"):
            raise ValueError("LM fusion needs a character vocabulary; this model decodes with a tokenizer")
        self.beam_size = beam_size
        self.lm = CharacterNGramLM.load(lm_path) if lm_path else None
        self.lm_weight, self.length_bonus = lm_weight, length_bonus
        return self

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
        """Greedy CTC (best class per frame, merge repeats, drop blanks) or prefix beam search."""
        log_probs, out_lengths = self(waveforms, lengths)
        return self.texts_from_log_probs(log_probs, out_lengths)

    def texts_from_log_probs(self, log_probs: torch.Tensor, out_lengths: torch.Tensor) -> list[str]:
        if self.beam_size > 1:
            return self.decode_log_probs(log_probs, out_lengths)
        best = log_probs.argmax(dim=-1).cpu()
        texts = []
        for row, length in zip(best, out_lengths.cpu().tolist()):
            ids = torch.unique_consecutive(row[:length]).tolist()
            texts.append(self.vocabulary.decode(ids))
        return texts

    def encode_and_tap(self, waveforms: torch.Tensor, lengths: torch.Tensor, layer: str):
        """Final encoder states, lengths and ``layer``'s states from one pass. This default shares only the last
        layer (``None`` for the others); models whose encoders can hand out any layer override it."""
        if layer != self.layer_names[-1]:
            return None
        states, out_lengths = self.encode(waveforms, lengths)
        return states, out_lengths, states

    def decode_with_hidden(self, waveforms: torch.Tensor, lengths: torch.Tensor, layer: str):
        """Transcripts and ``layer``'s activations from one forward pass (a detector on that layer then costs no
        second backbone pass); ``None`` where the encoder cannot hand out that layer or there is no ``classifier``."""
        if not isinstance(getattr(self, "classifier", None), nn.Module):
            return None
        shared = self.encode_and_tap(waveforms, lengths, layer)
        if shared is None:
            return None
        states, out_lengths, tapped = shared
        log_probs = self.classifier(states).log_softmax(dim=-1)
        return self.texts_from_log_probs(log_probs, out_lengths), tapped, out_lengths

    def decode_log_probs(self, log_probs: torch.Tensor, out_lengths: torch.Tensor) -> list[str]:
        """Prefix beam search over precomputed log-probs [B, T', V]."""
        symbols = [s if i != self.vocabulary.blank else "" for i, s in enumerate(getattr(self.vocabulary, "symbols", []))]
        return [
            self.vocabulary.decode(ctc_prefix_beam_search(
                log_probs[i, : int(out_lengths[i])], symbols, self.vocabulary.blank, self.beam_size, self.lm,
                self.lm_weight, self.length_bonus))
            for i in range(log_probs.shape[0])
        ]

    def hidden(self, waveforms: torch.Tensor, lengths: torch.Tensor, layer: str) -> tuple[torch.Tensor, torch.Tensor]:
        return self.encode(waveforms, lengths, upto=layer)
