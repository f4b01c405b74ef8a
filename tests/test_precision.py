"""bfloat16 forward passes (the ``paper`` preset's GPU setting) agree with float32: measured on CPU, where autocast
runs the same bf16 matrix products (issue: real recognizers, GPU readiness)."""

from __future__ import annotations

import pytest
import torch

from lit_modules.backends.registry import load_backend
from lit_modules.backends import replicas


def _scores_both_ways(backend, waveforms, lengths, texts):
    backend.set_precision("32")
    full = backend.score(waveforms, lengths, texts)
    backend.set_precision("bf16")
    half = backend.score(waveforms, lengths, texts)
    backend.set_precision("32")
    return full, half


def test_whisper_in_bfloat16_transcribes_real_speech_alike_and_scores_within_three_percent(real_speech_root):
    from core.audio_io import load_audio

    waveform = load_audio(next((real_speech_root / "LibriSpeech" / "dev-clean").rglob("*.flac")))[None]
    lengths = torch.tensor([waveform.shape[1]])
    backend = load_backend("whisper", min_context_s=10)
    text = backend.transcribe(waveform, lengths)
    assert backend.set_precision("bf16").transcribe(waveform, lengths) == text
    full, half = _scores_both_ways(backend, waveform.repeat(2, 1), lengths.repeat(2), [text[0], "OPEN THE DOOR"])
    assert torch.allclose(half, full, rtol=0.03, atol=0.2), (full, half)
    assert not torch.equal(half, full)  # bf16 really ran


@pytest.mark.parametrize("family", ["hf_ctc", "speechbrain"])
def test_pretrained_families_score_in_bfloat16_within_two_percent_of_float32(family, tmp_path):
    if family == "hf_ctc":
        folder = replicas.wav2vec2_base_960h(tmp_path / "replica", hidden_size=32, num_layers=2, num_heads=2,
                                             intermediate_size=32, conv_dim=16)
        backend = load_backend("wav2vec2_base_960h", source=str(folder), precision="bf16")
    else:
        folder = replicas.speechbrain_conformer_librispeech(tmp_path / "replica", beam_size=2,
                                                           **replicas.SPEECHBRAIN_CONFORMER_TINY)
        backend = load_backend("speechbrain_conformer_librispeech", source=str(folder), precision="bf16")
    assert backend.precision == "bf16"
    generator = torch.Generator().manual_seed(0)
    waveforms, lengths = torch.randn(2, 24_000, generator=generator) * 0.1, torch.tensor([24_000, 20_000])
    full, half = _scores_both_ways(backend, waveforms, lengths, ["OPEN THE DOOR", "TURN ON THE LIGHT"])
    assert torch.isfinite(half).all() and torch.allclose(half, full, rtol=0.02), (full, half)
    assert not torch.equal(half, full)


def test_an_unknown_precision_is_refused():
    with pytest.raises(ValueError, match="precision must be one of"):
        load_backend("whisper", min_context_s=10, precision="int8")
