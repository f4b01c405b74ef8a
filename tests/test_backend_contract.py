"""One contract for every ASR backend: shapes, lengths, padding invariance, determinism, frozen, no gradients."""

from __future__ import annotations

import pytest
import torch

from core.batch import pad_waveforms
from core.errors import DataError
from datamodules.librispeech_index import scan_split
from datamodules.speech_dataset import UtteranceDataset
from core.text import normalize_transcript
from lit_modules.backends.base import ASRBackend, Capability, UnsupportedCapabilityError

BACKENDS = ["conformer_ctc", "rnnt", "wav2vec2", "wav2vec2_base_960h", "emformer_rnnt_librispeech",
            "speechbrain_conformer_librispeech",
            # random weights emit up to 6 tokens a frame through its Python greedy loop: ~50 s, so -m slow (its
            # transcript and score are checked against SpeechBrain's own streaming in test_pretrained_replicas.py)
            pytest.param("speechbrain_streaming_conformer_librispeech", marks=pytest.mark.slow),
            "speechbrain_crdnn_librispeech", "whisper", "speechbrain", "pocketsphinx"]


def _make_backend(name: str, folder) -> ASRBackend:
    from lit_modules.backends.trained import TrainedModelBackend

    torch.manual_seed(0)
    if name == "conformer_ctc":
        from lit_modules.models.conformer_ctc import ConformerCTC

        return TrainedModelBackend(ConformerCTC(d_model=48, num_layers=2, num_heads=2))
    if name == "rnnt":
        from lit_modules.models.rnnt import RNNTransducer

        return TrainedModelBackend(RNNTransducer(encoder_layers=1, encoder_dim=48, prediction_dim=32, embedding_dim=16,
                                                 joiner_dim=32))
    if name == "wav2vec2":
        from lit_modules.models.wav2vec2_ctc import Wav2Vec2CTC

        return TrainedModelBackend(Wav2Vec2CTC(hidden_size=48, num_layers=2, num_heads=2, intermediate_size=96,
                                               conv_channels=32))
    if name == "wav2vec2_base_960h":  # the public model's layout and settings (no attention mask), narrower
        from lit_modules.backends.registry import load_backend
        from lit_modules.backends.replicas import wav2vec2_base_960h

        folder = wav2vec2_base_960h(folder / "replica", hidden_size=48, num_layers=2, num_heads=2, intermediate_size=96,
                                    conv_dim=32)
        return load_backend("wav2vec2_base_960h", source=str(folder))
    if name == "emformer_rnnt_librispeech":  # the bundle's files, full size, where torchaudio keeps them
        from lit_modules.backends.registry import load_backend
        from lit_modules.backends.replicas import emformer_rnnt_librispeech

        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("TORCH_HOME", str(folder))
            emformer_rnnt_librispeech(folder / "hub")
            return load_backend("emformer_rnnt_librispeech")
    if name == "speechbrain_conformer_librispeech":  # the hub model's layout and decoder, narrower
        from lit_modules.backends.registry import load_backend
        from lit_modules.backends.replicas import SPEECHBRAIN_CONFORMER_TINY, speechbrain_conformer_librispeech

        folder = speechbrain_conformer_librispeech(folder / "replica", beam_size=2, **SPEECHBRAIN_CONFORMER_TINY)
        return load_backend("speechbrain_conformer_librispeech", source=str(folder))
    if name == "speechbrain_streaming_conformer_librispeech":  # StreamingASR transducer layout, narrower
        from lit_modules.backends.registry import load_backend
        from lit_modules.backends.replicas import (SPEECHBRAIN_STREAMING_TINY,
                                                   speechbrain_streaming_conformer_librispeech)

        folder = speechbrain_streaming_conformer_librispeech(folder / "replica", **SPEECHBRAIN_STREAMING_TINY)
        return load_backend("speechbrain_streaming_conformer_librispeech", source=str(folder))
    if name == "speechbrain_crdnn_librispeech":  # CRDNN + attentional GRU decoder layout, narrower
        from lit_modules.backends.registry import load_backend
        from lit_modules.backends.replicas import SPEECHBRAIN_CRDNN_TINY, speechbrain_crdnn_librispeech

        folder = speechbrain_crdnn_librispeech(folder / "replica", beam_size=2, **SPEECHBRAIN_CRDNN_TINY)
        return load_backend("speechbrain_crdnn_librispeech", source=str(folder))
    if name == "speechbrain":
        from lit_modules.backends.speechbrain_backend import SpeechBrainBackend
        from tests.speechbrain_fixture import build_speechbrain_encoder_asr

        return SpeechBrainBackend(str(build_speechbrain_encoder_asr(folder / "sb_model")), interface="EncoderASR")
    if name == "whisper":
        from lit_modules.backends.whisper import WhisperBackend

        return WhisperBackend(min_context_s=10.0)  # the trimmed window keeps the suite fast
    if name == "pocketsphinx":
        from lit_modules.backends.pocketsphinx_backend import PocketSphinxBackend

        return PocketSphinxBackend()
    raise KeyError(name)


