"""The SQLite store: embedded, no server, the default.

One connection, used from one worker thread at a time; every unit of work is
one thread hop. With the engine running, a writer task groups the operations
of all running workflows into shared transactions (group commit): whatever
arrives while one batch is being committed goes into the next. A step's
terminal record is committed before ``record_step`` returns, so its
dependents start only once its output is durable (durability ``step``);
``running`` records ride along with the next batch without being waited for.
Durability ``none`` writes no step records at all.

WAL journal, ``synchronous=NORMAL`` (a commit survives a process crash; a
power loss may lose the last commits), a busy timeout so that several
processes can share one file. The writer is shielded (only ``close`` stops
it); an operation run without it that is cancelled mid-statement is stopped by
``conn.interrupt()`` within milliseconds.

One class of about 800 lines, as :mod:`.postgres`: every operation of the
Store protocol, each a small function run in one transaction on the
writer's thread; the rows and their meaning it shares with PostgreSQL are
:mod:`.sql` and :mod:`.rules`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import msgspec
import outcome
import trio
import trio.lowlevel

from corral.core.errors import ExecutionNotFound, LeaseLost, StoreError
from corral.core.model import (
    TERMINAL_STEP,
    ErrorInfo,
    ExecutionRecord,
    ExecutionStatus,
    StepRecord,
)
from corral.core.status import PENDING
from corral.storage import migrate as migrations
from corral.storage import rules, sql
from corral.storage.base import CacheEntry, DefinitionRecord
from corral.storage.batched import BatchedStore, WriteFn
from corral.storage.group_commit import Op, wake

__all__ = ["SQLiteStore"]

log = logging.getLogger("corral.store")

T = TypeVar("T")

#: Executions per statement of a bulk operation (SQLite's default limit on
#: bound parameters is 32,766).
_BULK = 1000
#: How often a waiting engine looks whether another process changed the file.
SIGNAL_POLL = 0.05


#: How long the check for damaged pages may take when a database opens for
#: writing (a larger file is checked as far as this allows).
QUICK_CHECK_SECONDS = 0.5


def _quick_check(conn: sqlite3.Connection, path: Path) -> None:
    """``PRAGMA quick_check``, bounded in time: a database with damaged pages
    is reported instead of written into (writing would spread the damage)."""
    deadline = time.monotonic() + QUICK_CHECK_SECONDS
    conn.set_progress_handler(lambda: time.monotonic() > deadline, 10_000)
    try:
        rows = conn.execute("PRAGMA quick_check(3)").fetchall()
    except sqlite3.OperationalError as exc:
        if "interrupted" in str(exc):
            return  # checked as far as the time allowed
        raise
    finally:
        conn.set_progress_handler(None, 0)
    problems = [str(row[0]) for row in rows if row[0] != "ok"]
    if problems:
        raise StoreError(
            f"{path} is damaged ({'; '.join(problems)}); nothing was written to it. "
            "Restore a backup, or move the file away and start a new database "
            "(see docs/troubleshooting.md)"
        )


def _store_error(exc: BaseException, path: str) -> BaseException:
    if isinstance(exc, (StoreError, ExecutionNotFound)):
        return exc
    if isinstance(exc, sqlite3.DatabaseError):
        text = str(exc)
        if "file is not a database" in text or "malformed" in text:
            return StoreError(f"{path} is not a corral database, or it is corrupt ({text})")
        if "locked" in text or "busy" in text:
            return StoreError(
                f"{path} is locked by another process for too long ({text}); "
                "see docs/troubleshooting.md"
            )
        if "interrupted" in text:
            return StoreError(f"a store operation on {path} was interrupted (cancelled)")
        return StoreError(f"SQLite error on {path}: {text}")
    return exc


def _apply(conn: sqlite3.Connection, batch: list[Op], path: str, *, guard: bool) -> bool:
    """Run a batch's ops in order inside the open transaction. A failing op gets
    its error and the others go on: SQLite undoes a failed statement, so an
    atomic op (one write statement), or any op that changed no row before it
    failed, leaves nothing behind. With ``guard``, every other op runs in a
    savepoint; without, False is returned as soon as one of them fails after
    changing rows (the caller starts over, guarded). An op alone needs
    neither: its failure rolls the whole transaction back."""
    alone = len(batch) == 1
    for op in batch:
        compound = not (alone or op.atomic)
        guarded = guard and compound
        if guarded:
            conn.execute("SAVEPOINT op")
        changes = conn.total_changes if compound else 0
        try:
            op.result = op.fn(conn)
            if guarded:
                conn.execute("RELEASE op")
        except Exception as exc:
            if not conn.in_transaction:
                # SQLite rolled the whole transaction back by itself (disk
                # full, I/O error): every op of the batch failed with it.
                raise
            if guarded:
                conn.execute("ROLLBACK TO op")
                conn.execute("RELEASE op")
            elif compound and conn.total_changes != changes:
                return False
            op.error = _store_error(exc, path)
    return True


class SQLiteStore(BatchedStore):
    """Implements :class:`corral.storage.base.Store` on one SQLite file."""

    def __init__(
        self,
        url: str,
        path: Path,
        *,
        durability: str = "step",
        create: bool = True,
        auto_migrate: bool = True,
        check_schema: bool = True,
        busy_timeout: float = 30.0,
        readonly: bool = False,
        init: bool = False,
    ) -> None:
        self.url = url
        self.path = path
        self.durability = durability
        self.create = create
        self.readonly = readonly  # list/show: opened read-only, nothing ever written
        self.init = init  # add corral's tables to a database that holds others'
        self.auto_migrate = auto_migrate
        self.check_schema = check_schema  # off only for `corral migrate`, which fixes it
        self.busy_timeout = busy_timeout
        super().__init__()
        self._conn: sqlite3.Connection | None = None
        self._data_version: int | None = None
        self.migrations_done: list[str] = []
        self.batches = 0
        self.ops = 0

    # ------------------------------------------------------------ lifecycle

    async def open(self) -> None:
        await trio.to_thread.run_sync(self._open_sync)

    def _open_sync(self) -> None:
        path = self.path
        if path.is_dir():
            raise StoreError(f"{path} is a directory, not a database file")
        existed = path.exists()
        if not existed:
            if not self.create or self.readonly:
                raise StoreError(f"no corral database at {path}")
            if not path.parent.is_dir():
                raise StoreError(f"cannot create {path}: directory {path.parent} does not exist")
        try:
            if self.readonly:
                conn = sqlite3.connect(
                    f"{path.resolve().as_uri()}?mode=ro",
                    uri=True,
                    isolation_level=None,
                    check_same_thread=False,
                    timeout=self.busy_timeout,
                )
            else:
                conn = sqlite3.connect(
                    path, isolation_level=None, check_same_thread=False, timeout=self.busy_timeout
                )
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open {path}: {exc}") from None
        try:
            conn.execute("PRAGMA schema_version").fetchone()  # fails on a non-database
            # Whose database it is, before anything is written to it.
            self._check_owner(conn)
            if existed and not self.readonly:
                _quick_check(conn, path)
            conn.execute("PRAGMA foreign_keys=ON")
            if self.readonly:
                self._check_version(conn, migrations.read_version(conn))
            else:
                migrations.use_wal(conn, self.busy_timeout)
                conn.execute("PRAGMA synchronous=NORMAL")
                if self.auto_migrate:
                    self.migrations_done = migrations.migrate(conn)
                elif self.check_schema:
                    self._check_version(conn, migrations.current_version(conn))
        except BaseException as exc:
            conn.close()
            raise _store_error(exc, str(path)) from None
        self._conn = conn

    def _check_owner(self, conn: sqlite3.Connection) -> None:
        """Refuse a database that holds tables but not corral's (an
        application's own, named by a mistyped ``--store``): nothing is added
        to it unless ``init``."""
        tables = [
            row[0]
            for row in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' "
                "AND name NOT LIKE 'sqlite_%' ORDER BY name"
            )
        ]
        if "schema_migrations" in tables:
            return
        if not tables:
            if self.readonly:
                raise StoreError(f"no corral database at {self.path} (the file is empty)")
            return
        if self.init and not self.readonly:
            return
        shown = ", ".join(tables[:5]) + (f" and {len(tables) - 5} more" if len(tables) > 5 else "")
        raise StoreError(
            f"{self.path} is not a corral database: it holds other tables ({shown}). "
            "Nothing was changed. Give corral a database of its own, or, to add corral's "
            "tables to this one, pass --init (corral run/migrate) or init=True (open_store)"
        )

    def _check_version(self, conn: sqlite3.Connection, have: int) -> None:
        want = len(migrations.migrations())
        if have > want:
            raise StoreError(
                f"{self.path} has schema version {have}, newer than this corral knows "
                f"({want}): upgrade corral"
            )
        if have != want:
            raise StoreError(
                f"{self.path} has schema version {have}, this corral needs {want}: "
                "run `corral migrate`"
            )

    def _connected(self) -> bool:
        return self._conn is not None

    async def _disconnect(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await trio.to_thread.run_sync(conn.close)

    # ------------------------------------------------------------ plumbing

    async def _execute(self, batch: list[Op]) -> None:
        """One thread hop, one transaction; interrupt the statement if cancelled."""
        finished = False

        async def interrupt_on_cancel() -> None:
            try:
                await trio.sleep_forever()
            finally:
                if not finished and self._conn is not None:
                    self._conn.interrupt()

        ran: list[bool] = []
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(interrupt_on_cancel)
                result = await outcome.acapture(
                    trio.to_thread.run_sync, self._run_batch, batch, ran
                )
                finished = True
                nursery.cancel_scope.cancel()
        finally:
            for op in batch:
                if not ran and op.error is None:  # cancelled before the thread ran it
                    op.error = StoreError("the write was cancelled before it ran")
                if op.error is not None and op.on_error is not None:
                    op.on_error(op.error)
                wake(op)
        result.unwrap()

    def _run_batch(self, batch: list[Op], ran: list[bool]) -> None:
        ran.append(True)
        conn = self._conn
        if conn is None:  # closed while this batch waited for the lock
            for op in batch:
                op.error = StoreError(f"the store {self.url} is closed")
            return
        self.batches += 1
        self.ops += len(batch)
        path = str(self.path)
        try:
            alone = len(batch) == 1
            conn.execute("BEGIN IMMEDIATE" if any(op.write for op in batch) else "BEGIN")
            # Only a batch with an op of several statements needs the savepoint
            # (to be done again, below); inside one, every write statement
            # costs more (measured: a step record 10 -> 13.5 µs).
            if not alone and not all(op.atomic for op in batch):
                conn.execute("SAVEPOINT batch")
            if not _apply(conn, batch, path, guard=False):
                # An op of several statements failed part-way, and what it wrote
                # before would stand. Rare: the batch is done again, in the same
                # transaction (the write lock is kept), with each such op in a
                # savepoint of its own; ops only touch the database, so running
                # one twice is safe. A savepoint per op costs more than the op
                # itself, so it is not paid up front.
                conn.execute("ROLLBACK TO batch")
                for op in batch:
                    op.result = op.error = None
                _apply(conn, batch, path, guard=True)
            if alone and batch[0].error is not None:
                conn.execute("ROLLBACK")
                return
            conn.execute("COMMIT")
        except Exception as exc:
            if conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            error = _store_error(exc, path)
            for op in batch:
                op.result = None
                op.error = error

    # ------------------------------------------------------------ definitions

    async def put_definition(
        self, definition: DefinitionRecord, *, register: bool = False
    ) -> DefinitionRecord:
        d = definition

        def op(conn: sqlite3.Connection) -> DefinitionRecord:
            conn.execute(
                "INSERT INTO workflow_definitions (digest, name, version, registered, spec, "
                "created_at) VALUES (?, ?, ?, 0, ?, ?) ON CONFLICT (digest) DO NOTHING",
                (d.digest, d.name, d.version, d.spec, d.created_at),
            )
            if register:
                row = conn.execute(
                    "SELECT digest FROM workflow_definitions WHERE name = ? AND version = ? "
                    "AND registered = 1",
                    (d.name, d.version),
                ).fetchone()
                if row is not None:
                    return _definition_by_digest(conn, row[0])
                conn.execute(
                    "UPDATE workflow_definitions SET registered = 1, created_at = ? "
                    "WHERE digest = ?",
                    (d.created_at, d.digest),
                )
            return _definition_by_digest(conn, d.digest)

        return await self._call(op)

    async def get_definition(
        self, name: str, version: str | None = None
    ) -> DefinitionRecord | None:
        def op(conn: sqlite3.Connection) -> DefinitionRecord | None:
            if version is None:
                row = conn.execute(
                    "SELECT digest FROM workflow_definitions WHERE name = ? AND registered = 1 "
                    "ORDER BY created_at DESC LIMIT 1",
                    (name,),
                ).fetchone()
            else:
                row = conn.execute(
                    "SELECT digest FROM workflow_definitions WHERE name = ? AND version = ? "
                    "AND registered = 1",
                    (name, version),
                ).fetchone()
            return None if row is None else _definition_by_digest(conn, row[0])

        return await self._call(op, write=False)

    async def get_definition_by_digest(self, digest: str) -> DefinitionRecord | None:
        def op(conn: sqlite3.Connection) -> DefinitionRecord | None:
            try:
                return _definition_by_digest(conn, digest)
            except KeyError:
                return None

        return await self._call(op, write=False)

    async def list_definitions(self, name: str | None = None) -> list[DefinitionRecord]:
        def op(conn: sqlite3.Connection) -> list[DefinitionRecord]:
            rows = conn.execute(sql.DEFINITIONS, (name, name)).fetchall()
            return [DefinitionRecord(r[0], r[1], r[2], bytes(r[3]), r[4]) for r in rows]

        return await self._call(op, write=False)

    # ------------------------------------------------------------ executions

    def _insert_fn(self, record: ExecutionRecord, state: list[Any]) -> tuple[WriteFn, bool]:
        r = record
        row = sql.execution_row(r)
        # No step rows: the steps are listed with the execution, and a step's
        # row is made by its first write (reads fill in the others, pending).
        plan = sql.step_plan(r)
        # (rows only for steps that are already past pending: a retry's reused
        # ones, or a record made elsewhere and stored as it is)
        given = [
            sql.step_row(r.id, s, reused=True)
            for s in r.steps
            if s.status != PENDING or s.attempts or s.reused_from is not None
        ]

        def op(conn: sqlite3.Connection) -> tuple[ExecutionRecord, bool]:
            values = (*row[:4], state[0], *row[5:12], state[1], *row[13:16], state[2], *row[17:])
            cur = conn.execute(
                f"INSERT INTO workflow_executions ({sql.EXEC_COLUMNS}, step_plan) VALUES "
                "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING",
                (*values, plan),
            )
            if cur.rowcount == 0:
                found = conn.execute(
                    "SELECT id FROM workflow_executions WHERE idempotency_key = ?", (r.key,)
                ).fetchone()
                return _get_execution(conn, found[0]), False
            if given:
                conn.executemany(sql.STEP_UPSERT_REUSED, given)
            return record, True

        # (without step rows, one write statement: the reads after a key
        # conflict write nothing)
        return op, not given

    def _start_fn(self, execution_id: str, owner: str, started_at: float, claim: bool) -> WriteFn:
        fence = "" if claim else " AND (owner IS NULL OR owner = ?)"
        args = (owner, started_at, execution_id) + (() if claim else (owner,))

        def op(conn: sqlite3.Connection) -> None:
            cur = conn.execute(
                "UPDATE workflow_executions SET status = 'running', owner = ?, started_at = ? "
                f"WHERE id = ? AND finished_at IS NULL{fence}",
                args,
            )
            if cur.rowcount == 0:
                raise LeaseLost(f"execution {execution_id} is owned by another engine or finished")

        return op

    def _step_fn(self, execution_id: str, step: StepRecord, owner: str | None) -> WriteFn:
        terminal = step.status in TERMINAL_STEP
        values = sql.step_row(execution_id, step)
        if owner is None:

            def op(conn: sqlite3.Connection) -> None:
                if conn.execute(sql.STEP_UPSERT, values).rowcount == 0:
                    raise ExecutionNotFound(execution_id)

            return op

        def fenced(conn: sqlite3.Connection) -> None:
            cur = conn.execute(sql.STEP_UPSERT_FENCED, (*values, owner))
            if cur.rowcount == 0 and terminal:
                raise LeaseLost(f"execution {execution_id} is no longer owned by {owner}")

        return fenced

    def _finish_fn(
        self,
        execution_id: str,
        status: ExecutionStatus,
        result: Any,
        error: ErrorInfo | None,
        finished_at: float,
        owner: str | None,
    ) -> WriteFn:
        values = (status, sql.opt_blob(result), sql.opt_blob(error), finished_at, execution_id)
        fence = "" if owner is None else " AND owner = ?"
        args = values if owner is None else (*values, owner)

        def op(conn: sqlite3.Connection) -> None:
            cur = conn.execute(
                "UPDATE workflow_executions SET status = ?, result = ?, error = ?, "
                f"finished_at = ?, lease_expires_at = NULL WHERE id = ?{fence}",
                args,
            )
            if cur.rowcount == 0 and owner is not None:
                raise LeaseLost(f"execution {execution_id} is no longer owned by {owner}")

        return op

    async def get_execution(self, execution_id: str) -> ExecutionRecord:
        return await self._call(lambda conn: _get_execution(conn, execution_id), write=False)

    async def get_executions(self, execution_ids: list[str]) -> list[ExecutionRecord]:
        ids = list(execution_ids)

        return await self._call(lambda conn: _get_executions(conn, ids), write=False)

    async def find_ids(self, prefix: str, limit: int = 10) -> list[str]:
        def op(conn: sqlite3.Connection) -> list[str]:
            return [r[0] for r in conn.execute(sql.FIND_IDS, (len(prefix), prefix, limit))]

        return await self._call(op, write=False)

    async def find_by_key(self, key: str) -> ExecutionRecord | None:
        def op(conn: sqlite3.Connection) -> ExecutionRecord | None:
            row = conn.execute(
                "SELECT id FROM workflow_executions WHERE idempotency_key = ?", (key,)
            ).fetchone()
            return None if row is None else _get_execution(conn, row[0])

        return await self._call(op, write=False)

    async def find_child(self, parent_id: str, parent_step: str) -> ExecutionRecord | None:
        def op(conn: sqlite3.Connection) -> ExecutionRecord | None:
            row = conn.execute(
                "SELECT id FROM workflow_executions WHERE parent_id = ? AND parent_step = ? "
                "ORDER BY created_at DESC, rowid DESC LIMIT 1",
                (parent_id, parent_step),
            ).fetchone()
            return None if row is None else _get_execution(conn, row[0])

        return await self._call(op, write=False)

    async def list_executions(
        self,
        *,
        status: str | None = None,
        workflow: str | None = None,
        limit: int = 100,
        before: tuple[float, str] | None = None,
        top_level: bool = False,
        since: float | None = None,
        retry_of: str | None = None,
    ) -> list[ExecutionRecord]:
        query, args = sql.listing(status, workflow, before, top_level, since, retry_of)

        def op(conn: sqlite3.Connection) -> list[ExecutionRecord]:
            return [sql.execution(row) for row in conn.execute(query, (*args, limit))]

        return await self._call(op, write=False)

    # ------------------------------------------------------------ ownership

    async def renew_leases(self, owner: str, until: float) -> list[str]:
        def op(conn: sqlite3.Connection) -> list[str]:
            conn.execute(
                "UPDATE workflow_executions SET lease_expires_at = ? WHERE owner = ? "
                f"AND {rules.UNFINISHED_SQL}",
                (until, owner),
            )
            rows = conn.execute(
                f"SELECT id FROM workflow_executions WHERE owner = ? AND {rules.UNFINISHED_SQL} "
                "AND cancel_requested = 1",
                (owner,),
            ).fetchall()
            return [r[0] for r in rows]

        return await self._call(op)

    async def lost(self, owner: str, execution_ids: list[str]) -> list[str]:
        if not execution_ids:
            return []
        ids = list(execution_ids)

        def op(conn: sqlite3.Connection) -> list[str]:
            rows = conn.execute(
                f"SELECT id FROM workflow_executions WHERE id IN ({_JSON_IDS}) "
                f"AND {rules.NOT_OWNED_SQL}",
                (_json_list(ids), owner),
            ).fetchall()
            return [r[0] for r in rows]

        return await self._call(op, write=False)

    async def claim_expired(
        self,
        owner: str,
        now: float,
        until: float,
        *,
        limit: int | None = None,
        handlers: list[str] | None = None,
        queued: bool = True,
        start: float | None = None,
    ) -> list[str]:
        claim = _claim_fn(owner, now, until, limit, handlers, queued, start)
        return await self._call(lambda conn: [c[0] for c in claim(conn)], atomic=True)

    async def claim_records(
        self,
        owner: str,
        now: float,
        until: float,
        *,
        limit: int | None = None,
        handlers: list[str] | None = None,
        queued: bool = True,
        start: float | None = None,
    ) -> list[ExecutionRecord]:
        claim = _claim_fn(owner, now, until, limit, handlers, queued, start)

        def op(conn: sqlite3.Connection) -> list[ExecutionRecord]:
            claimed = claim(conn)
            return _get_executions(conn, [c[0] for c in claimed], [c[1] for c in claimed])

        return await self._call(op, atomic=True)

    async def claim_one(self, execution_id: str, owner: str, now: float, until: float) -> bool:
        def op(conn: sqlite3.Connection) -> bool:
            args = (owner, until, execution_id, now, owner)
            return conn.execute(sql.CLAIM_ONE, args).fetchone() is not None

        return await self._call(op, atomic=True)

    async def cancel_requests(self, owner: str) -> list[str]:
        def op(conn: sqlite3.Connection) -> list[str]:
            return sorted(r[0] for r in conn.execute(sql.CANCEL_REQUESTS, (owner,)))

        return await self._call(op, write=False)

    async def release(self, owner: str) -> list[str]:
        def op(conn: sqlite3.Connection) -> list[str]:
            return sorted(r[0] for r in conn.execute(sql.RELEASE, (owner,)))

        return await self._call(op, atomic=True)

    async def wait_signal(self) -> None:
        # PRAGMA data_version changes when another connection (another
        # process) commits: only then is anything asked of the tables.
        def version(conn: sqlite3.Connection) -> int:
            return int(conn.execute("PRAGMA data_version").fetchone()[0])

        while True:
            seen = await self._call(version, write=False)
            if self._data_version is not None and seen != self._data_version:
                self._data_version = seen
                return
            self._data_version = seen
            await trio.sleep(SIGNAL_POLL)

    async def request_cancel(self, execution_id: str, now: float) -> ExecutionRecord:
        def op(conn: sqlite3.Connection) -> ExecutionRecord:
            record = _get_execution(conn, execution_id)
            if rules.unfinished(record):
                if rules.lease_held(record, now):
                    conn.execute(
                        "UPDATE workflow_executions SET cancel_requested = 1 WHERE id = ?",
                        (execution_id,),
                    )
                else:
                    error = ErrorInfo("WorkflowCancelled", "cancelled while no engine ran it")
                    _cancel(conn, [execution_id], sql.blob(error), now, None)
                record = _get_execution(conn, execution_id)
            return record

        return await self._call(op)

    async def request_cancel_many(self, execution_ids: list[str], now: float) -> list[str]:
        ids = list(execution_ids)
        error = sql.blob(ErrorInfo("WorkflowCancelled", "cancelled while no engine ran it"))

        def op(conn: sqlite3.Connection) -> list[str]:
            changed: list[str] = []
            for start in range(0, len(ids), _CHUNK):
                chunk = ids[start : start + _CHUNK]
                marks = ", ".join("?" for _ in chunk)
                rows = conn.execute(
                    "UPDATE workflow_executions SET cancel_requested = 1 "
                    f"WHERE id IN ({marks}) AND {rules.UNFINISHED_SQL} "
                    "AND lease_expires_at IS NOT NULL AND lease_expires_at >= ? RETURNING id",
                    (*chunk, now),
                ).fetchall()
                changed.extend(r[0] for r in rows)
                orphans = [
                    r[0]
                    for r in conn.execute(
                        f"SELECT id FROM workflow_executions WHERE id IN ({marks}) "
                        f"AND {rules.UNFINISHED_SQL} "
                        "AND (lease_expires_at IS NULL OR lease_expires_at < ?)",
                        (*chunk, now),
                    )
                ]
                if orphans:
                    changed.extend(_cancel(conn, orphans, error, now, None))
            return sorted(changed)

        return await self._call(op, atomic=True)

    async def pause(self, workflow: str, now: float) -> bool:
        def op(conn: sqlite3.Connection) -> bool:
            return conn.execute(sql.PAUSE, (workflow, now)).rowcount > 0

        return await self._call(op)

    async def unpause(self, workflow: str) -> bool:
        def op(conn: sqlite3.Connection) -> bool:
            return conn.execute(sql.UNPAUSE, (workflow,)).rowcount > 0

        return await self._call(op)

    async def paused(self) -> dict[str, float]:
        def op(conn: sqlite3.Connection) -> dict[str, float]:
            return {r[0]: r[1] for r in conn.execute(sql.PAUSED)}

        return await self._call(op, write=False)

    async def cancel_execution(
        self, execution_id: str, reason: str, now: float, *, owner: str | None = None
    ) -> bool:
        blob = sql.blob(ErrorInfo("WorkflowCancelled", reason))
        done: list[str] = await self._call(
            lambda conn: _cancel(conn, [execution_id], blob, now, owner), atomic=True
        )
        return bool(done)

    async def cancel_unstarted(
        self, execution_ids: list[str], owner: str, error: ErrorInfo, now: float
    ) -> list[str]:
        blob = sql.blob(error)

        def op(conn: sqlite3.Connection) -> list[str]:
            done: list[str] = []
            for i in range(0, len(execution_ids), _BULK):
                done += _cancel(conn, execution_ids[i : i + _BULK], blob, now, owner)
            return done

        # One transaction (one commit) for all, a statement per thousand;
        # waited for whatever the durability: a later engine must see it.
        result: list[str] = await self._call(op, atomic=True)
        return result

    async def cancel_descendants(self, execution_id: str, now: float) -> int:
        return await self._call(lambda conn: _cancel_descendants(conn, execution_id, now))

    # ------------------------------------------------------------ cache

    async def get_cache(self, key: str, now: float) -> CacheEntry | None:
        def op(conn: sqlite3.Connection) -> CacheEntry | None:
            row = conn.execute(
                "SELECT value, created_at, expires_at FROM cache_entries WHERE key = ? "
                "AND (expires_at IS NULL OR expires_at > ?)",
                (key, now),
            ).fetchone()
            return None if row is None else CacheEntry(key, bytes(row[0]), row[1], row[2])

        return await self._call(op, write=False)

    async def put_cache(self, entry: CacheEntry) -> None:
        e = entry

        def op(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT OR REPLACE INTO cache_entries (key, value, size, created_at, expires_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (e.key, e.value, len(e.value), e.created_at, e.expires_at),
            )

        await self._call(op, atomic=True)

    async def prune_cache(self, now: float, max_entries: int, max_bytes: int) -> int:
        def op(conn: sqlite3.Connection) -> int:
            expired = conn.execute(
                "DELETE FROM cache_entries WHERE expires_at IS NOT NULL AND expires_at <= ?",
                (now,),
            ).rowcount
            # The newest entries are kept, up to both bounds; the oldest go first.
            extra = conn.execute(sql.PRUNE_CACHE, (max_entries, max_bytes)).rowcount
            return int(expired + extra)

        return await self._call(op)

    # ------------------------------------------------------------ retention

    async def count_prunable(self, before: float, *, statuses: tuple[str, ...] = ()) -> int:
        marks = ", ".join("?" for _ in statuses)
        query = (
            "SELECT count(*) FROM workflow_executions WHERE finished_at IS NOT NULL "
            "AND finished_at < ?" + (f" AND status IN ({marks})" if statuses else "")
        )

        def op(conn: sqlite3.Connection) -> int:
            return int(conn.execute(query, (before, *statuses)).fetchone()[0])

        return await self._call(op, write=False)

    async def prune(
        self, before: float, *, statuses: tuple[str, ...] = (), batch: int = 500
    ) -> int:
        status_clause = ""
        if statuses:
            status_clause = f" AND status IN ({', '.join('?' for _ in statuses)})"
        select = (
            "SELECT id FROM workflow_executions WHERE finished_at IS NOT NULL "
            f"AND finished_at < ?{status_clause} LIMIT ?"
        )

        def op(conn: sqlite3.Connection) -> int:
            ids = [r[0] for r in conn.execute(select, (before, *statuses, batch))]
            if not ids:
                return 0
            listed = (_json_list(ids),)
            conn.execute(
                f"DELETE FROM step_executions WHERE execution_seq IN ({_SEQS.format(_JSON_IDS)})",
                listed,
            )
            conn.execute(f"DELETE FROM workflow_executions WHERE id IN ({_JSON_IDS})", listed)
            return len(ids)

        total = 0
        while True:
            # One batch per transaction: other work is committed between them.
            deleted = await self._call(op)
            total += deleted
            if deleted < batch:
                return total
            await trio.lowlevel.checkpoint()

    # ------------------------------------------------------------ maintenance

    async def migrate(self, to: int | None = None) -> list[str]:
        """Apply or roll back migrations (``corral migrate``)."""

        def op(conn: sqlite3.Connection) -> list[str]:
            return migrations.migrate(conn, to)

        if self._conn is None:
            raise StoreError(f"the store {self.url} is closed")
        async with self._commits.lock:
            try:
                return await trio.to_thread.run_sync(op, self._conn)
            except Exception as exc:
                raise _store_error(exc, str(self.path)) from None

    async def schema_version(self) -> int:
        if self._conn is None:
            raise StoreError(f"the store {self.url} is closed")
        conn = self._conn
        async with self._commits.lock:
            return await trio.to_thread.run_sync(migrations.current_version, conn)


_CHUNK = 500  # ids per statement in bulk operations (SQLite bounds its variables)

# A list of ids as one JSON parameter, not one placeholder each: statements
# that run periodically with a varying number of ids (the lease round's
# `lost`, retention's `prune`) keep one text, so one prepared statement. With
# a placeholder per id, each new count was a new statement in the
# connection's cache (128 kept, each a compiled program of its own): SQLite's
# memory grew by megabytes over a long run.
_JSON_IDS = "SELECT value FROM json_each(?)"
#: The seqs (step rows' key) of the executions whose ids fill the ``{}``.
_SEQS = "SELECT seq FROM workflow_executions WHERE id IN ({})"


def _json_list(ids: list[str]) -> str:
    return msgspec.json.encode(ids).decode()


_CLAIM = (
    # (by seq, which the claim index holds: the claimed rows are found and
    # read back without a look into the ids' index)
    f"UPDATE workflow_executions SET {sql.CLAIM_SET.format(t='?')} WHERE seq IN "
    f"(SELECT seq FROM workflow_executions WHERE {rules.CLAIMABLE_SQL} "
    "AND (? = 1 OR owner IS NOT NULL) "
    "AND (? IS NULL OR handlers IS NULL OR NOT EXISTS (SELECT 1 FROM "
    "json_each(workflow_executions.handlers) AS h WHERE h.value NOT IN "
    f"(SELECT value FROM json_each(?)))) ORDER BY {rules.CLAIM_ORDER_SQL} LIMIT ?) "
    "RETURNING id, seq"
)


def _definition_by_digest(conn: sqlite3.Connection, digest: str) -> DefinitionRecord:
    row = conn.execute(
        "SELECT name, version, digest, spec, created_at FROM workflow_definitions WHERE digest = ?",
        (digest,),
    ).fetchone()
    if row is None:
        raise KeyError(digest)
    return DefinitionRecord(row[0], row[1], row[2], bytes(row[3]), row[4])


def _cancel(
    conn: sqlite3.Connection, ids: list[str], error: bytes, now: float, owner: str | None
) -> list[str]:
    """Cancel the unfinished executions among ``ids`` (those ``owner`` holds,
    when given), their unfinished steps and their descendants: what
    "cancelled" means, in the caller's transaction. Returns the ids changed."""
    marks = ", ".join("?" * len(ids))
    fence = "" if owner is None else " AND +owner = ?"
    changed = [
        row[0]
        for row in conn.execute(
            "UPDATE workflow_executions SET status = 'cancelled', error = ?, finished_at = ?, "
            "lease_expires_at = NULL, cancel_requested = 1 "
            # (+: by the primary key, not the lease index, which would scan
            # every unfinished execution of the owner)
            f"WHERE id IN ({marks}) AND +finished_at IS NULL{fence} RETURNING id",
            (error, now, *ids, *(() if owner is None else (owner,))),
        )
    ]
    if changed:
        marks = ", ".join("?" * len(changed))
        conn.execute(
            "UPDATE step_executions SET status = 'cancelled', finished_at = ? "
            f"WHERE execution_seq IN ({_SEQS.format(marks)}) AND status IN {sql.UNFINISHED_LIST}",
            (now, *changed),
        )
        # Children of any of them? (one look by the parent index; usually none,
        # and then no recursive query per execution)
        if conn.execute(
            f"SELECT 1 FROM workflow_executions WHERE parent_id IN ({marks}) LIMIT 1", changed
        ).fetchone():
            for execution_id in changed:
                _cancel_descendants(conn, execution_id, now)
    return changed


