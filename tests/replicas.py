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
