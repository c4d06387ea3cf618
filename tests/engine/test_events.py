"""Lifecycle events: subscriptions (bounded, never blocking) and the corral_event hook."""

from __future__ import annotations

import logging
from collections.abc import Generator
from typing import Any

import pluggy
import pytest
import trio
import trio.testing

import corral
from corral.core.model import (
    Event,
    StepFinished,
    StepProgress,
    StepRetrying,
    StepStarted,
    WorkflowFinished,
    WorkflowStarted,
    WorkflowSubmitted,
)
from corral.engine.events import EventBus
from corral.plugins import Handler, StepContext, hookimpl
from corral.plugins.hookspecs import PROJECT, hookspec


def summary(ev: Event) -> tuple[Any, ...]:
    if isinstance(ev, StepStarted):
        return ("StepStarted", ev.step_id, ev.attempt)
    if isinstance(ev, StepRetrying):
        return ("StepRetrying", ev.step_id, ev.attempt, ev.error.type)
    if isinstance(ev, StepFinished):
        return ("StepFinished", ev.step_id, ev.status, ev.attempts)
    if isinstance(ev, WorkflowFinished):
        return ("WorkflowFinished", ev.status)
    if isinstance(ev, StepProgress):
        return ("StepProgress", ev.step_id, ev.done, ev.total, ev.message)
    return (type(ev).__name__,)


def retrying_workflow() -> corral.Workflow:
    wf = corral.Workflow("events")
    a = wf.step("a", "core.echo", value=1)
    wf.step("b", "core.fail", needs=[a], retry={"attempts": 2, "backoff": 1})
    return wf


EXPECTED = [
    ("WorkflowSubmitted",),
    ("WorkflowStarted",),
    ("StepStarted", "a", 1),
    ("StepFinished", "a", "succeeded", 1),
    ("StepStarted", "b", 1),
    ("StepRetrying", "b", 1, "StepFailure"),
    ("StepStarted", "b", 2),
    ("StepFinished", "b", "failed", 2),
    ("WorkflowFinished", "failed"),
]


class Recorder:
    def __init__(self) -> None:
        self.events: list[Event] = []

    @hookimpl
    def corral_event(self, event: Event) -> None:
        self.events.append(event)


class Raiser:
    def __init__(self) -> None:
        self.calls = 0

    @hookimpl
    def corral_event(self, event: Event) -> None:
        self.calls += 1
        raise RuntimeError("observer bug")


# ---------------------------------------------------------------- subscriptions


async def test_subscriber_receives_typed_events_in_order(
    autojump_clock: trio.testing.MockClock, engine: corral.Engine
) -> None:
    received: list[Event] = []
    with engine.subscribe(buffer=100) as sub:
        async with trio.open_nursery() as nursery:

            async def consume() -> None:
                async for ev in sub:
                    received.append(ev)
                    if isinstance(ev, WorkflowFinished):
                        return

            nursery.start_soon(consume)
            handle = await engine.submit(retrying_workflow())
            with pytest.raises(corral.WorkflowFailed):
                await handle.result()
    assert [summary(e) for e in received] == EXPECTED
    assert {e.execution_id for e in received} == {handle.id}
    assert {e.workflow for e in received} == {"events"}
    assert isinstance(received[0], WorkflowSubmitted)
    assert isinstance(received[1], WorkflowStarted)
    times = [e.at for e in received]
    assert times == sorted(times)
    assert sub.dropped == 0 and sub.delivered == len(EXPECTED)


async def test_slow_subscriber_never_stalls_the_engine(
    autojump_clock: trio.testing.MockClock, engine: corral.Engine
) -> None:
    wf = corral.Workflow("many")
    for i in range(20):
        wf.step(f"s{i}", "core.sleep", seconds=1)
    with engine.subscribe(buffer=1) as slow, engine.subscribe(buffer=10_000) as fast:
        # Nobody reads `slow`: the run must finish anyway.
        with trio.fail_after(100):
            await engine.run(wf)
        fast.close()
        total = len([ev async for ev in fast])
        assert total == 3 + 2 * 20
        assert slow.delivered == 1
        assert slow.dropped == total - 1
        assert engine.metrics().events_dropped == slow.dropped
        slow.close()
        assert [type(ev) async for ev in slow] == [WorkflowSubmitted]  # the one kept
    fams = engine.prometheus_metrics()
    assert f"corral_events_dropped_total {float(total - 1)}" in fams


