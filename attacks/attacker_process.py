"""The attacker's process: where a campaign's attack code runs, holding nothing but the sessions it is handed.

The campaign (the owner) holds the oracle server and opens one session per utterance; it hands the session's pipe to
this process as a ``SessionTicket`` together with the attack call's arguments, and reads the result back. So the
process where attack code runs holds no admin pipe (it cannot open, reopen or resize a session), no model and no
other session, and its result reaches the owner as plain data (``attacks.wire``): nothing it sends is unpickled. The
attacker's own transfer prior (its surrogate model) is started here, since it is the attacker's.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Callable

import numpy as np

from attacks.base import Attack
from attacks.constraints import PerturbationBudget
from attacks.goals import Goal
from attacks.oracle import QueryOracle, SessionTicket
from attacks.process_host import HostError, ProcessHost, incoming
from attacks.result import AttackResult
from attacks.wire import WireError, pack, unpack


class AttackerError(HostError):
    """The attack failed on an utterance, or its process broke the protocol (the message says which)."""


@dataclass(frozen=True)
class AttackJob:
    """One attack call: the attack object (hyper-parameters only), clean audio [T] float32 at the oracle's rate, the
    goal, the perturbation budget, the seed, the system's clean transcript, and whether to use the transfer prior."""

    attack: Attack
    clean: np.ndarray
    goal: Goal
    budget: PerturbationBudget
    seed: int
    transcript_clean: str
    use_prior: bool = False


def _run_job(job: AttackJob, ticket: SessionTicket, prior) -> bytes:
    from attacks.constraints import Constraints

    oracle = QueryOracle(ticket)
    try:
        result = job.attack(oracle, job.clean, job.goal, Constraints(job.budget, sample_rate=oracle.sample_rate),
                            seed=job.seed, transcript_clean=job.transcript_clean,
                            prior=prior if job.use_prior else None)
        return pack({"status": "ok", "summary": result.summary()}, np.asarray(result.adversarial, np.float32))
    except BaseException as error:  # noqa: BLE001 - reported to the owner, which raises it
        return pack({"status": "error", "message": f"{type(error).__name__}: {error}"})
    finally:
        oracle.close()


def _serve(prior_factory: Callable | None, connection, threads: int | None) -> None:
    """The attacker's loop (child process): start the prior if any, then run jobs until told to close."""
    import torch

    from attacks.transfer_prior import TransferPrior
    from core.logs import configure_child

    configure_child()  # the parent's choice of quiet output and of loggers to debug
    if threads:
        torch.set_num_threads(threads)
    prior = None
    try:
        try:
            prior = None if prior_factory is None else TransferPrior(prior_factory, threads=threads)
            connection.send_bytes(pack({"status": "ready", "payload": {
                "prior": None if prior is None else prior.describe()}}))
        except BaseException as error:  # noqa: BLE001
            connection.send_bytes(pack({"status": "error", "payload": f"starting the attacker failed: {error!r}"}))
            return
        for _, job, ticket in incoming(connection):  # from the owner: trusted
            connection.send_bytes(_run_job(job, ticket, prior))
    finally:
        if prior is not None:
            prior.close()


class AttackerProcess(ProcessHost):
    """Runs attack calls in a process of their own (see the module docstring).

    Args:
        prior_factory: picklable zero-argument callable building the attacker's transfer prior (a ``Surrogate``),
            started inside the attacker's process; None: no prior.
        threads: torch intra-op threads for the attack's own arithmetic (default: torch's choice).
    """

    error = AttackerError

    def __init__(self, prior_factory: Callable | None = None, threads: int | None = None,
                 start_method: str = "spawn", startup_timeout_s: float = 600.0) -> None:
        # not a daemon: the attacker may start its prior's process
        super().__init__(_serve, prior_factory, threads, name="attacker", start_method=start_method,
                         startup_timeout_s=startup_timeout_s, daemon=False)

    def _receive(self) -> tuple[str, object]:
        try:
            body, arrays = unpack(self._connection.recv_bytes())
        except WireError as error:
            raise AttackerError(f"the attacker's process sent a malformed message: {error}") from None
        if not isinstance(body, dict) or not isinstance(body.get("status"), str):
            raise AttackerError("the attacker's process sent a message without a status")
        if body["status"] == "ok":
            return "ok", (body.get("summary"), arrays)
        return body["status"], body.get("payload", body.get("message"))

    def run(self, job: AttackJob, ticket: SessionTicket) -> AttackResult:
        """Run one attack call on the handed-over session; returns its result (checked to be plain and complete)."""
        summary, arrays = self._request(("attack", job, ticket))
        names = {f.name for f in fields(AttackResult)} - {"adversarial"}
        if not isinstance(summary, dict) or set(summary) != names or len(arrays) != 1:
            raise AttackerError(f"the attacker returned a malformed result (keys {sorted(summary or {})})")
        adversarial = arrays[0]
        if adversarial.dtype != np.float32 or adversarial.shape != job.clean.shape:
            raise AttackerError(f"the attacker returned audio of {adversarial.dtype} {adversarial.shape}, expected "
                                f"float32 {job.clean.shape}")
        summary["history"] = [tuple(step) for step in summary["history"]]
        return AttackResult(adversarial=adversarial, **summary)

    @property
    def prior_description(self) -> dict | None:
        """The started prior's ``describe()`` (label and fingerprint), or None."""
        return self.info["prior"]
