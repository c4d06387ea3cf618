"""The status writes of a PostgreSQL batch, as a handful of statements.

A batch of the group commit holds, under load, hundreds of status writes:
execution inserts, starts, step records, finishes. One statement each costs a
round trip each (0.1 to 0.3 ms on one machine), and the batch takes as long as
its round trips. Here a run of such writes becomes one statement per kind,
its rows passed as arrays (``unnest``), in the order their meaning needs
(inserts, then starts, then step records, then finishes: a later write of an
execution never precedes an earlier one of the same execution). ``RETURNING``
says which rows were written, so fencing still answers per write: a terminal
step record or a finish that finds another owner gets :class:`LeaseLost`.

Each write keeps its one-statement form (``Bulk.__call__``): the store falls
back to it, one write at a time in savepoints, when a bulk statement fails.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from corral.core.errors import LeaseLost
from corral.storage import sql
from corral.storage.group_commit import Op

__all__ = ["FINISH", "INSERT", "START", "STEP", "Bulk", "run_bulk"]

INSERT, START, STEP, FINISH = "insert", "start", "step", "finish"
_ORDER = (INSERT, START, STEP, FINISH)


class Bulk:
    """A status write that may join others of its kind in one statement.

    ``row()`` gives its values when the batch runs (an insert reads the start
    folded into it then); ``fn`` is the same write as a statement of its own.
    """

    __slots__ = ("fn", "key", "kind", "owner", "row", "terminal")

    def __init__(
        self,
        kind: str,
        row: Callable[[], tuple[Any, ...]],
        fn: Callable[[Any], Awaitable[Any]],
        *,
        key: Any = None,
        owner: str | None = None,
        terminal: bool = False,
    ) -> None:
        self.kind = kind
        self.row = row
        self.fn = fn
        self.key = key
        self.owner = owner
        self.terminal = terminal

    def __call__(self, conn: Any) -> Awaitable[Any]:
        return self.fn(conn)


def bulk_of(op: Op) -> Bulk | None:
    fn = op.fn
    return fn if isinstance(fn, Bulk) else None


def _columns(rows: Sequence[tuple[Any, ...]]) -> list[list[Any]]:
    return [list(col) for col in zip(*rows, strict=True)] if rows else []


_EXEC_TYPES = (
    "text[], text[], text[], text[], text[], int[], bytea[], bytea[], bytea[], text[], text[], "
    "text[], text[], float8[], int[], float8[], float8[], float8[], text[], text[]"
)
_INSERT_EXECUTIONS = (
    f"INSERT INTO workflow_executions ({sql.EXEC_COLUMNS}) SELECT * FROM unnest("
    + ", ".join(f"${i}::{t.strip()}" for i, t in enumerate(_EXEC_TYPES.split(","), start=1))
    + ")"
)
_INSERT_STEPS = (
    "INSERT INTO step_executions "
    "(execution_id, step_id, position, handler, status, attempts, workflow) "
    "SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::text[], $5::text[], $6::int[], "
    "$7::text[])"
)
_STARTS = (
    "UPDATE workflow_executions w SET status = 'running', owner = v.owner, started_at = v.at "
    "FROM unnest($1::text[], $2::text[], $3::float8[]) AS v(id, owner, at) "
    "WHERE w.id = v.id AND w.finished_at IS NULL AND (w.owner IS NULL OR w.owner = v.owner) "
    "RETURNING w.id"
)
_STEPS = (
    "UPDATE step_executions s SET status = v.status, attempts = v.attempts, "
    "handler = v.handler, output = v.output, error = v.error, started_at = v.started_at, "
    "finished_at = v.finished_at, warnings = v.warnings, logs = v.logs, "
    "handler_version = v.handler_version "
    "FROM unnest($1::text[], $2::int[], $3::text[], $4::bytea[], $5::bytea[], $6::float8[], "
    "$7::float8[], $8::bytea[], $9::bytea[], $10::text[], $11::text[], $12::text[], "
    "$13::text[]) "
    "AS v(status, attempts, handler, output, error, started_at, finished_at, warnings, logs, "
    "handler_version, execution_id, step_id, owner) "
    "WHERE s.execution_id = v.execution_id AND s.step_id = v.step_id AND (v.owner IS NULL "
    "OR EXISTS (SELECT 1 FROM workflow_executions w WHERE w.id = v.execution_id "
    "AND w.owner = v.owner)) RETURNING s.execution_id, s.step_id"
)
_FINISHES = (
    "UPDATE workflow_executions w SET status = v.status, result = v.result, error = v.error, "
    "finished_at = v.finished_at, lease_expires_at = NULL "
    "FROM unnest($1::text[], $2::bytea[], $3::bytea[], $4::float8[], $5::text[], $6::text[]) "
    "AS v(status, result, error, finished_at, id, owner) "
    "WHERE w.id = v.id AND (v.owner IS NULL OR w.owner = v.owner) RETURNING w.id"
)


async def run_bulk(conn: Any, ops: Sequence[Op], notify: str) -> None:
    """Run ``ops`` (every one a :class:`Bulk`) as one statement per kind; set
    each op's result, or :class:`LeaseLost` where fencing refused it. A
    database error propagates (the caller falls back to one write at a time)."""
    by_kind: dict[str, list[tuple[Op, Bulk]]] = {kind: [] for kind in _ORDER}
    for op in ops:
        b = bulk_of(op)
        assert b is not None
        by_kind[b.kind].append((op, b))
    for kind in _ORDER:
        group = by_kind[kind]
        if group:
            await _RUNNERS[kind](conn, group, notify)


async def _inserts(conn: Any, group: list[tuple[Op, Bulk]], notify: str) -> None:
    rows = [b.row() for _, b in group]
    await conn.execute(_INSERT_EXECUTIONS, *_columns([r[0] for r in rows]))
    steps = [step for r in rows for step in r[1]]
    if steps:
        await conn.execute(_INSERT_STEPS, *_columns(steps))
    if any(r[2] for r in rows):  # some are queued for workers: wake them (at commit)
        await conn.execute(notify)
    for op, b in group:
        op.result = (b.key, True)


async def _starts(conn: Any, group: list[tuple[Op, Bulk]], notify: str) -> None:
    done = {r[0] for r in await conn.fetch(_STARTS, *_columns([b.row() for _, b in group]))}
    for op, b in group:
        if b.key not in done:
            op.error = LeaseLost(f"execution {b.key} is owned by another engine or finished")


async def _steps(conn: Any, group: list[tuple[Op, Bulk]], notify: str) -> None:
    # One row per step: the last write of a step stands (an earlier one in the
    # same batch would have been overwritten by it anyway).
    last: dict[Any, tuple[Any, ...]] = {}
    for _, b in group:
        last[b.key] = b.row()
    rows = await conn.fetch(_STEPS, *_columns(list(last.values())))
    done = {(r[0], r[1]) for r in rows}
    for op, b in group:
        if b.key not in done and b.owner is not None and b.terminal:
            op.error = LeaseLost(f"execution {b.key[0]} is no longer owned by {b.owner}")


async def _finishes(conn: Any, group: list[tuple[Op, Bulk]], notify: str) -> None:
    last: dict[Any, tuple[Any, ...]] = {}
    for _, b in group:
        last[b.key] = b.row()
    done = {r[0] for r in await conn.fetch(_FINISHES, *_columns(list(last.values())))}
    for op, b in group:
        if b.key not in done and b.owner is not None:
            op.error = LeaseLost(f"execution {b.key} is no longer owned by {b.owner}")


_RUNNERS: dict[str, Callable[[Any, list[tuple[Op, Bulk]], str], Awaitable[None]]] = {
    INSERT: _inserts,
    START: _starts,
    STEP: _steps,
    FINISH: _finishes,
}
