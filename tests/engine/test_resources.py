"""Resource limits: pools, keyed limiter, admission queue, memory guard."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import msgspec
import pytest
import trio
import trio.lowlevel
import trio.testing

import corral
from corral.engine.resources import (
    KeyedLimiter,
    MemoryGuard,
    Pool,
    ResourceManager,
)
from corral.plugins import Handler, StepContext, hookimpl

MB = 1_048_576


class Gauge:
    """Counts handlers running at once, overall and per key."""

    def __init__(self) -> None:
        self.now = 0
        self.max = 0
        self.per_key: dict[Any, int] = defaultdict(int)
        self.max_per_key: dict[Any, int] = defaultdict(int)
        self.runs = 0

    def plugin(self, name: str = "test.gauge") -> Any:
        gauge = self
        handler_name = name

        class GaugeHandler(Handler):
            name = handler_name

            class Params(msgspec.Struct):
                seconds: float = 1.0
                key: str | None = None

            async def run(self, ctx: StepContext, params: Any) -> Any:
                key = params.key if params.key is not None else ctx.inputs.get("path")
                gauge.now += 1
                gauge.per_key[key] += 1
                gauge.max = max(gauge.max, gauge.now)
                gauge.max_per_key[key] = max(gauge.max_per_key[key], gauge.per_key[key])
                try:
                    await trio.sleep(params.seconds)
                finally:
                    gauge.now -= 1
                    gauge.per_key[key] -= 1
                gauge.runs += 1
                return key

        class Plugin:
            @hookimpl
            def corral_handlers(self) -> list[type[Handler]]:
                return [GaugeHandler]

        return Plugin()


def sleep_workflow(name: str = "sleepy", seconds: float = 100) -> corral.Workflow:
    wf = corral.Workflow(name)
    wf.step("s", "core.sleep", seconds=seconds)
    return wf


# ---------------------------------------------------------------- pools


async def test_pool_of_two_never_runs_more_than_two(
    autojump_clock: trio.testing.MockClock,
) -> None:
    gauge = Gauge()
    wf = corral.Workflow("gpu")
    for i in range(6):
        wf.step(f"s{i}", "test.gauge", resources={"gpu": 1}, seconds=1 + i % 3)
    async with corral.open_engine(
        entry_points=False, plugins=[gauge.plugin()], limits=corral.Limits(pools={"gpu": 2})
    ) as engine:
        handles = [await engine.submit(wf) for _ in range(3)]
        await trio.sleep(0.5)
        stats = engine.statistics()["pools"]["gpu"]
        assert (stats.total, stats.borrowed, stats.waiting) == (2, 2, 16)
        for h in handles:
            await h.result()
        stats = engine.statistics()["pools"]["gpu"]
        assert (stats.borrowed, stats.waiting) == (0, 0)
    assert gauge.runs == 18
    assert gauge.max == 2


async def test_steps_without_resources_are_not_limited(
    autojump_clock: trio.testing.MockClock,
) -> None:
    gauge = Gauge()
    wf = corral.Workflow("free")
    for i in range(5):
        wf.step(f"s{i}", "test.gauge")
    async with corral.open_engine(
        entry_points=False, plugins=[gauge.plugin()], limits=corral.Limits(pools={"gpu": 2})
    ) as engine:
        await engine.run(wf)
    assert gauge.max == 5


async def test_multi_unit_requests_do_not_deadlock(
    autojump_clock: trio.testing.MockClock,
) -> None:
    gauge = Gauge()
    wf = corral.Workflow("multi")
    for i in range(8):
        wf.step(f"s{i}", "test.gauge", resources={"gpu": 2 if i % 2 else 1, "cpu": 1})
    async with corral.open_engine(
        entry_points=False,
        plugins=[gauge.plugin()],
        limits=corral.Limits(pools={"gpu": 2, "cpu": 8}),
    ) as engine:
        with trio.fail_after(1000):  # mock time: only a deadlock could reach it
            await trio.testing.wait_all_tasks_blocked()
            results = [await engine.submit(wf) for _ in range(4)]
            for h in results:
                await h.result()
        stats = engine.statistics()["pools"]
        assert stats["gpu"].borrowed == 0 and stats["cpu"].borrowed == 0
    assert gauge.runs == 32
    assert gauge.max == 2


async def test_pool_unit_level() -> None:
    pool = Pool("gpu", 2)
    assert pool.size == 2
    one = await pool.acquire(1)
    assert pool.statistics().borrowed == 1
    # A request for 2 gets one unit and waits for the other; cancelling it
    # gives back the unit it held.
    with trio.move_on_after(0.01):
        await pool.acquire(2)
    s = pool.statistics()
    assert (s.name, s.total, s.borrowed, s.waiting) == ("gpu", 2, 1, 0)
    pool.release(one)
    both = await pool.acquire(2)
    assert pool.statistics().borrowed == 2
    pool.release(both)
    assert pool.statistics().borrowed == 0
    with pytest.raises(corral.CorralError, match="asked for 3 units of pool 'gpu'"):
        await pool.acquire(3)


async def test_two_multi_unit_waiters_do_not_split_a_pool() -> None:
    pool = Pool("gpu", 2)
    held = await pool.acquire(1)
    got: list[str] = []

    async def want_two(name: str) -> None:
        borrowers = await pool.acquire(2)
        got.append(name)
        await trio.lowlevel.checkpoint()
        pool.release(borrowers)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(want_two, "a")
        nursery.start_soon(want_two, "b")
        await trio.testing.wait_all_tasks_blocked()
        assert pool.statistics().borrowed == 2  # held + one of "a"'s
        pool.release(held)
    assert sorted(got) == ["a", "b"]
    assert pool.statistics().borrowed == 0


async def test_resource_manager_acquires_in_sorted_order() -> None:
    rm = ResourceManager({"a": 1, "b": 1}, memory=MemoryGuard(None, None, 1.0))
    done = 0

    async def take(order: dict[str, int]) -> None:
        nonlocal done
        for _ in range(20):
            async with rm.hold(order):
                await trio.lowlevel.checkpoint()
        done += 1

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(take, {"a": 1, "b": 1})
            nursery.start_soon(take, {"b": 1, "a": 1})
    assert done == 2
    stats = rm.statistics()
    assert stats["pools"]["a"].borrowed == 0 and stats["pools"]["b"].borrowed == 0
    assert rm.pool_sizes() == {"a": 1, "b": 1}


# ---------------------------------------------------------------- keyed limiter

KEYED = """
name: restructure
inputs:
  path: {type: string}
