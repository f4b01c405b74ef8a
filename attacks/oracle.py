"""The query oracle: the only thing a closed-model attack ever holds.

The target system (defense -> backend, + detector) lives in a separate process started by ``OracleServer``; an
attack gets a ``QueryOracle`` session that can only send waveforms and receive transcripts, scores (negative
log-likelihoods of texts) and detector scores as plain Python / NumPy values. No module, parameter, tensor with
autograd history or gradient exists in the attacker's process, so an attack cannot reach one, and the budget is
counted and enforced by the server process, so an attack cannot spend more than it was given either.

Every waveform in every call is one query, whatever outputs it asks for.
"""

from __future__ import annotations

import itertools
import math
import pickle
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from attacks.process_host import HostError, ProcessHost, build_in_child, incoming

DEFAULT_QUERY_BUDGET = 10_000


class QueryBudgetExceeded(RuntimeError):
    """A call asked for more queries than the session has left (nothing was evaluated)."""


class OracleError(HostError):
    """The target system failed on a query (the message carries the server's error)."""


@dataclass(frozen=True)
class QueryResult:
    """Answers for P waveforms: transcripts [P], scores [P] (nats, lower = text more likely), detector scores [P]."""

    transcripts: list[str] | None = None
    scores: np.ndarray | None = None
    detector_scores: np.ndarray | None = None


def _as_batch(waveforms) -> np.ndarray:
    array = np.asarray(waveforms.detach().cpu() if hasattr(waveforms, "detach") else waveforms, dtype=np.float32)
    if array.ndim == 1:
        array = array[None]
    if array.ndim != 2 or array.shape[0] == 0:
        raise ValueError(f"waveforms must be [P, T] with P >= 1, got shape {array.shape}")
    return np.ascontiguousarray(array)


def _serve(factory: Callable, connection, max_batch: int, threads: int | None) -> None:
    """Server loop (child process): build the system, then answer requests until told to close."""
    import torch

    torch.set_grad_enabled(False)
    system = build_in_child(factory, connection, threads, "target system")
    if system is None:
        return
    sessions: dict[int, list[int]] = {}  # id -> [budget, used]
    for request in incoming(connection):
        kind = request[0]
        if kind == "open":
            _, session, budget = request
            sessions[session] = [budget, 0]
            connection.send(("ok", None))
            continue
        _, session, waveforms, lengths, score_texts, transcribe, detect = request
        if session not in sessions:
            connection.send(("error", f"unknown query session {session!r}"))
            continue
        budget, used = sessions[session]
        count = waveforms.shape[0]
        if used + count > budget:
            connection.send(("budget", f"{count} queries asked, {budget - used} of {budget} left"))
            continue
        try:
            answers: dict = {}
            started = time.perf_counter()
            size = math.ceil(count / math.ceil(count / max_batch))  # even passes: 65 -> 33 + 32, not 64 + 1
            for start in range(0, count, size):
                stop = min(start + size, count)
                part = system.respond(
                    torch.from_numpy(waveforms[start:stop]).to(system.backend.device),
                    torch.from_numpy(lengths[start:stop]),
                    None if score_texts is None else score_texts[start:stop], transcribe, detect,
                )
                for key, values in part.items():
                    answers.setdefault(key, []).extend(values)
            sessions[session][1] = used + count
            connection.send(("ok", (answers, used + count, time.perf_counter() - started)))
        except BaseException as error:  # noqa: BLE001
            connection.send(("error", f"{type(error).__name__}: {error}"))


class OracleServer(ProcessHost):
    """Runs a target system in its own process and opens budgeted query sessions on it.

    Args:
        factory: picklable zero-argument callable returning a ``TargetSystem`` (built in the server process).
        max_batch: most waveforms per forward pass (larger calls are split into even passes; one call is still P
            queries).
        threads: torch intra-op threads in the server (default: torch's choice).
        start_method: multiprocessing start method; ``spawn`` never shares CUDA / OpenMP state with the parent.
    """

    error = OracleError
    special_statuses = {"budget": QueryBudgetExceeded}

    def __init__(self, factory: Callable, max_batch: int = 64, threads: int | None = None,
                 start_method: str = "spawn", startup_timeout_s: float = 600.0) -> None:
        super().__init__(_serve, factory, max_batch, threads, name="oracle-server", start_method=start_method,
                         startup_timeout_s=startup_timeout_s)
        self._session_ids = itertools.count()

    def session(self, budget: int = DEFAULT_QUERY_BUDGET) -> "QueryOracle":
        """A fresh query session (one per attacked utterance) with its own budget."""
        if int(budget) < 1:
            raise ValueError(f"a query budget must be >= 1, got {budget}")
        session = next(self._session_ids)
        self._request(("open", session, int(budget)))
        return QueryOracle(self, session, int(budget))


