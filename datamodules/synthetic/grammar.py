"""The text of the synthetic corpus: a seeded voice-assistant command grammar plus general read sentences.

Every sentence is upper-case words separated by single spaces (the project's transcript convention,
see ``core.text``). The attack target "OPEN THE DOOR" is one of the commands the grammar produces.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from core.text import number_to_words

# Non-terminals of the grammar: "<NAME>" in a production is replaced by a random expansion of NAME.
_RULES: dict[str, list[str]] = {
    "COMMAND": [
        "<OPEN_CLOSE> THE <OPENABLE>", "<OPEN_CLOSE> THE <ROOM> <OPENABLE>", "<LOCK> THE <ROOM> DOOR",
        "TURN <ON_OFF> THE <DEVICE>", "TURN <ON_OFF> THE <DEVICE> IN THE <ROOM>",
        "SWITCH <ON_OFF> THE <ROOM> <DEVICE>", "<DIM> THE LIGHTS IN THE <ROOM>",
        "SET THE <SETTABLE> TO <NUMBER> <UNIT>", "SET A TIMER FOR <SMALL_NUMBER> <DURATION>",
        "WAKE ME UP AT <TIME>", "REMIND ME TO <ERRAND> AT <TIME>", "REMIND ME TO <ERRAND> <DAY>",
        "PLAY <MEDIA> IN THE <ROOM>", "PLAY SOME <GENRE> MUSIC", "<VOLUME> THE VOLUME",
        "CALL <CONTACT>", "CALL <CONTACT> AT <TIME>", "SEND A MESSAGE TO <CONTACT>",
        "WHAT IS THE WEATHER <DAY>", "WHAT TIME IS IT", "HOW COLD IS IT IN THE <ROOM>",
        "ADD <GROCERY> TO THE SHOPPING LIST", "START THE <APPLIANCE>", "STOP THE <APPLIANCE>",
        "IS THE <OPENABLE> <OPEN_STATE>", "OPEN THE DOOR",
    ],
    "OPEN_CLOSE": ["OPEN", "CLOSE", "SHUT"],
    "OPENABLE": ["DOOR", "WINDOW", "GARAGE", "GATE", "BLINDS", "CURTAINS"],
    "OPEN_STATE": ["OPEN", "CLOSED", "LOCKED"],
    "LOCK": ["LOCK", "UNLOCK"],
    "ON_OFF": ["ON", "OFF"],
    "DIM": ["DIM", "BRIGHTEN"],
    "DEVICE": ["LIGHTS", "LAMP", "HEATER", "FAN", "RADIO", "TELEVISION", "AIR CONDITIONER", "ALARM", "CAMERA"],
    "APPLIANCE": ["DISHWASHER", "WASHING MACHINE", "DRYER", "OVEN", "KETTLE", "COFFEE MACHINE", "VACUUM"],
    "ROOM": ["KITCHEN", "BEDROOM", "BATHROOM", "LIVING ROOM", "HALLWAY", "OFFICE", "GARDEN", "BASEMENT",
             "DINING ROOM", "FRONT", "BACK"],
    "SETTABLE": ["THERMOSTAT", "TEMPERATURE", "VOLUME", "BRIGHTNESS", "OVEN"],
    "UNIT": ["DEGREES", "PERCENT"],
    "DURATION": ["SECONDS", "MINUTES", "HOURS"],
    "TIME": ["<HOUR> O'CLOCK", "<HOUR> THIRTY", "<HOUR> FIFTEEN", "<HOUR> FORTY FIVE", "NOON", "MIDNIGHT"],
    "DAY": ["TODAY", "TONIGHT", "TOMORROW", "THIS EVENING", "ON MONDAY", "ON TUESDAY", "ON WEDNESDAY",
            "ON THURSDAY", "ON FRIDAY", "ON SATURDAY", "ON SUNDAY", "NEXT WEEK"],
    "ERRAND": ["BUY MILK", "WATER THE PLANTS", "TAKE MY MEDICINE", "FEED THE CAT", "WALK THE DOG",
               "CHECK THE MAIL", "PAY THE BILLS", "CALL THE DOCTOR"],
    "MEDIA": ["THE NEWS", "MY PLAYLIST", "THE RADIO", "A PODCAST", "SOME MUSIC", "AN AUDIOBOOK"],
    "GENRE": ["JAZZ", "CLASSICAL", "ROCK", "FOLK", "BLUES", "POP"],
    "VOLUME": ["RAISE", "LOWER", "MUTE"],
    "CONTACT": ["MOM", "DAD", "GRANDMA", "THE OFFICE", "MY SISTER", "MY BROTHER", "ANNA", "PETER", "DAVID",
                "MARIA"],
    "GROCERY": ["MILK", "BREAD", "EGGS", "APPLES", "COFFEE", "RICE", "BUTTER", "CHEESE", "TEA", "SUGAR"],
    "READ": [
        "<DET> <ADJ> <NOUN> <VERB_PAST> <PREP> THE <ADJ> <PLACE>",
        "<DET> <NOUN> <VERB_PAST> <ADVERB> <PREP> THE <PLACE>",
        "<NAME> <VERB_PAST> <PREP> THE <PLACE> <TIME_PHRASE>",
        "<TIME_PHRASE> <DET> <NOUN> <VERB_PAST> <ADVERB>",
        "<NAME> SAID THAT THE <NOUN> WAS <ADJ>",
        "THE <PLACE> WAS <ADJ> AND THE <NOUN> WAS <ADJ>",
        "<DET> <ADJ> <NOUN> SAW <DET> <NOUN> <PREP> THE <PLACE>",
        "THERE WERE <SMALL_NUMBER> <NOUNS> <PREP> THE <ADJ> <PLACE>",
    ],
    "DET": ["THE", "A", "ONE", "EVERY", "THAT"],
    "ADJ": ["OLD", "YOUNG", "QUIET", "BRIGHT", "DARK", "SMALL", "LARGE", "GREEN", "COLD", "WARM", "DISTANT",
            "GENTLE", "HEAVY", "EMPTY", "ANCIENT", "NARROW"],
    "NOUN": ["MAN", "WOMAN", "CHILD", "SAILOR", "FARMER", "HORSE", "BIRD", "DOG", "TRAVELLER", "KING",
             "SOLDIER", "STRANGER", "TEACHER", "MERCHANT"],
    "NOUNS": ["SHIPS", "HORSES", "BIRDS", "TREES", "CANDLES", "LETTERS", "STONES", "CHILDREN"],
    "VERB_PAST": ["WALKED", "RAN", "WAITED", "SLEPT", "STOOD", "SANG", "WANDERED", "RETURNED", "LOOKED",
                  "ARRIVED", "LISTENED", "TRAVELLED"],
    "ADVERB": ["SLOWLY", "QUICKLY", "SILENTLY", "CAREFULLY", "HAPPILY", "ALONE", "AGAIN", "TOGETHER"],
    "PREP": ["ACROSS", "INTO", "THROUGH", "BESIDE", "NEAR", "AROUND", "BEHIND", "TOWARD"],
    "PLACE": ["FIELD", "RIVER", "FOREST", "VILLAGE", "HARBOUR", "MOUNTAIN", "CASTLE", "MARKET", "ROAD",
              "VALLEY", "CHURCH", "BRIDGE"],
    "NAME": ["JOHN", "MARY", "THOMAS", "ELIZABETH", "HENRY", "MARGARET", "WILLIAM", "ALICE", "GEORGE"],
    "TIME_PHRASE": ["AT DAWN", "IN THE MORNING", "AT NIGHT", "BEFORE NOON", "AFTER SUPPER", "ALL DAY",
                    "IN THE WINTER", "LAST SUMMER"],
}
_NONTERMINAL = re.compile(r"<([A-Z_]+)>")


@dataclass(frozen=True)
class SentenceGrammar:
    """Seeded sentence source: a mix of voice-assistant commands and read sentences.

    Attributes:
        command_fraction: probability that a sentence is a command rather than a read sentence.
    """

    command_fraction: float = 0.7

    def __post_init__(self) -> None:
        if not 0.0 <= self.command_fraction <= 1.0:
            raise ValueError(f"command_fraction must be in [0, 1], got {self.command_fraction}")

    def sentence(self, rng: random.Random) -> str:
        """One sentence drawn with ``rng`` (deterministic for a seeded ``random.Random``)."""
        start = "COMMAND" if rng.random() < self.command_fraction else "READ"
        return self._expand(f"<{start}>", rng)

    def sentences(self, count: int, seed: int) -> list[str]:
        """``count`` sentences, reproducible from ``seed``."""
        rng = random.Random(seed)
        return [self.sentence(rng) for _ in range(count)]

    def _expand(self, text: str, rng: random.Random) -> str:
        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name == "NUMBER":
                return number_to_words(rng.randint(1, 100))
            if name == "SMALL_NUMBER":
                return number_to_words(rng.randint(2, 30))
            if name == "HOUR":
                return number_to_words(rng.randint(1, 12))
            return self._expand(rng.choice(_RULES[name]), rng)

        return _NONTERMINAL.sub(replace, text)

    @staticmethod
    def vocabulary() -> set[str]:
        """Every word the grammar can produce."""
        words = {word for number in range(1, 101) for word in number_to_words(number).split()}
        for productions in _RULES.values():
            for production in productions:
                words.update(word for word in _NONTERMINAL.sub(" ", production).split())
        return words