@pytest.fixture(scope="module", params=BACKENDS)
def backend(request, tmp_path_factory) -> ASRBackend:
    return _make_backend(request.param, tmp_path_factory.mktemp(request.param))


@pytest.fixture(scope="module")
def speech(tiny_corpus) -> list[torch.Tensor]:
    """The shortest and the longest synthetic test utterance, [T] each."""
    utterances, _ = scan_split(tiny_corpus, "test")
    dataset = UtteranceDataset(sorted(utterances, key=lambda u: u.num_frames))
    return [dataset[0].waveform, dataset[len(dataset) - 1].waveform]


def test_transcribe_returns_normalized_text_deterministically(backend, speech):
    waveforms, lengths = pad_waveforms(speech)
    first = backend.transcribe(waveforms, lengths)
    assert len(first) == len(speech)
    assert all(isinstance(t, str) and t == normalize_transcript(t) for t in first)
    assert backend.transcribe(waveforms, lengths) == first


def test_one_pass_transcripts_and_activations_match_separate_calls(backend, speech):
    """``transcribe_with_hidden`` (one shared forward pass where the backend can) gives what ``transcribe`` and
    ``hidden`` give separately, for the last layer and an inner one."""
    waveforms, lengths = pad_waveforms(speech)
    if Capability.HIDDEN not in backend.capabilities:  # e.g. PocketSphinx: it must say so, not return something
        with pytest.raises(UnsupportedCapabilityError, match="hidden"):
            backend.transcribe_with_hidden(waveforms, lengths, "any")
        return
    for layer in {backend.hidden_layers[-1], backend.hidden_layers[0]}:
        texts, activations, frames = backend.transcribe_with_hidden(waveforms, lengths, layer)
        expected, expected_frames = backend.hidden(waveforms, lengths, layer)
        assert texts == backend.transcribe(waveforms, lengths)
        assert torch.equal(frames, expected_frames)
        assert torch.allclose(activations, expected, atol=1e-5)


@pytest.mark.parametrize("name", ["conformer_ctc", "rnnt", "wav2vec2"])
def test_trained_backends_share_one_encoder_pass_between_transcript_and_any_layer(name, speech, tmp_path):
    """The detector's activations of any layer come from the same encoder pass as the transcript (a second pass
    measured 2.2x the greedy wav2vec 2.0's time; the detector works best on inner layers, docs/detector.md)."""
    backend = _make_backend(name, tmp_path)
    first_stage = backend.model.model.wav2vec2 if name == "wav2vec2" else backend.model.subsampling
    calls = []
    first_stage.register_forward_hook(lambda *args: calls.append(1))
    waveforms, lengths = pad_waveforms(speech)
    for layer in backend.hidden_layers:
        calls.clear()
        texts, activations, _ = backend.transcribe_with_hidden(waveforms, lengths, layer)
        assert len(calls) == 1 and len(texts) == len(speech) and activations.shape[0] == len(speech)


