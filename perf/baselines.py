"""The raw-Trio floors corral is compared with.

Baseline (a), :class:`TrioSystem` without a writer: one nursery per workflow,
one task per step spawned when the workflow starts, a ``trio.Event`` per step
for dependencies, no persistence. It is what a hand-written Trio program does
and what corral's structure (nursery per workflow, task per step) costs at the
least.

Baseline (b), :class:`TrioSystem` with a :class:`BatchWriter`: the same, plus
one SQLite row per step completion (its output, msgspec-encoded), written by a
single writer task that commits whatever is queued as one transaction in one
thread hop (WAL, ``synchronous=NORMAL``). A step's event is set only after the
commit that contains its row, so dependents start only once their input is
durable: the same rule as corral's ``durability="step"``. It writes nothing
else (no execution rows, no "running" records): it is the least any engine
must do to honour that rule, so the ratio to it is the price of everything
else corral records.

Baseline (c), :class:`LeanSystem` with a :class:`BatchWriter` (issue 20): the
stricter floor. The same one row per finished step, committed before the
step's dependents run, and nothing else, done with as little Trio as that
takes: one task per workflow running its steps in dependency order, in that
task when a step runs alone, a nursery only where steps run side by side (a
fan-out's middle); no task per step, no event per step. What (b) spends on a
task and an event per step is part of (b)'s figure, not of (c)'s.

All three compute every step with the same functions as corral's handlers
(:data:`perf.workloads.FUNCTIONS`) and return the workload's output step's
value, which the measurement checks against the closed form.
"""

from __future__ import annotations

import itertools
import sqlite3
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import msgspec
import trio

from perf.workloads import BLOCKER, CLOCK, FUNCTIONS, WORKLOADS, Arg, StepDef, Workload

__all__ = ["BatchWriter", "LeanSystem", "TrioRun", "TrioSystem", "open_trio_system", "waves"]

_encode = msgspec.json.Encoder().encode


class BatchWriter:
    """One connection, one writer task, group commit.

    ``record`` queues a row and waits for the commit of the batch it landed
    in. The writer takes everything queued, writes it in one transaction in
    one ``trio.to_thread`` hop, then wakes every waiter of that batch; rows
    that arrive meanwhile form the next batch. This is the design
    TECH-NOTES.md measured as the fast way to use SQLite from Trio.
    """

    def __init__(self, path: Path) -> None:
        for stale in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            stale.unlink(missing_ok=True)  # a fresh database, like corral's per case
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS step_results ("
            " workflow INTEGER NOT NULL, step TEXT NOT NULL, output BLOB NOT NULL,"
            " finished_at REAL NOT NULL, PRIMARY KEY (workflow, step))"
        )
        self._pending: list[tuple[int, str, bytes, float]] = []
        self._committed = trio.Event()  # set when the batch now filling commits
        self._wake = trio.Event()
        self.batches = 0
        self.rows = 0

    async def record(self, workflow: int, step: str, output: Any) -> None:
        self._pending.append((workflow, step, _encode(output), time.time()))
        committed = self._committed
        self._wake.set()
        await committed.wait()

    def _write(self, rows: list[tuple[int, str, bytes, float]]) -> None:
        self._conn.execute("BEGIN")
        try:
            self._conn.executemany("INSERT INTO step_results VALUES (?, ?, ?, ?)", rows)
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake = trio.Event()
            rows, committed = self._pending, self._committed
            self._pending, self._committed = [], trio.Event()
            if not rows:
                continue
            await trio.to_thread.run_sync(self._write, rows)
            self.batches += 1
            self.rows += len(rows)
            committed.set()

    def count(self) -> int:
        return int(self._conn.execute("SELECT count(*) FROM step_results").fetchone()[0])

    def close(self) -> None:
        self._conn.close()


class TrioRun:
    """One baseline workflow: its cancel scope, completion event and outputs."""

    __slots__ = ("done", "i", "id", "outputs", "scope", "workload")

    def __init__(self, run_id: int, workload: Workload | None, i: int) -> None:
        self.id = run_id
        self.workload = workload
        self.i = i
        self.scope = trio.CancelScope()
        self.done = trio.Event()
        self.outputs: dict[str, int] = {}


def _resolve(arg: Arg, i: int, outputs: dict[str, int]) -> Any:
    if isinstance(arg, int):
        return arg
    if isinstance(arg, list):
        return [_resolve(a, i, outputs) for a in arg]
    source, name = arg
    if source == "input":
        if name != "i":
            raise KeyError(name)
        return i
    return outputs[name]


