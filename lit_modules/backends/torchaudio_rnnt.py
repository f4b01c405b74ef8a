"""torchaudio's pretrained Emformer RNN-T (``EMFORMER_RNNT_BASE_LIBRISPEECH``: a transducer trained on LibriSpeech,
76.7 M parameters, the paper's RNN-T row) behind the backend interface.

The bundle's three files (weights, feature statistics, SentencePiece model) are read from torch hub's folder
(``torch.hub.get_dir()/torchaudio/...``), where the bundle itself puts them; nothing is downloaded here
(``lit_modules.backends.catalog`` checks them first and names the command that fetches them). The weights are loaded
with ``weights_only=True`` into ``torchaudio.models.emformer_rnnt_base``; features come from the bundle's own
full-context feature extractor, transcripts from its beam search and token processor, and the score of a text is
the transducer loss (``torchaudio.functional.rnnt_loss``) of its SentencePiece tokens (lower-cased, as the recipe
trained them), in nats.

Each utterance is featurized alone and utterances of one length are encoded together, unpadded, so results never
depend on what an utterance is batched with (an attack population shares one length: one batch).
"""

from __future__ import annotations

from pathlib import Path

import torch

from core.text import normalize_transcript
from lit_modules.backends.base import ASRBackend, Capability, Float32, scatter_groups

LAYERS = ("subsampling", "encoder.output")


def bundle_asset_paths(bundle_name: str) -> dict[str, Path]:
    """Where the bundle keeps its weights, feature statistics and tokenizer (torch hub's folder)."""
    import torchaudio

    bundle = getattr(torchaudio.pipelines, bundle_name)
    root = Path(torch.hub.get_dir()) / "torchaudio"
    return {"weights": root / bundle._rnnt_path, "statistics": root / bundle._global_stats_path,
            "tokenizer": root / bundle._sp_model_path}


class EmformerRNNTBackend(ASRBackend):
    """Args:
        bundle: the torchaudio pipeline bundle's name.
        beam_width: the bundle's RNN-T beam search width (1: the cheapest).
        step_max_tokens: most symbols emitted per frame (torchaudio's default, 100; an untrained model can need a
            cap to decode in bounded time).
        device: where it runs.
    """

    capabilities = frozenset({Capability.TRANSCRIBE, Capability.HIDDEN, Capability.SCORE})

    def __init__(self, bundle: str = "EMFORMER_RNNT_BASE_LIBRISPEECH", beam_width: int = 1,
                 step_max_tokens: int = 100, device: str = "cpu") -> None:
        super().__init__()
        import sentencepiece
        import torchaudio

        if beam_width < 1:
            raise ValueError(f"beam_width must be >= 1, got {beam_width}")
        paths = bundle_asset_paths(bundle)
        missing = [str(p) for p in paths.values() if not p.is_file()]
        if missing:
            raise FileNotFoundError(f"the {bundle} bundle's files are missing: {missing}")
        self.pipeline = getattr(torchaudio.pipelines, bundle)
        self.tokenizer = sentencepiece.SentencePieceProcessor(model_file=str(paths["tokenizer"]))
        self.blank = self.tokenizer.get_piece_size()  # the bundle's blank follows its 4,096 pieces
        self.model = torchaudio.models.emformer_rnnt_base(num_symbols=self.blank + 1)
        self.model.load_state_dict(torch.load(paths["weights"], map_location="cpu", weights_only=True))
        self.features = Float32(self.pipeline.get_feature_extractor())
        self.token_processor = self.pipeline.get_token_processor()
        self.beam_width = beam_width
        self.step_max_tokens = step_max_tokens
        self.to(device)
        self.freeze()

    @property
    def hidden_layers(self) -> list[str]:
        return list(LAYERS)

    # ------------------------------------------------------------------------------------------------ pieces
    def _featurize(self, waveforms: torch.Tensor, lengths: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per length (equal lengths together): (row indices [G], features [G, T' + right padding, 80] as the
        bundle's full-context extractor makes them, valid frame counts [G] without that padding: what the model's
        full-context forward expects)."""
        groups = []
        for length in lengths.unique().tolist():
            rows = (lengths == length).nonzero().flatten()
            features = torch.stack([self.features(waveforms[int(row), :length])[0] for row in rows])
            frames = torch.full((len(rows),), features.shape[1] - self.pipeline._right_padding, device=features.device)
            groups.append((rows, features, frames))
        return groups

    def _encode_group(self, features: torch.Tensor, frames: torch.Tensor, layer: str) -> tuple[torch.Tensor, torch.Tensor]:
        transcriber = self.model.transcriber
        states, lengths = transcriber.time_reduction(transcriber.input_linear(features), frames)
        if layer == "subsampling":  # (the time-reduced frames, right context left out)
            return states[:, : int(lengths.max())], lengths
        return self.model.transcribe(features, frames)

    # ------------------------------------------------------------------------------------------------ interface
    def _transcribe(self, waveforms: torch.Tensor, lengths: torch.Tensor) -> list[str]:
        from torchaudio.models import RNNTBeamSearch

        search = RNNTBeamSearch(self.model, self.blank, step_max_tokens=self.step_max_tokens)
        texts: list[str] = [""] * len(lengths)
        for rows, features, frames in self._featurize(waveforms, lengths):
            for row, item in zip(rows.tolist(), features):
                best = search(item[None], torch.tensor([item.shape[0]], device=item.device), self.beam_width)[0]
                texts[row] = normalize_transcript(self.token_processor(best[0]))
        return texts

    def _hidden(self, waveforms: torch.Tensor, lengths: torch.Tensor, layer: str) -> tuple[torch.Tensor, torch.Tensor]:
        parts = [(rows, *self._encode_group(features, frames, layer))
                 for rows, features, frames in self._featurize(waveforms, lengths)]
        return scatter_groups(len(lengths), parts)

    def _score(self, waveforms: torch.Tensor, lengths: torch.Tensor, texts: list[str]) -> torch.Tensor:
        from torchaudio.functional import rnnt_loss

        scores = torch.zeros(len(lengths), device=waveforms.device)
        for rows, features, frames in self._featurize(waveforms, lengths):
            tokens = [self.tokenizer.encode(normalize_transcript(texts[row]).lower()) for row in rows.tolist()]
            longest = max(len(t) for t in tokens)
            targets = torch.zeros(len(tokens), longest, dtype=torch.int32, device=features.device)
            for i, ids in enumerate(tokens):
                targets[i, : len(ids)] = torch.tensor(ids, dtype=torch.int32)
            target_lengths = torch.tensor([len(t) for t in tokens], dtype=torch.int32, device=features.device)
            prompted = torch.cat([targets.new_full((len(tokens), 1), self.blank), targets], dim=1)
            logits, source_lengths, _, _ = self.model(features, frames, prompted, target_lengths + 1)
            scores[rows] = rnnt_loss(logits.float(), targets, source_lengths.int(), target_lengths, blank=self.blank,
                                     reduction="none")
        return scores
