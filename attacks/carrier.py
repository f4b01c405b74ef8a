"""AC: the carrier attack, decision-based (transcripts only), after Occam (Zheng et al., CCS 2021).

Start: the attacker speaks the goal's text with its own synthesizer (espeak-ng voices, ``core.espeak``), fits each
rendering into the clean utterance (time-compressed to at most ``fill`` of its length, centred) and mixes it in at
``levels_db`` relative to the clean speech, or in place of it (``replace``): one batched query per speaking rate
(``rates``, in order; a slower rendering is tried only where no faster one was heard), and the mix the system
already hears as the goal wants that lies closest to the budget is the start. An untargeted goal is met by
any phrase the clean audio does not say (``phrase``).

Shrink: the start's perturbation delta0 is split into ``bands`` mel bands (``BandNoiseBasis.split``) and a band
latent g in [0, 1]^(bands x frames) gates each time-frequency cell of it, delta(g) = sum_b interp(g_b) * delta0_b
(g = 1: the start; g = 0: the clean audio). Cooperative co-evolution: the cells are dealt into random groups of
``group_size``; CMA-ES (the ``cma`` package) searches one group's gates for ``generations`` generations while the
others stay fixed, minimizing the distance to the budget (``excess`` below) among candidates the system still hears as
the goal wants (candidates that would not be closer are never queried). After each group a line search toward the
source scales every gate down as far as the goal holds, and, once the point is within twice the budget, its
projection into the budget (``Constraints.repair``) is queried: the goal met there is a success. Every query asks for transcripts only (and the
detector's score in the adaptive setting), so the attack runs against any recognizer, PocketSphinx included.
"""

from __future__ import annotations

import logging
import math

import cma
import numpy as np
import torch
import torch.nn.functional as F
import torchaudio

from attacks.base import Attack, SearchState
from attacks.constraints import Constraints
from attacks.goals import TARGET_PHRASE, Goal
from attacks.oracle import QueryBudgetExceeded, QueryOracle
from attacks.subspace import BandNoiseBasis
from core.espeak import VoiceSettings, synthesize_fresh

DEFAULT_VOICES = ("en-us+m3", "en-us+f2", "en+m1", "en-gb-x-rp+f4")
LOG = logging.getLogger(__name__)
SILENCE_FRACTION = 0.02
PROJECT_BELOW = 2.0  # the current point's projection is queried once it is within 2x the budget (farther, the
# projection shrinks it so much that the system cannot still hear the goal: a query wasted)  # rendering samples below this fraction of its peak at either end are trimmed


