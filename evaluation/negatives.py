"""Harder benign inputs than white noise, for Task 1's false-positive columns: a detector that flags "anything
unusual" rather than attacks is exposed by them.

- ``babble``: each clean test utterance with another one (the next in order, repeated or cut to its length) mixed
  in at a seeded SNR drawn uniformly in ``babble_snr_db`` (default 10-20 dB): overlapping speech, as in a room;
- ``LS clean`` / ``DS clean``: each clean test utterance through the local-smoothing / down-sampling transforms
  (the preprocessing defenses), which change the signal as much as a perturbation does but carry no attack.

They are written once as 16 kHz float WAV files under ``<cache>/negatives/<key>/`` (the key follows the clean
examples and the settings) and served as ``LabelledExample`` with label 0.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import soundfile
import torch

from core.audio_io import load_audio
from core.hashing import config_hash
from datamodules.adversarial.datamodule import LabelledExample

KINDS = ("babble", "LS clean", "DS clean")


def babble(clean: torch.Tensor, other: torch.Tensor, snr_db: float) -> torch.Tensor:
    """``clean`` [T] plus ``other`` [T'] (repeated or cut to T samples) at ``snr_db`` dB below it."""
    repeats = -(-clean.numel() // max(1, other.numel()))
    other = other.repeat(repeats)[: clean.numel()]
    scale = (clean.pow(2).mean() / other.pow(2).mean().clamp(min=1e-12) / 10 ** (snr_db / 10)).sqrt()
    return clean + scale * other


def hard_negatives(clean: list[LabelledExample], cache_root: Path, sample_rate: int = 16_000, seed: int = 0,
                   babble_snr_db: tuple[float, float] = (10.0, 20.0)) -> dict[str, list[LabelledExample]]:
    """{kind: benign examples} of ``KINDS`` built from the clean examples (babble needs at least two)."""
    from lit_modules.defenses import DownSampling, LocalSmoothing

    key = config_hash({"clean": [e.example_id for e in clean], "seed": seed, "babble_snr_db": list(babble_snr_db),
                       "sample_rate": sample_rate})
    folder = Path(cache_root) / "negatives" / key
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    transforms = {"LS clean": LocalSmoothing(), "DS clean": DownSampling()}
    out: dict[str, list[LabelledExample]] = {kind: [] for kind in KINDS}
    for index, example in enumerate(clean):
        audio = load_audio(example.path, sample_rate=sample_rate)
        versions = {}
        if len(clean) > 1:
            other = load_audio(clean[(index + 1) % len(clean)].path, sample_rate=sample_rate)
            versions["babble"] = babble(audio, other, float(rng.uniform(*babble_snr_db)))
        with torch.no_grad():
            for kind, transform in transforms.items():
                versions[kind] = transform(audio[None], torch.tensor([audio.numel()]))[0][0]
        for kind, waveform in versions.items():
            path = folder / f"{example.source_id}-{kind.replace(' ', '_')}.wav"
            if not path.is_file():  # written under another name first: an interrupted run leaves no half file
                partial = path.with_name(path.stem + ".partial.wav")
                soundfile.write(str(partial), waveform.clamp(-1, 1).numpy().astype(np.float32), sample_rate,
                                subtype="FLOAT")
                partial.replace(path)
            out[kind].append(replace(example, path=str(path), label=0, kind=kind,
                                     example_id=f"{example.example_id}/{kind}"))
    return {kind: examples for kind, examples in out.items() if examples}
