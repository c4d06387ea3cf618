"""µs per SQL operation of a durable single-step workflow, on corral's schema.

``python -m perf.sqlcost``: what each statement corral's SQLite store runs
for one single-step workflow costs when 2,000 of them are written in one
transaction (the writer's group commit), beside the floor of baseline (c)
(one row per finished step in a table with a primary key only), and what a
schema with no step row before a step runs, or fewer indexes, would cost.
Statements only: no Python of the engine or the writer around them. The
median of five fresh databases (corral's migrations, WAL,
``synchronous=NORMAL``). A tool for deciding levers (issue 20), not a target.
"""

from __future__ import annotations

import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import trio

import corral

N = 2000
REPEATS = 5
_COLUMNS = (
    "id, workflow, version, definition, status, priority, inputs, result, error, parent_id, "
    "parent_step, idempotency_key, owner, lease_expires_at, cancel_requested, created_at, "
    "started_at, finished_at, handlers, retry_of"
)
_STEP_UPDATE = (
    "UPDATE step_executions SET status = ?, attempts = ?, handler = ?, output = ?, error = ?, "
    "started_at = ?, finished_at = ?, warnings = ?, logs = ?, handler_version = ? "
    "WHERE execution_id = ? AND step_id = ?"
)


def _fresh() -> sqlite3.Connection:
    folder = Path(tempfile.mkdtemp())

    async def migrate() -> None:
        async with corral.open_engine(f"sqlite:///{folder / 'c.db'}", entry_points=False):
            pass

    trio.run(migrate)
    conn = sqlite3.connect(folder / "c.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


def _timed(conn: sqlite3.Connection, write: Callable[[], object]) -> float:
    conn.execute("BEGIN")
    start = time.perf_counter()
    write()
    conn.execute("COMMIT")
    return (time.perf_counter() - start) / N * 1e6


def _statements(conn: sqlite3.Connection, tag: str, step_rows: bool) -> dict[str, float]:
    now = time.time()
    ids = [f"{tag}{i:020d}" for i in range(N)]
    out: dict[str, float] = {}
    placeholders = ", ".join("?" * 20)
    out["insert the execution (started)"] = _timed(
        conn,
        lambda: conn.executemany(
            f"INSERT INTO workflow_executions ({_COLUMNS}) VALUES ({placeholders})",
            [
                (
                    i,
                    "w",
                    "1",
                    None,
                    "running",
                    0,
                    b"{}",
                    None,
                    None,
                    None,
                    None,
                    None,
                    "me",
                    now + 30,
                    0,
                    now,
                    now,
                    None,
                    None,
                    None,
                )
                for i in ids
            ],
        ),
    )
    if step_rows:
        out["insert its step row (pending)"] = _timed(
            conn,
            lambda: conn.executemany(
                "INSERT INTO step_executions (execution_id, step_id, position, handler, status, "
                "attempts, workflow) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(i, "s", 0, "h", "pending", 0, None) for i in ids],
            ),
        )
        for status, output in (("running", None), ("succeeded", b"2")):
            out[f"update the step ({status})"] = _timed(
                conn,
                lambda status=status, output=output: conn.executemany(
                    _STEP_UPDATE,
                    [
                        (status, 1, "h", output, None, now, now, None, None, "1", i, "s")
                        for i in ids
                    ],
                ),
            )
    else:
        out["insert the step row when it finished"] = _timed(
            conn,
            lambda: conn.executemany(
                "INSERT INTO step_executions (execution_id, step_id, position, handler, status, "
                "attempts, output, started_at, finished_at, handler_version) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(i, "s", 0, "h", "succeeded", 1, b"2", now, now, "1") for i in ids],
            ),
        )
    out["finish the execution"] = _timed(
        conn,
        lambda: conn.executemany(
            "UPDATE workflow_executions SET status = ?, result = ?, error = ?, finished_at = ?, "
            "lease_expires_at = NULL WHERE id = ? AND owner = ?",
            [("succeeded", b"2", None, now, i, "me") for i in ids],
        ),
    )
    return out


def _floor(conn: sqlite3.Connection) -> float:
    conn.execute(
        "CREATE TABLE step_results (workflow INTEGER NOT NULL, step TEXT NOT NULL, "
        "output BLOB NOT NULL, finished_at REAL NOT NULL, PRIMARY KEY (workflow, step))"
    )
    return _timed(
        conn,
        lambda: conn.executemany(
            "INSERT INTO step_results VALUES (?, ?, ?, ?)",
            [(i, "s", b"2", time.time()) for i in range(N)],
        ),
    )


def measure() -> dict[str, dict[str, float]]:
    """Median µs per workflow of each statement, per schema variant."""
    runs: dict[str, dict[str, list[float]]] = {}
    for rep in range(REPEATS):
        variants = {
            "today": _statements(_fresh(), f"a{rep}", step_rows=True),
            "no step row before the step ran": _statements(_fresh(), f"b{rep}", step_rows=False),
        }
        lean = _fresh()
        indexes = lean.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
            "AND tbl_name = 'workflow_executions' AND name != 'workflow_executions_key'"
        ).fetchall()
        for (name,) in indexes:
            lean.execute(f"DROP INDEX {name}")
        variants["that, and executions with the key index only"] = _statements(
            lean, f"c{rep}", step_rows=False
        )
        variants["baseline (c)"] = {"one row per finished step": _floor(_fresh())}
        for variant, figures in variants.items():
            for name, value in figures.items():
                runs.setdefault(variant, {}).setdefault(name, []).append(value)
    return {
        variant: {name: statistics.median(values) for name, values in figures.items()}
        for variant, figures in runs.items()
    }


def main() -> None:
    for variant, figures in measure().items():
        print(f"{variant}: {sum(figures.values()):.1f} µs per workflow")
        for name, value in figures.items():
            print(f"  {value:6.1f} µs  {name}")


if __name__ == "__main__":
    main()
