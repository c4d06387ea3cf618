"""The PostgreSQL cases (``python -m perf --postgres``).

- **Floor** (``baseline-pg``): raw asyncpg under trio-asyncio doing the same
  writes per workflow as corral's PostgreSQL store (the execution row and its
  step rows at submission, one row update per finished step, committed before
  its dependents start, the execution's finish), with the same group commit:
  one writer task, whatever is queued goes into one transaction, crossing into
  asyncio once per batch. Nothing else: the ratio corral ÷ floor is the price
  of everything else corral does (JSON params, fencing, leases, the plan).
- **Workers** (``workers/N``): N ``corral worker`` processes against one
  server; the work (single-step workflows) is queued first, and the rate is
  taken from the records (first start to last finish), so process start-up
  does not count.
- **Cross-process cancel** (``xcancel/sqlite``, ``xcancel/postgres``): a
  worker process runs a step that sleeps; another process asks to cancel;
  the time until the worker has stopped it and recorded it (its
  ``finished_at``) is the latency.
- **Server cost per workflow**: transactions, rows written and server CPU
  (the server's processes, read with psutil) per workflow of the corral
  throughput case, from which docs/performance.md projects N workers.

The server: ``$CORRAL_PERF_POSTGRES`` (an admin URL), else a throwaway
cluster started for the run (tests/pgcluster.py, with fsync on: durable
commits, as in production). Every case gets a database of its own.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import importlib.util
import itertools
import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import msgspec
import trio

from perf.baselines import TrioRun, TrioSystem
from perf.workloads import StepDef

__all__ = [
    "ENV",
    "fresh_database",
    "open_pg_floor",
    "run_workers_repeat",
    "run_xcancel_repeat",
    "server",
]

ENV = "CORRAL_PERF_POSTGRES"
REPO_ROOT = Path(__file__).resolve().parent.parent
_encode = msgspec.json.Encoder().encode


def _pgcluster() -> Any:
    path = REPO_ROOT / "tests" / "pgcluster.py"
    spec = importlib.util.spec_from_file_location("pgcluster", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["pgcluster"] = module
    spec.loader.exec_module(module)
    return module


@contextlib.contextmanager
def server() -> Iterator[str]:
    """The admin URL of the run's server (started here unless ``$CORRAL_PERF_POSTGRES``)."""
    given = os.environ.get(ENV)
    if given:
        yield given
        return
    cluster = _pgcluster().start(durable=True)
    os.environ[ENV] = cluster.url
    try:
        yield cluster.url
    finally:
        os.environ.pop(ENV, None)
        cluster.stop()


def _admin(url: str, *statements: str) -> list[Any]:
    import asyncpg

    async def run() -> list[Any]:
        conn = await asyncpg.connect(url)
        try:
            return [await conn.fetch(s) for s in statements]
        finally:
            await conn.close()

    with concurrent.futures.ThreadPoolExecutor(1) as pool:  # plain asyncio, off Trio's thread
        return pool.submit(asyncio.run, run()).result()


_names = itertools.count()


