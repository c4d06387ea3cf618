"""µs per SQL operation of a durable single-step workflow, on corral's schema.

``python -m perf.sqlcost``: what each statement corral's SQLite store runs
for one single-step workflow costs when 2,000 of them are written in one
transaction (the writer's group commit), beside the floor of baseline (c)
(one row per finished step in a table with a primary key only), and what
fewer indexes would save.
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
from corral.core.model import StepRecord
from corral.engine.engine import _ID_MASK, _ID_MULTIPLIER
from corral.storage import sql

N = 2000
REPEATS = 5
_COLUMNS = (
    "id, workflow, version, definition, status, priority, inputs, result, error, parent_id, "
    "parent_step, idempotency_key, owner, lease_expires_at, cancel_requested, created_at, "
    "started_at, finished_at, handlers, retry_of"
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


def _statements(conn: sqlite3.Connection, tag: str) -> dict[str, float]:
    """What the store runs for N single-step workflows, statement by
    statement: ids shaped as the engine makes them (scrambled), the step
    row written by its first record (running) and its last (succeeded)."""
    now = time.time()
    ids = [f"{(i * _ID_MULTIPLIER) & _ID_MASK:012x}{tag}" for i in range(1, N + 1)]
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
    for status, output in (("running", None), ("succeeded", 2)):
        step = StepRecord(
            step_id="s", handler="h", status=status, attempts=1, output=output, started_at=now
        )
        out[f"write the step row ({status})"] = _timed(
            conn,
            lambda step=step: conn.executemany(
                sql.STEP_UPSERT_FENCED, [(*sql.step_row(i, step), "me") for i in ids]
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
        variants = {"corral": _statements(_fresh(), f"a{rep}")}
        lean = _fresh()
        indexes = lean.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
            "AND tbl_name = 'workflow_executions' AND name != 'workflow_executions_key'"
        ).fetchall()
        for (name,) in indexes:
            lean.execute(f"DROP INDEX {name}")
        variants["corral, executions with the key index only"] = _statements(lean, f"c{rep}")
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
