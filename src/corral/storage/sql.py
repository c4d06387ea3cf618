"""The rows of corral's tables, and the SQL every backend shares.

Records are stored the same way on every backend: JSON values (inputs,
outputs, errors) as msgspec-encoded bytes, times as seconds since the epoch
(floats), the version as JSON text. Statements here use ``?`` placeholders
(SQLite's); :func:`numbered` gives PostgreSQL's ``$1, $2 …``. Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import msgspec

from corral.core.model import ErrorInfo, ExecutionRecord, StepRecord
from corral.core.status import CANCELLED, PENDING, RUNNING, UNFINISHED, sql_in
from corral.storage import rules

_enc = msgspec.json.Encoder()
_dec = msgspec.json.Decoder()
_err_dec = msgspec.json.Decoder(ErrorInfo)
_plan_dec = msgspec.json.Decoder(list[tuple[str, str | None, str | None]])
_warnings_dec = msgspec.json.Decoder(list[str])
_handlers_dec = _warnings_dec
UNFINISHED_LIST = sql_in(UNFINISHED)  # the SQL list of unfinished statuses

EXEC_COLUMNS = (
    "id, workflow, version, definition, status, priority, inputs, result, error, parent_id, "
    "parent_step, idempotency_key, owner, lease_expires_at, cancel_requested, created_at, "
    "started_at, finished_at, handlers, retry_of"
)
STEP_COLUMNS = (
    "step_id, handler, status, attempts, output, error, started_at, finished_at, warnings, logs, "
    "handler_version, reused_from, workflow"
)


def blob(value: Any) -> bytes:
    return _enc.encode(value)


def opt_blob(value: Any) -> bytes | None:
    return None if value is None else _enc.encode(value)


def version_of(text: str) -> int | str:
    value = msgspec.json.decode(text)
    return value if isinstance(value, (int, str)) else str(value)


def execution(row: Sequence[Any], steps: list[StepRecord] | None = None) -> ExecutionRecord:
    return ExecutionRecord(
        id=row[0],
        workflow=row[1],
        version=version_of(row[2]),
        definition=row[3],
        status=row[4],
        priority=row[5],
        inputs=_dec.decode(row[6]),
        result=None if row[7] is None else _dec.decode(row[7]),
        error=None if row[8] is None else _err_dec.decode(row[8]),
        parent_id=row[9],
        parent_step=row[10],
        key=row[11],
        owner=row[12],
        lease_expires_at=row[13],
        cancel_requested=bool(row[14]),
        created_at=row[15],
        started_at=row[16],
        finished_at=row[17],
        steps=steps or [],
        handlers=[] if row[18] is None else _handlers_dec.decode(row[18]),
        retry_of=row[19],
    )


def step(row: Sequence[Any]) -> StepRecord:
    return StepRecord(
        step_id=row[0],
        handler=row[1],
        status=row[2],
        attempts=row[3],
        output=None if row[4] is None else _dec.decode(row[4]),
        error=None if row[5] is None else _err_dec.decode(row[5]),
        started_at=row[6],
        finished_at=row[7],
        warnings=[] if row[8] is None else _warnings_dec.decode(row[8]),
        logs=[] if row[9] is None else _warnings_dec.decode(row[9]),
        handler_version=row[10],
        reused_from=row[11],
        workflow=row[12],
    )


def execution_row(r: ExecutionRecord) -> tuple[Any, ...]:
    """An execution's values in the order of :data:`EXEC_COLUMNS`."""
    return (
        r.id,
        r.workflow,
        msgspec.json.encode(r.version).decode(),
        r.definition,
        r.status,
        r.priority,
        blob(r.inputs),
        opt_blob(r.result),
        opt_blob(r.error),
        r.parent_id,
        r.parent_step,
        r.key,
        r.owner,
        r.lease_expires_at,
        int(r.cancel_requested),
        r.created_at,
        r.started_at,
        r.finished_at,
        msgspec.json.encode(r.handlers).decode() if r.handlers else None,
        r.retry_of,
    )


def step_values(execution_id: str, s: StepRecord) -> tuple[Any, ...]:
    """The values of :data:`STEP_UPDATE`."""
    return (
        s.status,
        s.attempts,
        s.handler,
        opt_blob(s.output),
        opt_blob(s.error),
        s.started_at,
        s.finished_at,
        blob(s.warnings) if s.warnings else None,
        blob(s.logs) if s.logs else None,
        s.handler_version,
        execution_id,
        s.step_id,
    )