class CarrierAttack(Attack):
    """Args:
        voices: espeak-ng voices ``language+variant`` that speak the carrier; rates: their speaking rates (words per
            minute), one round of starts each, in order, until a start is heard (the RNN-T trained here hears the
            four voices' 160 wpm "open the door" on none of four longer sources, their 120 wpm one on all four).
        levels_db: carrier-to-speech RMS ratios (dB) of the mixes tried as starts; replace: also try the carrier
            alone (scaled to the clean speech's RMS) in place of the clean audio.
        fill: the longest fraction of the utterance the carrier may take (longer renderings are time-compressed).
        phrase: what the carrier says for goals without a target text (untargeted).
        bands, frame_s: the gate latent: mel bands x time slots of ``frame_s`` seconds.
        group_size: gates per cooperative co-evolution group; population, generations, sigma: CMA-ES per group
            (candidates per generation, generations per group, initial step size of the gates in [0, 1]).
        shrink: the line search's first step toward the source (fraction of the gates removed), adapted as it goes.
        masking: before the search, the start is tried with its level in each time-frequency cell capped at c x the
            clean speech's level there, for each c (one batch; the most masked one that still meets the goal is
            kept): the quiet cells of the utterance, where added sound moves the MFCCs most, lose the carrier first.
    """

    name = "AC"
    revision = 3  # 2: the projection is queried only within twice the budget; 3: a second round of starts at 120 wpm

    def __init__(self, voices: list[str] | tuple[str, ...] = DEFAULT_VOICES,
                 rates: list[int] | tuple[int, ...] = (160, 120),
                 levels_db: list[float] | tuple[float, ...] = (-5.0, 0.0, 5.0), replace: bool = True,
                 fill: float = 0.9, phrase: str = TARGET_PHRASE, bands: int = 8, frame_s: float = 0.05,
                 group_size: int = 32, population: int = 8, generations: int = 3, sigma: float = 0.3,
                 shrink: float = 0.2, masking: list[float] | tuple[float, ...] = (1.0, 0.5, 0.3, 0.2, 0.1)) -> None:
        for voice in voices:
            if voice.count("+") != 1:
                raise ValueError(f"voice {voice!r}: expected 'language+variant', e.g. 'en-us+m3'")
        if not voices:
            raise ValueError("the carrier attack needs at least one voice")
        if not rates or min(rates) <= 0:
            raise ValueError(f"rates must be positive words per minute, got {rates}")
        if not levels_db and not replace:
            raise ValueError("no start to try: give levels_db or replace=True")
        if not 0 < fill <= 1:
            raise ValueError(f"fill must be in (0, 1], got {fill}")
        if group_size < 2 or population < 2 or generations < 1 or not 0 < sigma <= 1 or not 0 < shrink < 1:
            raise ValueError("need group_size >= 2, population >= 2, generations >= 1, sigma in (0, 1], "
                             "shrink in (0, 1)")
        self.voices, self.rates = list(voices), [int(r) for r in rates]
        self.levels_db, self.replace, self.fill, self.phrase = [float(v) for v in levels_db], replace, fill, phrase
        self.bands, self.frame_s = bands, frame_s
        self.group_size, self.population, self.generations, self.sigma = group_size, population, generations, sigma
        self.shrink, self.masking = shrink, [float(c) for c in masking]
        self._renderings: dict[tuple[str, int, int], list[torch.Tensor]] = {}

    # ------------------------------------------------------------------------------------------ the carrier
    def render(self, text: str, sample_rate: int, rate: int) -> list[torch.Tensor]:
        """``text`` spoken by each voice at ``rate`` words per minute: waveforms [L_v] at ``sample_rate``, silence
        trimmed, peak 1 (cached)."""
        key = (text, sample_rate, rate)
        if key not in self._renderings:  # in a fresh process: espeak-ng's state would couple utterances
            requests = [(text.lower(), VoiceSettings(*name.split("+"), rate=rate)) for name in self.voices]
            pcms, espeak_rate = synthesize_fresh(requests)
            spoken = []
            for pcm in pcms:
                audio = torchaudio.functional.resample(torch.from_numpy(pcm.astype(np.float32) / 32768.0),
                                                       espeak_rate, sample_rate)
                loud = (audio.abs() > SILENCE_FRACTION * audio.abs().max()).nonzero()
                audio = audio[int(loud[0]): int(loud[-1]) + 1]
                spoken.append(audio / audio.abs().max().clamp(min=1e-8))
            self._renderings[key] = spoken
        return self._renderings[key]

    def starts(self, clean: torch.Tensor, text: str, sample_rate: int, rate: int | None = None) -> torch.Tensor:
        """Candidate start perturbations [S, T] at speaking ``rate`` (default: the first of ``rates``): each
        rendering fitted into the clean audio, mixed at each level, then (``replace``) in place of the clean audio;
        voices vary slowest."""
        length = clean.numel()
        clean_rms = clean.pow(2).mean().sqrt()
        deltas = []
        for audio in self.render(text, sample_rate, self.rates[0] if rate is None else rate):
            longest = max(1, int(self.fill * length))
            if audio.numel() > longest:  # faster speech (and higher pitch): linear time compression
                audio = F.interpolate(audio[None, None], size=longest, mode="linear", align_corners=True)[0, 0]
            placed = torch.zeros(length)
            offset = (length - audio.numel()) // 2
            placed[offset: offset + audio.numel()] = audio
            placed = placed * (clean_rms / placed.pow(2).mean().sqrt().clamp(min=1e-12))
            deltas += [placed * 10 ** (level / 20) for level in self.levels_db]
            if self.replace:
                deltas.append(placed - clean)
        return torch.stack(deltas)

    # ------------------------------------------------------------------------------------------ the search
    def _search(self, oracle: QueryOracle, clean: torch.Tensor, goal: Goal, constraints: Constraints,
                generator: torch.Generator, state: SearchState) -> None:
        judge = _Decisions(oracle, clean, goal, constraints, state)
        for rate in self.rates:  # a slower rendering only where no faster one was heard
            starts = judge.effective(self.starts(clean, goal.spoken_target or self.phrase, oracle.sample_rate, rate))
            heard = judge.decide(starts)
            if heard.any():
                break
        excess = judge.excess(starts)
        if not heard.any():  # no start: leave the closest mix's projection as the (failed) result
            judge.decide(constraints.repair(clean, starts[int(torch.argmin(excess))][None]))
            return
        start = starts[_closest(heard, excess)]
        basis = BandNoiseBasis(bands=self.bands, frame_s=self.frame_s, low_hz=0.0, high_hz=oracle.sample_rate / 2,
                               envelope=False, sample_rate=oracle.sample_rate)
        weights = basis.split(start)  # [bands, T]: the start's perturbation, band by band
        decode = lambda gates: judge.effective(basis.decode(gates, weights))  # noqa: E731 - [P, d] -> [P, T]
        gates = torch.ones(basis.dimension(clean.numel()))
        if self.masking:  # the carrier kept at most c x the clean speech's level in each cell: one batch
            ratio = _cell_levels(basis.split(clean), len(gates) // self.bands) / _cell_levels(
                weights, len(gates) // self.bands).clamp(min=1e-12)
            masked = torch.stack([(c * ratio).clamp(max=1.0).flatten() for c in self.masking])
            deltas = decode(masked)
            excess = judge.excess(deltas)
            heard = judge.decide(deltas)
            if heard.any():
                gates = masked[_closest(heard, excess)]
        distance = float(judge.excess(decode(gates[None]))[0])
        shrink = self.shrink
        if not state.success:
            self._line_search(judge, decode, gates, [])  # the start's projection
        if state.success:
            return
        while True:
            order = torch.randperm(len(gates), generator=generator)
            for group in order.split(self.group_size):
                gates, distance = self._evolve(judge, decode, gates, distance, group, generator)
                steps = [shrink, shrink / 2, shrink / 4]
                found = self._line_search(judge, decode, gates, steps, project=distance < PROJECT_BELOW)
                if state.success:
                    return
                if found is not None:
                    gates, distance = gates * (1 - found), float(judge.excess(decode((gates * (1 - found))[None]))[0])
                    shrink = min(0.5, shrink * 1.5) if found == steps[0] else shrink
                else:
                    shrink = max(0.01, shrink / 2)
                if LOG.isEnabledFor(logging.DEBUG):
                    size, mfcc = judge.excess_parts(decode(gates[None]))
                    LOG.debug("carrier: %d queries, size / budget %.3f, MFCC dissimilarity / allowed %.3f",
                              judge.oracle.queries_used, float(size[0]), float(mfcc[0]))

    def _line_search(self, judge: "_Decisions", decode, gates: torch.Tensor, steps: list[float],
                     project: bool = True) -> float | None:
        """Query the gates scaled by (1 - step) for each step and (``project``) the current point's projection into
        the budget, in one batch (a projection heard as the goal is a success, recorded by ``judge``). Returns the
        largest step that still meets the goal, or None."""
        candidates = decode(torch.stack([gates * (1 - step) for step in steps] + [gates] * project))
        if project:
            candidates[-1] = judge.constraints.repair(judge.clean, candidates[-1:])[0]
        heard = judge.decide(candidates)
        met = [step for step, ok in zip(steps, heard[: len(steps)].tolist()) if ok]
        return max(met) if met else None

    def _evolve(self, judge: "_Decisions", decode, gates: torch.Tensor, distance: float, group: torch.Tensor,
                generator: torch.Generator) -> tuple[torch.Tensor, float]:
        """CMA-ES on the gates in ``group`` (the others fixed) for ``generations`` generations; returns the closest
        point to the budget that still met the goal, and its distance."""
        seed = int(torch.randint(1, 2**31 - 1, (1,), generator=generator))
        strategy = cma.CMAEvolutionStrategy(gates[group].numpy(), self.sigma, {
            "bounds": [0.0, 1.0], "popsize": self.population, "seed": seed, "verbose": -9})
        for _ in range(self.generations):
            proposals = np.asarray(strategy.ask())
            candidates = gates.repeat(len(proposals), 1)
            candidates[:, group] = torch.from_numpy(proposals).float()
            deltas = decode(candidates)
            excess = judge.excess(deltas)
            closer = excess < distance
            heard = torch.zeros(len(proposals), dtype=torch.bool)
            if closer.any():
                heard[closer] = judge.decide(deltas[closer])
            fitness = torch.where(heard, excess, distance + excess)  # misses rank after every hit
            strategy.tell(list(proposals), fitness.tolist())
            if heard.any():
                best = _closest(heard, excess)
                gates, distance = candidates[best].clone(), float(excess[best])
        return gates, distance


class _Decisions:
    """The attack's view of one utterance: the goal's verdict per candidate (transcripts only), each feasible
    candidate recorded in the search state, and the distance of a perturbation to the budget."""

    def __init__(self, oracle: QueryOracle, clean: torch.Tensor, goal: Goal, constraints: Constraints,
                 state: SearchState) -> None:
        self.oracle, self.clean, self.goal, self.constraints, self.state = oracle, clean, goal, constraints, state

    def effective(self, deltas: torch.Tensor) -> torch.Tensor:
        """Perturbations [P, T] as heard: ``clean + delta`` clipped to [-1, 1], minus the clean audio (float32)."""
        return (self.clean[None] + deltas.float()).clamp(-1.0, 1.0) - self.clean[None]

    def excess(self, deltas: torch.Tensor) -> torch.Tensor:
        """[P] float64: how far each perturbation [P, T] is outside the budget, the larger of ``excess_parts``;
        <= 1 means inside the size budget and above the MFCC floor."""
        return torch.maximum(*self.excess_parts(deltas))

    def excess_parts(self, deltas: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """([P], [P]) float64: each perturbation's size over the allowed size (l_inf over delta_max, or l2 over the
        SNR budget's radius), and its MFCC dissimilarity over the allowed one."""
        budget = self.constraints.budget
        if budget.mode == "linf":
            size = deltas.abs().amax(1).double() / budget.delta_max
        else:
            size = deltas.double().pow(2).sum(1).sqrt() / budget.l2_radius(self.clean)
        dissimilarity = 1.0 - self.constraints.mfcc_similarity(self.clean, deltas).double()
        return size, dissimilarity / max(1e-9, 1.0 - budget.min_mfcc_similarity)

    def decide(self, deltas: torch.Tensor) -> torch.Tensor:
        """[P] bool: whether the system's answer to each ``clean + delta`` meets the goal (one query each, as many
        as the budget has left: the rest count as not met; none left raises ``QueryBudgetExceeded``). Feasible
        candidates are recorded in the state (the attack's result is always the best feasible one)."""
        count = min(len(deltas), self.oracle.remaining)
        if count < 1:
            raise QueryBudgetExceeded("the carrier attack spent its budget")
        asked = deltas[:count]
        evaluation = self.goal.evaluate(self.oracle, self.clean[None] + asked, soft=False)
        heard = torch.zeros(len(deltas), dtype=torch.bool)
        heard[:count] = torch.from_numpy(np.asarray(evaluation.success, bool))
        feasible = self.constraints.feasible(self.clean, asked)
        if feasible.any():
            index = feasible.nonzero()[:, 0].tolist()
            self.state.observe(asked[index], evaluation.select(index))
        return heard


def _cell_levels(bands: torch.Tensor, frames: int) -> torch.Tensor:
    """RMS level [bands, frames] of band signals [bands, T] around each of the gate latent's ``frames`` points."""
    return F.adaptive_avg_pool1d(bands.pow(2)[None], frames)[0].sqrt()


def _closest(heard: torch.Tensor, excess: torch.Tensor) -> int:
    """The index of the candidate closest to the budget among those that met the goal (``heard`` [P] has one)."""
    return int(torch.argmin(torch.where(heard, excess, torch.tensor(math.inf, dtype=excess.dtype))))
