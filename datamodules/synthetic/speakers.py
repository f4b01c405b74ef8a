"""Synthetic speakers: an English accent x a voice variant x speaking rate x pitch, all seeded."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from core.espeak import VoiceSettings

# espeak-ng's English accents (language files under espeak-ng-data/lang/gmw).
ENGLISH_ACCENTS = (
    "en-us", "en-us-nyc", "en", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-029",
)
# Voice variants (espeak-ng-data/voices/!v) that sound like a human talker; whispering and robotic ones are left out.
HUMAN_VARIANTS = (
    "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "f1", "f2", "f3", "f4", "f5",
    "Alex", "Alicia", "Andrea", "Andy", "Annie", "Denis", "Diogo", "Gene", "Gene2", "Henrique", "Hugo", "Jacky",
    "Lee", "Marco", "Mario", "Michael", "Mike", "Nguyen", "Reed", "Storm", "adam", "anika", "announcer", "antonio",
    "aunty", "belinda", "benjamin", "boris", "caleb", "david", "ed", "edward", "edward2", "grandma", "grandpa",
    "gustave", "ian", "iven", "iven2", "iven3", "john", "kaukovalta", "linda", "marcelo", "max", "michel", "miguel",
    "mike2", "norbert", "pablo", "paul", "pedro", "quincy", "rob", "robert", "sandro", "shelby", "steph", "steph2",
    "steph3", "travis", "victor", "zac", "klatt", "klatt2", "klatt3", "klatt4",
)


@dataclass(frozen=True)
class SyntheticSpeaker:
    """A speaker of the synthetic corpus. ``speaker_id`` is a LibriSpeech-style integer id."""

    speaker_id: int
    voice: VoiceSettings

    @property
    def description(self) -> str:
        v = self.voice
        return f"{v.language}+{v.variant} rate={v.rate} pitch={v.pitch} range={v.pitch_range}"


def installed_variants(data_path: str | Path) -> set[str]:
    """Variant names espeak-ng's data folder provides."""
    return {p.name for p in (Path(data_path) / "voices" / "!v").iterdir()}


def make_speakers(count: int, seed: int, first_id: int = 1000) -> list[SyntheticSpeaker]:
    """``count`` speakers with distinct (accent, variant) pairs, random rate (140-200 wpm), pitch and range.

    Distinct pairs mean that splits built from disjoint slices of this list share no voice.
    """
    pairs = [(accent, variant) for accent in ENGLISH_ACCENTS for variant in HUMAN_VARIANTS]
    if count > len(pairs):
        raise ValueError(f"at most {len(pairs)} distinct synthetic speakers, asked for {count}")
    rng = random.Random(seed)
    chosen = rng.sample(pairs, count)
    speakers = []
    for offset, (accent, variant) in enumerate(chosen):
        voice = VoiceSettings(
            language=accent,
            variant=variant,
            rate=rng.randint(140, 200),
            pitch=rng.randint(30, 70),
            pitch_range=rng.randint(30, 80),
        )
        speakers.append(SyntheticSpeaker(speaker_id=first_id + offset, voice=voice))
    return speakers
