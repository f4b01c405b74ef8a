"""The query oracle: the only thing a closed-model attack ever holds.

Three parties, three processes. The *server* (``OracleServer``'s child process) holds the target system (defense ->
backend, + detector) and the budget of every session. The *owner* (the campaign, or whoever started the server)
opens sessions: only it holds the server's admin pipe. The *attacker* holds a ``QueryOracle``: a pipe bound to one
session that can only send waveforms and receive transcripts, scores (negative log-likelihoods of texts) and detector
scores as plain values. Nothing on that pipe names a session, opens one or changes a budget; the server decodes it
as data (``attacks.wire``, never a pickle) and counts every waveform against that session for its whole life. No
module, parameter, tensor with autograd history or gradient exists in the attacker's process, so an attack cannot
reach one, and it cannot spend more queries than it was given either.

Every waveform in every call is one query, whatever outputs it asks for.
"""

from __future__ import annotations

import itertools
import math
import multiprocessing
import pickle
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Callable

import numpy as np

from attacks.process_host import HostError, ProcessHost, build_in_child, next_request
from attacks.wire import WireError, pack, unpack

DEFAULT_QUERY_BUDGET = 10_000
MAX_QUERY_BYTES = 1 << 31  # one call's waveforms: 2 GiB (e.g. 64 x 30 s of float32 at 16 kHz is 123 MB)


class QueryBudgetExceeded(RuntimeError):
    """A call asked for more queries than the session has left (nothing was evaluated)."""


class OracleError(HostError):
    """The target system failed on a query, or refused a request (the message carries the server's reason)."""


@dataclass(frozen=True)
class QueryResult:
    """Answers for P waveforms: transcripts [P], scores [P] (nats, lower = text more likely), detector scores [P]."""

    transcripts: list[str] | None = None
    scores: np.ndarray | None = None
    detector_scores: np.ndarray | None = None


@dataclass(frozen=True)
class SessionTicket:
    """A session in transit to the attacker's process (sent over a ``multiprocessing`` pipe, which passes the
    connection's descriptor): the pipe bound to the session and the public facts an attacker may know."""

    session_id: int
    connection: Connection
    budget: int
    used: int
    info: dict


def _as_batch(waveforms) -> np.ndarray:
    array = np.asarray(waveforms.detach().cpu() if hasattr(waveforms, "detach") else waveforms, dtype=np.float32)
    if array.ndim == 1:
        array = array[None]
    if array.ndim != 2 or array.shape[0] == 0:
        raise ValueError(f"waveforms must be [P, T] with P >= 1, got shape {array.shape}")
    return np.ascontiguousarray(array)


# ------------------------------------------------------------------------------------------------ server side
@dataclass
class _Session:
    budget: int
    used: int = 0
    connection: Connection | None = None
    seed: int | None = None  # the session's own random stream (stochastic detectors), or None: the server's
    random_state: tuple | None = None  # where that stream stands between calls


def _with_own_randomness(session: _Session, device, evaluate: Callable):
    """``evaluate()`` drawing from the session's own random stream (seeded once at open, carried across its calls):
    what a stochastic system answers a session depends on its seed and its own queries only, not on which other
    sessions ran before (so a resumed campaign gets the answers an uninterrupted one got)."""
    import torch

    if session.seed is None:
        return evaluate()
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        if session.random_state is None:
            torch.manual_seed(session.seed)
        else:
            torch.set_rng_state(session.random_state[0])
            for index, state in zip(devices, session.random_state[1]):
                torch.cuda.set_rng_state(state, index)
        answer = evaluate()
        session.random_state = (torch.get_rng_state(), [torch.cuda.get_rng_state(index) for index in devices])
    return answer


def _decode_query(message: bytes) -> tuple[np.ndarray, np.ndarray, list[str] | None, bool, bool]:
    """A session's request -> (waveforms [P, T] float32, lengths [P] int64, score texts, transcribe, detect);
    raises ``WireError`` for anything that is not a well-formed query."""
    body, arrays = unpack(message)
    if not isinstance(body, dict) or set(body) != {"kind", "score_texts", "transcribe", "detect"}:
        raise WireError("a session can only send queries: {kind, score_texts, transcribe, detect}")
    if body["kind"] != "query":
        raise WireError(f"a session can only query; {body['kind']!r} is refused")
    if len(arrays) != 2 or arrays[0].dtype != np.float32 or arrays[1].dtype != np.int64:
        raise WireError("a query carries waveforms [P, T] float32 and lengths [P] int64")
    waveforms, lengths = arrays
    if waveforms.ndim != 2 or waveforms.shape[0] < 1 or lengths.shape != (waveforms.shape[0],):
        raise WireError(f"waveforms {waveforms.shape} and lengths {lengths.shape} do not match")
    if lengths.min() < 1 or lengths.max() > waveforms.shape[1]:
        raise WireError("lengths must be in [1, T]")
    texts = body["score_texts"]
    if texts is not None and (not isinstance(texts, list) or len(texts) != waveforms.shape[0]
                              or not all(isinstance(t, str) for t in texts)):
        raise WireError("score_texts must be null or one string per waveform")
    if not isinstance(body["transcribe"], bool) or not isinstance(body["detect"], bool):
        raise WireError("transcribe and detect must be booleans")
    return waveforms, lengths, texts, body["transcribe"], body["detect"]


