"""Handlers, specs and a subprocess entry point for the durability tests.

Imported by ``tests/engine/test_durability.py`` (as a plugin module) and run as
a script by the subprocesses those tests start and kill::

    python _durable_plugin.py crash   URL MARKERS KILL_AT[,KILL_AT...] [child]
    python _durable_plugin.py share   URL READY_DIR PEERS COUNT TAG
    python _durable_plugin.py survive URL EXPECTED
    python _durable_plugin.py stall   URL MARKERS KILL_AT SECONDS

The ``dur.step`` handler appends ``<execution>:<step>:<pid>`` to the side file
named by the workflow input ``side`` on every invocation. In a process started
with a marker directory (``crash``), the step whose number equals the input
``kill_at`` writes ``MARKERS/<execution>`` and sleeps until the process is
killed (``stall``: blocks the whole process for SECONDS, as a stalled or
swapped-out process would, then goes on); in any other process it just runs.
"""

# ruff: noqa: ASYNC240, ASYNC251 (a test helper: tiny files, a deliberate stall)
from __future__ import annotations

import os
import re
import sys
import time
from pathlib import Path
from typing import Any

import trio

import corral
from corral.core.model import InputSpec, StepSpec, WorkflowSpec
from corral.plugins import Handler, StepContext, hookimpl

LEASE = 0.5
_NUM = re.compile(r"^s(\d+)$")


