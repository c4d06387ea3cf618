"""The engine's side of :class:`corral.plugins.StepLink`: how a running
step's context reaches back into the engine.

:class:`LoopLink` serves a step run in the engine's process: ``progress()``
calls the engine's reporter in the event loop (through
``trio.from_thread`` when a blocking handler calls it from its worker
thread), and the strategy sets its cancel flag when the step is cancelled,
for a blocking handler polling ``ctx.cancel_requested()``.

:class:`RelayLink` travels (pickled, as plain data) to a ``cpu`` handler's
worker process: ``progress()`` there writes a line to the engine's
:class:`~corral.engine.relay.ProgressRelay` and counts it, so the engine can
wait for the lines in flight before the step's result is reported.
Cancellation of a worker process is a kill, so it never asks.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import trio

from corral.engine.relay import send_progress

__all__ = ["LoopLink", "RelayLink", "Report"]

Report = Callable[[float, float | None, str | None, str | None], None]


class LoopLink:
    __slots__ = ("_cancelled", "_thread", "report")

    def __init__(self, report: Report | None = None) -> None:
        self.report = report  # None: nobody listens for this step's progress
        self._cancelled = False
        self._thread = threading.get_ident()  # the event loop's

    def progress(
        self, done: float, total: float | None, message: str | None, unit: str | None
    ) -> None:
        if self.report is None:
            return
        if threading.get_ident() == self._thread:
            self.report(done, total, message, unit)
        else:
            trio.from_thread.run_sync(self.report, done, total, message, unit)

    def cancel_requested(self) -> bool:
        return self._cancelled

    def request_cancel(self) -> None:
        self._cancelled = True


class RelayLink:
    __slots__ = ("address", "sent")

    def __init__(self, address: tuple[str, int]) -> None:
        self.address = address  # (relay socket path, this step's token)
        self.sent = 0  # lines sent: the engine waits for as many

    def progress(
        self, done: float, total: float | None, message: str | None, unit: str | None
    ) -> None:
        self.sent += send_progress(self.address, done, total, message, unit)

    def cancel_requested(self) -> bool:
        return False

    def __reduce__(self) -> tuple[type[RelayLink], tuple[tuple[str, int]]]:
        return (RelayLink, (self.address,))