@contextlib.contextmanager
def fresh_database() -> Iterator[str]:
    """A new database on the run's server; its URL."""
    admin = os.environ[ENV]
    name = f"corral_perf_{os.getpid()}_{next(_names)}"
    _admin(admin, f"CREATE DATABASE {name}")
    try:
        yield f"{admin.rpartition('/')[0]}/{name}"
    finally:
        _admin(admin, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


# ---------------------------------------------------------------- the floor

_FLOOR_SCHEMA = """
CREATE TABLE executions (id BIGINT PRIMARY KEY, status TEXT NOT NULL, inputs BYTEA NOT NULL,
    result BYTEA, created_at DOUBLE PRECISION NOT NULL, finished_at DOUBLE PRECISION);
CREATE TABLE steps (execution_id BIGINT NOT NULL REFERENCES executions (id), step_id TEXT NOT NULL,
    status TEXT NOT NULL, output BYTEA, finished_at DOUBLE PRECISION,
    PRIMARY KEY (execution_id, step_id));
"""


class PgWriter:
    """Group commit on asyncpg: queued writes of every workflow, one
    transaction per batch, one crossing into asyncio per batch."""

    def __init__(self, pool: Any, loop: Any) -> None:
        self._pool = pool
        self._loop = loop
        self._inserts: list[tuple[int, bytes, float]] = []
        self._steps: list[tuple[int, str]] = []
        self._updates: list[tuple[int, str, bytes, float]] = []
        self._finishes: list[tuple[int, bytes, float]] = []
        self._committed = trio.Event()
        self._wake = trio.Event()
        self.batches = 0
        self.rows = 0

    def insert(self, run_id: int, step_ids: list[str], i: int) -> None:
        """The execution and its step rows (not waited for, as corral's submit)."""
        self._inserts.append((run_id, _encode({"i": i}), time.time()))
        self._steps += [(run_id, s) for s in step_ids]
        self._wake.set()

    async def step_done(self, run_id: int, step_id: str, output: Any) -> None:
        self._updates.append((run_id, step_id, _encode(output), time.time()))
        await self._wait()

    async def finish(self, run_id: int, result: Any) -> None:
        self._finishes.append((run_id, _encode(result), time.time()))
        await self._wait()

    async def _wait(self) -> None:
        committed = self._committed
        self._wake.set()
        await committed.wait()

    async def _write(self, batch: tuple[list[Any], ...]) -> None:
        inserts, steps, updates, finishes = batch
        async with self._pool.acquire() as conn, conn.transaction():
            if inserts:
                await conn.executemany(
                    "INSERT INTO executions (id, status, inputs, created_at) "
                    "VALUES ($1, 'running', $2, $3)",
                    inserts,
                )
            if steps:
                await conn.executemany(
                    "INSERT INTO steps (execution_id, step_id, status) VALUES ($1, $2, 'pending')",
                    steps,
                )
            if updates:
                await conn.executemany(
                    "UPDATE steps SET status = 'succeeded', output = $3, finished_at = $4 "
                    "WHERE execution_id = $1 AND step_id = $2",
                    updates,
                )
            if finishes:
                await conn.executemany(
                    "UPDATE executions SET status = 'succeeded', result = $2, finished_at = $3 "
                    "WHERE id = $1",
                    finishes,
                )

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake = trio.Event()
            batch = (self._inserts, self._steps, self._updates, self._finishes)
            committed = self._committed
            self._inserts, self._steps, self._updates, self._finishes = [], [], [], []
            self._committed = trio.Event()
            if not any(batch):
                committed.set()
                continue
            await self._loop.run_aio_coroutine(self._write(batch))
            self.batches += 1
            self.rows += sum(len(part) for part in batch)
            committed.set()


class PgFloorSystem(TrioSystem):
    """The baselines' Trio workflows, with corral's writes on PostgreSQL."""

    def __init__(self, nursery: trio.Nursery, writer: PgWriter) -> None:
        super().__init__(nursery, None)
        self._pg = writer

    async def submit(self, workload: str, i: int) -> TrioRun:
        run = await super().submit(workload, i)
        assert run.workload is not None
        self._pg.insert(run.id, [s.id for s in run.workload.steps], i)
        return run

    async def _record(self, run: TrioRun, step: StepDef, output: Any) -> None:
        await self._pg.step_done(run.id, step.id, output)

    async def _finished(self, run: TrioRun) -> None:
        assert run.workload is not None
        await self._pg.finish(run.id, run.outputs[run.workload.output])

    def describe(self) -> dict[str, Any]:
        return {"rows": self._pg.rows, "batches": self._pg.batches}


@asynccontextmanager
async def open_pg_floor(url: str) -> AsyncIterator[PgFloorSystem]:
    import asyncpg
    import trio_asyncio

    async with trio_asyncio.open_loop() as loop:
        pool = await loop.run_aio_coroutine(asyncpg.create_pool(url, min_size=1, max_size=10))
        try:
            await loop.run_aio_coroutine(pool.execute(_FLOOR_SCHEMA))
            writer = PgWriter(pool, loop)
            async with trio.open_nursery() as outer:
                outer.start_soon(writer.run)
                async with trio.open_nursery() as workflows:
                    yield PgFloorSystem(workflows, writer)
                outer.cancel_scope.cancel()
        finally:
            await loop.run_aio_coroutine(pool.close())


# ---------------------------------------------------------------- server cost


def server_cpu_s(url: str) -> float | None:
    """CPU seconds used so far by the server's processes (same machine only)."""
    import psutil

    port = int(url.rpartition("@")[2].split("/")[0].rpartition(":")[2] or 5432)
    for proc in psutil.process_iter(["name", "cmdline"]):
        try:
            cmd = proc.info["cmdline"] or []
            if (proc.info["name"] or "").startswith("postgres") and f"{port}" in cmd:
                # the postmaster of this server: it and its children (backends,
                # writers); backends that exited are not counted
                total = 0.0
                for p in [proc, *proc.children(recursive=True)]:
                    with contextlib.suppress(psutil.NoSuchProcess):
                        times = p.cpu_times()
                        total += times.user + times.system
                return total
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return None


def server_counters(url: str) -> dict[str, float]:
    """Transactions and rows so far (for per-workflow costs). PostgreSQL
    publishes a connection's figures when it closes (or about once a second):
    read them after the connections closed."""
    (rows,) = _admin(
        url,
        "SELECT xact_commit, tup_inserted, tup_updated, tup_deleted, tup_fetched "
        "FROM pg_stat_database WHERE datname = current_database()",
    )
    r = rows[0]
    out = {
        "commits": float(r[0]),
        "rows_inserted": float(r[1]),
        "rows_updated": float(r[2]),
        "rows_deleted": float(r[3]),
        "rows_fetched": float(r[4]),
    }
    return out


# ---------------------------------------------------------------- workers


_FLOW = "name: perf-worker\nsteps:\n  - {id: s, handler: core.noop}\n"


def _corral(*args: str, **kw: Any) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "corral", *args], text=True, **kw)