async def test_slowly_reading_subscriber_gets_a_prefix(
    autojump_clock: trio.testing.MockClock, engine: corral.Engine
) -> None:
    wf = corral.Workflow("burst")
    for i in range(10):
        wf.step(f"s{i}", "core.noop")
    got: list[Event] = []
    with engine.subscribe(buffer=2) as sub:
        async with trio.open_nursery() as nursery:

            async def reader() -> None:
                async for ev in sub:
                    got.append(ev)
                    await trio.sleep(10)  # much slower than the engine

            nursery.start_soon(reader)
            await engine.run(wf)
            # The engine finished long before the reader; what the reader sees
            # is in order and what it missed was counted.
            sub.close()
    assert sub.delivered == len(got)
    assert sub.delivered + sub.dropped == 3 + 2 * 10
    assert sub.dropped > 0
    assert isinstance(got[0], WorkflowSubmitted)


async def test_iteration_ends_when_the_engine_closes() -> None:
    seen: list[str] = []
    async with trio.open_nursery() as nursery:
        async with corral.open_engine(entry_points=False) as engine:
            sub = engine.subscribe()

            async def consume() -> None:
                async for ev in sub:
                    seen.append(type(ev).__name__)
                seen.append("end")

            nursery.start_soon(consume)
            await engine.run(corral.loads("name: x\nsteps: [{id: a, handler: core.noop}]"))
        with trio.fail_after(10):
            await trio.testing.wait_all_tasks_blocked()
    assert seen[-1] == "end"
    assert seen[0] == "WorkflowSubmitted"


async def test_unsubscribed_engine_builds_no_events(engine: corral.Engine) -> None:
    assert engine.events.active is False
    with engine.subscribe() as sub:
        assert engine.events.active is True
    assert engine.events.active is False
    assert sub.delivered == 0


async def test_progress_events_from_async_and_blocking_handlers() -> None:
    class AsyncProgress(Handler):
        name = "t.progress_async"

        async def run(self, ctx: StepContext, params: Any) -> Any:
            ctx.progress(1, 2, "half")
            ctx.progress(2, 2)
            return None

    class ThreadProgress(Handler):
        name = "t.progress_thread"
        kind = "blocking"

        def run(self, ctx: StepContext, params: Any) -> Any:  # type: ignore[override]
            ctx.progress(5, None, "from a thread")
            return None

    class Plugin:
        @hookimpl
        def corral_handlers(self) -> list[type[Handler]]:
            return [AsyncProgress, ThreadProgress]

    wf = corral.Workflow("progress")
    wf.step("a", "t.progress_async")
    wf.step("t", "t.progress_thread", needs=["a"])
    async with corral.open_engine(entry_points=False, plugins=[Plugin()]) as engine:
        with engine.subscribe() as sub:
            await engine.run(wf)
            sub.close()
            progress = [summary(ev) async for ev in sub if isinstance(ev, StepProgress)]
    assert progress == [
        ("StepProgress", "a", 1, 2, "half"),
        ("StepProgress", "a", 2, 2, None),
        ("StepProgress", "t", 5, None, "from a thread"),
    ]


async def test_progress_events_from_cpu_worker_processes() -> None:
    """A cpu handler's ctx.progress() in its worker process reaches the engine
    (through the relay), in order, as the step's own progress."""
    import os
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from _handlers import Recorder

    wf = corral.Workflow("cpu-progress")
    wf.step("one", "test.cpu_progress")
    wf.step("two", "test.cpu_progress", needs=["one"])
    async with corral.open_engine(entry_points=False, plugins=[Recorder()]) as engine:
        # nobody listening: the worker never connects, the step still runs
        silent = await engine.run(wf)
        with engine.subscribe() as sub:
            result = await engine.run(wf)
            sub.close()
            progress = [summary(ev) async for ev in sub if isinstance(ev, StepProgress)]
    assert os.getpid() not in {*silent.values(), *result.values()}  # really in workers
    assert progress == [
        ("StepProgress", step, i, 3, f"item {i}") for step in ("one", "two") for i in (1, 2, 3)
    ]


