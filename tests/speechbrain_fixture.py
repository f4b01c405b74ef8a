"""Builds a small SpeechBrain ``EncoderASR`` folder (hyperparams.yaml + pretrainer files), as a hub model is laid out."""

from __future__ import annotations

from pathlib import Path

import torch

HPARAMS = """\
n_mels: 40
encoder: !new:speechbrain.nnet.containers.LengthsCapableSequential
    input_shape: [null, null]
    compute_features: !new:speechbrain.lobes.features.Fbank
        n_mels: !ref <n_mels>
    linear: !new:speechbrain.nnet.linear.Linear
        input_size: !ref <n_mels>
        n_neurons: 29
    log_softmax: !new:speechbrain.nnet.activations.Softmax
        apply_log: True
decoding_function: !name:speechbrain.decoders.ctc_greedy_decode
    blank_id: 0
tokenizer: !new:speechbrain.dataio.encoder.CTCTextEncoder
modules:
    encoder: !ref <encoder>
pretrainer: !new:speechbrain.utils.parameter_transfer.Pretrainer
    loadables:
        encoder: !ref <encoder>
        tokenizer: !ref <tokenizer>
"""


def build_speechbrain_encoder_asr(folder: Path, seed: int = 0) -> Path:
    """Write ``hyperparams.yaml``, ``encoder.ckpt`` and ``tokenizer.ckpt`` (blank + space + ' + A-Z) into ``folder``."""
    from hyperpyyaml import load_hyperpyyaml
    from speechbrain.dataio.encoder import CTCTextEncoder

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "hyperparams.yaml").write_text(HPARAMS, encoding="utf-8")
    hparams = load_hyperpyyaml(HPARAMS)
    torch.manual_seed(seed)
    encoder = hparams["encoder"]
    encoder(torch.zeros(1, 1600), torch.ones(1))  # materialize lazily-shaped layers
    with torch.no_grad():
        for parameter in encoder.parameters():
            parameter.normal_(0, 0.5)
    torch.save(encoder.state_dict(), folder / "encoder.ckpt")
    tokenizer = CTCTextEncoder()
    tokenizer.insert_blank(index=0)
    tokenizer.update_from_iterable([" ", "'"] + [chr(c) for c in range(ord("A"), ord("Z") + 1)])
    tokenizer.save(folder / "tokenizer.ckpt")
    return folder
