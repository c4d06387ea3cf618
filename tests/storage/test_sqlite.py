"""The SQLite store on real files: its settings, group commit, durability
``none``, and a large prune that must not stall running workflows."""

from __future__ import annotations

import json

import sqlite3
import time
from pathlib import Path
from typing import Any

import msgspec
import pytest
import trio
import trio.testing

import corral
from corral.core.model import InputSpec, StepSpec, WorkflowSpec
from corral.plugins import Handler, StepContext, hookimpl
from corral.storage import SQLiteStore, open_store


def url(db: Path) -> str:
    return f"sqlite:///{db}"


def chain(n: int, handler: str = "core.noop", name: str = "chain") -> WorkflowSpec:
    return WorkflowSpec(
        name=name,
        steps=[
            StepSpec(id=f"s{i}", handler=handler, needs=[f"s{i - 1}"] if i > 1 else [])
            for i in range(1, n + 1)
        ],
    )


async def test_connection_settings(tmp_path: Path) -> None:
    db = tmp_path / "c.db"
    store = open_store(url(db))
    assert isinstance(store, SQLiteStore)
    await store.open()
    try:
        conn = store._conn
        assert conn is not None
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
        assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert conn.execute("PRAGMA busy_timeout").fetchone()[0] > 0
    finally:
        await store.close()


@pytest.mark.parametrize(
    ("content", "needle"),
    [(b"this is not a database at all" * 100, "not a corral database"), (None, "directory")],
)
async def test_a_file_that_is_not_a_database_is_a_store_error(
    tmp_path: Path, content: bytes | None, needle: str
) -> None:
    path = tmp_path / "bad.db"
    if content is None:
        path.mkdir()
    else:
        path.write_bytes(content)
    with pytest.raises(corral.StoreError, match=needle):
        await open_store(url(path)).open()
    if content is not None:
        assert path.read_bytes() == content  # left as it was


async def test_group_commit_batches_concurrent_workflows(tmp_path: Path) -> None:
    """Writes of concurrently running workflows share transactions."""
    db = tmp_path / "g.db"
    async with corral.open_engine(url(db), entry_points=False) as engine:
        store = engine.store
        assert isinstance(store, SQLiteStore)
        before_batches, before_ops = store.batches, store.ops
        spec = chain(5)
        handles = [await engine.submit(spec) for _ in range(40)]
        for h in handles:
            await h.result()
        batches, ops = store.batches - before_batches, store.ops - before_ops
    # 40 workflows x 5 steps, each at least a terminal record (a `running` one
    # still queued when it comes becomes that record), in far fewer transactions.
    assert ops >= 200
    assert batches < ops / 2, (batches, ops)
    with sqlite3.connect(db) as conn:
        statuses = conn.execute(
            "SELECT status, count(*) FROM step_executions GROUP BY 1"
        ).fetchall()
    assert statuses == [("succeeded", 200)]


def _put(key: str) -> Any:
    def op(conn: sqlite3.Connection) -> None:
        conn.execute(
            "INSERT INTO cache_entries (key, value, size, created_at) VALUES (?, x'00', 1, 0)",
            (key,),
        )

    return op


def _fails_after_writing(conn: sqlite3.Connection) -> None:
    _put("half")(conn)
    _put("x")(conn)  # already there: fails


def _fails_before_writing(conn: sqlite3.Connection) -> None:
    _put("x")(conn)  # already there: fails
    _put("never")(conn)


async def test_a_batch_of_single_statement_writes_has_no_savepoint(tmp_path: Path) -> None:
    """Inside a savepoint every write statement costs more, and a batch whose
    writes are each one statement never needs one: a failing one (a
    duplicate) is undone by SQLite alone and the others commit. Execution
    inserts without step rows are such writes."""
    db = tmp_path / "b.db"
    store = SQLiteStore(url(db), db)
    await store.open()
    await store._call(_put("x"))
    statements: list[str] = []
    results: dict[str, object] = {}

    async def call(name: str, op: Any) -> None:
        try:
            results[name] = await store._call(op, atomic=True)
        except corral.StoreError as exc:
            results[name] = exc

    record = corral.ExecutionRecord(id="e1", workflow="w", version="1", inputs={}, created_at=1.0)
    assert store._conn is not None
    store._conn.set_trace_callback(statements.append)
    async with trio.open_nursery() as nursery:
        store._commits.writing = True  # queue all four before the writer takes a batch
        nursery.start_soon(call, "a", _put("a"))
        nursery.start_soon(call, "dup", _put("x"))
        nursery.start_soon(call, "b", _put("b"))
        await store.create_execution(record, wait=False)
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(store.run)
        try:
            with trio.fail_after(30):
                await store.wait_created("e1")
                while len(results) < 3:
                    await trio.sleep(0.01)
        finally:
            await store.close()
    assert statements[0] == "BEGIN IMMEDIATE" and statements[-1] == "COMMIT", statements
    assert sum(s.startswith("INSERT") for s in statements) == 4, statements  # one batch
    assert not [s for s in statements if "SAVEPOINT" in s], statements
    assert results["a"] is None and results["b"] is None
    assert "UNIQUE" in str(results["dup"])
    with sqlite3.connect(db) as conn:
        keys = sorted(r[0] for r in conn.execute("SELECT key FROM cache_entries"))
        ids = [r[0] for r in conn.execute("SELECT id FROM workflow_executions")]
    assert keys == ["a", "b", "x"] and ids == ["e1"]


