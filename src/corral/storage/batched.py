"""What a batching SQL store does with its writes, once for every backend.

SQLite and PostgreSQL both run their operations through a
:class:`~corral.storage.group_commit.GroupCommit`; this base class holds
what that means for the status writes, so a backend only says how one
write is done (its SQL) and how a batch is run (one transaction):

- a submission not waited for (``create_execution(wait=False)``) is queued;
  at most :data:`MAX_UNACKNOWLEDGED` such submissions may be uncommitted at
  once, and ``wait_created`` waits for one;
- a start that arrives while its execution's insert is still queued is
  folded into the insert (one write instead of two);
- a ``running`` step record is not queued: the store keeps the latest one
  of each step, and the writer writes those still running at the head of its
  next batch (one that ended meanwhile is written once, by its terminal
  record);
- a step record not waited for that failed is written again ahead of its
  execution's finish, so a finished execution never has a step left
  ``running``.

A backend's write functions take its connection (``fn(conn)``): a plain
function for SQLite (run in its connection thread), a coroutine function
for PostgreSQL (run on the asyncio side). This class never calls them.
"""

from __future__ import annotations

import collections
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

import trio
import trio.lowlevel

from corral.core.errors import LeaseLost, StoreError
from corral.core.model import TERMINAL_STEP, ErrorInfo, ExecutionRecord, ExecutionStatus, StepRecord
from corral.core.status import RUNNING
from corral.storage.group_commit import GroupCommit, Op, wait_for_op

__all__ = ["MAX_UNACKNOWLEDGED", "BatchedStore", "WriteFn"]

log = logging.getLogger("corral.store")

#: Submissions (without a key) that may have returned before their insert
#: was committed: the most a crash can lose (docs/architecture.md, Admission).
MAX_UNACKNOWLEDGED = 500
T = TypeVar("T")

WriteFn = Callable[[Any], Any]
"""One unit of work on a backend's connection, run inside a batch's transaction."""


