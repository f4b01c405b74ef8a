"""wav2vec 2.0 through ``from_pretrained``: a checkpoint folder in Hugging Face's layout (model + CTC tokenizer with
``|`` word delimiters, like facebook/wav2vec2-base-960h) made here, loaded offline, decoded with its own tokenizer."""

import json

import torch

from lit_modules.models.wav2vec2_ctc import Wav2Vec2CTC


def _save_hub_style_checkpoint(folder):
    from transformers import Wav2Vec2Config, Wav2Vec2CTCTokenizer, Wav2Vec2ForCTC

    symbols = ["<pad>", "<s>", "</s>", "<unk>", "|", "'"] + [chr(c) for c in range(ord("A"), ord("Z") + 1)]
    (folder / "vocab.json").write_text(json.dumps({s: i for i, s in enumerate(symbols)}))
    tokenizer = Wav2Vec2CTCTokenizer(str(folder / "vocab.json"), word_delimiter_token="|")
    config = Wav2Vec2Config(vocab_size=len(symbols), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                            intermediate_size=64, conv_dim=(16,) * 7, feat_extract_norm="layer",
                            do_stable_layer_norm=True, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4,
                            pad_token_id=0)
    torch.manual_seed(0)
    model = Wav2Vec2ForCTC(config)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return model


def test_from_pretrained_folder_loads_and_uses_its_tokenizer(tmp_path):
    original = _save_hub_style_checkpoint(tmp_path).eval()
    loaded = Wav2Vec2CTC(pretrained=str(tmp_path)).eval()
    vocabulary = loaded.vocabulary
    targets, lengths = vocabulary.encode_batch(["open the door", "hi"])
    assert lengths.tolist() == [13, 2]
    assert vocabulary.decode(targets[0].tolist()) == "OPEN THE DOOR"
    assert vocabulary.blank == 0
    waveforms = torch.randn(2, 16000) * 0.1
    with torch.no_grad():
        log_probs, frames = loaded(waveforms, torch.tensor([16000, 16000]))
        reference = original(loaded._inputs(waveforms, torch.tensor([16000, 16000]))[0]).logits.log_softmax(-1)
    assert torch.allclose(log_probs, reference, atol=1e-5)
    assert frames.tolist() == [49, 49]
    assert len(loaded.decode(waveforms, torch.tensor([16000, 12000]))) == 2
    assert loaded.loss(waveforms, torch.tensor([16000, 16000]), ["OPEN THE DOOR", "HI"], reduction="none").shape == (2,)
