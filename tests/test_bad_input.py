"""Every kind of bad corpus input gets an error naming the file and the problem, or a counted skip."""

import numpy as np
import pytest
import soundfile
import torch

from datamodules import LibriSpeechDataModule
from core.audio_io import load_audio
from core.errors import (
    AudioFormatError,
    CorruptAudioError,
    DataError,
    EmptyAudioError,
    MissingAudioError,
    MissingRootError,
    MissingTranscriptError,
    NonFiniteAudioError,
    TranscriptFormatError,
)
from datamodules.librispeech_index import scan_split
from tests.conftest import tone


def _expect(error_type, writer, match):
    with pytest.raises(error_type, match=match) as caught:
        scan_split(writer.root, writer.split)
    return caught.value


def test_corrupt_audio_is_named(corpus_writer):
    corpus_writer.good_utterances(2)
    bad = corpus_writer.chapter_dir() / "11-22-0001.flac"
    bad.write_bytes(b"this is not audio" * 20)
    error = _expect(CorruptAudioError, corpus_writer, "not a readable audio file")
    assert error.path == str(bad)


def test_empty_file_is_named(corpus_writer):
    corpus_writer.good_utterances(2)
    bad = corpus_writer.chapter_dir() / "11-22-0000.flac"
    bad.write_bytes(b"")
    error = _expect(EmptyAudioError, corpus_writer, "empty")
    assert str(bad) in str(error)


def test_file_without_samples_is_named(corpus_writer):
    corpus_writer.good_utterances(1)
    path = corpus_writer.audio("11-22-0001", np.zeros(0, np.float32), suffix=".wav")
    corpus_writer.transcript("11", "22", ["11-22-0000 HELLO", "11-22-0001 WORLD"])
    error = _expect(EmptyAudioError, corpus_writer, "no audio samples")
    assert error.path == str(path)


def test_truncated_file_fails_when_decoded(corpus_writer):
    corpus_writer.good_utterances(1)
    path = corpus_writer.chapter_dir() / "11-22-0000.flac"
    soundfile.write(str(path), tone(2.0) + np.random.default_rng(0).normal(0, 0.05, 32_000).astype(np.float32), 16_000)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    utterances, _ = scan_split(corpus_writer.root, corpus_writer.split)  # the header alone looks fine
    assert len(utterances) == 1
    with pytest.raises(CorruptAudioError, match="damaged or truncated|truncated") as caught:
        load_audio(path)
    assert caught.value.path == str(path)


def test_nan_and_inf_samples_are_named(corpus_writer):
    samples = tone()
    samples[100], samples[200] = np.nan, np.inf
    path = corpus_writer.audio("11-22-0000", samples, subtype="FLOAT", suffix=".wav")
    with pytest.raises(NonFiniteAudioError, match="2 of 8000 samples are NaN or infinite") as caught:
        load_audio(path)
    assert caught.value.path == str(path)


def test_stereo_and_other_rates_convert_by_default_and_error_when_strict(corpus_writer):
    for rate in (8_000, 22_050, 44_100):
        path = corpus_writer.audio(f"11-22-{rate}", tone(0.5, rate), sample_rate=rate)
        waveform = load_audio(path)
        assert waveform.shape == (8_000,)
        with pytest.raises(AudioFormatError, match=f"expected 16000 Hz audio, found {rate} Hz"):
            load_audio(path, format_policy="error")
    stereo = corpus_writer.audio("11-22-9999", tone(0.5, channels=2))
    waveform = load_audio(stereo)
    assert waveform.ndim == 1 and waveform.shape[0] == 8_000
    assert np.allclose(waveform.numpy(), tone(0.5), atol=1e-3)
    with pytest.raises(AudioFormatError, match="expected mono audio, found 2 channels"):
        load_audio(stereo, format_policy="error")


def test_strict_data_module_refuses_a_wrong_rate_at_setup(corpus_writer):
    corpus_writer.good_utterances(1)
    corpus_writer.audio("11-22-0001", tone(0.5, 22_050), sample_rate=22_050)
    corpus_writer.transcript("11", "22", ["11-22-0000 HELLO", "11-22-0001 WORLD"])
    module = LibriSpeechDataModule(root=str(corpus_writer.root), test_splits=["dev-clean"], format_policy="error")
    with pytest.raises(AudioFormatError, match="11-22-0001.flac: expected 16000 Hz audio, found 22050 Hz"):
        module.setup("test")