def run_workers_repeat(workers: int, count: int, timeout: float) -> dict[str, Any]:
    """``count`` single-step workflows queued, then ``workers`` worker processes."""
    import corral

    with fresh_database() as url:

        async def queue() -> None:
            async with corral.open_engine(url, run_here=False, entry_points=False) as client:
                wf = corral.Workflow("perf-worker")
                wf.step("s", "core.noop")
                spec = wf.build()
                for _ in range(count):
                    await client.submit(spec)

        trio.run(queue)
        procs = [
            _corral(
                "worker",
                "--store",
                url,
                "--concurrency",
                "256",
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for _ in range(workers)
        ]
        try:
            deadline = time.monotonic() + timeout
            while True:
                (rows,) = _admin(
                    url, "SELECT count(*) FROM workflow_executions WHERE finished_at IS NULL"
                )
                if rows[0][0] == 0:
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{rows[0][0]} of {count} unfinished after {timeout:.0f} s")
                if any(p.poll() is not None for p in procs):
                    raise RuntimeError("a worker exited")
                time.sleep(0.05)
        finally:
            for p in procs:
                p.send_signal(signal.SIGTERM)
            for p in procs:
                try:
                    p.wait(30)
                except subprocess.TimeoutExpired:
                    p.kill()
        (rows,) = _admin(
            url,
            "SELECT min(started_at), max(finished_at), count(*), "
            "count(*) FILTER (WHERE status = 'succeeded'), count(DISTINCT owner) "
            "FROM workflow_executions",
        )
    first, last, total, ok, owners = rows[0]
    if ok != count:
        raise RuntimeError(f"{ok} of {count} succeeded")
    return {
        "workflows_per_s": count / (last - first),
        "span_s": last - first,
        "workers": workers,
        "workers_that_ran_work": owners,
    }


# ---------------------------------------------------------------- cross-process cancel


def run_xcancel_repeat(backend: str, tries: int, timeout: float) -> dict[str, Any]:
    """Median and worst latency of a cancel asked by another process."""
    import tempfile

    import corral

    with contextlib.ExitStack() as stack:
        if backend == "postgres":
            url = stack.enter_context(fresh_database())
        else:
            tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="corral-perf-x-"))
            url = f"sqlite:///{tmp}/x.db"
        worker = _corral(
            "worker", "--store", url, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        stack.callback(lambda: (worker.poll() is None and worker.kill(), worker.wait(30)))
        latencies: list[float] = []

        async def measure() -> None:
            async with corral.open_engine(url, run_here=False, entry_points=False) as client:
                wf = corral.Workflow("perf-xcancel")
                wf.step("s", "core.sleep", params={"seconds": 3600})
                spec = wf.build()
                with trio.fail_after(timeout):
                    for _ in range(tries):
                        handle = await client.submit(spec)
                        while (await client.get(handle.id)).step("s").status != "running":
                            await trio.sleep(0.01)
                        await trio.sleep(0.05)
                        asked = time.time()
                        await client.cancel(handle.id)
                        while (record := await client.get(handle.id)).finished_at is None:
                            await trio.sleep(0.002)
                        if record.status != "cancelled":
                            raise RuntimeError(f"ended {record.status}, not cancelled")
                        latencies.append((record.finished_at - asked) * 1000)

        trio.run(measure)
        worker.send_signal(signal.SIGTERM)
        worker.wait(30)
    return {
        "cancel_p50_ms": statistics.median(latencies),
        "cancel_max_ms": max(latencies),
        "tries": tries,
    }
