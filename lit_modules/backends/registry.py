"""Backends by name, for benchmarks and configs. Loading never trains: a small backend without a checkpoint is an
error naming the command that trains it (``lit_modules.backends.provisioning``)."""

from __future__ import annotations

from pathlib import Path

from core.cache_dir import default_cache_dir
from lit_modules.backends.base import ASRBackend


TRAINED = ("conformer_ctc", "rnnt", "wav2vec2_ctc")
PRETRAINED = ("whisper", "whisper_base", "pocketsphinx")  # whisper_base: the optional extra whisper-base
BACKEND_NAMES = TRAINED + PRETRAINED
CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs" / "asr"


def checkpoint_path(name: str) -> Path:
    """Where the embedded default keeps the checkpoint of a small backend."""
    return default_cache_dir() / "checkpoints" / f"{name}.ckpt"


def surrogate_checkpoint_path(name: str, seed: int, corpus_seed: int = 1) -> Path:
    """Where an attacker's own copy of a small backend (``train_surrogate``) is cached."""
    corpus = "" if corpus_seed == 1 else f"-corpus{corpus_seed}"
    return default_cache_dir() / "checkpoints" / "surrogates" / f"{name}-seed{seed}{corpus}.ckpt"


# Decoding of the small backends: prefix / transducer beam search with a character 6-gram LM trained on the
# synthetic training transcripts. Tuned on 150 dev utterances for Conformer-CTC (greedy 16.2 % -> 2.2 % WER).
DEFAULT_DECODING = {"beam_size": 8, "lm_weight": 1.0, "length_bonus": 1.5}
# Per-backend exceptions, measured on 100 synthetic test utterances (benchmarks/asr_wer.py, 2026-11-26): the RNN-T
# is better greedy (9.8 % WER) than with this beam search + LM (25.7 %), which was tuned for CTC.
BACKEND_DECODING = {"rnnt": {"beam_size": 1}}


def default_language_model() -> Path:
    """The character LM of the embedded default (trained on the synthetic train split on first use)."""
    from datamodules.librispeech_index import scan_split
    from datamodules.synthetic.corpus_config import SyntheticCorpusConfig
    from datamodules.synthetic.generate import default_corpus_dir, generate_corpus
    from lit_modules.language_model import CharacterNGramLM

    config = SyntheticCorpusConfig()
    path = default_cache_dir() / "lm" / f"char6-synthetic-{config.fingerprint()}.json"
    if not path.is_file():
        corpus = default_corpus_dir(config)
        generate_corpus(config, corpus)
        path.parent.mkdir(parents=True, exist_ok=True)
        CharacterNGramLM(order=6).fit([u.transcript for u in scan_split(corpus, "train")[0]]).save(path)
    return path


def load_pretrained(family: str, options: dict, device: str = "cpu") -> ASRBackend:
    """A pretrained backend of a catalog family (``lit_modules.backends.catalog``) from local files only."""
    from lit_modules.backends import catalog

    if family == "hf_ctc":
        from lit_modules.backends.trained import TrainedModelBackend
        from lit_modules.models.wav2vec2_ctc import Wav2Vec2CTC

        folder = catalog.hugging_face_folder(options["source"])
        return TrainedModelBackend(Wav2Vec2CTC(pretrained=str(folder)), device=device, decoding={"beam_size": 1})
    if family == "torchaudio_rnnt":
        from lit_modules.backends.torchaudio_rnnt import EmformerRNNTBackend

        extra = {key: options[key] for key in ("beam_width", "step_max_tokens") if key in options}
        return EmformerRNNTBackend(options["bundle"], device=device, **extra)
    if family == "torchaudio_ctc":
        from lit_modules.backends.torchaudio_ctc import TorchaudioCTCBackend

        return TorchaudioCTCBackend(options["bundle"], device=device)
    if family == "speechbrain":
        folder = catalog.hugging_face_folder(options["source"], catalog.MARKER_FILE[family])
        if options.get("interface") == "StreamingASR":
            from lit_modules.backends.speechbrain_streaming import SpeechBrainStreamingBackend

            extra = {key: options[key] for key in ("savedir", "chunk_size", "left_context_chunks") if key in options}
            return SpeechBrainStreamingBackend(str(folder), device=device, **extra)
        from lit_modules.backends.speechbrain_backend import SpeechBrainBackend

        extra = {key: options[key] for key in ("interface", "beam_size", "savedir") if key in options}
        return SpeechBrainBackend(str(folder), device=device, **extra)
    if family == "hf_whisper":
        from lit_modules.backends.whisper import WhisperBackend

        folder = catalog.hugging_face_folder(options["source"], catalog.MARKER_FILE[family])
        extra = {key: value for key, value in options.items() if key != "source"}
        return WhisperBackend(str(folder), device=device, **extra)
    raise KeyError(f"unknown pretrained family {family!r}")