steps:
  - id: work
    handler: test.gauge
    params: {seconds: 2}
    concurrency: {key: "inputs.path", limit: 1}
"""


async def test_keyed_limiter_bounds_per_key_across_workflows(
    autojump_clock: trio.testing.MockClock,
) -> None:
    gauge = Gauge()
    spec = corral.loads(KEYED)
    async with corral.open_engine(entry_points=False, plugins=[gauge.plugin()]) as engine:
        handles = []
        for _ in range(3):
            for path in ("/a", "/b"):
                handles.append(await engine.submit(spec, {"path": path}))
        await trio.sleep(0.5)
        (stats,) = engine.statistics()["keyed"]
        assert (stats.name, stats.limit, stats.keys) == ("test.gauge", 1, 2)
        assert (stats.borrowed, stats.waiting) == (2, 4)
        assert sorted([await h.result() for h in handles], key=str) == [
            {"work": p} for p in ["/a", "/a", "/a", "/b", "/b", "/b"]
        ]
        (stats,) = engine.statistics()["keyed"]
        assert (stats.keys, stats.borrowed, stats.waiting) == (0, 0, 0)
    assert gauge.max_per_key == {"/a": 1, "/b": 1}
    assert gauge.max == 2  # different keys ran in parallel


async def test_keyed_limit_two_and_key_from_params(
    autojump_clock: trio.testing.MockClock,
) -> None:
    gauge = Gauge()
    wf = corral.Workflow("k2")
    for i in range(6):
        wf.step(
            f"s{i}",
            "test.gauge",
            key="k" + str(i % 2),
            concurrency={"key": "params.key", "limit": 2, "name": "per-key"},
        )
    async with corral.open_engine(entry_points=False, plugins=[gauge.plugin()]) as engine:
        await engine.run(wf)
        (stats,) = engine.statistics()["keyed"]
        assert stats.name == "per-key"
    assert gauge.max_per_key == {"k0": 2, "k1": 2}
    assert gauge.max == 4


async def test_keyed_limiter_unit_level() -> None:
    limiter = KeyedLimiter("t", 1)
    order: list[str] = []

    async def use(key: str, tag: str) -> None:
        async with limiter.hold(key):
            order.append(f"+{tag}")
            await trio.sleep(0.01)
            order.append(f"-{tag}")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(use, "x", "x1")
        nursery.start_soon(use, "x", "x2")
        nursery.start_soon(use, "y", "y1")
        await trio.testing.wait_all_tasks_blocked()
        s = limiter.statistics()
        assert (s.name, s.limit, s.keys, s.borrowed, s.waiting) == ("t", 1, 2, 2, 1)
    # The two holders of key "x" never overlap (either may go first).
    first, second = sorted(["x1", "x2"], key=lambda t: order.index(f"+{t}"))
    assert order.index(f"-{first}") < order.index(f"+{second}")
    assert limiter.statistics().keys == 0  # idle keys are dropped


# ---------------------------------------------------------------- admission


async def test_submit_past_the_queue_bound_is_refused_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    limits = corral.Limits(max_running_workflows=1, max_queued=2)
    async with corral.open_engine(entry_points=False, limits=limits) as engine:
        handles = [await engine.submit(sleep_workflow()) for _ in range(3)]
        await trio.sleep(1)
        stats = engine.statistics()["dispatcher"]
        assert (stats.running, stats.queued, stats.max_running, stats.max_queued) == (1, 2, 1, 2)
        t0 = trio.current_time()
        with pytest.raises(corral.Overloaded, match="max_queued=2"):
            await engine.submit(sleep_workflow())
        # Under the autojump clock any wait would have moved time on.
        assert trio.current_time() == t0
        m = engine.metrics()
        assert (m.rejected, m.submitted, m.running, m.queued) == (1, 3, 1, 2)
        # Cancelling a queued execution frees its place.
        await engine.cancel(handles[2].id)
        assert engine.statistics()["dispatcher"].queued == 1
        handles.append(await engine.submit(sleep_workflow()))
        for h in handles[:2]:
            await h.result()
    assert engine.metrics().succeeded == 3


def _echo(n: int) -> corral.Workflow:
    wf = corral.Workflow("spilled")
    wf.step("e", "core.echo", value=wf.input("n", "integer"))
    return wf


async def test_queue_in_store_keeps_past_the_queue_in_the_store(tmp_path: Any) -> None:
    store = f"sqlite:///{tmp_path}/s.db"
    limits = corral.Limits(max_running_workflows=2, max_queued=3, queue_in_store=True)
    async with corral.open_engine(store, entry_points=False, limits=limits) as engine:
        gates = [await engine.submit(sleep_workflow(seconds=3600)) for _ in range(2)]
        handles = [await engine.submit(_echo(n), {"n": n}) for n in range(30)]
        # Never refused: max_queued wait in memory, the rest as records.
        assert engine.statistics()["dispatcher"].queued == 3
        waiting = [await engine.get(h.id) for h in handles]
        assert [r.owner is None for r in waiting] == [False] * 3 + [True] * 27
        assert {r.status for r in waiting} == {"pending"}
        for gate in gates:
            await gate.cancel()
        results = [await h.result() for h in handles]
        assert results == [{"e": n} for n in range(30)]
        assert engine.metrics().submitted == 32
    assert engine.metrics().succeeded == 30


async def test_queue_in_store_claims_by_priority_then_age(tmp_path: Any) -> None:
    store = f"sqlite:///{tmp_path}/s.db"
    limits = corral.Limits(max_running_workflows=1, max_queued=0, queue_in_store=True)
    async with corral.open_engine(store, entry_points=False, limits=limits) as engine:
        gate = await engine.submit(sleep_workflow(seconds=0.3))
        low = [await engine.submit(_echo(n), {"n": n}) for n in range(3)]
        high = await engine.submit(_echo(9), {"n": 9}, priority=5)
        await gate.result()
        for h in [high, *low]:
            await h.result()
        started = {h.id: (await engine.get(h.id)).started_at for h in [high, *low]}
    order = sorted(started, key=lambda i: started[i] or 0.0)
    assert order == [high.id, *[h.id for h in low]]


async def test_queue_in_store_keeps_a_paused_workflow_in_the_store(tmp_path: Any) -> None:
    """A paused workflow's submissions wait in the store, not parked in
    memory, and start when it is unpaused; nothing of them is kept by the
    store's writer either."""
    store = f"sqlite:///{tmp_path}/s.db"
    limits = corral.Limits(queue_in_store=True)
    async with corral.open_engine(store, entry_points=False, limits=limits) as engine:
        await engine.pause("spilled")
        handles = [await engine.submit(_echo(n), {"n": n}) for n in range(20)]
        assert engine.statistics()["dispatcher"].queued == 0
        records = [await engine.get(h.id) for h in handles]
        assert {(r.status, r.owner) for r in records} == {("pending", None)}
        assert not engine.store._unstarted and not engine.store._creating
        await engine.unpause("spilled")
        assert [await h.result() for h in handles] == [{"e": n} for n in range(20)]


