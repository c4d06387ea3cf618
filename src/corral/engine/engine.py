"""The Engine: owns the store, the plugins, the limits, and every running workflow.

``open_engine()`` opens one root nursery. The dispatcher and every workflow
run in it; each workflow opens its own nursery for its steps. Leaving the
``async with`` block normally waits for every admitted execution to finish
(like a nursery waits for its children); leaving it with an exception (or
calling ``engine.close(cancel=True)``) cancels them, and each records
``cancelled``.
"""

from __future__ import annotations

import itertools
import os
import socket
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import msgspec
import trio

from corral.compiler import compile_spec, digest_of
from corral.engine.dispatcher import Dispatcher, Ticket
from corral.engine.events import EventBus, Subscription
from corral.engine.metrics import ExecutionMetrics, MetricsSnapshot
from corral.engine.resources import MemoryGuard, ResourceManager
from corral.engine.runner import Outcome, Services, WorkflowRun, is_cancellation, new_record
from corral.engine.strategy import ExecutionStrategy
from corral.errors import (
    ConfigError,
    EngineClosed,
    ExecutionNotFound,
    InputError,
    Overloaded,
    SpecError,
    WorkflowCancelled,
    WorkflowFailed,
    WorkflowTimedOut,
)
from corral.loader import load_file
from corral.model import (
    TERMINAL_EXECUTION,
    ErrorInfo,
    ExecutionRecord,
    Limits,
    WorkflowSpec,
    WorkflowSubmitted,
    now,
)
from corral.plan import Plan
from corral.plugins.manager import HandlerRegistry, build_registry
from corral.storage import Store, open_store

__all__ = ["Engine", "ExecutionHandle", "open_engine"]

SpecLike = WorkflowSpec | Plan | str | os.PathLike[str] | Any
"""A spec, a compiled plan, a path to a workflow file, or a ``corral.Workflow`` builder."""


class _Completion:
    __slots__ = ("done", "outcome", "run")

    def __init__(self) -> None:
        self.done = trio.Event()
        self.outcome: Outcome | None = None
        self.run: WorkflowRun | None = None


class ExecutionHandle:
    """A submitted execution: ``.id`` and ``await .result()``."""

    def __init__(self, engine: Engine, execution_id: str, completion: _Completion | None) -> None:
        self._engine = engine
        self.id = execution_id
        self._completion = completion

    async def wait(self) -> ExecutionRecord:
        """Wait until the execution ends; return its record."""
        if self._completion is not None:
            await self._completion.done.wait()
            return await self._engine.get(self.id)
        while True:  # submitted elsewhere (idempotency hit): follow the store
            record = await self._engine.get(self.id)
            if record.status in TERMINAL_EXECUTION:
                return record
            await trio.sleep(0.05)

    async def result(self) -> Any:
        """The workflow's result; raises ``WorkflowFailed`` / ``WorkflowCancelled`` /
        ``WorkflowTimedOut`` if it did not succeed."""
        if self._completion is not None:
            await self._completion.done.wait()
            outcome = self._completion.outcome
            assert outcome is not None
            if outcome.status == "succeeded":
                return outcome.result
            assert outcome.exception is not None
            raise outcome.exception
        record = await self.wait()
        return _result_of(record)

    async def cancel(self) -> None:
        await self._engine.cancel(self.id)

    def __repr__(self) -> str:
        return f"<ExecutionHandle {self.id}>"


def _result_of(record: ExecutionRecord) -> Any:
    if record.status == "succeeded":
        return record.result
    err = record.error or ErrorInfo("Unknown", record.status)
    if record.status == "cancelled":
        raise WorkflowCancelled(record.id, err.message)
    cls = WorkflowTimedOut if record.status == "timed_out" else WorkflowFailed
    raise cls(
        f"workflow {record.workflow!r} {record.status}: {err.type}: {err.message}",
        execution_id=record.id,
        step=err.step,
        error_type=err.type,
    )