def load_backend(name: str, device: str = "cpu", checkpoint: str | None = None, decoding: dict | None = None,
                 precision: str = "32", **options) -> ASRBackend:
    """A frozen backend by name: ``conformer_ctc``, ``rnnt``, ``wav2vec2_ctc`` (trained here), ``whisper`` (tiny.en),
    ``whisper_base`` (the optional extra ``whisper-base``),
    ``pocketsphinx``, a pretrained model of ``lit_modules.backends.catalog`` (e.g. ``wav2vec2_base_960h``: its files
    must be on this machine, else ``ModelNotAvailableError`` names the fetch command), or a catalog family with a
    ``source`` option (``hf_ctc``).

    Args:
        checkpoint: for trained backends, a checkpoint to load (default: the cached one, which must exist:
            ``python -m lit_modules.backends.provisioning <name>`` trains it).
        decoding: for trained backends; default ``DEFAULT_DECODING`` with the embedded default's LM;
            ``{"beam_size": 1}`` for greedy decoding.
        precision: ``"32"``, or ``"bf16"`` / ``"16"`` to run forward passes under autocast (``set_precision``).
        options: passed to the backend class (e.g. ``min_context_s`` for Whisper).
    """
    return _load(name, device, checkpoint, decoding, **options).set_precision(precision)


def _load(name: str, device: str, checkpoint: str | None, decoding: dict | None, **options) -> ASRBackend:
    from lit_modules.backends import catalog

    try:
        family, resolved = catalog.resolve(name, options)
    except KeyError:
        family = None
    if family is not None:
        catalog.require_available(name, options)
        return load_pretrained(family, resolved, device)
    if name in ("whisper", "whisper_base"):
        from lit_modules.backends.whisper import WhisperBackend

        size = "tiny.en" if name == "whisper" else "base"
        return WhisperBackend(**{"model_name_or_path": f"bundled:{size}", **options}, device=device)
    if name == "pocketsphinx":
        from lit_modules.backends.pocketsphinx_backend import PocketSphinxBackend

        return PocketSphinxBackend(**options)
    if name not in TRAINED:
        raise KeyError(f"unknown backend {name!r}; choose from {BACKEND_NAMES + tuple(catalog.CATALOG)} or a family "
                       f"{catalog.FAMILIES} with a source")
    from lit_modules.backends.trained import TrainedModelBackend

    path = Path(checkpoint) if checkpoint else checkpoint_path(name)
    if not path.is_file():
        command = (f"python train.py fit --config configs/asr/{name}.yaml" if checkpoint
                   else f"python -m lit_modules.backends.provisioning {name}")
        raise FileNotFoundError(f"{path}: no checkpoint for {name} (train it: {command})")
    if decoding is None:
        decoding = BACKEND_DECODING.get(name) or {**DEFAULT_DECODING, "lm_path": str(default_language_model())}
    return TrainedModelBackend.from_checkpoint(path, device=device, decoding=decoding)
