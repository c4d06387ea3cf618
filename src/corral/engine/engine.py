"""The Engine: owns the store, the plugins, the limits, and every running workflow.

``open_engine()`` opens one root nursery. The store's writer, the dispatcher,
the lease keeper and every workflow run in it; each workflow opens its own
nursery for its steps. Leaving the ``async with`` block normally waits for
every admitted execution to finish (like a nursery waits for its children);
leaving it with an exception (or calling ``engine.close(cancel=True)``)
cancels them, and each records ``cancelled``.

With a persistent store, every execution has an owner (this engine) and a
lease the engine keeps renewing. An engine that opens the store takes over
executions whose lease expired (their engine died) and resumes them.

One class in one module of about 1,400 lines, on purpose: its parts
(submitting, control, durability, pauses, retries, the background loops)
all read and change the same state (the runs in flight, the dispatcher's
queue, the parked executions, the leases), and splitting the class would
only hide that state behind mixins. What does not share it lives beside it:
:mod:`.handles` (what ``submit`` returns), :mod:`.opening`
(``open_engine``), :mod:`.reruns` (what a retry reruns, pure),
:mod:`.dispatcher`, :mod:`.runner`.
"""

from __future__ import annotations

import builtins
import itertools
import logging
import os
import secrets
import socket
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import msgspec
import trio

from corral.core.errors import (
    EngineClosed,
    ExecutionNotFound,
    InputError,
    Overloaded,
    RetryRefused,
    SpecError,
    StoreError,
    UsageError,
    WorkflowCancelled,
    WorkflowFailed,
)
from corral.core.model import (
    TERMINAL_EXECUTION,
    ErrorInfo,
    ExecutionRecord,
    Limits,
    StepFinished,
    WorkflowFinished,
    WorkflowSpec,
    WorkflowSubmitted,
    now,
)
from corral.core.status import (
    CANCELLED,
    EXECUTION_STATUSES,
    FAILED,
    RUNNING,
    UNFINISHED,
)
from corral.engine.cache import WorkflowCache
from corral.engine.dispatcher import Dispatcher, Ticket
from corral.engine.events import EventBus, Subscription
from corral.engine.handles import ExecutionHandle, RetryPreview, _Completion
from corral.engine.leases import LeaseGuard
from corral.engine.metrics import ExecutionMetrics, MetricsSnapshot
from corral.engine.relay import ProgressRelay
from corral.engine.reruns import choose_reruns
from corral.engine.resources import MemoryGuard, ResourceManager
from corral.engine.runner import Outcome, Services, WorkflowRun, is_cancellation, new_record
from corral.engine.strategy import ExecutionStrategy
from corral.engine.watchdog import Stall
from corral.plugins.manager import HandlerRegistry
from corral.storage import Store, rules, select
from corral.storage.base import DefinitionRecord
from corral.storage.batched import BatchedStore
from corral.workflow.compiler import compile_spec, digest_of
from corral.workflow.documents import close_names
from corral.workflow.loader import FORMATS, load_file, parse_spec
from corral.workflow.plan import Plan

__all__ = ["Engine", "SpecLike"]

log = logging.getLogger("corral.engine")

SpecLike = WorkflowSpec | Plan | str | os.PathLike[str] | Any
"""A spec, a compiled plan, a path to a workflow file, the name of a stored
definition (``"name"`` or ``"name@version"``), or a ``corral.Workflow``."""


#: Execution ids: a 48-bit counter times this odd number, modulo 2**48 (a
#: bijection, so distinct counters give distinct ids), then the engine's part.
_ID_MULTIPLIER = 0x9E3779B97F4B
_ID_MASK = (1 << 48) - 1
#: From how many running executions cancelled together they are recorded in
#: one transaction (Engine._stop_many) rather than each by its own writes.
_BULK_STOP = 2


def _is_file(text: str) -> bool:
    try:
        return Path(text).is_file()
    except (OSError, ValueError):
        return False


