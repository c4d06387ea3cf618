"""What a handler writes with ``ctx.log`` (info and above) is kept with its
step's record, bounded, in every store, and retries add to it; the logger's
own level does not matter (nothing is configured in these tests)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import corral
from corral.plugins import MAX_LOG_LINES, Handler, StepContext, hookimpl


class Talk(Handler):
    name = "test.talk"

    async def run(self, ctx: StepContext, params: Any) -> Any:
        ctx.log.debug("not kept: below info")
        ctx.log.info("hello %s", ctx.step_id)
        ctx.log.warning("careful")
        if ctx.attempt == 1:
            raise RuntimeError("first attempt fails")
        return 1


class Flood(Handler):
    name = "test.flood"
    kind = "blocking"  # (from a worker thread)

    def run(self, ctx: StepContext, params: Any) -> Any:
        for i in range(MAX_LOG_LINES + 50):
            ctx.log.info("line %d %s", i, "x" * 5000 if i == 0 else "")
        return None


class Plugin:
    @hookimpl
    def corral_handlers(self) -> list[type[Handler]]:
        return [Talk, Flood]


@pytest.mark.parametrize("store", ["memory", "sqlite"])
async def test_logs_are_kept_with_the_step(store: str, tmp_path: Path) -> None:
    url = "memory://" if store == "memory" else f"sqlite:///{tmp_path / 's.db'}"
    wf = corral.Workflow("logs")
    wf.step("a", "test.talk", retry={"attempts": 2, "backoff": 0})
    wf.step("b", "test.flood")
    wf.step("c", "core.noop")
    async with corral.open_engine(url, plugins=[Plugin()], entry_points=False) as engine:
        handle = await engine.submit(wf)
        await handle.result()
        record = await engine.get(handle.id)
    a, b, c = (record.step(s) for s in "abc")
    assert a.logs == ["info hello a", "warning careful", "info hello a", "warning careful"]
    assert len(b.logs) == MAX_LOG_LINES + 1 and b.logs[-1].startswith("... (more lines")
    assert len(b.logs[0]) <= 1000 + len("info ") and b.logs[1] == "info line 1 "
    assert c.logs == []


class Download(Handler):
    name = "test.download"
    kind = "blocking"

    def run(self, ctx: StepContext, params: Any) -> Any:
        ctx.progress(1536, 3 * 1024 * 1024, "downloading", unit="bytes")
        return None


class Units(Handler):
    name = "test.units"

    @hookimpl
    def corral_handlers(self) -> list[type[Handler]]:
        return [Download]


async def test_progress_counts_a_unit() -> None:
    from corral.cli import progress_note
    from corral.core.model import StepProgress, WorkflowFinished

    wf = corral.Workflow("dl")
    wf.step("get", "test.download")
    async with corral.open_engine("memory://", plugins=[Units()], entry_points=False) as engine:
        with engine.subscribe() as events:
            handle = await engine.submit(wf)
            await handle.result()
            seen = []
            async for event in events:
                seen.append(event)
                if isinstance(event, WorkflowFinished):
                    break
    progress = [e for e in seen if isinstance(e, StepProgress)]
    assert len(progress) == 1 and progress[0].unit == "bytes"
    assert progress_note(progress[0]) == "1.5 KB/3.0 MB downloading"
    files = StepProgress(
        execution_id="x", workflow="w", at=0, step_id="s", done=3, total=10, unit="files"
    )
    assert progress_note(files) == "3/10 files"
