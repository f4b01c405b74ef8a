from datamodules.text import normalize_transcript


def test_normalization_upper_cases_and_strips_punctuation():
    assert normalize_transcript("  Open the door, please!  ") == "OPEN THE DOOR PLEASE"


def test_apostrophes_stay_inside_words_and_quotes_go():
    assert normalize_transcript("it's 'five o\u2019clock'") == "IT'S FIVE O'CLOCK"


def test_accents_hyphens_and_whitespace():
    assert normalize_transcript("Caf\u00e9\tself-driven\n car") == "CAFE SELF DRIVEN CAR"


def test_empty_and_punctuation_only_become_empty():
    assert normalize_transcript("") == ""
    assert normalize_transcript(" ?! ") == ""