class BatchedStore(ABC):
    """The status writes of a store that commits in batches. Subclasses give
    the SQL (``_insert_fn`` … ``_finish_fn``), ``_execute(batch)`` and
    ``_disconnect``; they set ``url`` and ``durability``."""

    url: str
    durability: str

    def __init__(self) -> None:
        self._commits = GroupCommit(self._execute, self._take_running)
        self._closed = False
        # Executions whose queued (not waited for) insert failed: rare, popped
        # when their start is refused.
        self._failed_creates: dict[str, BaseException] = {}
        # Queued inserts a start can still be folded into: id -> (op, [status,
        # owner, started_at]). Only saves work.
        self._unstarted: dict[str, tuple[Op, list[Any]]] = {}
        # `running` step records not yet taken by the writer: (execution id,
        # step id) -> (execution id, the run's own record, owner). Kept as state, not as
        # queued ops: most steps end before the writer's next batch, and then
        # only their terminal record is written (a `running` record is what
        # `corral show` and a takeover see, never what a dependent waits for).
        self._running: dict[tuple[str, str], tuple[str, StepRecord, str | None]] = {}
        # Inserts not waited for, until their execution's run waits for them
        # (wait_created); step records not waited for that failed, written
        # again ahead of their execution's finish.
        self._creating: dict[str, Op] = {}
        self._unacknowledged: collections.deque[Op] = collections.deque()
        self._failed_steps: dict[str, list[WriteFn]] = {}

    # ------------------------------------------------------------ the backend's part

    @abstractmethod
    async def _execute(self, batch: list[Op]) -> None:
        """Run ``batch`` in one transaction, setting each op's result or error."""

    @abstractmethod
    async def _disconnect(self) -> None:
        """Release the connection (after the last batch)."""

    @abstractmethod
    def _connected(self) -> bool:
        """Whether the connection is open (operations may run)."""

    @abstractmethod
    def _insert_fn(self, record: ExecutionRecord, state: list[Any]) -> tuple[WriteFn, bool]:
        """Insert ``record`` and its steps (unless its key exists: then return
        ``(existing, False)``); ``state`` is ``[status, owner, started_at]``,
        read when the write runs (a start folded in). With the write, whether
        it is atomic (one write statement: a failure leaves nothing behind)."""

    @abstractmethod
    def _start_fn(self, execution_id: str, owner: str, started_at: float, claim: bool) -> WriteFn:
        """Mark it running under ``owner`` (fenced unless ``claim``); LeaseLost
        when no row changed."""

    @abstractmethod
    def _step_fn(self, execution_id: str, step: StepRecord, owner: str | None) -> WriteFn:
        """Update one step row; with ``owner``, only while ``owner`` owns the
        execution (LeaseLost for a terminal record that finds another)."""

    @abstractmethod
    def _finish_fn(
        self,
        execution_id: str,
        status: ExecutionStatus,
        result: Any,
        error: ErrorInfo | None,
        finished_at: float,
        owner: str | None,
    ) -> WriteFn:
        """Write the terminal status and release the lease (fenced by ``owner``)."""

    # ------------------------------------------------------------ lifecycle

    async def run(self) -> None:
        """The group-commit writer (:class:`GroupCommit`): one transaction per
        batch of queued work. Whoever starts it must call :meth:`close`."""
        await self._commits.run()

    async def close(self) -> None:
        if self._closed:
            return
        await self._commits.stop()
        self._closed = True
        async with self._commits.lock:  # not while an op runs without the writer
            await self._disconnect()

    async def _call(
        self,
        fn: Callable[[Any], T],
        *,
        write: bool = True,
        wait: bool = True,
        on_error: Callable[[BaseException], None] | None = None,
        atomic: bool = False,
        shield: bool = False,
    ) -> T:
        """Run ``fn`` in a batch and return what it returned (for a backend
        whose ``fn`` is a coroutine function, what its coroutine returned)."""
        result: T = await self._run_op(Op(fn, write, on_error, atomic), wait, shield)
        return result

    async def _run_op(self, op: Op, wait: bool = True, shield: bool = False) -> Any:
        if self._commits.queue(op):  # (the common path, without submit's frame)
            if not wait:
                return None
            await wait_for_op(op, shield)
            if op.error is not None:
                raise op.error
            return op.result
        if self._closed or not self._connected():
            raise StoreError(f"the store {self.url} is closed")
        return await self._commits.submit(op, wait_for=wait, shield=shield)

    # ------------------------------------------------------------ status writes

    async def create_execution(
        self, record: ExecutionRecord, *, wait: bool = True
    ) -> tuple[ExecutionRecord, bool]:
        r = record
        # status, owner, started_at: a start folded in before the insert runs
        state: list[Any] = [r.status, r.owner, r.started_at]
        op, atomic = self._insert_fn(r, state)
        if wait or r.key is not None:  # idempotency is decided by the insert: wait for it
            result: tuple[ExecutionRecord, bool] = await self._call(op, atomic=atomic)
            return result
        # Queued, not waited for: it commits with the next batch, before any later
        # write or read (start_execution, get_execution ...) that is queued after it.
        # At most MAX_UNACKNOWLEDGED submissions returned without their commit:
        # past that, this one waits for the oldest (under a burst the writer
        # falls behind, and what a crash could lose grew with it).
        pending = self._unacknowledged
        while pending and pending[0].finished:
            pending.popleft()
        if len(pending) >= MAX_UNACKNOWLEDGED:
            await wait_for_op(pending.popleft(), shield=True)
            # The runs that waited for the same commit go first: their
            # first steps should not wait behind the next burst of submits.
            await trio.lowlevel.cancel_shielded_checkpoint()
        queued = Op(op, True, partial(self._create_failed, r.id), atomic)
        await self._run_op(queued, wait=False)
        pending.append(queued)
        # (queued with no owner, for a claim: nothing is folded into its
        # insert and no run of this process waits for it, so nothing is kept;
        # inserted as started: no start to fold in, the entry would only
        # hold the insert and its state while the execution runs)
        if queued.gen >= 0 and r.owner is not None:
            if r.status != RUNNING:
                self._unstarted[r.id] = (queued, state)
            self._creating[r.id] = queued
        return record, True

    async def wait_created(self, execution_id: str) -> None:
        op = self._creating.pop(execution_id, None)
        if op is None:
            return
        await wait_for_op(op, shield=True)
        if op.error is not None:
            raise StoreError(f"execution {execution_id} could not be stored: {op.error}")

    def _create_failed(self, execution_id: str, error: BaseException) -> None:
        self._failed_creates[execution_id] = error

    def _step_write_failed(self, execution_id: str, write: WriteFn, error: BaseException) -> None:
        log.warning(
            "a queued step record of %s failed (%s); retried at its finish", execution_id, error
        )
        self._failed_steps.setdefault(execution_id, []).append(write)

    @staticmethod
    def _unwaited_failed(error: BaseException) -> None:
        # A write nobody waited for: the execution's next waited, fenced write
        # (its finish) fails the same way and decides; this is for the log.
        log.warning("a queued store write failed: %s", error)

    async def start_execution(
        self,
        execution_id: str,
        owner: str,
        started_at: float,
        *,
        claim: bool = False,
        wait: bool = True,
    ) -> None:
        queued = self._unstarted.pop(execution_id, None)
        if queued is not None and queued[0].gen == self._commits.gen:
            # Its insert is still queued: it is inserted as started (one write
            # instead of two), and waited for like the update would be.
            insert, state = queued
            state[:] = [RUNNING, owner, started_at]
            if not wait:
                return
            await wait_for_op(insert, shield=True)
            if insert.error is not None:
                raise StoreError(
                    f"execution {execution_id} could not be stored: {insert.error}"
                ) from None
            return
        op = self._start_fn(execution_id, owner, started_at, claim)
        if not wait:  # the caller knows no other engine can own it yet
            await self._call(op, atomic=True, wait=False, on_error=self._unwaited_failed)
            return
        # Waited for: a stale engine must learn it lost the execution before running it.
        try:
            await self._call(op, atomic=True, shield=True)
        except LeaseLost:
            failed = self._failed_creates.pop(execution_id, None)
            if failed is not None:  # never inserted: say why, not "taken over"
                raise StoreError(
                    f"execution {execution_id} could not be stored: {failed}"
                ) from None
            raise

    async def record_step(
        self,
        execution_id: str,
        step: StepRecord,
        *,
        owner: str | None = None,
        wait: bool = True,
    ) -> None:
        if self.durability == "none":
            return
        if step.status not in TERMINAL_STEP:
            commits = self._commits
            if commits.writing and not commits.closing:
                # Written with the writer's next batch if it still runs then
                # (_take_running): no op, no closure, nothing to wait for.
                self._running[(execution_id, step.step_id)] = (execution_id, step, owner)
                commits.poke()
                return
            await self._call(self._step_fn(execution_id, step, owner), atomic=True, wait=False)
            return
        # Terminal records are durable before this returns (unless ``wait``
        # is False: then before the execution's finish, queued after them).
        if self._running:
            self._running.pop((execution_id, step.step_id), None)
        fn = self._step_fn(execution_id, step, owner)
        if wait:
            await self._run_op(Op(fn, True, None, True), shield=True)
        else:
            failed = partial(self._step_write_failed, execution_id, fn)
            await self._call(fn, atomic=True, wait=False, on_error=failed)

    def queue_step(self, execution_id: str, step: StepRecord, owner: str | None) -> Op | None:
        """Queue a terminal step record without waiting for it, and return
        its op: the caller waits for it (``wait_for_op``) before anything
        that needs the record durable starts, and writes it again (waited)
        if it failed. None when there is no running writer: then
        :meth:`record_step` it, waited."""
        if self._running:
            self._running.pop((execution_id, step.step_id), None)
        op = Op(self._step_fn(execution_id, step, owner), True, self._unwaited_failed, True)
        return op if self._commits.queue(op) else None

    def _take_running(self) -> list[Op]:
        """The `running` records of steps still running, as ops for the batch
        the writer takes now (values read now, in the engine's thread)."""
        if not self._running:
            return []
        running, self._running = self._running, {}
        return [
            Op(self._step_fn(execution_id, step, owner), True, atomic=True)
            for execution_id, step, owner in running.values()
            if step.status == RUNNING
        ]

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
        op = self._finish_fn(execution_id, status, result, error, finished_at, owner)
        self._unstarted.pop(execution_id, None)
        self._creating.pop(execution_id, None)
        failed = self._failed_steps.pop(execution_id, None)
        for i, write in enumerate(failed or ()):
            # Step records nobody waited for and that failed (a transient lock):
            # they go in first, so a finished execution never has a step left
            # `running`; a failure here fails the finish (and is retried).
            try:
                await self._call(write, atomic=True, shield=True)
            except BaseException:
                assert failed is not None
                self._failed_steps[execution_id] = failed[i:]
                raise
        await self._call(op, wait=self.durability != "none", atomic=True, shield=True)
