"""RNN-Transducer: LSTM encoder, LSTM prediction network, additive joiner, torchaudio ``rnnt_loss``.

The paper's shape is a 5 x 1024 LSTM encoder, a 2 x 1024 prediction network and 512-dim embeddings; the defaults
here are scaled down for 2 CPU cores. Decoding: greedy, or beam search with optional character n-gram LM
shallow fusion (length-normalized LM scores, weight ``lm_weight``; paper: 0.006 with a word LM).
"""

from __future__ import annotations

import torch
import torchaudio.functional as audio_functional
from torch import nn

from lit_modules.features import LogMelFrontend, SpecAugment
from lit_modules.language_model import CharacterNGramLM
from lit_modules.models.subsampling import ConvSubsampling
from lit_modules.vocabulary import CharacterVocabulary


class RNNTransducer(nn.Module):
    """Args:
        encoder_layers, encoder_dim: LSTM encoder depth and width (unidirectional, streaming-capable).
        prediction_layers, prediction_dim, embedding_dim: prediction network.
        joiner_dim: joint space width. dropout: LSTM / joiner dropout. n_mels: log-mel bins.
        beam_size: 1 = greedy decoding; > 1 = beam search.
        lm_path: optional ``CharacterNGramLM`` JSON for shallow fusion; lm_weight: its weight.
        max_symbols_per_frame: greedy decoding's cap on labels emitted per encoder frame.
        ctc_weight: weight of an auxiliary CTC loss on the encoder (training only). Without it the small encoder
            collapsed here: the prediction network learned the grammar and the encoder output went constant
            (val WER 100 % at a 0.35 nats/character transducer loss).
        spec_augment: frequency / time masking in training.
        bidirectional: a bidirectional encoder (``encoder_dim / 2`` units per direction, so the encoder output keeps
            width ``encoder_dim``). Offline only, not streaming; see docs/backends.md for why the embedded default
            uses it.
    """

    def __init__(self, encoder_layers: int = 3, encoder_dim: int = 256, prediction_layers: int = 1,
                 prediction_dim: int = 256, embedding_dim: int = 128, joiner_dim: int = 256, dropout: float = 0.1,
                 n_mels: int = 80, beam_size: int = 1, lm_path: str | None = None, lm_weight: float = 0.3,
                 max_symbols_per_frame: int = 4, ctc_weight: float = 0.3, spec_augment: bool = True,
                 bidirectional: bool = False) -> None:
        super().__init__()
        self.vocabulary = CharacterVocabulary()
        vocab = len(self.vocabulary)
        self.frontend = LogMelFrontend(n_mels)
        self.augment = SpecAugment() if spec_augment else SpecAugment(0, 0, 0, 0)
        self.subsampling = ConvSubsampling(n_mels, encoder_dim)
        self.input_norm = nn.LayerNorm(encoder_dim)
        if bidirectional and encoder_dim % 2:
            raise ValueError(f"a bidirectional encoder needs an even encoder_dim, got {encoder_dim}")
        self.encoder = nn.LSTM(encoder_dim, encoder_dim // 2 if bidirectional else encoder_dim,
                               num_layers=encoder_layers, batch_first=True, bidirectional=bidirectional,
                               dropout=dropout if encoder_layers > 1 else 0.0)
        self.embedding = nn.Embedding(vocab, embedding_dim)  # index 0 (blank) doubles as the start symbol
        self.predictor = nn.LSTM(embedding_dim, prediction_dim, num_layers=prediction_layers, batch_first=True,
                                 dropout=dropout if prediction_layers > 1 else 0.0)
        self.encoder_projection = nn.Linear(encoder_dim, joiner_dim)
        self.prediction_projection = nn.Linear(prediction_dim, joiner_dim)
        self.joiner_dropout = nn.Dropout(dropout)
        self.output = nn.Linear(joiner_dim, vocab)
        self.ctc_weight = ctc_weight
        self.ctc_head = nn.Linear(encoder_dim, vocab) if ctc_weight > 0 else None
        self.beam_size = beam_size
        self.lm = CharacterNGramLM.load(lm_path) if lm_path else None
        self.lm_weight = lm_weight
        self.max_symbols_per_frame = max_symbols_per_frame

    @property
    def layer_names(self) -> list[str]:
        return ["subsampling", "encoder.output"]

    def set_decoding(self, beam_size: int = 1, lm_path: str | None = None, lm_weight: float = 0.3,
                     length_bonus: float = 0.0) -> "RNNTransducer":
        """Choose greedy (``beam_size=1``) or beam search, with an optional character LM (``length_bonus`` unused:
        the transducer's LM score is length-normalized instead)."""
        self.beam_size = beam_size
        self.lm = CharacterNGramLM.load(lm_path) if lm_path else None
        self.lm_weight = lm_weight
        return self

    # --------------------------------------------------------------------------------------------- networks
    def _subsample(self, waveforms: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Subsampled features [B, T', D] (the "subsampling" layer) and lengths [B]."""
        features, frames = self.frontend(waveforms, lengths)
        return self.subsampling(self.augment(features), frames)

    def _recur(self, x: torch.Tensor, out_lengths: torch.Tensor) -> torch.Tensor:
        """Subsampled features [B, T', D] -> encoder output [B, T', encoder_dim] (the LSTM)."""
        x = self.input_norm(x)
        packed = nn.utils.rnn.pack_padded_sequence(x, out_lengths.cpu(), batch_first=True, enforce_sorted=False)
        states, _ = self.encoder(packed)
        states, _ = nn.utils.rnn.pad_packed_sequence(states, batch_first=True, total_length=x.shape[1])
        return states

    def encode(self, waveforms: torch.Tensor, lengths: torch.Tensor, upto: str | None = None):
        """Encoder states [B, T', encoder_dim] and lengths [B]; ``upto="subsampling"`` stops before the LSTM."""
        x, out_lengths = self._subsample(waveforms, lengths)
        if upto == "subsampling":
            return x, out_lengths
        return self._recur(x, out_lengths), out_lengths

    def hidden(self, waveforms: torch.Tensor, lengths: torch.Tensor, layer: str):
        return self.encode(waveforms, lengths, upto=layer)

    def predict(self, tokens: torch.Tensor, state=None):
        """Prediction network on token ids [B, U] -> ([B, U, prediction_dim], state)."""
        return self.predictor(self.embedding(tokens), state)

    def join(self, encoder_states: torch.Tensor, prediction_states: torch.Tensor) -> torch.Tensor:
        """Logits [..., V] of encoder [..., enc] and prediction [..., pred] states (broadcast)."""
        joint = torch.tanh(self.encoder_projection(encoder_states) + self.prediction_projection(prediction_states))
        return self.output(self.joiner_dropout(joint))

    # --------------------------------------------------------------------------------------------- training
    def loss(self, waveforms: torch.Tensor, lengths: torch.Tensor, transcripts: list[str],
             reduction: str = "mean") -> torch.Tensor:
        """Transducer negative log-likelihood; ``"mean"`` per target character (training), ``"none"`` nats [B]."""
        states, out_lengths = self.encode(waveforms, lengths)
        targets, target_lengths = self.vocabulary.encode_batch(transcripts)
        targets, target_lengths = targets.to(states.device), target_lengths.to(states.device)
        start = torch.zeros(targets.shape[0], 1, dtype=torch.long, device=states.device)
        prediction, _ = self.predict(torch.cat([start, targets], dim=1))
        logits = self.join(states[:, :, None, :], prediction[:, None, :, :])  # [B, T, U+1, V]
        nll = audio_functional.rnnt_loss(
            logits.float(), targets.int(), out_lengths.int(), target_lengths.int(),
            blank=self.vocabulary.blank, reduction="none",
        )
        if reduction == "none":
            return nll
        loss = (nll / target_lengths.clamp(min=1)).mean()
        if self.training and self.ctc_head is not None:
            log_probs = self.ctc_head(states).log_softmax(-1).transpose(0, 1).float()
            ctc = nn.functional.ctc_loss(log_probs, targets, out_lengths, target_lengths, blank=self.vocabulary.blank,
                                         reduction="mean", zero_infinity=True)
            loss = (1 - self.ctc_weight) * loss + self.ctc_weight * ctc
        return loss

    # --------------------------------------------------------------------------------------------- decoding
    def decode(self, waveforms: torch.Tensor, lengths: torch.Tensor) -> list[str]:
        states, out_lengths = self.encode(waveforms, lengths)
        return self._search_all(states, out_lengths)

    def decode_with_hidden(self, waveforms: torch.Tensor, lengths: torch.Tensor, layer: str):
        """Transcripts and either layer's activations (subsampling or encoder output) from one encoder pass."""
        x, out_lengths = self._subsample(waveforms, lengths)
        states = self._recur(x, out_lengths)
        return self._search_all(states, out_lengths), (x if layer == "subsampling" else states), out_lengths

    def _search_all(self, states: torch.Tensor, out_lengths: torch.Tensor) -> list[str]:
        search = self._greedy if self.beam_size <= 1 else self._beam_search
        return [self.vocabulary.decode(search(states[i, : int(out_lengths[i])])) for i in range(states.shape[0])]

    def _greedy(self, states: torch.Tensor) -> list[int]:
        """states [T, enc] -> token ids."""
        blank = self.vocabulary.blank
        tokens: list[int] = []
        prediction, state = self.predict(torch.tensor([[blank]], device=states.device))
        for t in range(states.shape[0]):
            for _ in range(self.max_symbols_per_frame):
                token = int(self.join(states[t], prediction[0, -1]).argmax())
                if token == blank:
                    break
                tokens.append(token)
                prediction, state = self.predict(torch.tensor([[token]], device=states.device), state)
        return tokens

    def _lm_score(self, tokens: tuple[int, ...], token: int) -> float:
        if self.lm is None:
            return 0.0
        context = "".join(self.vocabulary.symbols[t] for t in tokens)
        return self.lm.log_probability(context, self.vocabulary.symbols[token])

    def _beam_search(self, states: torch.Tensor) -> list[int]:
        """Beam search emitting at most one label per frame; hypotheses with equal labels are merged.

        A hypothesis is ranked by acoustic log-probability + ``lm_weight`` x its LM log-probability divided by
        its length (length-normalized LM score, as in the paper's RNN-T setup).
        """
        blank = self.vocabulary.blank
        start_prediction, start_state = self.predict(torch.tensor([[blank]], device=states.device))
        # hypothesis: tokens -> (acoustic log-prob, LM log-prob, prediction output [pred], state)
        beams = {(): (0.0, 0.0, start_prediction[0, -1], start_state)}

        def rank(tokens: tuple[int, ...], acoustic: float, lm: float) -> float:
            return acoustic + self.lm_weight * lm / max(1, len(tokens))

        for t in range(states.shape[0]):
            candidates: dict[tuple[int, ...], list] = {}
            for tokens, (acoustic, lm, prediction, state) in beams.items():
                log_probs = self.join(states[t], prediction).log_softmax(-1)
                top = log_probs.topk(min(self.beam_size + 1, log_probs.shape[-1]))
                for log_prob, token in zip(top.values.tolist(), top.indices.tolist()):
                    if token == blank:
                        key, entry = tokens, [acoustic + log_prob, lm, prediction, state, None]
                    else:
                        key = tokens + (token,)
                        entry = [acoustic + log_prob, lm + self._lm_score(tokens, token), None, state, token]
                    if key in candidates:  # merge paths to the same labels
                        kept = candidates[key]
                        kept[0] = float(torch.logaddexp(torch.tensor(kept[0]), torch.tensor(entry[0])))
                    else:
                        candidates[key] = entry
            best = sorted(candidates.items(), key=lambda item: rank(item[0], item[1][0], item[1][1]),
                          reverse=True)[: self.beam_size]
            beams = {}
            for tokens, (acoustic, lm, prediction, state, new_token) in best:
                if new_token is not None:
                    output, state = self.predict(torch.tensor([[new_token]], device=states.device), state)
                    prediction = output[0, -1]
                beams[tokens] = (acoustic, lm, prediction, state)
        if self.lm is not None:  # end-of-sentence probability
            final = {k: (a, l + self.lm.log_probability("".join(self.vocabulary.symbols[t] for t in k), ">"), p, s)
                     for k, (a, l, p, s) in beams.items()}
            beams = final
        return list(max(beams.items(), key=lambda item: rank(item[0], item[1][0], item[1][1]))[0])
