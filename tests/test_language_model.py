import math

import pytest

from lit_modules.language_model import CharacterNGramLM


def test_probabilities_normalize_and_prefer_seen_text(tmp_path):
    lm = CharacterNGramLM(order=4).fit(["OPEN THE DOOR", "CLOSE THE DOOR", "TURN ON THE LIGHTS"])
    for context in ["", "OPEN TH", "XYZ"]:
        total = sum(lm.probability(context, ch) for ch in lm.alphabet)
        assert math.isclose(total, 1.0, rel_tol=1e-6)
    assert lm.sentence_log_probability("OPEN THE DOOR") > lm.sentence_log_probability("DOOR THE OPEN")
    path = tmp_path / "lm.json"
    lm.save(path)
    loaded = CharacterNGramLM.load(path)
    assert math.isclose(loaded.sentence_log_probability("OPEN THE DOOR"), lm.sentence_log_probability("OPEN THE DOOR"))


def test_bad_parameters():
    with pytest.raises(ValueError):
        CharacterNGramLM(order=0)
