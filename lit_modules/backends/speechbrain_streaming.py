"""SpeechBrain streaming transducers (``StreamingASR``, e.g. ``speechbrain/asr-streaming-conformer-librispeech``)
behind the backend interface.

Loads with SpeechBrain's own ``from_hparams`` from a local folder or a hub snapshot in the local Hugging Face cache
(never downloads). The model runs as it is deployed: the waveform is cut into chunks of ``chunk_size`` encoder
input frames (24 frames = 0.96 s by default, the model card's setting), each chunk is encoded with
``left_context_chunks`` chunks of left context and decoded by the model's own streaming greedy transducer search,
and the feature extractor's recommended zero chunks flush the end, as ``StreamingASR.transcribe_file`` does. The
tokens of all chunks are detokenized once at the end with the model's tokenizer (the same text as SpeechBrain's
per-chunk ``spm_decode_preserve_leading_space``, which SpeechBrain 1.1.2 writes against a SentencePiece API that
SentencePiece 0.2.3 removed).

The score of a text is the model's training loss on it: the transducer negative log-likelihood (nats, summed over
the alignment lattice by ``torchaudio.functional.rnnt_loss``) of its SentencePiece tokens, with the joint network
over the same streamed encoder states the transcript came from and the prediction network teacher-forced from the
blank. Utterances of one length run together unpadded, so a result never depends on the batch.
"""

from __future__ import annotations

import itertools

import torch
import torchaudio

from core.text import normalize_transcript
from lit_modules.backends.base import ASRBackend, Capability, Float32, scatter_groups
from lit_modules.backends.speechbrain_backend import default_savedir


