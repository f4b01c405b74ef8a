"""torchaudio's wav2vec 2.0 / HuBERT CTC pipeline bundles (``WAV2VEC2_ASR_BASE_960H`` and kin) behind the backend
interface.

The weights are read from torch hub's checkpoint folder (``torch.hub.get_dir()/checkpoints/<file>``, where the
bundle's ``get_model()`` caches them); nothing is downloaded (``lit_modules.backends.catalog`` checks first). They
are loaded with ``weights_only=True``, the fairseq auxiliary outputs (``<s>``, ``<pad>``, ``</s>``) are dropped as the
bundle does, and the bundle's own model builder, labels (blank ``-``, word delimiter ``|``, 26 letters and ``'``) and
waveform normalization apply. Transcripts: greedy CTC; score: CTC NLL of the text's characters, in nats; layers:
``encoder.layer_i`` (the Transformer layers' outputs). Utterances of one length run together, unpadded (the base
models' group-normalized convolutions would otherwise see the padding).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from core.text import normalize_transcript
from lit_modules.backends.base import ASRBackend, Capability, scatter_groups


def bundle_weights_path(bundle_name: str) -> Path:
    """Where the bundle's ``get_model()`` keeps its weights (torch hub's checkpoint folder)."""
    import torchaudio

    bundle = getattr(torchaudio.pipelines, bundle_name)
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(bundle._path).name


class TorchaudioCTCBackend(ASRBackend):
    """Args:
        bundle: the torchaudio pipeline bundle's name (a ``Wav2Vec2ASRBundle``).
        device: where it runs.
    """

    capabilities = frozenset({Capability.TRANSCRIBE, Capability.HIDDEN, Capability.SCORE})

    def __init__(self, bundle: str = "WAV2VEC2_ASR_BASE_960H", device: str = "cpu") -> None:
        super().__init__()
        import torchaudio
        from torchaudio.pipelines._wav2vec2 import utils

        self.pipeline = getattr(torchaudio.pipelines, bundle)
        path = bundle_weights_path(bundle)
        if not path.is_file():
            raise FileNotFoundError(f"the {bundle} bundle's weights are missing: {path}")
        state = torch.load(path, map_location="cpu", weights_only=True)
        utils._remove_aux_axes(state, self.pipeline._remove_aux_axis)
        model = utils._get_model(self.pipeline._model_type, self.pipeline._params)
        model.load_state_dict(state)
        if self.pipeline._normalize_waveform:
            model = utils._extend_model(model, normalize_waveform=True)
        self.model = model
        self.labels = self.pipeline.get_labels()  # ("-", "|", "E", ...): blank first
        self.index = {label: i for i, label in enumerate(self.labels)}
        self.num_layers = self.pipeline._params["encoder_num_layers"]
        self.to(device)
        self.freeze()

    @property
    def hidden_layers(self) -> list[str]:
        return [f"encoder.layer_{i}" for i in range(self.num_layers)]

    def _per_length(self, waveforms: torch.Tensor, lengths: torch.Tensor, run):
        """``run(waveforms [G, L]) -> [G, T', D]`` per length group, scattered into [B, T'max, D] and frames [B]."""
        parts = []
        for length in lengths.unique().tolist():
            rows = (lengths == length).nonzero().flatten()
            states = run(waveforms[rows, :length])
            parts.append((rows, states, torch.full((len(rows),), states.shape[1])))
        return scatter_groups(len(lengths), parts)

    def _emissions(self, waveforms: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self._per_length(waveforms, lengths, lambda w: self.model(w)[0].float().log_softmax(-1))

    def _transcribe(self, waveforms: torch.Tensor, lengths: torch.Tensor) -> list[str]:
        log_probs, frames = self._emissions(waveforms, lengths)
        texts = []
        for best, count in zip(log_probs.argmax(-1), frames.tolist()):
            ids = torch.unique_consecutive(best[:count]).tolist()
            text = "".join(self.labels[i] for i in ids if i != 0).replace("|", " ")
            texts.append(normalize_transcript(text))
        return texts

    def _hidden(self, waveforms: torch.Tensor, lengths: torch.Tensor, layer: str) -> tuple[torch.Tensor, torch.Tensor]:
        depth = int(layer.rsplit("_", 1)[1]) + 1
        return self._per_length(waveforms, lengths,
                                lambda w: self.model.extract_features(w, num_layers=depth)[0][-1])

    def _score(self, waveforms: torch.Tensor, lengths: torch.Tensor, texts: list[str]) -> torch.Tensor:
        log_probs, frames = self._emissions(waveforms, lengths)
        tokens = [[self.index[c] for c in normalize_transcript(text).replace(" ", "|") if c in self.index]
                  for text in texts]
        targets = torch.tensor([t for ids in tokens for t in ids], dtype=torch.long, device=log_probs.device)
        target_lengths = torch.tensor([len(ids) for ids in tokens], dtype=torch.long, device=log_probs.device)
        return F.ctc_loss(log_probs.transpose(0, 1), targets, frames, target_lengths, blank=0, reduction="none")