def _cancel_descendants(conn: sqlite3.Connection, execution_id: str, now: float) -> int:
    ids = [
        r[0]
        for r in conn.execute(
            "WITH RECURSIVE tree(id) AS (SELECT id FROM workflow_executions WHERE parent_id = ? "
            "UNION SELECT e.id FROM workflow_executions e JOIN tree ON e.parent_id = tree.id) "
            "SELECT w.id FROM workflow_executions w JOIN tree USING (id) "
            "WHERE w.finished_at IS NULL",
            (execution_id,),
        )
    ]
    if not ids:
        return 0
    marks = ", ".join("?" for _ in ids)
    error = sql.blob(ErrorInfo("WorkflowCancelled", "its parent was cancelled"))
    conn.execute(
        "UPDATE workflow_executions SET status = 'cancelled', error = ?, finished_at = ?, "
        f"lease_expires_at = NULL WHERE id IN ({marks})",
        (error, now, *ids),
    )
    conn.execute(
        "UPDATE step_executions SET status = 'cancelled', finished_at = ? "
        f"WHERE execution_seq IN ({_SEQS.format(marks)}) AND status IN {sql.UNFINISHED_LIST}",
        (now, *ids),
    )
    return len(ids)


def _claim_fn(
    owner: str,
    now: float,
    until: float,
    limit: int | None,
    handlers: list[str] | None,
    queued: bool,
    start: float | None,
) -> Callable[[sqlite3.Connection], list[tuple[str, int]]]:
    """The claim of :meth:`SQLiteStore.claim_expired`, as a writer op: the
    claimed executions' ids (in order) and seqs."""
    have = sql.handler_set(handlers)
    limit_ = -1 if limit is None else limit
    args = (owner, until, start, start, start, now, owner, int(queued), have, have, limit_)

    def claim(conn: sqlite3.Connection) -> list[tuple[str, int]]:
        return sorted(conn.execute(_CLAIM, args).fetchall())

    return claim


