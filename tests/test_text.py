from core.text import normalize_transcript, spell_out_numbers


def test_normalization_upper_cases_and_strips_punctuation():
    assert normalize_transcript("  Open the door, please!  ") == "OPEN THE DOOR PLEASE"


def test_apostrophes_stay_inside_words_and_quotes_go():
    assert normalize_transcript("it's 'five o\u2019clock'") == "IT'S FIVE O'CLOCK"


def test_accents_hyphens_and_whitespace():
    assert normalize_transcript("Caf\u00e9\tself-driven\n car") == "CAFE SELF DRIVEN CAR"


def test_empty_and_punctuation_only_become_empty():
    assert normalize_transcript("") == ""
    assert normalize_transcript(" ?! ") == ""


def test_digits_become_words_like_the_reference_transcripts():
    assert normalize_transcript("Set a timer for 10 minutes.") == "SET A TIMER FOR TEN MINUTES"
    assert normalize_transcript("Wake me up at 7:30") == "WAKE ME UP AT SEVEN THIRTY"
    assert normalize_transcript("Call mom at 7:00.") == "CALL MOM AT SEVEN O'CLOCK"
    assert normalize_transcript("at 9:05") == "AT NINE OH FIVE"
    assert normalize_transcript("Set the volume to 40%") == "SET THE VOLUME TO FORTY PERCENT"
    assert normalize_transcript("It is 21\u00b0 and 1,250 people") == "IT IS TWENTY ONE DEGREES AND ONE THOUSAND TWO HUNDRED FIFTY PEOPLE"
    assert spell_out_numbers("007").split() == ["ZERO", "ZERO", "SEVEN"]