async def test_queue_in_store_survives_the_engine(tmp_path: Any) -> None:
    """What waits in the store when its engine stops (or dies) is run by the
    next engine that claims work; nothing is lost, nothing runs twice."""
    store = f"sqlite:///{tmp_path}/s.db"
    limits = corral.Limits(max_running_workflows=1, max_queued=0, queue_in_store=True)

    class Stop(Exception):
        pass

    with pytest.raises(Stop):  # leaving by an error: what runs is cancelled
        async with corral.open_engine(store, entry_points=False, limits=limits) as engine:
            await engine.submit(sleep_workflow(seconds=3600))
            ids = [(await engine.submit(_echo(n), {"n": n})).id for n in range(5)]
            for i in ids:
                assert (await engine.get(i)).status == "pending"
            raise Stop
    async with corral.open_engine(store, entry_points=False, limits=limits) as engine:
        results = [await engine.handle(i).result() for i in ids]
        assert results == [{"e": n} for n in range(5)]
        records = [await engine.get(i) for i in ids]
        assert all(r.status == "succeeded" and r.steps[0].attempts == 1 for r in records)


async def test_priority_orders_the_queue(autojump_clock: trio.testing.MockClock) -> None:
    limits = corral.Limits(max_running_workflows=1)
    started: list[str] = []

    class Observer:
        @hookimpl
        def corral_event(self, event: Any) -> None:
            if type(event).__name__ == "WorkflowStarted":
                started.append(event.workflow)

    async with corral.open_engine(entry_points=False, limits=limits, plugins=[Observer()]) as e:
        first = await e.submit(sleep_workflow("first", 1))
        await trio.sleep(0.1)
        await e.submit(sleep_workflow("low", 1), priority=0)
        await e.submit(sleep_workflow("high", 1), priority=5)
        await e.submit(sleep_workflow("low2", 1), priority=0)
        await first.result()
    assert started == ["first", "high", "low", "low2"]