def _answer(system, session: _Session, message: bytes, max_batch: int) -> bytes:
    """One session request -> its encoded answer. Refused requests count nothing; evaluated ones count every
    waveform before the system runs (a failing call is still spent)."""
    import torch

    try:
        waveforms, lengths, score_texts, transcribe, detect = _decode_query(message)
    except WireError as error:
        return pack({"status": "error", "message": f"refused: {error}"})
    count = waveforms.shape[0]
    if session.used + count > session.budget:
        return pack({"status": "budget", "message": f"{count} queries asked, {session.budget - session.used} of "
                                                    f"{session.budget} left"})
    session.used += count
    device = system.backend.device

    def evaluate() -> dict:
        answers: dict = {}
        size = math.ceil(count / math.ceil(count / max_batch))  # even passes: 65 -> 33 + 32, not 64 + 1
        for start in range(0, count, size):
            stop = min(start + size, count)
            part = system.respond(
                torch.from_numpy(waveforms[start:stop]).to(device), torch.from_numpy(lengths[start:stop]),
                None if score_texts is None else score_texts[start:stop], transcribe, detect,
            )
            for key, values in part.items():
                answers.setdefault(key, []).extend(values)
        return answers

    try:
        started = time.perf_counter()
        answers = _with_own_randomness(session, device, evaluate)
        return pack({"status": "ok", "answers": answers, "used": session.used,
                     "seconds": time.perf_counter() - started})
    except BaseException as error:  # noqa: BLE001 - answered to the session
        return pack({"status": "error", "message": f"{type(error).__name__}: {error}"})


def _admin(request: tuple, sessions: dict[int, _Session]) -> tuple:
    """The owner's requests: open a session (a fresh id, once), end one, read its usage."""
    kind = request[0]
    if kind == "open":
        _, session_id, budget, connection, seed = request
        if session_id in sessions:
            connection.close()
            return "error", f"session {session_id} was opened before: a session id is never reused"
        sessions[session_id] = _Session(int(budget), 0, connection, seed)
        return "ok", None
    if kind in ("end", "usage"):
        session = sessions.get(request[1])
        if session is None:
            return "error", f"unknown query session {request[1]!r}"
        if kind == "end" and session.connection is not None:
            session.connection.close()
            session.connection = None
        return "ok", (session.budget, session.used)
    return "error", f"unknown request {kind!r}"


def _serve(factory: Callable, connection, max_batch: int, threads: int | None) -> None:
    """Server loop (child process): build the system, then answer the owner and every open session until the
    owner says ``close`` or goes away."""
    import torch

    torch.set_grad_enabled(False)
    system = build_in_child(factory, connection, threads, "target system")
    if system is None:
        return
    sessions: dict[int, _Session] = {}  # every session ever opened (ids are never reused), with its usage
    while True:
        live = {s.connection: s for s in sessions.values() if s.connection is not None}
        for ready in wait([connection, *live]):
            if ready is connection:
                request = next_request(connection)
                if request is None:
                    return
                connection.send(_admin(request, sessions))
                break  # the set of sessions may have changed
            session = live[ready]
            if session.connection is None:
                continue
            try:
                message = ready.recv_bytes(MAX_QUERY_BYTES)
            except (EOFError, OSError):  # the attacker closed its end (or sent more than a call may): session over
                ready.close()
                session.connection = None
                continue
            try:
                ready.send_bytes(_answer(system, session, message, max_batch))
            except (BrokenPipeError, OSError):
                ready.close()
                session.connection = None