@pytest.mark.parametrize(
    ("compound", "retried"), [(_fails_after_writing, True), (_fails_before_writing, False)]
)
async def test_an_op_failing_part_way_leaves_nothing_and_its_batch_commits(
    tmp_path: Path, compound: Any, retried: bool
) -> None:
    """Ops of one batch share a transaction without a savepoint each. An op of
    several statements that fails after changing rows must still leave nothing
    behind, the other ops of its batch must still commit, and the batch keeps
    the write lock throughout (another writer cannot slip in between the two
    passes). One that fails before changing anything costs no second pass."""
    db = tmp_path / "b.db"
    store = SQLiteStore(url(db), db)
    await store.open()
    await store._call(_put("x"))
    other = sqlite3.connect(db, isolation_level=None, timeout=0, check_same_thread=False)
    statements: list[str] = []
    intruded: list[str] = []

    def trace(sql: str) -> None:
        # At every statement of the batch, another writer tries for the lock.
        statements.append(sql)
        if len(statements) > 1 and not intruded:
            try:
                other.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError:
                return  # held by the batch, as it must be
            intruded.append(sql)
            other.execute("ROLLBACK")

    results: dict[str, object] = {}

    async def call(name: str, op: Any, atomic: bool) -> None:
        try:
            results[name] = await store._call(op, atomic=atomic)
        except corral.StoreError as exc:
            results[name] = exc

    async with trio.open_nursery() as nursery:
        nursery.start_soon(store.run)
        await trio.testing.wait_all_tasks_blocked()
        before = store.batches
        assert store._conn is not None
        store._conn.set_trace_callback(trace)
        nursery.start_soon(call, "a", _put("a"), True)
        nursery.start_soon(call, "compound", compound, False)
        nursery.start_soon(call, "b", _put("b"), True)
        nursery.start_soon(call, "dup", _put("x"), True)
        try:
            with trio.fail_after(30):
                while len(results) < 4:
                    await trio.sleep(0.01)
        finally:
            store._conn.set_trace_callback(None)
            await store.close()  # the writer is shielded: only close() stops it
    other.close()
    assert store.batches == before + 1, statements  # one batch
    assert ("ROLLBACK TO batch" in statements) is retried, statements
    assert intruded == [], statements
    assert results["a"] is None and results["b"] is None
    assert "UNIQUE" in str(results["compound"]) and "UNIQUE" in str(results["dup"])
    with sqlite3.connect(db) as conn:
        keys = sorted(r[0] for r in conn.execute("SELECT key FROM cache_entries"))
    assert keys == ["a", "b", "x"]


def _peeking(db: Path, seen: list[tuple[str, list[str]]]) -> Any:
    """A plugin whose ``peek.step`` records which steps of its execution are
    ``succeeded`` in the file (another connection) when it starts."""

    class Peek(Handler):
        name = "peek.step"

        async def run(self, ctx: StepContext, params: Any) -> Any:
            with sqlite3.connect(db) as other:
                rows = other.execute(
                    "SELECT step_id FROM step_executions WHERE execution_seq = "
                    "(SELECT seq FROM workflow_executions WHERE id = ?) "
                    "AND status = 'succeeded' ORDER BY step_id",
                    (ctx.execution_id,),
                ).fetchall()
            seen.append((ctx.step_id, [r[0] for r in rows]))
            await trio.lowlevel.checkpoint()  # (the siblings end in other batches)
            return ctx.step_id

    class Plugin:
        @hookimpl
        def corral_handlers(self) -> list[type[Handler]]:
            return [Peek]

    return Plugin()