# ---------------------------------------------------------------- memory guard


async def test_memory_guard_pauses_then_refuses(autojump_clock: trio.testing.MockClock) -> None:
    rss = [150 * MB]
    limits = corral.Limits(memory_soft_mb=100, memory_hard_mb=200, memory_interval=1.0)
    async with corral.open_engine(
        entry_points=False, limits=limits, memory_reader=lambda: rss[0]
    ) as engine:
        # Above the soft mark: work is admitted to the queue but does not start.
        handle = await engine.submit(sleep_workflow(seconds=1))
        await trio.sleep(10)
        assert engine.metrics().started == 0
        d = engine.statistics()["dispatcher"]
        assert d.paused_by_memory is True and d.queued == 1
        mem = engine.statistics()["memory"]
        assert (mem.rss_mb, mem.soft_mb, mem.hard_mb) == (150, 100, 200)
        assert mem.paused is True and mem.refusing is False
        assert mem.samples >= 10

        # Below it again: admission resumes at the next sample.
        rss[0] = 50 * MB
        assert await handle.result() == {"s": 1}
        assert engine.statistics()["memory"].paused is False

        # Above the hard mark: new work is refused at once.
        rss[0] = 250 * MB
        await trio.sleep(1.5)
        assert engine.statistics()["memory"].refusing is True
        t0 = trio.current_time()
        with pytest.raises(corral.Overloaded, match="memory guard"):
            await engine.submit(sleep_workflow(seconds=1))
        assert trio.current_time() == t0
        assert engine.metrics().rejected == 1

        rss[0] = 10 * MB
        await trio.sleep(1.5)
        assert await engine.run(sleep_workflow(seconds=1)) == {"s": 1}


async def test_memory_guard_unit(autojump_clock: trio.testing.MockClock) -> None:
    rss = [0]
    guard = MemoryGuard(100, None, 1.0, reader=lambda: rss[0])
    assert guard.enabled
    rss[0] = 120 * MB
    assert guard.sample() == 120
    assert guard.paused and not guard.refusing
    guard.check_admission()  # no hard mark: never refuses
    resumed = False

    async def waiter() -> None:
        nonlocal resumed
        await guard.wait_until_admitting()
        resumed = True

    async with trio.open_nursery() as nursery:
        nursery.start_soon(waiter)
        nursery.start_soon(guard.run)
        await trio.sleep(5)
        assert not resumed
        rss[0] = 10 * MB
        await trio.sleep(1.5)
        assert resumed
        nursery.cancel_scope.cancel()
    s = guard.statistics()
    assert s.paused is False and s.samples >= 6

    off = MemoryGuard(None, None, 1.0)
    assert not off.enabled
    await off.run()  # returns at once when disabled


async def test_default_reader_reads_this_process() -> None:
    guard = MemoryGuard(None, 1e9, 1.0)
    assert guard.sample() > 1  # MB of this Python process


async def test_failing_reader_does_not_break_the_engine(
    autojump_clock: trio.testing.MockClock,
) -> None:
    calls = [0]

    def reader() -> int:
        calls[0] += 1
        if calls[0] > 1:
            raise PermissionError("psutil: access denied")
        return 10 * MB

    limits = corral.Limits(memory_soft_mb=100, memory_interval=1.0)
    async with corral.open_engine(entry_points=False, limits=limits, memory_reader=reader) as e:
        await trio.sleep(5)
        assert await e.run(sleep_workflow(seconds=1)) == {"s": 1}
        mem = e.statistics()["memory"]
    assert mem.samples == 1 and mem.errors >= 5
    assert mem.rss_mb == 10 and mem.paused is False
