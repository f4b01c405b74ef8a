"""A transfer prior: the attacker's own surrogate recognizer suggests a search direction (Cheng et al. 2019, P-RGF;
Brunner et al. 2019; the threat model stays closed for the *attacked* model).

The surrogate (``lit_modules.surrogate``) lives in its own process, like the victim behind the oracle; the attack
holds a ``TransferPrior`` and receives d NLL(text) / d waveform as NumPy arrays, computed on the surrogate only. It
costs no oracle queries (it is the attacker's own compute) but wall time, which the benchmarks count. The prior must
be another model than the attacked one: ``check_distinct`` compares the surrogate's parameter fingerprint with the
oracle's and refuses a match.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from attacks.process_host import HostError, ProcessHost, build_in_child, incoming


class TransferPriorError(HostError):
    """The surrogate failed to start or to answer."""


def _serve(factory: Callable, connection, threads: int | None) -> None:
    """Surrogate loop (child process): build it, then answer gradient requests until told to close."""
    import torch

    surrogate = build_in_child(factory, connection, threads, "surrogate")
    if surrogate is None:
        return
    for _, waveforms, texts in incoming(connection):
        try:
            lengths = torch.full((waveforms.shape[0],), waveforms.shape[1], dtype=torch.long)
            losses, gradients = surrogate.losses_and_gradients(torch.from_numpy(waveforms), lengths, texts)
            connection.send(("ok", (losses.numpy().astype(np.float64), gradients.numpy().astype(np.float32))))
        except BaseException as error:  # noqa: BLE001
            connection.send(("error", f"{type(error).__name__}: {error}"))


class TransferPrior(ProcessHost):
    """Args: factory: picklable zero-argument callable returning a ``Surrogate`` (built in the prior's process),
    e.g. ``functools.partial(build_by_name, "lit_modules.surrogate.build_surrogate", checkpoint=...)``;
    threads: torch threads there."""

    error = TransferPriorError

    def __init__(self, factory: Callable, threads: int | None = None, start_method: str = "spawn",
                 startup_timeout_s: float = 600.0) -> None:
        super().__init__(_serve, factory, threads, name="transfer-prior", start_method=start_method,
                         startup_timeout_s=startup_timeout_s)

    @property
    def fingerprint(self) -> str:
        return self.info["fingerprint"]

    def describe(self) -> dict:
        """What identifies the prior in cache keys and tables."""
        return {"label": self.info["label"], "fingerprint": self.info["fingerprint"]}

    def losses_and_gradients(self, waveforms, text: str) -> tuple[np.ndarray, np.ndarray]:
        """The surrogate's NLL(text) (nats; an ensemble's mean) for waveforms [P, T], float64 [P], and
        d NLL / d waveform, float32 [P, T] (one batched forward and backward)."""
        batch = np.ascontiguousarray(np.asarray(waveforms, np.float32).reshape(-1, np.shape(waveforms)[-1]))
        return self._request(("gradient", batch, [text] * len(batch)))

    def loss_and_gradient(self, waveform, text: str) -> tuple[float, np.ndarray]:
        """``losses_and_gradients`` of one waveform [T]: (NLL, gradient [T])."""
        losses, gradients = self.losses_and_gradients(np.asarray(waveform).reshape(1, -1), text)
        return float(losses[0]), gradients[0]

    def gradient(self, waveform, text: str) -> np.ndarray:
        """d NLL(text) / d waveform under the surrogate for one waveform [T]: float32 [T]."""
        return self.loss_and_gradient(waveform, text)[1]

    def check_distinct(self, oracle) -> None:
        """Refuse a surrogate any of whose members has the attacked backend's parameters (a white-box attack in
        disguise)."""
        victim = oracle.fingerprint
        if victim is not None and victim in self.info.get("fingerprints", [self.fingerprint]):
            raise ValueError("the transfer prior's surrogate is the attacked model itself (same parameter "
                             "fingerprint): a closed-model attack may not use the victim's gradients")
