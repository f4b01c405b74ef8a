"""What an attack tries to achieve (criteria, foolbox-style): each goal turns oracle answers into an objective to
minimize and a success flag per candidate. Soft-label goals use the oracle's scores (negative log-likelihoods of a
text); on a hard-label system (transcripts only, e.g. PocketSphinx) they fall back to edit distances.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import jiwer
import numpy as np

from attacks.oracle import QueryOracle, QueryResult
from core.text import normalize_transcript

TARGET_PHRASE = "OPEN THE DOOR"
_TARGET_CHARACTERS = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz' ")


@dataclass(frozen=True)
class Evaluation:
    """One evaluated population: objective [P] (lower is better), success [P], transcripts [P], detector scores."""

    objective: np.ndarray
    success: np.ndarray
    transcripts: list[str]
    detector_scores: np.ndarray | None = None

    def select(self, indices) -> "Evaluation":
        """The evaluation of a sub-population (``indices``: a list of positions)."""
        return Evaluation(self.objective[indices], self.success[indices], [self.transcripts[i] for i in indices],
                          None if self.detector_scores is None else self.detector_scores[indices])


def word_error_rate(reference: str, hypothesis: str) -> float:
    """WER of one pair (jiwer); an empty reference gives 0 for an empty hypothesis, else 1."""
    if not reference.split():
        return 0.0 if not hypothesis.split() else 1.0
    return float(jiwer.wer(reference, hypothesis))


def character_error_rate(reference: str, hypothesis: str) -> float:
    if not reference:
        return 0.0 if not hypothesis else 1.0
    return float(jiwer.cer(reference, hypothesis))


class Goal(ABC):
    """Base: query the population once (P queries) and judge the answers."""

    def request(self, oracle: QueryOracle, count: int, soft: bool = True) -> dict:
        """Keyword arguments for ``oracle.query`` (which outputs this goal needs); ``soft=False``: transcripts only
        (a decision-based attack asks for nothing else, even where the system offers scores)."""
        scores = soft and oracle.can_score
        return {"score_texts": [self.scored_text] * count if scores else None, "transcribe": True}

    @property
    def spoken_target(self) -> str | None:
        """The text the system should output (targeted goals), else None."""
        return None

    @property
    @abstractmethod
    def scored_text(self) -> str: ...

    @abstractmethod
    def judge(self, result: QueryResult) -> tuple[np.ndarray, np.ndarray]:
        """(objective [P], success [P])."""

    @abstractmethod
    def describe(self) -> dict: ...

    def evaluate(self, oracle: QueryOracle, waveforms, soft: bool = True) -> Evaluation:
        """Query P waveforms [P, T] once each; ``soft=False``: from transcripts only (hard-label objective)."""
        count = len(waveforms)
        result = oracle.query(waveforms, **self.request(oracle, count, soft))
        objective, success = self.judge(result)
        return Evaluation(objective, success, result.transcripts, result.detector_scores)


class Untargeted(Goal):
    """Move the transcript away from ``original`` (the system's transcript of the clean audio).

    Success: WER(original, transcript) >= ``min_wer``. Objective: minus the negative log-likelihood of the original
    transcript per character (soft labels), or minus the WER (hard labels).
    """

    def __init__(self, original: str, min_wer: float = 0.5) -> None:
        self.original = normalize_transcript(original)
        if not self.original:
            raise ValueError("untargeted attack: the clean transcript is empty, nothing to move away from")
        if not 0 < min_wer:
            raise ValueError(f"min_wer must be > 0, got {min_wer}")
        self.min_wer = min_wer

    @property
    def scored_text(self) -> str:
        return self.original

    def judge(self, result: QueryResult) -> tuple[np.ndarray, np.ndarray]:
        wer = np.array([word_error_rate(self.original, t) for t in result.transcripts])
        if result.scores is not None:
            objective = -result.scores / max(1, len(self.original))
        else:
            objective = -wer
        return objective, wer >= self.min_wer

    def describe(self) -> dict:
        return {"goal": "untargeted", "original": self.original, "min_wer": self.min_wer}


CRITERIA = ("exact", "contains", "wer")


def meets_target(target: str, transcript: str, criterion: str = "exact", max_wer: float = 0.0) -> bool:
    """Whether ``transcript`` counts as the (normalized) ``target``: ``exact`` the same words; ``contains`` the target's
    words in a row somewhere in it (command injection); ``wer`` WER(target, transcript) <= ``max_wer``."""
    heard = normalize_transcript(transcript)
    if criterion == "exact":
        return heard == target
    if criterion == "contains":
        return f" {target} " in f" {heard} "
    return word_error_rate(target, heard) <= max_wer


class Targeted(Goal):
    """Make the system output ``target`` (normalized), judged by ``criterion`` (``meets_target``: ``exact`` by
    default, ``contains``, or ``wer`` with ``max_wer``). Objective: the negative log-likelihood of the target per
    character (soft labels) or its character error rate (hard labels)."""

    def __init__(self, target: str = TARGET_PHRASE, criterion: str = "exact", max_wer: float = 0.0) -> None:
        unknown = sorted(set(target) - _TARGET_CHARACTERS)
        if unknown:
            raise ValueError(f"target {target!r} has characters a transcript cannot contain: {unknown} "
                             "(use letters, apostrophes and spaces; write numbers as words)")
        self.target = normalize_transcript(target)
        if not self.target:
            raise ValueError("targeted attack: empty target phrase")
        if criterion not in CRITERIA:
            raise ValueError(f"success criterion must be one of {CRITERIA}, got {criterion!r}")
        if not 0 <= max_wer < 1:
            raise ValueError(f"max_wer must be in [0, 1), got {max_wer}")
        self.criterion, self.max_wer = criterion, max_wer

    @property
    def scored_text(self) -> str:
        return self.target

    @property
    def spoken_target(self) -> str:
        return self.target

    def judge(self, result: QueryResult) -> tuple[np.ndarray, np.ndarray]:
        success = np.array([meets_target(self.target, t, self.criterion, self.max_wer) for t in result.transcripts])
        if result.scores is not None:
            objective = result.scores / len(self.target)
        else:
            objective = np.array([character_error_rate(self.target, t) for t in result.transcripts])
        return objective, success

    def describe(self) -> dict:
        criterion = {} if self.criterion == "exact" else {"criterion": self.criterion, "max_wer": self.max_wer}
        return {"goal": "targeted", "target": self.target, **criterion}


class DetectorEvasion(Goal):
    """Adaptive setting: the inner goal, and the detector's score below its threshold.

    Objective = inner objective + ``weight`` x max(0, detector score - threshold + ``margin``). For a stochastic
    detector each candidate is queried ``samples`` times (each one a query) and its scores averaged: expectation over
    the detector's randomness. Success = inner success and mean score < threshold.
    """

    def __init__(self, inner: Goal, weight: float = 10.0, margin: float = 0.05, samples: int = 4) -> None:
        if samples < 1:
            raise ValueError(f"samples must be >= 1, got {samples}")
        self.inner, self.weight, self.margin, self.samples = inner, weight, margin, samples

    @property
    def scored_text(self) -> str:
        return self.inner.scored_text

    @property
    def spoken_target(self) -> str | None:
        return self.inner.spoken_target

    def judge(self, result: QueryResult) -> tuple[np.ndarray, np.ndarray]:
        """The inner goal's verdict (the detector's part is added in ``evaluate``)."""
        return self.inner.judge(result)

    def evaluate(self, oracle: QueryOracle, waveforms, soft: bool = True) -> Evaluation:
        if not oracle.can_detect:
            raise ValueError("adaptive attack: the system has no detector to query")
        count = len(waveforms)
        repeats = self.samples if oracle.detector_stochastic else 1
        batch = np.repeat(np.asarray(waveforms.cpu() if hasattr(waveforms, "cpu") else waveforms), repeats, axis=0)
        request = self.inner.request(oracle, len(batch), soft)
        result = oracle.query(batch, detect=True, **request)
        first = slice(None, None, repeats)
        inner_result = QueryResult(
            transcripts=result.transcripts[first],
            scores=None if result.scores is None else result.scores[first],
        )
        objective, success = self.judge(inner_result)
        detector = result.detector_scores.reshape(count, repeats).mean(1)
        threshold = oracle.detector_threshold
        objective = objective + self.weight * np.maximum(0.0, detector - threshold + self.margin)
        return Evaluation(objective, success & (detector < threshold), inner_result.transcripts, detector)

    def describe(self) -> dict:
        return {**self.inner.describe(), "adaptive": True, "evasion_weight": self.weight,
                "evasion_margin": self.margin, "detector_samples": self.samples}
