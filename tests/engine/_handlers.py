"""Handlers for engine tests. A plain module so worker processes can import it."""

from __future__ import annotations

import os
import threading
import time
from typing import Any

import msgspec
import trio

import corral
from corral.plugins import Handler, StepContext, hookimpl


class PidParams(msgspec.Struct):
    pidfile: str = ""
    seconds: float = 0.0


class CpuPid(Handler):
    """cpu: report the worker's pid; optionally write it to a file and spin."""

    name = "test.cpu_pid"
    kind = "cpu"
    Params = PidParams

    def run(self, ctx: StepContext, params: PidParams) -> Any:  # type: ignore[override]
        if params.pidfile:
            with open(params.pidfile, "w") as f:
                f.write(str(os.getpid()))
        deadline = time.monotonic() + params.seconds
        while time.monotonic() < deadline:
            pass
        return {"pid": os.getpid(), "step": ctx.step_id}


class CpuProgress(Handler):
    """cpu: report progress from the worker process, then return."""

    name = "test.cpu_progress"
    kind = "cpu"

    def run(self, ctx: StepContext, params: Any) -> Any:  # type: ignore[override]
        for i in range(1, 4):
            ctx.progress(i, 3, f"item {i}")
        return os.getpid()


class CpuOddProgress(Handler):
    """cpu: progress values the relay must survive (huge, non-JSON)."""

    name = "test.cpu_odd_progress"
    kind = "cpu"

    def run(self, ctx: StepContext, params: Any) -> Any:  # type: ignore[override]
        ctx.progress(10**400, None, "huge")  # not a float
        ctx.progress(1, 2, os.path)  # type: ignore[arg-type]  # not a string
        ctx.progress(2, 2, "fine")
        return "ok"


class Recorder:
    """A plugin whose handlers record what happens to them."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int, float]] = []  # (step, attempt, trio time)
        self.fail_times: dict[str, int] = {}
        self.running = 0
        self.max_running = 0
        self.gate = threading.Event()

    @hookimpl
    def corral_handlers(self) -> list[type[Handler]]:
        rec = self

        class Flaky(Handler):
            """Fails the first `fail` attempts (per step), then returns the attempt."""

            name = "test.flaky"

            class Params(msgspec.Struct):
                fail: int = 0
                non_retryable: bool = False

            async def run(self, ctx: StepContext, params: Any) -> Any:
                rec.calls.append((ctx.step_id, ctx.attempt, trio.current_time()))
                if ctx.attempt <= params.fail:
                    if params.non_retryable:
                        raise corral.NonRetryable(f"attempt {ctx.attempt} refused")
                    raise RuntimeError(f"attempt {ctx.attempt} failed")
                return ctx.attempt

        class Track(Handler):
            """Sleeps `seconds` and tracks how many run at once."""

            name = "test.track"

            class Params(msgspec.Struct):
                seconds: float = 0.0

            async def run(self, ctx: StepContext, params: Any) -> Any:
                rec.calls.append((ctx.step_id, ctx.attempt, trio.current_time()))
                rec.running += 1
                rec.max_running = max(rec.max_running, rec.running)
                try:
                    await trio.sleep(params.seconds)
                finally:
                    rec.running -= 1
                return ctx.step_id

        class WaitGate(Handler):
            """Blocking: waits (in its thread) until another step opens the gate."""

            name = "test.wait_gate"
            kind = "blocking"

            def run(self, ctx: StepContext, params: Any) -> Any:  # type: ignore[override]
                opened = rec.gate.wait(timeout=60)
                return {"opened": opened, "thread": threading.current_thread().name}

        class OpenGate(Handler):
            name = "test.open_gate"

            async def run(self, ctx: StepContext, params: Any) -> Any:
                await trio.sleep(0.01)
                rec.gate.set()
                return True

        class Cooperative(Handler):
            """Blocking: loops until cancel_requested()."""

            name = "test.cooperative"
            kind = "blocking"

            def run(self, ctx: StepContext, params: Any) -> Any:  # type: ignore[override]
                rec.gate.set()
                while not ctx.cancel_requested():
                    time.sleep(0.005)
                return "stopped"

        return [Flaky, Track, WaitGate, OpenGate, Cooperative, CpuPid, CpuProgress, CpuOddProgress]