def append_line(path: str, line: str) -> None:
    """One ``write`` on an O_APPEND descriptor: safe from several processes."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def read_lines(path: str | Path) -> list[tuple[str, str, int]]:
    """The side file as (execution, step, pid) triples."""
    p = Path(path)
    if not p.exists():
        return []
    out = []
    for line in p.read_text().splitlines():
        execution, step, pid = line.split(":")
        out.append((execution, step, int(pid)))
    return out


class DurablePlugin:
    """``marker_dir`` arms the kill points (only in the process to be killed)."""

    def __init__(self, marker_dir: str | None = None, stall: float | None = None) -> None:
        self.marker_dir = marker_dir
        self.stall = stall

    @hookimpl
    def corral_handlers(self) -> list[type[Handler]]:
        plugin = self

        class Step(Handler):
            name = "dur.step"

            async def run(self, ctx: StepContext, params: Any) -> Any:
                append_line(ctx.inputs["side"], f"{ctx.execution_id}:{ctx.step_id}:{os.getpid()}\n")
                m = _NUM.match(ctx.step_id)
                n = int(m.group(1)) if m else None
                if plugin.marker_dir is not None and n is not None and n == ctx.inputs["kill_at"]:
                    append_line(os.path.join(plugin.marker_dir, ctx.execution_id), "x")
                    if plugin.stall is None:
                        await trio.sleep_forever()
                    time.sleep(plugin.stall)  # blocks the event loop: no lease renewal
                delay = ctx.inputs.get("delay", 0)
                if delay:
                    await trio.sleep(delay)
                prev = [v["n"] for v in ctx.upstream.values() if isinstance(v, dict) and "n" in v]
                return {"n": n, "step": ctx.step_id, "prev": prev}

        return [Step]


def _inputs() -> dict[str, InputSpec]:
    return {
        "side": InputSpec(type="string"),
        "kill_at": InputSpec(type="integer", default=0),
        "delay": InputSpec(type="number", default=0),
    }


def chain_spec(n: int = 10, name: str = "chain") -> WorkflowSpec:
    steps = [
        StepSpec(id=f"s{i}", handler="dur.step", needs=[f"s{i - 1}"] if i > 1 else [])
        for i in range(1, n + 1)
    ]
    return WorkflowSpec(name=name, steps=steps, inputs=_inputs())


def fan_spec() -> WorkflowSpec:
    """s1 -> s2, s3, s4, s5 side by side -> s9 (a join: the records of the
    steps feeding it are queued, and waited for once, before it starts)."""
    middle = [f"s{i}" for i in range(2, 6)]
    return WorkflowSpec(
        name="fan",
        inputs=_inputs(),
        steps=[
            StepSpec(id="s1", handler="dur.step"),
            *(StepSpec(id=m, handler="dur.step", needs=["s1"]) for m in middle),
            StepSpec(id="s9", handler="dur.step", needs=middle),
        ],
    )


def parent_spec() -> WorkflowSpec:
    """pre -> kid (a child workflow: the 10-step chain) -> post."""
    refs = {"side": "${inputs.side}", "kill_at": "${inputs.kill_at}"}
    return WorkflowSpec(
        name="parent",
        inputs=_inputs(),
        steps=[
            StepSpec(id="pre", handler="dur.step"),
            StepSpec(id="kid", workflow=chain_spec(10, "child"), params=refs, needs=["pre"]),
            StepSpec(id="post", handler="dur.step", needs=["kid"]),
        ],
    )


async def top_level_done(engine: corral.Engine, expected: int) -> bool:
    records = [r for r in await engine.list(limit=10_000) if r.parent_id is None]
    return len(records) >= expected and all(
        r.status in ("succeeded", "failed", "cancelled", "timed_out") for r in records
    )


# ---------------------------------------------------------------- subprocess modes


async def _crash(db: str, markers: str, kill_at: str, shape: str) -> None:
    side = os.path.join(markers, "..", "side.txt")
    spec = {"child": parent_spec, "fan": fan_spec}.get(shape, chain_spec)()
    running = int(os.environ.get("DUR_MAX_RUNNING", "1000"))
    async with corral.open_engine(
        db,
        plugins=[DurablePlugin(markers)],
        entry_points=False,
        lease=LEASE,
        limits=corral.Limits(max_running_workflows=running),
    ) as engine:
        for k in kill_at.split(","):
            await engine.submit(spec, {"side": os.path.abspath(side), "kill_at": int(k)})
        await trio.sleep_forever()  # until SIGKILL


async def _stall(db: str, markers: str, kill_at: int, seconds: float) -> None:
    side = os.path.join(markers, "..", "side.txt")
    async with corral.open_engine(
        db,
        plugins=[DurablePlugin(markers, stall=seconds)],
        entry_points=False,
        lease=LEASE,
    ) as engine:
        handle = await engine.submit(
            chain_spec(), {"side": os.path.abspath(side), "kill_at": kill_at, "delay": 0.05}
        )
        try:
            await handle.result()
        except corral.CorralError as exc:
            print(f"stalled engine: {type(exc).__name__}: {exc}", flush=True)


async def _share(db: str, ready_dir: str, peers: int, count: int, tag: str) -> None:
    side = os.path.join(ready_dir, "..", "side.txt")
    async with corral.open_engine(
        db,
        plugins=[DurablePlugin()],
        entry_points=False,
        lease=float(os.environ.get("DUR_LEASE", "1.0")),
        limits=corral.Limits(max_running_workflows=2),
    ) as engine:
        append_line(os.path.join(ready_dir, str(os.getpid())), "x")
        with trio.fail_after(60):
            while len(os.listdir(ready_dir)) < peers:  # noqa: ASYNC110 (a barrier)
                await trio.sleep(0.01)
        spec = chain_spec(3, f"shared-{tag}")
        handles = [
            await engine.submit(spec, {"side": os.path.abspath(side), "delay": 0.05})
            for _ in range(count)
        ]
        for h in handles:
            await h.result()
        # Stay alive (renewing leases, ready to adopt orphans) until all are done.
        with trio.fail_after(60):
            while not await top_level_done(engine, peers * count):  # noqa: ASYNC110
                await trio.sleep(0.05)


async def _survive(db: str, expected: int) -> None:
    async with corral.open_engine(
        db, plugins=[DurablePlugin()], entry_points=False, lease=LEASE
    ) as engine:
        with trio.fail_after(60):
            while not await top_level_done(engine, expected):  # noqa: ASYNC110
                await trio.sleep(0.05)
        print(f"resumed={engine.resumed}", flush=True)


def main(argv: list[str]) -> None:
    mode, db, *rest = argv
    if mode == "crash":
        trio.run(_crash, db, rest[0], rest[1], rest[2] if len(rest) > 2 else "chain")
    elif mode == "share":
        trio.run(_share, db, rest[0], int(rest[1]), int(rest[2]), rest[3])
    elif mode == "stall":
        trio.run(_stall, db, rest[0], int(rest[1]), float(rest[2]))
    elif mode == "survive":
        trio.run(_survive, db, int(rest[0]))
    else:
        raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
