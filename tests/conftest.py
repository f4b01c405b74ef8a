"""Shared fixtures: a tiny synthetic corpus, the real mini corpus (skipped when absent), a corpus writer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile

from core.cache_dir import CACHE_ENV_VAR
from datamodules.synthetic.corpus_config import SyntheticCorpusConfig
from datamodules.synthetic.generate import generate_corpus

REPO_ROOT = Path(__file__).resolve().parent.parent
REAL_SPEECH_ROOT = REPO_ROOT.parent / "shared" / "data" / "real-speech-mini"

TINY_CORPUS = SyntheticCorpusConfig(
    train_speakers=3, dev_speakers=2, test_speakers=2,
    train_utterances_per_speaker=6, eval_utterances_per_speaker=3, utterances_per_chapter=4, seed=7,
)


@pytest.fixture(scope="session", autouse=True)
def session_cache(tmp_path_factory) -> Path:
    """One temporary project cache for the whole test session (converted models, corpora, campaigns, results):
    tests never write into the repository's ``.cache/``. Processes the tests start inherit it."""
    root = tmp_path_factory.mktemp("project-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(CACHE_ENV_VAR, str(root))
        yield root


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory) -> Path:
    """A finished tiny synthetic corpus (read-only for tests: copy it before changing anything)."""
    root = tmp_path_factory.mktemp("tiny_corpus")
    generate_corpus(TINY_CORPUS, root, num_workers=2, progress=False)
    return root


@pytest.fixture
def real_speech_root() -> Path:
    """The 12 real recordings in shared/data (LibriSpeech layout); skips when this workspace lacks them."""
    if not (REAL_SPEECH_ROOT / "LibriSpeech" / "dev-clean").is_dir():
        pytest.skip(f"real speech not available at {REAL_SPEECH_ROOT}")
    return REAL_SPEECH_ROOT


def tone(seconds: float = 0.5, sample_rate: int = 16_000, frequency: float = 440.0, channels: int = 1) -> np.ndarray:
    """A sine tone [T] (or [T, channels]) at amplitude 0.3."""
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    mono = (0.3 * np.sin(2 * np.pi * frequency * t)).astype(np.float32)
    return mono if channels == 1 else np.stack([mono] * channels, axis=1)


class CorpusWriter:
    """Builds small LibriSpeech-layout corpora in a folder, file by file, for bad-input tests."""

    def __init__(self, root: Path, split: str = "dev-clean") -> None:
        self.root = root
        self.split = split

    def chapter_dir(self, speaker: str = "11", chapter: str = "22") -> Path:
        folder = self.root / "LibriSpeech" / self.split / speaker / chapter
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def audio(self, utterance_id: str, samples: np.ndarray | None = None, sample_rate: int = 16_000,
              subtype: str = "PCM_16", suffix: str = ".flac") -> Path:
        speaker, chapter, _ = utterance_id.split("-")
        path = self.chapter_dir(speaker, chapter) / f"{utterance_id}{suffix}"
        soundfile.write(str(path), tone() if samples is None else samples, sample_rate, subtype=subtype)
        return path

    def transcript(self, speaker: str, chapter: str, lines: list[str] | bytes) -> Path:
        path = self.chapter_dir(speaker, chapter) / f"{speaker}-{chapter}.trans.txt"
        data = lines if isinstance(lines, bytes) else ("\n".join(lines) + "\n").encode("utf-8")
        path.write_bytes(data)
        return path

    def good_utterances(self, count: int = 2, speaker: str = "11", chapter: str = "22") -> list[str]:
        ids = [f"{speaker}-{chapter}-{i:04d}" for i in range(count)]
        for utterance_id in ids:
            self.audio(utterance_id)
        self.transcript(speaker, chapter, [f"{i} HELLO WORLD" for i in ids])
        return ids


@pytest.fixture
def corpus_writer(tmp_path) -> CorpusWriter:
    return CorpusWriter(tmp_path)


@pytest.fixture(scope="session")
def attacker():
    """One attacker process (no transfer prior) for the campaigns of the whole test session."""
    from attacks.attacker_process import AttackerProcess

    with AttackerProcess() as attacker:
        yield attacker
