"""The Engine's public surface: argument validation, handles, lifecycle."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import pytest
import trio

import corral
import corral.plugins
import corral.storage

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _faulty_store import FaultyStore  # noqa: E402


def _wf() -> corral.Workflow:
    wf = corral.Workflow("w")
    wf.step("s", "core.echo", value=1)
    return wf


@pytest.mark.parametrize(
    ("limits", "needle"),
    [
        (corral.Limits(max_queued=-1), "limits.max_queued"),
        (corral.Limits(pools={"cpu": 0}), r"limits\.pools"),
        (corral.Limits(max_running_workflows=0), "limits.max_running_workflows"),
        (corral.Limits(memory_soft_mb=-5), "limits.memory_soft_mb"),
    ],
)
async def test_bad_limits_are_config_errors(limits: corral.Limits, needle: str) -> None:
    with pytest.raises(corral.ConfigError, match=needle):
        async with corral.open_engine(limits=limits, entry_points=False):
            pass


async def test_limits_must_be_limits() -> None:
    with pytest.raises(corral.ConfigError):
        async with corral.open_engine(limits={"max_queued": 1}, entry_points=False):  # type: ignore[arg-type]
            pass


async def test_bad_submit_arguments(engine: corral.Engine) -> None:
    with pytest.raises(corral.InputError, match="priority"):
        await engine.submit(_wf(), priority="high")  # type: ignore[arg-type]
    with pytest.raises(corral.InputError, match="key"):
        await engine.submit(_wf(), key="")
    with pytest.raises(corral.InputError, match="mapping"):
        await engine.submit(_wf(), inputs=[1, 2])  # type: ignore[arg-type]
    with pytest.raises(corral.SpecError, match="cannot run a int"):
        await engine.submit(42)
    with pytest.raises(corral.SpecError, match="no such file"):
        await engine.submit("does-not-exist.yaml")


async def test_submit_returns_before_the_workflow_runs(engine: corral.Engine) -> None:
    wf = corral.Workflow("slow")
    wf.step("s", "core.sleep", seconds=3600)
    handle = await engine.submit(wf)
    record = await engine.get(handle.id)
    assert record.status in ("pending", "running")
    await engine.cancel(handle.id)
    assert (await handle.wait()).status == "cancelled"


async def test_engine_closed_refuses_work() -> None:
    async with corral.open_engine(entry_points=False) as engine:
        await engine.run(_wf())
    with pytest.raises(corral.EngineClosed):
        await engine.submit(_wf())


async def test_close_with_cancel(autojump_clock: object) -> None:
    async with corral.open_engine(
        entry_points=False, limits=corral.Limits(max_running_workflows=1)
    ) as engine:
        wf = corral.Workflow("slow")
        wf.step("s", "core.sleep", seconds=3600)
        running = await engine.submit(wf)
        queued = await engine.submit(wf)
        await trio.sleep(1)
        await engine.close(cancel=True)
        assert (await engine.get(running.id)).status == "cancelled"
        assert (await engine.get(queued.id)).status == "cancelled"


async def test_list_and_statistics(engine: corral.Engine) -> None:
    await engine.run(_wf())
    records = await engine.list(workflow="w")
    assert len(records) == 1 and records[0].status == "succeeded"
    stats = engine.statistics()
    assert stats["dispatcher"].running == 0
    assert {"cpu", "io"} <= set(stats["pools"])


async def test_plan_objects_can_be_submitted(engine: corral.Engine) -> None:
    plan = corral.loads("name: p\nsteps:\n  - {id: a, handler: core.echo, params: {value: 5}}\n")
    assert await engine.run(plan) == {"a": 5}
    assert await engine.run(plan) == {"a": 5}


async def test_step_progress_events(engine: corral.Engine) -> None:
    class Counts(corral.plugins.Handler):
        name = "test.counts"

        async def run(self, ctx: corral.plugins.StepContext, params: object) -> int:
            for i in range(3):
                ctx.progress(i + 1, 3, f"item {i}")
            return 3

    class Plugin:
        @corral.plugins.hookimpl
        def corral_handlers(self) -> list[type[corral.plugins.Handler]]:
            return [Counts]

    from corral.core.model import StepProgress

    async with corral.open_engine(entry_points=False, plugins=[Plugin()]) as eng:
        wf = corral.Workflow("prog")
        wf.step("s", "test.counts")
        with eng.subscribe() as events:
            await eng.run(wf)
            events.close()
            seen = [e async for e in events if isinstance(e, StepProgress)]
        assert [(e.done, e.total, e.message) for e in seen] == [
            (1, 3, "item 0"),
            (2, 3, "item 1"),
            (3, 3, "item 2"),
        ]


# ---------------------------------------------------------------- review regressions


async def test_cancel_between_dequeue_and_start(engine: corral.Engine) -> None:
    wf = corral.Workflow("slow")
    wf.step("s", "core.sleep", seconds=3600)
    handle = await engine.submit(wf)
    for _ in range(1000):  # until the dispatcher took the ticket but the run has not begun
        if not engine.dispatcher.is_queued(handle.id):
            break
        await trio.lowlevel.checkpoint()
    record = await engine.cancel(handle.id)
    assert record.status == "cancelled"


async def test_interrupt_right_after_submit_cancels_promptly(autojump_clock: object) -> None:
    wf = corral.Workflow("slow")
    wf.step("s", "core.sleep", seconds=3600)
    start = trio.current_time()
    with pytest.raises(KeyboardInterrupt):
        async with corral.open_engine(entry_points=False) as engine:
            handle = await engine.submit(wf)
            await trio.lowlevel.checkpoint()
            raise KeyboardInterrupt
    assert trio.current_time() - start < 60
    assert (await engine.store.get_execution(handle.id)).status == "cancelled"


async def test_inputs_that_cannot_be_stored_are_input_errors(engine: corral.Engine) -> None:
    wf = corral.Workflow("w", inputs={"x": "any"})
    wf.step("e", "core.echo", value=wf.input("x"), cache=True)
    with pytest.raises(corral.InputError, match="cannot be stored"):
        await engine.submit(wf, {"x": object()})


async def test_executions_never_share_mutable_params_or_results(engine: corral.Engine) -> None:
    wf = corral.Workflow("iso")
    wf.step("e", "core.echo", value=[1, 2])
    first = await engine.run(wf)
    first["e"].append("leaked")
    assert await engine.run(wf) == {"e": [1, 2]}


async def test_continue_then_workflow_timeout_is_timed_out(autojump_clock: object) -> None:
    async with corral.open_engine(entry_points=False) as engine:
        spec = corral.loads(
            "name: w\nsettings: {on_failure: continue, timeout: 5}\nsteps:\n"
            "  - {id: bad, handler: core.fail}\n"
            "  - {id: slow, handler: core.sleep, params: {seconds: 100}}\n"
        )
        handle = await engine.submit(spec)
        with pytest.raises(corral.WorkflowTimedOut, match="had failed before"):
            await handle.result()
        record = await engine.get(handle.id)
        assert record.status == "timed_out"
        assert [s.status for s in record.steps] == ["failed", "cancelled"]


async def test_cancel_a_child_execution_by_id(engine: corral.Engine) -> None:
    child = corral.Workflow("child")
    child.step("nap", "core.sleep", seconds=3600)
    parent = corral.Workflow("parent")
    parent.step("kid", workflow=child)
    handle = await engine.submit(parent)
    with trio.fail_after(30):
        while True:
            kids = [r for r in await engine.list() if r.parent_id == handle.id]
            if kids and kids[0].status == "running":
                break
            await trio.sleep(0.01)
    assert (await engine.cancel(kids[0].id)).status == "cancelled"
    with pytest.raises(corral.WorkflowFailed) as info:
        await handle.result()
    assert info.value.step == "kid"
    assert isinstance(info.value.cause, corral.WorkflowCancelled)
    snapshot = engine.metrics()
    assert (snapshot.submitted, snapshot.started, snapshot.failed) == (1, 1, 1)


async def test_cancelled_while_queued_emits_finished_events() -> None:
    from corral.core.model import WorkflowFinished

    limits = corral.Limits(max_running_workflows=1)
    async with corral.open_engine(entry_points=False, limits=limits) as engine:
        wf = corral.Workflow("slow")
        wf.step("s", "core.sleep", seconds=3600)
        with engine.subscribe() as events:
            first = await engine.submit(wf)
            queued = await engine.submit(wf)
            await engine.cancel(queued.id)
            await engine.cancel(first.id)
            events.close()
            finished = [e async for e in events if isinstance(e, WorkflowFinished)]
        assert {(e.execution_id, e.status) for e in finished} == {
            (first.id, "cancelled"),
            (queued.id, "cancelled"),
        }
        assert engine.metrics().steps_finished == {"cancelled": 2}


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda e: e.list(limit=0), corral.UsageError),
        (lambda e: e.list(limit="10"), corral.UsageError),
        (lambda e: e.list(status="bogus"), corral.UsageError),
        (lambda e: e.cancel(["id"]), corral.UsageError),
    ],
)
async def test_bad_api_arguments_are_corral_errors(
    engine: corral.Engine, call: object, error: type[Exception]
) -> None:
    with pytest.raises(error):
        await call(engine)  # type: ignore[operator]


def test_bad_subscribe_buffer_and_builder_arguments() -> None:
    with pytest.raises(corral.SpecError, match="must be a mapping"):
        corral.Workflow("w", inputs={"x": 5})  # type: ignore[dict-item]
    wf = corral.Workflow("w")
    with pytest.raises(corral.SpecError, match="retry must be a mapping"):
        wf.step("s", "core.noop", retry=3)  # type: ignore[arg-type]
    with pytest.raises(corral.SpecError, match="concurrency must be a mapping"):
        wf.step("s", "core.noop", concurrency="k")  # type: ignore[arg-type]


async def test_bad_subscribe_buffer(engine: corral.Engine) -> None:
    with pytest.raises(corral.UsageError):
        engine.subscribe(buffer=-1)


async def test_soft_memory_mark_above_hard_is_a_config_error() -> None:
    with pytest.raises(corral.ConfigError, match="above memory_hard_mb"):
        async with corral.open_engine(
            entry_points=False, limits=corral.Limits(memory_soft_mb=900, memory_hard_mb=100)
        ):
            pass


class _FlakyStore(corral.storage.MemoryStore):
    """A real memory store whose next status writes fail, as a locked database would."""

    def __init__(self) -> None:
        super().__init__()
        self.failures = 0

    async def finish_execution(self, *args: object, **kwargs: object) -> None:
        if self.failures:
            self.failures -= 1
            raise corral.StoreError("database is locked")
        await super().finish_execution(*args, **kwargs)  # type: ignore[arg-type]


async def test_store_errors_on_status_writes_are_retried_not_fatal() -> None:
    store = _FlakyStore()
    limits = corral.Limits(status_write_timeout=1.0)
    async with corral.open_engine(store, entry_points=False, limits=limits) as engine:
        wf = corral.Workflow("w")
        wf.step("s", "core.echo", value=1)
        store.failures = 2  # two failures, then the write goes through
        assert await engine.run(wf) == {"s": 1}
        assert (await engine.list())[0].status == "succeeded"
        # Never goes through: the record is given up (a later engine resumes it
        # from what was committed), the result is still returned, the engine lives.
        store.failures = 10**6
        handle = await engine.submit(wf)
        assert await handle.result() == {"s": 1}
        assert (await engine.get(handle.id)).status == "running"
        store.failures = 0
        assert await engine.run(wf) == {"s": 1}


async def test_gc_freeze_while_engines_are_open() -> None:
    """Objects alive at open leave the cyclic collector's reach while an engine
    is open; the last engine to close gives them back."""
    import gc

    assert gc.get_freeze_count() == 0
    thresholds = gc.get_threshold()
    async with corral.open_engine(entry_points=False):
        assert gc.get_threshold()[0] >= 10_000
        frozen = gc.get_freeze_count()
        assert frozen > 0
        garbage = [[i] for i in range(5000)]  # tracked objects a 2nd freeze would take
        async with corral.open_engine(entry_points=False):
            assert 0 < gc.get_freeze_count() <= frozen  # (frozen objects can still be freed)
        del garbage
        assert 0 < gc.get_freeze_count() <= frozen
    assert gc.get_freeze_count() == 0
    assert gc.get_threshold() == thresholds
    async with corral.open_engine(entry_points=False, freeze_gc=False):
        assert gc.get_freeze_count() == 0
    # the application's own freeze and thresholds are the application's
    gc.freeze()
    try:
        theirs = gc.get_freeze_count()
        async with corral.open_engine(entry_points=False):
            gc.set_threshold(5000, 20, 20)
        assert gc.get_freeze_count() > 0 and gc.get_freeze_count() <= theirs
        assert gc.get_threshold() == (5000, 20, 20)
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)


async def test_one_store_error_during_takeover_strands_nothing() -> None:
    # Issue 11, point 12: one StoreError ended the takeover loop; the rest of
    # the claimed batch stayed owned, leased and never run (and at open, the
    # error failed open_engine).
    store = FaultyStore("disk I/O error")
    limits = corral.Limits(status_write_timeout=0.2)
    wf = corral.Workflow("w")
    wf.step("s", "core.sleep", seconds=0.5)
    async with corral.open_engine(store, entry_points=False, lease=0.3, limits=limits) as a:
        ids = [(await a.submit(wf)).id for _ in range(3)]
        await trio.sleep(0.1)
        store.fail_writes = True  # engine a can record nothing more: it gives them up
        await a.close(cancel=True)
    store.fail_writes = False
    assert [(await store.get_execution(i)).status for i in ids] == ["running"] * 3
    store.fail_get_once = {ids[0]}
    later = lambda: time.time() + 0.4  # noqa: E731 - b's clock: a's leases have expired
    async with corral.open_engine(
        store, entry_points=False, lease=0.3, limits=limits, clock=later
    ) as b:
        with trio.fail_after(20):
            while [(await b.get(i)).status for i in ids] != ["succeeded"] * 3:
                await trio.sleep(0.05)
        assert b.resumed == 3


async def test_close_cancel_records_every_queued_execution(tmp_path: Any) -> None:
    limits = corral.Limits(max_running_workflows=1)
    wf = corral.Workflow("w")
    wf.step("s", "core.sleep", seconds=30)
    url = f"sqlite:///{tmp_path / 's.db'}"
    async with corral.open_engine(url, entry_points=False, limits=limits) as engine:
        handles = [await engine.submit(wf) for _ in range(1200)]
        await trio.sleep(0.1)
        await engine.close(cancel=True)
        for handle in handles[1:]:
            try:
                await handle.result()
            except corral.WorkflowCancelled:
                pass
    async with corral.open_engine(url, entry_points=False) as again:
        records = [await again.get(h.id) for h in handles]
    assert {r.status for r in records} == {"cancelled"}
    assert all(s.status == "cancelled" and s.finished_at for r in records for s in r.steps)


async def test_the_wall_clock_is_injectable() -> None:
    with pytest.raises(corral.ConfigError, match="clock"):
        async with corral.open_engine(entry_points=False, clock=42):  # type: ignore[arg-type]
            pass
    async with corral.open_engine(entry_points=False, clock=lambda: 1_000.0) as engine:
        wf = corral.Workflow("w")
        wf.step("s", "core.echo", value=1)
        handle = await engine.submit(wf)
        await handle.result()
        record = await engine.get(handle.id)
    assert record.created_at == record.started_at == record.finished_at == 1_000.0
    assert record.steps[0].finished_at == 1_000.0
