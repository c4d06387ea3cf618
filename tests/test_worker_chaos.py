"""Chaos: four worker processes on one PostgreSQL database, 2,000 workflows
(single steps, fan-outs and 10-step chains) submitted by a separate client,
and a random worker killed with SIGKILL every second (and replaced).

Checked from what was recorded and from a side file every step invocation
appends to: every execution succeeded exactly once, none is left
unfinished, no step recorded ``succeeded`` ran again, and no two workers ever
ran one execution at the same time.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest
import trio

import corral
from corral.core.model import ExecutionRecord, StepSpec, WorkflowSpec
from corral.plugins import Handler, StepContext, hookimpl
from corral.storage import lifetime, open_store

HERE = Path(__file__).resolve().parent
WORKERS = 4
COUNT = 2000

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")


def _single() -> WorkflowSpec:
    return WorkflowSpec(name="single", steps=[StepSpec(id="only", handler="chaos.step")])


def _fanout() -> WorkflowSpec:
    fan = [StepSpec(id=f"f{i}", handler="chaos.step", needs=["start"]) for i in range(5)]
    return WorkflowSpec(
        name="fanout",
        steps=[
            StepSpec(id="start", handler="chaos.step"),
            *fan,
            StepSpec(id="join", handler="chaos.step", needs=[s.id for s in fan]),
        ],
    )


def _chain() -> WorkflowSpec:
    return WorkflowSpec(
        name="chain",
        steps=[
            StepSpec(id=f"c{i}", handler="chaos.step", needs=[f"c{i - 1}"] if i else [])
            for i in range(10)
        ],
    )


class _Stub:
    """Lets the client compile specs naming ``chaos.step`` (it runs nothing)."""

    @hookimpl
    def corral_handlers(self) -> list[type[Handler]]:
        class Step(Handler):
            name = "chaos.step"

            async def run(self, ctx: StepContext, params: object) -> object:
                raise AssertionError("a client runs nothing")

        return [Step]


def _start(url: str, side: Path, logs: Path) -> subprocess.Popen[bytes]:
    log = open(logs / f"worker-{len(os.listdir(logs))}.log", "wb")  # noqa: SIM115
    return subprocess.Popen(
        [sys.executable, str(HERE / "_chaos_worker.py"), url, str(side)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )


async def _snapshot(url: str) -> dict[str, ExecutionRecord]:
    store = open_store(url)
    async with lifetime(store):
        await store.open()
        try:
            listed = await store.list_executions(limit=10 * COUNT)
            return {r.id: await store.get_execution(r.id) for r in listed}
        finally:
            await store.close()


async def test_chaos_kill_a_worker_every_second(postgres_url: str, tmp_path: Path) -> None:
    url = postgres_url
    side, logs = tmp_path / "side.txt", tmp_path / "logs"
    logs.mkdir()
    rng = random.Random(1234)
    specs = [_single(), _fanout(), _chain()]
    workers: list[subprocess.Popen[bytes]] = []
    killed = 0
    try:
        async with corral.open_engine(
            url, run_here=False, entry_points=False, plugins=[_Stub()]
        ) as client:
            workers += [_start(url, side, logs) for _ in range(WORKERS)]
            ids: list[str] = []
            submitted = trio.Event()

            async def submit() -> None:  # while the workers run and die
                for i in range(COUNT):
                    ids.append((await client.submit(specs[i % 3])).id)
                submitted.set()

            async def busy() -> bool:
                return not submitted.is_set() or any(
                    [await client.list(status=s, limit=1) for s in ("pending", "running")]
                )

            async with trio.open_nursery() as nursery:
                nursery.start_soon(submit)
                with trio.fail_after(300):
                    while True:
                        await trio.sleep(1.0)
                        if not await busy():
                            break
                        victim = rng.randrange(len(workers))
                        workers[victim].send_signal(signal.SIGKILL)
                        workers[victim].wait(10)  # noqa: ASYNC101 (a killed process: at once)
                        killed += 1
                        workers[victim] = _start(url, side, logs)
    finally:
        for w in workers:
            if w.poll() is None:
                w.send_signal(signal.SIGKILL)
            w.wait(10)

    after = await _snapshot(url)
    assert sorted(after) == sorted(ids), "an execution was lost or made twice"
    unfinished = [r.id for r in after.values() if r.finished_at is None]
    assert not unfinished, f"{len(unfinished)} left unfinished"
    failed = {r.id: (r.status, r.error) for r in after.values() if r.status != "succeeded"}
    assert not failed, list(failed.items())[:5]
    assert killed >= 3, "the run ended before the chaos began"

    runs: defaultdict[tuple[str, str], list[tuple[float, int]]] = defaultdict(list)
    for line in side.read_text().splitlines():
        execution, step, pid, start = line.split(":")
        runs[(execution, step)].append((float(start), int(pid)))
    again = []
    by_execution: defaultdict[str, list[tuple[float, int]]] = defaultdict(list)
    for record in after.values():
        for step in record.steps:
            assert step.status == "succeeded", (record.id, step)
            calls = runs[(record.id, step.step_id)]
            assert calls, (record.id, step.step_id, "never ran")
            assert step.finished_at is not None
            # A run that started after its success was committed ran it again.
            again += [(record.id, step.step_id) for t, _ in calls if t > step.finished_at]
            by_execution[record.id] += calls
    assert not again, f"steps recorded succeeded ran again: {again[:5]}"
    overlapping = []
    for execution, calls in by_execution.items():
        spans: dict[int, tuple[float, float]] = {}
        for t, pid in calls:
            lo, hi = spans.get(pid, (t, t))
            spans[pid] = (min(lo, t), max(hi, t))
        ordered = sorted(spans.values())
        overlapping += [
            execution for (_, end), (start, _) in zip(ordered, ordered[1:]) if start < end
        ]
    assert not overlapping, f"executions run by two workers at once: {overlapping[:5]}"
    for log in logs.iterdir():
        assert "Traceback" not in log.read_text(), log.read_text()
    retried = sum(len(c) - 1 for c in runs.values())
    print(f"chaos: {killed} workers killed; {retried} step runs repeated (never a succeeded one)")