STEP_UPDATE = (
    "UPDATE step_executions SET status = ?, attempts = ?, handler = ?, output = ?, "
    "error = ?, started_at = ?, finished_at = ?, warnings = ?, logs = ?, handler_version = ? "
    "WHERE execution_id = ? AND step_id = ?"
)
#: Appended to STEP_UPDATE: only while the owner (? = id, owner) owns the execution.
STEP_FENCE = " AND EXISTS (SELECT 1 FROM workflow_executions WHERE id = ? AND owner = ?)"


#: The oldest cache entries beyond ? entries or ? bytes of values (the newest are kept).
PRUNE_CACHE = (
    "DELETE FROM cache_entries WHERE key IN (SELECT key FROM (SELECT key, "
    "ROW_NUMBER() OVER w AS n, SUM(size) OVER w AS total FROM cache_entries "
    "WINDOW w AS (ORDER BY created_at DESC, key)) AS ranked WHERE n > ? OR total > ?)"
)


def listing(
    status: str | None,
    workflow: str | None,
    before: tuple[float, str] | None = None,
    top_level: bool = False,
    since: float | None = None,
    retry_of: str | None = None,
) -> tuple[str, list[Any]]:
    """The ``list_executions`` query (``?`` placeholders, then the limit) and
    its arguments: newest first, ties of ``created_at`` broken by id, so that
    ``before`` (the last row's ``(created_at, id)``) continues a listing
    exactly where a page ended (keyset pagination: nothing skipped or repeated
    while executions are added)."""
    where: list[str] = []
    args: list[Any] = []
    if status is not None:
        where.append("status = ?")
        args.append(status)
    if workflow is not None:
        where.append("workflow = ?")
        args.append(workflow)
    if top_level:
        where.append("parent_id IS NULL")
    if since is not None:
        where.append("created_at >= ?")
        args.append(since)
    if retry_of is not None:
        where.append("retry_of = ?")
        args.append(retry_of)
    if before is not None:
        where.append("(created_at < ? OR (created_at = ? AND id < ?))")
        args.extend((before[0], before[0], before[1]))
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    query = (
        f"SELECT {EXEC_COLUMNS} FROM workflow_executions {clause} "
        "ORDER BY created_at DESC, id DESC LIMIT ?"
    )
    return query, args


#: Registered definitions of one name (``?``, twice) or of all (NULL), by
#: name, each name's newest first.
DEFINITIONS = (
    "SELECT name, version, digest, spec, created_at FROM workflow_definitions "
    "WHERE registered = 1 AND (CAST(? AS TEXT) IS NULL OR name = ?) "
    "ORDER BY name, created_at DESC"
)


#: What a claim sets: the owner and its lease, and (the third to fifth
#: parameters: the start time, or NULL) a queued execution marked running at
#: once, for a claimer that starts it at once (no start write of its own).
CLAIM_SET = (
    "owner = ?, lease_expires_at = ?, "
    f"status = CASE WHEN status = '{PENDING}' AND {{t}} IS NOT NULL THEN '{RUNNING}' "
    "ELSE status END, "
    f"started_at = CASE WHEN status = '{PENDING}' AND {{t}} IS NOT NULL THEN {{t}} "
    "ELSE started_at END"
)


#: Take over one orphan: ? = owner, until, id, now, owner.
CLAIM_ONE = (
    "UPDATE workflow_executions SET owner = ?, lease_expires_at = ? WHERE id = ? "
    f"AND {rules.CLAIMABLE_SQL} AND owner IS NOT NULL RETURNING id"
)


#: Ids that start with a prefix: ? = its length, the prefix, a limit.
FIND_IDS = "SELECT id FROM workflow_executions WHERE substr(id, 1, ?) = ? ORDER BY id LIMIT ?"


def handler_set(handlers: list[str] | None) -> str | None:
    """A claim's ``handlers`` as the JSON list its SQL compares with (None: any)."""
    return None if handlers is None else blob(sorted(handlers)).decode()


#: The unfinished executions ? holds whose cancellation was requested.
CANCEL_REQUESTS = (
    "SELECT id FROM workflow_executions WHERE cancel_requested = 1 AND finished_at IS NULL "
    "AND owner = ?"
)
#: Give up what ? holds: claimable by any engine at once.
RELEASE = (
    "UPDATE workflow_executions SET owner = NULL, lease_expires_at = NULL "
    "WHERE owner = ? AND finished_at IS NULL RETURNING id"
)