async def test_terminal_step_records_are_committed_before_dependents_start(
    tmp_path: Path,
) -> None:
    """Durability "step": when a step starts, its upstream output is in the file
    (read through another connection)."""
    db = tmp_path / "d.db"
    seen: list[tuple[str, list[str]]] = []
    async with corral.open_engine(
        url(db), plugins=[_peeking(db, seen)], entry_points=False
    ) as engine:
        await engine.run(chain(4, "peek.step"))
    assert seen == [(f"s{i}", [f"s{j}" for j in range(1, i)]) for i in range(1, 5)]


def _fan_in(width: int) -> WorkflowSpec:
    """root -> m0..m{width-1} -> join."""
    middle = [f"m{k}" for k in range(width)]
    return WorkflowSpec(
        name="fan",
        steps=[
            StepSpec(id="root", handler="peek.step"),
            *(StepSpec(id=m, handler="peek.step", needs=["root"]) for m in middle),
            StepSpec(id="join", handler="peek.step", needs=middle),
        ],
    )


async def test_a_join_starts_only_once_every_record_it_needs_is_committed(
    tmp_path: Path,
) -> None:
    """Steps feeding one step queue their records without waiting for them;
    whichever task starts the join waits for all of them first."""
    db = tmp_path / "f.db"
    seen: list[tuple[str, list[str]]] = []
    async with corral.open_engine(
        url(db), plugins=[_peeking(db, seen)], entry_points=False
    ) as engine:
        handles = [await engine.submit(_fan_in(6)) for _ in range(20)]
        for h in handles:
            await h.result()
    middle = sorted(f"m{k}" for k in range(6))
    joins = [rows for step, rows in seen if step == "join"]
    assert len(joins) == 20 and all(rows == [*middle, "root"] for rows in joins)
    assert all("root" in rows for step, rows in seen if step.startswith("m"))


