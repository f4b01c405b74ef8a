import random

import pytest

from datamodules.synthetic.grammar import SentenceGrammar
from core.text import number_to_words
from core.text import normalize_transcript


def test_numbers_are_spelled():
    assert number_to_words(0) == "ZERO"
    assert number_to_words(17) == "SEVENTEEN"
    assert number_to_words(40) == "FORTY"
    assert number_to_words(125) == "ONE HUNDRED TWENTY FIVE"
    assert number_to_words(1000) == "ONE THOUSAND"
    with pytest.raises(ValueError):
        number_to_words(1_000_000)


def test_same_seed_same_sentences_other_seed_other_sentences():
    grammar = SentenceGrammar()
    assert grammar.sentences(50, seed=3) == grammar.sentences(50, seed=3)
    assert grammar.sentences(50, seed=3) != grammar.sentences(50, seed=4)


def test_attack_target_is_expressible_and_produced():
    sentences = SentenceGrammar(command_fraction=1.0).sentences(2000, seed=0)
    assert "OPEN THE DOOR" in sentences


def test_sentences_follow_the_transcript_convention_and_vocabulary():
    grammar = SentenceGrammar()
    vocabulary = grammar.vocabulary()
    for sentence in grammar.sentences(500, seed=1):
        assert sentence == normalize_transcript(sentence)
        assert set(sentence.split()) <= vocabulary


def test_command_fraction_controls_the_mix():
    rng = random.Random(0)
    commands_only = SentenceGrammar(command_fraction=1.0)
    read_only = SentenceGrammar(command_fraction=0.0)
    command_words = {"TURN", "SET", "PLAY", "CALL", "OPEN", "CLOSE", "SHUT", "LOCK", "UNLOCK", "WHAT", "HOW"}
    first_words = {commands_only.sentence(rng).split()[0] for _ in range(300)}
    assert first_words & command_words
    read_first = {read_only.sentence(rng).split()[0] for _ in range(300)}
    assert not read_first & {"TURN", "SET", "PLAY", "REMIND", "WAKE", "SEND"}
    with pytest.raises(ValueError):
        SentenceGrammar(command_fraction=1.5)
