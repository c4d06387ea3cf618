"""ExecutionStrategy: which ready step goes first, and where each step runs.

Order: critical path first. A step's rank is the longest chain of work from
its start to the end of the workflow, summed from recorded step durations (an
exponential moving average per workflow and step) or, before any run, one
unit per step; ties keep the declared order. This only matters when steps
compete (``max_parallel_steps``, pools): then the long chain starts early and
the workflow ends sooner.

Venue, from the handler's declared ``kind``: ``async`` runs in the event loop;
``blocking`` in a worker thread (the step waits for the thread; the thread is
told to stop through ``ctx.cancel_requested()``, never abandoned); ``cpu`` in a
trio-parallel worker process, killed if the step is cancelled (its
``ctx.progress()`` reaches the engine through the :mod:`~corral.engine.relay`).
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

import outcome
import trio

from corral.core.errors import NonRetryable
from corral.engine import workers
from corral.engine.encoding import UnstorableOutput, encode_output
from corral.engine.links import LoopLink, RelayLink
from corral.plugins import StepContext
from corral.workflow.graph import critical_path_lengths

if TYPE_CHECKING:
    from corral.engine.relay import ProgressRelay
    from corral.plugins import Handler
    from corral.workflow.plan import Plan

__all__ = ["ExecutionStrategy"]

_EMA = 0.3


_MAX_DURATIONS = 100_000
_MAX_PLANS = 10_000


class ExecutionStrategy:
    def __init__(self, worker_context: Any = None, relay: ProgressRelay | None = None) -> None:
        self._durations: dict[tuple[str, str], float] = {}
        self._versions: dict[str, int] = {}
        # plan digest -> (durations version, heap keys): this engine's order
        # of each plan's steps, kept here, not on the (shareable) plan
        self._ranks: dict[str, tuple[int, list[tuple[float, int]]]] = {}
        self._instances: dict[type[Handler], Handler] = {}
        self._workers = worker_context
        self._relay = relay

    # ------------------------------------------------------------ order

    def record_duration(self, workflow: str, step_id: str, seconds: float) -> None:
        key = (workflow, step_id)
        old = self._durations.get(key)
        new = seconds if old is None else old + _EMA * (seconds - old)
        if old is None and len(self._durations) >= _MAX_DURATIONS:
            self._durations.pop(next(iter(self._durations)))  # bounded: oldest out
        self._durations[key] = new
        if old is None or abs(new - old) > 0.2 * old:
            # The workflow's ranks are recomputed lazily, only on a real change.
            self._versions[workflow] = self._versions.get(workflow, 0) + 1

    def durations(self, plan: Plan) -> list[float]:
        name = plan.spec.name
        known = [self._durations.get((name, s.id)) for s in plan.steps]
        seen = [d for d in known if d is not None]
        default = sum(seen) / len(seen) if seen else 1.0
        return [default if d is None else d for d in known]

    def ranks(self, plan: Plan) -> list[tuple[float, int]]:
        """Heap keys per step: smaller runs first."""
        version = self._versions.get(plan.spec.name, 0)
        cached = self._ranks.get(plan.digest)
        if cached is not None and cached[0] == version:
            return cached[1]
        lengths = critical_path_lengths(
            [s.needs for s in plan.steps], plan.order, self.durations(plan)
        )
        ranks = [(-length, i) for i, length in enumerate(lengths)]
        if cached is None and len(self._ranks) >= _MAX_PLANS:
            self._ranks.pop(next(iter(self._ranks)))  # bounded: oldest out
        self._ranks[plan.digest] = (version, ranks)
        return ranks

    # ------------------------------------------------------------ venue

    def instance(self, cls: type[Handler]) -> Handler:
        handler = self._instances.get(cls)
        if handler is None:
            handler = self._instances[cls] = cls()
        return handler

    def call(
        self, cls: type[Handler], ctx: StepContext, params: Any, link: LoopLink
    ) -> Awaitable[Any]:
        """Run a handler in the venue its kind asks for; ``link`` is the
        one ``ctx`` was built with. (A plain function returning what to
        await: an async handler's own coroutine is awaited by the caller,
        without a frame of this one in between for as long as it runs.)"""
        kind = cls.kind
        if kind == "async":
            return self.instance(cls).run(ctx, params)
        if kind == "blocking":
            return _in_thread(self.instance(cls), ctx, params, link)
        return self._in_worker(cls, ctx, params, link)

    async def _in_worker(
        self, cls: type[Handler], ctx: StepContext, params: Any, link: LoopLink
    ) -> Any:
        address = None
        if self._relay is not None and link.report is not None:
            address = await self._relay.register(link.report)
        remote = None if address is None else RelayLink(address)
        sent = 0
        try:
            # The engine's own worker context: its processes end with the engine.
            # workers.run_sync starts them in safe-path mode (engine/workers.py).
            sent, result = await workers.run_sync(
                self._workers, _cpu_entry, cls, ctx, params, remote, kill_on_cancel=True
            )
            return result
        finally:
            if address is not None and self._relay is not None:
                # sent is 0 when the step failed or was cancelled: no wait then
                await self._relay.unregister(address[1], sent)


async def _in_thread(handler: Handler, ctx: StepContext, params: Any, link: LoopLink) -> Any:
    # The handler's own exception is captured and re-raised outside the
    # nursery, so it is not wrapped in an ExceptionGroup.
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_signal_cancel, link)
        result = await outcome.acapture(trio.to_thread.run_sync, handler.run, ctx, params)
        nursery.cancel_scope.cancel()
    return result.unwrap()


async def _signal_cancel(link: LoopLink) -> None:
    try:
        await trio.sleep_forever()
    finally:
        # Reached when the step is cancelled (or the thread is done): a
        # cooperative handler polling ctx.cancel_requested() returns early.
        link.request_cancel()


def _cpu_entry(
    cls: type[Handler], data: StepContext, params: Any, link: RelayLink | None
) -> tuple[int, Any]:
    # In the worker process: ``data`` arrived without a link (only data
    # travels); this step's context gets the relay's.
    ctx = StepContext(
        execution_id=data.execution_id,
        workflow=data.workflow,
        step_id=data.step_id,
        inputs=data.inputs,
        upstream=data.upstream,
        attempt=data.attempt,
        link=link,
    )
    result = cls().run(ctx, params)
    try:  # checked here: a value too deep to pickle never leaves the worker
        encode_output(result)
    except UnstorableOutput as exc:
        raise NonRetryable(
            f"handler {cls.name!r} returned a value that cannot be stored: {exc}"
        ) from None
    return (0 if link is None else link.sent), result  # progress lines to wait for
