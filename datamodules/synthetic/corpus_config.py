"""What synthetic corpus to generate. Equal configurations give byte-identical transcripts and audio plans."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from core.hashing import config_hash

SPLITS = ("train", "dev", "test")


@dataclass(frozen=True)
class SyntheticCorpusConfig:
    """Size, text and sound of the synthetic LibriSpeech-layout corpus (the embedded default data).

    Speakers are disjoint across the ``train`` / ``dev`` / ``test`` splits (no shared voice).

    Attributes:
        train_speakers, dev_speakers, test_speakers: speakers per split.
        train_utterances_per_speaker: utterances each training speaker reads.
        eval_utterances_per_speaker: utterances each dev / test speaker reads.
        utterances_per_chapter: chapter size (LibriSpeech groups a speaker's recordings in chapters).
        command_fraction: share of voice-assistant commands; the rest are read sentences.
        noise_snr_db: white noise mixed in at an SNR drawn from [noise_snr_db, noise_snr_db + 10] dB per utterance
            (default 35: a recording's noise floor, like read speech; None = espeak-ng's digital silence, which any
            perturbation disturbs and which makes MFCC similarity and detection unrealistically sensitive).
        seed: seeds speakers, texts, levels, padding and noise.
        sample_rate: output rate in Hz.
    """

    train_speakers: int = 80
    dev_speakers: int = 16
    test_speakers: int = 16
    train_utterances_per_speaker: int = 50
    eval_utterances_per_speaker: int = 25
    utterances_per_chapter: int = 25
    command_fraction: float = 0.7
    noise_snr_db: float | None = 35.0
    seed: int = 0
    sample_rate: int = 16_000

    def __post_init__(self) -> None:
        for name in ("train_speakers", "dev_speakers", "test_speakers"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("train_utterances_per_speaker", "eval_utterances_per_speaker", "utterances_per_chapter"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0.0 <= self.command_fraction <= 1.0:
            raise ValueError(f"command_fraction must be in [0, 1], got {self.command_fraction}")
        if self.sample_rate not in (8_000, 16_000, 22_050):
            raise ValueError(f"sample_rate must be 8000, 16000 or 22050 Hz, got {self.sample_rate}")

    def speakers_in(self, split: str) -> int:
        return {"train": self.train_speakers, "dev": self.dev_speakers, "test": self.test_speakers}[split]

    def utterances_per_speaker(self, split: str) -> int:
        return self.train_utterances_per_speaker if split == "train" else self.eval_utterances_per_speaker

    @property
    def total_utterances(self) -> int:
        return sum(self.speakers_in(s) * self.utterances_per_speaker(s) for s in SPLITS)

    def to_dict(self) -> dict:
        return asdict(self)

    def fingerprint(self) -> str:
        """Short stable hash of the configuration (names the default cache folder)."""
        return config_hash(self.to_dict(), length=10)
