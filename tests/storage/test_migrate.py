"""Schema migrations of the SQLite store, on real files.

The fresh schema (``storage/schema/sqlite.sql``) must equal all migrations
applied in order, every migration must roll back cleanly, and a database that
does not match the code (an edited migration, a newer schema) is refused.
Schemas are compared by structure read back from SQLite (tables, columns,
indexes, foreign keys, constraints), never by raw SQL text.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import corral
from corral.storage import migrate as m
from corral.storage import open_store

LATEST = len(m.migrations())


# ---------------------------------------------------------------- structure


def _norm(sql: str) -> str:
    """Whitespace- and case-insensitive form of a SQL fragment."""
    sql = re.sub(r"--[^\n]*", " ", sql)
    sql = re.sub(r"\s+", " ", sql).strip().lower()
    return re.sub(r"\s*([^\w\s])\s*", r"\1", sql)


def _balanced(sql: str, start: int) -> str:
    """The text inside the parentheses that open at ``sql[start]``."""
    depth = 0
    for i in range(start, len(sql)):
        if sql[i] == "(":
            depth += 1
        elif sql[i] == ")":
            depth -= 1
            if depth == 0:
                return sql[start + 1 : i]
    raise AssertionError(f"unbalanced SQL: {sql!r}")


def _checks(sql: str) -> list[str]:
    out = []
    for match in re.finditer(r"\bcheck\s*\(", sql, re.IGNORECASE):
        out.append(_norm(_balanced(sql, match.end() - 1)))
    return sorted(out)


def structure(conn: sqlite3.Connection) -> dict[str, Any]:
    """The schema as data: everything that matters, nothing textual."""
    tables: dict[str, Any] = {}
    rows = conn.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
    ).fetchall()
    for name, sql in rows:
        info = conn.execute(f"PRAGMA table_list({name!r})").fetchone()
        tables[name] = {
            "columns": [
                # name, declared type, notnull, default, pk position, hidden
                (r[1], r[2].upper(), r[3], None if r[4] is None else _norm(r[4]), r[5], r[6])
                for r in conn.execute(f"PRAGMA table_xinfo({name!r})")
            ],
            "foreign_keys": sorted(
                tuple(r[2:]) for r in conn.execute(f"PRAGMA foreign_key_list({name!r})")
            ),
            "checks": _checks(sql),
            "without_rowid": info[4],
            "strict": info[5],
        }
    indexes: dict[str, Any] = {}
    for name, table, sql in conn.execute(
        "SELECT name, tbl_name, sql FROM sqlite_master WHERE type = 'index'"
    ).fetchall():
        listed = {r[1]: r for r in conn.execute(f"PRAGMA index_list({table!r})")}
        _, _, unique, origin, partial = listed[name]
        where = None
        if partial:
            assert sql is not None
            where = _norm(re.split(r"\bwhere\b", sql, maxsplit=1, flags=re.IGNORECASE)[1])
        indexes[name] = {
            "table": table,
            # column name, descending, collation: key columns only
            "columns": [
                (r[2], r[3], r[4]) for r in conn.execute(f"PRAGMA index_xinfo({name!r})") if r[5]
            ],
            "unique": unique,
            "origin": origin,
            "where": where,
        }
    triggers = sorted(
        _norm(r[0]) for r in conn.execute("SELECT sql FROM sqlite_master WHERE type = 'trigger'")
    )
    views = sorted(
        _norm(r[0]) for r in conn.execute("SELECT sql FROM sqlite_master WHERE type = 'view'")
    )
    return {"tables": tables, "indexes": indexes, "triggers": triggers, "views": views}


def applied(conn: sqlite3.Connection) -> list[tuple[int, str, str]]:
    return [
        (v, n, c)
        for v, n, c in conn.execute(
            "SELECT version, name, checksum FROM schema_migrations ORDER BY version"
        )
    ]


def expected_applied(upto: int) -> list[tuple[int, str, str]]:
    return [(x.version, x.name, x.checksum) for x in m.migrations()[:upto]]


@pytest.fixture
def connect(tmp_path: Path) -> Iterator[Any]:
    conns: list[sqlite3.Connection] = []

    def new(name: str) -> sqlite3.Connection:
        conn = sqlite3.connect(tmp_path / f"{name}.db", isolation_level=None)
        conn.execute("PRAGMA foreign_keys=ON")
        conns.append(conn)
        return conn

    yield new
    for c in conns:
        c.close()


# ---------------------------------------------------------------- the tests


def test_migrations_are_numbered_and_paired() -> None:
    found = m.migrations()
    assert [x.version for x in found] == list(range(1, LATEST + 1))
    assert LATEST >= 4
    assert "create_workflow_executions" in {x.name for x in found}
    assert m.migrations()[1].label == "002_create_workflow_executions"
    for x in found:
        assert x.up.strip() and x.down.strip(), x.label
    tables = set(structure_of_fresh()["tables"])
    assert {
        "workflow_definitions",
        "workflow_executions",
        "step_executions",
        "cache_entries",
        "schema_migrations",
    } <= tables


def structure_of_fresh() -> dict[str, Any]:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    try:
        m.migrate(conn)
        return structure(conn)
    finally:
        conn.close()


def test_fresh_schema_equals_all_migrations_applied_in_order(connect: Any) -> None:
    # What a new database gets: the schema file at once.
    fresh = connect("fresh")
    done = m.migrate(fresh)
    assert done == [f"created schema version {LATEST} (fresh database)"]
    # The same, one migration at a time, through migrate().
    stepwise = connect("stepwise")
    for version in range(1, LATEST + 1):
        assert m.migrate(stepwise, version) == [f"applied {m.migrations()[version - 1].label}"]
    # And the raw files, with no bookkeeping at all.
    raw_fresh, raw_steps = connect("raw_fresh"), connect("raw_steps")
    raw_fresh.executescript(m.fresh_schema())
    for mig in m.migrations():
        raw_steps.executescript(mig.up)

    want = structure(fresh)
    assert structure(stepwise) == want
    assert structure(raw_steps) == structure(raw_fresh)
    assert applied(fresh) == applied(stepwise) == expected_applied(LATEST)
    assert m.current_version(fresh) == LATEST


def test_structure_sees_what_matters(connect: Any) -> None:
    """The comparison is not vacuous: it sees a partial index's WHERE, uniqueness,
    a default, a foreign key and a check."""
    conn = connect("x")
    m.migrate(conn)
    s = structure(conn)
    key = s["indexes"]["workflow_executions_key"]
    assert key["unique"] == 1 and key["where"] == "idempotency_key is not null"
    assert key["columns"] == [("idempotency_key", 0, "BINARY")]
    queue = s["indexes"]["workflow_executions_queue"]
    assert [c[:2] for c in queue["columns"]] == [("status", 0), ("priority", 1), ("created_at", 0)]
    steps = s["tables"]["step_executions"]
    assert steps["without_rowid"] == 1
    assert ("workflow_executions", "execution_seq", "seq", "NO ACTION", "CASCADE", "NONE") in [
        fk[:6] for fk in steps["foreign_keys"]
    ]
    execs = {c[0]: c for c in s["tables"]["workflow_executions"]["columns"]}
    assert execs["priority"][1:4] == ("INTEGER", 1, "0")
    assert any(
        "cancel_requested in(0,1)" in c for c in s["tables"]["workflow_executions"]["checks"]
    )


BASE = (
    "CREATE TABLE t (a INTEGER, c INTEGER DEFAULT 0); CREATE UNIQUE INDEX k ON t (a) WHERE a > 0;"
)


@pytest.mark.parametrize(
    "variant",
    [
        BASE.replace("WHERE a > 0", "WHERE a > 1"),
        BASE.replace("UNIQUE INDEX", "INDEX"),
        BASE.replace("DEFAULT 0", "DEFAULT 1"),
        BASE.replace("c INTEGER", "c INTEGER NOT NULL"),
        BASE.replace("c INTEGER", "c TEXT"),
        BASE.replace("t (a) WHERE", "t (c) WHERE"),
        BASE.replace("t (a) WHERE", "t (a DESC) WHERE"),
        BASE.replace("a INTEGER", "a INTEGER REFERENCES t (c)"),
        BASE.replace("a INTEGER", "a INTEGER CHECK (a > 0)"),
        BASE.replace(");", ") WITHOUT ROWID;").replace("a INTEGER", "a INTEGER PRIMARY KEY"),
    ],
)
def test_structure_sees_differences(connect: Any, variant: str) -> None:
    a, b = connect("a"), connect("b")
    a.executescript(BASE)
    b.executescript(variant)
    assert structure(a) != structure(b)


def test_structure_ignores_layout(connect: Any) -> None:
    a, b = connect("a"), connect("b")
    a.executescript(BASE)
    b.executescript(
        "-- a comment\ncreate table t (\n  a   integer,\n  c integer default 0\n);\n"
        "create unique index k on t(a)\n  where a>0;"
    )
    assert structure(a) == structure(b)


@pytest.mark.parametrize("version", range(1, LATEST + 1))
def test_each_migration_rolls_back_cleanly(connect: Any, version: int) -> None:
    label = m.migrations()[version - 1].label
    there_and_back = connect("updown")
    m.migrate(there_and_back, version)
    assert m.migrate(there_and_back, version - 1) == [f"rolled back {label}"]
    direct = connect("direct")
    m.migrate(direct, version - 1)
    assert structure(there_and_back) == structure(direct)
    assert applied(there_and_back) == applied(direct) == expected_applied(version - 1)
    # ... and forward again gives the same schema as never having gone back.
    m.migrate(there_and_back, version)
    forward = connect("forward")
    m.migrate(forward, version)
    assert structure(there_and_back) == structure(forward)


def test_down_to_zero_leaves_only_schema_migrations(connect: Any) -> None:
    conn = connect("zero")
    m.migrate(conn)  # the fresh path
    done = m.migrate(conn, 0)
    assert done == [f"rolled back {x.label}" for x in reversed(m.migrations())]
    s = structure(conn)
    assert list(s["tables"]) == ["schema_migrations"]
    assert s["indexes"] == {} and applied(conn) == []
    assert m.current_version(conn) == 0
    m.migrate(conn)  # and back up, incrementally this time
    assert structure(conn) == structure_of_fresh()
    assert applied(conn) == expected_applied(LATEST)


async def test_full_rollback_of_a_used_store(tmp_path: Path) -> None:
    """Rolling back a database with data in it (foreign keys on) works."""
    db = tmp_path / "used.db"
    async with corral.open_engine(f"sqlite:///{db}", entry_points=False) as engine:
        await engine.run(
            corral.WorkflowSpec(
                name="w",
                steps=[
                    corral.StepSpec(id="a", handler="core.echo", params={"value": 1}, cache=True)
                ],
            )
        )
    store = open_store(f"sqlite:///{db}")
    await store.open()
    try:
        assert await store.schema_version() == LATEST
        done = await store.migrate(0)
        assert len(done) == LATEST
        assert await store.schema_version() == 0
        await store.migrate(2)
        assert await store.schema_version() == 2
        await store.migrate()
        assert await store.schema_version() == LATEST
        with pytest.raises(corral.StoreError, match="no schema version"):
            await store.migrate(LATEST + 1)
    finally:
        await store.close()


async def test_store_migrates_itself_on_open(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    conn = sqlite3.connect(db, isolation_level=None)
    m.migrate(conn, 2)
    conn.execute(
        "INSERT INTO workflow_executions (id, workflow, version, status, inputs, created_at) "
        "VALUES ('old-1', 'w', '1', 'succeeded', X'7B7D', 1.0)"
    )
    conn.close()
    store = open_store(f"sqlite:///{db}")
    await store.open()
    try:
        assert store.migrations_done == [f"applied {x.label}" for x in m.migrations()[2:]]
        assert await store.schema_version() == LATEST
        assert (await store.get_execution("old-1")).status == "succeeded"  # data kept
    finally:
        await store.close()
    conn = sqlite3.connect(db)
    try:
        assert structure(conn) == structure_of_fresh()
        assert applied(conn) == expected_applied(LATEST)
    finally:
        conn.close()
    # A new file gets the fresh schema on open.
    store = open_store(f"sqlite:///{tmp_path / 'new.db'}")
    await store.open()
    await store.close()
    conn = sqlite3.connect(tmp_path / "new.db")
    try:
        assert structure(conn) == structure_of_fresh()
        assert applied(conn) == expected_applied(LATEST)
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        conn.close()


async def _open(db: Path) -> None:
    store = open_store(f"sqlite:///{db}")
    await store.open()
    await store.close()


async def test_an_edited_applied_migration_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "edited.db"
    await _open(db)
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE schema_migrations SET checksum = 'not-the-file' WHERE version = 2")
    with pytest.raises(corral.StoreError, match="checksum") as info:
        await _open(db)
    assert "002_create_workflow_executions" in str(info.value)
    # The engine refuses it too, with the same error.
    with pytest.raises(corral.StoreError, match="checksum"):
        async with corral.open_engine(f"sqlite:///{db}", entry_points=False):
            pass


async def test_an_edited_migration_file_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "edited.db"
    await _open(db)
    shipped = m.migrations()

    def edited(backend: str = "sqlite") -> list[m.Migration]:
        out = list(shipped)
        old = out[2]
        out[2] = m.Migration(old.version, old.name, old.up + "\n-- a harmless edit\n", old.down)
        return out

    monkeypatch.setattr(m, "migrations", edited)
    with pytest.raises(corral.StoreError, match="checksum"):
        await _open(db)
    conn = sqlite3.connect(db)
    try:
        with pytest.raises(corral.StoreError, match="checksum"):
            m.migrate(conn)
    finally:
        conn.close()


async def test_a_database_newer_than_the_code_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "future.db"
    await _open(db)
    with sqlite3.connect(db) as conn:
        conn.execute(
            "INSERT INTO schema_migrations VALUES (?, 'from_the_future', 'x', 0)", (LATEST + 1,)
        )
    with pytest.raises(corral.StoreError, match="newer"):
        await _open(db)
    conn = sqlite3.connect(db)
    try:
        with pytest.raises(corral.StoreError, match="upgrade corral"):
            m.migrate(conn)
    finally:
        conn.close()


async def test_a_failing_migration_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "broken.db"
    await _open(db)
    shipped = m.migrations()
    broken = m.Migration(
        LATEST + 1,
        "broken",
        "CREATE TABLE half_done (x INTEGER); CREATE TABLE half_done (x INTEGER);",
        "DROP TABLE half_done;",
    )
    monkeypatch.setattr(m, "migrations", lambda backend="sqlite": [*shipped, broken])
    with pytest.raises(corral.StoreError):
        await _open(db)
    monkeypatch.undo()
    conn = sqlite3.connect(db)
    try:
        assert m.current_version(conn) == LATEST
        assert structure(conn) == structure_of_fresh()
    finally:
        conn.close()


async def test_a_store_opened_without_auto_migrate_checks_the_version(tmp_path: Path) -> None:
    from corral.storage import SQLiteStore

    db = tmp_path / "old.db"
    conn = sqlite3.connect(db, isolation_level=None)
    m.migrate(conn, 1)
    conn.close()
    store = SQLiteStore(f"sqlite:///{db}", db, auto_migrate=False)
    with pytest.raises(corral.StoreError, match="corral migrate"):
        await store.open()


def _openers_at_once(db: Path, openers: int, prepare: Any = None) -> None:
    """``openers`` threads open ``db`` as SQLiteStore does (WAL, then the
    migrations) at the same moment, five times over (``prepare(db)`` first
    each time); none may fail, and the schema ends at the newest version."""
    import threading

    start = threading.Barrier(openers)
    errors: list[BaseException] = []

    def open_and_migrate() -> None:
        try:
            start.wait(timeout=60)
        except threading.BrokenBarrierError as exc:
            errors.append(exc)
            return
        conn = sqlite3.connect(db, isolation_level=None, timeout=30)
        try:
            m.use_wal(conn)
            m.migrate(conn)
        except BaseException as exc:  # collected: asserted below
            errors.append(exc)
        finally:
            conn.close()

    for _ in range(5):
        for f in db.parent.glob(db.name + "*"):
            f.unlink()
        if prepare is not None:
            prepare(db)
        start.reset()
        threads = [threading.Thread(target=open_and_migrate) for _ in range(openers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        conn = sqlite3.connect(db)
        assert m.current_version(conn) == LATEST
        conn.close()


def test_many_openers_of_a_new_database_at_once_all_succeed(tmp_path: Path) -> None:
    # Three `corral run` started together on a new file: each reads "nothing
    # applied", one creates the schema, the others must not then fail on its
    # tables (found by CI: one of three runs exited with "already exists").
    _openers_at_once(tmp_path / "new.db", 6)


def test_many_openers_of_an_old_database_at_once_all_succeed(tmp_path: Path) -> None:
    """The same for an upgrade: a migration that makes a table anew (011)
    runs again without an error of its own in the openers that lost the
    race; each of them must see that it was done, not fail."""

    def at_version_10(db: Path) -> None:
        conn = sqlite3.connect(db, isolation_level=None)
        m.use_wal(conn)
        m.migrate(conn, 10)
        conn.close()

    _openers_at_once(tmp_path / "old.db", 4, at_version_10)


def test_009_turns_workflow_handler_names_into_a_step_kind(connect: Any) -> None:
    """A step recorded before 009 as handler "workflow:<name>" becomes a
    child-workflow step (``workflow`` set, no handler), and back on the way
    down; handler steps are left as they were."""
    conn = connect("kinds")
    m.migrate(conn, 8)
    conn.execute(
        "INSERT INTO workflow_executions (id, workflow, version, status, inputs, created_at) "
        "VALUES ('e', 'w', '1', 'succeeded', x'7b7d', 0)"
    )
    conn.executemany(
        "INSERT INTO step_executions (execution_id, step_id, position, handler, status) "
        "VALUES ('e', ?, ?, ?, 'succeeded')",
        [("a", 0, "core.echo"), ("b", 1, "workflow:child")],
    )
    m.migrate(conn, 9)
    rows = conn.execute(
        "SELECT step_id, handler, workflow FROM step_executions ORDER BY position"
    ).fetchall()
    assert rows == [("a", "core.echo", None), ("b", None, "child")]
    m.migrate(conn, 8)
    rows = conn.execute("SELECT step_id, handler FROM step_executions ORDER BY position").fetchall()
    assert rows == [("a", "core.echo"), ("b", "workflow:child")]


def test_011_keeps_every_step_row_and_the_status_rule(connect: Any) -> None:
    """011 makes the step table anew (its status check written as
    comparisons): every row and column comes through, both ways, a cascade
    from its execution still reaches it, and a status outside the list is
    still refused."""
    conn = connect("checks")
    m.migrate(conn, 10)
    conn.executemany(
        "INSERT INTO workflow_executions (id, workflow, version, status, inputs, created_at) "
        "VALUES (?, 'w', '1', 'succeeded', x'7b7d', 0)",
        [("e",), ("gone",)],
    )
    rows = [
        ("e", "a", 0, "core.echo", "succeeded", 1, b"1", None, 1.0, 2.0, b'["w"]', b'["l"]',
         "2", None, None),
        ("e", "b", -1, None, "failed", 3, None, b'{"type":"X"}', 1.5, 2.5, None, None, None,
         "other", "child"),
        ("gone", "a", 0, "core.echo", "running", 1, None, None, 1.0, None, None, None, None,
         None, None),
    ]
    columns = (
        "execution_id, step_id, position, handler, status, attempts, output, error, "
        "started_at, finished_at, warnings, logs, handler_version, reused_from, workflow"
    )
    conn.executemany(f"INSERT INTO step_executions ({columns}) VALUES ({', '.join('?' * 15)})", rows)

    def stored() -> list[tuple[Any, ...]]:
        return conn.execute(
            f"SELECT {columns} FROM step_executions ORDER BY execution_id, step_id"
        ).fetchall()

    for version in (11, 10, 11):
        m.migrate(conn, version)
        assert stored() == rows
        with pytest.raises(sqlite3.IntegrityError, match="CHECK"):
            conn.execute(
                "INSERT INTO step_executions (execution_id, step_id, position, status) "
                "VALUES ('e', 'c', 2, 'bogus')"
            )
    conn.execute("DELETE FROM workflow_executions WHERE id = 'gone'")
    assert stored() == rows[:2]


def test_012_keys_step_rows_by_seq_and_keeps_every_row(connect: Any) -> None:
    """012 makes both tables anew: every execution keeps its columns and
    gets a ``seq`` in the order it was written (not its id's order), every
    step row follows its own execution, both ways, and a cascade from an
    execution still reaches its step rows."""
    conn = connect("seqs")
    m.migrate(conn, 11)
    execs = [  # written in this order, ids not in it
        ("f3", "w", "1", "succeeded", b'{"a":1}', b"2", None, "p0", "s", "k1", 1.0, 3.0, "[]",
         None, '[["a","core.echo",null]]'),
        ("07", "w", "1", "failed", b"{}", None, b'{"type":"X"}', None, None, None, 2.0, 4.0,
         None, "f3", None),
        ("a9", "v", "2", "pending", b"{}", None, None, None, None, "k2", 3.0, None, None, None,
         '[["a","core.echo",null],["b",null,"child"]]'),
    ]
    exec_columns = (
        "id, workflow, version, status, inputs, result, error, parent_id, parent_step, "
        "idempotency_key, created_at, finished_at, handlers, retry_of, step_plan"
    )
    conn.executemany(
        f"INSERT INTO workflow_executions ({exec_columns}) VALUES ({', '.join('?' * 15)})", execs
    )
    steps = [
        ("07", "a", 0, "core.echo", "failed", 3, None, b'{"type":"X"}', 1.5, 2.5, None, None,
         None, "other", None),
        ("a9", "a", -1, "core.echo", "running", 1, None, None, 1.0, None, b'["w"]', b'["l"]',
         "2", None, None),
        ("f3", "a", 0, "core.echo", "succeeded", 1, b"1", None, 1.0, 2.0, None, None, None,
         None, None),
    ]
    step_columns = (
        "step_id, position, handler, status, attempts, output, error, started_at, "
        "finished_at, warnings, logs, handler_version, reused_from, workflow"
    )
    conn.executemany(
        f"INSERT INTO step_executions (execution_id, {step_columns}) "
        f"VALUES ({', '.join('?' * 15)})",
        steps,
    )
    by_id = "SELECT e.id, {} FROM step_executions s JOIN workflow_executions e ON {} ORDER BY 1, 2"
    s_columns = ", ".join(f"s.{c.strip()}" for c in step_columns.split(","))

    def stored(version: int) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        on = "e.id = s.execution_id" if version == 11 else "e.seq = s.execution_seq"
        return (
            conn.execute(f"SELECT {exec_columns} FROM workflow_executions ORDER BY rowid")
            .fetchall(),
            conn.execute(by_id.format(s_columns, on)).fetchall(),
        )

    assert stored(11) == (execs, steps)
    for version in (12, 11, 12):
        m.migrate(conn, version)
        assert stored(version) == (execs, steps)
    seqs = conn.execute("SELECT id FROM workflow_executions ORDER BY seq").fetchall()
    assert [r[0] for r in seqs] == ["f3", "07", "a9"]
    # new executions follow on; a step row needs its execution
    conn.execute(
        "INSERT INTO workflow_executions (id, workflow, version, status, inputs, created_at) "
        "VALUES ('00', 'w', '1', 'pending', x'7b7d', 5)"
    )
    assert conn.execute("SELECT max(seq), id FROM workflow_executions").fetchone() == (4, "00")
    with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"):
        conn.execute(
            "INSERT INTO step_executions (execution_seq, step_id, position, status) "
            "VALUES (99, 'a', 0, 'pending')"
        )
    conn.execute("DELETE FROM workflow_executions WHERE id = 'a9'")
    fresh = ("00", "w", "1", "pending", b"{}", *[None] * 5, 5.0, None, None, None, None)
    assert stored(12) == ([*execs[:2], fresh], steps[:1] + steps[2:])
