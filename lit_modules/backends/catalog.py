"""The public pretrained recognizers by name: which loader family each belongs to, where its files must be on this
machine, and the one command that fetches them on a machine with network. Nothing here downloads or trains.

Families (each a ``load_backend`` name taking a ``source``):
    ``hf_ctc``: any Hugging Face CTC checkpoint of the wav2vec 2.0 family (wav2vec 2.0, HuBERT, WavLM,
        data2vec-audio), by hub id (in the local Hugging Face cache) or folder;
    ``torchaudio_rnnt``: a torchaudio RNN-T pipeline bundle (option ``bundle``), from torch hub's folder;
    ``torchaudio_ctc``: a torchaudio wav2vec 2.0 / HuBERT CTC pipeline bundle (option ``bundle``), likewise;
    ``speechbrain``: a SpeechBrain ``EncoderDecoderASR`` / ``EncoderASR`` / ``StreamingASR`` transducer (options
        ``source``, ``interface``), by hub id (in the local Hugging Face cache) or folder;
    ``hf_whisper``: any Hugging Face Whisper checkpoint (option ``source``), by hub id or folder.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


class ModelNotAvailableError(FileNotFoundError):
    """A pretrained model is not on this machine; the message names it and the command that fetches it."""


@dataclass(frozen=True)
class PretrainedModel:
    """family: the loader (``hf_ctc``, ...); options: its arguments (``source``, ...); about: one line for docs."""

    family: str
    options: dict = field(default_factory=dict)
    about: str = ""


CATALOG: dict[str, PretrainedModel] = {
    "wav2vec2_base_960h": PretrainedModel(
        "hf_ctc", {"source": "facebook/wav2vec2-base-960h"},
        "wav2vec 2.0 Base fine-tuned on LibriSpeech 960 h, CTC over 32 characters, 94.4 M parameters"),
    "hubert_large_ls960_ft": PretrainedModel(
        "hf_ctc", {"source": "facebook/hubert-large-ls960-ft"},
        "HuBERT Large fine-tuned on LibriSpeech 960 h, CTC over 32 characters"),
    "data2vec_audio_base_960h": PretrainedModel(
        "hf_ctc", {"source": "facebook/data2vec-audio-base-960h"},
        "data2vec-audio Base fine-tuned on LibriSpeech 960 h, CTC over 32 characters"),
    "emformer_rnnt_librispeech": PretrainedModel(
        "torchaudio_rnnt", {"bundle": "EMFORMER_RNNT_BASE_LIBRISPEECH"},
        "torchaudio's Emformer RNN-T trained on LibriSpeech, 4,096 SentencePiece pieces, 76.7 M parameters"),
    "wav2vec2_asr_base_960h_torchaudio": PretrainedModel(
        "torchaudio_ctc", {"bundle": "WAV2VEC2_ASR_BASE_960H"},
        "torchaudio's wav2vec 2.0 Base fine-tuned on LibriSpeech 960 h (fairseq weights), CTC over 29 characters"),
    "speechbrain_conformer_librispeech": PretrainedModel(
        "speechbrain", {"source": "speechbrain/asr-conformer-transformerlm-librispeech",
                        "interface": "EncoderDecoderASR"},
        "SpeechBrain's LibriSpeech Conformer (12 Conformer + 6 Transformer decoder layers, 5,000 unigram pieces, "
        "109.1 M parameters), joint CTC / attention beam search with a Transformer LM"),
    "speechbrain_transformer_librispeech": PretrainedModel(
        "speechbrain", {"source": "speechbrain/asr-transformer-transformerlm-librispeech",
                        "interface": "EncoderDecoderASR"},
        "SpeechBrain's LibriSpeech Transformer, joint CTC / attention beam search with a Transformer LM"),
    "speechbrain_crdnn_librispeech": PretrainedModel(
        "speechbrain", {"source": "speechbrain/asr-crdnn-rnnlm-librispeech", "interface": "EncoderDecoderASR"},
        "SpeechBrain's LibriSpeech CRDNN (CNN + RNN + DNN encoder, attentional GRU decoder), with an RNN LM"),
    "speechbrain_streaming_conformer_librispeech": PretrainedModel(
        "speechbrain", {"source": "speechbrain/asr-streaming-conformer-librispeech", "interface": "StreamingASR"},
        "SpeechBrain's LibriSpeech streaming Conformer transducer (12 Conformer layers, LSTM prediction network, "
        "1,000 unigram pieces), greedy search over 0.96 s chunks with 4 chunks of left context"),
    "whisper_tiny_en": PretrainedModel("hf_whisper", {"source": "openai/whisper-tiny.en"},
                                       "OpenAI Whisper tiny.en from the Hugging Face hub (39 M parameters)"),
    "whisper_base_en": PretrainedModel("hf_whisper", {"source": "openai/whisper-base.en"},
                                       "OpenAI Whisper base.en from the Hugging Face hub (74 M parameters)"),
    "whisper_small_en": PretrainedModel("hf_whisper", {"source": "openai/whisper-small.en"},
                                        "OpenAI Whisper small.en from the Hugging Face hub (244 M parameters)"),
    "whisper_large_v3": PretrainedModel("hf_whisper", {"source": "openai/whisper-large-v3"},
                                        "OpenAI Whisper large-v3 from the Hugging Face hub (1.55 B parameters)"),
}
FAMILIES = ("hf_ctc", "torchaudio_rnnt", "torchaudio_ctc", "speechbrain", "hf_whisper")
REQUIRED = {"hf_ctc": "source", "torchaudio_rnnt": "bundle", "torchaudio_ctc": "bundle", "speechbrain": "source",
            "hf_whisper": "source"}
# The file a local folder of each hub-hosted family must hold.
MARKER_FILE = {"hf_ctc": "config.json", "hf_whisper": "config.json", "speechbrain": "hyperparams.yaml"}


def resolve(name: str, options: dict) -> tuple[str, dict]:
    """(family, its options) for a catalog name or a family name; options given override the catalog's."""
    if name in CATALOG:
        entry = CATALOG[name]
        return entry.family, {**entry.options, **options}
    if name in FAMILIES:
        if not options.get(REQUIRED[name]):
            raise ValueError(f"backend {name!r} needs a {REQUIRED[name]} option, e.g. {{backend: hf_ctc, source: "
                             "facebook/wav2vec2-base-960h}} or {backend: torchaudio_rnnt, bundle: "
                             "EMFORMER_RNNT_BASE_LIBRISPEECH}")
        return name, dict(options)
    raise KeyError(name)