class SpeechBrainStreamingBackend(ASRBackend):
    """Args:
        source: folder (or a hub id in the local Hugging Face cache) with ``hyperparams.yaml`` for ``StreamingASR``.
        savedir: where SpeechBrain collects the model files (default ``default_savedir(source)``).
        chunk_size: encoder input frames per streamed chunk (10 ms each before the front end's 4x subsampling).
        left_context_chunks: chunks of left context the encoder attends to.
        device: where it runs.

    Hidden layer ``encoder.output``: the Conformer encoder's states [B, T', D] before the joint projection.
    """

    hidden_layers = ["encoder.output"]

    def __init__(self, source: str, savedir: str | None = None, chunk_size: int = 24, left_context_chunks: int = 4,
                 device: str = "cpu") -> None:
        super().__init__()
        from speechbrain.inference.ASR import StreamingASR
        from speechbrain.utils.dynamic_chunk_training import DynChunkTrainConfig

        if chunk_size < 1 or left_context_chunks < 0:
            raise ValueError(f"chunk_size must be >= 1 and left_context_chunks >= 0, got {chunk_size}, "
                             f"{left_context_chunks}")
        try:
            self.asr = StreamingASR.from_hparams(source=source, savedir=str(savedir or default_savedir(source)),
                                                 run_opts={"device": device})
        except Exception as error:  # SpeechBrain raises many types (fetch, YAML, missing keys)
            raise RuntimeError(f"SpeechBrain could not load StreamingASR from {source!r}: {error}") from error
        missing = [name for name in ("emb", "dec", "proj_dec", "Tjoint", "transducer_lin") if name not in self.asr.mods]
        if missing:
            raise RuntimeError(f"{source!r} is not a transducer the backend can score: its modules lack {missing}")
        self.config = DynChunkTrainConfig(chunk_size, left_context_chunks)
        self.chunk_samples = self.asr.get_chunk_size_frames(self.config)
        extractor = self.asr.hparams.fea_streaming_extractor
        self.flush_chunks = extractor.get_recommended_final_chunk_count(self.chunk_samples)
        for key, layer in extractor.module.items():  # filterbanks in float32 under autocast too
            if layer is self.asr.hparams.compute_features:
                extractor.module[key] = Float32(layer)
        self.speechbrain_modules = self.asr.mods  # registered so that freeze() covers the weights
        self.tokenizer = self.asr.hparams.tokenizer
        self.blank = int(self.asr.hparams.Greedysearcher.blank_id)
        self.capabilities = frozenset({Capability.TRANSCRIBE, Capability.HIDDEN, Capability.SCORE})
        self.to(device)
        self.freeze()

    # ------------------------------------------------------------------------------------------------ pieces
    def _groups(self, waveforms: torch.Tensor, lengths: torch.Tensor):
        """(rows [G], waveforms [G, L]) per length, unpadded."""
        for length in lengths.unique().tolist():
            rows = (lengths == length).nonzero().flatten()
            yield rows, waveforms[rows, :length]

    def _stream(self, group: torch.Tensor, decode: bool) -> tuple[torch.Tensor, torch.Tensor, list[str] | None]:
        """Stream ``group`` [G, L] chunk by chunk -> (encoder states [G, T', D], their joint projection [G, T', J],
        transcripts from the model's streaming greedy search, or None without ``decode``)."""
        from speechbrain.utils.streaming import split_fixed_chunks

        context = self.asr.make_streaming_context(self.config)
        chunks = split_fixed_chunks(group, self.chunk_samples)
        flush = [group.new_zeros(group.shape[0], self.chunk_samples)] * self.flush_chunks
        whole = torch.ones(group.shape[0], device=group.device)
        extractor, encoder = self.asr.hparams.fea_streaming_extractor, self.asr.mods.enc
        states, tokens = [], [[] for _ in range(group.shape[0])]
        for chunk in itertools.chain(chunks, flush):
            features = extractor(chunk.float(), context=context.fea_extractor_context, lengths=whole)
            encoded = encoder.forward_streaming(features, context.encoder_context)
            states.append(encoded)
            if decode:
                with torch.no_grad():
                    emitted = self.asr.hparams.decoding_function(self.asr.mods.proj_enc(encoded),
                                                                 context.decoder_context)
                for row, ids in zip(tokens, emitted):
                    row.extend(int(i) for i in ids)
        encoded = torch.cat(states, dim=1)
        texts = [self.tokenizer.decode_ids(ids) for ids in tokens] if decode else None
        return encoded, self.asr.mods.proj_enc(encoded), texts

    def _token_ids(self, text: str) -> list[int]:
        return list(self.tokenizer.encode_as_ids(normalize_transcript(text)))

    def _transducer_nll(self, projected: torch.Tensor, tokens: list[list[int]]) -> torch.Tensor:
        """Transducer negative log-likelihood [G] (nats) of token sequences given joint-projected states [G, T', J]."""
        modules = self.asr.mods
        longest = max(len(ids) for ids in tokens)
        targets = torch.full((len(tokens), longest), self.blank, dtype=torch.long, device=projected.device)
        for i, ids in enumerate(tokens):
            targets[i, : len(ids)] = torch.tensor(ids, dtype=torch.long, device=projected.device)
        history = torch.cat([targets.new_full((len(tokens), 1), self.blank), targets], dim=1)  # blank = bos
        predicted = modules.proj_dec(modules.dec(modules.emb(history))[0])
        joint = modules.Tjoint(projected.unsqueeze(2), predicted.unsqueeze(1))  # [G, T', U + 1, J]
        logits = modules.transducer_lin(joint).float()
        if longest == 0:  # only empty texts: every frame emits the blank (rnnt_loss needs a target column)
            return -logits[:, :, 0].log_softmax(-1)[..., self.blank].sum(dim=1)
        frames = torch.full((len(tokens),), projected.shape[1], dtype=torch.int32, device=projected.device)
        target_lengths = torch.tensor([len(ids) for ids in tokens], dtype=torch.int32, device=projected.device)
        return torchaudio.functional.rnnt_loss(logits, targets.int(), frames, target_lengths, blank=self.blank,
                                               reduction="none")

    # ------------------------------------------------------------------------------------------------ interface
    def _transcribe_with_hidden(self, waveforms: torch.Tensor, lengths: torch.Tensor, layer: str):
        texts, parts = [""] * len(lengths), []
        for rows, group in self._groups(waveforms, lengths):
            encoded, _, words = self._stream(group, decode=True)
            parts.append((rows, encoded, torch.full((len(rows),), encoded.shape[1])))
            for row, text in zip(rows.tolist(), words):
                texts[row] = normalize_transcript(text)
        return (texts, *scatter_groups(len(lengths), parts))

    def _transcribe(self, waveforms: torch.Tensor, lengths: torch.Tensor) -> list[str]:
        return self._transcribe_with_hidden(waveforms, lengths, "encoder.output")[0]

    def _hidden(self, waveforms: torch.Tensor, lengths: torch.Tensor, layer: str) -> tuple[torch.Tensor, torch.Tensor]:
        parts = [(rows, encoded, torch.full((len(rows),), encoded.shape[1]))
                 for rows, group in self._groups(waveforms, lengths)
                 for encoded in [self._stream(group, decode=False)[0]]]
        return scatter_groups(len(lengths), parts)

    def _score(self, waveforms: torch.Tensor, lengths: torch.Tensor, texts: list[str]) -> torch.Tensor:
        scores = torch.zeros(len(lengths), device=waveforms.device)
        for rows, group in self._groups(waveforms, lengths):
            _, projected, _ = self._stream(group, decode=False)
            scores[rows] = self._transducer_nll(projected, [self._token_ids(texts[row]) for row in rows.tolist()])
        return scores
