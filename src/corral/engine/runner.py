"""One workflow = one nursery. Runs a :class:`~corral.plan.Plan` to its end.

Steps are tasks in the workflow's nursery, started eagerly as soon as what they
need has finished (and within ``max_parallel_steps``). Cancelling the
workflow's scope cancels every step; a step never outlives its workflow. Each
step task catches its handler's errors itself, so the nursery only ever sees
``Cancelled``: failure policy is decided here, not by exception propagation.
Terminal statuses are written in shielded scopes so that cancellation cannot
lose them.
"""

from __future__ import annotations

import hashlib
import heapq
import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgspec
import trio

from corral.engine.conditions import ConditionError
from corral.engine.retry import backoff_delay, should_retry
from corral.errors import (
    CorralError,
    HandlerError,
    NonRetryable,
    StepTimedOut,
    WorkflowCancelled,
    WorkflowFailed,
    WorkflowTimedOut,
)
from corral.model import (
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
from corral.plugins import StepContext
from corral.references import RefError, resolve
from corral.storage.base import CacheEntry

if TYPE_CHECKING:
    from corral.engine.events import EventBus
    from corral.engine.metrics import ExecutionMetrics
    from corral.engine.resources import ResourceManager
    from corral.engine.strategy import ExecutionStrategy
    from corral.plan import Plan, StepPlan
    from corral.storage.base import Store

__all__ = ["Outcome", "Services", "WorkflowRun"]

_OK = frozenset({"succeeded", "cached"})


@dataclass(slots=True)
class Services:
    """What a run needs from its engine."""

    store: Store
    resources: ResourceManager
    strategy: ExecutionStrategy
    metrics: ExecutionMetrics
    events: EventBus
    owner: str
    status_write_timeout: float
    new_id: Callable[[], str]
    rand: Callable[[], float] = random.random


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


class _Failure(Exception):
    """Internal: a step failed for good (carries the original exception)."""

    def __init__(self, status: str, exc: BaseException) -> None:
        self.status = status
        self.exc = exc


class WorkflowRun:
    """The run of one execution. ``await run.run()`` returns its :class:`Outcome`."""

    def __init__(
        self,
        services: Services,
        plan: Plan,
        record: ExecutionRecord,
        *,
        submitted_at: float | None = None,
    ) -> None:
        self.s = services
        self.plan = plan
        self.record = record
        self.inputs = record.inputs
        self.steps: list[StepRecord] = record.steps
        self.outputs: list[Any] = [None] * len(plan.steps)
        self.status: list[str] = ["pending"] * len(plan.steps)
        self._remaining = [len(sp.needs) for sp in plan.steps]
        self._ready: list[tuple[tuple[float, int], int]] = []
        self._active = 0
        self._limit = plan.spec.settings.max_parallel_steps or math.inf
        self._ranks = services.strategy.ranks(plan)
        self._nursery: trio.Nursery | None = None
        self._scope = trio.CancelScope()
        self._cancel_reason: str | None = None
        self._failure: tuple[str, str, BaseException] | None = None  # step, status, exc
        self._submitted_at = submitted_at
        self._first_step = True
        self._events = services.events

    # ------------------------------------------------------------ control

    def cancel(self, reason: str = "cancelled") -> None:
        """Cancel the whole workflow (every running step)."""
        if self._cancel_reason is None:
            self._cancel_reason = reason
        self._scope.cancel()

    # ------------------------------------------------------------ the run

    async def run(self) -> Outcome:
        s = self.s
        rec = self.record
        rec.status = "running"
        rec.started_at = now()
        t0 = trio.current_time()
        outcome: Outcome | None = None
        try:
            await s.store.start_execution(rec.id, s.owner, rec.started_at)
            s.metrics.started += 1
            if self._events.active:
                self._events.emit(
                    WorkflowStarted(execution_id=rec.id, workflow=rec.workflow, at=now())
                )
            timeout = self.plan.spec.settings.timeout
            if timeout is not None:
                self._scope.deadline = t0 + timeout
            with self._scope:
                async with trio.open_nursery() as nursery:
                    self._nursery = nursery
                    for i, n in enumerate(self._remaining):
                        if n == 0:
                            heapq.heappush(self._ready, (self._ranks[i], i))
                    self._schedule()
            outcome = self._conclude()
        except BaseException as exc:
            if not is_cancellation(exc):
                raise
            # The engine itself is being cancelled (shutdown, or a parent step).
            outcome = Outcome(
                "cancelled",
                error=ErrorInfo("WorkflowCancelled", "cancelled with its engine or parent"),
                exception=WorkflowCancelled(rec.id, "cancelled with its engine or parent"),
            )
            raise
        finally:
            if outcome is None:  # an unexpected error inside the engine itself
                outcome = Outcome("failed", error=ErrorInfo("InternalError", "engine error"))
            await self._finish(outcome, trio.current_time() - t0)
        return outcome

    def _conclude(self) -> Outcome:
        rec = self.record
        if self._cancel_reason is not None:
            return Outcome(
                "cancelled",
                error=ErrorInfo("WorkflowCancelled", self._cancel_reason),
                exception=WorkflowCancelled(rec.id, self._cancel_reason),
            )
        if self._scope.cancelled_caught and self._failure is None:
            limit = self.plan.spec.settings.timeout
            msg = f"workflow {rec.workflow!r} exceeded its timeout of {limit}s"
            return Outcome(
                "timed_out",
                error=ErrorInfo("WorkflowTimedOut", msg),
                exception=WorkflowTimedOut(msg, execution_id=rec.id),
            )
        if self._failure is not None:
            step_id, status, exc = self._failure
            cls = WorkflowTimedOut if status == "timed_out" else WorkflowFailed
            msg = (
                f"workflow {rec.workflow!r} failed: step {step_id!r} {status}: "
                f"{type(exc).__name__}: {exc}"
            )
            return Outcome(
                "timed_out" if status == "timed_out" else "failed",
                error=ErrorInfo(type(exc).__name__, str(exc), step=step_id),
                exception=cls(msg, execution_id=rec.id, step=step_id, cause=exc),
            )
        try:
            result = self._result()
        except RefError as exc:
            msg = f"workflow {rec.workflow!r}: cannot build its output: {exc}"
            return Outcome(
                "failed",
                error=ErrorInfo("RefError", msg),
                exception=WorkflowFailed(msg, execution_id=rec.id, cause=exc),
            )
        return Outcome("succeeded", result=result)

    def _result(self) -> Any:
        plan = self.plan
        if plan.output is not msgspec.UNSET:
            done = {
                plan.steps[i].id: self.outputs[i] for i, st in enumerate(self.status) if st in _OK
            }
            return resolve(plan.output, self.inputs, done)
        return {plan.steps[i].id: self.outputs[i] for i in plan.sinks if self.status[i] in _OK}

    async def _finish(self, outcome: Outcome, duration: float) -> None:
        s = self.s
        rec = self.record
        rec.status = outcome.status  # type: ignore[assignment]
        rec.result = outcome.result
        rec.error = outcome.error
        rec.finished_at = now()
        with trio.CancelScope(shield=True) as scope:
            scope.relative_deadline = s.status_write_timeout
            for i, st in enumerate(self.status):
                if st == "pending":
                    # Never started: the workflow ended (failure, cancel, timeout) first.
                    await self._set(i, "cancelled" if outcome.status != "succeeded" else "skipped")
            await s.store.finish_execution(
                rec.id,
                outcome.status,  # type: ignore[arg-type]
                result=outcome.result,
                error=outcome.error,
                finished_at=rec.finished_at,
            )
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

    def _schedule(self) -> None:
        nursery = self._nursery
        assert nursery is not None
        if nursery.cancel_scope.cancel_called:
            return
        while self._ready and self._active < self._limit:
            _, i = heapq.heappop(self._ready)
            if self.status[i] != "pending":
                continue
            self._active += 1
            self.status[i] = "running"
            nursery.start_soon(self._step_task, self.plan.steps[i])

    async def _step_task(self, sp: StepPlan) -> None:
        try:
            status = await self._execute(sp)
        finally:
            self._active -= 1
        self._after(sp, status)
        await self._flush_skips()
        self._schedule()

    def _after(self, sp: StepPlan, status: str) -> None:
        if status in _OK:
            for j in sp.dependents:
                self._remaining[j] -= 1
                if self._remaining[j] == 0 and self.status[j] == "pending":
                    heapq.heappush(self._ready, (self._ranks[j], j))
            return
        if status in ("failed", "timed_out") and self.plan.spec.settings.on_failure == "fail_fast":
            assert self._nursery is not None
            self._nursery.cancel_scope.cancel()
            return
        # skipped by its condition, or failed under `continue`: dependents cannot run.
        self._skip_descendants(sp)

    def _skip_descendants(self, sp: StepPlan) -> None:
        stack = list(sp.dependents)
        while stack:
            j = stack.pop()
            if self.status[j] == "pending":
                self.status[j] = "skip"
                stack.extend(self.plan.steps[j].dependents)

    async def _flush_skips(self) -> None:
        for j, st in enumerate(self.status):
            if st == "skip":
                await self._set(j, "skipped")

    async def _set(self, i: int, status: str) -> None:
        """Write a terminal status for a step that never ran."""
        self.status[i] = status
        rec = self.steps[i]
        rec.status = status  # type: ignore[assignment]
        rec.finished_at = now()
        await self.s.store.record_step(self.record.id, rec)
        self.s.metrics.step_finished(status, None)
        if self._events.active:
            self._emit_step_finished(rec)

    def _emit_step_finished(self, rec: StepRecord) -> None:
        self._events.emit(
            StepFinished(
                execution_id=self.record.id,
                workflow=self.record.workflow,
                at=now(),
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
            try:
                output, status = await self._attempts(sp, rec)
            except _Failure as failure:
                status = failure.status
                rec.error = ErrorInfo(type(failure.exc).__name__, str(failure.exc), step=sp.id)
                if self._failure is None:
                    self._failure = (sp.id, status, failure.exc)
                output = None
        except BaseException as exc:
            if not is_cancellation(exc):
                raise
            rec.status = "cancelled"
            self.status[i] = "cancelled"
            rec.finished_at = now()
            with trio.CancelScope(shield=True) as scope:
                scope.relative_deadline = self.s.status_write_timeout
                await self.s.store.record_step(self.record.id, rec)
            self.s.metrics.step_finished("cancelled", rec.duration)
            if self._events.active:
                self._emit_step_finished(rec)
            raise
        self.outputs[i] = output
        self.status[i] = status
        rec.status = status  # type: ignore[assignment]
        rec.output = output
        rec.finished_at = now()
        with trio.CancelScope(shield=True) as scope:
            # A step's output is recorded before its dependents can start.
            scope.relative_deadline = self.s.status_write_timeout
            await self.s.store.record_step(self.record.id, rec)
        duration = rec.duration
        self.s.metrics.step_finished(status, duration)
        if status == "succeeded" and duration is not None:
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

    async def _attempts(self, sp: StepPlan, rec: StepRecord) -> tuple[Any, str]:
        s = self.s
        upstream_map = {self.plan.steps[d].id: self.outputs[d] for d in sp.needs}
        if sp.when is not None:
            try:
                if not sp.when.test(self._context_for_conditions(sp)):
                    return None, "skipped"
            except ConditionError as exc:
                raise _Failure("failed", exc) from None

        params = sp.static_params
        resolved: Any = None
        if params is msgspec.UNSET:
            try:
                resolved = resolve(sp.params, self.inputs, self._done_outputs(sp))
            except RefError as exc:
                raise _Failure("failed", HandlerError(f"params: {exc}")) from None
            if sp.handler is not None:
                try:
                    params = msgspec.convert(resolved, sp.handler.Params)
                except msgspec.ValidationError as exc:
                    raise _Failure(
                        "failed", HandlerError(f"{sp.handler.name}: params after references: {exc}")
                    ) from None
            else:
                params = resolved

        cache_key = None
        if sp.cache and sp.handler is not None:
            cache_key = _cache_key(sp, params, upstream_map)
            entry = await s.store.get_cache(cache_key, now())
            if entry is not None:
                rec.started_at = rec.finished_at = now()
                return entry.value, "cached"

        keyed = None
        if sp.key is not None and sp.spec.concurrency is not None:
            try:
                key_value = sp.key.evaluate({"inputs": self.inputs, "params": _plain(params)})
            except ConditionError as exc:
                raise _Failure("failed", exc) from None
            conc = sp.spec.concurrency
            keyed = (
                s.resources.keyed(conc.name or sp.handler_name, conc.limit),
                _hashable(key_value),
            )

        attempt = 0
        while True:
            attempt += 1
            rec.attempts = attempt
            rec.status = "running"
            if rec.started_at is None:
                rec.started_at = now()
            await s.store.record_step(self.record.id, rec)
            s.metrics.steps_started += 1
            if self._first_step:
                self._first_step = False
                if self._submitted_at is not None:
                    s.metrics.start_latency.observe(trio.current_time() - self._submitted_at)
            if self._events.active:
                self._events.emit(
                    StepStarted(
                        execution_id=self.record.id,
                        workflow=self.record.workflow,
                        at=now(),
                        step_id=sp.id,
                        attempt=attempt,
                    )
                )
            try:
                output = await self._attempt(sp, params, upstream_map, attempt, keyed)
            except Exception as exc:
                status = "timed_out" if isinstance(exc, StepTimedOut) else "failed"
                if not should_retry(sp.retry, exc, attempt):
                    raise _Failure(status, exc) from None
                delay = backoff_delay(sp.retry, attempt, s.rand)
                s.metrics.retried += 1
                if self._events.active:
                    self._events.emit(
                        StepRetrying(
                            execution_id=self.record.id,
                            workflow=self.record.workflow,
                            at=now(),
                            step_id=sp.id,
                            attempt=attempt,
                            delay=delay,
                            error=ErrorInfo(type(exc).__name__, str(exc), step=sp.id),
                        )
                    )
                await trio.sleep(delay)
                continue
            if cache_key is not None:
                ttl = sp.cache_ttl
                t = now()
                await s.store.put_cache(
                    CacheEntry(cache_key, output, t, None if ttl is None else t + ttl)
                )
            return output, "succeeded"

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
            else _nullcontext()
        ):
            timeout = spec.timeout
            with trio.move_on_after(timeout if timeout is not None else math.inf) as scope:
                if sp.child is not None:
                    return await self._run_child(sp, params)
                assert sp.handler is not None
                ctx = StepContext(
                    execution_id=self.record.id,
                    workflow=self.record.workflow,
                    step_id=sp.id,
                    inputs=self.inputs,
                    upstream=upstream,
                    attempt=attempt,
                    report=self._reporter(sp) if self._events.active else None,
                )
                output = await self.s.strategy.call(sp.handler, ctx, params)
                _check_encodable(sp, output)
                return output
            assert scope.cancelled_caught
            raise StepTimedOut(f"step {sp.id!r} exceeded its timeout of {timeout}s")

    def _reporter(self, sp: StepPlan) -> Callable[[float, float | None, str | None], None]:
        def report(done: float, total: float | None, message: str | None) -> None:
            if self._events.active:
                self._events.emit(
                    StepProgress(
                        execution_id=self.record.id,
                        workflow=self.record.workflow,
                        at=now(),
                        step_id=sp.id,
                        done=done,
                        total=total,
                        message=message,
                    )
                )

        return report

    async def _run_child(self, sp: StepPlan, params: Any) -> Any:
        """Run a child workflow inside this step (so inside the parent's nursery)."""
        child_plan = sp.child
        assert child_plan is not None
        try:
            inputs = child_plan.bind_inputs(params)
        except CorralError as exc:
            raise NonRetryable(f"child workflow {child_plan.name!r}: {exc}") from None
        record = new_record(self.s.new_id(), child_plan, inputs, parent_id=self.record.id)
        await self.s.store.create_execution(record)
        child = WorkflowRun(self.s, child_plan, record)
        outcome = await child.run()
        if outcome.status == "succeeded":
            return outcome.result
        assert outcome.exception is not None
        raise outcome.exception


class _nullcontext:
    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, *exc: object) -> None:
        return None


def new_record(
    execution_id: str,
    plan: Plan,
    inputs: dict[str, Any],
    *,
    priority: int = 0,
    key: str | None = None,
    parent_id: str | None = None,
) -> ExecutionRecord:
    """A fresh ``pending`` execution record with a ``pending`` record per step."""
    return ExecutionRecord(
        id=execution_id,
        workflow=plan.spec.name,
        version=plan.spec.version,
        priority=priority,
        inputs=inputs,
        parent_id=parent_id,
        key=key,
        created_at=now(),
        steps=[StepRecord(step_id=sp.id, handler=sp.handler_name) for sp in plan.steps],
    )


def _check_encodable(sp: StepPlan, output: Any) -> None:
    try:
        msgspec.json.encode(output)
    except (TypeError, ValueError, OverflowError) as exc:
        raise NonRetryable(
            f"handler {sp.handler_name!r} returned a value that cannot be stored: {exc}"
        ) from None


def _plain(params: Any) -> Any:
    return msgspec.to_builtins(params) if isinstance(params, msgspec.Struct) else params


def _hashable(value: Any) -> Any:
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return msgspec.json.encode(value, order="sorted")


def _cache_key(sp: StepPlan, params: Any, upstream: dict[str, Any]) -> str:
    assert sp.handler is not None
    h = hashlib.sha256()
    h.update(f"{sp.handler.name}\0{sp.handler.version}\0".encode())
    h.update(msgspec.json.encode(_plain(params), order="sorted"))
    h.update(b"\0")
    h.update(msgspec.json.encode(upstream, order="sorted"))
    return h.hexdigest()