class Engine:
    """Runs workflows. Create with :func:`open_engine`."""

    def __init__(
        self,
        *,
        store: Store,
        registry: HandlerRegistry,
        limits: Limits,
        nursery: trio.Nursery,
        memory_reader: Any = None,
    ) -> None:
        self.store = store
        self.registry = registry
        self.limits = limits
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._nursery = nursery
        guard = MemoryGuard(
            limits.memory_soft_mb, limits.memory_hard_mb, limits.memory_interval, memory_reader
        )
        self.resources = ResourceManager(limits.pool_sizes(), memory=guard)
        self.dispatcher = Dispatcher(limits.max_running_workflows, limits.max_queued, guard)
        self.strategy = ExecutionStrategy()
        self.events = EventBus(registry.pm.hook, limits.subscriber_buffer)
        self._metrics = ExecutionMetrics(
            running=lambda: self.dispatcher.running,
            queued=lambda: self.dispatcher.queued,
            dropped=lambda: self.events.dropped,
        )
        self._ids = itertools.count()
        self._id_prefix = uuid.uuid4().hex[:12]
        self._services = Services(
            store=store,
            resources=self.resources,
            strategy=self.strategy,
            metrics=self._metrics,
            events=self.events,
            owner=self.owner,
            status_write_timeout=limits.status_write_timeout,
            new_id=self._new_id,
        )
        self._active: dict[str, _Completion] = {}
        self._idle = trio.Event()
        self._idle.set()
        self._plans: OrderedDict[tuple[str, str | None, Path | None], Plan] = OrderedDict()
        self._closing = False

    # ------------------------------------------------------------ specs

    def _new_id(self) -> str:
        # Unique and cheap: a random per-engine prefix and a counter.
        return f"{self._id_prefix}{next(self._ids):012x}"

    def prepare(self, spec: SpecLike) -> Plan:
        """Validate and compile a spec; raises ``SpecError``.

        Compiled plans are cached by the spec's content hash (so mutating a
        spec or a builder after a run is safe); files are read on every call.
        """
        pools = self.resources.pool_sizes()
        file: str | None = None
        base_dir: Path | None = None
        if isinstance(spec, Plan):
            if spec.bound and spec.pools == frozenset(pools.items()) and self._same_handlers(spec):
                return self._fix_keyed_limits(spec)
            spec_obj, file, base_dir = spec.spec, spec.file, spec.base_dir
        elif isinstance(spec, WorkflowSpec):
            spec_obj = spec
        elif isinstance(spec, (str, os.PathLike)):
            return self._fix_keyed_limits(
                load_file(Path(spec), handlers=self.registry, pools=pools)
            )
        elif hasattr(spec, "build") and callable(spec.build):
            spec_obj = spec.build()
        else:
            raise SpecError(
                f"cannot run a {type(spec).__name__}: pass a WorkflowSpec, a corral.Workflow, "
                "or the path of a workflow file"
            )
        key = (digest_of(spec_obj), file, base_dir)
        plan = self._plans.get(key)
        if plan is not None:
            self._plans.move_to_end(key)
            return plan  # its keyed limits were fixed when it was compiled
        plan = compile_spec(
            spec_obj, handlers=self.registry, pools=pools, file=file, base_dir=base_dir
        )
        self._fix_keyed_limits(plan)
        self._plans[key] = plan
        if len(self._plans) > 256:
            self._plans.popitem(last=False)
        return plan

    def _same_handlers(self, plan: Plan) -> bool:
        """Whether a plan compiled elsewhere uses this engine's handler classes."""
        for sp in plan.steps:
            if sp.handler is not None and self.registry.get(sp.handler.name) is not sp.handler:
                return False
            if sp.child is not None and not self._same_handlers(sp.child):
                return False
        return True

    def _fix_keyed_limits(self, plan: Plan, prefix: str = "$") -> Plan:
        """Concurrency limits are shared by name across workflows, so one name
        has one limit: refuse a spec that declares another."""
        for sp in plan.steps:
            conc = sp.spec.concurrency
            if conc is not None:
                name = conc.name or sp.handler_name
                fixed = self.resources.check_keyed(name, conc.limit)
                if fixed is not None:
                    raise SpecError(
                        f"concurrency {name!r} already has limit {fixed} in this engine; "
                        f"a name has one limit (use another name for limit {conc.limit})",
                        file=plan.file,
                        path=f"{prefix}.steps[{sp.index}].concurrency.limit",
                    )
                self.resources.keyed(name, conc.limit)
            if sp.child is not None:
                self._fix_keyed_limits(sp.child, f"{prefix}.steps[{sp.index}].workflow")
        return plan

    # ------------------------------------------------------------ submit / run

    async def submit(
        self,
        spec: SpecLike,
        inputs: Mapping[str, Any] | None = None,
        *,
        key: str | None = None,
        priority: int = 0,
    ) -> ExecutionHandle:
        """Admit an execution and return its handle at once (before it runs).

        Raises ``SpecError``/``InputError`` for bad specs or inputs and
        ``Overloaded`` (without waiting) when the queue is full or memory is
        above the hard mark. With ``key``, an execution already submitted with
        that key is returned instead of starting a new one.
        """
        await trio.lowlevel.checkpoint_if_cancelled()
        if self._closing:
            raise EngineClosed("the engine is closing and accepts no new work")
        plan = self.prepare(spec)
        bound = plan.bind_inputs(inputs)
        if not isinstance(priority, int) or isinstance(priority, bool):
            raise InputError(
                f"priority must be an int, got {type(priority).__name__}", path="$.priority"
            )
        if key is not None and (not isinstance(key, str) or not key):
            raise InputError(f"key must be a non-empty string, got {key!r}", path="$.key")
        if key is not None:
            existing = await self.store.find_by_key(key)
            if existing is not None:
                return self._handle_for(existing.id)
        try:
            self.dispatcher.check(priority)
        except Overloaded:
            self._metrics.rejected += 1
            raise
        record = new_record(self._new_id(), plan, bound, priority=priority, key=key)
        stored, created = await self.store.create_execution(record)
        if not created:
            return self._handle_for(stored.id)
        completion = _Completion()
        self._active[record.id] = completion
        self._idle = trio.Event() if self._idle.is_set() else self._idle
        ticket = Ticket(record.id, priority, trio.current_time(), (plan, record))
        try:
            self.dispatcher.offer(ticket)
        except Overloaded:
            self._metrics.rejected += 1
            await self._finalize_unstarted(record, "rejected: engine overloaded")
            raise
        self._metrics.submitted += 1
        if self.events.active:
            self.events.emit(
                WorkflowSubmitted(
                    execution_id=record.id, workflow=record.workflow, at=now(), priority=priority
                )
            )
        return ExecutionHandle(self, record.id, completion)

    async def run(
        self, spec: SpecLike, inputs: Mapping[str, Any] | None = None, *, priority: int = 0
    ) -> Any:
        """Submit and wait: the workflow's result (or its failure raised)."""
        handle = await self.submit(spec, inputs, priority=priority)
        return await handle.result()

    def _handle_for(self, execution_id: str) -> ExecutionHandle:
        return ExecutionHandle(self, execution_id, self._active.get(execution_id))

    async def _start(self, ticket: Ticket) -> None:
        plan, record = ticket.payload
        completion = self._active[record.id]
        self._metrics.queue_wait.observe(trio.current_time() - ticket.submitted_at)
        run = WorkflowRun(self._services, plan, record, submitted_at=ticket.submitted_at)
        completion.run = run
        try:
            completion.outcome = await run.run()
        except BaseException as exc:
            if not is_cancellation(exc):
                raise
            completion.outcome = Outcome(
                "cancelled",
                error=ErrorInfo("WorkflowCancelled", "engine closed"),
                exception=WorkflowCancelled(record.id, "cancelled because the engine closed"),
            )
            raise
        finally:
            self.dispatcher.release()
            self._complete(record.id)

    def _complete(self, execution_id: str) -> None:
        completion = self._active.pop(execution_id, None)
        if completion is not None:
            completion.done.set()
        if not self._active:
            self._idle.set()

    async def _finalize_unstarted(self, record: ExecutionRecord, reason: str) -> None:
        completion = self._active.get(record.id)
        with trio.CancelScope(shield=True):
            for step in record.steps:
                step.status = "cancelled"
                await self.store.record_step(record.id, step)
            error = ErrorInfo("WorkflowCancelled", reason)
            await self.store.finish_execution(
                record.id, "cancelled", result=None, error=error, finished_at=now()
            )
        self._metrics.workflow_finished("cancelled", 0.0)
        if completion is not None:
            completion.outcome = Outcome(
                "cancelled", error=error, exception=WorkflowCancelled(record.id, reason)
            )
        self._complete(record.id)

    # ------------------------------------------------------------ control

    async def cancel(self, execution_id: str) -> ExecutionRecord:
        """Cancel an execution and wait until it has stopped; returns its record.

        Cancelling a finished execution changes nothing. Unknown ids raise
        ``ExecutionNotFound``.
        """
        ticket = self.dispatcher.withdraw(execution_id)
        if ticket is not None:
            await self._finalize_unstarted(ticket.payload[1], "cancelled before it started")
            return await self.get(execution_id)
        completion = self._active.get(execution_id)
        if completion is None:
            return await self.get(execution_id)  # finished, or raises ExecutionNotFound
        if completion.run is not None:
            completion.run.cancel("cancelled")
        await completion.done.wait()
        return await self.get(execution_id)

    async def get(self, execution_id: str) -> ExecutionRecord:
        """The execution's record with its per-step records."""
        if not isinstance(execution_id, str):
            raise ExecutionNotFound(repr(execution_id))
        return await self.store.get_execution(execution_id)

    async def list(
        self, *, status: str | None = None, workflow: str | None = None, limit: int = 100
    ) -> list[ExecutionRecord]:
        return await self.store.list_executions(status=status, workflow=workflow, limit=limit)

    def subscribe(self, buffer: int | None = None) -> Subscription:
        """Lifecycle events as an async iterator with a bounded buffer."""
        return self.events.subscribe(buffer)

    def metrics(self) -> MetricsSnapshot:
        return self._metrics.snapshot()

    def prometheus_metrics(self) -> str:
        """Metrics in Prometheus text exposition format."""
        return self._metrics.prometheus()

    def statistics(self) -> dict[str, Any]:
        """Limiter statistics: dispatcher, pools, keyed limiters, memory guard."""
        return {"dispatcher": self.dispatcher.statistics(), **self.resources.statistics()}

    async def wait_idle(self) -> None:
        """Wait until no execution is queued or running."""
        while self._active:
            await self._idle.wait()

    async def close(self, *, cancel: bool = False) -> None:
        """Stop accepting work; wait for admitted work, or cancel it."""
        self._closing = True
        if cancel:
            for execution_id in list(self._active):
                ticket = self.dispatcher.withdraw(execution_id)
                if ticket is not None:
                    await self._finalize_unstarted(ticket.payload[1], "engine closed")
            for completion in list(self._active.values()):
                if completion.run is not None:
                    completion.run.cancel("engine closed")
        await self.wait_idle()


