import hashlib
import json
import shutil

import numpy as np
import pytest
import soundfile

from datamodules.librispeech_index import scan_split
from datamodules.synthetic.__main__ import main as corpus_cli
from datamodules.synthetic.corpus_config import SPLITS, SyntheticCorpusConfig
from datamodules.synthetic.generate import generate_corpus
from tests.conftest import TINY_CORPUS


def _audio_digests(root):
    return {p.relative_to(root).as_posix(): hashlib.md5(p.read_bytes()).hexdigest() for p in root.rglob("*.flac")}


def test_layout_sizes_and_speaker_disjoint_splits(tiny_corpus):
    speakers_per_split = {}
    for split in SPLITS:
        utterances, report = scan_split(tiny_corpus, split)
        assert len(report) == 0
        expected = TINY_CORPUS.speakers_in(split) * TINY_CORPUS.utterances_per_speaker(split)
        assert len(utterances) == expected
        for u in utterances:
            assert u.audio_path == tiny_corpus / "LibriSpeech" / split / u.speaker_id / u.chapter_id / f"{u.utterance_id}.flac"
            assert u.sample_rate == 16_000 and u.channels == 1
            assert 0.5 < u.duration < 10.0
            assert u.transcript and u.transcript == u.transcript.upper()
        speakers_per_split[split] = {u.speaker_id for u in utterances}
    assert not speakers_per_split["train"] & speakers_per_split["dev"]
    assert not speakers_per_split["train"] & speakers_per_split["test"]
    assert not speakers_per_split["dev"] & speakers_per_split["test"]
    # chapters hold at most utterances_per_chapter utterances: 6 per train speaker -> chapters 1 and 2
    assert {u.chapter_id for u in scan_split(tiny_corpus, "train")[0]} == {"1", "2"}
    assert (tiny_corpus / "LibriSpeech" / "SPEAKERS.TXT").read_text().count("|") >= 2 * 7


def test_audio_is_speech_level_mono_16k(tiny_corpus):
    for path in list(tiny_corpus.rglob("*.flac"))[:5]:
        samples, rate = soundfile.read(str(path), dtype="float32")
        assert rate == 16_000 and samples.ndim == 1
        assert np.isfinite(samples).all() and np.abs(samples).max() <= 0.99 + 1e-4
        assert 0.03 < np.sqrt(np.mean(samples**2)) < 0.15
        leading = np.sqrt(np.mean(samples[:400] ** 2))  # leading pause: only the 35-45 dB noise floor
        assert 0 < leading < 0.05 * np.sqrt(np.mean(samples**2))


def test_marker_records_config_and_statistics(tiny_corpus):
    marker = json.loads((tiny_corpus / "corpus.json").read_text())
    assert marker["config"] == TINY_CORPUS.to_dict()
    assert marker["statistics"]["total"]["utterances"] == TINY_CORPUS.total_utterances
    assert marker["statistics"]["total"]["vocabulary"] > 10
    assert marker["statistics"]["total"]["hours"] > 0


def test_rerun_is_idempotent(tiny_corpus):
    before = {p: p.stat().st_mtime_ns for p in tiny_corpus.rglob("*")}
    summary = generate_corpus(TINY_CORPUS, tiny_corpus, progress=False)
    assert summary["statistics"]["total"]["utterances"] == TINY_CORPUS.total_utterances
    assert {p: p.stat().st_mtime_ns for p in tiny_corpus.rglob("*")} == before


def test_another_config_in_the_same_folder_is_refused(tiny_corpus):
    with pytest.raises(ValueError, match="another configuration"):
        generate_corpus(SyntheticCorpusConfig(seed=123), tiny_corpus, progress=False)


def test_interrupted_generation_resumes_and_reproduces_the_audio(tiny_corpus, tmp_path):
    copy = tmp_path / "corpus"
    shutil.copytree(tiny_corpus, copy)
    expected = _audio_digests(copy)
    # Simulate a crash: the marker is never written, one chapter lost its transcript and an audio file.
    (copy / "corpus.json").unlink()
    chapter = copy / "LibriSpeech" / "train" / "1000" / "1"
    next(chapter.glob("*.trans.txt")).unlink()
    next(chapter.glob("*.flac")).unlink()
    summary = generate_corpus(TINY_CORPUS, copy, num_workers=1, progress=False)
    assert summary["generation"]["written"] == 4  # only the unfinished chapter is rendered again
    assert summary["generation"]["reused"] == TINY_CORPUS.total_utterances - 4
    assert _audio_digests(copy) == expected


def test_audio_is_reproducible_whatever_ran_before_and_however_many_workers(tiny_corpus, tmp_path):
    from core.espeak import EspeakEngine, VoiceSettings

    EspeakEngine.instance().synthesize("leave some state behind", VoiceSettings("en-us", "m1"))  # dirty this process
    generate_corpus(TINY_CORPUS, tmp_path, num_workers=1, progress=False)
    assert _audio_digests(tmp_path) == _audio_digests(tiny_corpus)


def test_noise_option_adds_noise_to_silence(tmp_path):
    config = SyntheticCorpusConfig(train_speakers=1, dev_speakers=1, test_speakers=1, train_utterances_per_speaker=1,
                                   eval_utterances_per_speaker=1, noise_snr_db=20.0)
    generate_corpus(config, tmp_path, num_workers=1, progress=False)
    samples, _ = soundfile.read(str(next(tmp_path.rglob("*.flac"))), dtype="float32")
    assert np.abs(samples[:400]).max() > 1e-3


def test_cli_generates_and_prints_statistics(tmp_path, capsys):
    corpus_cli(["--out", str(tmp_path), "--train-speakers", "1", "--dev-speakers", "1", "--test-speakers", "1",
                "--train-utterances-per-speaker", "2", "--eval-utterances-per-speaker", "1", "--workers", "1"])
    printed = capsys.readouterr().out
    assert "| train | 2 | 1 |" in printed and "| **total** | 4 | 3 |" in printed
    assert "vocabulary" in printed and "utt/s" in printed
    corpus_cli(["--out", str(tmp_path), "--train-speakers", "1", "--dev-speakers", "1", "--test-speakers", "1",
                "--train-utterances-per-speaker", "2", "--eval-utterances-per-speaker", "1", "--brief"])
    assert capsys.readouterr().out == f"synthetic corpus: 4 utterances, 3 speakers, 0.00 h at {tmp_path}\n"  # make demo


def test_bad_config_values_are_refused():
    with pytest.raises(ValueError, match="train_speakers"):
        SyntheticCorpusConfig(train_speakers=0)
    with pytest.raises(ValueError, match="sample_rate"):
        SyntheticCorpusConfig(sample_rate=44_100)
