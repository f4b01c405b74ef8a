"""Frozen ASR backends behind one interface (``ASRBackend``): transcribe, hidden activations, text scores."""

from lit_modules.backends.base import ASRBackend, Capability, UnsupportedCapabilityError

__all__ = ["ASRBackend", "Capability", "UnsupportedCapabilityError"]
