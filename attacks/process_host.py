"""A model in its own process, reached only through a pipe of plain values.

``ProcessHost`` starts ``serve(factory, connection, *options)`` in a fresh (``spawn``) process; the child builds its
model from the picklable ``factory`` and answers ``(kind, ...)`` requests with ``(status, payload)``. Whatever the
child holds (modules, parameters, gradients) never exists in the parent, so code that only holds the host cannot
reach it. The query oracle (the victim system) and the transfer prior (the attacker's own surrogate) both live so.
"""

from __future__ import annotations

import multiprocessing
import pickle
import traceback
from typing import Callable, Iterator


class HostError(RuntimeError):
    """The hosted model failed to start or to answer (the message carries the child's error)."""


def build_in_child(factory: Callable, connection, threads: int | None, what: str):
    """Child side: set torch's threads, build the model and report ``("ready", model.describe())``; on failure
    report the error (the parent raises it) and return None."""
    import torch

    from core.logs import configure_child

    configure_child()  # the parent's choice of quiet or verbose output
    if threads:
        torch.set_num_threads(threads)
    try:
        model = factory()
        connection.send(("ready", model.describe()))
        return model
    except BaseException as error:  # noqa: BLE001 - reported to the parent, which raises it
        connection.send(("error", f"building the {what} failed: {error!r}\n{traceback.format_exc()}"))
        return None


def next_request(connection) -> tuple | None:
    """Child side: the parent's next request, or None once it says ``close`` or goes away."""
    try:
        request = connection.recv()
    except EOFError:
        return None
    return None if request[0] == "close" else request


def incoming(connection) -> Iterator[tuple]:
    """Child side: the parent's requests, until it says ``close`` or goes away."""
    while (request := next_request(connection)) is not None:
        yield request


def run_in_child(function: Callable, name: str) -> None:
    """Run the picklable zero-argument ``function`` to completion in a fresh, non-daemon (``spawn``) process, which
    may start processes of its own (e.g. to train a missing backend with data-loader workers); whatever it builds
    never exists here. Raises ``HostError`` if it fails (its traceback is printed by the child)."""
    process = multiprocessing.get_context("spawn").Process(target=function, name=name)
    process.start()
    process.join()
    if process.exitcode != 0:
        raise HostError(f"the {name} process failed (exit code {process.exitcode}); its error is printed above")


class ProcessHost:
    """Args: serve: the child's loop, ``serve(factory, connection, *options)``; it first sends ``("ready", info)``
    or ``("error", message)``; factory: picklable zero-argument callable building the model in the child;
    options: more picklable arguments for ``serve``; name: the process name; start_method: ``spawn`` never shares
    CUDA / OpenMP state with the parent."""

    error = HostError

    def __init__(self, serve: Callable, factory: Callable, *options, name: str = "model-host",
                 start_method: str = "spawn", startup_timeout_s: float = 600.0, daemon: bool = True) -> None:
        context = multiprocessing.get_context(start_method)
        self._connection, child = context.Pipe()
        self._process = context.Process(target=serve, args=(factory, child, *options), daemon=daemon, name=name)
        self._process.start()
        child.close()
        if not self._connection.poll(startup_timeout_s):
            self.close()
            raise self.error(f"the {name} did not start within {startup_timeout_s:.0f} s")
        try:
            status, info = self._receive()
        except EOFError:
            self.close()
            raise self.error(f"the {name} process exited while starting (code {self._process.exitcode})") from None
        if status != "ready":
            self.close()
            raise self.error(info)
        self.info: dict = info

    def _receive(self) -> tuple[str, object]:
        """The child's next ``(status, payload)``; hosts whose child is not trusted decode it without pickle."""
        return self._connection.recv()

    def _request(self, message: tuple):
        if not self._process.is_alive():
            raise self.error(f"the {self._process.name} process has exited (code {self._process.exitcode})")
        self._connection.send(message)
        try:
            status, payload = self._receive()
        except EOFError:
            raise self.error(f"the {self._process.name} process died (code {self._process.exitcode})") from None
        if status == "error":
            raise self.error(payload)
        return payload

    def close(self) -> None:
        if self._process.is_alive():
            try:
                self._connection.send(("close",))
            except (BrokenPipeError, OSError):
                pass
            self._process.join(timeout=10)
            if self._process.is_alive():
                self._process.kill()
        self._connection.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __reduce__(self):
        raise pickle.PicklingError(f"a {type(self).__name__} cannot be pickled or sent to another process")
