"""Durability on a real SQLite file and a real PostgreSQL database: resume
after SIGKILL, two engines in two processes, idempotency keys, versioned
definitions and cached steps across engine restarts.

The crash tests run a workflow in a subprocess (``_durable_plugin.py``), kill
it with SIGKILL while its steps block at chosen kill points, read what was
committed, and let a new engine finish the work. Every handler invocation is
appended to a side file, so "not run again" is counted, not assumed.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
import trio

import corral
from corral.core.model import CachePolicy, ExecutionRecord, StepSpec, WorkflowSpec
from corral.storage import lifetime, open_store

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _durable_plugin import (  # noqa: E402
    LEASE,
    DurablePlugin,
    _inputs,
    chain_spec,
    read_lines,
    top_level_done,
)

SCRIPT = HERE / "_durable_plugin.py"
pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")


# ---------------------------------------------------------------- helpers


class Proc:
    """A subprocess running ``_durable_plugin.py``, its output in files."""

    def __init__(self, tmp: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.name = f"{args[0]}-{time.monotonic_ns()}"
        self.out = tmp / f"{self.name}.out"
        self.err = tmp / f"{self.name}.err"
        with open(self.out, "w") as out, open(self.err, "w") as err:
            self.popen = subprocess.Popen(
                [sys.executable, str(SCRIPT), *args],
                stdout=out,
                stderr=err,
                env={**os.environ, **(env or {})},
            )
        self.pid = self.popen.pid

    def describe(self) -> str:
        return (
            f"process {self.name} (rc={self.popen.poll()}):\n"
            f"stdout: {self.out.read_text()}\nstderr: {self.err.read_text()}"
        )

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGKILL)
        self.popen.wait(10)

    async def exited(self, within: float = 60) -> None:
        with trio.move_on_after(within):
            while self.popen.poll() is None:  # noqa: ASYNC110
                await trio.sleep(0.05)
        assert self.popen.poll() == 0, self.describe()


@pytest.fixture
def procs() -> Any:
    started: list[Proc] = []
    yield started
    for p in started:  # never leave a subprocess behind, whatever happened
        if p.popen.poll() is None:
            p.kill()


async def wait_until(
    cond: Callable[[], bool], what: str, alive: Sequence[Proc] = (), within: float = 60
) -> None:
    with trio.move_on_after(within):
        while not cond():
            for p in alive:
                if p.popen.poll() is not None:
                    pytest.fail(f"{what}: the subprocess exited early\n{p.describe()}")
            await trio.sleep(0.02)
        return
    pytest.fail(f"timed out waiting for {what}\n" + "\n".join(p.describe() for p in alive))


@pytest.fixture(params=["sqlite", "postgres"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The store URL: a new SQLite file, or a new PostgreSQL database."""
    if request.param == "postgres":
        return str(request.getfixturevalue("postgres_url"))
    return f"sqlite:///{tmp_path / 'corral.db'}"


async def snapshot(db: str) -> dict[str, ExecutionRecord]:
    """Every execution as committed in the store (read by a fresh store)."""
    store = open_store(db, create=False)
    async with lifetime(store):
        await store.open()
        try:
            listed = await store.list_executions(limit=10_000)
            return {r.id: await store.get_execution(r.id) for r in listed}
        finally:
            await store.close()


def count_rows(db: str, table: str) -> int:
    """Rows in one of the store's tables, read with the database's own driver."""
    if db.startswith("sqlite"):
        with sqlite3.connect(db.removeprefix("sqlite://")) as conn:
            return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
    import asyncpg

    async def count() -> int:
        conn = await asyncpg.connect(db)
        try:
            return int(await conn.fetchval(f"SELECT count(*) FROM {table}"))
        finally:
            await conn.close()

    with concurrent.futures.ThreadPoolExecutor(1) as pool:  # asyncio, outside Trio
        return pool.submit(asyncio.run, count()).result()


def invocations(side: Path) -> Counter[tuple[str, str]]:
    return Counter((e, s) for e, s, _ in read_lines(side))


def ahead(seconds: float) -> Callable[[], float]:
    """A wall clock ``seconds`` ahead of the real one: an engine opened with it
    sees a dead engine's lease (or a cache entry's TTL) expired without
    anyone sleeping for it."""
    return lambda: time.time() + seconds


async def finish_all(db: str, expected: int) -> tuple[dict[str, ExecutionRecord], int]:
    """Open a new engine on the file, its clock past the dead engine's lease;
    wait until every execution is done."""
    async with corral.open_engine(
        db,
        plugins=[DurablePlugin()],
        entry_points=False,
        lease=LEASE,
        clock=ahead(LEASE + 0.3),
    ) as engine:
        with trio.fail_after(60):
            while not await top_level_done(engine, expected):  # noqa: ASYNC110
                await trio.sleep(0.05)
        await engine.wait_idle()
        resumed = engine.resumed
    return await snapshot(db), resumed


