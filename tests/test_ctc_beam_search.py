import math

import torch

from lit_modules.ctc_beam_search import ctc_prefix_beam_search
from lit_modules.language_model import CharacterNGramLM

SYMBOLS = ["", " ", "A", "B"]


def _frames(rows):
    return torch.tensor(rows, dtype=torch.float32).clamp(min=1e-9).log()


def test_collapses_repeats_and_keeps_blank_separated_labels():
    # frames: A A blank A -> "AA" (the blank separates two A's); greedy would give the same
    log_probs = _frames([[0.1, 0, 0.9, 0], [0.1, 0, 0.9, 0], [0.9, 0, 0.1, 0], [0.1, 0, 0.9, 0]])
    assert ctc_prefix_beam_search(log_probs, SYMBOLS, beam_size=4) == [2, 2]


def test_sums_over_alignments_where_greedy_does_not():
    # Per frame the best class alternates, but the total probability of "B" beats that of "A".
    log_probs = _frames([[0.35, 0, 0.4, 0.25], [0.35, 0, 0.4, 0.25]])
    # P("A") = .4*.4 + .4*.35 + .35*.4 = 0.44 ; P("B") = .25*.25+.25*.35+.35*.25 = 0.2375 ; P("") = .1225
    assert ctc_prefix_beam_search(log_probs, SYMBOLS, beam_size=4) == [2]
    log_probs = _frames([[0.3, 0, 0.36, 0.34], [0.3, 0, 0.0, 0.7]])
    # greedy: A then B -> "AB"; P("B") = .3*.7 + .34*.7 + .34*.3 = 0.55 is the most probable labelling
    assert ctc_prefix_beam_search(log_probs, SYMBOLS, beam_size=4) == [3]


def test_language_model_fusion_changes_the_choice():
    log_probs = _frames([[0.05, 0, 0.5, 0.45], [0.9, 0, 0.05, 0.05]])
    assert ctc_prefix_beam_search(log_probs, SYMBOLS, beam_size=4) == [2]
    lm = CharacterNGramLM(order=2).fit(["B", "B", "B", "BB"])
    assert ctc_prefix_beam_search(log_probs, SYMBOLS, beam_size=4, lm=lm, lm_weight=1.0) == [3]
    assert math.isfinite(lm.log_probability("", "A"))
