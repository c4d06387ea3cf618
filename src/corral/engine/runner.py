"""One workflow = one nursery. Runs a :class:`~corral.workflow.plan.Plan` to its end.

Steps are tasks in the workflow's nursery, started eagerly as soon as what they
need has finished (and within ``max_parallel_steps``). Cancelling the
workflow's scope cancels every step; a step never outlives its workflow. Each
step task catches its handler's errors itself, so the nursery only ever sees
``Cancelled``: failure policy is decided here, not by exception propagation.
Terminal statuses are written in shielded scopes so that cancellation cannot
lose them.

A run can start from a stored record (resume after a crash): steps recorded
``succeeded``/``cached`` keep their outputs and are not run again; the others
run again (at-least-once).

One class in about 1,000 lines: a run's steps, their attempts, status
writes and failure policy all read and change the run's own state (outputs,
statuses, the ready heap); what does not share it is elsewhere (retry
delays :mod:`.retry`, venues :mod:`.strategy`, links :mod:`.links`).
"""

from __future__ import annotations

import contextlib
import heapq
import logging
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import msgspec
import trio
import trio.lowlevel

from corral.core.errors import (
    CorralError,
    HandlerError,
    LeaseLost,
    NonRetryable,
    StepFailure,
    StepTimedOut,
    StoreError,
    WorkflowCancelled,
    WorkflowFailed,
    WorkflowTimedOut,
)
from corral.core.model import (
    TERMINAL_EXECUTION,
    TERMINAL_STEP,
    ErrorInfo,
    ExecutionRecord,
    StepFinished,
    StepProgress,
    StepRecord,
    StepRetrying,
    StepStarted,
    WorkflowFinished,
    WorkflowStarted,
    now,
)
from corral.core.status import (
    CACHED,
    CANCELLED,
    FAILED,
    FINISHED_OK,
    PENDING,
    RUNNING,
    SKIPPED,
    SUCCEEDED,
    TIMED_OUT,
    failure_for,
)
from corral.engine import interrupts
from corral.engine.encoding import UnstorableOutput, encode_output
from corral.engine.flag import Flag
from corral.engine.leases import LeaseGuard
from corral.engine.links import LoopLink
from corral.engine.retry import backoff_delay, should_retry
from corral.plugins import StepContext
from corral.storage.group_commit import Op, wait_for_op
from corral.workflow.conditions import ConditionError
from corral.workflow.references import RefError, resolve

if TYPE_CHECKING:
    from corral.engine.cache import WorkflowCache
    from corral.engine.events import EventBus
    from corral.engine.metrics import ExecutionMetrics
    from corral.engine.resources import ResourceManager
    from corral.engine.strategy import ExecutionStrategy
    from corral.storage.base import Store
    from corral.workflow.plan import Plan, StepPlan

__all__ = ["Outcome", "Services", "WorkflowRun", "is_cancellation", "new_record"]

log = logging.getLogger("corral.engine")

_OK = FINISHED_OK
_FAILED = frozenset({FAILED, TIMED_OUT})
_ENDED = _OK | _FAILED | {SKIPPED}  # a need a ``trigger: done`` step waits for
_encoder = msgspec.json.Encoder()


@dataclass(slots=True)
class Services:
    """What a run needs from its engine."""

    store: Store
    resources: ResourceManager
    strategy: ExecutionStrategy
    metrics: ExecutionMetrics
    events: EventBus
    cache: WorkflowCache
    owner: str
    status_write_timeout: float
    new_id: Callable[[], str]
    rand: Callable[[], float] = random.random
    clock: Callable[[], float] = now
    """Wall-clock time for records and leases (injectable: tests move it)."""
    runs: dict[str, WorkflowRun] = field(default_factory=dict)
    """Every run in progress, children included (for ``Engine.cancel``)."""
    leases: LeaseGuard | None = None
    """Whether the engine's leases are fresh enough to start a step."""
    queue_step: Callable[[str, StepRecord, str | None], Op | None] | None = None
    """A batching store's writer (durable): queues a step's terminal record
    without waiting and returns its op, which the run waits for before a
    dependent starts (None: not queued, write it waited). A wait for it
    always suspends the task."""


@dataclass(slots=True)
class Outcome:
    """How an execution ended. ``exception`` is what ``handle.result()`` raises."""

    status: str
    result: Any = None
    error: ErrorInfo | None = None
    exception: BaseException | None = None


def is_cancellation(exc: BaseException) -> bool:
    """``Cancelled``, or a group of nothing but ``Cancelled`` (as nurseries raise)."""
    if isinstance(exc, trio.Cancelled):
        return True
    if isinstance(exc, BaseExceptionGroup):
        return exc.split(trio.Cancelled)[1] is None
    return False


def _holds(exc: BaseException, kind: type[BaseException]) -> bool:
    """``exc`` is a ``kind``, or a group with one somewhere inside."""
    if isinstance(exc, kind):
        return True
    if isinstance(exc, BaseExceptionGroup):
        return exc.split(kind)[0] is not None
    return False


class _Failure(Exception):
    """Internal: a step failed for good (carries the original exception)."""

    def __init__(self, status: str, exc: BaseException) -> None:
        self.status = status
        self.exc = exc