def step_no(step_id: str) -> int:
    return int(step_id[1:])


def check_chain(
    execution: str,
    kill_at: int,
    before: ExecutionRecord,
    after: ExecutionRecord,
    calls: Counter[tuple[str, str]],
) -> None:
    """The resume rules for one 10-step chain killed while in step ``kill_at``."""
    committed = {s.step_id for s in before.steps if s.status == "succeeded"}
    # Durability "step": a step starts only once its upstream step is committed.
    assert committed == {f"s{i}" for i in range(1, kill_at)}, before
    assert before.step(f"s{kill_at}").status in ("pending", "running")
    assert before.status == "running" and before.finished_at is None
    assert after.status == "succeeded", after
    assert [s.status for s in after.steps] == ["succeeded"] * 10
    for step in after.steps:
        n = step_no(step.step_id)
        expected = 2 if n == kill_at else 1
        assert calls[(execution, step.step_id)] == expected, (execution, step.step_id, calls)
        if step.step_id in committed:  # kept as stored, not rewritten
            old = before.step(step.step_id)
            assert (step.output, step.finished_at) == (old.output, old.finished_at)
    # Stored outputs fed their dependents: the chain's links are intact.
    assert after.result == {"s10": {"n": 10, "step": "s10", "prev": [9]}}
    if kill_at < 10:
        assert after.step(f"s{kill_at + 1}").output["prev"] == [kill_at]


# ---------------------------------------------------------------- crash tests


async def crash_at(
    db: str, tmp_path: Path, procs: list[Proc], kill_points: str, shape: str
) -> dict[str, ExecutionRecord]:
    """Run ``shape`` (``fan``, ``child``) in a process killed with SIGKILL once
    every kill point is reached; what the store holds then."""
    markers = tmp_path / "markers"
    markers.mkdir()
    crashed = Proc(tmp_path, "crash", db, str(markers), kill_points, shape)
    procs.append(crashed)
    count = len(kill_points.split(","))
    await wait_until(lambda: len(os.listdir(markers)) == count, "every kill point", [crashed])
    crashed.kill()
    return await snapshot(db)


@pytest.mark.parametrize("kill_points", [[1, 5, 10], [3, 3], [7]], ids=str)
async def test_sigkill_mid_workflow_resumes_without_rerunning_finished_steps(
    db: str, tmp_path: Path, procs: list[Proc], kill_points: list[int]
) -> None:
    side, markers = tmp_path / "side.txt", tmp_path / "markers"
    markers.mkdir()
    crashed = Proc(tmp_path, "crash", db, str(markers), ",".join(map(str, kill_points)))
    procs.append(crashed)
    await wait_until(
        lambda: len(os.listdir(markers)) == len(kill_points), "every kill point", [crashed]
    )
    crashed.kill()
    before = await snapshot(db)
    assert len(before) == len(kill_points)
    kill_of = {eid: r.inputs["kill_at"] for eid, r in before.items()}
    assert sorted(kill_of.values()) == sorted(kill_points)
    assert {p for *_, p in read_lines(side)} == {crashed.pid}

    after, resumed = await finish_all(db, len(kill_points))

    assert resumed == len(kill_points)
    assert set(after) == set(before), "an execution was lost or duplicated"
    calls = invocations(side)
    for eid, kill_at in kill_of.items():
        check_chain(eid, kill_at, before[eid], after[eid], calls)


async def test_sigkill_with_queued_executions(db: str, tmp_path: Path, procs: list[Proc]) -> None:
    """Executions admitted but not started yet (``pending`` in the file) are
    taken over too, and run once."""
    side, markers = tmp_path / "side.txt", tmp_path / "markers"
    markers.mkdir()
    crashed = Proc(tmp_path, "crash", db, str(markers), "4,4,4", env={"DUR_MAX_RUNNING": "1"})
    procs.append(crashed)
    await wait_until(lambda: len(os.listdir(markers)) == 1, "the first kill point", [crashed])
    crashed.kill()
    before = await snapshot(db)
    assert sorted(r.status for r in before.values()) == ["pending", "pending", "running"]
    after, resumed = await finish_all(db, 3)
    assert resumed == 3 and set(after) == set(before)
    calls = invocations(side)
    for eid, record in before.items():
        if record.status == "running":
            check_chain(eid, 4, record, after[eid], calls)
        else:
            assert after[eid].status == "succeeded"
            assert all(calls[(eid, f"s{i}")] == 1 for i in range(1, 11))


