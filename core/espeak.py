"""Offline speech synthesis with the espeak-ng C library shipped by the PyPI package ``espeakng-loader``.

The library keeps global state, so there is one engine per process (``EspeakEngine.instance()``), and that state
survives from one utterance to the next: the same request gives slightly different samples after other requests.
Audio that must be reproducible is therefore synthesized by a fresh process (``synthesize_fresh``; the corpus
generator gives each chapter one).
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.context import BaseContext

import numpy as np

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_EE_OK = 0
# espeak_PARAMETER enum values (speak_lib.h)
_RATE, _VOLUME, _PITCH, _RANGE = 1, 2, 3, 4

_SYNTH_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)


class SynthesisError(RuntimeError):
    """espeak-ng could not be loaded or refused a request."""


@dataclass(frozen=True)
class VoiceSettings:
    """How one synthetic speaker sounds.

    Attributes:
        language: espeak-ng English voice (accent), e.g. ``"en-us"``, ``"en-gb-scotland"``.
        variant: voice variant file name, e.g. ``"m3"`` or ``"f2"``.
        rate: speaking rate in words per minute (espeak-ng accepts 80-450).
        pitch: base pitch, 0-100 (50 is the voice's default).
        pitch_range: pitch range (intonation), 0-100.
    """

    language: str
    variant: str
    rate: int = 175
    pitch: int = 50
    pitch_range: int = 50

    @property
    def espeak_name(self) -> str:
        return f"{self.language}+{self.variant}"


class EspeakEngine:
    """A process-wide espeak-ng engine in synchronous mode returning int16 PCM at ``sample_rate`` Hz."""

    _instance: "EspeakEngine | None" = None
    _instance_pid: int | None = None
    _lock = threading.Lock()

    def __init__(self) -> None:
        try:
            import espeakng_loader
        except ImportError as error:  # pragma: no cover - dependency of the project
            raise SynthesisError("the PyPI package 'espeakng-loader' is required for synthetic speech") from error
        library_path = espeakng_loader.get_library_path()
        data_path = espeakng_loader.get_data_path()
        try:
            self._lib = ctypes.CDLL(library_path)
        except OSError as error:
            raise SynthesisError(f"cannot load espeak-ng from {library_path}: {error}") from error
        lib = self._lib
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_SetSynthCallback.argtypes = [_SYNTH_CALLBACK]
        lib.espeak_SetSynthCallback.restype = None
        lib.espeak_Synth.argtypes = [
            ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
            ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p,
        ]
        lib.espeak_Synth.restype = ctypes.c_int
        lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
        lib.espeak_ng_SetRandSeed.restype = None
        # espeak_Initialize wants the folder that *contains* espeak-ng-data.
        sample_rate = lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, 0, os.path.dirname(data_path).encode(), 0
        )
        if sample_rate <= 0:
            raise SynthesisError(f"espeak_Initialize failed (returned {sample_rate}) with data at {data_path}")
        self.sample_rate: int = sample_rate
        self._chunks: list[np.ndarray] = []
        self._callback = _SYNTH_CALLBACK(self._collect)  # keep a reference: ctypes must not free it
        lib.espeak_SetSynthCallback(self._callback)
        self._voice: VoiceSettings | None = None

    @classmethod
    def instance(cls) -> "EspeakEngine":
        """The engine of the current process (created on first use, re-created after a fork)."""
        with cls._lock:
            if cls._instance is None or cls._instance_pid != os.getpid():
                cls._instance = cls()
                cls._instance_pid = os.getpid()
            return cls._instance

    def _collect(self, wav, num_samples, _events) -> int:
        if num_samples > 0 and wav:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(num_samples,)).copy())
        return 0

    def _set_voice(self, voice: VoiceSettings) -> None:
        if voice == self._voice:
            return
        if self._lib.espeak_SetVoiceByName(voice.espeak_name.encode()) != _EE_OK:
            raise SynthesisError(f"espeak-ng has no voice {voice.espeak_name!r}")
        for parameter, value in ((_RATE, voice.rate), (_PITCH, voice.pitch), (_RANGE, voice.pitch_range)):
            if self._lib.espeak_SetParameter(parameter, int(value), 0) != _EE_OK:
                raise SynthesisError(f"espeak-ng refused parameter {parameter}={value} for {voice}")
        self._voice = voice

    def synthesize(self, text: str, voice: VoiceSettings, seed: int = 0) -> np.ndarray:
        """Speak ``text``; returns int16 PCM samples [T] at ``self.sample_rate`` Hz.

        espeak-ng draws random numbers (aspiration noise, jitter); ``seed`` fixes them, but other state carries over
        from earlier requests in this process (use ``synthesize_fresh`` where that matters).
        """
        with self._lock:
            self._set_voice(voice)
            self._lib.espeak_ng_SetRandSeed(int(seed) & 0x7FFFFFFF)
            self._chunks = []
            encoded = text.encode("utf-8") + b"\0"
            status = self._lib.espeak_Synth(encoded, len(encoded), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
            if status != _EE_OK:
                raise SynthesisError(f"espeak_Synth failed with code {status} for text {text!r}")
            if not self._chunks:
                raise SynthesisError(f"espeak-ng produced no audio for text {text!r} with voice {voice}")
            return np.concatenate(self._chunks).astype(np.int16, copy=False)


def fresh_process_context(preload: Sequence[str] = ()) -> BaseContext:
    """A multiprocessing context whose children start without espeak-ng state: ``forkserver`` (children forked
    from a server that never ran espeak-ng; it imports ``preload`` once) where available, else ``spawn``."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(list(preload))
        return context
    return multiprocessing.get_context("spawn")


def synthesize_fresh(requests: Sequence[tuple[str, VoiceSettings]], seed: int = 0) -> tuple[list[np.ndarray], int]:
    """Speak each ``(text, voice)`` in order in a new process; returns int16 PCM [T] per request and the sample rate
    (Hz). The samples depend on the requests only, not on what this process synthesized before."""
    with fresh_process_context([__name__]).Pool(1) as pool:
        return pool.apply(_synthesize_all, (list(requests), seed))


def _synthesize_all(requests: list[tuple[str, VoiceSettings]], seed: int) -> tuple[list[np.ndarray], int]:
    engine = EspeakEngine.instance()
    return [engine.synthesize(text, voice, seed) for text, voice in requests], engine.sample_rate
