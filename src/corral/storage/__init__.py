"""Stores: where executions are tracked. ``open_store(url)`` picks a backend.

URLs:

- ``sqlite:///abs/path/corral.db`` or ``sqlite://relative/path.db``: a SQLite
  file (the default backend);
- ``sqlite://`` (or ``sqlite:///``): the per-user default file,
  ``$XDG_DATA_HOME/corral/corral.db`` (``~/.local/share/corral/corral.db``);
- ``memory://``: in memory, gone with the process;
- ``postgresql://user:password@host:port/database`` (or ``postgres://``):
  PostgreSQL, shared by many processes on many machines (needs the
  ``postgres`` extra: ``pip install 'corral[postgres]'``); options
  ``?pool_size=10&statement_timeout=60&connect_timeout=10&sslmode=...``.

With no URL, ``$CORRAL_STORE`` is used if set, else the per-user SQLite file.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from corral.core.errors import StoreError, UsageError
from corral.core.model import ExecutionRecord
from corral.core.status import EXECUTION_STATUSES
from corral.storage.base import CacheEntry, DefinitionRecord, Store
from corral.storage.memory import MemoryStore
from corral.storage.pg_url import redact
from corral.storage.sqlite import SQLiteStore, default_path

if TYPE_CHECKING:
    from corral.storage.postgres import PostgresStore

__all__ = [
    "CacheEntry",
    "DefinitionRecord",
    "MemoryStore",
    "PostgresStore",
    "SQLiteStore",
    "Store",
    "default_store_url",
    "lifetime",
    "open_store",
    "select",
]

DURABILITY = ("step", "none")


def __getattr__(name: str) -> Any:
    # The PostgreSQL store's module is loaded when it is used: a process on
    # the embedded SQLite default never pays for it.
    if name == "PostgresStore":
        from corral.storage.postgres import PostgresStore

        return PostgresStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def default_store_url() -> str:
    """``$CORRAL_STORE``, or the per-user SQLite file."""
    return os.environ.get("CORRAL_STORE") or "sqlite://"


def open_store(
    url: str | Store | None = None,
    *,
    durability: str = "step",
    create: bool = True,
    migrate: bool | None = True,
    readonly: bool = False,
    init: bool = False,
) -> Store:
    """A store for ``url`` (not yet opened; call ``await store.open()``).

    ``create=False`` refuses to create a missing SQLite file (for commands
    that only read). ``migrate=False`` refuses a database whose schema is not
    the newest instead of migrating it; ``migrate=None`` opens it as it is
    (for ``corral migrate``). ``readonly`` opens a SQLite file read-only
    (it must exist and be corral's: ``corral list``/``show``). A SQLite file
    that holds other tables but not corral's is refused, unchanged, unless
    ``init`` (then corral's tables are added next to them). Errors are
    :class:`corral.StoreError` naming the URL.
    """
    if durability not in DURABILITY:
        raise StoreError(f"unknown durability {durability!r}; expected one of: step, none")
    if url is None:
        url = default_store_url()
    if not isinstance(url, str):
        if isinstance(url, Store):
            return url
        raise StoreError(f"expected a store URL or a Store, got {type(url).__name__}")
    if "://" not in url:
        raise StoreError(
            f"store URL {redact(url)!r} has no scheme; expected sqlite:///path/to/file.db or memory://"
        )
    scheme, _, rest = url.partition("://")
    if scheme == "memory":
        return MemoryStore(url, durability=durability)
    if scheme == "sqlite":
        if "?" in rest or "#" in rest:
            raise StoreError(f"store URL {url!r}: options are not supported in a sqlite URL")
        if rest in ("", "/"):
            path = default_path()
            if create:
                try:
                    path.parent.mkdir(parents=True, exist_ok=True)
                except OSError as exc:
                    raise StoreError(f"cannot create {path.parent}: {exc.strerror}") from None
        elif rest == "/:memory:" or rest == ":memory:":
            raise StoreError("use memory:// for an in-memory store")
        else:
            path = Path(rest)
        return SQLiteStore(
            url,
            path,
            durability=durability,
            create=create,
            auto_migrate=bool(migrate) and not readonly,
            check_schema=migrate is not None,
            readonly=readonly,
            init=init,
        )
    if scheme in ("postgresql", "postgres"):
        try:
            import asyncpg  # noqa: F401
            import trio_asyncio  # noqa: F401
        except ImportError:
            raise StoreError(
                "the PostgreSQL store needs asyncpg and trio-asyncio: "
                "pip install 'corral[postgres]'"
            ) from None
        from corral.storage.postgres import PostgresStore

        return PostgresStore(
            url,
            durability=durability,
            auto_migrate=bool(migrate) and not readonly,
            check_schema=migrate is not None,
            readonly=readonly,
            init=init,
        )
    raise StoreError(
        f"unknown store scheme {scheme!r} in {redact(url)!r}; "
        "supported: sqlite://, postgresql://, memory://"
    )


@contextlib.asynccontextmanager
async def lifetime(store: Store) -> AsyncIterator[None]:
    """What a store needs around its whole life, from ``open`` to ``close``
    (the PostgreSQL store: an asyncio loop under Trio); nothing for others.
    ``open_engine`` and the CLI enter it; code that opens a store itself
    should too."""
    enter = getattr(store, "lifetime", None)
    if enter is None:
        yield
        return
    try:
        async with enter():
            yield
    except BaseExceptionGroup as group:
        # The loop's nursery wraps what the body raised: give it back as it was.
        exc: BaseException = group
        while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
            exc = exc.exceptions[0]
        if exc is group:
            raise
        raise exc from None


#: Rows per page when :func:`select` lists what a bulk operation acts on.
_PAGE = 1000


async def select(
    store: Store,
    *,
    status: str | Sequence[str] | None = None,
    workflow: str | None = None,
    since: float | None = None,
    limit: int | None = None,
) -> list[ExecutionRecord]:
    """Top-level executions that match, newest first, without their step
    records: what a bulk operation (``corral cancel --workflow W``, ``corral
    retry --status failed``) acts on. ``status``: one or several; ``since``:
    created at or after (epoch seconds); ``limit``: at most that many."""
    statuses: list[str | None] = (
        [status] if isinstance(status, str) else list(status) if status else [None]
    )
    for one in statuses:
        if one is not None and one not in EXECUTION_STATUSES:
            raise UsageError(
                f"unknown status {one!r}; one of {', '.join(sorted(EXECUTION_STATUSES))}"
            )
    if limit is not None and (not isinstance(limit, int) or limit < 1):
        raise UsageError(f"limit must be a positive integer, got {limit!r}")
    found: list[ExecutionRecord] = []
    for one in statuses:
        before: tuple[float, str] | None = None
        while limit is None or len(found) < limit:
            page = await store.list_executions(
                status=one,
                workflow=workflow,
                since=since,
                before=before,
                top_level=True,
                limit=_PAGE,
            )
            found.extend(page)
            if len(page) < _PAGE:
                break
            before = (page[-1].created_at, page[-1].id)
    found.sort(key=lambda r: (r.created_at, r.id), reverse=True)
    return found if limit is None else found[:limit]
