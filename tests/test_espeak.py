import numpy as np
import pytest

from core.espeak import EspeakEngine, SynthesisError, VoiceSettings
from datamodules.synthetic.speakers import ENGLISH_ACCENTS, HUMAN_VARIANTS, installed_variants, make_speakers


def test_synthesis_returns_speech_like_pcm():
    engine = EspeakEngine.instance()
    pcm = engine.synthesize("open the door", VoiceSettings("en-us", "m3"))
    assert engine.sample_rate == 22_050
    assert pcm.dtype == np.int16
    assert 0.4 < pcm.shape[0] / engine.sample_rate < 3.0
    assert pcm.astype(np.float32).std() > 1000  # not silence


def test_voices_rates_and_accents_change_the_audio():
    engine = EspeakEngine.instance()
    base = engine.synthesize("turn on the lights", VoiceSettings("en-us", "m3", rate=175))
    slow = engine.synthesize("turn on the lights", VoiceSettings("en-us", "m3", rate=110))
    female = engine.synthesize("turn on the lights", VoiceSettings("en-us", "f2", rate=175))
    scottish = engine.synthesize("turn on the lights", VoiceSettings("en-gb-scotland", "m3", rate=175))
    assert slow.shape[0] > 1.3 * base.shape[0]
    for other in (female, scottish):
        n = min(len(base), len(other))
        assert not np.array_equal(base[:n], other[:n])


def test_unknown_accent_is_refused_by_name():
    with pytest.raises(SynthesisError, match="xx-nowhere"):
        EspeakEngine.instance().synthesize("hello", VoiceSettings("xx-nowhere", "m3"))


def test_every_configured_accent_and_variant_is_installed():
    import espeakng_loader

    assert set(HUMAN_VARIANTS) <= installed_variants(espeakng_loader.get_data_path())
    engine = EspeakEngine.instance()
    for accent in ENGLISH_ACCENTS:
        assert engine.synthesize("hello", VoiceSettings(accent, "m1")).size > 0


def test_speakers_have_distinct_voices_and_are_seeded():
    speakers = make_speakers(60, seed=1)
    assert len({(s.voice.language, s.voice.variant) for s in speakers}) == 60
    assert len({s.speaker_id for s in speakers}) == 60
    assert make_speakers(60, seed=1) == speakers
    assert make_speakers(60, seed=2) != speakers
    with pytest.raises(ValueError, match="at most"):
        make_speakers(10_000, seed=0)