def test_padding_does_not_change_results(backend, speech):
    waveforms, lengths = pad_waveforms(speech)
    batched = backend.transcribe(waveforms, lengths)
    alone = [backend.transcribe(w[None], torch.tensor([w.shape[0]]))[0] for w in speech]
    assert batched == alone
    if Capability.SCORE in backend.capabilities:
        texts = ["OPEN THE DOOR"] * len(speech)
        batched_scores = backend.score(waveforms, lengths, texts)
        alone_scores = torch.cat([backend.score(w[None], torch.tensor([w.shape[0]]), texts[:1]) for w in speech])
        assert torch.allclose(batched_scores, alone_scores, rtol=1e-3, atol=1e-3)
    if Capability.HIDDEN in backend.capabilities:
        layer = backend.hidden_layers[-1]
        states, frames = backend.hidden(waveforms, lengths, layer)
        assert states.ndim == 3 and states.shape[0] == len(speech) and states.shape[1] == int(frames.max())
        for index, waveform in enumerate(speech):
            single, single_frames = backend.hidden(waveform[None], torch.tensor([waveform.shape[0]]), layer)
            assert int(single_frames[0]) == int(frames[index])
            valid = int(frames[index])
            assert torch.allclose(states[index, :valid], single[0, :valid], atol=1e-3, rtol=1e-3)
            assert torch.all(states[index, valid:] == 0)


def test_the_models_own_transcript_scores_better_than_another_text(backend, speech):
    """Scores and transcripts come from the same model: the greedy transcript is more likely than a random text of
    the same shape (its letters replaced by random letters, spaces kept; untrained models decode long strings)."""
    if Capability.SCORE not in backend.capabilities:
        return
    waveforms, lengths = pad_waveforms(speech)
    own = [text or "A" for text in backend.transcribe(waveforms, lengths)]
    generator = torch.Generator().manual_seed(0)
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    other = ["".join(c if c == " " else letters[int(torch.randint(26, (1,), generator=generator))] for c in text)
             for text in own]
    assert (backend.score(waveforms, lengths, own) < backend.score(waveforms, lengths, other)).all(), own


def test_backend_is_frozen_and_gradients_never_flow(backend, speech):
    assert all(not p.requires_grad for p in backend.parameters())
    backend.train()
    assert not backend.training and all(not m.training for m in backend.modules())
    waveforms, lengths = pad_waveforms(speech)
    waveforms.requires_grad_(True)
    if Capability.SCORE in backend.capabilities:
        scores = backend.score(waveforms, lengths, ["HELLO"] * len(speech))
        assert scores.grad_fn is None and not scores.requires_grad
        assert scores.shape == (len(speech),) and torch.isfinite(scores).all() and (scores > 0).all()
    if Capability.HIDDEN in backend.capabilities:
        states, _ = backend.hidden(waveforms, lengths, backend.hidden_layers[0])
        assert states.grad_fn is None
    assert all(p.grad is None for p in backend.parameters())


def test_unsupported_capabilities_say_so(backend, speech):
    waveforms, lengths = pad_waveforms(speech)
    if Capability.HIDDEN not in backend.capabilities:
        assert backend.hidden_layers == []
        with pytest.raises(UnsupportedCapabilityError, match="hidden"):
            backend.hidden(waveforms, lengths, "encoder.output")
    else:
        with pytest.raises(ValueError, match="unknown layer"):
            backend.hidden(waveforms, lengths, "no.such.layer")
    if Capability.SCORE not in backend.capabilities:
        with pytest.raises(UnsupportedCapabilityError, match="score"):
            backend.score(waveforms, lengths, ["A"] * len(speech))


def test_bad_input_is_refused_clearly(backend, speech):
    with pytest.raises(DataError, match="too short to recognize"):
        backend.transcribe(torch.zeros(1, 800), torch.tensor([800]))
    noisy = speech[0].clone()
    noisy[10] = float("nan")
    with pytest.raises(DataError, match="NaN"):
        backend.transcribe(noisy[None], torch.tensor([noisy.shape[0]]))
    with pytest.raises(ValueError, match=r"\[B, T\]"):
        backend.transcribe(speech[0], torch.tensor([speech[0].shape[0]]))
    with pytest.raises(ValueError, match="exceeds the padded size"):
        backend.transcribe(speech[0][None], torch.tensor([speech[0].shape[0] + 5]))
