"""Attacks for the closed-model and integrity tests (importable in the attacker's process).

``EscapeAttack`` tries every route out of its session it can find from inside the attacker's process and reports
what it reached in its transcript; ``OverBudgetAttack`` returns audio outside its perturbation budget;
``EdgeOfBudget`` returns the loudest perturbation the constraints let through (to check the budget is tight).
"""

from __future__ import annotations

import gc
from multiprocessing.connection import Connection

import torch

from attacks.base import Attack
from attacks.oracle import QueryBudgetExceeded
from attacks.process_host import ProcessHost


class EscapeAttack(Attack):
    """Looks for hosts and pipes in its own process, asks its session's server to reopen it with a huge budget
    (the exploit that once worked), then queries one waveform at a time, resetting its own counter each time,
    until the server refuses. Reports ``HOSTS h PIPES p ANSWERED n`` as its transcript."""

    name = "escape"

    def _search(self, oracle, clean, goal, constraints, generator, state) -> None:
        hosts = sum(isinstance(o, ProcessHost) for o in gc.get_objects())
        pipes = sum(isinstance(o, Connection) and not o.closed for o in gc.get_objects())
        session_pipe = oracle._connection
        for message in (("open", oracle.session_id, 10**6), ("open", oracle.session_id + 1, 10**6)):
            session_pipe.send(message)  # a pickle: the server reads bytes and refuses it
            session_pipe.recv_bytes()
        answered = 0
        waveform = clean[None].numpy()
        for _ in range(3 * oracle.budget):
            object.__setattr__(oracle, "_used", 0)  # the client-side counter is the attacker's own
            try:
                oracle.query(waveform)
            except QueryBudgetExceeded:
                break
            answered += 1
        state.best_delta = torch.zeros_like(clean)
        state.best_transcript = f"HOSTS {hosts} PIPES {pipes} ANSWERED {answered}"


class OverBudgetAttack(Attack):
    """Skips the repair step: returns loud noise (about 0 dB SNR), which no budget allows, for clean audio with RMS
    >= ``min_rms`` (quieter audio is returned unchanged)."""

    name = "over-budget"

    def __init__(self, min_rms: float = 0.0) -> None:
        self.min_rms = min_rms

    def _search(self, oracle, clean, goal, constraints, generator, state) -> None:
        oracle.query(clean[None].numpy())
        rms = float(clean.pow(2).mean().sqrt())
        if rms >= self.min_rms:
            state.best_delta = (torch.randn(clean.shape, generator=generator) * rms).clamp(-0.9, 0.9)


class EdgeOfBudget(Attack):
    """Proposes loud noise and lets ``constraints.repair`` shrink it: the result sits on the edge of whichever limit
    binds first (the size budget or the MFCC floor). One query."""

    name = "edge"

    def _search(self, oracle, clean, goal, constraints, generator, state) -> None:
        loud = torch.randn((1, clean.numel()), generator=generator) * float(clean.abs().max())
        deltas = constraints.repair(clean, loud)
        state.observe(deltas, goal.evaluate(oracle, clean[None] + deltas))