async def test_sigkill_in_a_join_keeps_the_steps_that_fed_it(
    db: str, tmp_path: Path, procs: list[Proc]
) -> None:
    """s1 -> s2..s5 -> s9, killed inside the join: the records of the four
    steps feeding it were queued without their tasks waiting; they are
    committed, and after the crash none of them runs again. (That the join
    starts only after their commit: tests/storage/test_sqlite.py.)"""
    before = await crash_at(db, tmp_path, procs, "9,9", "fan")
    after, resumed = await finish_all(db, 2)
    assert resumed == 2 and set(after) == set(before)
    calls = invocations(tmp_path / "side.txt")
    fed = [f"s{i}" for i in range(1, 6)]
    for eid, record in before.items():
        assert sorted(s.step_id for s in record.steps if s.status == "succeeded") == fed
        assert record.step("s9").status in ("pending", "running")
        assert after[eid].status == "succeeded", after[eid]
        assert all(calls[(eid, step)] == 1 for step in fed), calls
        assert calls[(eid, "s9")] == 2
        assert after[eid].result == {"s9": {"n": 9, "step": "s9", "prev": [2, 3, 4, 5]}}


async def test_sigkill_inside_a_child_workflow(db: str, tmp_path: Path, procs: list[Proc]) -> None:
    side = tmp_path / "side.txt"
    before = await crash_at(db, tmp_path, procs, "1,6", "child")
    parents = {eid: r for eid, r in before.items() if r.parent_id is None}
    children = {eid: r for eid, r in before.items() if r.parent_id is not None}
    assert len(parents) == 2 and len(children) == 2
    for p in parents.values():
        assert [s.status for s in p.steps][:1] == ["succeeded"]  # pre
        assert p.step("kid").status in ("pending", "running")

    after, resumed = await finish_all(db, 2)

    assert resumed == 2
    # The interrupted children were taken up, not started anew.
    assert set(after) == set(before)
    calls = invocations(side)
    for cid, child in children.items():
        parent_id = child.parent_id
        assert parent_id is not None and child.parent_step == "kid"
        check_chain(cid, child.inputs["kill_at"], child, after[cid], calls)
        parent = after[parent_id]
        assert parent.status == "succeeded", parent
        assert calls[(parent_id, "pre")] == 1 and calls[(parent_id, "post")] == 1
        assert parent.step("kid").output == after[cid].result
        assert parent.step("post").output == {"n": None, "step": "post", "prev": []}


# ---------------------------------------------------------------- two processes


async def test_two_engines_in_two_processes_never_run_one_execution_twice(
    db: str, tmp_path: Path, procs: list[Proc]
) -> None:
    side, ready = tmp_path / "side.txt", tmp_path / "ready"
    ready.mkdir()
    count = 16  # per process; two run at a time, so leases are renewed many times
    # Create the schema first, so the two processes do not race to create it.
    store = open_store(db)
    async with lifetime(store):
        await store.open()
        await store.close()
    a = Proc(tmp_path, "share", db, str(ready), "2", str(count), "a")
    b = Proc(tmp_path, "share", db, str(ready), "2", str(count), "b")
    procs += [a, b]
    await a.exited()
    await b.exited()

    after = await snapshot(db)
    assert len(after) == 2 * count, "an execution was lost"
    assert all(r.status == "succeeded" for r in after.values())
    pids_of: defaultdict[str, set[int]] = defaultdict(set)
    for execution, _, pid in read_lines(side):
        pids_of[execution].add(pid)
    assert set(pids_of) == set(after)
    twice = {e: p for e, p in pids_of.items() if len(p) > 1}
    assert not twice, f"executions run by two processes: {twice}"
    assert set(invocations(side).values()) == {1}
    runner = {"shared-a": a.pid, "shared-b": b.pid}
    for eid, record in after.items():
        assert pids_of[eid] == {runner[record.workflow]}


