"""Group commit: many store operations, one transaction.

Every operation of a store is queued as an :class:`Op`; one writer task
(:meth:`GroupCommit.run`, in the engine's root nursery) takes everything
queued and hands it to the backend as one batch, run in one transaction.
Under load many status writes share one commit; alone, an operation costs
one transaction as it would without batching.

This class knows operations, order and waiting, not SQL: a backend gives
``execute(batch)``, which runs the batch's operations in one transaction and
sets each one's ``result`` or ``error`` (the SQLite store: a thread hop and
savepoints; a PostgreSQL store: its connection's transaction). What a
backend may do with ``wait=False`` is the protocol's (storage/base.py): the
operation is queued, committed before anything queued after it, and a
failure goes to its ``on_error``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import trio
import trio.lowlevel

from corral.core.errors import StoreError

__all__ = ["GroupCommit", "Op", "wait_for_op", "wake"]


class Op:
    """One queued store operation: ``fn(connection)`` run inside the batch's
    transaction."""

    __slots__ = (
        "atomic",
        "error",
        "finished",
        "fn",
        "gen",
        "on_error",
        "result",
        "waiters",
        "write",
    )

    def __init__(
        self,
        fn: Callable[[Any], Any],
        write: bool,
        on_error: Callable[[BaseException], None] | None = None,
        atomic: bool = False,
    ) -> None:
        self.fn = fn
        self.write = write
        # atomic: at most one write statement, so a failure leaves nothing
        # behind (the database undoes a failed statement) and no savepoint is needed.
        self.atomic = atomic or not write
        self.gen = -1  # the writer's batch generation when queued
        self.result: Any = None
        self.error: BaseException | None = None
        self.finished = False
        self.waiters: list[trio.lowlevel.Task] | None = None
        self.on_error = on_error  # for writes nobody waits for


def _ran(_conn: Any) -> Any:
    raise RuntimeError("a store operation was run again after it was done")


def wake(op: Op) -> None:
    """The op is done (committed, or failed): wake whoever waits for it.

    Its function is let go: an insert's closure holds the row it wrote, and
    the op itself may be kept (an execution's queued insert is kept until
    the execution finishes, to fold its start in while it is queued)."""
    op.finished = True
    op.fn, op.on_error = _ran, None
    waiters, op.waiters = op.waiters, None
    for task in waiters or ():
        trio.lowlevel.reschedule(task)


def _refuse_abort(_: Any) -> trio.lowlevel.Abort:
    return trio.lowlevel.Abort.FAILED


async def wait_for_op(op: Op, shield: bool) -> None:
    """Wait for ``op``. Shielded, the wait cannot be interrupted: a status write
    runs to its end and the caller's cancellation takes effect after (what a
    shielded cancel scope would give, at a fraction of its cost)."""
    if op.finished:
        return
    task = trio.lowlevel.current_task()
    if op.waiters is None:
        op.waiters = [task]
    else:
        op.waiters.append(task)
    if shield:  # (no closure to make: most waits are status writes)
        await trio.lowlevel.wait_task_rescheduled(_refuse_abort)
        return

    def abort(_: Any) -> trio.lowlevel.Abort:
        if op.waiters is not None and task in op.waiters:
            op.waiters.remove(task)
        return trio.lowlevel.Abort.SUCCEEDED

    await trio.lowlevel.wait_task_rescheduled(abort)


class GroupCommit:
    """The queue and its writer. ``execute(batch)`` runs a batch in one
    transaction and wakes its ops; ``lock`` is held around each batch (an
    operation run without the writer takes it too)."""

    def __init__(
        self,
        execute: Callable[[list[Op]], Awaitable[None]],
        take: Callable[[], list[Op]] | None = None,
    ) -> None:
        self._execute = execute
        # Work kept as state rather than queued ops (a backend's latest
        # `running` step records): made into ops as a batch is taken, and
        # run first in it.
        self._take = take
        self.pending: list[Op] = []
        self.writing = False  # the writer runs: operations are queued, not run at once
        self.closing = False
        self.gen = 0  # batches taken so far: an op with gen == self.gen is still queued
        self.lock = trio.Lock()
        self._wake = trio.Event()
        self._done = trio.Event()

    async def run(self) -> None:
        """The writer: one transaction per batch of queued work.

        Shielded: only :meth:`stop` ends it (after the queue is drained), so a
        cancel of the surrounding nursery never drops queued status writes.
        Whoever starts it must call :meth:`stop`.
        """
        self.writing = True
        try:
            with trio.CancelScope(shield=True):
                while True:
                    taken = self._take() if self._take is not None else None
                    if not self.pending and not taken:
                        if self.closing:
                            return
                        await self._wake.wait()
                        self._wake = trio.Event()
                        continue
                    batch, self.pending = self.pending, []
                    if taken:
                        batch[:0] = taken
                    self.gen += 1  # what was queued before this is no longer changeable
                    try:
                        async with self.lock:
                            await self._execute(batch)
                    finally:
                        for op in batch:  # never left waiting, whatever happened
                            if not op.finished:
                                op.error = op.error or StoreError("the write was not done")
                                wake(op)
        finally:
            self.writing = False
            for op in self.pending:
                op.error = StoreError("the store closed before this write was done")
                wake(op)
            self.pending = []
            self._done.set()

    def poke(self) -> None:
        """There is work for the writer that is not a queued op (``take``)."""
        self._wake.set()

    async def stop(self) -> None:
        """Drain the queue and end the writer (if it runs)."""
        self.closing = True
        self._wake.set()
        if self.writing:
            await self._done.wait()

    def queue(self, op: Op) -> bool:
        """Queue ``op`` for the running writer; False when there is none (or
        it is stopping): then :meth:`submit` runs it alone."""
        if self.writing and not self.closing:
            op.gen = self.gen
            self.pending.append(op)
            self._wake.set()
            return True
        return False

    async def submit(self, op: Op, *, wait_for: bool = True, shield: bool = False) -> Any:
        """Queue ``op`` for the writer (or, without one, run it alone now);
        with ``wait_for``, return its result or raise its error."""
        if self.queue(op):
            if not wait_for:
                return None
            await wait_for_op(op, shield)
        else:
            with trio.CancelScope(shield=shield):
                async with self.lock:
                    await self._execute([op])
        if op.error is not None:
            raise op.error
        return op.result
