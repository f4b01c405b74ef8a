"""Replicas of public pretrained recognizers: their architecture, configuration and file layout, random weights.

No public checkpoint can be downloaded here; these folders prove that the loading code reads the real layouts. The
full-size configuration is each model's own; tests may shrink widths for speed (the layout stays the same).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

# facebook/wav2vec2-base-960h's vocab.json: CTC blank <pad>, word delimiter |, letters by frequency
WAV2VEC2_960H_VOCABULARY = ["<pad>", "<s>", "</s>", "<unk>", "|", "E", "T", "A", "O", "N", "I", "H", "S", "R", "D",
                            "L", "U", "M", "W", "C", "F", "G", "Y", "P", "B", "V", "K", "'", "X", "J", "Q", "Z"]
WAV2VEC2_BASE_960H_PARAMETERS = 94_396_320  # the published size ("94.4M params")


def wav2vec2_base_960h(folder: Path, hidden_size: int = 768, num_layers: int = 12, num_heads: int = 12,
                       intermediate_size: int = 3072, conv_dim: int = 512, seed: int = 0) -> Path:
    """A folder laid out like ``facebook/wav2vec2-base-960h`` (config.json, model.safetensors, vocab.json,
    tokenizer_config.json, special_tokens_map.json, preprocessor_config.json). transformers' ``Wav2Vec2Config``
    defaults are that model's configuration (group-normalized 7-layer conv encoder without bias, 12 x 768
    Transformer, 128 positional-convolution taps in 16 groups); its feature extractor normalizes each input and
    takes no attention mask."""
    from transformers import Wav2Vec2Config, Wav2Vec2CTCTokenizer, Wav2Vec2FeatureExtractor, Wav2Vec2ForCTC

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps({s: i for i, s in enumerate(WAV2VEC2_960H_VOCABULARY)}))
    Wav2Vec2CTCTokenizer(str(folder / "vocab.json"), word_delimiter_token="|", do_lower_case=False).save_pretrained(folder)
    Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16_000, padding_value=0.0, do_normalize=True,
                             return_attention_mask=False).save_pretrained(folder)
    config = Wav2Vec2Config(vocab_size=len(WAV2VEC2_960H_VOCABULARY), pad_token_id=0, bos_token_id=1, eos_token_id=2,
                            hidden_size=hidden_size, num_hidden_layers=num_layers, num_attention_heads=num_heads,
                            intermediate_size=intermediate_size, conv_dim=(conv_dim,) * 7,
                            architectures=["Wav2Vec2ForCTC"])
    torch.manual_seed(seed)
    Wav2Vec2ForCTC(config).save_pretrained(folder)
    return folder


EMFORMER_RNNT_PARAMETERS = 76_738_049  # the recipe's published size ("76.7M parameters"), 4,097 symbols


def emformer_rnnt_librispeech(hub_dir: Path, pieces: int = 4096, seed: int = 0) -> Path:
    """The three files of torchaudio's ``EMFORMER_RNNT_BASE_LIBRISPEECH`` bundle where the bundle keeps them
    (``<hub>/torchaudio/...``): random weights of ``emformer_rnnt_base`` (pieces + 1 symbols, the last the blank),
    feature statistics (80 means and inverse deviations) and a SentencePiece BPE model with the recipe's settings
    (``pieces`` pieces, bos 0, pad 1, eos 2, unk 3, lower-case text), trained here on random letter strings."""
    import io
    import random

    import sentencepiece
    import torchaudio

    bundle = torchaudio.pipelines.EMFORMER_RNNT_BASE_LIBRISPEECH
    root = Path(hub_dir) / "torchaudio"
    paths = {key: root / getattr(bundle, key) for key in ("_rnnt_path", "_global_stats_path", "_sp_model_path")}
    for path in paths.values():
        path.parent.mkdir(parents=True, exist_ok=True)
    generator = random.Random(seed)
    letters = "abcdefghijklmnopqrstuvwxyz'"
    sentences = [" ".join("".join(generator.choice(letters) for _ in range(generator.randint(2, 9)))
                          for _ in range(12)) for _ in range(6_000)]
    model = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(sentence_iterator=iter(sentences), model_writer=model, vocab_size=pieces,
                                             model_type="bpe", character_coverage=1.0, bos_id=0, pad_id=1, eos_id=2,
                                             unk_id=3, minloglevel=2)
    paths["_sp_model_path"].write_bytes(model.getvalue())
    statistics = torch.Generator().manual_seed(seed)
    paths["_global_stats_path"].write_text(json.dumps({
        "mean": (torch.randn(80, generator=statistics) + 5).tolist(),
        "invstddev": (torch.rand(80, generator=statistics) * 0.3 + 0.2).tolist()}))
    torch.manual_seed(seed)
    torch.save(torchaudio.models.emformer_rnnt_base(num_symbols=pieces + 1).state_dict(), paths["_rnnt_path"])
    return Path(hub_dir)
