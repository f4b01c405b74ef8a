"""wav2vec 2.0-family CTC recognizers through transformers.

Either a small ``Wav2Vec2ForCTC`` configuration trained here from scratch (characters of ``CharacterVocabulary``), or
any pretrained CTC checkpoint of the family (wav2vec 2.0, HuBERT, WavLM, data2vec-audio) loaded with the Auto classes
from a local folder or the local Hugging Face cache (e.g. ``facebook/wav2vec2-base-960h``; nothing is downloaded),
with its own tokenizer and feature-extractor settings.

Padding: models whose feature extractor says ``return_attention_mask: false`` (the group-normalized ``base`` models)
normalize over the whole input, padding included, and must not be given a mask; they run each distinct length as
its own unpadded batch, so an utterance's outputs never depend on what it is batched with (an attack population
shares one length: one batch).
"""

from __future__ import annotations

import torch

from core.text import normalize_transcript
from lit_modules.models.ctc import CTCModel
from lit_modules.vocabulary import CharacterVocabulary, pad_token_ids


class TokenizerVocabulary:
    """Adapter giving a Hugging Face CTC tokenizer (``|`` between words) the ``CharacterVocabulary`` interface."""

    def __init__(self, tokenizer) -> None:
        self.tokenizer = tokenizer
        self.blank = int(tokenizer.pad_token_id)
        self.delimiter = getattr(tokenizer, "word_delimiter_token", "|") or "|"

    def __len__(self) -> int:
        return len(self.tokenizer)

    def encode_batch(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        return pad_token_ids([self.tokenizer(normalize_transcript(t)).input_ids for t in texts])

    def decode(self, ids: list[int]) -> str:
        tokens = self.tokenizer.convert_ids_to_tokens([i for i in ids if i != self.blank])
        special = set(self.tokenizer.all_special_tokens)
        return normalize_transcript("".join(" " if t == self.delimiter else "" if t in special else t for t in tokens))


def _input_convention(pretrained: str, config) -> tuple[bool, bool]:
    """(normalize each input, pass an attention mask) from the checkpoint's feature-extractor settings; without a
    ``preprocessor_config.json``, transformers' rule: only layer-normalized feature encoders take a mask."""
    from transformers import AutoFeatureExtractor

    try:
        extractor = AutoFeatureExtractor.from_pretrained(pretrained, local_files_only=True)
    except OSError:
        return True, getattr(config, "feat_extract_norm", "layer") == "layer"
    return bool(getattr(extractor, "do_normalize", True)), bool(getattr(extractor, "return_attention_mask", True))


class Wav2Vec2CTC(CTCModel):
    """Args:
        pretrained: local folder or cached hub id of a CTC checkpoint of the family (``AutoModelForCTC``);
            ``None`` = the small ``Wav2Vec2ForCTC`` config below.
        hidden_size, num_layers, num_heads, intermediate_size: Transformer size of the small config.
        conv_channels: channels of the 7-layer convolutional feature encoder (20 ms frames).
        dropout: hidden / attention dropout. mask_time_prob: wav2vec 2.0's own time masking (training only).
    """

    def __init__(self, pretrained: str | None = None, hidden_size: int = 144, num_layers: int = 4, num_heads: int = 4,
                 intermediate_size: int = 576, conv_channels: int = 128, dropout: float = 0.1,
                 mask_time_prob: float = 0.05) -> None:
        super().__init__()
        from transformers import Wav2Vec2Config, Wav2Vec2ForCTC

        self.normalize, self.uses_attention_mask = True, True
        if pretrained is not None:
            from transformers import AutoModelForCTC, AutoTokenizer

            self.model = AutoModelForCTC.from_pretrained(pretrained, local_files_only=True)
            self.vocabulary = TokenizerVocabulary(AutoTokenizer.from_pretrained(pretrained, local_files_only=True))
            self.normalize, self.uses_attention_mask = _input_convention(pretrained, self.model.config)
        else:
            self.vocabulary = CharacterVocabulary()
            config = Wav2Vec2Config(
                vocab_size=len(self.vocabulary), pad_token_id=self.vocabulary.blank, hidden_size=hidden_size,
                num_hidden_layers=num_layers, num_attention_heads=num_heads, intermediate_size=intermediate_size,
                conv_dim=(conv_channels,) * 7, feat_extract_norm="layer", do_stable_layer_norm=True, conv_bias=True,
                num_conv_pos_embeddings=64, num_conv_pos_embedding_groups=8, hidden_dropout=dropout,
                attention_dropout=dropout, activation_dropout=dropout, final_dropout=dropout, layerdrop=0.0,
                mask_time_prob=mask_time_prob, ctc_zero_infinity=True,
            )
            self.model = Wav2Vec2ForCTC(config)
        self.model.config.layerdrop = 0.0  # no random layer skipping: hidden states must be deterministic

    @property
    def layer_names(self) -> list[str]:
        return ["feature_projection"] + [f"encoder.layer_{i}" for i in range(self.model.config.num_hidden_layers)]

    def _inputs(self, waveforms: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Zero-mean, unit-variance waveforms over each item's valid samples (the family's input convention, when
        its feature extractor normalizes), zero past each length; and the attention mask [B, T]."""
        valid = torch.arange(waveforms.shape[1], device=waveforms.device)[None, :] < lengths[:, None]
        if not self.normalize:
            return waveforms * valid, valid.long()
        count = lengths.clamp(min=1)[:, None].to(waveforms.dtype)
        mean = (waveforms * valid).sum(1, keepdim=True) / count
        variance = (((waveforms - mean) * valid) ** 2).sum(1, keepdim=True) / count
        return ((waveforms - mean) / (variance + 1e-7).sqrt()) * valid, valid.long()

    def _frame_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        return self.model._get_feat_extract_output_lengths(lengths).long()

    def _run(self, waveforms: torch.Tensor, lengths: torch.Tensor, keep_hidden: bool):
        """One encoder pass: (final states [B, T', D], every layer's states or None, frame lengths [B])."""
        inputs, mask = self._inputs(waveforms, lengths)
        frames = self._frame_lengths(lengths)
        encoder = self.model.base_model
        if self.uses_attention_mask:
            output = encoder(inputs, attention_mask=mask, output_hidden_states=keep_hidden)
            return output.last_hidden_state, output.hidden_states, frames
        final, layers = None, None
        for length in lengths.unique().tolist():  # each length unpadded (see the module docstring)
            rows = (lengths == length).nonzero().flatten()
            output = encoder(inputs[rows, :length], output_hidden_states=keep_hidden)
            if final is None:
                final = output.last_hidden_state.new_zeros(len(lengths), int(frames.max()), output.last_hidden_state.shape[-1])
                layers = [final.clone() for _ in output.hidden_states] if keep_hidden else None
            final[rows, : output.last_hidden_state.shape[1]] = output.last_hidden_state
            for layer, states in zip(layers or [], output.hidden_states or []):
                layer[rows, : states.shape[1]] = states
        return final, None if layers is None else tuple(layers), frames

    @staticmethod
    def _layer_index(layer: str) -> int:
        """Position of ``layer`` in the encoder's ``hidden_states`` (0 = the feature projection's output)."""
        return 0 if layer == "feature_projection" else int(layer.rsplit("_", 1)[1]) + 1

    def _log_probs(self, states: torch.Tensor, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.model.lm_head(self.model.dropout(states))
        return logits.log_softmax(dim=-1), frames.clamp(max=logits.shape[1])

    def encode(self, waveforms: torch.Tensor, lengths: torch.Tensor, upto: str | None = None):
        final, layers, frames = self._run(waveforms, lengths, keep_hidden=upto is not None)
        if upto is None:
            return final, frames
        return layers[self._layer_index(upto)], frames

    def forward(self, waveforms: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        states, frames = self.encode(waveforms, lengths)
        return self._log_probs(states, frames)

    def decode_with_hidden(self, waveforms: torch.Tensor, lengths: torch.Tensor, layer: str):
        """Transcripts and any layer's activations [B, T', D] with frame lengths [B] from one encoder pass (the
        encoder returns every layer's states), so a detector on an inner layer costs no second backbone pass."""
        final, layers, frames = self._run(waveforms, lengths, keep_hidden=True)
        log_probs, out_lengths = self._log_probs(final, frames)
        return self.texts_from_log_probs(log_probs, out_lengths), layers[self._layer_index(layer)], frames
