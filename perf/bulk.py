"""Bulk cancel (issue 18): 10,000 running executions on SQLite cancelled at
once, every one recorded ``cancelled``; target under 2 s.

Two ways, in one fresh process per repeat (``python -m perf.bulk N DIR``):

- *engine*: the engine that runs them selects them (``engine.select``) and
  cancels them (``engine.cancel_many``); timed from the selection to the
  last cancelled record committed.
- *cli*: ``corral cancel --workflow W --status running --yes`` from another
  process while the engine runs them: the command's whole run, start-up
  included; it ends once it has seen every one recorded ``cancelled`` in
  the store (and says so: checked).
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import trio

from perf._case import child_main, run_in_child


async def _running(engine: Any, workflow: str, n: int, limit: float) -> None:
    from corral.core.status import RUNNING

    with trio.fail_after(limit):
        while True:
            if len(await engine.select(status=RUNNING, workflow=workflow)) >= n:
                return
            await trio.sleep(0.2)


async def _measure(n: int, tmp: Path, limit: float) -> dict[str, Any]:
    import corral
    from corral.core.status import CANCELLED, RUNNING

    url = f"sqlite:///{tmp / 'bulk.db'}"
    limits = corral.Limits(max_running_workflows=2 * n + 100, max_queued=2 * n + 100)

    def spec(name: str) -> corral.WorkflowSpec:
        step = corral.StepSpec(id="nap", handler="core.sleep", params={"seconds": 3600})
        return corral.WorkflowSpec(name=name, steps=[step])

    figures: dict[str, Any] = {"n": n}
    async with corral.open_engine(url, limits=limits, entry_points=False) as engine:
        for _ in range(n):
            await engine.submit(spec("bulk-engine"))
        await _running(engine, "bulk-engine", n, limit)
        t0 = time.perf_counter()
        found = await engine.select(status=RUNNING, workflow="bulk-engine")
        t1 = time.perf_counter()
        touched = await engine.cancel_many([r.id for r in found])
        t2 = time.perf_counter()
        done = await engine.select(status=CANCELLED, workflow="bulk-engine")
        if len(touched) != n or len(done) != n:
            raise RuntimeError(f"engine: {len(touched)} touched, {len(done)} cancelled of {n}")
        figures["engine_select_ms"] = (t1 - t0) * 1000
        figures["engine_cancel_ms"] = (t2 - t0) * 1000

        for _ in range(n):
            await engine.submit(spec("bulk-cli"))
        await _running(engine, "bulk-cli", n, limit)
        cmd = [
            sys.executable, "-m", "corral", "cancel", "--workflow", "bulk-cli", "--status",
            "running", "--yes", "--store", url,
        ]  # fmt: skip

        def run_cli() -> tuple[float, subprocess.CompletedProcess[str]]:
            # (timed in a thread of its own: the engine's loop is busy
            # stopping 10,000 runs meanwhile and would delay the reading)
            t0 = time.perf_counter()
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=limit)
            return time.perf_counter() - t0, done

        took, proc = await trio.to_thread.run_sync(run_cli)
        if proc.returncode != 0 or f"cancelled {n} executions" not in proc.stdout:
            raise RuntimeError(f"corral cancel: {proc.returncode} {proc.stdout} {proc.stderr}")
        cancelled = await engine.select(status=CANCELLED, workflow="bulk-cli")
        if len(cancelled) != n:
            raise RuntimeError(f"cli: {len(cancelled)} cancelled of {n}")
        figures["checked"] = 2 * n  # every one of both rounds seen cancelled
        figures["cli_cancel_ms"] = took * 1000
    return figures


def run_bulk_repeat(n: int, timeout: float) -> dict[str, Any]:
    """One repeat in a fresh process (its own store in a temp dir)."""
    return run_in_child("perf.bulk", str(n), timeout)


def main(argv: list[str]) -> int:
    return child_main(_measure, argv)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
