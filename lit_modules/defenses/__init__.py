"""Preprocessing defenses: modules mapping (waveforms [B, T], lengths [B]) -> (waveforms, lengths)."""

from lit_modules.defenses.down_sampling import DownSampling
from lit_modules.defenses.local_smoothing import LocalSmoothing

__all__ = ["DownSampling", "LocalSmoothing"]
