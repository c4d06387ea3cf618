"""The ``Store`` protocol: domain operations on executions, not SQL.

Every backend (memory, SQLite; PostgreSQL later) implements this, and one
test-suite parametrized over backends checks them all. Records passed in are
snapshots: a store never keeps a reference to an object the engine will go on
mutating, and never hands out one it keeps.

Ownership and leases: the engine that creates or claims an execution owns it
and renews a lease on everything it owns (``renew_leases``). Another engine
may take over an execution only once its lease has expired
(``claim_expired``), which makes a claim safe between processes and machines:
the claim is one atomic update.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import msgspec

from corral.core.model import ErrorInfo, ExecutionRecord, ExecutionStatus, StepRecord

__all__ = ["CacheEntry", "DefinitionRecord", "Store"]


class CacheEntry(msgspec.Struct):
    """A cached step result: ``value`` is JSON-encoded."""

    key: str
    value: bytes
    created_at: float
    expires_at: float | None = None


class DefinitionRecord(msgspec.Struct):
    """A stored workflow definition: the spec as canonical JSON."""

    name: str
    version: str
    digest: str
    spec: bytes
    created_at: float


@runtime_checkable
class Store(Protocol):
    """Where executions, definitions and cached results are kept."""

    url: str

    async def open(self) -> None:
        """Connect and prepare (migrate) the store."""

    async def close(self) -> None:
        """Flush pending writes and release resources (idempotent)."""

    async def run(self) -> None:
        """Background work (a batching writer), run in the engine's nursery until
        ``close``; returns at once for stores that need none."""

    # ------------------------------------------------------------ definitions

    async def put_definition(
        self, definition: DefinitionRecord, *, register: bool = False
    ) -> DefinitionRecord:
        """Store a spec by content hash (idempotent). With ``register``, also make
        it the definition of its (name, version) unless another digest already
        is; return the stored definition (the caller compares digests)."""
        ...

    async def get_definition(
        self, name: str, version: str | None = None
    ) -> DefinitionRecord | None:
        """A registered definition by name and version (``None``: the newest)."""
        ...

    async def get_definition_by_digest(self, digest: str) -> DefinitionRecord | None:
        """A definition by content hash (used to resume executions)."""
        ...

    async def list_definitions(self, name: str | None = None) -> list[DefinitionRecord]:
        """Registered definitions (of ``name``, or of every workflow), by name,
        each name's newest version first."""
        ...

    # ------------------------------------------------------------ executions

    async def create_execution(
        self, record: ExecutionRecord, *, wait: bool = True
    ) -> tuple[ExecutionRecord, bool]:
        """Insert a new execution with its step records.

        If ``record.key`` is set and an execution with that key exists, nothing
        is inserted and ``(existing, False)`` is returned; otherwise
        ``(record, True)``. This is the one place idempotency is decided, so it
        holds across processes for shared stores.

        ``wait=False`` (only honoured without a key) may return before the
        insert is durable, as long as it is durable before any operation
        issued after it (starting the execution, reading it) takes effect and
        a failed insert makes ``start_execution`` raise :class:`StoreError`.
        """
        ...

    async def wait_created(self, execution_id: str) -> None:
        """Return once the insert of an execution created with ``wait=False``
        is durable; raise :class:`StoreError` if it failed. The engine calls it
        before the execution's first step runs, so nothing runs that a crash
        could forget. Immediate for any other execution."""

    async def start_execution(
        self,
        execution_id: str,
        owner: str,
        started_at: float,
        *,
        claim: bool = False,
        wait: bool = True,
    ) -> None:
        """Mark an unfinished execution ``running`` under ``owner``, which must own
        it already (it created or claimed it) unless ``claim`` (a child execution
        its parent step takes up); else :class:`LeaseLost`. ``wait=False`` (an
        execution this owner created moments ago, which no one else can have
        claimed) may return before the write is durable."""

    # Status writes (start_execution, record_step, finish_execution) are not
    # interrupted by the caller's cancellation: once called, a write runs to
    # its end (or its error) and the cancellation takes effect afterwards.
    # The engine relies on this instead of a shielded scope per write.

    async def record_step(
        self,
        execution_id: str,
        step: StepRecord,
        *,
        owner: str | None = None,
        wait: bool = True,
    ) -> None:
        """Update one step's record. A terminal step record is durable (committed)
        when this returns, so its dependents may start; a ``running`` record may
        be written later, with the next batch. With ``owner``, the write only
        happens while ``owner`` owns the execution; a terminal write that finds
        another owner raises :class:`corral.core.errors.LeaseLost` (fencing).
        ``wait=False``: a terminal record too may be written with the next
        batch (before any operation issued after it), for a step nothing
        depends on; a fencing failure then surfaces at the execution's finish."""

    async def finish_execution(
        self,
        execution_id: str,
        status: ExecutionStatus,
        *,
        result: Any,
        error: ErrorInfo | None,
        finished_at: float,
        owner: str | None = None,
    ) -> None:
        """Write an execution's terminal status (and release its lease). With
        ``owner``, only while ``owner`` owns it, else :class:`LeaseLost`."""

    async def get_execution(self, execution_id: str) -> ExecutionRecord:
        """The execution with its steps; raises ``ExecutionNotFound``."""
        ...

    async def get_executions(self, execution_ids: list[str]) -> list[ExecutionRecord]:
        """Several executions with their steps, in the order asked; unknown ids
        are left out (a worker reading what it just claimed: one round trip)."""
        ...

    async def find_ids(self, prefix: str, limit: int = 10) -> list[str]:
        """Ids of executions that start with ``prefix`` (at most ``limit``)."""
        ...

    async def find_by_key(self, key: str) -> ExecutionRecord | None:
        """The execution submitted with idempotency key ``key``, if any."""
        ...

    async def find_child(self, parent_id: str, parent_step: str) -> ExecutionRecord | None:
        """The newest child execution started by step ``parent_step`` of ``parent_id``."""
        ...

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
        """Executions, newest first (ties of ``created_at`` by id, descending),
        without their step records; ``before``: only those after the row
        ``(created_at, id)`` in that order (the next page); ``top_level``:
        not the child executions of a workflow step; ``since``: created at or
        after; ``retry_of``: the retries of that execution."""
        ...

    # ------------------------------------------------------------ ownership

    async def renew_leases(self, owner: str, until: float) -> list[str]:
        """Extend the lease of every unfinished execution ``owner`` holds; return
        the ids among them whose cancellation was requested."""
        ...

    async def lost(self, owner: str, execution_ids: list[str]) -> list[str]:
        """Those of ``execution_ids`` that ``owner`` no longer owns (taken over)."""
        ...

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
        """Take over unfinished top-level executions that no live engine holds
        (queued by a client, released by a stopping worker, or whose lease
        expired before ``now``), highest priority first, then oldest; at most
        ``limit``; with ``handlers``, only those whose handlers are all among
        them; with ``queued=False``, only orphans of an engine (not work
        queued or released for workers, which has no owner). With ``start``,
        those that never started are marked ``running`` at ``start`` in the
        same statement (a claimer that starts them at once writes no start
        of its own). Return their ids. Atomic: two engines never claim the
        same one."""
        ...

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
        """:meth:`claim_expired`, answered with the claimed executions (with
        their steps, ordered by id) instead of their ids: a claimer that runs
        what it claims reads them in the same round trip."""
        ...

    async def claim_one(self, execution_id: str, owner: str, now: float, until: float) -> bool:
        """Take over one execution if :meth:`claim_expired` could (and it has
        an owner: an orphan, not queued work); whether it was taken."""
        ...

    async def cancel_requests(self, owner: str) -> list[str]:
        """The unfinished executions ``owner`` holds whose cancellation was
        requested (cheap: asked every time :meth:`wait_signal` returns)."""
        ...

    async def release(self, owner: str) -> list[str]:
        """Give up every unfinished execution ``owner`` holds (a worker that
        stops before finishing them): no owner, no lease, so another engine
        claims them at once and resumes them. Returns their ids."""
        ...

    async def wait_signal(self) -> None:
        """Return when another process may have queued work or asked for a
        cancellation (PostgreSQL: LISTEN/NOTIFY; SQLite: the file changed,
        looked at every 50 ms). The caller bounds the wait (a cancel scope):
        a signal may be missed (a lost connection), so engines also look
        now and then without one."""

    async def cancel_execution(
        self, execution_id: str, reason: str, now: float, *, owner: str | None = None
    ) -> bool:
        """Cancel an execution nobody runs (queued, or resumed with a cancel
        requested) in one transaction: the execution ``cancelled`` with a
        ``WorkflowCancelled`` error saying ``reason``, its unfinished steps
        ``cancelled`` (``finished_at`` = ``now``) and its unfinished
        descendants too. Fenced by ``owner`` when given. False when nothing
        changed (finished already, or someone else's). Durable before it
        returns."""
        ...

    async def cancel_unstarted(
        self, execution_ids: list[str], owner: str, error: ErrorInfo, now: float
    ) -> list[str]:
        """Record executions that never started (still queued in ``owner``'s
        engine) ``cancelled`` with ``error``, their steps too, in bulk (an
        engine closing with 50,000 queued). Only those ``owner`` still holds
        and that have not finished are changed; returns their ids. Durable
        before it returns, whatever the durability."""
        ...

    async def cancel_descendants(self, execution_id: str, now: float) -> int:
        """Mark every unfinished child (grandchild …) execution of ``execution_id``
        and their unfinished steps ``cancelled``; returns how many executions."""
        ...

    async def request_cancel(self, execution_id: str, now: float) -> ExecutionRecord:
        """Ask for an execution to be cancelled. One that no live engine holds
        (never claimed, or its lease expired) is marked ``cancelled`` at once;
        one that is held is flagged for its owner. Returns the record."""
        ...

    async def request_cancel_many(self, execution_ids: list[str], now: float) -> list[str]:
        """:meth:`request_cancel` for many at once, in one transaction (a bulk
        ``corral cancel``): held ones flagged for their owners, the others
        cancelled at once. Returns the ids of those unfinished (flagged or
        cancelled); finished and unknown ids are left alone."""
        ...

    # ------------------------------------------------------------ pauses

    async def pause(self, workflow: str, now: float) -> bool:
        """Pause a workflow (``"*"``: every one): its queued executions are
        not claimed (:data:`corral.storage.rules.HELD_SQL`) and engines start
        none of them until :meth:`unpause`. False if it was paused already."""
        ...

    async def unpause(self, workflow: str) -> bool:
        """Lift a pause (False if there was none)."""
        ...

    async def paused(self) -> dict[str, float]:
        """The paused workflows and when each was paused."""
        ...

    # ------------------------------------------------------------ cache

    async def get_cache(self, key: str, now: float) -> CacheEntry | None:
        """A live (unexpired) cache entry."""
        ...

    async def put_cache(self, entry: CacheEntry) -> None:
        """Store a cache entry (replacing any with the same key)."""

    async def prune_cache(self, now: float, max_entries: int, max_bytes: int) -> int:
        """Delete expired entries, then the oldest beyond ``max_entries`` entries
        or ``max_bytes`` of values."""
        ...

    # ------------------------------------------------------------ retention

    async def count_prunable(self, before: float, *, statuses: tuple[str, ...] = ()) -> int:
        """How many executions :meth:`prune` would delete (``--dry-run``)."""
        ...

    async def prune(
        self, before: float, *, statuses: tuple[str, ...] = (), batch: int = 500
    ) -> int:
        """Delete finished executions (and their steps) that finished before ``before``
        (only those with one of ``statuses`` if given), ``batch`` rows per
        transaction so running workflows are never blocked for long; returns
        how many were deleted."""
        ...