def _error(exc: BaseException, step: str | None = None) -> ErrorInfo:
    return ErrorInfo(type(exc).__name__, str(exc), step=step)


class WorkflowRun:
    """The run of one execution. ``await run.run()`` returns its :class:`Outcome`."""

    # Slots: one of these lives per workflow in flight (10,000 of them in the
    # perf suite's case), and an instance dict of ~30 attributes costs ~1 KB.
    __slots__ = (
        "_active",
        "_blobs",
        "_cancel_early",
        "_cancel_reason",
        "_digests",
        "_events",
        "_failed_fast",
        "_failure",
        "_first_step",
        "_fresh_until",
        "_inputs_encoded",
        "_limit",
        "_logs",
        "_nursery",
        "_ranks",
        "_ready",
        "_receipts",
        "_remaining",
        "_scope",
        "_stored_started",
        "_submitted_at",
        "_unwritten",
        "abandoned",
        "done",
        "inputs",
        "outputs",
        "plan",
        "record",
        "s",
        "status",
        "steps",
        "store_failed",
        "top_level",
    )

    def __init__(
        self,
        services: Services,
        plan: Plan,
        record: ExecutionRecord,
        *,
        submitted_at: float | None = None,
        fresh_until: float | None = None,
        stored_started: bool = False,
    ) -> None:
        self.s = services
        self.plan = plan
        self.record = record
        self.inputs = record.inputs
        self.steps: list[StepRecord] = record.steps
        self.top_level = record.parent_id is None
        n = len(plan.steps)
        self.outputs: list[Any] = [None] * n
        self.status: list[str] = [PENDING] * n
        # for the step cache: outputs encoded once (until cached), upstream
        # output digests and the inputs, each computed once
        # (made when a cached step needs them: most runs have none)
        self._blobs: dict[int, bytes] | None = None
        self._logs: dict[str, list[str]] = {}  # step id -> what its ctx.log said
        self._digests: dict[int, bytes] | None = None
        self._inputs_encoded: bytes | None = None
        self._remaining = plan.needs_count().copy()
        self._ready: list[tuple[tuple[float, int], int]] = []
        self._unwritten: list[int] = []  # steps skipped in memory, not yet recorded
        # Queued terminal records of steps with dependents, in queue order:
        # committed (waited for) before any step starts after them.
        self._receipts: dict[int, Op] = {}
        self._active = 0
        self._limit = plan.spec.settings.max_parallel_steps or math.inf
        self._ranks = services.strategy.ranks(plan)
        self._nursery: trio.Nursery | None = None
        # The workflow's cancel scope is its nursery's (one scope, not two):
        # a cancel that comes before the nursery exists is remembered.
        self._scope: trio.CancelScope | None = None
        self._cancel_early = False
        self._failed_fast = False  # the nursery was cancelled by fail_fast, not a timeout
        self._cancel_reason: str | None = None
        self._failure: tuple[str, str, BaseException] | None = None  # step, status, exc
        self._submitted_at = submitted_at
        self._first_step = True
        self._events = services.events
        self.done = Flag()
        self.abandoned = False
        self.store_failed = False  # abandoned because the store failed, not taken over
        # Wall time until which no other engine can have claimed this execution
        # (it was created here, well within its first lease): its start needs
        # no fenced round trip. None: always fence (resumed, taken over, child).
        self._fresh_until = fresh_until
        self._stored_started = stored_started  # created as `running`: no start write

    # ------------------------------------------------------------ control

    def cancel(self, reason: str = CANCELLED) -> None:
        """Cancel the whole workflow (every running step). Works before it starts."""
        if self._cancel_reason is None:
            self._cancel_reason = reason
        if self._scope is not None:
            self._scope.cancel()
        else:
            self._cancel_early = True

    def abandon(self, reason: str = "taken over by another engine", *, store: bool = False) -> None:
        """Stop without writing anything more: another engine took this execution
        over (this one's lease expired while it was stalled), or (``store``)
        the store cannot be written to: then the engine resumes it itself from
        what was committed once the store works again (Engine._take_over)."""
        self.store_failed = self.store_failed or store
        if not self.abandoned:
            log.warning("execution %s: %s; this engine stops running it", self.record.id, reason)
        self.abandoned = True
        self.cancel(reason)

    async def warn(self, step_id: str, message: str) -> None:
        """Add a warning to a step's record (written now if the step has
        already ended; else with its next record)."""
        for i, sp in enumerate(self.plan.steps):
            if sp.id == step_id:
                rec = self.steps[i]
                rec.warnings.append(message)
                if rec.status in TERMINAL_STEP:
                    with trio.CancelScope(shield=True) as scope:
                        scope.relative_deadline = self.s.status_write_timeout
                        await self._write_step(rec)
                return

    def _queue_step(self, i: int, rec: StepRecord) -> bool:
        """Queue step ``i``'s terminal record without waiting for it (a
        batching store): True when queued, then :meth:`_confirm` waits for it
        before anything starts that needs it."""
        queue = self.s.queue_step
        if queue is None or self.abandoned:
            return False
        if self._logs:  # what its ctx.log said, once
            rec.logs = self._logs.pop(rec.step_id, rec.logs)
        op = queue(self.record.id, rec, self.s.owner)
        if op is None:
            return False
        self._receipts[i] = op
        return True

    async def _confirm(self) -> bool:
        """Wait until every queued record (:meth:`_queue_step`) is committed;
        one that failed is written again, waited (with its retries). The
        writer commits in queue order, so the last one's commit covers those
        before it. A record leaves ``_receipts`` only once it is durable, and
        the loop ends with none left: whatever is ready when this returns
        may start (steps of this run ending meanwhile, in other tasks, queue
        more). Returns whether the task suspended."""
        receipts = self._receipts
        suspended = False
        while receipts:
            last = next(reversed(receipts.values()))
            if not last.finished:
                suspended = True
                await wait_for_op(last, shield=True)
            for i, op in list(receipts.items()):
                if not op.finished:
                    continue  # queued while this task waited: the next round
                if op.error is not None:
                    suspended = True
                    await self._write_step(self.steps[i])
                if receipts.get(i) is op:
                    del receipts[i]
        return suspended

    async def _write_step(self, rec: StepRecord, *, wait: bool = True) -> None:
        """Record a step, fenced by ownership: a stale engine's writes are refused.
        ``wait=False`` (a step nothing depends on) lets a terminal record ride
        with the next batch: the execution's own finish, queued after it, waits."""
        if self.abandoned:
            return
        if self._logs and rec.finished_at is not None:  # what its ctx.log said, once
            rec.logs = self._logs.pop(rec.step_id, rec.logs)
        s = self.s
        try:  # (the common path without _retrying's frame: one per step write)
            await s.store.record_step(self.record.id, rec, owner=s.owner, wait=wait)
        except (LeaseLost, StoreError) as exc:
            await self._retry(
                exc, s.store.record_step, self.record.id, rec, owner=s.owner, wait=wait
            )

    async def _retrying(self, write: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """A status write, retried on store errors (a lock held too long, a full
        disk) until the status-write deadline of the enclosing scope. If it
        cannot be done, this engine stops running the execution, writing
        nothing more; its lease then expires and another engine (or this one,
        reopened) resumes it from what was committed."""
        try:
            # Stores run status writes to their end even when the caller is
            # cancelled (Store protocol), so the common path needs no shielded
            # scope; only the retries (_retry) do.
            await write(*args, **kwargs)
        except (LeaseLost, StoreError) as exc:
            await self._retry(exc, write, *args, **kwargs)

    async def _retry(
        self, failed: BaseException, write: Callable[..., Any], *args: Any, **kwargs: Any
    ) -> None:
        """``write`` failed (``failed``): the retries of :meth:`_retrying`."""
        delay = 0.05
        deadline: float | None = None
        error: BaseException | None = failed
        while True:
            try:
                if error is not None:
                    raise error
                await write(*args, **kwargs)
                return
            except LeaseLost:
                self.abandon()
                return
            except StoreError as exc:
                error = None
                current = trio.current_time()
                if deadline is None:  # the status-write deadline, whether cancelled or not
                    deadline = current + self.s.status_write_timeout
                if deadline - current < delay:
                    self.abandon(f"its status cannot be recorded ({exc})", store=True)
                    return
                log.warning(
                    "store write for execution %s failed, retrying: %s", self.record.id, exc
                )
                with trio.CancelScope(shield=True):
                    await trio.sleep(delay)
                delay = min(delay * 2, 1.0)

    def restore(self) -> int:
        """Take up a stored record (resume): finished steps keep their outputs and
        are not run again; interrupted ones go back to ``pending``. Returns how
        many steps are kept."""
        policy_continue = self.plan.spec.settings.on_failure == "continue"
        kept = 0
        for i, rec in enumerate(self.steps):
            if (
                rec.status in _OK
                or rec.status == SKIPPED
                or (policy_continue and rec.status in _FAILED)
            ):
                self.status[i] = rec.status
                self.outputs[i] = rec.output
                kept += 1
                if rec.status in _FAILED and self._failure is None:
                    err = rec.error or ErrorInfo("StepFailure", rec.status)
                    self._failure = (
                        rec.step_id,
                        rec.status,
                        StepFailure(f"{err.type}: {err.message}"),
                    )
            else:
                rec.status = PENDING
                rec.error = None
                rec.output = None
                rec.started_at = rec.finished_at = None
        for i, sp in enumerate(self.plan.steps):
            if self.status[i] != PENDING:
                continue
            if sp.spec.trigger == "done":  # waits for its needs to end, however they end
                self._remaining[i] = sum(1 for d in sp.needs if self.status[d] not in _ENDED)
                continue
            self._remaining[i] = sum(1 for d in sp.needs if self.status[d] not in _OK)
            if any(self.status[d] in _FAILED or self.status[d] == SKIPPED for d in sp.needs):
                self._unwritten.extend(self._skip_from(i))
        return kept

    # ------------------------------------------------------------ the run

    async def run(self) -> Outcome:
        s = self.s
        rec = self.record
        rec.status = RUNNING
        rec.started_at = rec.started_at or self.s.clock()
        t0 = trio.current_time()
        outcome: Outcome | None = None
        s.runs[rec.id] = self
        try:
            try:
                # Fenced: a stale engine learns here that another one owns it now.
                fresh = self._fresh_until is not None and self.s.clock() < self._fresh_until
                if not (fresh and self._stored_started):
                    await s.store.start_execution(
                        rec.id, s.owner, rec.started_at, claim=not self.top_level, wait=not fresh
                    )
            except LeaseLost:
                self.abandon()
            except StoreError as exc:
                self.abandon(f"it cannot be started ({exc})", store=True)
            if not self.abandoned:
                try:
                    # Its record is durable before any step runs (submit did
                    # not wait for that commit): a crash forgets nothing that ran.
                    await s.store.wait_created(rec.id)
                except StoreError as exc:
                    self.abandon(f"it cannot be started ({exc})", store=True)
            if self.top_level:
                s.metrics.started += 1
            if self._events.active:
                self._events.emit(
                    WorkflowStarted(execution_id=rec.id, workflow=rec.workflow, at=self.s.clock())
                )
            if self._unwritten:
                await self._write_skips()
            if self.top_level and self.plan.sequential():
                # Never two steps at once (a chain, or one step): the run's
                # own task runs them all, under a cancel scope; a nursery
                # costs more than a trivial step.
                with trio.CancelScope() as scope:
                    await self._steps(scope, t0)
            else:
                async with trio.open_nursery() as nursery:
                    self._nursery = nursery
                    # A child workflow runs in its parent step's task: its first
                    # step gets a task of its own, so that what the child's
                    # handlers do to the task's context (contextvars) stays theirs.
                    await self._steps(nursery.cancel_scope, t0, inline=self.top_level)
            outcome = self._conclude()
        except BaseException as exc:
            if not is_cancellation(exc):
                if not isinstance(exc, Exception):
                    raise  # KeyboardInterrupt and friends: the engine closes
                # A bug in corral itself: fail this execution, keep the engine.
                log.exception("internal error while running execution %s", rec.id)
                outcome = Outcome(
                    FAILED,
                    error=ErrorInfo("InternalError", f"{type(exc).__name__}: {exc}"),
                    exception=WorkflowFailed(
                        f"workflow {rec.workflow!r} failed: internal error: {exc}",
                        execution_id=rec.id,
                        cause=exc,
                    ),
                )
            else:
                # The engine itself is being cancelled (shutdown, or a parent step).
                reason = self._cancel_reason or "cancelled with its engine or parent"
                outcome = Outcome(
                    CANCELLED,
                    error=ErrorInfo("WorkflowCancelled", reason),
                    exception=WorkflowCancelled(rec.id, reason),
                )
                raise
        finally:
            if outcome is None:
                outcome = Outcome(
                    CANCELLED,
                    error=ErrorInfo("WorkflowCancelled", "interrupted"),
                    exception=WorkflowCancelled(rec.id, "interrupted"),
                )
            await self._finish(outcome, trio.current_time() - t0)
        return outcome

    async def _steps(self, scope: trio.CancelScope, t0: float, *, inline: bool = True) -> None:
        """Run the steps under the workflow's ``scope`` (its timeout, its cancel)."""
        self._scope = scope
        timeout = self.plan.spec.settings.timeout
        if timeout is not None:
            scope.deadline = t0 + timeout
        if self._cancel_early:
            scope.cancel()
        for i, n in enumerate(self._remaining):
            if n == 0 and self.status[i] == PENDING:
                heapq.heappush(self._ready, (self._ranks[i], i))
        await self._step_task(self._schedule(inline=inline))

    def _conclude(self) -> Outcome:
        rec = self.record
        if self._cancel_reason is not None:
            return Outcome(
                CANCELLED,
                error=ErrorInfo("WorkflowCancelled", self._cancel_reason),
                exception=WorkflowCancelled(rec.id, self._cancel_reason),
            )
        scope = self._scope
        # Timed out: a step was interrupted by the deadline, or the deadline
        # passed while steps that never pause ran and others never started.
        if (
            scope is not None
            and not self._failed_fast
            and (scope.cancelled_caught or (scope.cancel_called and PENDING in self.status))
        ):
            limit = self.plan.spec.settings.timeout
            msg = f"workflow {rec.workflow!r} exceeded its timeout of {limit}s"
            if self._failure is not None:
                msg += f" (step {self._failure[0]!r} had failed before)"
            return Outcome(
                TIMED_OUT,
                error=ErrorInfo("WorkflowTimedOut", msg),
                exception=WorkflowTimedOut(msg, execution_id=rec.id),
            )
        if self._failure is not None:
            step_id, status, exc = self._failure
            ended = TIMED_OUT if status == TIMED_OUT else FAILED
            msg = (
                f"workflow {rec.workflow!r} failed: step {step_id!r} {status}: "
                f"{type(exc).__name__}: {exc}"
            )
            return Outcome(
                ended,
                error=_error(exc, step_id),
                exception=failure_for(
                    ended, execution_id=rec.id, message=msg, step=step_id, cause=exc
                ),
            )
        try:
            result = self._result()
        except (RefError, TypeError, ValueError) as exc:
            msg = f"workflow {rec.workflow!r}: cannot build its output: {exc}"
            return Outcome(
                FAILED,
                error=ErrorInfo(type(exc).__name__, msg),
                exception=WorkflowFailed(msg, execution_id=rec.id, cause=exc),
            )
        return Outcome(SUCCEEDED, result=result)

    def _result(self) -> Any:
        plan = self.plan
        if plan.output is not msgspec.UNSET:
            done = {
                plan.steps[i].id: self.outputs[i] for i, st in enumerate(self.status) if st in _OK
            }
            value = resolve(plan.output, self.inputs, done)
        else:
            value = {plan.steps[i].id: self.outputs[i] for i in plan.sinks if self.status[i] in _OK}
        # The result is the caller's own copy: it shares nothing with step outputs.
        return msgspec.json.decode(_encoder.encode(value))

    async def _finish(self, outcome: Outcome, duration: float) -> None:
        s = self.s
        rec = self.record
        rec.status = outcome.status  # type: ignore[assignment]
        rec.result = outcome.result
        rec.error = outcome.error
        rec.finished_at = self.s.clock()
        try:
            if self._receipts:
                # Records of steps whose dependents never started: committed
                # (or written again) before the execution's status says it ended.
                await self._confirm()
            # The execution's own status first. A status write is not interrupted
            # by a cancel (Store protocol) and _retrying bounds its retries by the
            # status-write deadline, so no shielded scope is needed here.
            if not self.abandoned:
                await self._retrying(
                    s.store.finish_execution,
                    rec.id,
                    outcome.status,
                    result=outcome.result,
                    error=outcome.error,
                    finished_at=rec.finished_at,
                    owner=s.owner,
                )
            left = SKIPPED if outcome.status == SUCCEEDED else CANCELLED
            if self._unwritten or PENDING in self.status:
                with trio.CancelScope(shield=True) as scope:
                    scope.relative_deadline = s.status_write_timeout
                    # Never started: the workflow ended (failure, cancel, timeout) first.
                    for i, st in enumerate(self.status):
                        if st == PENDING:
                            self._unwritten.append(i)
                            self.status[i] = left
                    await self._write_skips(default=left)
        finally:
            s.runs.pop(rec.id, None)
            self.done.set()
        if self.top_level:
            s.metrics.workflow_finished(outcome.status, duration)
        if self._events.active:
            self._events.emit(
                WorkflowFinished(
                    execution_id=rec.id,
                    workflow=rec.workflow,
                    at=rec.finished_at,
                    status=outcome.status,  # type: ignore[arg-type]
                    error=outcome.error,
                )
            )

    # ------------------------------------------------------------ scheduling

    def _schedule(self, *, inline: bool = False) -> StepPlan | None:
        """Start ready steps, most urgent first, up to ``max_parallel_steps``.

        With ``inline`` the caller, a task that has nothing left to do, takes
        the most urgent one and runs it itself instead of a new task: a chain
        of steps runs in one task, and the first step in the execution's own.
        Starting a task costs more than a trivial step.
        """
        assert self._scope is not None
        if self._scope.cancel_called:
            return None
        nursery = self._nursery
        taken: StepPlan | None = None
        while self._ready and self._active < self._limit:
            if nursery is None and taken is not None:
                break  # (no nursery: the caller's task takes the others in turn)
            _, i = heapq.heappop(self._ready)
            if self.status[i] != PENDING:
                continue
            self._active += 1
            self.status[i] = RUNNING
            if (inline or nursery is None) and taken is None:
                taken = self.plan.steps[i]
            else:
                assert nursery is not None
                nursery.start_soon(self._step_task, self.plan.steps[i])
        return taken

    async def _step_task(self, sp: StepPlan | None) -> None:
        """Run ``sp``, then whichever step it makes ready first, and so on."""
        while sp is not None:
            try:
                status = await self._execute(sp)
            finally:
                self._active -= 1
            self._after(sp, status)
            if self._unwritten:
                await self._write_skips()
            if not self._ready:
                return
            # A schedule point between steps, as a task of its own would have
            # had: other tasks run, and a cancel or the workflow's deadline
            # takes effect here, before the next step starts. A wait for the
            # records of the steps that made it ready suspended already:
            # others have run, only a cancel is left to take. Nothing may
            # suspend between the last _confirm and _schedule.
            if self._receipts and await self._confirm():
                await trio.lowlevel.checkpoint_if_cancelled()
            else:
                await trio.lowlevel.checkpoint()
                if self._receipts:  # steps ended in other tasks meanwhile
                    await self._confirm()
            sp = self._schedule(inline=True)

    def _after(self, sp: StepPlan, status: str) -> None:
        if status in _OK:
            for j in sp.dependents:
                self._remaining[j] -= 1
                if self._remaining[j] == 0 and self.status[j] == PENDING:
                    heapq.heappush(self._ready, (self._ranks[j], j))
            return
        if status in _FAILED and self.plan.spec.settings.on_failure == "fail_fast":
            assert self._scope is not None
            self._failed_fast = True
            self._scope.cancel()
            return
        # skipped by its condition, or failed under `continue`: dependents cannot run.
        for j in sp.dependents:
            self._unwritten.extend(self._skip_from(j))

    def _skip_from(self, start: int) -> list[int]:
        """Mark ``start`` and its pending descendants skipped (in memory). A
        ``trigger: done`` step is not skipped: one of its needs has ended."""
        newly: list[int] = []
        stack = [start]
        while stack:
            j = stack.pop()
            if self.status[j] != PENDING:
                continue
            if self.plan.steps[j].spec.trigger == "done":
                self._remaining[j] -= 1
                if self._remaining[j] == 0:
                    heapq.heappush(self._ready, (self._ranks[j], j))
                continue
            self.status[j] = SKIPPED
            newly.append(j)
            stack.extend(self.plan.steps[j].dependents)
        return newly

    async def _write_skips(self, default: str = SKIPPED) -> None:
        """Record steps that never ran; shielded, so cancellation cannot lose them."""
        if not self._unwritten:
            return
        with trio.CancelScope(shield=True) as scope:
            scope.relative_deadline = self.s.status_write_timeout
            while self._unwritten:
                i = self._unwritten.pop()
                rec = self.steps[i]
                status = self.status[i] if self.status[i] in (SKIPPED, CANCELLED) else default
                rec.status = status  # type: ignore[assignment]
                rec.finished_at = self.s.clock()
                await self._write_step(rec)
                self.s.metrics.step_finished(status, None)
                if self._events.active:
                    self._emit_step_finished(rec)

    def _emit_step_finished(self, rec: StepRecord) -> None:
        self._events.emit(
            StepFinished(
                execution_id=self.record.id,
                workflow=self.record.workflow,
                at=self.s.clock(),
                step_id=rec.step_id,
                status=rec.status,
                attempts=rec.attempts,
                error=rec.error,
            )
        )

    # ------------------------------------------------------------ one step

    async def _execute(self, sp: StepPlan) -> str:
        """Run one step to a terminal status, recorded; returns the status."""
        rec = self.steps[sp.index]
        i = sp.index
        try:
            exc: BaseException | None = None
            try:
                output, status = await self._attempts(sp, rec)
            except _Failure as failure:
                status, exc = failure.status, failure.exc
            except Exception as internal:  # a bug outside the handler: fail the step only
                log.exception("internal error in step %s of %s", sp.id, self.record.id)
                status, exc = FAILED, internal
            if exc is not None:
                rec.error = _error(exc, sp.id)
                if self._failure is None:
                    self._failure = (sp.id, status, exc)
                output = None
        except BaseException as exc:
            if not is_cancellation(exc):
                raise
            rec.status = CANCELLED
            self.status[i] = CANCELLED
            rec.finished_at = self.s.clock()
            with trio.CancelScope(shield=True) as scope:
                scope.relative_deadline = self.s.status_write_timeout
                await self._write_step(rec)
            self.s.metrics.step_finished(CANCELLED, rec.duration)
            if self._events.active:
                self._emit_step_finished(rec)
            raise
        self.outputs[i] = output
        self.status[i] = status
        rec.status = status  # type: ignore[assignment]
        rec.output = output
        rec.finished_at = self.s.clock()
        if sp.dependents:
            # A step's output is recorded (durably) before its dependents can
            # start: queued here, and waited for (_confirm) by whichever task
            # starts a step next. Of n steps feeding one, only the last to end
            # waits. The write is not interrupted by a cancel (Store protocol).
            if not self._queue_step(i, rec):
                await self._write_step(rec)
        else:
            # Nothing waits for this one but the execution's finish, which is
            # queued after it and waited for: no round trip (and no checkpoint).
            await self._write_step(rec, wait=False)
        duration = rec.duration
        self.s.metrics.step_finished(status, duration)
        if status == SUCCEEDED and duration is not None:
            self.s.strategy.record_duration(self.plan.spec.name, sp.id, duration)
        if self._events.active:
            self._emit_step_finished(rec)
        return status

    def _context_for_conditions(self, sp: StepPlan) -> dict[str, Any]:
        steps = {
            self.plan.steps[a].id: {"output": self.outputs[a], "status": self.status[a]}
            for a in sp.when_refs
        }
        return {"inputs": self.inputs, "steps": steps}

    def _params(self, sp: StepPlan) -> Any:
        """This run's own copy of the step's params, typed.

        Params without references were converted once, at load time, and kept
        encoded; each run decodes a fresh copy, so no two executions (or
        steps) ever share a mutable object through their params.
        """
        handler = sp.handler
        ptype = handler.Params if handler is not None else Any
        if sp.static_blob is not None:
            return msgspec.json.decode(sp.static_blob, type=ptype)
        if sp.static_params is not msgspec.UNSET:
            return sp.static_params
        try:
            resolved = resolve(sp.params, self.inputs, self._done_outputs(sp))
        except RefError as exc:
            raise _Failure(FAILED, HandlerError(f"params: {exc}")) from None
        try:
            return msgspec.json.decode(_encoder.encode(resolved), type=ptype)
        except (msgspec.ValidationError, TypeError, ValueError) as exc:
            name = handler.name if handler is not None else sp.handler_name
            raise _Failure(
                FAILED, HandlerError(f"{name}: params after references: {exc}")
            ) from None

    async def _attempts(self, sp: StepPlan, rec: StepRecord) -> tuple[Any, str]:
        """Run step ``sp`` to its end (its attempts and the waits between
        them): ``(output, status)``; a failure that is not retried is raised
        as ``_Failure``."""
        s = self.s
        if sp.when is not None and not self._when_holds(sp):
            return None, SKIPPED
        params = self._params(sp)
        if sp.handler is not None:  # what ran it: a retry reuses only the same version
            rec.handler_version = sp.handler.version
        cache_key = None
        if sp.cache and sp.handler is not None:
            cache_key = s.cache.key_for(
                sp,
                None if sp.static_blob is not None else self._inputs_blob(),
                [(self.plan.steps[i].id, self._output_digest(i)) for i in sp.key_refs],
            )
            hit = await s.cache.get(cache_key)
            if hit is not s.cache.MISS:
                rec.started_at = rec.finished_at = self.s.clock()
                return hit, CACHED
        keyed = self._keyed(sp, params) if sp.key is not None else None
        upstream_map = {self.plan.steps[d].id: self.outputs[d] for d in sp.needs}
        attempt = 0
        while True:
            attempt += 1
            await self._begin(sp, rec, attempt)
            interrupts_before = interrupts.count()
            try:
                if keyed is None and not sp.spec.resources and sp.spec.timeout is None:
                    # (no slot to hold, no deadline: one coroutine frame less
                    # per step in flight, what most steps are)
                    output = await self._call_handler(sp, params, upstream_map, attempt)
                else:
                    output = await self._attempt(sp, params, upstream_map, attempt, keyed)
            except Exception as exc:
                await self._before_retry(sp, exc, attempt)
                if sp.handler is not None and attempt + 1 <= sp.retry.attempts:
                    params = self._params(sp)  # a fresh copy for the next attempt
                continue
            except BaseException as exc:
                # SystemExit, KeyboardInterrupt, GeneratorExit, a bare
                # BaseException or a group of them, raised by the handler:
                # this step's failure, never retried, not the engine's end.
                # A cancel goes on, and so does a real Ctrl-C (its SIGINT
                # may surface inside handler code).
                if _holds(exc, trio.Cancelled) or (
                    _holds(exc, KeyboardInterrupt) and interrupts.count() != interrupts_before
                ):
                    raise
                raise _Failure(FAILED, exc) from None
            if cache_key is not None:
                blob = self._blobs.pop(sp.index, None) if self._blobs else None
                await s.cache.put(cache_key, output, sp.cache_ttl, blob=blob)
            return output, SUCCEEDED

    def _when_holds(self, sp: StepPlan) -> bool:
        """Whether the step's ``when`` condition holds (an error in it fails the step)."""
        assert sp.when is not None
        try:
            return bool(sp.when.test(self._context_for_conditions(sp)))
        except ConditionError as exc:
            raise _Failure(FAILED, exc) from None

    def _keyed(self, sp: StepPlan, params: Any) -> tuple[Any, Any] | None:
        """The keyed limiter of a step with a concurrency key, and its key."""
        conc = sp.spec.concurrency
        if sp.key is None or conc is None:
            return None
        try:
            key_value = sp.key.evaluate({"inputs": self.inputs, "params": _plain(params)})
        except ConditionError as exc:
            raise _Failure(FAILED, exc) from None
        limiter = self.s.resources.keyed(conc.name or sp.handler_name, conc.limit)
        return limiter, _hashable(key_value)

    async def _begin(self, sp: StepPlan, rec: StepRecord, attempt: int) -> None:
        """An attempt starts: recorded ``running`` (before the handler runs),
        counted, announced."""
        s = self.s
        rec.attempts = attempt
        if s.leases is not None and not s.leases.fresh():
            # The engine missed lease renewals (a stall): another engine may
            # own this execution by now. Start nothing until a renewal says
            # (one that finds it taken over abandons this run).
            await s.leases.wait_renewed()
        rec.status = RUNNING
        if rec.started_at is None:
            rec.started_at = s.clock()
        await self._write_step(rec)
        s.metrics.steps_started += 1
        if self._first_step:
            self._first_step = False
            if self._submitted_at is not None and self.top_level:
                s.metrics.start_latency.observe(trio.current_time() - self._submitted_at)
        if self._events.active:
            self._events.emit(
                StepStarted(
                    execution_id=self.record.id,
                    workflow=self.record.workflow,
                    at=s.clock(),
                    step_id=sp.id,
                    attempt=attempt,
                )
            )

    async def _before_retry(self, sp: StepPlan, exc: Exception, attempt: int) -> None:
        """A failed attempt: raised as the step's failure when it is not
        retried, else announced and waited out (the backoff delay)."""
        s = self.s
        if not should_retry(sp.retry, exc, attempt):
            raise _Failure(TIMED_OUT if isinstance(exc, StepTimedOut) else FAILED, exc) from None
        delay = backoff_delay(sp.retry, attempt, s.rand)
        s.metrics.retried += 1
        if self._events.active:
            self._events.emit(
                StepRetrying(
                    execution_id=self.record.id,
                    workflow=self.record.workflow,
                    at=s.clock(),
                    step_id=sp.id,
                    attempt=attempt,
                    delay=delay,
                    error=_error(exc, sp.id),
                )
            )
        await trio.sleep(delay)

    def _inputs_blob(self) -> bytes:
        if self._inputs_encoded is None:
            self._inputs_encoded = msgspec.json.encode(self.inputs, order="sorted")
        return self._inputs_encoded

    def _output_digest(self, i: int) -> bytes:
        """Of step ``i``'s output, computed once however many steps need it."""
        if self._digests is None:
            self._digests = {}
        digest = self._digests.get(i)
        if digest is None:
            digest = self._digests[i] = self.s.cache.output_digest(self.outputs[i])
        return digest

    def _done_outputs(self, sp: StepPlan) -> dict[str, Any]:
        return {self.plan.steps[a].id: self.outputs[a] for a in sp.param_refs}

    async def _attempt(
        self,
        sp: StepPlan,
        params: Any,
        upstream: dict[str, Any],
        attempt: int,
        keyed: Any,
    ) -> Any:
        spec = sp.spec
        async with (
            self.s.resources.hold(spec.resources, keyed)
            if (spec.resources or keyed)
            else contextlib.nullcontext()
        ):
            timeout = spec.timeout
            if timeout is None:  # no scope of its own: the workflow's cancels it
                return await self._call_handler(sp, params, upstream, attempt)
            with trio.move_on_after(timeout) as scope:
                output = await self._call_handler(sp, params, upstream, attempt)
                # An async handler that blocked the loop past its deadline
                # returns without the scope ever firing: it still timed out.
                if trio.current_time() < scope.deadline:
                    return output
            raise StepTimedOut(f"step {sp.id!r} exceeded its timeout of {timeout}s")

    async def _call_handler(
        self, sp: StepPlan, params: Any, upstream: dict[str, Any], attempt: int
    ) -> Any:
        if sp.child is not None:
            return await self._run_child(sp, params)
        assert sp.handler is not None
        link = LoopLink(self._reporter(sp) if self._events.active else None)
        ctx = StepContext(
            execution_id=self.record.id,
            workflow=self.record.workflow,
            step_id=sp.id,
            inputs=self.inputs,
            upstream=upstream,
            attempt=attempt,
            link=link,
            log_sink=self._logs,
        )
        output = await self.s.strategy.call(sp.handler, ctx, params, link)
        blob = _encoded(sp, output)
        if sp.cache:  # encoded once: the cache stores these bytes
            if self._blobs is None:
                self._blobs = {}
            self._blobs[sp.index] = blob
        return output

    def _reporter(self, sp: StepPlan) -> Callable[..., None]:
        def report(
            done: float, total: float | None, message: str | None, unit: str | None = None
        ) -> None:
            if self._events.active:
                self._events.emit(
                    StepProgress(
                        execution_id=self.record.id,
                        workflow=self.record.workflow,
                        at=self.s.clock(),
                        step_id=sp.id,
                        done=done,
                        total=total,
                        message=message,
                        unit=unit,
                    )
                )

        return report

    async def _run_child(self, sp: StepPlan, params: Any) -> Any:
        """Run a child workflow inside this step (so inside the parent's nursery).

        On resume, the child execution this step started before the crash is
        taken up (its finished steps are not run again) rather than started anew.
        """
        child_plan = sp.child
        assert child_plan is not None
        s = self.s
        previous = await s.store.find_child(self.record.id, sp.id)
        if previous is not None and previous.status == SUCCEEDED:
            return previous.result
        if previous is not None and previous.status not in TERMINAL_EXECUTION:
            child = WorkflowRun(s, child_plan, previous)
            child.restore()
        else:
            try:
                inputs = child_plan.bind_inputs(params)
            except CorralError as exc:
                raise NonRetryable(f"child workflow {child_plan.name!r}: {exc}") from None
            record = new_record(
                s.new_id(),
                child_plan,
                inputs,
                parent_id=self.record.id,
                parent_step=sp.id,
                definition=self.record.definition,
                created_at=s.clock(),
            )
            await s.store.create_execution(record)
            child = WorkflowRun(s, child_plan, record)
        outcome = await child.run()
        if outcome.status == SUCCEEDED:
            return outcome.result
        assert outcome.exception is not None
        raise outcome.exception


def new_record(
    execution_id: str,
    plan: Plan,
    inputs: dict[str, Any],
    *,
    priority: int = 0,
    key: str | None = None,
    parent_id: str | None = None,
    parent_step: str | None = None,
    definition: str | None = None,
    owner: str | None = None,
    lease_expires_at: float | None = None,
    created_at: float | None = None,
    retry_of: str | None = None,
) -> ExecutionRecord:
    """A fresh ``pending`` execution record with a ``pending`` record per step."""
    return ExecutionRecord(
        id=execution_id,
        workflow=plan.spec.name,
        version=plan.spec.version,
        priority=priority,
        inputs=inputs,
        parent_id=parent_id,
        parent_step=parent_step,
        key=key,
        owner=owner,
        lease_expires_at=lease_expires_at,
        definition=definition,
        created_at=now() if created_at is None else created_at,
        steps=[
            StepRecord(step_id=step_id, handler=handler, workflow=workflow)
            for step_id, handler, workflow in plan.step_records()
        ],
        handlers=plan.handler_names(),
        retry_of=retry_of,
    )


def _encoded(sp: StepPlan, output: Any) -> bytes:
    """The output, JSON-encoded: proof that it can be stored (and the bytes
    the step cache keeps). A value that cannot be is a failure no retry
    fixes."""
    try:
        return encode_output(output)
    except UnstorableOutput as exc:
        raise NonRetryable(
            f"handler {sp.handler_name!r} returned a value that cannot be stored: {exc}"
        ) from None


def _plain(params: Any) -> Any:
    return msgspec.to_builtins(params) if isinstance(params, msgspec.Struct) else params


def _hashable(value: Any) -> Any:
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return msgspec.json.encode(value, order="sorted")
