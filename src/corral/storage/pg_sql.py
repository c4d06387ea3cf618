"""The PostgreSQL dialect of the store's operations: the statements
:class:`~corral.storage.postgres.PostgresStore` runs and the functions that
run inside its transactions (on the asyncio side, on one pooled
connection); the meaning is :mod:`corral.storage.rules`'."""

from __future__ import annotations

import time
from typing import Any

from corral.core.errors import ExecutionNotFound
from corral.core.model import ErrorInfo, ExecutionRecord
from corral.core.status import UNFINISHED
from corral.storage import migrate as migrations
from corral.storage import rules, sql
from corral.storage.base import DefinitionRecord
from corral.storage.group_commit import Op
from corral.storage.pg_bulk import bulk_of, run_bulk

q = sql.numbered  # statements are written with ?, PostgreSQL numbers them

#: A number of corral's own for the advisory lock that serialises migrations.
MIGRATE_LOCK = 0x636F7272616C  # "corral"
UNFINISHED_LIST = list(UNFINISHED)

INSERT_EXECUTION = (
    f"INSERT INTO workflow_executions ({sql.EXEC_COLUMNS}) VALUES "
    "($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, "
    "$20) ON CONFLICT (idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING"
)

INSERT_STEPS = (
    "INSERT INTO step_executions "
    "(execution_id, step_id, position, handler, status, attempts, workflow) "
    "SELECT $1, * FROM unnest($2::text[], $3::int[], $4::text[], $5::text[], $6::int[], "
    "$7::text[])"
)

MARK_STARTED = (
    "UPDATE workflow_executions SET status = 'running', owner = $1, started_at = $2 "
    "WHERE id = $3 AND finished_at IS NULL AND (owner IS NULL OR owner = $1)"
)

MARK_STARTED_CLAIM = (
    "UPDATE workflow_executions SET status = 'running', owner = $1, started_at = $2 "
    "WHERE id = $3 AND finished_at IS NULL"
)

STEP_UPDATE = q(sql.STEP_UPDATE)

STEP_REUSED = q(sql.STEP_REUSED)

STEP_FENCED = q(sql.STEP_UPDATE + sql.STEP_FENCE)

MARK_FINISHED = (
    "UPDATE workflow_executions SET status = $1, result = $2, error = $3, finished_at = $4, "
    "lease_expires_at = NULL WHERE id = $5"
)

MARK_FINISHED_FENCED = MARK_FINISHED + " AND owner = $6"

RENEW = q(
    "UPDATE workflow_executions SET lease_expires_at = ? WHERE owner = ? "
    f"AND {rules.UNFINISHED_SQL} RETURNING id, cancel_requested = 1"
)

LOST = q(f"SELECT id FROM workflow_executions WHERE id = ANY(?) AND {rules.NOT_OWNED_SQL}")

CLAIM = q(
    f"UPDATE workflow_executions SET {sql.CLAIM_SET.format(t='?::float8')} WHERE id IN "
    f"(SELECT id FROM workflow_executions WHERE {rules.CLAIMABLE_SQL} "
    "AND (?::int = 1 OR owner IS NOT NULL) "
    "AND (?::jsonb IS NULL OR handlers IS NULL OR handlers::jsonb <@ ?::jsonb) "
    f"ORDER BY {rules.CLAIM_ORDER_SQL} LIMIT ? FOR UPDATE SKIP LOCKED) RETURNING id"
)

CANCEL_REQUESTS = q(sql.CANCEL_REQUESTS)

DEFINITIONS = q(sql.DEFINITIONS)

CLAIM_ONE = q(sql.CLAIM_ONE)

FIND_IDS = q(sql.FIND_IDS)

RELEASE = q(sql.RELEASE)

PAUSE = q(sql.PAUSE)

UNPAUSE = q(sql.UNPAUSE)

PAUSED = q(sql.PAUSED)

REQUEST_CANCELS = (
    "UPDATE workflow_executions SET cancel_requested = 1 WHERE id = ANY($1::text[]) "
    f"AND {rules.UNFINISHED_SQL} AND lease_expires_at >= $2 RETURNING id"
)

ORPHANS_AMONG = (
    f"SELECT id FROM workflow_executions WHERE id = ANY($1::text[]) AND {rules.UNFINISHED_SQL} "
    "AND (lease_expires_at IS NULL OR lease_expires_at < $2) FOR UPDATE"
)

#: The channel workers LISTEN on: work was queued, released, or a cancel asked for.
CHANNEL = "corral"

NOTIFY = f"NOTIFY {CHANNEL}"


async def definition(conn: Any, digest: str) -> DefinitionRecord:
    row = await conn.fetchrow(
        "SELECT name, version, digest, spec, created_at FROM workflow_definitions "
        "WHERE digest = $1",
        digest,
    )
    if row is None:
        raise KeyError(digest)
    return DefinitionRecord(row[0], row[1], row[2], bytes(row[3]), row[4])


async def get_execution(conn: Any, execution_id: str, *, lock: bool = False) -> ExecutionRecord:
    row = await conn.fetchrow(
        f"SELECT {sql.EXEC_COLUMNS} FROM workflow_executions WHERE id = $1"
        + (" FOR UPDATE" if lock else ""),
        execution_id,
    )
    if row is None:
        raise ExecutionNotFound(execution_id)
    steps = [
        sql.step(s)
        for s in await conn.fetch(
            f"SELECT {sql.STEP_COLUMNS} FROM step_executions WHERE execution_id = $1 "
            "ORDER BY position",
            execution_id,
        )
    ]
    return sql.execution(row, steps)


