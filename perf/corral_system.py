"""corral driven through its public API, with the interface of the baselines.

The handlers are trivial async functions (the same ones the baselines call),
registered as an ordinary plugin. Each workload is built once as a
``corral.Workflow`` whose params are ``${...}`` references, and every
submission passes that built ``WorkflowSpec`` with its input ``i``, which is
what an embedding application holding a spec does: the engine's plan cache is
part of what is measured, as is reference resolution and params conversion.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import msgspec

import corral
from corral.plugins import Handler, StepContext, hookimpl
from perf.workloads import BLOCKER, CLOCK, FUNCTIONS, WORKLOADS, Arg, Workload

__all__ = ["CorralSystem", "PerfPlugin", "open_corral_system", "workflow_for"]


class Inc(Handler):
    """value + 1"""

    name = "perf.inc"
    version = "1"

    class Params(msgspec.Struct, forbid_unknown_fields=True):
        value: int

    async def run(self, ctx: StepContext, params: Params) -> int:
        CLOCK.stamp(ctx.inputs["i"])
        return await FUNCTIONS["inc"](params.value)


class Add(Handler):
    """a + b"""

    name = "perf.add"
    version = "1"

    class Params(msgspec.Struct, forbid_unknown_fields=True):
        a: int
        b: int

    async def run(self, ctx: StepContext, params: Params) -> int:
        CLOCK.stamp(ctx.inputs["i"])
        return await FUNCTIONS["add"](params.a, params.b)


class Sum(Handler):
    """sum(values)"""

    name = "perf.sum"
    version = "1"

    class Params(msgspec.Struct, forbid_unknown_fields=True):
        values: list[int]

    async def run(self, ctx: StepContext, params: Params) -> int:
        CLOCK.stamp(ctx.inputs["i"])
        return await FUNCTIONS["sum"](params.values)


class Block(Handler):
    """Sleep until cancelled (in-flight memory and cancellation cases)."""

    name = "perf.block"
    version = "1"

    async def run(self, ctx: StepContext, params: Any) -> None:
        CLOCK.stamp(ctx.inputs["i"])
        await BLOCKER.block()


class PerfPlugin:
    """The benchmark's handlers, as a plugin object passed to ``open_engine``."""

    @hookimpl
    def corral_handlers(self) -> list[type[Handler]]:
        return [Inc, Add, Sum, Block]


def _ref(arg: Arg) -> Any:
    if isinstance(arg, int):
        return arg
    if isinstance(arg, list):
        return [_ref(a) for a in arg]
    source, name = arg
    return "${inputs." + name + "}" if source == "input" else "${steps." + name + ".output}"


def workflow_for(workload: Workload) -> corral.WorkflowSpec:
    """The workload as a corral spec: references where the baseline resolves by hand."""
    wf = corral.Workflow(f"perf-{workload.name}", inputs={"i": "integer"})
    for step in workload.steps:
        wf.step(
            step.id,
            f"perf.{step.fn}",
            needs=list(step.needs),
            params={k: _ref(v) for k, v in step.args.items()},
        )
    wf.output("${steps." + workload.output + ".output}")
    return wf.build()


def blockers_for(width: int) -> corral.WorkflowSpec:
    wf = corral.Workflow(f"perf-block-{width}", inputs={"i": "integer"})
    for k in range(width):
        wf.step(f"b{k}", "perf.block")
    return wf.build()


class CorralSystem:
    """Submits, awaits and cancels through ``corral.Engine``'s public methods."""

    def __init__(self, engine: corral.Engine) -> None:
        self.engine = engine
        self._specs = {name: workflow_for(w) for name, w in WORKLOADS.items()}
        self._blockers: dict[int, corral.WorkflowSpec] = {}

    async def submit(self, workload: str, i: int) -> corral.ExecutionHandle:
        return await self.engine.submit(self._specs[workload], {"i": i})

    async def submit_blockers(self, width: int, i: int) -> corral.ExecutionHandle:
        spec = self._blockers.get(width)
        if spec is None:
            spec = self._blockers[width] = blockers_for(width)
        return await self.engine.submit(spec, {"i": i})

    async def result(self, handle: corral.ExecutionHandle) -> int:
        value: int = await handle.result()
        return value

    async def cancel(self, handle: corral.ExecutionHandle) -> str:
        record = await self.engine.cancel(handle.id)
        cancelled = [s for s in record.steps if s.status == "cancelled"]
        if len(cancelled) != len(record.steps):
            raise AssertionError(
                f"cancel: {len(cancelled)} of {len(record.steps)} step records are 'cancelled'"
            )
        return record.status

    async def abort(self) -> None:
        await self.engine.close(cancel=True)

    def describe(self) -> dict[str, Any]:
        m = self.engine.metrics()
        return {"engine_start_latency_p99_s": m.start_latency.p99}


@asynccontextmanager
async def open_corral_system(
    store: str, tmpdir: Path, *, max_running: int | None = None
) -> AsyncIterator[CorralSystem]:
    """An engine on ``store`` ("memory" or "sqlite"), durability ``step``, default
    limits unless ``max_running`` must be raised for the in-flight case."""
    if store == "postgres":
        url = os.environ["CORRAL_PERF_DB"]  # a fresh database (perf.postgres)
    else:
        url = "memory://" if store == "memory" else f"sqlite:///{tmpdir / 'corral.db'}"
    limits = (
        corral.Limits() if max_running is None else corral.Limits(max_running_workflows=max_running)
    )
    async with corral.open_engine(
        url, plugins=[PerfPlugin()], entry_points=False, limits=limits, durability="step"
    ) as engine:
        yield CorralSystem(engine)
