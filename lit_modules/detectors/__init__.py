"""Adversarial-example detectors: map a batch of waveforms to scores (higher = more likely adversarial)."""

from lit_modules.detectors.base import Detector

__all__ = ["Detector"]
