"""The ``Store`` protocol: domain operations on executions, not SQL.

Every backend (memory now; SQLite and PostgreSQL next) implements this, and one
test-suite parametrized over backends checks them all. Records passed in are
snapshots: a store never keeps a reference to an object the engine will go on
mutating.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import msgspec

from corral.model import ErrorInfo, ExecutionRecord, ExecutionStatus, StepRecord

__all__ = ["CacheEntry", "Store"]


class CacheEntry(msgspec.Struct):
    key: str
    value: Any
    created_at: float
    expires_at: float | None = None


@runtime_checkable
class Store(Protocol):
    """Where executions are tracked."""

    url: str

    async def open(self) -> None:
        """Connect and prepare (migrate) the store."""

    async def close(self) -> None:
        """Flush pending writes and release resources."""

    async def create_execution(self, record: ExecutionRecord) -> tuple[ExecutionRecord, bool]:
        """Insert a new execution with its step records.

        If ``record.key`` is set and an execution with that key exists, nothing
        is inserted and ``(existing, False)`` is returned; otherwise
        ``(record, True)``. This is the one place idempotency is decided, so it
        holds across processes for shared stores.
        """
        ...

    async def start_execution(self, execution_id: str, owner: str, started_at: float) -> None:
        """Mark an execution ``running`` under ``owner``."""

    async def record_step(self, execution_id: str, step: StepRecord) -> None:
        """Upsert one step's record."""

    async def finish_execution(
        self,
        execution_id: str,
        status: ExecutionStatus,
        *,
        result: Any,
        error: ErrorInfo | None,
        finished_at: float,
    ) -> None:
        """Write an execution's terminal status."""

    async def get_execution(self, execution_id: str) -> ExecutionRecord:
        """The execution with its steps; raises ``ExecutionNotFound``."""
        ...

    async def find_by_key(self, key: str) -> ExecutionRecord | None:
        """The execution submitted with idempotency key ``key``, if any."""
        ...

    async def list_executions(
        self,
        *,
        status: str | None = None,
        workflow: str | None = None,
        limit: int = 100,
    ) -> list[ExecutionRecord]:
        """Executions, newest first, without their step records."""
        ...

    async def get_cache(self, key: str, now: float) -> CacheEntry | None:
        """A live (unexpired) cache entry."""
        ...

    async def put_cache(self, entry: CacheEntry) -> None:
        """Store a cache entry (replacing any with the same key)."""