async def test_odd_progress_from_a_worker_never_reaches_the_engine() -> None:
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from _handlers import Recorder

    wf = corral.Workflow("odd-progress")
    wf.step("odd", "test.cpu_odd_progress")
    async with corral.open_engine(entry_points=False, plugins=[Recorder()]) as engine:
        with engine.subscribe() as sub:
            assert await engine.run(wf) == {"odd": "ok"}
            sub.close()
            progress = [summary(ev) async for ev in sub if isinstance(ev, StepProgress)]
    # the huge value is dropped in the worker; the module is sent as its str()
    assert progress[-1] == ("StepProgress", "odd", 2, 2, "fine")
    assert len(progress) == 2 and progress[0][2:4] == (1, 2)


# ---------------------------------------------------------------- the hook


async def test_plugin_hook_receives_events(autojump_clock: trio.testing.MockClock) -> None:
    rec = Recorder()
    async with corral.open_engine(entry_points=False, plugins=[rec]) as engine:
        assert engine.events.active is True
        with pytest.raises(corral.WorkflowFailed):
            await engine.run(retrying_workflow())
    assert [summary(e) for e in rec.events] == EXPECTED


@pytest.mark.parametrize("raiser_first", [True, False])
async def test_raising_hook_breaks_neither_workflow_nor_other_plugins(
    raiser_first: bool, caplog: pytest.LogCaptureFixture
) -> None:
    rec, bad = Recorder(), Raiser()
    plugins = [bad, rec] if raiser_first else [rec, bad]
    wf = corral.Workflow("fine")
    wf.step("a", "core.echo", value=3)
    with caplog.at_level(logging.ERROR, logger="corral.events"):
        async with corral.open_engine(entry_points=False, plugins=plugins) as engine:
            with engine.subscribe() as sub:
                assert await engine.run(wf) == {"a": 3}
                sub.close()
                delivered = [ev async for ev in sub]
            hook_errors = engine.events.hook_errors
    assert len(rec.events) == 5
    assert len(delivered) == 5
    assert bad.calls == 5
    assert hook_errors == 5
    assert "observer bug" in caplog.text


async def test_hookimpl_without_arguments_and_wrappers() -> None:
    class NoArgs:
        calls = 0

        @hookimpl
        def corral_event(self) -> None:
            NoArgs.calls += 1

    class Wrapper:
        seen: list[str] = []

        @hookimpl(wrapper=True)
        def corral_event(self, event: Event) -> Generator[None, None, None]:
            Wrapper.seen.append(type(event).__name__)
            yield

    wf = corral.Workflow("w")
    wf.step("a", "core.noop")
    async with corral.open_engine(entry_points=False, plugins=[NoArgs()]) as engine:
        await engine.run(wf)
    assert NoArgs.calls == 5
    rec = Recorder()
    async with corral.open_engine(entry_points=False, plugins=[Wrapper(), rec]) as engine:
        await engine.run(wf)
    assert len(Wrapper.seen) == 5 and len(rec.events) == 5


def test_event_bus_unit() -> None:
    class Spec:
        @hookspec
        def corral_event(self, event: Event) -> None: ...

    pm = pluggy.PluginManager(PROJECT)
    pm.add_hookspecs(Spec)
    bus = EventBus(pm.hook, buffer=4)
    assert bus.active is False
    ev = WorkflowStarted(execution_id="e", workflow="w", at=0.0)
    bus.emit(ev)  # nobody listens: nothing happens
    sub = bus.subscribe()
    for _ in range(6):
        bus.emit(ev)
    assert (sub.delivered, sub.dropped, bus.dropped) == (4, 2, 2)
    bus.close()
    assert bus.active is False
    bus.emit(ev)  # after close: ignored, not counted
    assert (sub.delivered, sub.dropped) == (4, 2)