def _check_limits(limits: Limits | None) -> Limits:
    """Validate limits (a Struct's constructor does not check its constraints)."""
    if limits is None:
        return Limits()
    if not isinstance(limits, Limits):
        raise ConfigError(f"limits must be a corral.Limits, got {type(limits).__name__}")
    try:
        return msgspec.convert(msgspec.to_builtins(limits), Limits)
    except (msgspec.ValidationError, TypeError) as exc:
        message = str(exc).replace("- at `$", "- at `limits")
        raise ConfigError(f"invalid corral.Limits: {message}") from None


@asynccontextmanager
async def open_engine(
    store: str | Store = "memory://",
    *,
    plugins: Sequence[object] = (),
    limits: Limits | None = None,
    entry_points: bool = True,
    memory_reader: Any = None,
) -> AsyncIterator[Engine]:
    """Open an engine: ``async with corral.open_engine() as engine: ...``.

    ``store`` is a store URL or a :class:`~corral.storage.Store`; ``plugins``
    are extra pluggy plugins (modules or objects with ``corral_*`` hooks);
    ``entry_points=False`` skips installed plugins (handy in tests);
    ``memory_reader`` replaces the RSS sampler (tests).
    """
    limits = _check_limits(limits)
    registry = build_registry(plugins, entry_points=entry_points)
    the_store = open_store(store)
    await the_store.open()
    try:
        async with trio.open_nursery() as nursery:
            engine = Engine(
                store=the_store,
                registry=registry,
                limits=limits,
                nursery=nursery,
                memory_reader=memory_reader,
            )
            if engine.resources.memory.enabled:
                engine.resources.memory.sample()
                nursery.start_soon(engine.resources.memory.run)
            nursery.start_soon(engine.dispatcher.run, nursery, engine._start)
            try:
                yield engine
                await engine.close()
            except BaseException:
                with trio.CancelScope(shield=True):
                    await engine.close(cancel=True)
                raise
            finally:
                engine.events.close()
                nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        # The body's own exception (WorkflowFailed, KeyboardInterrupt ...) comes
        # out of the root nursery wrapped in a group; give it back unwrapped.
        if len(group.exceptions) == 1:
            raise group.exceptions[0] from None
        raise
    finally:
        with trio.CancelScope(shield=True):
            await the_store.close()
