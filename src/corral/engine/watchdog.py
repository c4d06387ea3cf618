"""Noticing a handler that blocks the event loop.

Trio cannot pre-empt a task: an ``async`` handler that calls ``time.sleep(3)``
(or reads a large file, or runs a long computation) freezes every workflow of
the engine for those 3 s, and no timeout fires while it does. corral cannot
stop it either, but it can say so: a task of the engine's beats a few times
per threshold, and a thread (which runs while the loop is stuck) notices the
beat is late. It then looks at the loop thread's stack for the step being
run (the frame of ``WorkflowRun._call_handler``) and the handler's line,
logs a warning at once, and, when the loop is back, reports the stall with
its length: the engine counts it (``loop_stalls``) and marks the step's
record with a warning.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import CodeType, FrameType

import trio

__all__ = ["LoopWatchdog", "Stall"]

log = logging.getLogger("corral.engine")


@dataclass(slots=True)
class Stall:
    """One stretch of time the event loop did not run."""

    execution_id: str | None
    step_id: str | None
    handler: str | None
    where: str  # file:line the loop thread was at
    seconds: float = 0.0

    def describe(self) -> str:
        who = (
            f"step {self.step_id!r} (handler {self.handler}) of execution {self.execution_id}"
            if self.step_id is not None
            else "code outside any step"
        )
        return f"{who} held the event loop for {self.seconds:.2f} s at {self.where}"


class LoopWatchdog:
    """Run :meth:`run` in the engine's nursery; ``report`` gets every stall
    longer than ``threshold`` seconds once the loop runs again. ``marker`` is
    the code object whose frame names the running step (its locals ``self``,
    a ``WorkflowRun``, and ``sp``, a ``StepPlan``)."""

    def __init__(
        self,
        threshold: float,
        report: Callable[[Stall], Awaitable[None]],
        marker: CodeType,
    ) -> None:
        self.threshold = threshold
        self.interval = min(0.1, threshold / 4)
        self.report = report
        self.marker = marker
        self._beat = time.monotonic()
        self._found: Stall | None = None
        self._noticed_beat = -1.0

    async def run(self) -> None:
        loop_thread = threading.get_ident()
        stop = threading.Event()
        thread = threading.Thread(
            target=self._watch, args=(loop_thread, stop), name="corral-loop-watchdog", daemon=True
        )
        thread.start()
        try:
            while True:
                before = time.monotonic()
                self._beat = before
                await trio.sleep(self.interval)
                found, self._found = self._found, None
                if found is not None:
                    found.seconds = max(0.0, time.monotonic() - before - self.interval)
                    await self.report(found)
        finally:
            stop.set()  # the thread ends at its next look (a daemon: nothing waits)

    def _watch(self, loop_thread: int, stop: threading.Event) -> None:
        while not stop.wait(self.interval):
            beat = self._beat
            late = time.monotonic() - beat - self.interval
            if late > self.threshold and beat != self._noticed_beat:
                self._noticed_beat = beat
                stall = self._locate(loop_thread)
                log.warning(
                    "the event loop has been blocked for %.2f s by %s",
                    late,
                    stall.describe().split(" held ")[0] + f" at {stall.where}",
                )
                self._found = stall

    def _locate(self, loop_thread: int) -> Stall:
        """What the loop thread is running: the step (if any) and its line."""
        frame: FrameType | None = sys._current_frames().get(loop_thread)
        top = frame
        while frame is not None:
            if frame.f_code is self.marker:
                run, sp = frame.f_locals.get("self"), frame.f_locals.get("sp")
                record = getattr(run, "record", None)
                return Stall(
                    getattr(record, "id", None),
                    getattr(sp, "id", None),
                    getattr(sp, "handler_name", None),
                    _where(top),
                )
            frame = frame.f_back
        return Stall(None, None, None, _where(top))


def _where(frame: FrameType | None) -> str:
    if frame is None:
        return "?"
    return f"{frame.f_code.co_filename}:{frame.f_lineno} ({frame.f_code.co_name})"
