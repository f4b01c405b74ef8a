"""Conventions every package shares: audio I/O, transcript normalization, the typed batch, errors, the cache folder,
speech synthesis (espeak-ng: the synthetic corpus and the carrier attack speak with it),
config hashing and seeded draws. Imports no other package of the project; every package may import it."""
