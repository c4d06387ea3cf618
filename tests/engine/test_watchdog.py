"""A handler that blocks the event loop is noticed, counted and marked on its
step (issue 11, point 2); a step timeout it overran is a timeout."""

from __future__ import annotations

import sys
from pathlib import Path

import corral

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import _worker_handlers  # noqa: E402


def _blocking(seconds: float, timeout: float | None = None) -> corral.Workflow:
    wf = corral.Workflow("blocks")
    if timeout is None:
        wf.step("s", "test.blocks_the_loop", seconds=seconds)
    else:
        wf.step("s", "test.blocks_the_loop", seconds=seconds, timeout=timeout)
    return wf


async def test_a_loop_stall_is_counted_and_marked_on_its_step(tmp_path: Path) -> None:
    limits = corral.Limits(loop_stall_warning=0.2)
    async with corral.open_engine(
        f"sqlite:///{tmp_path / 's.db'}", plugins=[_worker_handlers], limits=limits
    ) as engine:
        handle = await engine.submit(_blocking(0.8))
        assert await handle.result() == {"s": "done"}
        await engine.run(_blocking(0.0))  # the loop runs again: the stall is reported
        assert engine.metrics().loop_stalls == 1
        step = (await engine.get(handle.id)).steps[0]
        assert step.status == "succeeded" and len(step.warnings) == 1
        assert "held the event loop for" in step.warnings[0]
        assert "_worker_handlers.py" in step.warnings[0] and 'kind = "blocking"' in step.warnings[0]
    # and the warning is in the file, for `corral show`
    async with corral.open_engine(
        f"sqlite:///{tmp_path / 's.db'}", plugins=[_worker_handlers]
    ) as again:
        assert (await again.get(handle.id)).steps[0].warnings == step.warnings


async def test_the_watch_can_be_turned_off() -> None:
    limits = corral.Limits(loop_stall_warning=0)
    async with corral.open_engine(plugins=[_worker_handlers], limits=limits) as engine:
        await engine.run(_blocking(0.4))
        await engine.run(_blocking(0.0))
        assert engine.metrics().loop_stalls == 0


async def test_a_step_that_blocked_past_its_timeout_timed_out() -> None:
    # the timeout could not fire while the loop was blocked; it still counts
    async with corral.open_engine(plugins=[_worker_handlers]) as engine:
        handle = await engine.submit(_blocking(0.5, timeout=0.1))
        step = None
        try:
            await handle.result()
        except corral.WorkflowFailed:
            step = (await engine.get(handle.id)).steps[0]
        assert step is not None and step.status == "timed_out"