class OracleServer(ProcessHost):
    """Runs a target system in its own process; whoever holds it (the owner) opens budgeted query sessions on it.

    Args:
        factory: picklable zero-argument callable returning a ``TargetSystem`` (built in the server process).
        max_batch: most waveforms per forward pass (larger calls are split into even passes; one call is still P
            queries).
        threads: torch intra-op threads in the server (default: torch's choice).
        start_method: multiprocessing start method; ``spawn`` never shares CUDA / OpenMP state with the parent.
    """

    error = OracleError

    def __init__(self, factory: Callable, max_batch: int = 64, threads: int | None = None,
                 start_method: str = "spawn", startup_timeout_s: float = 600.0) -> None:
        super().__init__(_serve, factory, max_batch, threads, name="oracle-server", start_method=start_method,
                         startup_timeout_s=startup_timeout_s)
        self._context = multiprocessing.get_context(start_method)
        self._session_ids = itertools.count()

    def session(self, budget: int = DEFAULT_QUERY_BUDGET, seed: int | None = None) -> "QueryOracle":
        """A fresh query session (one per attacked utterance) with its own budget, which nothing can raise.
        ``seed``: the session's own random stream in the server (what a stochastic detector draws from); None: the
        server's shared one."""
        if int(budget) < 1:
            raise ValueError(f"a query budget must be >= 1, got {budget}")
        session_id = next(self._session_ids)
        attacker_end, server_end = self._context.Pipe()
        try:
            self._request(("open", session_id, int(budget), server_end, None if seed is None else int(seed)))
        finally:
            server_end.close()  # the server holds its own copy now
        return QueryOracle(SessionTicket(session_id, attacker_end, int(budget), 0, dict(self.info)))

    def usage(self, session_id: int) -> tuple[int, int]:
        """(budget, queries used) of a session, as the server counted them."""
        return self._request(("usage", session_id))

    def end(self, session_id: int) -> tuple[int, int]:
        """Close a session for good (its pipe stops answering); returns its final (budget, queries used)."""
        return self._request(("end", session_id))


class QueryOracle:
    """A budgeted query session: what an attack holds. All inputs are waveforms [P, T] (or [T]) in [-1, 1].

    Built by ``OracleServer.session`` (the owner's side) or from a ``SessionTicket`` in the attacker's process."""

    __slots__ = ("_connection", "_session_id", "_budget", "_used", "_system_seconds", "_info")

    def __init__(self, ticket: SessionTicket) -> None:
        self._connection: Connection | None = ticket.connection
        self._session_id = ticket.session_id
        self._budget = ticket.budget
        self._used = ticket.used
        self._system_seconds = 0.0
        self._info = dict(ticket.info)

    # public facts ---------------------------------------------------------------------------------------
    @property
    def session_id(self) -> int:
        return self._session_id

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
        return self._info["sample_rate"]

    @property
    def can_score(self) -> bool:
        """Whether the system returns soft labels (the loss of a text); else only transcripts (hard labels)."""
        return self._info["can_score"]

    @property
    def can_detect(self) -> bool:
        return self._info["can_detect"]

    @property
    def detector_threshold(self) -> float | None:
        return self._info["detector_threshold"]

    @property
    def detector_stochastic(self) -> bool:
        return self._info["detector_stochastic"]

    @property
    def fingerprint(self) -> str | None:
        """An opaque hash of the attacked backend's parameters (only to tell models apart)."""
        return self._info.get("fingerprint")

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
        if self._connection is None:
            raise OracleError("this query session was handed over or closed")
        request = {"kind": "query", "score_texts": score_texts, "transcribe": bool(transcribe), "detect": bool(detect)}
        try:
            self._connection.send_bytes(pack(request, batch, lengths))
            reply, _ = unpack(self._connection.recv_bytes())
        except (EOFError, OSError) as error:
            raise OracleError(f"the query session was closed by the server ({error!r})") from error
        if reply["status"] == "budget":
            raise QueryBudgetExceeded(reply["message"])
        if reply["status"] != "ok":
            raise OracleError(reply["message"])
        answers = reply["answers"]
        self._used = reply["used"]
        self._system_seconds += reply["seconds"]
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

    # hand-over ------------------------------------------------------------------------------------------
    def hand_over(self) -> SessionTicket:
        """This session as a ticket for another process (e.g. the attacker's); this object stops working."""
        if self._connection is None:
            raise OracleError("this query session was handed over or closed")
        ticket = SessionTicket(self._session_id, self._connection, self._budget, self._used, dict(self._info))
        self._connection = None
        return ticket

    def close(self) -> None:
        """Give the session up (the server stops answering it)."""
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def __reduce__(self):
        raise pickle.PicklingError("a QueryOracle session cannot be pickled (the owner hands it over as a ticket)")

    def __repr__(self) -> str:
        return f"QueryOracle(used={self._used}, budget={self._budget})"