class QueryOracle:
    """A budgeted query session: what an attack holds. All inputs are waveforms [P, T] (or [T]) in [-1, 1]."""

    __slots__ = ("_server", "_session", "_budget", "_used", "_system_seconds")

    def __init__(self, server: OracleServer, session: int, budget: int) -> None:
        self._server = server
        self._session = session
        self._budget = budget
        self._used = 0
        self._system_seconds = 0.0

    # public facts ---------------------------------------------------------------------------------------
    @property
    def budget(self) -> int:
        return self._budget

    @property
    def queries_used(self) -> int:
        return self._used

    @property
    def remaining(self) -> int:
        return self._budget - self._used

    @property
    def system_seconds(self) -> float:
        """Wall time the target system spent answering this session's queries, measured in the server process
        around its forward passes (excludes transfer between processes): the denominator of the oracle efficiency."""
        return self._system_seconds

    @property
    def sample_rate(self) -> int:
        return self._server.info["sample_rate"]

    @property
    def can_score(self) -> bool:
        """Whether the system returns soft labels (the loss of a text); else only transcripts (hard labels)."""
        return self._server.info["can_score"]

    @property
    def can_detect(self) -> bool:
        return self._server.info["can_detect"]

    @property
    def detector_threshold(self) -> float | None:
        return self._server.info["detector_threshold"]

    @property
    def detector_stochastic(self) -> bool:
        return self._server.info["detector_stochastic"]

    @property
    def fingerprint(self) -> str | None:
        """An opaque hash of the attacked backend's parameters (only to tell models apart)."""
        return self._server.info.get("fingerprint")

    # queries --------------------------------------------------------------------------------------------
    def query(self, waveforms, *, score_texts: list[str] | None = None, transcribe: bool = True,
              detect: bool = False, lengths=None) -> QueryResult:
        """Evaluate P waveforms in one batched call (P queries). Raises ``QueryBudgetExceeded`` (evaluating
        nothing) when fewer than P queries are left."""
        batch = _as_batch(waveforms)
        count = batch.shape[0]
        lengths = np.full(count, batch.shape[1], np.int64) if lengths is None else np.asarray(lengths, np.int64)
        if score_texts is not None:
            if not self.can_score:
                raise OracleError("this system returns no scores (hard-label only)")
            score_texts = [score_texts] * count if isinstance(score_texts, str) else list(score_texts)
            if len(score_texts) != count:
                raise ValueError(f"{len(score_texts)} texts for {count} waveforms")
        if detect and not self.can_detect:
            raise OracleError("this system has no detector to query")
        if count > self.remaining:
            raise QueryBudgetExceeded(f"{count} queries asked, {self.remaining} of {self._budget} left")
        answers, used, seconds = self._server._request(
            ("query", self._session, batch, lengths, score_texts, transcribe, detect))
        self._used = used
        self._system_seconds += seconds
        return QueryResult(
            transcripts=answers.get("transcripts"),
            scores=np.asarray(answers["scores"], np.float64) if "scores" in answers else None,
            detector_scores=np.asarray(answers["detector_scores"], np.float64) if "detector_scores" in answers else None,
        )

    def transcribe(self, waveforms) -> list[str]:
        return self.query(waveforms).transcripts

    def score(self, waveforms, texts: list[str] | str) -> np.ndarray:
        return self.query(waveforms, score_texts=texts, transcribe=False).scores

    def detect(self, waveforms) -> np.ndarray:
        return self.query(waveforms, transcribe=False, detect=True).detector_scores

    def __reduce__(self):
        raise pickle.PicklingError("a QueryOracle session cannot be pickled")

    def __repr__(self) -> str:
        return f"QueryOracle(used={self._used}, budget={self._budget})"
