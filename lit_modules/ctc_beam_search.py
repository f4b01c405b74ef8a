"""CTC prefix beam search with optional character n-gram LM shallow fusion."""

from __future__ import annotations

import math
from collections import defaultdict

import torch

from lit_modules.language_model import EOS, CharacterNGramLM

_NEG_INF = float("-inf")


def _logaddexp(a: float, b: float) -> float:
    if a == _NEG_INF:
        return b
    if b == _NEG_INF:
        return a
    high, low = (a, b) if a > b else (b, a)
    return high + math.log1p(math.exp(low - high))


def ctc_prefix_beam_search(log_probs: torch.Tensor, symbols: list[str], blank: int = 0, beam_size: int = 8,
                           lm: CharacterNGramLM | None = None, lm_weight: float = 0.5,
                           length_bonus: float = 0.0) -> list[int]:
    """Best label sequence for one utterance.

    Args:
        log_probs: [T, V] frame log-probabilities (valid frames only).
        symbols: the character of each label id (used by the LM).
        blank: blank id. beam_size: prefixes kept per frame (and labels tried per frame).
        lm: optional character LM; its log-probability is added with ``lm_weight`` for every emitted label,
            plus the end-of-sentence probability at the end.
        length_bonus: added per emitted label (counters the LM's preference for short outputs).
    """
    frames = log_probs.detach().float().cpu()
    beams: dict[tuple[int, ...], tuple[float, float]] = {(): (0.0, _NEG_INF)}  # prefix -> (ends in blank, not)
    lm_cache: dict[tuple[tuple[int, ...], int], float] = {}

    def lm_score(prefix: tuple[int, ...], label: int) -> float:
        if lm is None:
            return length_bonus
        key = (prefix, label)
        if key not in lm_cache:
            context = "".join(symbols[i] for i in prefix)
            lm_cache[key] = lm_weight * lm.log_probability(context, symbols[label]) + length_bonus
        return lm_cache[key]

    for frame in frames:
        top = torch.topk(frame, min(beam_size, frame.shape[0]))
        candidates = [(int(i), float(v)) for v, i in zip(top.values, top.indices) if int(i) != blank]
        blank_log_prob = float(frame[blank])
        following: dict[tuple[int, ...], list[float]] = defaultdict(lambda: [_NEG_INF, _NEG_INF])
        for prefix, (p_blank, p_label) in beams.items():
            total = _logaddexp(p_blank, p_label)
            entry = following[prefix]
            entry[0] = _logaddexp(entry[0], total + blank_log_prob)
            for label, label_log_prob in candidates:
                extended = prefix + (label,)
                if prefix and prefix[-1] == label:
                    entry[1] = _logaddexp(entry[1], p_label + label_log_prob)  # repeat collapses
                    grown = following[extended]
                    grown[1] = _logaddexp(grown[1], p_blank + label_log_prob + lm_score(prefix, label))
                else:
                    grown = following[extended]
                    grown[1] = _logaddexp(grown[1], total + label_log_prob + lm_score(prefix, label))
        ranked = sorted(following.items(), key=lambda item: _logaddexp(*item[1]), reverse=True)[:beam_size]
        beams = {prefix: (scores[0], scores[1]) for prefix, scores in ranked}

    def final_score(item) -> float:
        prefix, scores = item
        score = _logaddexp(*scores)
        if lm is not None:
            score += lm_weight * lm.log_probability("".join(symbols[i] for i in prefix), EOS)
        return score

    return list(max(beams.items(), key=final_score)[0])