async def test_a_queued_record_that_failed_is_written_again_before_its_dependent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A transient failure of a queued (unwaited) record: the step it feeds
    starts only after the record is written again, and it is stored."""
    db = tmp_path / "r.db"
    seen: list[tuple[str, list[str]]] = []
    failed: list[str] = []
    real = SQLiteStore._step_fn

    def flaky(self: SQLiteStore, execution_id: str, step: Any, owner: str | None) -> Any:
        write = real(self, execution_id, step, owner)
        if step.step_id != "m3" or step.status != "succeeded" or failed:
            return write

        def fails_once(conn: sqlite3.Connection) -> None:
            failed.append(step.step_id)
            raise sqlite3.OperationalError("database is locked")

        return fails_once

    monkeypatch.setattr(SQLiteStore, "_step_fn", flaky)
    async with corral.open_engine(
        url(db), plugins=[_peeking(db, seen)], entry_points=False
    ) as engine:
        handle = await engine.submit(_fan_in(5))
        await handle.result()
        record = await engine.get(handle.id)
    assert failed == ["m3"]
    assert [rows for step, rows in seen if step == "join"] == [
        ["m0", "m1", "m2", "m3", "m4", "root"]
    ]
    assert all(s.status == "succeeded" for s in record.steps)


async def test_durability_none_writes_no_step_records(tmp_path: Path) -> None:
    db = tmp_path / "n.db"
    async with corral.open_engine(url(db), entry_points=False, durability="none") as engine:
        handles = [await engine.submit(chain(3, "core.echo")) for _ in range(3)]
        failing = await engine.submit(
            WorkflowSpec(name="bad", steps=[StepSpec(id="x", handler="core.fail")])
        )
        for h in handles:
            await h.result()
        with pytest.raises(corral.WorkflowFailed):
            await failing.result()
        ids = [h.id for h in handles]
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT id, status, finished_at IS NOT NULL FROM workflow_executions"
        ).fetchall()
        steps = conn.execute("SELECT * FROM step_executions").fetchall()
        plans = [
            json.loads(r[0]) for r in conn.execute("SELECT step_plan FROM workflow_executions")
        ]
    assert sorted(rows) == sorted([(i, "succeeded", 1) for i in ids] + [(failing.id, "failed", 1)])
    # No step rows: a step's row is made by its first write, and none was written;
    # the steps are listed with their executions (read back as pending).
    assert steps == []
    assert sorted(len(p) for p in plans) == [1, 3, 3, 3]


async def test_durability_step_is_the_default(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    async with corral.open_engine(url(db), entry_points=False) as engine:
        h = await engine.submit(chain(2, "core.echo"))
        await h.result()
        record = await engine.get(h.id)
    assert [s.status for s in record.steps] == ["succeeded", "succeeded"]
    assert all(s.attempts == 1 and s.finished_at is not None for s in record.steps)


# ---------------------------------------------------------------- retention

OLD = 100_000


def _insert_old(db: Path, n: int, finished_at: float) -> None:
    conn = sqlite3.connect(db)
    try:
        ids = [f"old-{i:06d}" for i in range(n)]
        conn.executemany(
            "INSERT INTO workflow_executions (id, workflow, version, status, inputs, created_at, "
            "started_at, finished_at) VALUES (?, 'old', '1', 'succeeded', X'7B7D', ?, ?, ?)",
            ((i, finished_at, finished_at, finished_at) for i in ids),
        )
        conn.executemany(
            "INSERT INTO step_executions (execution_seq, step_id, position, handler, status, "
            "attempts, output) SELECT seq, 'a', 0, 'core.noop', 'succeeded', 1, X'6E756C6C' "
            "FROM workflow_executions WHERE id = ?",
            ((i,) for i in ids),
        )
        conn.commit()
    finally:
        conn.close()


async def test_prune_of_100k_executions_does_not_stall_a_running_workflow(
    tmp_path: Path,
) -> None:
    db = tmp_path / "p.db"
    store = open_store(url(db))
    await store.open()
    await store.close()
    week_ago = time.time() - 7 * 86400
    _insert_old(db, OLD, finished_at=week_ago - 86400)
    with sqlite3.connect(db) as conn:  # one recent finished execution is kept
        conn.execute(
            "INSERT INTO workflow_executions (id, workflow, version, status, inputs, created_at, "
            "finished_at) VALUES ('recent', 'old', '1', 'succeeded', X'7B7D', ?, ?)",
            (time.time(), time.time()),
        )

    # Each step of the running workflow samples (through its own connection) how
    # many old executions are left: the workflow's progress as seen by the prune.
    remaining: list[int] = []
    pruned = trio.Event()
    probe = sqlite3.connect(db, check_same_thread=False)

    class Probe(Handler):
        name = "probe.step"
        kind = "blocking"  # the count runs in a thread, not in the event loop

        def run(self, ctx: StepContext, params: Any) -> Any:  # type: ignore[override]
            left = probe.execute(
                "SELECT count(*) FROM workflow_executions WHERE workflow = 'old'"
            ).fetchone()[0]
            remaining.append(left)
            if not pruned.is_set():
                time.sleep(0.002)
            return left

    class Plugin:
        @hookimpl
        def corral_handlers(self) -> list[type[Handler]]:
            return [Probe]

    steps = 400
    try:
        async with corral.open_engine(url(db), plugins=[Plugin()], entry_points=False) as engine:
            handle = await engine.submit(chain(steps, "probe.step", "running"))
            with trio.fail_after(60):
                while len(remaining) < 5:  # noqa: ASYNC110 (under way)
                    await trio.sleep(0.01)
            deleted = await engine.store.prune(week_ago)
            pruned.set()
            at_end = len(remaining)
            await handle.result()
            record = await engine.get(handle.id)
    finally:
        probe.close()

    assert deleted == OLD
    assert record.status == "succeeded"
    assert [s.status for s in record.steps] == ["succeeded"] * steps
    # The workflow made progress *during* the prune: its steps saw the prune
    # half done, at many different points, and in order.
    during = [r for r in remaining if 1 < r < OLD + 1]
    assert len(set(during)) >= 5, (len(remaining), at_end, sorted(set(remaining))[:20])
    assert remaining == sorted(remaining, reverse=True)
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM workflow_executions").fetchone()[0] == 2
        left = conn.execute(
            "SELECT e.id FROM step_executions s "
            "JOIN workflow_executions e ON e.seq = s.execution_seq"
        ).fetchall()
        assert {r[0] for r in left} == {handle.id}


async def test_prune_by_status_and_age(tmp_path: Path) -> None:
    db = tmp_path / "q.db"
    first = open_store(url(db))
    await first.open()
    await first.close()
    now = time.time()
    with sqlite3.connect(db) as conn:
        rows = [
            ("a", "succeeded", now - 100),
            ("b", "failed", now - 100),
            ("c", "succeeded", now - 1),
            ("d", "running", None),
        ]
        conn.executemany(
            "INSERT INTO workflow_executions (id, workflow, version, status, inputs, created_at, "
            "finished_at) VALUES (?, 'w', '1', ?, X'7B7D', 0, ?)",
            rows,
        )
    store = open_store(url(db))
    await store.open()
    try:
        assert await store.prune(now - 10, statuses=("failed",)) == 1
        assert await store.prune(now - 10, batch=1) == 1
        assert {r.id for r in await store.list_executions()} == {"c", "d"}
        assert (await store.get_execution("d")).status == "running"  # unfinished: kept
    finally:
        await store.close()


async def test_cache_entries_are_json_not_pickle(tmp_path: Path) -> None:
    """Cache values are JSON (msgspec), readable without corral."""
    db = tmp_path / "m.db"
    spec = WorkflowSpec(
        name="c",
        steps=[StepSpec(id="a", handler="core.echo", params={"value": {"k": [1, 2]}}, cache=True)],
    )
    async with corral.open_engine(url(db), entry_points=False) as engine:
        await engine.run(spec)
    with sqlite3.connect(db) as conn:
        (value,) = conn.execute("SELECT value FROM cache_entries").fetchone()
    assert msgspec.json.decode(value) == {"k": [1, 2]}


async def test_a_submit_that_waited_for_the_bound_lets_the_woken_runs_start_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A burst past MAX_UNACKNOWLEDGED: the submit that waits for the oldest
    insert's commit returns only after the runs that commit woke have
    started their first step (not behind the next burst of submits)."""
    import corral.storage.batched as batched

    monkeypatch.setattr(batched, "MAX_UNACKNOWLEDGED", 4)
    events: list[tuple[str, int]] = []

    class Mark(Handler):
        name = "mark.start"

        async def run(self, ctx: StepContext, params: Any) -> Any:
            events.append(("started", ctx.inputs["i"]))
            return None

    class Plugin:
        @hookimpl
        def corral_handlers(self) -> list[type[Handler]]:
            return [Mark]

    spec = WorkflowSpec(
        name="m",
        inputs={"i": InputSpec(type="integer")},
        steps=[StepSpec(id="s", handler="mark.start")],
    )
    db = tmp_path / "b.db"
    plugins = [Plugin()]
    async with corral.open_engine(url(db), plugins=plugins, entry_points=False) as engine:
        handles = []
        for i in range(40):
            handles.append(await engine.submit(spec, {"i": i}))
            events.append(("submitted", i))
        for h in handles:
            await h.result()
    # Each fifth submit (4, 8, ...) waited for the commit of the insert four
    # before it, which woke that run too: it started before the submit returned.
    stalls = [k for k in range(4, 40, 4)]
    assert all(events.index(("started", k - 4)) < events.index(("submitted", k)) for k in stalls)