async def test_orphans_of_a_killed_process_are_claimed_by_exactly_one_survivor(
    db: str, tmp_path: Path, procs: list[Proc]
) -> None:
    side, markers = tmp_path / "side.txt", tmp_path / "markers"
    markers.mkdir()
    n = 6
    crashed = Proc(tmp_path, "crash", db, str(markers), ",".join(["2"] * n))
    procs.append(crashed)
    await wait_until(lambda: len(os.listdir(markers)) == n, "every kill point", [crashed])
    crashed.kill()
    survivors = [Proc(tmp_path, "survive", db, str(n)) for _ in range(2)]
    procs += survivors
    for s in survivors:
        await s.exited()

    after = await snapshot(db)
    assert len(after) == n
    assert all(r.status == "succeeded" for r in after.values()), after
    resumed = sum(int(s.out.read_text().split("=")[1]) for s in survivors)
    assert resumed == n, "each orphan is resumed exactly once"
    by_pid: defaultdict[str, set[int]] = defaultdict(set)
    for execution, _, pid in read_lines(side):
        if pid != crashed.pid:
            by_pid[execution].add(pid)
    assert set(by_pid) == set(after)
    survivor_pids = {s.pid for s in survivors}
    for execution, pids in by_pid.items():
        assert len(pids) == 1 and pids <= survivor_pids, (execution, pids)
    calls = invocations(side)
    for eid in after:
        assert calls[(eid, "s1")] == 1 and calls[(eid, "s2")] == 2
        assert all(calls[(eid, f"s{i}")] == 1 for i in range(3, 11))


# ---------------------------------------------------------------- restarts


async def test_idempotency_keys_across_engine_restarts(db: str, tmp_path: Path) -> None:
    side = tmp_path / "side.txt"
    spec = chain_spec(3, "keyed")
    inputs = {"side": str(side)}
    async with corral.open_engine(db, plugins=[DurablePlugin()], entry_points=False) as e1:
        first = await e1.submit(spec, inputs, key="order-42")
        result = await first.result()
    async with corral.open_engine(db, plugins=[DurablePlugin()], entry_points=False) as e2:
        again = await e2.submit(spec, inputs, key="order-42")
        assert again.id == first.id
        assert await again.result() == result
        # The key wins even over different inputs: it names the execution.
        other = await e2.submit(spec, {"side": str(side), "delay": 0.01}, key="order-42")
        assert other.id == first.id
        fresh = await e2.submit(spec, inputs, key="order-43")
        assert fresh.id != first.id
        await fresh.result()
    assert len(await snapshot(db)) == 2
    assert sum(invocations(side).values()) == 6  # two executions, three steps each


async def test_idempotency_key_of_an_execution_running_in_another_engine(
    db: str, tmp_path: Path
) -> None:
    side = tmp_path / "side.txt"
    spec = chain_spec(3, "keyed")
    inputs = {"side": str(side), "delay": 0.1}
    async with (
        corral.open_engine(db, plugins=[DurablePlugin()], entry_points=False) as e1,
        corral.open_engine(db, plugins=[DurablePlugin()], entry_points=False) as e2,
    ):
        first = await e1.submit(spec, inputs, key="K")
        second = await e2.submit(spec, inputs, key="K")
        assert second.id == first.id
        assert (await second.wait()).status == "succeeded"  # followed through the store
        assert await second.result() == await first.result()
    assert sum(invocations(side).values()) == 3


def _greet(version: int, value: str, name: str = "greet") -> WorkflowSpec:
    return WorkflowSpec(
        name=name,
        version=version,
        steps=[StepSpec(id="a", handler="core.echo", params={"value": value})],
    )


async def test_definition_versions_survive_restarts(db: str, tmp_path: Path) -> None:
    async with corral.open_engine(db, entry_points=False) as e1:
        d1 = await e1.create(_greet(1, "one"))
        d2 = await e1.create(_greet(2, "two"))
        assert (d1.name, d1.version, d2.version) == ("greet", "1", "2")
        assert d1.digest != d2.digest
        assert (await e1.create(_greet(1, "one"))).digest == d1.digest  # same content: fine
        assert await e1.run("greet") == {"a": "two"}
        pinned = await e1.submit("greet@1")
        assert await pinned.result() == {"a": "one"}
        assert (await e1.get(pinned.id)).version == 1
        with pytest.raises(corral.SpecError, match="version"):
            await e1.create(_greet(1, "uno"))
    async with corral.open_engine(db, entry_points=False) as e2:
        assert await e2.run("greet") == {"a": "two"}
        assert await e2.run("greet@1") == {"a": "one"}
        assert await e2.run("greet@2") == {"a": "two"}
        with pytest.raises(corral.SpecError, match="version"):
            await e2.create(_greet(2, "deux"))
        with pytest.raises(corral.SpecError):
            await e2.submit("greet@3")
        await e2.create(_greet(3, "three"))
        assert await e2.run("greet") == {"a": "three"}
        assert await e2.run("greet@1") == {"a": "one"}


def _cached(cache: bool | CachePolicy) -> WorkflowSpec:
    return WorkflowSpec(
        name="cached",
        inputs=_inputs(),
        steps=[
            StepSpec(id="s1", handler="dur.step", cache=cache),
            StepSpec(id="s2", handler="dur.step", needs=["s1"]),
        ],
    )


