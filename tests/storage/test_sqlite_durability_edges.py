"""SQLite store edge cases found in review of the write-path optimisations:
an execution is durable before its first step runs, a failed insert runs
nothing, a failed queued step record is written again before the finish, and
a cancel from outside the engine loses no status write."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import trio

import corral
from corral.plugins import Handler, StepContext, hookimpl
from corral.storage.sqlite import SQLiteStore

SEEN: list[Any] = []
RAN: list[str] = []


def hold_write_lock(db: Path, seconds: float) -> None:
    """Another process takes the write lock for a while (in a thread)."""
    conn = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    conn.execute("BEGIN IMMEDIATE")

    def release() -> None:
        time.sleep(seconds)
        conn.execute("COMMIT")
        conn.close()

    threading.Thread(target=release, daemon=True).start()


class Look(Handler):
    """Looks its own execution up through another connection."""

    name = "t.look"

    async def run(self, ctx: StepContext, params: Any) -> Any:
        db = ctx.inputs["db"]
        conn = sqlite3.connect(db)
        try:
            row = conn.execute(
                "SELECT status FROM workflow_executions WHERE id = ?", (ctx.execution_id,)
            ).fetchone()
        finally:
            conn.close()
        SEEN.append(row)
        return None


class SideEffect(Handler):
    name = "t.side_effect"

    async def run(self, ctx: StepContext, params: Any) -> Any:
        RAN.append(ctx.step_id)
        return "done"


class LockThenReturn(Handler):
    """Lets its `running` record commit, then takes the write lock as another
    process would, and returns at once: its unwaited terminal record fails."""

    name = "t.lock_then_return"

    async def run(self, ctx: StepContext, params: Any) -> Any:
        await trio.sleep(0.2)
        hold_write_lock(Path(ctx.inputs["db"]), 0.6)
        return "ok"


class Plugin:
    @hookimpl
    def corral_handlers(self) -> list[type[Handler]]:
        return [Look, SideEffect, LockThenReturn]


async def test_an_execution_is_stored_before_its_first_step_runs(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    SEEN.clear()
    wf = corral.Workflow("look", inputs={"db": "string"})
    wf.step("a", "t.look")
    async with corral.open_engine(f"sqlite:///{db}", plugins=[Plugin()], entry_points=False) as e:
        for _ in range(10):
            await e.run(wf, {"db": str(db)})
    assert len(SEEN) == 10 and None not in SEEN  # another connection saw it every time


async def test_a_failed_insert_runs_nothing_and_says_why(tmp_path: Path) -> None:
    db = tmp_path / "f.db"
    RAN.clear()
    store = SQLiteStore(f"sqlite:///{db}", db, busy_timeout=0.2)
    wf = corral.Workflow("ins")
    a = wf.step("a", "t.side_effect")
    wf.step("b", "t.side_effect", needs=[a])
    async with corral.open_engine(store, plugins=[Plugin()], entry_points=False) as engine:
        await engine.create(wf)  # the definition is stored beforehand
        hold_write_lock(db, 0.6)
        handle = await engine.submit(wf)
        with pytest.raises(corral.WorkflowCancelled, match="could not be stored"):
            await handle.result()
    assert RAN == []


async def test_a_failed_queued_step_record_is_written_before_the_finish(tmp_path: Path) -> None:
    db = tmp_path / "k.db"
    store = SQLiteStore(f"sqlite:///{db}", db, busy_timeout=0.2)
    wf = corral.Workflow("sink", inputs={"db": "string"})
    a = wf.step("a", "core.noop")
    wf.step("b", "t.lock_then_return", needs=[a])
    async with corral.open_engine(store, plugins=[Plugin()], entry_points=False) as engine:
        handle = await engine.submit(wf, {"db": str(db)})
        assert await handle.result() == {"b": "ok"}
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute("SELECT step_id, status FROM step_executions ORDER BY 1").fetchall()
    finally:
        conn.close()
    assert rows == [("a", "succeeded"), ("b", "succeeded")]


async def test_a_cancel_from_outside_the_engine_loses_no_status_write(tmp_path: Path) -> None:
    db = tmp_path / "c.db"
    wf = corral.Workflow("slow")
    first = wf.step("a", "core.sleep", seconds=0.001)
    second = wf.step("b", "core.sleep", needs=[first], seconds=0.05)
    wf.step("c", "core.sleep", needs=[second], seconds=0.05)
    with trio.move_on_after(0.5):
        async with corral.open_engine(f"sqlite:///{db}", entry_points=False) as engine:
            async with trio.open_nursery() as nursery:
                for _ in range(20):

                    async def submit_many() -> None:
                        for _ in range(100):
                            await engine.submit(wf)
                            await trio.sleep(0)
                        await trio.sleep_forever()

                    nursery.start_soon(submit_many)
    conn = sqlite3.connect(db)
    try:
        statuses = dict(
            conn.execute("SELECT status, count(*) FROM workflow_executions GROUP BY 1").fetchall()
        )
        unfinished = conn.execute(
            "SELECT count(*) FROM step_executions WHERE status IN ('pending', 'running')"
        ).fetchone()[0]
    finally:
        conn.close()
    assert statuses and set(statuses) <= {"succeeded", "cancelled"}, statuses
    assert unfinished == 0


async def test_many_queued_running_records_stay_foldable(tmp_path: Path) -> None:
    """Past 10,000 queued `running` records the bookkeeping grows its limit
    (an amortised sweep), keeping every record that can still be folded."""
    from corral.core.model import StepRecord

    db = tmp_path / "r.db"
    store = SQLiteStore(f"sqlite:///{db}", db)
    await store.open()
    store._commits.writing = True  # a writer that has not taken anything yet
    record = StepRecord(step_id="a", handler="h", status="running", attempts=1, started_at=1.0)
    for i in range(25_000):
        await store.record_step(f"e{i}", record, owner="me", wait=False)
    assert len(store._running_ops) == 25_000
    assert store._running_limit >= 2 * 10_000
    store._commits.writing = False
    await store.close()