def test_audio_without_transcript_line(corpus_writer):
    corpus_writer.good_utterances(2)
    orphan = corpus_writer.audio("11-22-0007")
    error = _expect(MissingTranscriptError, corpus_writer, "no line for 11-22-0007")
    assert error.path == str(orphan)


def test_chapter_without_transcript_file(corpus_writer):
    corpus_writer.audio("11-22-0000")
    _expect(MissingTranscriptError, corpus_writer, r"1 audio files but no 11-22\.trans\.txt")


def test_transcript_without_audio(corpus_writer):
    corpus_writer.good_utterances(1)
    transcript = corpus_writer.transcript("11", "22", ["11-22-0000 HELLO", "11-22-0005 GHOST LINE"])
    error = _expect(MissingAudioError, corpus_writer, "transcript for 11-22-0005 but no audio file")
    assert error.path == f"{transcript}:2"


def test_non_utf8_transcript_names_the_line(corpus_writer):
    corpus_writer.audio("11-22-0000")
    corpus_writer.audio("11-22-0001")
    transcript = corpus_writer.transcript("11", "22", b"11-22-0000 HELLO\n11-22-0001 CAF\xe9\n")
    error = _expect(TranscriptFormatError, corpus_writer, "not valid UTF-8")
    assert error.path == f"{transcript}:2"


def test_skip_mode_leaves_out_only_the_undecodable_line_and_counts_it_once(corpus_writer):
    for name in ("11-22-0000", "11-22-0001", "11-22-0002"):
        corpus_writer.audio(name)
    corpus_writer.transcript("11", "22", b"11-22-0000 HELLO\n11-22-0001 CAF\xe9\n11-22-0002 WORLD\n")
    utterances, report = scan_split(corpus_writer.root, corpus_writer.split, on_bad_input="skip")
    assert [u.utterance_id for u in utterances] == ["11-22-0000", "11-22-0002"]
    assert len(report) == 1 and str(report.skipped[0]).endswith(".trans.txt:2: not valid UTF-8 (unexpected end of data "
                                                                 "at byte 14 of the line)")


def test_a_split_whose_every_input_was_skipped_says_so(corpus_writer):
    corpus_writer.audio("11-22-0000")
    corpus_writer.transcript("11", "22", b"11-22-0000 CAF\xe9\n")
    with pytest.raises(DataError, match="all 1 inputs found were skipped as bad"):
        scan_split(corpus_writer.root, corpus_writer.split, on_bad_input="skip")


def test_transcript_line_without_text_and_duplicate_ids(corpus_writer):
    corpus_writer.good_utterances(1)
    corpus_writer.transcript("11", "22", ["11-22-0000"])
    _expect(TranscriptFormatError, corpus_writer, "no transcript")
    corpus_writer.transcript("11", "22", ["11-22-0000 A", "11-22-0000 B"])
    _expect(TranscriptFormatError, corpus_writer, "appears twice")


def test_missing_root_and_split(tmp_path, corpus_writer):
    with pytest.raises(MissingRootError, match="corpus root does not exist"):
        scan_split(tmp_path / "nowhere", "dev-clean")
    corpus_writer.good_utterances(1)
    with pytest.raises(MissingRootError, match=r"split 'test-other' not found; available: \['dev-clean'\]"):
        scan_split(corpus_writer.root, "test-other")
    with pytest.raises(MissingRootError, match="corpus root does not exist"):
        LibriSpeechDataModule(root=str(tmp_path / "nowhere")).setup("test")


def test_skip_mode_logs_and_counts_every_bad_input(corpus_writer, caplog):
    corpus_writer.good_utterances(3)
    (corpus_writer.chapter_dir() / "11-22-0001.flac").write_bytes(b"")  # empty
    corpus_writer.audio("11-22-0009")  # no transcript line
    module = LibriSpeechDataModule(root=str(corpus_writer.root), test_splits=["dev-clean"], on_bad_input="skip",
                                   batch_size=4, bucket_by_length=False)
    module.setup("test")
    assert [u.utterance_id for u in module.utterances["test"]] == ["11-22-0000", "11-22-0002"]
    assert len(module.skip_report) == 2
    assert "skipped 2 bad inputs, kept 2 utterances" in caplog.text
    batch = next(iter(module.test_dataloader()))
    assert batch.utterance_ids == ["11-22-0000", "11-22-0002"]


