"""The embedded default data: a synthetic speech corpus spoken by espeak-ng, in LibriSpeech layout."""