def hugging_face_folder(source: str, marker: str = "config.json") -> Path | None:
    """The local folder of a Hugging Face checkpoint (a folder given directly, or the snapshot of a hub id in the
    local Hugging Face cache) holding ``marker``, or None when it is not on this machine."""
    if Path(source).expanduser().is_dir():
        folder = Path(source).expanduser()
        return folder if (folder / marker).is_file() else None
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        folder = Path(snapshot_download(source, local_files_only=True))
    except (LocalEntryNotFoundError, OSError, ValueError):
        return None
    return folder if (folder / marker).is_file() else None


def fetch_command(family: str, options: dict) -> str:
    """The command that puts the model on a machine with network (then copy the cache, or set ``HF_HOME``)."""
    if family in MARKER_FILE:
        return f"hf download {options['source']}"
    if family == "torchaudio_rnnt":
        bundle = options["bundle"]
        return (f'python -c "import torchaudio; b = torchaudio.pipelines.{bundle}; b.get_decoder(); '
                f'b.get_feature_extractor(); b.get_token_processor()"')
    if family == "torchaudio_ctc":
        return f'python -c "import torchaudio; torchaudio.pipelines.{options["bundle"]}.get_model()"'
    raise KeyError(family)


def require_available(name: str, options: dict | None = None) -> None:
    """Raise ``ModelNotAvailableError`` naming the model and its fetch command when a pretrained backend's files are
    not on this machine (cheap: no model is built). Names outside the catalog and its families pass."""
    try:
        family, resolved = resolve(name, dict(options or {}))
    except KeyError:
        return
    if family == "torchaudio_rnnt":
        from lit_modules.backends.torchaudio_rnnt import bundle_asset_paths

        missing = [str(path) for path in bundle_asset_paths(resolved["bundle"]).values() if not path.is_file()]
        if missing:
            raise ModelNotAvailableError(
                f"backend {name!r}: the {resolved['bundle']} bundle is not on this machine (missing {', '.join(missing)}); "
                f"fetch it on a machine with network with `{fetch_command(family, resolved)}` and copy torch hub's "
                "folder here (or set TORCH_HOME to it)")
    if family == "torchaudio_ctc":
        from lit_modules.backends.torchaudio_ctc import bundle_weights_path

        path = bundle_weights_path(resolved["bundle"])
        if not path.is_file():
            raise ModelNotAvailableError(
                f"backend {name!r}: the {resolved['bundle']} bundle is not on this machine (missing {path}); fetch it "
                f"on a machine with network with `{fetch_command(family, resolved)}` and copy torch hub's folder here "
                "(or set TORCH_HOME to it)")
    if family in MARKER_FILE and hugging_face_folder(resolved["source"], MARKER_FILE[family]) is None:
        raise ModelNotAvailableError(
            f"backend {name!r}: {resolved['source']} is not on this machine (not a folder with {MARKER_FILE[family]}, not "
            f"in the local Hugging Face cache); fetch it on a machine with network with `{fetch_command(family, resolved)}` "
            "and copy the Hugging Face cache here (or set HF_HOME to it), or pass a local folder as its source")