def test_a_kill_after_a_burst_of_submits_loses_at_most_the_bound() -> None:
    # Issue 11, point 7: unkeyed submits return before their commit; in a tight
    # loop nothing was committed at all (a kill lost every one). Now at most
    # MAX_UNACKNOWLEDGED are ever uncommitted. A real process, a real SIGKILL.
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from corral.storage.batched import MAX_UNACKNOWLEDGED
    from perf.window import run_window_repeat

    figures = run_window_repeat(0.5, timeout=120)
    assert figures["acknowledged"] > MAX_UNACKNOWLEDGED  # the burst was long enough to tell
    assert figures["lost"] <= MAX_UNACKNOWLEDGED


async def test_cancelling_an_execution_of_1000_steps_is_one_transaction(tmp_path: Path) -> None:
    from corral.core.model import ExecutionRecord, StepRecord

    store = open_store(f"sqlite://{tmp_path}/one.db")
    await store.open()
    try:
        await store.create_execution(
            ExecutionRecord(
                id="big",
                workflow="w",
                version=1,
                owner="A",
                steps=[StepRecord(step_id=f"s{i}") for i in range(1000)],
            )
        )
        statements: list[str] = []
        assert isinstance(store, SQLiteStore) and store._conn is not None
        store._conn.set_trace_callback(statements.append)
        assert await store.cancel_execution("big", "engine closed", 5.0, owner="A")
        store._conn.set_trace_callback(None)
        record = await store.get_execution("big")
    finally:
        await store.close()
    commits = [s for s in statements if s.strip().upper().startswith("COMMIT")]
    assert len(commits) == 1, statements
    assert {s.status for s in record.steps} == {"cancelled"}


