"""SpeechBrain pretrained recognizers (``EncoderDecoderASR`` / ``EncoderASR``) behind the backend interface.

Loads with SpeechBrain's own ``from_hparams``: a local folder holding ``hyperparams.yaml`` and the files its
pretrainer names, or a hub id whose snapshot is in the local Hugging Face cache (e.g.
``speechbrain/asr-conformer-transformerlm-librispeech``). Nothing is downloaded (``lit_modules.backends.catalog``
checks first and names the fetch command). SpeechBrain links the files into ``savedir`` (default: a folder per
source under the project's cache).

Transcripts come from the model's own decoder as its ``hyperparams.yaml`` configures it (beam search with CTC and
language-model scorers for the LibriSpeech Conformer; ``beam_size`` overrides the width). The score of a text is the
model's own loss of its tokens, in nats, computed from its modules:

- attention encoder-decoders (Transformer / Conformer, CRDNN): ``(1 - w) * attention NLL + w * CTC NLL`` with ``w``
  the CTC weight the model decodes with (``ctc`` in its scorer's weights; 0 without a CTC scorer). The external
  language model is a prior over texts, not the acoustic model's likelihood, and stays out;
- ``EncoderASR`` (CTC only): the CTC NLL of the encoder's log-probabilities.

Utterances of one length run together unpadded (relative length 1), so a result never depends on the batch.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
import torch.nn.functional as F

from core.cache_dir import default_cache_dir
from core.text import normalize_transcript
from lit_modules.backends.base import ASRBackend, Capability, Float32, scatter_groups

INTERFACES = ("EncoderDecoderASR", "EncoderASR")


def default_savedir(source: str) -> Path:
    """Where SpeechBrain links a model's files: one folder per source under the project's cache."""
    digest = hashlib.sha256(str(Path(source).expanduser().resolve() if Path(source).exists() else source).encode())
    return default_cache_dir() / "speechbrain" / f"{Path(source).name}-{digest.hexdigest()[:8]}"


class SpeechBrainBackend(ASRBackend):
    """Args:
        source: folder (or a hub id in the local Hugging Face cache) with ``hyperparams.yaml``.
        savedir: where SpeechBrain collects the model files (default ``default_savedir(source)``).
        interface: ``"EncoderDecoderASR"`` (attention decoders) or ``"EncoderASR"`` (CTC); streaming transducers
            (``StreamingASR``) load through ``speechbrain_streaming.SpeechBrainStreamingBackend``.
        beam_size: overrides the decoder's beam width (None: the model's own).
        device: where it runs.

    Hidden layer ``encoder.output``: the encoder's states [B, T', D] (for ``EncoderASR``, its output).
    """

    def __init__(self, source: str, savedir: str | None = None, interface: str = "EncoderDecoderASR",
                 beam_size: int | None = None, device: str = "cpu") -> None:
        super().__init__()
        if interface not in INTERFACES:
            raise ValueError(f"interface must be one of {INTERFACES}, got {interface!r}")
        import speechbrain.inference.ASR as speechbrain_asr

        savedir = str(savedir or default_savedir(source))
        try:
            self.asr = getattr(speechbrain_asr, interface).from_hparams(
                source=source, savedir=savedir, run_opts={"device": device})
        except Exception as error:  # SpeechBrain raises many types (fetch, YAML, missing keys)
            raise RuntimeError(f"SpeechBrain could not load {interface} from {source!r}: {error}") from error
        encoder = self.asr.mods.encoder
        if hasattr(encoder, "compute_features"):  # filterbanks in float32 under autocast too
            encoder.compute_features = Float32(encoder.compute_features)
        self.speechbrain_modules = self.asr.mods  # registered so that freeze() covers the weights
        self.interface = interface
        self.tokenizer = self.asr.tokenizer
        searcher = self.asr.mods.decoder if interface == "EncoderDecoderASR" else None
        if searcher is not None and beam_size is not None:
            if not hasattr(searcher, "beam_size"):
                raise ValueError(f"{type(searcher).__name__} has no beam width to set")
            searcher.beam_size = beam_size
        self.searcher = searcher
        self.scorer_modules = torch.nn.ModuleList(self._scorer_modules(searcher))  # e.g. the LM: frozen, on device
        self.ctc_head, self.ctc_weight, self.blank = self._ctc_parts(searcher)
        scorable = interface == "EncoderASR" or self._teacher_forcing(searcher) is not None
        self.capabilities = frozenset({Capability.TRANSCRIBE, Capability.HIDDEN}
                                      | ({Capability.SCORE} if scorable else set()))
        self.to(device)
        self.freeze()

    # ------------------------------------------------------------------------------------------------ pieces
    @staticmethod
    def _scorer_modules(searcher) -> list[torch.nn.Module]:
        """The networks a searcher's scorers hold (language models, CTC heads), which SpeechBrain keeps outside
        ``mods``."""
        scorer = getattr(searcher, "scorer", None)
        scorers = [*getattr(scorer, "full_scorers", {}).values(), *getattr(scorer, "partial_scorers", {}).values()]
        return [value for item in scorers for value in vars(item).values() if isinstance(value, torch.nn.Module)]

    @staticmethod
    def _ctc_parts(searcher) -> tuple[torch.nn.Module | None, float, int]:
        """(the CTC output layer, the weight the model decodes it with, the blank index) of a searcher's scorer."""
        scorer = getattr(searcher, "scorer", None)
        scorers = {**getattr(scorer, "full_scorers", {}), **getattr(scorer, "partial_scorers", {})}
        ctc = scorers.get("ctc")
        if ctc is None:
            return None, 0.0, 0
        return ctc.ctc_fc, float(scorer.weights.get("ctc", 0.0)), int(ctc.blank_index)

    @staticmethod
    def _teacher_forcing(searcher):
        """A function (decoder inputs [B, U], encoder states [B, T', D]) -> logits [B, U, V] for the attention
        decoders SpeechBrain's searchers wrap, or None (e.g. transducers)."""
        if searcher is None:
            return None
        if hasattr(searcher, "model") and hasattr(searcher.model, "decode") and hasattr(searcher, "fc"):
            def transformer(tokens, states):
                lengths = torch.full((states.shape[0],), states.shape[1], device=states.device)
                return searcher.fc(searcher.model.decode(tokens, states, lengths)[0])
            return transformer
        if all(hasattr(searcher, name) for name in ("emb", "dec", "fc")):
            def recurrent(tokens, states):
                relative = torch.ones(states.shape[0], device=states.device)
                return searcher.fc(searcher.dec(searcher.emb(tokens), states, relative)[0])
            return recurrent
        return None

    def _token_ids(self, text: str) -> list[int]:
        text = normalize_transcript(text)
        if hasattr(self.tokenizer, "encode_as_ids"):  # SentencePiece
            return list(self.tokenizer.encode_as_ids(text))
        return [int(i) for i in self.tokenizer.encode_sequence(list(text))] if text else []  # CTCTextEncoder (characters)

    def _groups(self, waveforms: torch.Tensor, lengths: torch.Tensor):
        """(rows [G], waveforms [G, L]) per length, unpadded."""
        for length in lengths.unique().tolist():
            rows = (lengths == length).nonzero().flatten()
            yield rows, waveforms[rows, :length]

    def _encode(self, waveforms: torch.Tensor) -> torch.Tensor:
        return self.asr.encode_batch(waveforms, torch.ones(waveforms.shape[0], device=waveforms.device))

    # ------------------------------------------------------------------------------------------------ interface
    @property
    def hidden_layers(self) -> list[str]:
        return ["encoder.output"]

    def _transcribe(self, waveforms: torch.Tensor, lengths: torch.Tensor) -> list[str]:
        texts = [""] * len(lengths)
        for rows, group in self._groups(waveforms, lengths):
            words, _ = self.asr.transcribe_batch(group, torch.ones(len(rows), device=group.device))
            for row, text in zip(rows.tolist(), words):
                texts[row] = normalize_transcript(text if isinstance(text, str) else " ".join(text))
        return texts

    def _hidden(self, waveforms: torch.Tensor, lengths: torch.Tensor, layer: str) -> tuple[torch.Tensor, torch.Tensor]:
        parts = [(rows, states, torch.full((len(rows),), states.shape[1]))
                 for rows, group in self._groups(waveforms, lengths) for states in [self._encode(group)]]
        return scatter_groups(len(lengths), parts)

    def _score(self, waveforms: torch.Tensor, lengths: torch.Tensor, texts: list[str]) -> torch.Tensor:
        scores = torch.zeros(len(lengths), device=waveforms.device)
        for rows, group in self._groups(waveforms, lengths):
            states = self._encode(group)
            tokens = [self._token_ids(texts[row]) for row in rows.tolist()]
            if self.interface == "EncoderASR":
                scores[rows] = self._ctc_nll(states.log_softmax(-1), tokens, self.blank)
                continue
            attention = self._attention_nll(states, tokens)
            if self.ctc_head is not None and self.ctc_weight > 0:
                ctc = self._ctc_nll(self.ctc_head(states).log_softmax(-1), tokens, self.blank)
                scores[rows] = (1 - self.ctc_weight) * attention + self.ctc_weight * ctc
            else:
                scores[rows] = attention
        return scores

    @staticmethod
    def _ctc_nll(log_probs: torch.Tensor, tokens: list[list[int]], blank: int) -> torch.Tensor:
        """CTC negative log-likelihood [G] (nats) of token sequences under log-probabilities [G, T', V]."""
        targets = torch.tensor([t for ids in tokens for t in ids], dtype=torch.long, device=log_probs.device)
        frames = torch.full((len(tokens),), log_probs.shape[1], dtype=torch.long, device=log_probs.device)
        target_lengths = torch.tensor([len(ids) for ids in tokens], dtype=torch.long, device=log_probs.device)
        return F.ctc_loss(log_probs.float().transpose(0, 1), targets, frames, target_lengths, blank=blank,
                          reduction="none", zero_infinity=False)

    def _attention_nll(self, states: torch.Tensor, tokens: list[list[int]]) -> torch.Tensor:
        """The attention decoder's negative log-likelihood [G] (nats) of ``tokens`` + eos, teacher-forced from bos."""
        bos, eos = self.searcher.bos_index, self.searcher.eos_index
        longest = max(len(ids) for ids in tokens) + 1
        inputs = torch.full((len(tokens), longest), eos, dtype=torch.long, device=states.device)
        targets = torch.full_like(inputs, -100)
        for i, ids in enumerate(tokens):
            inputs[i, : len(ids) + 1] = torch.tensor([bos, *ids], device=states.device)
            targets[i, : len(ids) + 1] = torch.tensor([*ids, eos], device=states.device)
        logits = self._teacher_forcing(self.searcher)(inputs, states).float()
        nll = F.cross_entropy(logits.transpose(1, 2), targets, ignore_index=-100, reduction="none")
        return nll.sum(dim=1)