async def test_cached_steps_are_not_rerun_across_restarts(db: str, tmp_path: Path) -> None:
    side = tmp_path / "side.txt"
    inputs = {"side": str(side)}
    async with corral.open_engine(db, plugins=[DurablePlugin()], entry_points=False) as e1:
        h1 = await e1.submit(_cached(True), inputs)
        r1 = await h1.result()
        assert (await e1.get(h1.id)).step("s1").status == "succeeded"
    async with corral.open_engine(db, plugins=[DurablePlugin()], entry_points=False) as e2:
        h2 = await e2.submit(_cached(True), inputs)
        assert await h2.result() == r1
        record = await e2.get(h2.id)
    assert record.step("s1").status == "cached"
    assert record.step("s1").output == {"n": 1, "step": "s1", "prev": []}
    assert record.step("s2").status == "succeeded"
    calls = invocations(side)
    assert calls[(h1.id, "s1")] == 1 and calls[(h2.id, "s1")] == 0
    assert calls[(h2.id, "s2")] == 1
    assert count_rows(db, "cache_entries") == 1


async def test_expired_cache_entries_are_recomputed(db: str, tmp_path: Path) -> None:
    side = tmp_path / "side.txt"
    inputs = {"side": str(side)}
    spec = _cached(CachePolicy(ttl=0.2))
    later = [0.0]  # seconds the clock is moved ahead
    start = time.time()

    def clock() -> float:  # stands still unless moved: no TTL expires by itself
        return start + later[0]

    async def status_of_s1(engine: corral.Engine) -> str:
        handle = await engine.submit(spec, inputs)
        await handle.result()
        return (await engine.get(handle.id)).step("s1").status

    async with corral.open_engine(
        db, plugins=[DurablePlugin()], entry_points=False, clock=clock
    ) as e1:
        assert await status_of_s1(e1) == "succeeded"
        assert await status_of_s1(e1) == "cached"  # within the ttl (in-memory entry)
        later[0] = 1.0
        assert await status_of_s1(e1) == "succeeded"  # expired: recomputed (and cached again)
        assert await status_of_s1(e1) == "cached"
    async with corral.open_engine(
        db, plugins=[DurablePlugin()], entry_points=False, clock=clock
    ) as e2:
        assert await status_of_s1(e2) == "cached"  # from the file, still fresh
        later[0] = 2.5
        assert await status_of_s1(e2) == "succeeded"  # expired in the file too
    s1_runs = sum(n for (_, step), n in invocations(side).items() if step == "s1")
    assert s1_runs == 3


async def test_an_entry_expired_in_the_file_is_recomputed_by_a_new_engine(
    db: str, tmp_path: Path
) -> None:
    side = tmp_path / "side.txt"
    inputs = {"side": str(side)}
    spec = _cached(CachePolicy(ttl=0.2))
    async with corral.open_engine(db, plugins=[DurablePlugin()], entry_points=False) as e1:
        await e1.run(spec, inputs)
    async with corral.open_engine(
        db, plugins=[DurablePlugin()], entry_points=False, clock=ahead(0.3)
    ) as e2:
        handle = await e2.submit(spec, inputs)
        await handle.result()
        assert (await e2.get(handle.id)).step("s1").status == "succeeded"
    assert sum(n for (_, step), n in invocations(side).items() if step == "s1") == 2


async def test_a_stalled_engine_that_lost_its_lease_does_not_run_on(
    db: str, tmp_path: Path, procs: list[Proc]
) -> None:
    """A live process whose lease expired (its event loop stalled, as under swap
    or a long synchronous call) must not keep running an execution another
    engine has taken over: at most the interrupted step runs twice."""
    side, markers = tmp_path / "side.txt", tmp_path / "markers"
    markers.mkdir()
    stalled = Proc(tmp_path, "stall", db, str(markers), "2", "3.0")
    procs.append(stalled)
    await wait_until(lambda: len(os.listdir(markers)) == 1, "the stall", [stalled])
    survivor = Proc(tmp_path, "survive", db, "1")
    procs.append(survivor)
    await survivor.exited()
    await stalled.exited()
    (execution,) = (await snapshot(db)).values()
    assert execution.status == "succeeded"
    calls = invocations(side)
    assert calls[(execution.id, "s1")] == 1
    twice = {s: calls[(execution.id, s)] for s in (f"s{i}" for i in range(3, 11))}
    assert set(twice.values()) == {1}, f"steps run by both engines: {twice}"