class TrioSystem:
    """Runs workloads as plain Trio tasks; the same interface as ``CorralSystem``."""

    def __init__(self, nursery: trio.Nursery, writer: BatchWriter | None) -> None:
        self._nursery = nursery
        self._writer = writer
        self._ids = itertools.count(1)

    async def submit(self, workload: str, i: int) -> TrioRun:
        run = TrioRun(next(self._ids), WORKLOADS[workload], i)
        self._nursery.start_soon(self._workflow, run)
        return run

    async def submit_blockers(self, width: int, i: int) -> TrioRun:
        run = TrioRun(next(self._ids), None, i)
        self._nursery.start_soon(self._blockers, run, width)
        return run

    async def result(self, run: TrioRun) -> int:
        await run.done.wait()
        assert run.workload is not None
        return run.outputs[run.workload.output]

    async def cancel(self, run: TrioRun) -> str:
        run.scope.cancel()
        await run.done.wait()
        return "cancelled" if run.scope.cancelled_caught else "finished"

    async def _workflow(self, run: TrioRun) -> None:
        assert run.workload is not None
        events = {s.id: trio.Event() for s in run.workload.steps}
        try:
            with run.scope:
                async with trio.open_nursery() as nursery:
                    for step in run.workload.steps:
                        nursery.start_soon(self._step, run, step, events)
                await self._finished(run)
        finally:
            run.done.set()

    async def _step(self, run: TrioRun, step: StepDef, events: dict[str, trio.Event]) -> None:
        for dep in step.needs:
            await events[dep].wait()
        CLOCK.stamp(run.i)
        args = {k: _resolve(v, run.i, run.outputs) for k, v in step.args.items()}
        output = await FUNCTIONS[step.fn](**args)
        run.outputs[step.id] = output
        await self._record(run, step, output)
        events[step.id].set()

    async def _record(self, run: TrioRun, step: StepDef, output: Any) -> None:
        """Make a step's output durable before its dependents start."""
        if self._writer is not None:
            await self._writer.record(run.id, step.id, output)

    async def _finished(self, run: TrioRun) -> None:
        """A workflow's steps are done (baselines a and b write nothing more)."""

    async def _blockers(self, run: TrioRun, width: int) -> None:
        try:
            with run.scope:
                async with trio.open_nursery() as nursery:
                    for _ in range(width):
                        nursery.start_soon(self._blocker, run)
        finally:
            run.done.set()

    async def _blocker(self, run: TrioRun) -> None:
        CLOCK.stamp(run.i)
        await BLOCKER.block()

    async def abort(self) -> None:
        """Cancel everything still running (the in-flight case's end)."""
        self._nursery.cancel_scope.cancel()

    def describe(self) -> dict[str, Any]:
        if self._writer is None:
            return {}
        return {"rows": self._writer.rows, "batches": self._writer.batches}


_WAVES: dict[str, list[list[StepDef]]] = {}


def waves(workload: Workload) -> list[list[StepDef]]:
    """The workload's steps in dependency order, as groups that may run side
    by side (every step's needs are in earlier groups); worked out once."""
    known = _WAVES.get(workload.name)
    if known is not None:
        return known
    done: set[str] = set()
    left = list(workload.steps)
    out: list[list[StepDef]] = []
    while left:
        ready = [s for s in left if all(n in done for n in s.needs)]
        if not ready:
            raise ValueError(f"workload {workload.name!r} has a cycle")
        out.append(ready)
        done.update(s.id for s in ready)
        left = [s for s in left if s.id not in done]
    _WAVES[workload.name] = out
    return out


class LeanSystem(TrioSystem):
    """Baseline (c): one task per workflow, a nursery only for steps that run
    side by side, each step's row committed before the next group starts."""

    async def _workflow(self, run: TrioRun) -> None:
        assert run.workload is not None
        try:
            with run.scope:
                for group in waves(run.workload):
                    if len(group) == 1:
                        await self._lean_step(run, group[0])
                        continue
                    async with trio.open_nursery() as nursery:
                        for step in group:
                            nursery.start_soon(self._lean_step, run, step)
                await self._finished(run)
        finally:
            run.done.set()

    async def _lean_step(self, run: TrioRun, step: StepDef) -> None:
        CLOCK.stamp(run.i)
        args = {k: _resolve(v, run.i, run.outputs) for k, v in step.args.items()}
        output = await FUNCTIONS[step.fn](**args)
        run.outputs[step.id] = output
        await self._record(run, step, output)


@asynccontextmanager
async def open_trio_system(
    durable: bool, tmpdir: Path, *, lean: bool = False
) -> AsyncIterator[TrioSystem]:
    """Baseline (b) when ``durable``, else baseline (a); (c) when ``lean`` too."""
    writer = BatchWriter(tmpdir / "baseline.db") if durable else None
    try:
        async with trio.open_nursery() as outer:
            if writer is not None:
                outer.start_soon(writer.run)
            async with trio.open_nursery() as workflows:
                system = (LeanSystem if lean else TrioSystem)(workflows, writer)
                yield system
            outer.cancel_scope.cancel()  # workflows done: stop the writer
    finally:
        if writer is not None:
            writer.close()
