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
"""

from __future__ import annotations

import contextlib
import logging
import time
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any, TypeVar, cast

import trio

from corral.core.errors import ExecutionNotFound, LeaseLost, StoreError
from corral.core.model import TERMINAL_STEP, ErrorInfo, ExecutionRecord, ExecutionStatus, StepRecord
from corral.core.status import UNFINISHED
from corral.storage import migrate as migrations
from corral.storage import rules, sql
from corral.storage.base import CacheEntry, DefinitionRecord
from corral.storage.batched import BatchedStore, WriteFn
from corral.storage.group_commit import Op, wake
from corral.storage.pg_bulk import FINISH, INSERT, START, STEP, Bulk, bulk_of, run_bulk

__all__ = ["PostgresStore", "parse_url"]

log = logging.getLogger("corral.store")

T = TypeVar("T")

MIN_SERVER_VERSION = 14
#: A number of corral's own for the advisory lock that serialises migrations.
_MIGRATE_LOCK = 0x636F7272616C  # "corral"
_OPTIONS = {"pool_size", "statement_timeout", "connect_timeout", "sslmode"}
_SSLMODES = {"disable", "allow", "prefer", "require", "verify-ca", "verify-full"}
_UNFINISHED = list(UNFINISHED)

q = sql.numbered  # statements are written with ?, PostgreSQL numbers them


class Settings:
    """A parsed PostgreSQL URL: where to connect and how, password kept apart."""

    def __init__(self, url: str) -> None:
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme not in ("postgresql", "postgres"):
            raise StoreError(f"not a PostgreSQL URL: {redact(url)!r}")
        try:
            port = parsed.port
        except ValueError:
            raise StoreError(f"store URL {redact(url)!r}: the port is not a number") from None
        self.host = parsed.hostname or "localhost"
        self.port = port or 5432
        self.user = urllib.parse.unquote(parsed.username) if parsed.username else None
        self.password = urllib.parse.unquote(parsed.password) if parsed.password else None
        self.database = urllib.parse.unquote(parsed.path.lstrip("/")) or None
        if parsed.fragment:
            raise StoreError(f"store URL {redact(url)!r}: a '#' has no meaning here")
        query = urllib.parse.parse_qs(parsed.query, keep_blank_values=True)
        unknown = sorted(set(query) - _OPTIONS)
        if unknown:
            raise StoreError(
                f"store URL {redact(url)!r}: unknown option(s) {', '.join(unknown)}; "
                f"supported: {', '.join(sorted(_OPTIONS))}"
            )
        self.pool_size = int(_number(url, query, "pool_size", 10, 1, 1000))
        self.statement_timeout = _number(url, query, "statement_timeout", 60.0, 0.001, 86_400)
        self.connect_timeout = _number(url, query, "connect_timeout", 10.0, 0.001, 3600)
        self.sslmode = query.get("sslmode", [None])[-1]
        if self.sslmode is not None and self.sslmode not in _SSLMODES:
            raise StoreError(
                f"store URL {redact(url)!r}: sslmode={self.sslmode!r}; expected one of "
                f"{', '.join(sorted(_SSLMODES))}"
            )
        self.shown = redact(url)
        self.where = f"{self.host}:{self.port}" + (f"/{self.database}" if self.database else "")


def _number(
    url: str, query: dict[str, list[str]], name: str, default: float, low: float, high: float
) -> float:
    if name not in query:
        return default
    text = query[name][-1]
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not low <= value <= high:
        raise StoreError(
            f"store URL {redact(url)!r}: {name}={text!r} must be a number from {low:g} to {high:g}"
        )
    return value


def redact(url: str) -> str:
    """``url`` with its password shown as ``***``."""
    try:
        parsed = urllib.parse.urlsplit(url)
        if parsed.password is None:
            return url
        user = parsed.username or ""
        host = parsed.netloc.rpartition("@")[2]
        return urllib.parse.urlunsplit(parsed._replace(netloc=f"{user}:***@{host}"))
    except ValueError:
        return "postgresql://(an unreadable URL)"


def parse_url(url: str) -> Settings:
    return Settings(url)


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
                    self._check_version(await _read_version(conn))
                return
            self.migrations_done = await _migrate(conn, None)

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
                    if not await _apply(conn, batch, guard=False):
                        # An op failed in a way that aborted the transaction, or
                        # after it may have written: the batch again, each op in
                        # a savepoint of its own (rare; savepoints cost a round
                        # trip each, so they are not paid up front).
                        await tx.rollback()
                        for op in batch:
                            op.result = op.error = None
                        tx = conn.transaction()
                        await tx.start()
                        await _apply(conn, batch, guard=True)
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

    def _insert_fn(self, record: ExecutionRecord, state: list[Any]) -> WriteFn:
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
            done = await conn.execute(_INSERT_EXECUTION, *values())
            if _rows(done) == 0:
                found = await conn.fetchval(
                    "SELECT id FROM workflow_executions WHERE idempotency_key = $1", r.key
                )
                return await _get_execution(conn, found), False
            if r.steps:
                await conn.execute(_INSERT_STEPS, r.id, *steps)
            if reused:
                await conn.executemany(_STEP_REUSED, reused)
            if state[1] is None and r.parent_id is None:
                await conn.execute(_NOTIFY)  # queued: wake a worker (sent at commit)
            return record, True

        if r.key is not None or reused:
            # the insert decides idempotency, or reused steps are written with
            # it: statements of its own
            return op
        step_rows = [
            (r.id, s.step_id, i, s.handler, s.status, s.attempts, s.workflow)
            for i, s in enumerate(r.steps)
        ]
        return Bulk(
            INSERT,
            lambda: (values(), step_rows, state[1] is None and r.parent_id is None),
            op,
            key=record,
        )

    def _start_fn(self, execution_id: str, owner: str, started_at: float, claim: bool) -> WriteFn:
        statement = _START_CLAIM if claim else _START

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
                await conn.execute(_STEP_UPDATE, *values)
                return
            done = await conn.execute(_STEP_FENCED, *values, execution_id, owner)
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
                await conn.execute(_FINISH, *values)
                return
            done = await conn.execute(_FINISH_FENCED, *values, owner)
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
                    return await _definition(conn, found)
                await conn.execute(
                    "UPDATE workflow_definitions SET registered = 1, created_at = $1 "
                    "WHERE digest = $2",
                    d.created_at,
                    d.digest,
                )
            return await _definition(conn, d.digest)

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
            return None if digest is None else await _definition(conn, digest)

        return await self._q(op, write=False)

    async def get_definition_by_digest(self, digest: str) -> DefinitionRecord | None:
        async def op(conn: Any) -> DefinitionRecord | None:
            try:
                return await _definition(conn, digest)
            except KeyError:
                return None

        return await self._q(op, write=False)

    async def list_definitions(self, name: str | None = None) -> list[DefinitionRecord]:
        async def op(conn: Any) -> list[DefinitionRecord]:
            rows = await conn.fetch(_DEFINITIONS, name, name)
            return [DefinitionRecord(r[0], r[1], r[2], bytes(r[3]), r[4]) for r in rows]

        return await self._q(op, write=False)

    # ------------------------------------------------------------ reads

    async def get_execution(self, execution_id: str) -> ExecutionRecord:
        return await self._q(lambda conn: _get_execution(conn, execution_id), write=False)

    async def get_executions(self, execution_ids: list[str]) -> list[ExecutionRecord]:
        ids = list(execution_ids)

        async def op(conn: Any) -> list[ExecutionRecord]:
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

        return await self._q(op, write=False)

    async def find_ids(self, prefix: str, limit: int = 10) -> list[str]:
        async def op(conn: Any) -> list[str]:
            return [r[0] for r in await conn.fetch(_FIND_IDS, len(prefix), prefix, limit)]

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
            return None if found is None else await _get_execution(conn, found)

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
            rows = await conn.fetch(_RENEW, until, owner)
            return sorted(r[0] for r in rows if r[1])

        return await self._q(op)

    async def lost(self, owner: str, execution_ids: list[str]) -> list[str]:
        if not execution_ids:
            return []
        ids = list(execution_ids)

        async def op(conn: Any) -> list[str]:
            rows = await conn.fetch(_LOST, ids, owner)
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
    ) -> list[str]:
        have = sql.handler_set(handlers)

        async def op(conn: Any) -> list[str]:
            rows = await conn.fetch(
                _CLAIM, owner, until, now, owner, int(queued), have, have, limit
            )
            return sorted(r[0] for r in rows)

        return await self._q(op, atomic=True)

    async def claim_one(self, execution_id: str, owner: str, now: float, until: float) -> bool:
        async def op(conn: Any) -> bool:
            row = await conn.fetchrow(_CLAIM_ONE, owner, until, execution_id, now, owner)
            return row is not None

        return await self._q(op, atomic=True)

    async def cancel_requests(self, owner: str) -> list[str]:
        async def op(conn: Any) -> list[str]:
            return sorted(r[0] for r in await conn.fetch(_CANCEL_REQUESTS, owner))

        return await self._q(op, write=False)

    async def release(self, owner: str) -> list[str]:
        async def op(conn: Any) -> list[str]:
            rows = await conn.fetch(_RELEASE, owner)
            if rows:
                await conn.execute(_NOTIFY)
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
            await conn.add_listener(_CHANNEL, self._notified)
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
            record = await _get_execution(conn, execution_id, lock=True)
            if rules.unfinished(record):
                if rules.lease_held(record, now):
                    await conn.execute(
                        "UPDATE workflow_executions SET cancel_requested = 1 WHERE id = $1",
                        execution_id,
                    )
                    await conn.execute(_NOTIFY)  # its engine hears it at commit
                else:
                    error = ErrorInfo("WorkflowCancelled", "cancelled while no engine ran it")
                    await _cancel(conn, [execution_id], sql.blob(error), now, None)
                record = await _get_execution(conn, execution_id)
            return record

        return await self._q(op)

    async def request_cancel_many(self, execution_ids: list[str], now: float) -> list[str]:
        ids = list(execution_ids)
        error = sql.blob(ErrorInfo("WorkflowCancelled", "cancelled while no engine ran it"))

        async def op(conn: Any) -> list[str]:
            flagged = [r[0] for r in await conn.fetch(_REQUEST_CANCELS, ids, now)]
            if flagged:
                await conn.execute(_NOTIFY)  # their engines hear it at commit
            orphans = [r[0] for r in await conn.fetch(_ORPHANS_AMONG, ids, now)]
            cancelled = await _cancel(conn, orphans, error, now, None) if orphans else []
            return sorted([*flagged, *cancelled])

        return await self._q(op)

    async def pause(self, workflow: str, now: float) -> bool:
        async def op(conn: Any) -> bool:
            done = _rows(await conn.execute(_PAUSE, workflow, now)) > 0
            await conn.execute(_NOTIFY)  # engines look at the pauses again
            return done

        return await self._q(op)

    async def unpause(self, workflow: str) -> bool:
        async def op(conn: Any) -> bool:
            done = _rows(await conn.execute(_UNPAUSE, workflow)) > 0
            await conn.execute(_NOTIFY)  # held work may be claimed now
            return done

        return await self._q(op)

    async def paused(self) -> dict[str, float]:
        async def op(conn: Any) -> dict[str, float]:
            return {r[0]: r[1] for r in await conn.fetch(_PAUSED)}

        return await self._q(op, write=False)

    async def cancel_execution(
        self, execution_id: str, reason: str, now: float, *, owner: str | None = None
    ) -> bool:
        blob = sql.blob(ErrorInfo("WorkflowCancelled", reason))
        done = await self._q(lambda conn: _cancel(conn, [execution_id], blob, now, owner))
        return bool(done)

    async def cancel_unstarted(
        self, execution_ids: list[str], owner: str, error: ErrorInfo, now: float
    ) -> list[str]:
        blob = sql.blob(error)
        # One transaction, one statement for all (an array parameter).
        return await self._q(lambda conn: _cancel(conn, list(execution_ids), blob, now, owner))

    async def cancel_descendants(self, execution_id: str, now: float) -> int:
        return await self._q(lambda conn: _cancel_descendants(conn, [execution_id], now))

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
                return await _migrate(conn, to)

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
                return await _read_version(conn)

        return await self._aio(work())


# ---------------------------------------------------------------- statements

_INSERT_EXECUTION = (
    f"INSERT INTO workflow_executions ({sql.EXEC_COLUMNS}) VALUES "
    "($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, "
    "$20) ON CONFLICT (idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING"
)
_INSERT_STEPS = (
    "INSERT INTO step_executions "
    "(execution_id, step_id, position, handler, status, attempts, workflow) "
    "SELECT $1, * FROM unnest($2::text[], $3::int[], $4::text[], $5::text[], $6::int[], "
    "$7::text[])"
)
_START = (
    "UPDATE workflow_executions SET status = 'running', owner = $1, started_at = $2 "
    "WHERE id = $3 AND finished_at IS NULL AND (owner IS NULL OR owner = $1)"
)
_START_CLAIM = (
    "UPDATE workflow_executions SET status = 'running', owner = $1, started_at = $2 "
    "WHERE id = $3 AND finished_at IS NULL"
)
_STEP_UPDATE = q(sql.STEP_UPDATE)
_STEP_REUSED = q(sql.STEP_REUSED)
_STEP_FENCED = q(sql.STEP_UPDATE + sql.STEP_FENCE)
_FINISH = (
    "UPDATE workflow_executions SET status = $1, result = $2, error = $3, finished_at = $4, "
    "lease_expires_at = NULL WHERE id = $5"
)
_FINISH_FENCED = _FINISH + " AND owner = $6"
_RENEW = q(
    "UPDATE workflow_executions SET lease_expires_at = ? WHERE owner = ? "
    f"AND {rules.UNFINISHED_SQL} RETURNING id, cancel_requested = 1"
)
_LOST = q(f"SELECT id FROM workflow_executions WHERE id = ANY(?) AND {rules.NOT_OWNED_SQL}")
_CLAIM = q(
    "UPDATE workflow_executions SET owner = ?, lease_expires_at = ? WHERE id IN "
    f"(SELECT id FROM workflow_executions WHERE {rules.CLAIMABLE_SQL} "
    "AND (?::int = 1 OR owner IS NOT NULL) "
    "AND (?::jsonb IS NULL OR handlers IS NULL OR handlers::jsonb <@ ?::jsonb) "
    f"ORDER BY {rules.CLAIM_ORDER_SQL} LIMIT ? FOR UPDATE SKIP LOCKED) RETURNING id"
)
_CANCEL_REQUESTS = q(sql.CANCEL_REQUESTS)
_DEFINITIONS = q(sql.DEFINITIONS)
_CLAIM_ONE = q(sql.CLAIM_ONE)
_FIND_IDS = q(sql.FIND_IDS)
_RELEASE = q(sql.RELEASE)
_PAUSE = q(sql.PAUSE)
_UNPAUSE = q(sql.UNPAUSE)
_PAUSED = q(sql.PAUSED)
_REQUEST_CANCELS = (
    "UPDATE workflow_executions SET cancel_requested = 1 WHERE id = ANY($1::text[]) "
    f"AND {rules.UNFINISHED_SQL} AND lease_expires_at >= $2 RETURNING id"
)
_ORPHANS_AMONG = (
    f"SELECT id FROM workflow_executions WHERE id = ANY($1::text[]) AND {rules.UNFINISHED_SQL} "
    "AND (lease_expires_at IS NULL OR lease_expires_at < $2) FOR UPDATE"
)
#: The channel workers LISTEN on: work was queued, released, or a cancel asked for.
_CHANNEL = "corral"
_NOTIFY = f"NOTIFY {_CHANNEL}"


async def _definition(conn: Any, digest: str) -> DefinitionRecord:
    row = await conn.fetchrow(
        "SELECT name, version, digest, spec, created_at FROM workflow_definitions "
        "WHERE digest = $1",
        digest,
    )
    if row is None:
        raise KeyError(digest)
    return DefinitionRecord(row[0], row[1], row[2], bytes(row[3]), row[4])


async def _get_execution(conn: Any, execution_id: str, *, lock: bool = False) -> ExecutionRecord:
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


async def _cancel(
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
        await conn.execute(_CANCEL_STEPS, now, changed, _UNFINISHED)
        await _cancel_descendants(conn, changed, now)
    return changed


_CANCEL_STEPS = (
    "UPDATE step_executions SET status = 'cancelled', finished_at = $1 "
    "WHERE execution_id = ANY($2) AND status = ANY($3)"
)


async def _cancel_descendants(conn: Any, parents: list[str], now: float) -> int:
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
        await conn.execute(_CANCEL_STEPS, now, ids, _UNFINISHED)
    return len(ids)


async def _apply(conn: Any, batch: list[Op], *, guard: bool) -> bool:
    """Run a batch's ops in order in the open transaction. A failing op gets
    its error and the others go on, as long as the transaction is intact: a
    database error aborts a PostgreSQL transaction, and a compound op may
    have written before it failed, so either returns False unguarded (the
    caller starts over, guarded: a savepoint per op). An op alone needs
    neither: its failure rolls the whole transaction back."""
    alone = len(batch) == 1
    if not guard and not alone:
        return await _apply_fast(conn, batch)
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


async def _apply_fast(conn: Any, batch: list[Op]) -> bool:
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
                await run_bulk(conn, batch[i:j], _NOTIFY)
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


_BOOTSTRAP = (
    "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
    "name TEXT NOT NULL, checksum TEXT NOT NULL, applied_at DOUBLE PRECISION NOT NULL)"
)


async def _read_version(conn: Any) -> int:
    exists = await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")
    if not exists:
        return 0
    return int(await conn.fetchval("SELECT coalesce(max(version), 0) FROM schema_migrations"))


async def _migrate(conn: Any, to: int | None) -> list[str]:
    """Asyncio side: bring the schema to ``to`` in one transaction, holding an
    advisory lock (a second process waits, then finds nothing to do)."""
    known = migrations.migrations("postgres")
    done: list[str] = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATE_LOCK)
        await conn.execute(_BOOTSTRAP)
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
