"""The Engine's public surface: argument validation, handles, lifecycle."""

from __future__ import annotations

import pytest
import trio

import corral
import corral.plugins


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

    from corral.model import StepProgress

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