async def test_step_rows_are_made_by_their_first_write_and_the_rollback_makes_the_rest(
    tmp_path: Path,
) -> None:
    from corral.core.model import ExecutionRecord, StepRecord
    from corral.storage import migrate

    db = tmp_path / "r.db"
    async with corral.open_engine(url(db), entry_points=False) as engine:
        done = await engine.submit(chain(3, "core.echo"))
        await done.result()
        held = await engine.submit(
            WorkflowSpec(
                name="held",
                steps=[
                    StepSpec(id="wait", handler="core.sleep", params={"seconds": 60}),
                    StepSpec(id="after", handler="core.noop", needs=["wait"]),
                ],
            )
        )
        with trio.fail_after(10):
            while (await engine.get(held.id)).step("wait").status != "running":
                await trio.sleep(0.01)
        record = await engine.get(held.id)
        assert [(s.step_id, s.status) for s in record.steps] == [
            ("wait", "running"),
            ("after", "pending"),  # no row: read from the execution's list of steps
        ]
        with sqlite3.connect(db) as conn:
            assert conn.execute(
                "SELECT step_id FROM step_executions WHERE execution_seq = "
                "(SELECT seq FROM workflow_executions WHERE id = ?)",
                (held.id,),
            ).fetchall() == [("wait",)]
        await engine.cancel(held.id)
    # queued, never started: no step rows at all
    store = SQLiteStore(url(db), db)
    await store.open()
    queued = ExecutionRecord(
        id="queued",
        workflow="q",
        version=1,
        created_at=1.0,
        steps=[StepRecord("x", handler="core.noop"), StepRecord("y", handler="core.noop")],
    )
    await store.create_execution(queued)
    assert [(s.step_id, s.status) for s in (await store.get_execution("queued")).steps] == [
        ("x", "pending"),
        ("y", "pending"),
    ]
    await store.close()
    with sqlite3.connect(db) as conn:
        assert conn.execute(
            "SELECT count(*) FROM step_executions WHERE execution_seq = "
            "(SELECT seq FROM workflow_executions WHERE id = 'queued')"
        ).fetchone() == (0,)
        migrate.migrate(conn, to=9)  # back to a row per step, in plan order
        back = conn.execute(
            "SELECT execution_id, step_id, position, status FROM step_executions "
            "ORDER BY execution_id, position"
        ).fetchall()
        assert [r for r in back if r[0] == "queued"] == [
            ("queued", "x", 0, "pending"),
            ("queued", "y", 1, "pending"),
        ]
        assert [r[1:] for r in back if r[0] == held.id] == [
            ("wait", 0, "cancelled"),
            ("after", 1, "cancelled"),
        ]
        assert [r[1:3] for r in back if r[0] == done.id] == [("s1", 0), ("s2", 1), ("s3", 2)]
        migrate.migrate(conn)
    async with corral.open_engine(url(db), entry_points=False) as engine:
        assert [s.status for s in (await engine.get(done.id)).steps] == ["succeeded"] * 3
        assert [s.status for s in (await engine.get(held.id)).steps] == ["cancelled"] * 2


async def test_step_rows_follow_their_execution_by_seq(tmp_path: Path) -> None:
    """Step rows are keyed by the execution's seq (migration 012), in the
    order executions were written whatever their ids; a step record for an
    execution that is not there writes nothing and says so."""
    from corral.core.errors import ExecutionNotFound
    from corral.core.model import ExecutionRecord, StepRecord

    db = tmp_path / "s.db"
    store = SQLiteStore(url(db), db)
    await store.open()
    ids = ["ff", "00", "7a"]  # written in this order
    for i in ids:
        await store.create_execution(
            ExecutionRecord(
                id=i,
                workflow="w",
                version=1,
                created_at=1.0,
                steps=[StepRecord("a"), StepRecord("b")],
            )
        )
    for i in reversed(ids):
        await store.record_step(i, StepRecord("b", status="succeeded", attempts=1, output=i))
    with pytest.raises(ExecutionNotFound):
        await store.record_step("gone", StepRecord("a", status="succeeded", attempts=1))
    for i in ids:
        steps = (await store.get_execution(i)).steps
        assert [(s.step_id, s.status, s.output) for s in steps] == [
            ("a", "pending", None),
            ("b", "succeeded", i),
        ]
    assert [r.id for r in await store.get_executions(["7a", "nope", "ff"])] == ["7a", "ff"]
    await store.close()
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT e.id, s.step_id FROM step_executions s "
            "JOIN workflow_executions e ON e.seq = s.execution_seq ORDER BY s.execution_seq"
        ).fetchall()
    assert rows == [("ff", "b"), ("00", "b"), ("7a", "b")]