def _looks_like_path(text: str) -> bool:
    return (
        Path(text).suffix.lower() in FORMATS
        or os.sep in text
        or (os.altsep is not None and os.altsep in text)
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
        lease: float = 30.0,
        worker_context: Any = None,
        clock: Callable[[], float] = now,
        run_here: bool = True,
        claim: bool = False,
        handlers: Sequence[str] | None = None,
        adopt: bool = True,
    ) -> None:
        self.store = store
        # adopt: take over executions whose engine died (a long-lived engine
        # does; a one-shot `corral run` leaves them to those that do).
        self.adopt = adopt
        # A client (run_here=False) only submits, reads and cancels: what it
        # submits is queued in the store for workers. A worker (claim) takes
        # queued work as it has room, only what its `handlers` can run.
        self.run_here = run_here
        # queue_in_store: what does not fit the admission queue waits in the
        # store as queued records, which this engine claims back as a worker
        # claims queued work.
        self.spills = limits.queue_in_store and run_here
        self.worker = claim and run_here
        self.claiming = self.worker or self.spills
        self.claim_handlers = None if handlers is None else sorted(handlers)
        self.clock = clock  # wall-clock time of records, leases and retention
        self.registry = registry
        self.limits = limits
        self.lease = lease
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._nursery = nursery
        guard = MemoryGuard(
            limits.memory_soft_mb, limits.memory_hard_mb, limits.memory_interval, memory_reader
        )
        self.resources = ResourceManager(limits.pool_sizes(), memory=guard)
        self._pool_items = frozenset(self.resources.pool_sizes().items())
        self.dispatcher = Dispatcher(limits.max_running_workflows, limits.max_queued, guard)
        self.strategy = ExecutionStrategy(
            worker_context=worker_context, relay=ProgressRelay(nursery)
        )
        self.events = EventBus(registry.pm.hook, limits.subscriber_buffer)
        self.cache = WorkflowCache(
            store,
            max_entries=limits.cache_max_entries,
            max_bytes=limits.cache_max_bytes,
            clock=clock,
            on_error=self._cache_error,
        )
        self._metrics = ExecutionMetrics(
            running=lambda: self.dispatcher.running,
            queued=lambda: self.dispatcher.queued,
            dropped=lambda: self.events.dropped,
        )
        # (from a random start: the first ids of two processes differ too)
        self._ids = itertools.count(secrets.randbits(48))
        self._id_prefix = uuid.uuid4().hex[:12]
        self.leases = LeaseGuard(lease)
        self._services = Services(
            store=store,
            resources=self.resources,
            strategy=self.strategy,
            metrics=self._metrics,
            events=self.events,
            cache=self.cache,
            owner=self.owner,
            status_write_timeout=limits.status_write_timeout,
            new_id=self._new_id,
            clock=clock,
            leases=self.leases,
            queue_step=(
                store.queue_step
                if isinstance(store, BatchedStore) and store.durability != "none"
                else None
            ),
        )
        self._active: dict[str, _Completion] = {}
        self._idle = trio.Event()
        self._idle.set()
        self._stored: set[str] = set()  # digests of definitions known to be in the store
        self._digests: dict[bytes, str] = {}  # a spec's plain encoding -> its digest_of
        self._closing = False
        self._draining = False  # a worker stopping: no more claims
        self._loops: list[trio.CancelScope] = []
        self._claim_wake = trio.Event()
        # Submissions went to the store (queue_in_store) and may still wait
        # there: later ones follow them, not overtake them in memory, and
        # this engine claims (an earlier engine's may wait there too).
        self._spilling = self.spills
        self.resumed = 0
        # claimed by this engine, not resumed yet (a store error): tried each round
        self._unresumed: set[str] = set()
        # Paused workflows as last read from the store (every engine on it
        # obeys them), and the executions held here until they are unpaused.
        self._paused: dict[str, float] = {}
        self._parked: dict[str, Ticket] = {}

    def _new_id(self) -> str:
        # Unique and cheap: a counter and a random per-engine part.
        # The counter, scrambled by a bijection of 48-bit numbers (an odd
        # multiplier), leads: two ids of one process differ from their first
        # characters, so a short prefix names one (as git's do).
        n = (next(self._ids) * _ID_MULTIPLIER) & _ID_MASK
        return f"{n:012x}{self._id_prefix}"

    # ------------------------------------------------------------ specs

    def prepare(self, spec: SpecLike) -> Plan:
        """Validate and compile a spec, a builder, a plan or a workflow file;
        raises ``SpecError``. Plans are cached by content hash (so mutating a
        spec or builder after a run is safe); files are read on every call."""
        pools = self.resources.pool_sizes()
        file: str | None = None
        base_dir: Path | None = None
        if isinstance(spec, Plan):
            if spec.bound and spec.pools == self._pool_items and self._same_handlers(spec):
                return self._register_keyed_limits(spec)
            spec_obj, file, base_dir = spec.spec, spec.file, spec.base_dir
        elif isinstance(spec, WorkflowSpec):
            spec_obj = spec
        elif isinstance(spec, (str, os.PathLike)):
            return self._register_keyed_limits(
                load_file(Path(spec), handlers=self.registry, pools=pools)
            )
        elif hasattr(spec, "build") and callable(spec.build):
            spec_obj = spec.build()
        else:
            raise SpecError(
                f"cannot run a {type(spec).__name__}: pass a WorkflowSpec, a corral.Workflow, "
                "the path of a workflow file or the name of a stored definition"
            )
        key = (self._digest(spec_obj), file, base_dir)
        plan = self.cache.plan(key)
        if plan is None:
            plan = compile_spec(
                spec_obj, handlers=self.registry, pools=pools, file=file, base_dir=base_dir
            )
            self._register_keyed_limits(plan)
            self.cache.keep_plan(key, plan)
        return plan

    def _digest(self, spec: WorkflowSpec) -> str:
        """:func:`digest_of` the spec, remembered by its plain encoding (a
        spec submitted again and again is hashed once; one changed since
        encodes differently, so a mutated spec is never taken for its old self)."""
        plain = msgspec.json.encode(spec)
        digest = self._digests.get(plain)
        if digest is None:
            if len(self._digests) >= 256:
                self._digests.clear()
            digest = self._digests[plain] = digest_of(spec)
        return digest

    async def _plan_for(self, spec: SpecLike) -> Plan:
        if isinstance(spec, str) and not _looks_like_path(spec) and not _is_file(spec):
            name, _, version = spec.partition("@")
            definition = await self.store.get_definition(name, version or None)
            if definition is None:
                which = f"version {version} of " if version else ""
                raise SpecError(
                    f"no stored definition for {which}workflow {name!r} and no such file; "
                    "store one with engine.create(spec), or pass a path or a spec",
                    file=spec,
                )
            return self._plan_from_definition(definition)
        return self.prepare(spec)

    async def _plan_by_digest(self, digest: str | None) -> Plan:
        """The plan of a stored definition: compiled once per engine (a worker
        runs thousands of executions of a few definitions)."""
        plan = None if digest is None else self.cache.plan((digest, None, None))
        if plan is not None:
            return plan
        definition = await self.store.get_definition_by_digest(digest) if digest else None
        if definition is None:
            raise SpecError(f"its workflow definition {digest!r} is not stored")
        return self._plan_from_definition(definition)

    def _plan_from_definition(self, definition: DefinitionRecord) -> Plan:
        key = (definition.digest, None, None)
        plan = self.cache.plan(key)
        if plan is None:
            raw = msgspec.json.decode(definition.spec)
            spec = parse_spec(raw, file=f"<definition {definition.name}@{definition.version}>")
            plan = self.prepare(spec)
            self.cache.keep_plan(key, plan)
            self._stored.add(definition.digest)
        return plan

    async def create(self, spec: SpecLike) -> DefinitionRecord:
        """Store a versioned workflow definition (WorkflowRepository).

        ``engine.submit("name")`` then runs the newest stored version and
        ``engine.submit("name@2")`` a pinned one. Storing different content
        under an existing name and version is refused: bump ``version``.
        """
        plan = self.prepare(spec)
        resolved = plan.resolved_spec()
        definition = DefinitionRecord(
            name=resolved.name,
            version=str(resolved.version),
            digest=digest_of(resolved),
            spec=msgspec.json.encode(resolved),
            created_at=self.clock(),
        )
        stored = await self.store.put_definition(definition, register=True)
        if stored.digest != definition.digest:
            raise SpecError(
                f"workflow {definition.name!r} version {definition.version} is already stored "
                "with different content; give the changed spec a new version",
                file=plan.file,
                path="$.version",
            )
        self._stored.add(stored.digest)
        return stored

    async def _ensure_definition(self, plan: Plan) -> str:
        """Store the plan's (resolved) spec once, so the execution can be resumed."""
        digest = plan.stored_digest
        if digest is None:
            resolved = plan.resolved_spec()
            digest = digest_of(resolved)
            plan.stored_digest = digest
            plan.stored_blob = msgspec.json.encode(resolved)
        if digest not in self._stored:
            assert plan.stored_blob is not None
            await self.store.put_definition(
                DefinitionRecord(
                    name=plan.spec.name,
                    version=str(plan.spec.version),
                    digest=digest,
                    spec=plan.stored_blob,
                    created_at=self.clock(),
                )
            )
            self._stored.add(digest)
        return digest

    def _same_handlers(self, plan: Plan) -> bool:
        """Whether a plan compiled elsewhere uses this engine's handler classes."""
        for sp in plan.steps:
            if sp.handler is not None and self.registry.get(sp.handler.name) is not sp.handler:
                return False
            if sp.child is not None and not self._same_handlers(sp.child):
                return False
        return True

    def _register_keyed_limits(self, plan: Plan, prefix: str = "$") -> Plan:
        """Register the plan's named concurrency limits with this engine.
        They are shared by name across workflows, so one name has one limit:
        a spec that declares another for a known name is refused."""
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
                self._register_keyed_limits(sp.child, f"{prefix}.steps[{sp.index}].workflow")
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
        if not isinstance(priority, int) or isinstance(priority, bool):
            raise InputError(
                f"priority must be an int, got {type(priority).__name__}", path="$.priority"
            )
        if key is not None and (not isinstance(key, str) or not key):
            raise InputError(f"key must be a non-empty string, got {key!r}", path="$.key")
        # (a spec or builder: no coroutine for its plan; a name reads the store)
        plan = await self._plan_for(spec) if isinstance(spec, str) else self.prepare(spec)
        bound = plan.bind_inputs(inputs)
        if key is not None:
            existing = await self.store.find_by_key(key)
            if existing is not None:
                return self._handle_for(existing.id)
        # (a paused workflow's would wait parked in memory: in the store instead)
        spill = self.spills and (
            self._spilling or not self.dispatcher.has_room() or self._held_name(plan.name)
        )
        try:
            if spill:
                self.dispatcher.memory.check_admission()  # (the hard mark still refuses)
            else:
                self.dispatcher.check(priority)
        except Overloaded:
            self._metrics.rejected += 1
            raise
        digest = plan.stored_digest
        if digest is None or digest not in self._stored:
            digest = await self._ensure_definition(plan)
        if not self.run_here or spill:
            return await self._enqueue(plan, bound, priority, key, digest)
        # It starts at once: stored as started right away, one write instead of two.
        started = self.dispatcher.starts_at_once() and not self._held_name(plan.name)
        record = self._new_record(plan, bound, priority, key, digest, owned=True)
        if started:
            record.status = RUNNING
            record.started_at = record.created_at
        # Without a key nothing is decided by the insert, so submit does not wait
        # for its commit: it is durable before the execution starts (see
        # docs/architecture.md, "Admission": submission durability).
        stored, created = await self.store.create_execution(record, wait=key is not None)
        if not created:
            return self._handle_for(stored.id)
        run = WorkflowRun(
            self._services,
            plan,
            record,
            submitted_at=trio.current_time(),
            # half the lease: room for clock skew between engines sharing a store
            fresh_until=record.created_at + self.lease / 2,
            stored_started=started,
        )
        completion = self._admit(run, priority, check=True)
        self._metrics.submitted += 1
        self._announce(record, priority)
        return ExecutionHandle(self, record.id, completion)

    def _announce(self, record: ExecutionRecord, priority: int) -> None:
        """``workflow.submitted``, for an execution admitted here."""
        if self.events.active:
            self.events.emit(
                WorkflowSubmitted(
                    execution_id=record.id,
                    workflow=record.workflow,
                    at=self.clock(),
                    priority=priority,
                )
            )

    def _new_record(
        self,
        plan: Plan,
        bound: dict[str, Any],
        priority: int,
        key: str | None,
        digest: str,
        *,
        owned: bool,
    ) -> ExecutionRecord:
        """A new top-level execution: this engine's (``owned``, under a lease)
        or queued for a worker (no owner)."""
        t = self.clock()
        return new_record(
            self._new_id(),
            plan,
            bound,
            priority=priority,
            key=key,
            definition=digest,
            owner=self.owner if owned else None,
            lease_expires_at=t + self.lease if owned else None,
            created_at=t,
        )

    async def _enqueue(
        self, plan: Plan, bound: dict[str, Any], priority: int, key: str | None, digest: str
    ) -> ExecutionHandle:
        """A client's submission, or one past the admission queue of an engine
        with ``queue_in_store``: stored with no owner, for a worker (or this
        engine) to claim (workers are told at commit)."""
        record = self._new_record(plan, bound, priority, key, digest, owned=False)
        # (a paused workflow's waits for its unpause, which starts the claims)
        startable = self.run_here and not self._held_name(plan.name)
        if startable:
            self._spilling = True
        # A client's submission is committed before it returns (a worker
        # may claim it at once); an engine's own overflow, like its other
        # submissions, only with a key (it is durable before it starts: a
        # claim reads it from the store).
        wait = not self.run_here or key is not None
        stored, created = await self.store.create_execution(record, wait=wait)
        if created:
            self._metrics.submitted += 1
            if self.run_here:
                self._announce(record, priority)
            if startable and self._room() > 0:
                self._claim_wake.set()  # room already: claim it now
        return self._handle_for(stored.id)

    def _admit(self, run: WorkflowRun, priority: int, *, check: bool) -> _Completion:
        completion = _Completion(run)
        ticket = Ticket(run.record.id, priority, trio.current_time(), completion)
        self.dispatcher.offer(ticket, check=check)
        self._active[run.record.id] = completion
        if self._idle.is_set():
            self._idle = trio.Event()
        return completion

    async def run(
        self, spec: SpecLike, inputs: Mapping[str, Any] | None = None, *, priority: int = 0
    ) -> Any:
        """Submit and wait: the workflow's result (or its failure raised)."""
        handle = await self.submit(spec, inputs, priority=priority)
        return await handle.result()

    def handle(self, execution_id: str) -> ExecutionHandle:
        """A handle on an execution by id (for example one resumed at open)."""
        return self._handle_for(execution_id)

    def _handle_for(self, execution_id: str) -> ExecutionHandle:
        return ExecutionHandle(self, execution_id, self._active.get(execution_id))

    def running_here(self, execution_id: str) -> _Completion | None:
        return self._active.get(execution_id)

    async def _start(self, ticket: Ticket) -> None:
        completion: _Completion = ticket.payload
        run = completion.run
        if self._held(run.record):  # paused: it waits here, queued, until unpaused
            self._parked[run.record.id] = ticket
            self.dispatcher.release()
            return
        self._metrics.queue_wait.observe(trio.current_time() - ticket.submitted_at)
        try:
            completion.outcome = await run.run()
        except Exception as exc:
            # Never let one execution take the engine (and every other one) down.
            log.exception("execution %s ended with an internal error", run.record.id)
            completion.outcome = Outcome(
                FAILED,
                error=ErrorInfo("InternalError", f"{type(exc).__name__}: {exc}"),
                exception=WorkflowFailed(
                    f"execution {run.record.id} failed: internal error: {exc}",
                    execution_id=run.record.id,
                    cause=exc,
                ),
            )
        except BaseException as exc:
            if not is_cancellation(exc):
                raise
            completion.outcome = Outcome(
                CANCELLED,
                error=ErrorInfo("WorkflowCancelled", "engine closed"),
                exception=WorkflowCancelled(run.record.id, "cancelled because the engine closed"),
            )
            raise
        finally:
            self.dispatcher.release()
            self._complete(run.record.id)
            if run.store_failed and run.record.parent_id is None and not self._closing:
                # Given up because its status could not be written (a full
                # disk): still leased to this engine, so resumed by it as soon
                # as the store works again, not left `running` while it lives.
                self._unresumed.add(run.record.id)

    def _complete(self, execution_id: str) -> None:
        completion = self._active.pop(execution_id, None)
        if completion is not None:
            completion.done.set()
            if self.claiming:
                self._claim_wake.set()  # room for more
        if not self._active:
            self._idle.set()

    def _drop_taken_over(
        self, completion: _Completion, reason: str = "taken over by another engine"
    ) -> None:
        """A queued execution another engine owns now (or will: a worker
        stopping): forget it, write nothing."""
        run = completion.run
        run.abandoned = True
        completion.outcome = Outcome(
            CANCELLED,
            error=ErrorInfo("WorkflowCancelled", reason),
            exception=WorkflowCancelled(run.record.id, reason),
        )
        self._complete(run.record.id)

    async def _finalize_unstarted(self, completion: _Completion, reason: str) -> None:
        await self._finalize_unstarted_many([completion], reason)

    async def _finalize_unstarted_many(self, completions: list[_Completion], reason: str) -> None:
        """Executions that never started, recorded ``cancelled`` in bulk (one
        statement per thousand in SQLite), then completed in memory."""
        error = ErrorInfo("WorkflowCancelled", reason)
        with trio.CancelScope(shield=True):
            try:
                await self.store.cancel_unstarted(
                    [c.run.record.id for c in completions], self.owner, error, self.clock()
                )
            except StoreError as exc:  # left `pending`: a later engine resumes, sees the cancel
                log.warning(
                    "could not record the cancel of %d executions: %s", len(completions), exc
                )
        for n, completion in enumerate(completions, 1):
            if n % 1000 == 0:  # let the rest of the engine run between thousands
                await trio.lowlevel.cancel_shielded_checkpoint()
            record = completion.run.record
            self._metrics.workflow_finished(CANCELLED, 0.0)
            for step in record.steps:
                step.status = CANCELLED
                self._metrics.step_finished(CANCELLED, None)
            if self.events.active:
                at = self.clock()
                for step in record.steps:
                    self.events.emit(
                        StepFinished(
                            execution_id=record.id,
                            workflow=record.workflow,
                            at=at,
                            step_id=step.step_id,
                            status=CANCELLED,
                            attempts=0,
                        )
                    )
                self.events.emit(
                    WorkflowFinished(
                        execution_id=record.id,
                        workflow=record.workflow,
                        at=at,
                        status=CANCELLED,
                        error=error,
                    )
                )
            completion.outcome = Outcome(
                CANCELLED, error=error, exception=WorkflowCancelled(record.id, reason)
            )
            self._complete(record.id)

    # ------------------------------------------------------------ control

    def _withdraw(self, execution_id: str) -> Ticket | None:
        """Take a queued execution out of this engine's queue (or out of
        those held by a pause); None if it is not queued here."""
        ticket = self.dispatcher.withdraw(execution_id)
        return ticket if ticket is not None else self._parked.pop(execution_id, None)

    async def cancel(self, execution_id: str) -> ExecutionRecord:
        """Cancel an execution and wait until it has stopped; returns its record.

        Works for queued, starting and running executions, child executions,
        and executions run by another engine on a shared store (their owner
        cancels them at its next lease renewal; one whose owner is gone is
        marked cancelled at once). Cancelling a finished execution changes
        nothing. Unknown ids raise ``ExecutionNotFound``.
        """
        if not isinstance(execution_id, str):
            raise UsageError(f"an execution id is a string, got {type(execution_id).__name__}")
        ticket = self._withdraw(execution_id)
        if ticket is not None:
            await self._finalize_unstarted(ticket.payload, "cancelled before it started")
            return await self.get(execution_id)
        run = self._services.runs.get(execution_id)
        if run is None:
            completion = self._active.get(execution_id)
            run = completion.run if completion is not None else None
        if run is not None:
            run.cancel(CANCELLED)
            await run.done.wait()
            return await self.get(execution_id)
        return await self.store.request_cancel(execution_id, self.clock())

    async def get(self, execution_id: str) -> ExecutionRecord:
        """The execution's record with its per-step records."""
        if not isinstance(execution_id, str):
            raise ExecutionNotFound(repr(execution_id))
        return await self.store.get_execution(execution_id)

    async def list(
        self,
        *,
        status: str | None = None,
        workflow: str | None = None,
        limit: int = 100,
        before: tuple[float, str] | None = None,
    ) -> list[ExecutionRecord]:
        """Executions, newest first (without step records); ``before``: the
        ``(created_at, id)`` of the last one of a previous page, to go on
        from there."""
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
            raise UsageError(f"limit must be a positive integer, got {limit!r}")
        if status is not None and status not in _EXECUTION_STATUSES:
            raise UsageError(
                f"unknown status {status!r}; one of {', '.join(sorted(_EXECUTION_STATUSES))}"
            )
        return await self.store.list_executions(
            status=status, workflow=workflow, limit=limit, before=before
        )

    def subscribe(self, buffer: int | None = None) -> Subscription:
        """Lifecycle events as an async iterator with a bounded buffer."""
        if buffer is not None and (not isinstance(buffer, int) or buffer < 1):
            raise UsageError(f"buffer must be a positive integer, got {buffer!r}")
        return self.events.subscribe(buffer)

    def metrics(self) -> MetricsSnapshot:
        return self._metrics.snapshot()

    def _cache_error(self) -> None:
        self._metrics.cache_errors += 1

    async def _stalled(self, stall: Stall) -> None:
        """A handler (or other code) held the event loop: count it, and say so
        on the step's record."""
        self._metrics.loop_stalls += 1
        log.warning("%s", stall.describe())
        run = self._services.runs.get(stall.execution_id or "")
        if run is not None and stall.step_id is not None:
            await run.warn(
                stall.step_id,
                f"held the event loop for {stall.seconds:.2f} s at {stall.where}: every "
                'workflow waited (make a blocking handler kind = "blocking")',
            )

    def prometheus_metrics(self) -> str:
        """Metrics in Prometheus text exposition format."""
        return self._metrics.prometheus()

    def statistics(self) -> dict[str, Any]:
        """Limiter statistics: dispatcher, pools, keyed limiters, memory guard, cache."""
        return {
            "dispatcher": self.dispatcher.statistics(),
            **self.resources.statistics(),
            "cache": self.cache.statistics(),
        }

    async def wait_idle(self) -> None:
        """Wait until no execution is queued or running."""
        while self._active:
            await self._idle.wait()

    async def close(self, *, cancel: bool = False) -> None:
        """Stop accepting work; wait for admitted work, or cancel it.
        Executions held by a pause stay queued in the store (a later engine
        runs them once unpaused)."""
        self._closing = True
        self._leave_parked("the engine closed while its workflow was paused")
        if cancel:
            queued = []
            for execution_id in list(self._active):
                ticket = self._withdraw(execution_id)
                if ticket is not None:
                    queued.append(ticket.payload)
            if queued:
                await self._finalize_unstarted_many(queued, "engine closed")
            for completion in list(self._active.values()):
                completion.run.cancel("engine closed")
        await self.wait_idle()

    # ------------------------------------------------------------ durability

    async def _resume(
        self,
        execution_id: str,
        record: ExecutionRecord | None = None,
        *,
        claimed_at: float | None = None,
    ) -> None:
        """Take up an execution whose engine died (or queued for this worker:
        ``record`` as just read): finished steps are kept. ``claimed_at``:
        claimed then by :meth:`_claim`, whose claim marked it running."""
        try:
            try:
                if record is None:
                    record = await self.store.get_execution(execution_id)
            except ExecutionNotFound:  # never committed (its creation failed): nothing to do
                return
            if record.status in TERMINAL_EXECUTION or execution_id in self._active:
                return
            plan = await self._plan_by_digest(record.definition)
            if [sp.id for sp in plan.steps] != [s.step_id for s in record.steps]:
                raise SpecError("its step records do not match its definition")
            if record.cancel_requested:
                # Cancelled (by `corral cancel`) while its engine was gone: honour
                # it now, in one transaction.
                with trio.CancelScope(shield=True):
                    await self.store.cancel_execution(
                        execution_id, "cancelled on request", self.clock(), owner=self.owner
                    )
                return
        except (SpecError, msgspec.DecodeError) as exc:
            log.error("cannot resume execution %s: %s", execution_id, exc)
            with trio.CancelScope(shield=True):
                await self.store.finish_execution(
                    execution_id,
                    FAILED,
                    result=None,
                    error=ErrorInfo("ResumeError", f"cannot resume: {exc}"),
                    finished_at=self.clock(),
                )
            return
        queued = claimed_at is not None and record.started_at == claimed_at
        run = WorkflowRun(
            self._services,
            plan,
            record,
            submitted_at=trio.current_time(),
            # (its claim's lease: half of it, as for a fresh submission)
            fresh_until=(
                claimed_at + self.lease / 2 if queued and claimed_at is not None else None
            ),
            stored_started=queued,
        )
        kept = run.restore()
        log.log(
            logging.INFO if record.started_at is not None and not queued else logging.DEBUG,
            "resuming execution %s (%s): %d of %d steps already done",
            execution_id,
            record.workflow,
            kept,
            len(record.steps),
        )
        self._admit(run, record.priority, check=False)
        self.resumed += 1

    async def _take_over(self) -> None:
        """Claim the executions whose engines died and resume them, one by
        one: a store error on one (a database locked for a moment) leaves it
        claimed by this engine and tried again at the next lease round, and
        the others are resumed all the same."""
        if self._closing or not self.adopt:
            return
        t = self.clock()
        room = self._room() if self.claiming else None
        try:
            # Only what it can run; a worker also takes queued work, up to its room.
            claimed = await self.store.claim_expired(
                self.owner,
                t,
                t + self.lease,
                limit=room,
                handlers=self.claim_handlers,
                queued=self.claiming and not self._draining,
            )
        except StoreError as exc:  # at open too: the engine opens, the next round claims
            log.warning("taking over expired executions failed: %s", exc)
            claimed = []
        else:
            if self.spills and room is not None and len(claimed) < room and not self._draining:
                self._spilling = False  # nothing (more) waits in the store for it
        records: dict[str, ExecutionRecord] = {}
        if len(claimed) > 1:
            try:  # one read for all (a worker at open claims hundreds)
                records = {r.id: r for r in await self.store.get_executions(claimed)}
            except StoreError as exc:
                log.warning("reading %d claimed execution(s) failed: %s", len(claimed), exc)
        for execution_id in [*self._unresumed, *claimed]:
            if execution_id in self._active:
                continue  # still winding down: next round
            self._unresumed.discard(execution_id)
            try:
                await self._resume(execution_id, records.pop(execution_id, None))
            except StoreError as exc:
                log.warning(
                    "resuming execution %s failed (tried again soon): %s", execution_id, exc
                )
                self._unresumed.add(execution_id)

    async def orphans(self, limit: int = 10_000) -> Sequence[ExecutionRecord]:
        """Unfinished top-level executions whose engine is gone (lease
        expired; not work queued for workers), oldest first, at most ``limit``
        per status: what an engine that adopts would take over."""
        t = self.clock()
        found = [
            record
            for status in sorted(UNFINISHED)
            for record in await self.store.list_executions(status=status, limit=limit)
            if record.owner is not None
            and rules.claimable(record, self.owner, t)
            and rules.runnable_with(record, self.claim_handlers)
        ]
        return sorted(found, key=lambda r: r.created_at)

    async def resume(self, execution_id: str) -> ExecutionHandle:
        """Take over one orphaned execution and resume it here, from its last
        finished step. ``UsageError`` when it is not an orphan (finished,
        queued for workers, or held by a live engine)."""
        if not self.run_here:
            raise UsageError("this engine runs nothing (run_here=False): it cannot resume")
        found = await self.store.get_execution(execution_id)  # ExecutionNotFound
        if not rules.runnable_with(found, self.claim_handlers):
            missing = sorted(set(found.handlers) - set(self.claim_handlers or ()))
            raise UsageError(
                f"execution {execution_id} cannot be resumed here: handler(s) "
                f"{', '.join(missing)} are not installed (`corral plugins` lists what is)"
            )
        t = self.clock()
        if not await self.store.claim_one(execution_id, self.owner, t, t + self.lease):
            record = await self.store.get_execution(execution_id)  # ExecutionNotFound
            if not rules.unfinished(record):
                why = f"it is {record.status}"
            elif record.parent_id is not None:
                why = f"it is a child execution: resume its parent ({record.parent_id})"
            elif record.owner is None:
                why = "it is queued for workers, not orphaned"
            elif record.owner == self.owner:
                why = "this engine runs it already"
            else:
                why = f"a live engine holds it ({record.owner}; its lease has not expired)"
            raise UsageError(f"execution {execution_id} cannot be resumed: {why}")
        await self._resume(execution_id, None)
        return self._handle_for(execution_id)

    # ------------------------------------------------------------ pauses

    def _held_name(self, workflow: str) -> bool:
        return workflow in self._paused or rules.PAUSED_ALL in self._paused

    def _held(self, record: ExecutionRecord) -> bool:
        return bool(self._paused) and record.parent_id is None and rules.held(record, self._paused)

    def _leave_parked(self, reason: str) -> None:
        """Forget the executions held here by a pause, writing nothing: they
        stay queued in the store under this engine's lease, and an engine
        that adopts orphans runs them once unpaused and the lease is over."""
        for execution_id in list(self._parked):
            ticket = self._parked.pop(execution_id)
            self._drop_taken_over(ticket.payload, reason)

    async def _refresh_paused(self) -> None:
        """Read the paused workflows from the store; start what was held
        here and is paused no longer."""
        paused, self._paused = self._paused, await self.store.paused()
        if self.claiming and len(self._paused) < len(paused):
            # a pause lifted: what it held in the store may start
            self._spilling = self.spills
            self._claim_wake.set()
        if not self._parked:
            return
        for execution_id, ticket in list(self._parked.items()):
            if not self._held(ticket.payload.run.record):
                del self._parked[execution_id]
                self.dispatcher.offer(ticket, check=False)

    async def pause(self, workflow: str = rules.PAUSED_ALL) -> bool:
        """Pause a workflow (by name; ``"*"``, the default: every workflow).
        Its queued executions stay queued, in this engine and in every engine
        and worker sharing the store, until :meth:`unpause`; running ones
        finish. The pause is stored: it outlives this engine. False if it
        was paused already."""
        if not isinstance(workflow, str) or not workflow:
            raise UsageError(f"pause takes a workflow name (or '*'), got {workflow!r}")
        done = await self.store.pause(workflow, self.clock())
        await self._refresh_paused()
        return done

    async def unpause(self, workflow: str = rules.PAUSED_ALL) -> bool:
        """Lift a pause: what it held starts (here at once; elsewhere as soon
        as each engine hears of it). False if that workflow was not paused
        (``"*"`` lifts only a pause of everything, not those by name)."""
        if not isinstance(workflow, str) or not workflow:
            raise UsageError(f"unpause takes a workflow name (or '*'), got {workflow!r}")
        done = await self.store.unpause(workflow)
        await self._refresh_paused()
        return done

    def is_paused(self, workflow: str) -> bool:
        """Whether new executions of ``workflow`` are held (by its pause or a
        pause of every workflow), as this engine last read the store."""
        return self._held_name(workflow)

    async def paused(self) -> dict[str, float]:
        """The paused workflows (``"*"``: all) and when each was paused."""
        self._paused = await self.store.paused()
        return dict(self._paused)

    # ------------------------------------------------------------ retries

    async def plan_retry(
        self,
        execution_id: str,
        *,
        from_steps: Sequence[str] | None = None,
        inputs: Mapping[str, Any] | None = None,
        spec: SpecLike | None = None,
        rerun_changed: bool = False,
    ) -> RetryPreview:
        """What :meth:`retry` would run and reuse, without running anything.

        Raises ``ExecutionNotFound``, ``UsageError`` (an unfinished or child
        execution, an unknown step), ``InputError`` and :class:`RetryRefused`
        as :meth:`retry` does.
        """
        if not isinstance(execution_id, str):
            raise ExecutionNotFound(repr(execution_id))
        original = await self.store.get_execution(execution_id)
        if original.parent_id is not None:
            raise UsageError(
                f"execution {original.id} is a child execution (step {original.parent_step} "
                f"of {original.parent_id}): retry its parent"
            )
        if original.status in UNFINISHED:
            hint = "wait for it, or cancel it first"
            if original.owner is not None and not rules.lease_held(original, self.clock()):
                hint = "its engine is gone: `corral resume` takes it up where it stopped"
            raise UsageError(
                f"execution {original.id} is {original.status}; only a finished execution "
                f"can be retried ({hint})"
            )
        try:
            before: Plan | None = await self._plan_by_digest(original.definition)
        except SpecError:
            before = None  # (pruned definition): only a new spec can retry it
        if spec is None:
            if before is None:
                raise UsageError(
                    f"execution {original.id}: its workflow definition is no longer stored; "
                    "give the workflow to retry it with (spec=..., --spec FILE)"
                )
            plan = before
        else:
            plan = await self._plan_for(spec)
            if plan.name != original.workflow:
                raise UsageError(
                    f"execution {original.id} is of workflow {original.workflow!r}; "
                    f"the spec given is {plan.name!r}"
                )
        if inputs is not None and not isinstance(inputs, Mapping):
            raise InputError(f"inputs must be a mapping, got {type(inputs).__name__}", path="$")
        merged = {**original.inputs, **(inputs or {})}
        bound = plan.bind_inputs(merged)
        steps = list(from_steps or ())
        for step_id in steps:
            if step_id not in plan.index:
                raise UsageError(
                    f"--from {step_id!r}: workflow {plan.name!r} has no such step"
                    f"{close_names(step_id, plan.index)}; its steps: {', '.join(plan.index)}"
                )
        choice = choose_reruns(
            plan,
            original,
            before=None if before is plan else before,
            old_inputs=original.inputs,
            new_inputs=bound,
            from_steps=steps,
            rerun_changed=rerun_changed,
        )
        if choice.refused:
            listed = "; ".join(f"{k}: {v}" for k, v in choice.refused.items())
            raise RetryRefused(
                f"retrying execution {original.id} would reuse the output of step(s) that "
                f"changed since they ran ({listed}); rerun them with --rerun-changed "
                "(rerun_changed=True), or --from them",
                choice.refused,
            )
        return RetryPreview(original, plan, bound, choice)

    async def retry(
        self,
        execution_id: str,
        *,
        from_steps: Sequence[str] | None = None,
        inputs: Mapping[str, Any] | None = None,
        spec: SpecLike | None = None,
        rerun_changed: bool = False,
        priority: int | None = None,
    ) -> ExecutionHandle:
        """Run a finished execution again as a new execution linked to it
        (``retry_of``), reusing the recorded outputs of the steps that need
        not run again (see ``corral.engine.reruns`` for which do).

        ``from_steps``: run these (and everything downstream) even if they
        succeeded. ``inputs``: new values for some inputs (the others are
        the original's); only the steps they change run again. ``spec``: a
        new definition of the same workflow to run instead of the original's.
        ``rerun_changed``: run again the steps whose handler, handler version
        or params changed since they ran, instead of refusing
        (:class:`RetryRefused`).
        """
        preview = await self.plan_retry(
            execution_id,
            from_steps=from_steps,
            inputs=inputs,
            spec=spec,
            rerun_changed=rerun_changed,
        )
        return await self.submit_retry(preview, priority=priority)

    async def submit_retry(
        self, preview: RetryPreview, *, priority: int | None = None
    ) -> ExecutionHandle:
        """Submit the retry :meth:`plan_retry` planned."""
        if self._closing:
            raise EngineClosed("the engine is closing and accepts no new work")
        original, plan = preview.original, preview.plan
        if priority is None:
            priority = original.priority
        elif not isinstance(priority, int) or isinstance(priority, bool):
            raise InputError(
                f"priority must be an int, got {type(priority).__name__}", path="$.priority"
            )
        self.dispatcher.check(priority)
        digest = await self._ensure_definition(plan)
        record = self._new_record(plan, preview.inputs, priority, None, digest, owned=self.run_here)
        record.retry_of = original.id
        kept = {rec.step_id: rec for rec in original.steps}
        reused = set(preview.reused)
        for step in record.steps:
            if step.step_id in reused:
                was = kept[step.step_id]
                step.status = was.status
                step.attempts = was.attempts
                step.output = was.output
                step.started_at, step.finished_at = was.started_at, was.finished_at
                step.warnings, step.logs = list(was.warnings), list(was.logs)
                step.handler_version = was.handler_version
                step.reused_from = original.id
        await self.store.create_execution(record, wait=True)
        self._metrics.submitted += 1
        if not self.run_here:
            return self._handle_for(record.id)
        run = WorkflowRun(self._services, plan, record, submitted_at=trio.current_time())
        run.restore()
        completion = self._admit(run, priority, check=False)
        self._announce(record, priority)
        return ExecutionHandle(self, record.id, completion)

    # ------------------------------------------------------------ many at once

    async def select(
        self,
        *,
        status: str | Sequence[str] | None = None,
        workflow: str | None = None,
        since: float | None = None,
        limit: int | None = None,
    ) -> builtins.list[ExecutionRecord]:
        """Top-level executions that match, newest first, without their
        step records (what a bulk operation acts on; see
        :func:`corral.storage.select`)."""
        return await select(self.store, status=status, workflow=workflow, since=since, limit=limit)

    async def cancel_many(self, execution_ids: Sequence[str]) -> builtins.list[str]:
        """Cancel many executions at once: those queued or running here are
        stopped here (all together), the others asked of their engines in
        one transaction (or cancelled at once if no live engine holds them).
        Returns the ids that were unfinished (finished ones are left alone)."""
        elsewhere = [i for i in execution_ids if not self._here(i)]
        touched = await self._cancel_here(
            [i for i in execution_ids if self._here(i)], CANCELLED, "cancelled before it started"
        )
        for run in touched[1]:  # (only a run not done yet is waited for: no round per run)
            if not run.done.is_set():
                await run.done.wait()
        asked = await self.store.request_cancel_many(elsewhere, self.clock()) if elsewhere else []
        return sorted([*touched[0], *asked])

    def _here(self, execution_id: str) -> bool:
        return execution_id in self._active or execution_id in self._services.runs

    async def _cancel_here(
        self, execution_ids: Sequence[str], reason: str, unstarted: str
    ) -> tuple[builtins.list[str], builtins.list[WorkflowRun]]:
        """Cancel executions queued or running in this engine, many at once:
        the queued ones recorded ``cancelled`` in bulk, the running ones
        stopped together (:meth:`_stop_many`). Returns the ids it touched and
        the runs it stopped (not waited for)."""
        queued: builtins.list[_Completion] = []
        runs: builtins.list[WorkflowRun] = []
        for execution_id in execution_ids:
            ticket = self._withdraw(execution_id)
            if ticket is not None:
                queued.append(ticket.payload)
                continue
            run = self._services.runs.get(execution_id)
            if run is None:
                completion = self._active.get(execution_id)
                run = completion.run if completion is not None else None
            if run is not None and not run.done.is_set():
                runs.append(run)
        if queued:
            await self._finalize_unstarted_many(queued, unstarted)
        await self._stop_many(runs, reason)
        return [c.run.record.id for c in queued] + [r.record.id for r in runs], runs

    async def _stop_many(self, runs: Sequence[WorkflowRun], reason: str) -> None:
        """Cancel running executions of this engine. One is cancelled as
        always (its own writes); many are recorded ``cancelled`` in one
        transaction (their unfinished steps too) and then stopped writing
        nothing more: 10,000 at once take one statement per few hundred
        instead of two writes each. Should that transaction fail, each is
        cancelled the usual way."""
        if len(runs) < _BULK_STOP:
            for run in runs:
                run.cancel(reason)
            return
        quiet = [run for run in runs if not run.abandoned]
        for run in quiet:  # from now on they write nothing: the bulk write is theirs
            run.abandoned = True
        try:
            with trio.CancelScope(shield=True):
                await self.store.cancel_unstarted(
                    [run.record.id for run in quiet],
                    self.owner,
                    ErrorInfo("WorkflowCancelled", reason),
                    self.clock(),
                )
        except StoreError as exc:
            log.warning(
                "cancelling %d executions at once failed (one by one now): %s", len(quiet), exc
            )
            for run in quiet:
                run.abandoned = False
        for run in runs:
            run.cancel(reason)

    def _background(self) -> trio.CancelScope:
        """The scope of a background loop that uses the store: cancelled
        before the store closes (``stop_background``)."""
        scope = trio.CancelScope()
        self._loops.append(scope)
        return scope

    def stop_background(self) -> None:
        for scope in self._loops:
            scope.cancel()

    async def _keep_leases(self) -> None:
        """Renew this engine's leases, act on cancel requests, adopt orphans."""
        with self._background():
            await self._keep_leases_loop()

    async def _keep_leases_loop(self) -> None:
        while True:
            await trio.sleep(self.lease / 3)
            try:
                round_started = trio.current_time()
                t = self.clock()
                await self._cancel_requested_many(
                    await self.store.renew_leases(self.owner, t + self.lease)
                )
                # Ours in memory (running or queued) but not in the store any more:
                # another engine took them over while this one was stalled.
                mine = list(self._active)
                for execution_id in await self.store.lost(self.owner, mine):
                    ticket = self._withdraw(execution_id)
                    if ticket is not None:
                        self._drop_taken_over(ticket.payload)
                    elif (run := self._services.runs.get(execution_id)) is not None:
                        run.abandon()
                self.leases.renewed(round_started)  # (what was taken over is abandoned)
                await self._take_over()
            except StoreError as exc:  # e.g. locked for too long: try again next round
                log.warning("lease renewal failed: %s", exc)

    async def _cancel_requested_many(self, execution_ids: Sequence[str]) -> None:
        """Someone (another process) asked to cancel executions this engine
        holds (``corral cancel``, one or thousands at once)."""
        if execution_ids:
            await self._cancel_here(
                [i for i in execution_ids if self._here(i)],
                "cancelled on request",
                "cancelled on request",
            )

    async def _watch(self, poll: float) -> None:
        """React within milliseconds to other processes: a cancel request for
        an execution this engine runs, and (a worker) work queued for it. The
        store signals (LISTEN/NOTIFY, a changed SQLite file); every ``poll``
        seconds it looks anyway, in case a signal was missed."""
        with self._background():
            await self._watch_loop(poll)

    async def _watch_loop(self, poll: float) -> None:
        while True:
            with trio.move_on_after(poll):
                try:
                    await self.store.wait_signal()
                except StoreError as exc:  # (the listening connection): poll meanwhile
                    log.warning("waiting for store signals failed: %s", exc)
                    await trio.sleep(poll)
            self._claim_wake.set()  # (a worker: maybe new work)
            try:
                await self._refresh_paused()
                if self._active:
                    await self._cancel_requested_many(await self.store.cancel_requests(self.owner))
            except StoreError as exc:
                log.warning("looking for cancel requests failed: %s", exc)
                await trio.sleep(min(poll, 1.0))

    async def _claim_loop(self, poll: float) -> None:
        """A worker: claim when told there is work (a signal) or room (an
        execution of its own finished), and every ``poll`` seconds anyway."""
        with self._background():
            while True:
                with trio.move_on_after(poll):
                    await self._claim_wake.wait()
                self._claim_wake = trio.Event()
                try:
                    await self._claim()
                except StoreError as exc:
                    log.warning("claiming queued work failed: %s", exc)
                    await trio.sleep(min(poll, 1.0))

    def _room(self) -> int:
        """How many more executions this worker takes now."""
        return max(0, self.limits.max_running_workflows - len(self._active))

    async def _claim(self) -> None:
        """A worker: claim queued (or orphaned) executions it has room and
        handlers for, highest priority first, and run them."""
        # (an engine that only keeps its own overflow in the store claims
        # while some of it may wait there: each claim reads the queue's head,
        # past what a pause holds)
        while (
            not self._closing
            and not self._draining
            and (self.worker or self._spilling)
            and (room := self._room()) > 0
        ):
            t = self.clock()
            # Queued ones are marked running by the claim itself: each starts
            # here at once (room is free running slots), without a start
            # write of its own; the claim answers with them (one round trip).
            records = await self.store.claim_records(
                self.owner, t, t + self.lease, limit=room, handlers=self.claim_handlers, start=t
            )
            for record in records:
                try:
                    await self._resume(record.id, record, claimed_at=t)
                except StoreError as exc:
                    log.warning("starting claimed execution %s failed: %s", record.id, exc)
                    self._unresumed.add(record.id)
            if len(records) < room:
                # Nothing more waits in the store for this engine (what is
                # submitted from now on may wait in memory again).
                self._spilling = False
                return

    def stop_claiming(self) -> None:
        """A worker: take no more queued work (what it runs goes on)."""
        self._draining = True

    async def drain(self, grace: float, *, release: bool = True) -> Sequence[str]:
        """Stop as a worker stops (SIGTERM): claim nothing more, let what runs
        finish for up to ``grace`` seconds, then stop the rest without writing
        (``abandon``) and release them, so another worker claims them at once
        and resumes them where they stopped. Returns the released ids.
        ``release=False`` (``corral serve``, where there may be no worker):
        they stay this engine's until its leases expire, then any engine that
        adopts orphans resumes them; returns their ids."""
        self.stop_claiming()
        self._leave_parked("released by a stopping worker while its workflow was paused")
        for execution_id in list(self._active):
            ticket = self._withdraw(execution_id)
            if ticket is not None:  # not started here: released as it is
                self._drop_taken_over(ticket.payload, "released by a stopping worker")
        with trio.move_on_after(grace):
            await self.wait_idle()
        left = sorted(self._active)
        for completion in list(self._active.values()):
            completion.run.abandon("the worker is stopping; released for another worker")
        await self.wait_idle()
        if not release:
            return left
        with trio.CancelScope(shield=True):
            released = await self.store.release(self.owner)
        if released:
            log.info("released %d unfinished execution(s) for other workers", len(released))
        return released

    async def _retain(self, older_than: float) -> None:
        """Automatic retention: prune finished executions older than ``older_than``."""
        interval = max(1.0, min(older_than / 4, 3600.0))
        while True:
            try:
                deleted = await self.store.prune(self.clock() - older_than)
            except StoreError as exc:
                log.warning("retention: pruning failed: %s", exc)
            else:
                if deleted:
                    log.info("retention: pruned %d executions", deleted)
            await trio.sleep(interval)


_EXECUTION_STATUSES = frozenset(EXECUTION_STATUSES)
