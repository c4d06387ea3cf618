"""The PostgreSQL store: many processes on many machines share one database.

asyncpg under trio-asyncio. The store runs inside one asyncio loop
(:meth:`PostgresStore.lifetime`: ``trio_asyncio.open_loop()``, or the
caller's own if one is open) and crosses into it once per unit of work: every
batch of the group commit (:class:`~corral.storage.batched.BatchedStore`) is
one asyncio-side function that takes a pooled connection, opens the
transaction, runs the batch's operations and commits. Never a transaction
driven from the Trio side (TECH-NOTES: a cancelled query would leave the
connection in a failed transaction).

Rows and meaning are SQLite's (storage/sql.py, storage/rules.py): JSON values
as bytes, times as epoch seconds; what differs is the dialect, ``FOR UPDATE``
on the rows a decision reads, and ``SKIP LOCKED`` when workers claim.

URL: ``postgresql://user:password@host:port/database`` (or ``postgres://``)
with optional query parameters ``pool_size`` (connections, default 10),
``statement_timeout`` and ``connect_timeout`` (seconds; defaults 60 and 10)
and ``sslmode``. The password is never printed: :attr:`url` shows it as
``***``.

One class of about 850 lines: every operation of the Store protocol, each a
small function run in one transaction; its statements and the functions
run inside its transactions are :mod:`.pg_sql`, its URL :mod:`.pg_url`.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any, TypeVar, cast

import trio

from corral.core.errors import ExecutionNotFound, LeaseLost, StoreError
from corral.core.model import TERMINAL_STEP, ErrorInfo, ExecutionRecord, ExecutionStatus, StepRecord
from corral.storage import migrate as migrations
from corral.storage import pg_sql as pg
from corral.storage import rules, sql
from corral.storage.base import CacheEntry, DefinitionRecord
from corral.storage.batched import BatchedStore, WriteFn
from corral.storage.group_commit import Op, wake
from corral.storage.pg_bulk import FINISH, INSERT, START, STEP, Bulk
from corral.storage.pg_url import Settings, parse_url

__all__ = ["PostgresStore", "parse_url"]

log = logging.getLogger("corral.store")

T = TypeVar("T")

MIN_SERVER_VERSION = 14

q = sql.numbered  # statements are written with ?, PostgreSQL numbers them


async def _keep(conn: Any) -> None:
    """A pooled connection needs no reset when it goes back to the pool."""


def _rows(status: str) -> int:
    """The row count of a command status (``UPDATE 3``)."""
    return int(status.rpartition(" ")[2] or 0)


class PostgresStore(BatchedStore):
    """Implements :class:`corral.storage.base.Store` on a PostgreSQL database."""

    def __init__(
        self,
        url: str,
        *,
        durability: str = "step",
        auto_migrate: bool = True,
        check_schema: bool = True,
        readonly: bool = False,
        init: bool = False,
    ) -> None:
        self.settings = Settings(url)
        self.url = self.settings.shown
        self.durability = durability
        self.auto_migrate = auto_migrate
        self.check_schema = check_schema
        self.readonly = readonly
        self.init = init
        super().__init__()
        self._pool: Any = None
        self._loop: Any = None
        self._listener: Any = None
        self._signalled = trio.Event()
        self.migrations_done: list[str] = []
        self.batches = 0
        self.ops = 0

    # ------------------------------------------------------------ lifecycle

    @contextlib.asynccontextmanager
    async def lifetime(self) -> AsyncIterator[None]:
        """The asyncio loop the store lives in: the caller's, or one of its own
        (``open`` and every operation run inside this)."""
        import trio_asyncio

        if trio_asyncio.current_loop.get() is not None:
            yield
            return
        async with trio_asyncio.open_loop():
            yield

    async def _aio(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run an asyncio-side coroutine on the store's loop."""
        result: T = await self._loop.run_aio_coroutine(coro)
        return result

    async def open(self) -> None:
        import asyncpg
        import trio_asyncio

        self._loop = trio_asyncio.current_loop.get()
        if self._loop is None:
            raise StoreError(
                "the PostgreSQL store must be opened inside its lifetime() "
                "(open_engine and the CLI do this)"
            )
        st = self.settings
        settings = {
            "application_name": "corral",
            "statement_timeout": str(int(st.statement_timeout * 1000)),
        }
        if self.readonly:
            settings["default_transaction_read_only"] = "on"
        try:
            # (with min_size=0 the first connection is made by _prepare)
            with trio.fail_after(st.connect_timeout + 1):
                self._pool = await self._aio(
                    asyncpg.create_pool(
                        host=st.host,
                        port=st.port,
                        user=st.user,
                        password=st.password,
                        database=st.database,
                        ssl=st.sslmode,
                        min_size=0,
                        max_size=st.pool_size,
                        timeout=st.connect_timeout,
                        server_settings=settings,
                        statement_cache_size=512,
                        # Nothing to undo between uses (no session state: the
                        # listener has its own connection): no reset round trip.
                        reset=_keep,
                    )
                )
        except trio.TooSlowError:
            raise StoreError(
                f"no PostgreSQL answered at {st.where} within {st.connect_timeout:g} s "
                "(is the server running there? connect_timeout= in the URL sets the wait)"
            ) from None
        except Exception as exc:
            raise self._connect_error(exc) from None
        try:
            with trio.fail_after(st.connect_timeout + 1):
                await self._aio(self._prepare())
        except BaseException as exc:
            pool, self._pool = self._pool, None
            with trio.CancelScope(shield=True):
                await self._aio(pool.close())
            if isinstance(exc, trio.TooSlowError):
                exc = TimeoutError()
            if isinstance(exc, (StoreError, trio.Cancelled, KeyboardInterrupt)):
                raise
            raise self._connect_error(exc) from None

    def _connect_error(self, exc: BaseException) -> StoreError:
        import asyncpg

        st = self.settings
        who = st.user or "(default user)"
        if isinstance(exc, asyncpg.InvalidPasswordError):
            return StoreError(f"PostgreSQL at {st.where} refused user {who}: wrong password")
        if isinstance(exc, asyncpg.InvalidAuthorizationSpecificationError):
            return StoreError(f"PostgreSQL at {st.where} refused user {who}: {exc}")
        if isinstance(exc, asyncpg.InvalidCatalogNameError):
            return StoreError(
                f"PostgreSQL at {st.host}:{st.port} has no database {st.database!r} "
                f"(create it first: createdb {st.database})"
            )
        if isinstance(exc, TimeoutError):
            return StoreError(
                f"no PostgreSQL answered at {st.where} within {st.connect_timeout:g} s "
                "(is a PostgreSQL server running there? connect_timeout= in the URL sets the wait)"
            )
        if isinstance(exc, ConnectionRefusedError):
            return StoreError(
                f"cannot connect to PostgreSQL at {st.where}: connection refused "
                "(is the server running, on that port?)"
            )
        if isinstance(exc, OSError):
            reason = exc.strerror or str(exc) or type(exc).__name__
            return StoreError(f"cannot connect to PostgreSQL at {st.where}: {reason}")
        if isinstance(exc, asyncpg.PostgresError):
            return StoreError(f"PostgreSQL at {st.where}: {exc}")
        return StoreError(
            f"cannot talk to PostgreSQL at {st.where} (is it a PostgreSQL server?): "
            f"{type(exc).__name__}: {exc}"
        )

    def _error(self, exc: BaseException) -> BaseException:
        import asyncpg

        if isinstance(exc, (StoreError, ExecutionNotFound, LeaseLost)):
            return exc
        if isinstance(exc, asyncpg.QueryCanceledError):
            return StoreError(
                f"a store operation on {self.settings.where} was cancelled or took longer "
                f"than statement_timeout ({exc})"
            )
        if isinstance(exc, asyncpg.PostgresError):
            return StoreError(f"PostgreSQL error on {self.settings.where}: {exc}")
        if isinstance(exc, (OSError, asyncpg.InterfaceError)) or type(exc).__name__.startswith(
            "Connection"
        ):
            return StoreError(f"lost the connection to PostgreSQL at {self.settings.where}: {exc}")
        return exc

    async def _prepare(self) -> None:
        """Asyncio side: check the server and the schema (migrating it if allowed)."""
        async with self._pool.acquire() as conn:
            version = conn.get_server_version()
            if version.major < MIN_SERVER_VERSION:
                raise StoreError(
                    f"PostgreSQL at {self.settings.where} is version {version.major}; "
                    f"corral needs {MIN_SERVER_VERSION} or newer"
                )
            await self._check_owner(conn)
            if self.readonly or not self.auto_migrate:
                if self.check_schema:
                    self._check_version(await pg.read_version(conn))
                return
            self.migrations_done = await pg.migrate(conn, None)

    async def _check_owner(self, conn: Any) -> None:
        tables = [
            r[0]
            for r in await conn.fetch(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = current_schema() ORDER BY table_name"
            )
        ]
        if "schema_migrations" in tables or not tables or (self.init and not self.readonly):
            return
        shown = ", ".join(tables[:5]) + (f" and {len(tables) - 5} more" if len(tables) > 5 else "")
        raise StoreError(
            f"{self.settings.where} is not a corral database: it holds other tables ({shown}). "
            "Nothing was changed. Give corral a database of its own, or, to add corral's "
            "tables to this one, pass --init (corral run/migrate) or init=True (open_store)"
        )

    def _check_version(self, have: int) -> None:
        want = len(migrations.migrations("postgres"))
        if have > want:
            raise StoreError(
                f"{self.settings.where} has schema version {have}, newer than this corral "
                f"knows ({want}): upgrade corral"
            )
        if have != want:
            raise StoreError(
                f"{self.settings.where} has schema version {have}, this corral needs {want}: "
                "run `corral migrate`"
            )

    def _connected(self) -> bool:
        return self._pool is not None

    async def _disconnect(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            with trio.CancelScope(shield=True), trio.move_on_after(5):
                await self._aio(listener.close())
        pool, self._pool = self._pool, None
        if pool is not None:
            with trio.CancelScope(shield=True), trio.move_on_after(5):
                await self._aio(pool.close())

    # ------------------------------------------------------------ plumbing

    async def _execute(self, batch: list[Op]) -> None:
        ran: list[bool] = []
        try:
            await self._aio(self._run_batch(batch, ran))
        finally:
            for op in batch:
                if not ran and op.error is None:  # cancelled before it ran
                    op.error = StoreError("the write was cancelled before it ran")
                if op.error is not None:
                    op.error = self._error(op.error)
                    if op.on_error is not None:
                        op.on_error(op.error)
                wake(op)

    async def _run_batch(self, batch: list[Op], ran: list[bool]) -> None:
        """Asyncio side: the batch in one transaction on one pooled connection."""
        ran.append(True)
        if self._pool is None:  # closed while this batch waited for the lock
            for op in batch:
                op.error = StoreError(f"the store {self.url} is closed")
            return
        self.batches += 1
        self.ops += len(batch)
        alone = len(batch) == 1
        try:
            async with self._pool.acquire() as conn:
                tx = conn.transaction()
                await tx.start()
                try:
                    if not await pg.apply(conn, batch, guard=False):
                        # An op failed in a way that aborted the transaction, or
                        # after it may have written: the batch again, each op in
                        # a savepoint of its own (rare; savepoints cost a round
                        # trip each, so they are not paid up front).
                        await tx.rollback()
                        for op in batch:
                            op.result = op.error = None
                        tx = conn.transaction()
                        await tx.start()
                        await pg.apply(conn, batch, guard=True)
                    if alone and batch[0].error is not None:
                        await tx.rollback()
                        return
                    await tx.commit()
                except BaseException:
                    with contextlib.suppress(Exception):
                        await tx.rollback()
                    raise
        except Exception as exc:
            for op in batch:
                op.result = None
                op.error = exc

    async def _q(
        self,
        fn: Callable[[Any], Awaitable[T]],
        *,
        write: bool = True,
        atomic: bool = False,
    ) -> T:
        result = await self._call(fn, write=write, atomic=atomic)
        return cast(T, result)

    # ------------------------------------------------------------ status writes

    def _insert_fn(self, record: ExecutionRecord, state: list[Any]) -> tuple[WriteFn, bool]:
        r = record
        row = sql.execution_row(r)
        steps = (
            [s.step_id for s in r.steps],
            list(range(len(r.steps))),
            [s.handler for s in r.steps],
            [s.status for s in r.steps],
            [s.attempts for s in r.steps],
            [s.workflow for s in r.steps],
        )
        reused = sql.reused_rows(r) if r.retry_of is not None else []

        def values() -> tuple[Any, ...]:
            return (*row[:4], state[0], *row[5:12], state[1], *row[13:16], state[2], *row[17:])

        async def op(conn: Any) -> tuple[ExecutionRecord, bool]:
            done = await conn.execute(pg.INSERT_EXECUTION, *values())
            if _rows(done) == 0:
                found = await conn.fetchval(
                    "SELECT id FROM workflow_executions WHERE idempotency_key = $1", r.key
                )
                return await pg.get_execution(conn, found), False
            if r.steps:
                await conn.execute(pg.INSERT_STEPS, r.id, *steps)
            if reused:
                await conn.executemany(pg.STEP_REUSED, reused)
            if state[1] is None and r.parent_id is None:
                await conn.execute(pg.NOTIFY)  # queued: wake a worker (sent at commit)
            return record, True

        if r.key is not None or reused:
            # the insert decides idempotency, or reused steps are written with
            # it: statements of its own
            return op, False
        step_rows = [
            (r.id, s.step_id, i, s.handler, s.status, s.attempts, s.workflow)
            for i, s in enumerate(r.steps)
        ]
        bulk = Bulk(
            INSERT,
            lambda: (values(), step_rows, state[1] is None and r.parent_id is None),
            op,
            key=record,
        )
        return bulk, False

    def _start_fn(self, execution_id: str, owner: str, started_at: float, claim: bool) -> WriteFn:
        statement = pg.MARK_STARTED_CLAIM if claim else pg.MARK_STARTED

        async def op(conn: Any) -> None:
            done = await conn.execute(statement, owner, started_at, execution_id)
            if _rows(done) == 0:
                raise LeaseLost(f"execution {execution_id} is owned by another engine or finished")

        if claim:
            return op
        row = (execution_id, owner, started_at)
        return Bulk(START, lambda: row, op, key=execution_id)

    def _step_fn(self, execution_id: str, step: StepRecord, owner: str | None) -> WriteFn:
        terminal = step.status in TERMINAL_STEP
        values = sql.step_values(execution_id, step)

        async def op(conn: Any) -> None:
            if owner is None:
                await conn.execute(pg.STEP_UPDATE, *values)
                return
            done = await conn.execute(pg.STEP_FENCED, *values, execution_id, owner)
            if _rows(done) == 0 and terminal:
                raise LeaseLost(f"execution {execution_id} is no longer owned by {owner}")

        row = (*values, owner)
        return Bulk(
            STEP,
            lambda: row,
            op,
            key=(execution_id, step.step_id),
            owner=owner,
            terminal=terminal,
        )

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

        async def op(conn: Any) -> None:
            if owner is None:
                await conn.execute(pg.MARK_FINISHED, *values)
                return
            done = await conn.execute(pg.MARK_FINISHED_FENCED, *values, owner)
            if _rows(done) == 0:
                raise LeaseLost(f"execution {execution_id} is no longer owned by {owner}")

        row = (*values, owner)
        return Bulk(FINISH, lambda: row, op, key=execution_id, owner=owner)

    # ------------------------------------------------------------ definitions

    async def put_definition(
        self, definition: DefinitionRecord, *, register: bool = False
    ) -> DefinitionRecord:
        d = definition

        async def op(conn: Any) -> DefinitionRecord:
            await conn.execute(
                "INSERT INTO workflow_definitions (digest, name, version, registered, spec, "
                "created_at) VALUES ($1, $2, $3, 0, $4, $5) ON CONFLICT (digest) DO NOTHING",
                d.digest,
                d.name,
                d.version,
                d.spec,
                d.created_at,
            )
            if register:
                # One registration per (name, version): serialised by a lock on the name.
                await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", d.name)
                found = await conn.fetchval(
                    "SELECT digest FROM workflow_definitions WHERE name = $1 AND version = $2 "
                    "AND registered = 1",
                    d.name,
                    d.version,
                )
                if found is not None:
                    return await pg.definition(conn, found)
                await conn.execute(
                    "UPDATE workflow_definitions SET registered = 1, created_at = $1 "
                    "WHERE digest = $2",
                    d.created_at,
                    d.digest,
                )
            return await pg.definition(conn, d.digest)

        return await self._q(op)

    async def get_definition(
        self, name: str, version: str | None = None
    ) -> DefinitionRecord | None:
        async def op(conn: Any) -> DefinitionRecord | None:
            if version is None:
                digest = await conn.fetchval(
                    "SELECT digest FROM workflow_definitions WHERE name = $1 AND registered = 1 "
                    "ORDER BY created_at DESC LIMIT 1",
                    name,
                )
            else:
                digest = await conn.fetchval(
                    "SELECT digest FROM workflow_definitions WHERE name = $1 AND version = $2 "
                    "AND registered = 1",
                    name,
                    version,
                )
            return None if digest is None else await pg.definition(conn, digest)

        return await self._q(op, write=False)

    async def get_definition_by_digest(self, digest: str) -> DefinitionRecord | None:
        async def op(conn: Any) -> DefinitionRecord | None:
            try:
                return await pg.definition(conn, digest)
            except KeyError:
                return None

        return await self._q(op, write=False)

    async def list_definitions(self, name: str | None = None) -> list[DefinitionRecord]:
        async def op(conn: Any) -> list[DefinitionRecord]:
            rows = await conn.fetch(pg.DEFINITIONS, name, name)
            return [DefinitionRecord(r[0], r[1], r[2], bytes(r[3]), r[4]) for r in rows]

        return await self._q(op, write=False)

    # ------------------------------------------------------------ reads

    async def get_execution(self, execution_id: str) -> ExecutionRecord:
        return await self._q(lambda conn: pg.get_execution(conn, execution_id), write=False)

    async def get_executions(self, execution_ids: list[str]) -> list[ExecutionRecord]:
        ids = list(execution_ids)
        return await self._q(lambda conn: _read_executions(conn, ids), write=False)

    async def find_ids(self, prefix: str, limit: int = 10) -> list[str]:
        async def op(conn: Any) -> list[str]:
            return [r[0] for r in await conn.fetch(pg.FIND_IDS, len(prefix), prefix, limit)]

        return await self._q(op, write=False)

    async def find_by_key(self, key: str) -> ExecutionRecord | None:
        return await self._find(
            "SELECT id FROM workflow_executions WHERE idempotency_key = $1", key
        )

    async def find_child(self, parent_id: str, parent_step: str) -> ExecutionRecord | None:
        return await self._find(
            "SELECT id FROM workflow_executions WHERE parent_id = $1 AND parent_step = $2 "
            "ORDER BY created_at DESC, seq DESC LIMIT 1",
            parent_id,
            parent_step,
        )

    async def _find(self, query: str, *args: Any) -> ExecutionRecord | None:
        async def op(conn: Any) -> ExecutionRecord | None:
            found = await conn.fetchval(query, *args)
            return None if found is None else await pg.get_execution(conn, found)

        return await self._q(op, write=False)

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
        text, args = sql.listing(status, workflow, before, top_level, since, retry_of)
        query = q(text)

        async def op(conn: Any) -> list[ExecutionRecord]:
            return [sql.execution(row) for row in await conn.fetch(query, *args, limit)]

        return await self._q(op, write=False)

    # ------------------------------------------------------------ ownership

    async def renew_leases(self, owner: str, until: float) -> list[str]:
        async def op(conn: Any) -> list[str]:
            rows = await conn.fetch(pg.RENEW, until, owner)
            return sorted(r[0] for r in rows if r[1])

        return await self._q(op)

    async def lost(self, owner: str, execution_ids: list[str]) -> list[str]:
        if not execution_ids:
            return []
        ids = list(execution_ids)

        async def op(conn: Any) -> list[str]:
            rows = await conn.fetch(pg.LOST, ids, owner)
            return [r[0] for r in rows]

        return await self._q(op, write=False)

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
        return await self._q(claim, atomic=True)

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

        async def op(conn: Any) -> list[ExecutionRecord]:
            return await _read_executions(conn, await claim(conn))

        return await self._q(op, atomic=True)

    async def claim_one(self, execution_id: str, owner: str, now: float, until: float) -> bool:
        async def op(conn: Any) -> bool:
            row = await conn.fetchrow(pg.CLAIM_ONE, owner, until, execution_id, now, owner)
            return row is not None

        return await self._q(op, atomic=True)

    async def cancel_requests(self, owner: str) -> list[str]:
        async def op(conn: Any) -> list[str]:
            return sorted(r[0] for r in await conn.fetch(pg.CANCEL_REQUESTS, owner))

        return await self._q(op, write=False)

    async def release(self, owner: str) -> list[str]:
        async def op(conn: Any) -> list[str]:
            rows = await conn.fetch(pg.RELEASE, owner)
            if rows:
                await conn.execute(pg.NOTIFY)
            return sorted(r[0] for r in rows)

        return await self._q(op, atomic=True)

    async def wait_signal(self) -> None:
        # LISTEN on a connection of its own, opened at the first wait; a NOTIFY
        # (sent with the commit of a queued submission, a cancel request or a
        # release) sets the event from the loop.
        if self._listener is None or self._listener.is_closed():
            await self._listen()
        await self._signalled.wait()
        self._signalled = trio.Event()

    async def _listen(self) -> None:
        import asyncpg

        st = self.settings

        async def connect() -> Any:
            conn = await asyncpg.connect(
                host=st.host,
                port=st.port,
                user=st.user,
                password=st.password,
                database=st.database,
                ssl=st.sslmode,
                timeout=st.connect_timeout,
                server_settings={"application_name": "corral-listen"},
            )
            await conn.add_listener(pg.CHANNEL, self._notified)
            return conn

        try:
            self._listener = await self._aio(connect())
        except Exception as exc:
            raise self._connect_error(exc) from None
        self._signalled.set()  # anything sent while no one listened: look once

    def _notified(self, *_: Any) -> None:
        self._signalled.set()

    async def request_cancel(self, execution_id: str, now: float) -> ExecutionRecord:
        async def op(conn: Any) -> ExecutionRecord:
            record = await pg.get_execution(conn, execution_id, lock=True)
            if rules.unfinished(record):
                if rules.lease_held(record, now):
                    await conn.execute(
                        "UPDATE workflow_executions SET cancel_requested = 1 WHERE id = $1",
                        execution_id,
                    )
                    await conn.execute(pg.NOTIFY)  # its engine hears it at commit
                else:
                    error = ErrorInfo("WorkflowCancelled", "cancelled while no engine ran it")
                    await pg.cancel(conn, [execution_id], sql.blob(error), now, None)
                record = await pg.get_execution(conn, execution_id)
            return record

        return await self._q(op)

    async def request_cancel_many(self, execution_ids: list[str], now: float) -> list[str]:
        ids = list(execution_ids)
        error = sql.blob(ErrorInfo("WorkflowCancelled", "cancelled while no engine ran it"))

        async def op(conn: Any) -> list[str]:
            flagged = [r[0] for r in await conn.fetch(pg.REQUEST_CANCELS, ids, now)]
            if flagged:
                await conn.execute(pg.NOTIFY)  # their engines hear it at commit
            orphans = [r[0] for r in await conn.fetch(pg.ORPHANS_AMONG, ids, now)]
            cancelled = await pg.cancel(conn, orphans, error, now, None) if orphans else []
            return sorted([*flagged, *cancelled])

        return await self._q(op)

    async def pause(self, workflow: str, now: float) -> bool:
        async def op(conn: Any) -> bool:
            done = _rows(await conn.execute(pg.PAUSE, workflow, now)) > 0
            await conn.execute(pg.NOTIFY)  # engines look at the pauses again
            return done

        return await self._q(op)

    async def unpause(self, workflow: str) -> bool:
        async def op(conn: Any) -> bool:
            done = _rows(await conn.execute(pg.UNPAUSE, workflow)) > 0
            await conn.execute(pg.NOTIFY)  # held work may be claimed now
            return done

        return await self._q(op)

    async def paused(self) -> dict[str, float]:
        async def op(conn: Any) -> dict[str, float]:
            return {r[0]: r[1] for r in await conn.fetch(pg.PAUSED)}

        return await self._q(op, write=False)

    async def cancel_execution(
        self, execution_id: str, reason: str, now: float, *, owner: str | None = None
    ) -> bool:
        blob = sql.blob(ErrorInfo("WorkflowCancelled", reason))
        done = await self._q(lambda conn: pg.cancel(conn, [execution_id], blob, now, owner))
        return bool(done)

    async def cancel_unstarted(
        self, execution_ids: list[str], owner: str, error: ErrorInfo, now: float
    ) -> list[str]:
        blob = sql.blob(error)
        # One transaction, one statement for all (an array parameter).
        return await self._q(lambda conn: pg.cancel(conn, list(execution_ids), blob, now, owner))

    async def cancel_descendants(self, execution_id: str, now: float) -> int:
        return await self._q(lambda conn: pg.cancel_descendants(conn, [execution_id], now))

    # ------------------------------------------------------------ cache

    async def get_cache(self, key: str, now: float) -> CacheEntry | None:
        async def op(conn: Any) -> CacheEntry | None:
            row = await conn.fetchrow(
                "SELECT value, created_at, expires_at FROM cache_entries WHERE key = $1 "
                "AND (expires_at IS NULL OR expires_at > $2)",
                key,
                now,
            )
            return None if row is None else CacheEntry(key, bytes(row[0]), row[1], row[2])

        return await self._q(op, write=False)

    async def put_cache(self, entry: CacheEntry) -> None:
        e = entry

        async def op(conn: Any) -> None:
            await conn.execute(
                "INSERT INTO cache_entries (key, value, size, created_at, expires_at) "
                "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (key) DO UPDATE SET "
                "value = EXCLUDED.value, size = EXCLUDED.size, "
                "created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at",
                e.key,
                e.value,
                len(e.value),
                e.created_at,
                e.expires_at,
            )

        await self._q(op, atomic=True)

    async def prune_cache(self, now: float, max_entries: int, max_bytes: int) -> int:
        async def op(conn: Any) -> int:
            expired = await conn.execute(
                "DELETE FROM cache_entries WHERE expires_at IS NOT NULL AND expires_at <= $1", now
            )
            # The newest entries are kept, up to both bounds; the oldest go first.
            extra = await conn.execute(q(sql.PRUNE_CACHE), max_entries, max_bytes)
            return _rows(expired) + _rows(extra)

        return await self._q(op)

    # ------------------------------------------------------------ retention

    async def count_prunable(self, before: float, *, statuses: tuple[str, ...] = ()) -> int:
        async def op(conn: Any) -> int:
            return int(
                await conn.fetchval(
                    "SELECT count(*) FROM workflow_executions WHERE finished_at IS NOT NULL "
                    "AND finished_at < $1 AND (cardinality($2::text[]) = 0 OR status = ANY($2))",
                    before,
                    list(statuses),
                )
            )

        return await self._q(op, write=False)

    async def prune(
        self, before: float, *, statuses: tuple[str, ...] = (), batch: int = 500
    ) -> int:
        wanted = list(statuses)

        async def op(conn: Any) -> int:
            rows = await conn.fetch(
                "SELECT id FROM workflow_executions WHERE finished_at IS NOT NULL "
                "AND finished_at < $1 AND (cardinality($2::text[]) = 0 OR status = ANY($2)) "
                "LIMIT $3",
                before,
                wanted,
                batch,
            )
            ids = [r[0] for r in rows]
            if ids:
                # (steps go with their execution: ON DELETE CASCADE)
                await conn.execute("DELETE FROM workflow_executions WHERE id = ANY($1)", ids)
            return len(ids)

        total = 0
        while True:
            # One batch per transaction: other work is committed between them.
            deleted = await self._q(op)
            total += deleted
            if deleted < batch:
                return total
            await trio.lowlevel.checkpoint()

    # ------------------------------------------------------------ maintenance

    async def migrate(self, to: int | None = None) -> list[str]:
        """Apply or roll back migrations (``corral migrate``): all of them in one
        transaction under an advisory lock, so two processes migrating at once
        are serialised and a failure leaves the schema as it was."""
        if self._pool is None:
            raise StoreError(f"the store {self.url} is closed")

        async def work() -> list[str]:
            async with self._pool.acquire() as conn:
                return await pg.migrate(conn, to)

        async with self._commits.lock:
            try:
                return await self._aio(work())
            except Exception as exc:
                raise self._error(exc) from None

    async def schema_version(self) -> int:
        if self._pool is None:
            raise StoreError(f"the store {self.url} is closed")

        async def work() -> int:
            async with self._pool.acquire() as conn:
                return await pg.read_version(conn)

        return await self._aio(work())


def _claim_fn(
    owner: str,
    now: float,
    until: float,
    limit: int | None,
    handlers: list[str] | None,
    queued: bool,
    start: float | None,
) -> Callable[[Any], Awaitable[list[str]]]:
    """The claim of :meth:`PostgresStore.claim_expired`, as an op."""
    have = sql.handler_set(handlers)
    args = (owner, until, start, start, start, now, owner, int(queued), have, have, limit)

    async def claim(conn: Any) -> list[str]:
        return sorted(r[0] for r in await conn.fetch(pg.CLAIM, *args))

    return claim


async def _read_executions(conn: Any, ids: list[str]) -> list[ExecutionRecord]:
    """Executions with their steps, in the order of ``ids`` (unknown ones left
    out): two queries, whatever their number."""
    rows = await conn.fetch(
        f"SELECT {sql.EXEC_COLUMNS} FROM workflow_executions WHERE id = ANY($1)", ids
    )
    steps: dict[str, list[StepRecord]] = {}
    for s in await conn.fetch(
        f"SELECT execution_id, {sql.STEP_COLUMNS} FROM step_executions "
        "WHERE execution_id = ANY($1) ORDER BY execution_id, position",
        ids,
    ):
        steps.setdefault(s[0], []).append(sql.step(tuple(s)[1:]))
    by_id = {row[0]: sql.execution(row, steps.get(row[0], [])) for row in rows}
    return [by_id[i] for i in ids if i in by_id]