async def cancel(
    conn: Any, ids: list[str], error: bytes, now: float, owner: str | None
) -> list[str]:
    """Cancel the unfinished executions among ``ids`` (those ``owner`` holds,
    when given), their unfinished steps and their descendants, in the
    caller's transaction (what "cancelled" means: storage/base.py)."""
    rows = await conn.fetch(
        "UPDATE workflow_executions SET status = 'cancelled', error = $1, finished_at = $2, "
        "lease_expires_at = NULL, cancel_requested = 1 WHERE id = ANY($3) "
        "AND finished_at IS NULL AND ($4::text IS NULL OR owner = $4) RETURNING id",
        error,
        now,
        ids,
        owner,
    )
    changed = [r[0] for r in rows]
    if changed:
        await conn.execute(CANCEL_STEPS, now, changed, UNFINISHED_LIST)
        await cancel_descendants(conn, changed, now)
    return changed


CANCEL_STEPS = (
    "UPDATE step_executions SET status = 'cancelled', finished_at = $1 "
    "WHERE execution_id = ANY($2) AND status = ANY($3)"
)


async def cancel_descendants(conn: Any, parents: list[str], now: float) -> int:
    error = sql.blob(ErrorInfo("WorkflowCancelled", "its parent was cancelled"))
    rows = await conn.fetch(
        "WITH RECURSIVE tree(id) AS (SELECT id FROM workflow_executions "
        "WHERE parent_id = ANY($1) UNION SELECT e.id FROM workflow_executions e "
        "JOIN tree ON e.parent_id = tree.id) "
        "UPDATE workflow_executions w SET status = 'cancelled', error = $2, finished_at = $3, "
        "lease_expires_at = NULL FROM tree WHERE w.id = tree.id AND w.finished_at IS NULL "
        "RETURNING w.id",
        parents,
        error,
        now,
    )
    ids = [r[0] for r in rows]
    if ids:
        await conn.execute(CANCEL_STEPS, now, ids, UNFINISHED_LIST)
    return len(ids)


async def apply(conn: Any, batch: list[Op], *, guard: bool) -> bool:
    """Run a batch's ops in order in the open transaction. A failing op gets
    its error and the others go on, as long as the transaction is intact: a
    database error aborts a PostgreSQL transaction, and a compound op may
    have written before it failed, so either returns False unguarded (the
    caller starts over, guarded: a savepoint per op). An op alone needs
    neither: its failure rolls the whole transaction back."""
    alone = len(batch) == 1
    if not guard and not alone:
        return await apply_fast(conn, batch)
    for op in batch:
        guarded = guard and not alone
        if guarded:
            await conn.execute("SAVEPOINT op")
        try:
            op.result = await op.fn(conn)
            if guarded:
                await conn.execute("RELEASE SAVEPOINT op")
        except Exception as exc:
            if guarded:
                await conn.execute("ROLLBACK TO SAVEPOINT op")
                await conn.execute("RELEASE SAVEPOINT op")
            op.error = exc
    return True


async def apply_fast(conn: Any, batch: list[Op]) -> bool:
    """The batch in order, each run of two or more status writes as a few
    statements (storage/pg_bulk.py). False as soon as something failed in a
    way that aborted the transaction, or may have written before it failed:
    the caller starts over, one op at a time in savepoints."""
    i = 0
    while i < len(batch):
        j = i
        while j < len(batch) and bulk_of(batch[j]) is not None:
            j += 1
        if j - i >= 2:
            try:
                await run_bulk(conn, batch[i:j], NOTIFY)
            except Exception:
                return False
            i = j
            continue
        op = batch[i]
        try:
            op.result = await op.fn(conn)
        except Exception as exc:
            import asyncpg

            if isinstance(exc, asyncpg.PostgresError) or not op.atomic:
                return False
            op.error = exc
        i += 1
    return True


BOOTSTRAP = (
    "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
    "name TEXT NOT NULL, checksum TEXT NOT NULL, applied_at DOUBLE PRECISION NOT NULL)"
)


async def read_version(conn: Any) -> int:
    exists = await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")
    if not exists:
        return 0
    return int(await conn.fetchval("SELECT coalesce(max(version), 0) FROM schema_migrations"))


async def migrate(conn: Any, to: int | None) -> list[str]:
    """Asyncio side: bring the schema to ``to`` in one transaction, holding an
    advisory lock (a second process waits, then finds nothing to do)."""
    known = migrations.migrations("postgres")
    done: list[str] = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATE_LOCK)
        await conn.execute(BOOTSTRAP)
        applied = {
            int(r[0]): (str(r[1]), str(r[2]))
            for r in await conn.fetch("SELECT version, name, checksum FROM schema_migrations")
        }
        now = time.time()
        for mig, up in migrations.plan(known, applied, to):
            if up:
                await conn.execute(mig.up)
                await conn.execute(
                    "INSERT INTO schema_migrations VALUES ($1, $2, $3, $4)",
                    mig.version,
                    mig.name,
                    mig.checksum,
                    now,
                )
                done.append(f"applied {mig.label}")
            else:
                await conn.execute(mig.down)
                await conn.execute("DELETE FROM schema_migrations WHERE version = $1", mig.version)
                done.append(f"rolled back {mig.label}")
    return done