def _get_execution(conn: sqlite3.Connection, execution_id: str) -> ExecutionRecord:
    row = conn.execute(
        f"SELECT {sql.EXEC_COLUMNS}, seq, step_plan FROM workflow_executions WHERE id = ?",
        (execution_id,),
    ).fetchone()
    if row is None:
        raise ExecutionNotFound(execution_id)
    steps = [
        sql.step(s)
        for s in conn.execute(
            f"SELECT {sql.STEP_COLUMNS} FROM step_executions WHERE execution_seq = ? "
            "ORDER BY position",
            (row[-2],),
        )
    ]
    if row[-1] is not None:  # steps without a row yet come from the list
        steps = sql.planned_steps(row[-1], steps, row[4], row[17])
    return sql.execution(row, steps)


def _get_executions(
    conn: sqlite3.Connection, ids: list[str], seqs: list[int] | None = None
) -> list[ExecutionRecord]:
    """Several executions with their steps, in the order of ``ids`` (unknown
    ones left out): two statements whatever their number (a claim of a
    thousand reads them back at once). Found by ``seqs`` when they are known
    (a claim's), else by id."""
    by = "id" if seqs is None else "seq"
    rows = conn.execute(
        f"SELECT {sql.EXEC_COLUMNS}, seq, step_plan FROM workflow_executions "
        f"WHERE {by} IN (SELECT value FROM json_each(?))",
        (msgspec.json.encode(ids if seqs is None else seqs).decode(),),
    ).fetchall()
    steps: dict[int, list[StepRecord]] = {}
    for s in conn.execute(
        f"SELECT execution_seq, {sql.STEP_COLUMNS} FROM step_executions "
        "WHERE execution_seq IN (SELECT value FROM json_each(?)) ORDER BY execution_seq, position",
        (msgspec.json.encode([row[-2] for row in rows]).decode(),),
    ):
        steps.setdefault(s[0], []).append(sql.step(s[1:]))
    found = {}
    for row in rows:
        kept = steps.get(row[-2], [])
        if row[-1] is not None:  # steps without a row yet come from the list
            kept = sql.planned_steps(row[-1], kept, row[4], row[17])
        found[row[0]] = sql.execution(row, kept)
    return [found[i] for i in ids if i in found]


def default_path() -> Path:
    """The per-user database file: ``$XDG_DATA_HOME/corral/corral.db``."""
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "share"
    )
    return Path(base) / "corral" / "corral.db"