_MARK = re.compile(r"\?")


def numbered(sql: str) -> str:
    """``?`` placeholders as ``$1, $2 …`` (PostgreSQL). No statement of
    corral's has a ``?`` inside a string literal."""
    count = iter(range(1, sql.count("?") + 1))
    return _MARK.sub(lambda _: f"${next(count)}", sql)


#: Step rows a retry reused: :data:`STEP_UPDATE`'s values, then ``reused_from``.
STEP_REUSED = STEP_UPDATE.replace(" WHERE execution_id", ", reused_from = ? WHERE execution_id")

_UPSERT_SET = (
    "status = excluded.status, attempts = excluded.attempts, handler = excluded.handler, "
    "output = excluded.output, error = excluded.error, started_at = excluded.started_at, "
    "finished_at = excluded.finished_at, warnings = excluded.warnings, logs = excluded.logs, "
    "handler_version = excluded.handler_version"
)


def step_upsert(*, fenced: bool = False, reused: bool = False) -> str:
    """SQLite: a step's record written where its row may not exist yet
    (executions with a ``step_plan`` get no rows at submission). Values:
    :func:`step_row`, then the owner (with ``fenced``: written only while
    that owner owns the execution). The row is keyed by the execution's
    ``seq``, looked up by its id in the same statement: no row is written
    for an execution that is not there (or, fenced, not owned). Its position
    is the plan's (``-1``: reads order these rows by the plan)."""
    columns = (
        "status, attempts, handler, output, error, started_at, finished_at, warnings, logs, "
        "handler_version, step_id, workflow, position"
    )
    marks = "?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, -1"
    update = _UPSERT_SET
    if reused:
        columns += ", reused_from"
        marks += ", ?"
        update += ", reused_from = excluded.reused_from"
    owned = " AND e.owner = ?" if fenced else ""
    # (WHERE: an INSERT ... SELECT with an upsert needs one, SQLite's parser says)
    return (
        f"INSERT INTO step_executions ({columns}, execution_seq) SELECT {marks}, e.seq "
        f"FROM workflow_executions e WHERE e.id = ?{owned} "
        f"ON CONFLICT (execution_seq, step_id) DO UPDATE SET {update}"
    )


def step_row(execution_id: str, s: StepRecord, *, reused: bool = False) -> tuple[Any, ...]:
    """The values of :func:`step_upsert` (``reused``: with ``reused_from``)."""
    values = (*step_values(execution_id, s)[:-2], s.step_id, s.workflow)
    return (*values, s.reused_from, execution_id) if reused else (*values, execution_id)


STEP_UPSERT = step_upsert()
STEP_UPSERT_FENCED = step_upsert(fenced=True)
STEP_UPSERT_REUSED = step_upsert(reused=True)


def step_plan(r: ExecutionRecord) -> str:
    """SQLite's ``step_plan`` of a fresh execution: its steps in plan order."""
    return _enc.encode([[s.step_id, s.handler, s.workflow] for s in r.steps]).decode()


def planned_steps(
    plan: str, rows: list[StepRecord], status: str, finished_at: float | None
) -> list[StepRecord]:
    """An execution's steps: its rows, and for each step of ``plan`` without
    one a fresh record (``pending``; ``cancelled`` when the execution was
    cancelled), in plan order."""
    have = {s.step_id: s for s in rows}
    cancelled = status == CANCELLED
    out = []
    for step_id, handler, workflow in _plan_dec.decode(plan):
        found = have.get(step_id)
        if found is None:
            found = StepRecord(step_id=step_id, handler=handler, workflow=workflow)
            if cancelled:
                found.status = CANCELLED
                found.finished_at = finished_at
        out.append(found)
    return out


def reused_rows(r: ExecutionRecord) -> list[tuple[Any, ...]]:
    """The values of :data:`STEP_REUSED` for the steps of ``r`` a retry
    took from another execution (inserted as ``pending`` first)."""
    return [
        (*step_values(r.id, s)[:-2], s.reused_from, r.id, s.step_id)
        for s in r.steps
        if s.reused_from is not None
    ]


PAUSE = (
    "INSERT INTO paused_workflows (workflow, paused_at) VALUES (?, ?) "
    "ON CONFLICT (workflow) DO NOTHING"
)
UNPAUSE = "DELETE FROM paused_workflows WHERE workflow = ?"
PAUSED = "SELECT workflow, paused_at FROM paused_workflows ORDER BY workflow"
