"""``open_engine()``: an engine opened for a block, with everything it owns
(its store, its worker processes, its background tasks) in one nursery,
and closed with it; the limits and settings it is given, checked first.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import msgspec
import trio

from corral.core.errors import (
    ConfigError,
    StoreError,
)
from corral.core.model import (
    Limits,
    now,
)
from corral.engine import interrupts, workers
from corral.engine.engine import Engine
from corral.engine.runner import WorkflowRun
from corral.engine.watchdog import LoopWatchdog
from corral.plugins.manager import build_registry
from corral.storage import Store, lifetime, open_store

__all__ = ["open_engine"]

log = logging.getLogger("corral.engine")

_gc_freezes = 0
_gc_thresholds: tuple[int, int, int] | None = None
#: Young collections every 50,000 allocations instead of 700: thousands of
#: workflows in flight make each collection costly, and the garbage they make
#: is freed by reference counting anyway. Measured (gc callbacks, 10,000
#: durable single workflows): 10.4 us of collections per workflow at 10,000,
#: 2.3 us at 50,000, with the same RSS.
_GC_THRESHOLDS = (50_000, 10, 10)


_gc_froze = False
_gc_set: tuple[int, int, int] | None = None


def _check_limits(limits: Limits | None) -> Limits:
    """Validate limits (a Struct's constructor does not check its constraints)."""
    if limits is None:
        return Limits()
    if not isinstance(limits, Limits):
        raise ConfigError(f"limits must be a corral.Limits, got {type(limits).__name__}")
    try:
        checked = msgspec.convert(msgspec.to_builtins(limits), Limits)
    except (msgspec.ValidationError, TypeError) as exc:
        message = str(exc).replace("- at `$", "- at `limits")
        raise ConfigError(f"invalid corral.Limits: {message}") from None
    soft, hard = checked.memory_soft_mb, checked.memory_hard_mb
    if soft is not None and hard is not None and soft > hard:
        raise ConfigError(
            f"invalid corral.Limits: memory_soft_mb ({soft:g}) is above memory_hard_mb ({hard:g})"
        )
    return checked


def _positive(name: str, value: Any) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0:
        raise ConfigError(f"{name} must be a positive number of seconds, got {value!r}")
    return float(value)


@asynccontextmanager
async def open_engine(
    store: str | Store | None = None,
    *,
    plugins: Sequence[object] = (),
    limits: Limits | None = None,
    entry_points: bool = True,
    durability: str = "step",
    lease: float = 30.0,
    retention: float | None = None,
    memory_reader: Any = None,
    freeze_gc: bool = True,
    clock: Callable[[], float] | None = None,
    run_here: bool = True,
    claim: bool = False,
    handlers: Sequence[str] | None = None,
    poll: float = 1.0,
    adopt: bool = True,
) -> AsyncIterator[Engine]:
    """Open an engine: ``async with corral.open_engine() as engine: ...``.

    ``store`` is a store URL or a :class:`~corral.storage.Store`; by default
    ``$CORRAL_STORE`` or a SQLite file in the per-user data directory.
    ``plugins`` are extra pluggy plugins (modules or objects with ``corral_*``
    hooks); ``entry_points=False`` skips installed plugins (handy in tests).
    ``durability`` is ``"step"`` (a step's output is committed before its
    dependents start) or ``"none"`` (no step tracking writes). ``lease`` is how
    long (seconds) this engine's claim on its executions lasts without renewal
    before another engine may take them over. ``retention`` (seconds) prunes
    finished executions older than that, periodically. ``memory_reader``
    replaces the RSS sampler (tests). ``freeze_gc`` moves the objects alive at
    open (modules, the application's long-lived state) out of the cyclic
    garbage collector's reach while the engine is open (``gc.freeze()``) and
    makes young collections rarer, so the collections that many short-lived
    workflows trigger do not rescan them: up to 1.5x the throughput
    (docs/performance.md). The process's settings come back when the last
    engine closes. ``clock`` replaces the wall clock (``time.time``) of
    records, leases, cache expiry and retention: tests move it to expire a
    lease or a TTL without sleeping (timeouts and retry delays follow Trio's
    clock, which ``trio.testing.MockClock`` moves).

    Roles on a shared store (docs/deployment.md): ``run_here=False`` gives a
    client that submits, reads and cancels, and runs nothing: what it submits
    is queued for workers. ``claim=True`` makes a worker (``corral worker``):
    it claims queued executions as it has room (``limits.max_running_workflows``),
    only those whose handlers are all in ``handlers`` (default: every handler
    it has installed). Every engine that runs work hears cancel requests and
    queued work from other processes at once (the store's signal) and looks
    every ``poll`` seconds anyway. An engine that runs work takes over the
    executions whose engine died (lease expired) and resumes them; with
    ``adopt=False`` it leaves them to others (the CLI's one-shot commands:
    see :meth:`Engine.orphans` and :meth:`Engine.resume`).
    """
    if clock is not None and not callable(clock):
        raise ConfigError(f"clock must be a function returning seconds, got {clock!r}")
    poll = _positive("poll", poll)
    if handlers is not None and (
        isinstance(handlers, str) or not all(isinstance(h, str) for h in handlers)
    ):
        raise ConfigError(f"handlers must be a list of handler names, got {handlers!r}")
    limits = _check_limits(limits)
    lease = _positive("lease", lease)
    if retention is not None:
        retention = _positive("retention", retention)
    registry = build_registry(plugins, entry_points=entry_points)
    the_store = open_store(store, durability=durability)
    async with lifetime(the_store):
        await the_store.open()
        frozen = freeze_gc
        if frozen:
            _gc_freeze()
        unwatch = interrupts.watch()  # a real Ctrl-C, told from a handler's KeyboardInterrupt
        try:
            async with (
                workers.open_worker_context(grace_period=5.0) as worker_context,
                trio.open_nursery() as nursery,
            ):
                nursery.start_soon(the_store.run)
                engine: Engine | None = None
                try:
                    engine = Engine(
                        store=the_store,
                        registry=registry,
                        limits=limits,
                        nursery=nursery,
                        memory_reader=memory_reader,
                        lease=lease,
                        worker_context=worker_context,
                        clock=clock or now,
                        run_here=run_here,
                        claim=claim,
                        handlers=(list(registry) if handlers is None else handlers),
                        adopt=adopt,
                    )
                    if engine.resources.memory.enabled:
                        engine.resources.memory.sample()
                        nursery.start_soon(engine.resources.memory.run)
                    nursery.start_soon(engine.dispatcher.run, nursery, engine._start)
                    try:
                        await engine.cache.prune()  # expired and excess persisted results
                    except StoreError as exc:  # the cache can wait: the engine opens
                        log.warning("result cache: pruning at open failed: %s", exc)
                    nursery.start_soon(engine.cache.keep_pruned)
                    if run_here:
                        await engine._refresh_paused()
                        await engine._take_over()
                        nursery.start_soon(engine._keep_leases)
                        nursery.start_soon(engine._watch, poll)
                        if engine.claiming:
                            nursery.start_soon(engine._claim_loop, poll)
                    if limits.loop_stall_warning > 0:
                        watchdog = LoopWatchdog(
                            limits.loop_stall_warning,
                            engine._stalled,
                            WorkflowRun._call_handler.__code__,
                        )
                        nursery.start_soon(watchdog.run)
                    if retention is not None:
                        nursery.start_soon(engine._retain, retention)
                    try:
                        yield engine
                        await engine.close()
                    except BaseException:
                        with trio.CancelScope(shield=True):
                            await engine.close(cancel=True)
                        raise
                finally:
                    if engine is not None:
                        engine.events.close()
                        engine.stop_background()
                    # The store's writer is shielded (queued status writes are never
                    # dropped): closing it, after the runs are done, is what stops it.
                    with trio.CancelScope(shield=True):
                        await the_store.close()
                    nursery.cancel_scope.cancel()
        except BaseExceptionGroup as group:
            # The body's own exception (WorkflowFailed, KeyboardInterrupt ...) comes
            # out of the nurseries wrapped in groups; give it back unwrapped.
            raise _single(group) from None
        finally:
            unwatch()
            if frozen:
                _gc_unfreeze()
            with trio.CancelScope(shield=True):
                await the_store.close()  # idempotent; here for errors before the body ran


def _gc_freeze() -> None:
    """``gc.freeze()`` for the first open engine of the process (collecting first,
    so no garbage is frozen) and fewer young collections; later engines share it.
    An application that froze the heap itself keeps its own freeze."""
    global _gc_freezes, _gc_thresholds, _gc_froze, _gc_set
    if _gc_freezes == 0:
        _gc_froze = gc.get_freeze_count() == 0
        if _gc_froze:
            gc.collect()
            gc.freeze()
        _gc_thresholds = gc.get_threshold()
        _gc_set = tuple(  # type: ignore[assignment]
            max(a, b) for a, b in zip(_gc_thresholds, _GC_THRESHOLDS, strict=True)
        )
        gc.set_threshold(*_gc_set)  # type: ignore[misc]
    _gc_freezes += 1


def _gc_unfreeze() -> None:
    """The last engine to close gives back what it changed: its freeze, and the
    thresholds (unless the application has set others meanwhile)."""
    global _gc_freezes
    _gc_freezes -= 1
    if _gc_freezes == 0:
        if _gc_froze:
            gc.unfreeze()
        if _gc_thresholds is not None and gc.get_threshold() == _gc_set:
            gc.set_threshold(*_gc_thresholds)


def _single(group: BaseExceptionGroup[BaseException]) -> BaseException:
    exc: BaseException = group
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc
