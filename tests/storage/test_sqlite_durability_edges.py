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
import trio.testing

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


async def _store_with_writer(db: Path, nursery: trio.Nursery) -> SQLiteStore:
    store = SQLiteStore(f"sqlite:///{db}", db)
    await store.open()
    nursery.start_soon(store.run)
    await trio.testing.wait_all_tasks_blocked()
    return store


def _rows(db: Path) -> list[tuple[str, str, int]]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(
            "SELECT step_id, status, attempts FROM step_executions ORDER BY step_id"
        ).fetchall()
    finally:
        conn.close()


async def _running_execution(store: SQLiteStore, execution_id: str) -> Any:
    from corral.core.model import ExecutionRecord, StepRecord

    record = ExecutionRecord(
        id=execution_id,
        workflow="w",
        version="1",
        status="running",
        inputs={},
        owner="me",
        created_at=1.0,
        started_at=1.0,
        steps=[StepRecord(step_id="a", handler="h"), StepRecord(step_id="b", handler="h")],
    )
    await store.create_execution(record)
    return record


async def test_a_step_that_ends_before_the_next_batch_is_written_once(tmp_path: Path) -> None:
    """A `running` record is state, not a queued write: when its step's
    terminal record comes before the writer takes a batch, only the terminal
    record is written (one op), and the row says what the step ended as."""
    db = tmp_path / "r.db"
    async with trio.open_nursery() as nursery:
        store = await _store_with_writer(db, nursery)
        record = await _running_execution(store, "e1")
        step = record.steps[0]
        step.status, step.attempts, step.started_at = "running", 1, 2.0
        ops = store.ops
        await store.record_step("e1", step, owner="me")  # no checkpoint: the writer waits
        step.status, step.finished_at, step.output = "succeeded", 3.0, 7
        await store.record_step("e1", step, owner="me")
        assert store.ops == ops + 1
        assert _rows(db) == [("a", "succeeded", 1)]
        await store.close()


async def test_a_step_still_running_at_the_next_batch_is_recorded_running(
    tmp_path: Path,
) -> None:
    """What `corral show` and a takeover see: a step that is still running
    when the writer takes its next batch is written `running` (with its
    latest attempt), and its terminal record replaces that row later."""
    db = tmp_path / "r.db"
    async with trio.open_nursery() as nursery:
        store = await _store_with_writer(db, nursery)
        record = await _running_execution(store, "e1")
        step = record.steps[1]
        step.status, step.attempts, step.started_at = "running", 1, 2.0
        await store.record_step("e1", step, owner="me")
        step.attempts = 2  # a retry began before the batch was taken: the latest counts
        await store.record_step("e1", step, owner="me")
        await store.get_execution("e1")  # a batch has been taken and committed
        assert _rows(db) == [("b", "running", 2)]
        step.status, step.finished_at = "failed", 3.0
        await store.record_step("e1", step, owner="me")
        assert _rows(db) == [("b", "failed", 2)]
        # another owner's `running` record is refused by the fence, silently
        other = record.steps[0]
        other.status, other.attempts = "running", 1
        await store.record_step("e1", other, owner="someone else")
        await store.get_execution("e1")
        assert _rows(db) == [("b", "failed", 2)]
        await store.close()


async def test_running_records_left_at_close_are_written(tmp_path: Path) -> None:
    """Closing the store drains the writer, `running` records included."""
    db = tmp_path / "r.db"
    async with trio.open_nursery() as nursery:
        store = await _store_with_writer(db, nursery)
        record = await _running_execution(store, "e1")
        step = record.steps[0]
        step.status, step.attempts = "running", 1
        await store.record_step("e1", step, owner="me")
        await store.close()
    assert _rows(db) == [("a", "running", 1)]