def test_skip_mode_drops_files_that_fail_to_decode_from_the_batch(corpus_writer, caplog):
    corpus_writer.good_utterances(2)
    samples = tone()
    samples[5] = np.nan
    corpus_writer.audio("11-22-0001", samples, subtype="FLOAT", suffix=".wav")
    (corpus_writer.chapter_dir() / "11-22-0001.flac").unlink()
    module = LibriSpeechDataModule(root=str(corpus_writer.root), test_splits=["dev-clean"], on_bad_input="skip",
                                   batch_size=4, bucket_by_length=False)
    batch = next(iter(module.test_dataloader()))
    assert batch.utterance_ids == ["11-22-0000"]
    assert "11-22-0001.wav: 1 of 8000 samples are NaN" in caplog.text
    verified = LibriSpeechDataModule(root=str(corpus_writer.root), test_splits=["dev-clean"], on_bad_input="skip",
                                     verify_audio=True)
    verified.setup("test")
    assert [u.utterance_id for u in verified.utterances["test"]] == ["11-22-0000"]
    assert len(verified.skip_report) == 1


def test_float_audio_outside_the_unit_range_is_scaled_or_refused(corpus_writer, caplog):
    loud = tone() * 5.0  # peaks at 1.5
    path = corpus_writer.audio("11-22-0000", loud, subtype="FLOAT", suffix=".wav")
    waveform = load_audio(path)
    assert float(waveform.abs().max()) == pytest.approx(1.0)
    assert torch.allclose(waveform, torch.from_numpy(loud) / 1.5, atol=1e-6)  # the shape is kept
    assert "11-22-0000.wav: float samples reach 1.5, outside [-1, 1]: scaled down" in caplog.text
    with pytest.raises(AudioFormatError, match=r"11-22-0000.wav: float samples reach 1.5, outside \[-1, 1\]"):
        load_audio(path, format_policy="error")
    inside = corpus_writer.audio("11-22-0001", tone(), subtype="FLOAT", suffix=".wav")
    assert torch.equal(load_audio(inside), torch.from_numpy(tone()))


def test_a_batch_of_only_skipped_utterances_is_an_error_not_an_empty_batch(corpus_writer):
    corpus_writer.good_utterances(2)
    for name in ("11-22-0000", "11-22-0001"):
        samples = tone()
        samples[5] = np.nan
        corpus_writer.audio(name, samples, subtype="FLOAT", suffix=".wav")
        (corpus_writer.chapter_dir() / f"{name}.flac").unlink()
    module = LibriSpeechDataModule(root=str(corpus_writer.root), test_splits=["dev-clean"], on_bad_input="skip",
                                   batch_size=4, bucket_by_length=False)
    with pytest.raises(DataError, match="all 2 utterances of this batch were skipped as bad input"):
        next(iter(module.test_dataloader()))


def test_error_mode_stops_the_loader_with_the_file_name(corpus_writer):
    corpus_writer.good_utterances(1)
    samples = tone()
    samples[5] = np.nan
    corpus_writer.audio("11-22-0000", samples, subtype="FLOAT", suffix=".wav")
    (corpus_writer.chapter_dir() / "11-22-0000.flac").unlink()
    module = LibriSpeechDataModule(root=str(corpus_writer.root), test_splits=["dev-clean"])
    with pytest.raises(NonFiniteAudioError, match="11-22-0000.wav"):
        next(iter(module.test_dataloader()))
    with pytest.raises(NonFiniteAudioError, match="11-22-0000.wav"):
        LibriSpeechDataModule(root=str(corpus_writer.root), test_splits=["dev-clean"], verify_audio=True).setup("test")


def test_bad_module_arguments_are_refused():
    with pytest.raises(ValueError, match="on_bad_input"):
        LibriSpeechDataModule(on_bad_input="ignore")
    with pytest.raises(ValueError, match="format_policy"):
        LibriSpeechDataModule(format_policy="maybe")
    with pytest.raises(ValueError, match="batch_size"):
        LibriSpeechDataModule(batch_size=0)
