"""Reading audio files (through soundfile) into the project's waveform convention.

Convention: mono float32 waveforms in [-1, 1] at 16 kHz, shape [T] (T samples).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import soundfile
import torch
import torchaudio.functional as audio_functional

from core.errors import AudioFormatError, CorruptAudioError, EmptyAudioError, NonFiniteAudioError

log = logging.getLogger(__name__)
FormatPolicy = Literal["convert", "error"]
TARGET_SAMPLE_RATE = 16_000


@dataclass(frozen=True)
class AudioHeader:
    """What a file's header says, read without decoding the samples."""

    num_frames: int
    sample_rate: int
    channels: int

    @property
    def duration(self) -> float:
        """Duration in seconds."""
        return self.num_frames / self.sample_rate


def read_header(path: str | Path) -> AudioHeader:
    """Read an audio file's header; raises ``EmptyAudioError`` / ``CorruptAudioError`` naming the file."""
    path = Path(path)
    if path.stat().st_size == 0:
        raise EmptyAudioError(path, "the file is empty (0 bytes)")
    try:
        info = soundfile.info(str(path))
    except (soundfile.LibsndfileError, RuntimeError) as error:
        raise CorruptAudioError(path, f"not a readable audio file ({error})") from error
    if info.frames <= 0:
        raise EmptyAudioError(path, "the file holds no audio samples")
    return AudioHeader(num_frames=int(info.frames), sample_rate=int(info.samplerate), channels=int(info.channels))


def resample(waveform: torch.Tensor, orig_sample_rate: int, new_sample_rate: int = TARGET_SAMPLE_RATE) -> torch.Tensor:
    """Band-limited resampling (torchaudio sinc interpolation); waveform [..., T]."""
    if orig_sample_rate == new_sample_rate:
        return waveform
    return audio_functional.resample(waveform, orig_sample_rate, new_sample_rate)


def load_audio(
    path: str | Path,
    sample_rate: int = TARGET_SAMPLE_RATE,
    format_policy: FormatPolicy = "convert",
) -> torch.Tensor:
    """Decode an audio file into a mono float32 waveform [T] at ``sample_rate`` Hz.

    Args:
        path: audio file (any format libsndfile reads: FLAC, WAV, OGG, ...).
        sample_rate: the rate the caller wants, in Hz.
        format_policy: ``"convert"`` averages channels to mono, resamples, and scales float audio that leaves
            [-1, 1] down by its peak (with a warning naming the file); ``"error"`` refuses multi-channel audio,
            another sample rate or out-of-range floats with an ``AudioFormatError``.

    Raises:
        EmptyAudioError, CorruptAudioError (undecodable or truncated), NonFiniteAudioError, AudioFormatError.
    """
    path = Path(path)
    header = read_header(path)
    try:
        samples, file_rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError) as error:
        raise CorruptAudioError(path, f"decoding failed, the file is damaged or truncated ({error})") from error
    if samples.shape[0] < header.num_frames:
        raise CorruptAudioError(
            path, f"truncated: the header announces {header.num_frames} samples but only {samples.shape[0]} decode"
        )
    if samples.shape[0] == 0:
        raise EmptyAudioError(path, "the file holds no audio samples")
    bad = int(np.size(samples) - np.count_nonzero(np.isfinite(samples)))
    if bad:
        raise NonFiniteAudioError(path, f"{bad} of {samples.size} samples are NaN or infinite")
    if format_policy not in ("convert", "error"):
        raise ValueError(f"format_policy must be 'convert' or 'error', got {format_policy!r}")
    peak = float(np.abs(samples).max())
    if format_policy == "error":
        if samples.shape[1] != 1:
            raise AudioFormatError(path, f"expected mono audio, found {samples.shape[1]} channels")
        if file_rate != sample_rate:
            raise AudioFormatError(path, f"expected {sample_rate} Hz audio, found {file_rate} Hz")
        if peak > 1.0:
            raise AudioFormatError(path, f"float samples reach {peak:.4g}, outside [-1, 1]")
    elif peak > 1.0:
        log.warning("%s: float samples reach %.4g, outside [-1, 1]: scaled down by that peak", path, peak)
        samples = samples / peak
    waveform = torch.from_numpy(samples).mean(dim=1)
    return resample(waveform, int(file_rate), sample_rate).contiguous()
