"""A million queued (issue 20): executions waiting in the store as records.

One fresh process per repeat (``python -m perf.queued N DIR TIMEOUT``), a
SQLite store in a temporary directory, single-step workflows (``core.noop``):

- *reference*: the single-workflow rate of this process, on an engine with
  the default limits (a store of its own): ``ref`` workflows submitted one
  after another and run, timed from the first submit to the last finish;
  measured before the queue is built and again after the drain (a run of
  minutes on a machine whose speed drifts), their mean the reference;
- *queued*: an engine with ``Limits(queue_in_store=True, max_queued=1000)``
  and the workflow paused (so nothing drains meanwhile): ``n`` submitted one
  after another. Each submission is one row, committed by the store's
  writer in batches (at most 500 acknowledged ahead of their commit); the
  time per submission is taken per tenth (``submit_first_us``: the second tenth,
  past the first 500 acknowledged before any commit; ``submit_last_us``:
  the last; O(1) means the last is not slower). RSS is read
  before and after (``rss_added_mb``: what a million waiting executions cost
  the engine's process);
- *drain*: the pause lifted, timed until every one has finished
  (``drain_wf_s``), and set beside the reference (``drain_vs_single``).
  Every queued execution is checked ``succeeded`` at the end (``checked``).
"""

from __future__ import annotations

import contextlib
import itertools
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any

import trio

from perf._case import child_main, run_in_child

WORKFLOW = "queued"


def _rss_mb() -> float:
    import psutil

    return float(psutil.Process().memory_info().rss) / 2**20


async def _until(engine: Any, succeeded: int, limit: float) -> None:
    with trio.fail_after(limit):
        while engine.metrics().succeeded < succeeded:  # noqa: ASYNC110 - a counter, no event
            await trio.sleep(0.05)


async def _reference(url: str, n: int, limit: float) -> float:
    import corral

    wf = corral.Workflow("reference")
    wf.step("s", "core.noop")
    async with corral.open_engine(url, entry_points=False) as engine:
        for _ in range(min(n, 1000)):  # warm-up
            await engine.submit(wf)
        await _until(engine, min(n, 1000), limit)
        t0 = time.perf_counter()
        for _ in range(n):
            await engine.submit(wf)
        await _until(engine, min(n, 1000) + n, limit)
        return n / (time.perf_counter() - t0)


async def _measure(n: int, tmp: Path, limit: float) -> dict[str, Any]:
    import gc

    import corral
    from corral.core.status import SUCCEEDED

    ref = max(1000, min(20_000, n // 10))
    figures: dict[str, Any] = {"n": n, "ref": ref}
    before = await _reference(f"sqlite:///{tmp / 'ref-before.db'}", ref, limit)

    wf = corral.Workflow(WORKFLOW)
    wf.step("s", "core.noop")
    limits = corral.Limits(queue_in_store=True, max_queued=1000)
    url = f"sqlite:///{tmp / 'queued.db'}"
    async with corral.open_engine(url, limits=limits, entry_points=False) as engine:
        warm = 1000
        warmup = corral.Workflow(f"{WORKFLOW}-warm-up")
        warmup.step("s", "core.noop")
        for _ in range(warm):
            await engine.submit(warmup)
        await _until(engine, warm, limit)
        await engine.pause(WORKFLOW)
        gc.collect()
        rss0 = _rss_mb()
        tenth = max(1, n // 10)
        per_tenth: list[float] = []
        t0 = time.perf_counter()
        for k in range(n):
            if k % tenth == 0:
                per_tenth.append(time.perf_counter())
            await engine.submit(wf)
        t1 = time.perf_counter()
        per_tenth.append(t1)
        gc.collect()
        rss1 = _rss_mb()
        steps = [b - a for a, b in itertools.pairwise(per_tenth)]
        figures["submit_wf_s"] = n / (t1 - t0)
        # (the second tenth, not the first: the first 500 submissions are
        # acknowledged before any commit, see MAX_UNACKNOWLEDGED)
        figures["submit_first_us"] = steps[1] / tenth * 1e6
        figures["submit_last_us"] = steps[-1] / tenth * 1e6
        figures["rss_before_mb"] = rss0
        figures["rss_queued_mb"] = rss1
        figures["rss_added_mb"] = rss1 - rss0
        figures["queued_in_memory"] = engine.statistics()["dispatcher"].queued
        t2 = time.perf_counter()
        await engine.unpause(WORKFLOW)
        await _until(engine, warm + n, limit)
        t3 = time.perf_counter()
        figures["drain_wf_s"] = n / (t3 - t2)
        figures["rss_drained_mb"] = _rss_mb()
    # The reference once more, after the drain: the run lasts minutes, and
    # this machine's speed drifts over minutes; the drain is set beside the
    # mean of the two.
    after = await _reference(f"sqlite:///{tmp / 'ref-after.db'}", ref, limit)
    figures["single_before_wf_s"], figures["single_after_wf_s"] = before, after
    figures["single_wf_s"] = (before + after) / 2
    figures["drain_vs_single"] = figures["drain_wf_s"] / figures["single_wf_s"]
    # Counted in the database itself (a million records read back through
    # the engine would cost a gigabyte for a count).
    with contextlib.closing(sqlite3.connect(tmp / "queued.db")) as conn:
        rows = conn.execute(
            "SELECT status, count(*) FROM workflow_executions WHERE workflow = ? GROUP BY status",
            (WORKFLOW,),
        ).fetchall()
    counts = dict(rows)
    if counts != {SUCCEEDED: n}:
        raise RuntimeError(f"of {n} queued: {counts}")
    figures["checked"] = counts[SUCCEEDED]
    return figures


def run_queued_repeat(n: int, timeout: float) -> dict[str, Any]:
    """One repeat in a fresh process (its own stores in a temp dir)."""
    return run_in_child("perf.queued", str(n), timeout)


def main(argv: list[str]) -> int:
    return child_main(_measure, argv)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
