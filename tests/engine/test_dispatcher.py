"""The admission dispatcher: bounded priority queue, cap on running workflows."""

from __future__ import annotations

import pytest
import trio
import trio.testing

import corral
from corral.engine.dispatcher import Dispatcher, Ticket
from corral.engine.resources import MemoryGuard

MB = 1_048_576


def ticket(eid: str, priority: int = 0) -> Ticket:
    return Ticket(eid, priority, trio.current_time())


class Starter:
    """A ``start`` callable: records the order and holds each run until released."""

    def __init__(self, dispatcher: Dispatcher) -> None:
        self.dispatcher = dispatcher
        self.started: list[str] = []
        self.gates: dict[str, trio.Event] = {}
        self.running = 0
        self.max_running = 0

    async def __call__(self, t: Ticket) -> None:
        self.started.append(t.execution_id)
        self.running += 1
        self.max_running = max(self.max_running, self.running)
        gate = self.gates.setdefault(t.execution_id, trio.Event())
        try:
            await gate.wait()
        finally:
            self.running -= 1
            self.dispatcher.release()

    def finish(self, eid: str) -> None:
        self.gates.setdefault(eid, trio.Event()).set()


async def test_cap_priority_and_fifo() -> None:
    d = Dispatcher(2, 10, MemoryGuard(None, None, 1.0))
    s = Starter(d)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(d.run, nursery, s)
        for eid, prio in [("a", 0), ("b", 0), ("c", 0), ("d", 9), ("e", 0), ("f", 9)]:
            d.offer(ticket(eid, prio))
        await trio.testing.wait_all_tasks_blocked()
        # The first two are taken as soon as the dispatcher runs (all offered at once,
        # so priority applies to them too; Trio may run the two new tasks in any order).
        assert sorted(s.started) == ["d", "f"]
        stats = d.statistics()
        assert (stats.running, stats.queued, stats.max_running, stats.max_queued) == (2, 4, 2, 10)
        assert stats.paused_by_memory is False
        for eid in ["d", "f", "a", "b", "c", "e"]:
            s.finish(eid)
            await trio.testing.wait_all_tasks_blocked()
        assert s.started[2:] == ["a", "b", "c", "e"]
        assert s.max_running == 2
        assert d.statistics().running == 0 and d.queued == 0
        nursery.cancel_scope.cancel()


async def test_overloaded_is_immediate_and_counts_free_slots() -> None:
    d = Dispatcher(1, 2, MemoryGuard(None, None, 1.0))
    # No dispatcher task yet: one free running slot + 2 queue places.
    for eid in "abc":
        with trio.testing.assert_no_checkpoints():
            d.offer(ticket(eid))
    with trio.testing.assert_no_checkpoints(), pytest.raises(corral.Overloaded):
        d.offer(ticket("d"))
    assert d.queued == 3
    s = Starter(d)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(d.run, nursery, s)
        await trio.testing.wait_all_tasks_blocked()
        assert (d.running, d.queued) == (1, 2)
        with pytest.raises(corral.Overloaded, match="2 waiting, 1 running"):
            d.check()
        nursery.cancel_scope.cancel()


async def test_withdraw() -> None:
    d = Dispatcher(1, 10, MemoryGuard(None, None, 1.0))
    s = Starter(d)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(d.run, nursery, s)
        for eid in "abc":
            d.offer(ticket(eid))
        await trio.testing.wait_all_tasks_blocked()
        assert d.is_queued("b") and not d.is_queued("a")
        withdrawn = d.withdraw("b")
        assert withdrawn is not None and withdrawn.withdrawn
        assert d.withdraw("b") is None
        assert d.withdraw("a") is None  # running, not queued
        assert d.queued == 1
        s.finish("a")
        await trio.testing.wait_all_tasks_blocked()
        s.finish("c")
        await trio.testing.wait_all_tasks_blocked()
        assert s.started == ["a", "c"]
        nursery.cancel_scope.cancel()


async def test_memory_pause_holds_the_queue(autojump_clock: trio.testing.MockClock) -> None:
    rss = [500 * MB]
    guard = MemoryGuard(100, None, 1.0, reader=lambda: rss[0])
    guard.sample()
    d = Dispatcher(4, 10, guard)
    s = Starter(d)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(guard.run)
        nursery.start_soon(d.run, nursery, s)
        d.offer(ticket("a"))
        await trio.sleep(10)
        assert s.started == []
        assert d.statistics().paused_by_memory is True
        rss[0] = 1 * MB
        await trio.sleep(1.5)
        assert s.started == ["a"]
        assert d.statistics().paused_by_memory is False
        s.finish("a")
        nursery.cancel_scope.cancel()


async def test_hard_mark_refuses_offers() -> None:
    guard = MemoryGuard(None, 100, 1.0, reader=lambda: 200 * MB)
    guard.sample()
    d = Dispatcher(4, 10, guard)
    with pytest.raises(corral.Overloaded, match="hard mark"):
        d.offer(ticket("a"))
    assert d.queued == 0


async def test_engine_cancels_a_queued_execution(autojump_clock: trio.testing.MockClock) -> None:
    limits = corral.Limits(max_running_workflows=1)
    wf = corral.Workflow("slow")
    wf.step("s", "core.sleep", seconds=10)
    async with corral.open_engine(entry_points=False, limits=limits) as engine:
        first = await engine.submit(wf)
        second = await engine.submit(wf)
        await trio.sleep(1)
        record = await engine.cancel(second.id)
        assert record.status == "cancelled"
        assert record.step("s").status == "cancelled"
        with pytest.raises(corral.WorkflowCancelled):
            await second.result()
        assert await first.result() == {"s": 10}
        m = engine.metrics()
        assert (m.started, m.succeeded, m.cancelled) == (1, 1, 1)
