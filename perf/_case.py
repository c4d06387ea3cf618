"""One case in a fresh process: ``python -m perf._case '<json spec>'``.

The runner starts this module once per case and repeat, so every figure comes
from a clean interpreter (RSS not inflated by earlier cases, no warm caches
from another mode, a fresh database file in the case's own temp dir). The
result is printed as one line, ``PERF-RESULT {json}``, on stdout; anything
else the process prints is ignored. A failure (wrong result, exception) exits
non-zero with the traceback on stderr, which the runner records.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import trio

from perf.stats import current_rss_mb, peak_rss_mb

RESULT_PREFIX = "PERF-RESULT "


def run_in_child(module: str, size: str, timeout: float) -> dict[str, Any]:
    """``python -m <module> SIZE DIR TIMEOUT`` in a fresh process with a
    temporary directory of its own; its ``PERF-RESULT`` line's figures.
    Raises ``RuntimeError`` with the tail of its output when it failed."""
    import subprocess
    import tempfile

    name = module.rpartition(".")[2]
    with tempfile.TemporaryDirectory(prefix=f"corral-perf-{name}-") as tmp:
        proc = subprocess.run(
            [sys.executable, "-m", module, size, tmp, str(timeout)],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT_PREFIX) and proc.returncode == 0:
            result: dict[str, Any] = json.loads(line[len(RESULT_PREFIX) :])
            return result
    raise RuntimeError(f"exit status {proc.returncode}: {(proc.stderr or proc.stdout)[-2000:]}")


def child_main(measure: Callable[..., Any], argv: list[str]) -> int:
    """The entry point of a child :func:`run_in_child` starts: ``SIZE DIR
    TIMEOUT`` into ``trio.run(measure, size, dir, timeout)``, its figures
    printed."""
    n, tmp, timeout = int(argv[0]), Path(argv[1]), float(argv[2])
    print_result(trio.run(measure, n, tmp, timeout))
    return 0


def print_result(figures: dict[str, Any]) -> None:
    """The figures as the one line :func:`run_in_child` reads."""
    sys.stdout.write(RESULT_PREFIX + json.dumps(figures) + "\n")
    sys.stdout.flush()


MODES = ("baseline-a", "corral-memory", "baseline-b", "baseline-c", "corral-sqlite")
#: With --postgres (a server for the run: perf.postgres).
PG_MODES = ("baseline-pg", "corral-postgres")


def _opener(mode: str) -> Callable[[Path, int | None], AbstractAsyncContextManager[Any]]:
    """Import what the mode needs (so import cost shows in "RSS after imports")."""
    if mode in ("baseline-a", "baseline-b", "baseline-c"):
        from perf.baselines import open_trio_system

        durable, lean = mode != "baseline-a", mode == "baseline-c"
        return lambda tmpdir, _max_running: open_trio_system(durable, tmpdir, lean=lean)
    if mode in ("corral-memory", "corral-sqlite", "corral-postgres"):
        from perf.corral_system import open_corral_system

        store = mode.removeprefix("corral-")
        return lambda tmpdir, max_running: open_corral_system(
            store, tmpdir, max_running=max_running
        )
    if mode == "baseline-pg":
        from perf.postgres import open_pg_floor

        return lambda tmpdir, _max_running: open_pg_floor(os.environ["CORRAL_PERF_DB"])
    raise ValueError(f"unknown mode {mode!r}")


async def run_case(spec: dict[str, Any]) -> dict[str, Any]:
    from perf import measure

    kind, mode = spec["kind"], spec["mode"]
    tmpdir = Path(spec["tmpdir"])
    opener = _opener(mode)
    rss_after_imports = current_rss_mb()
    max_running = spec["n"] + 100 if kind == "inflight" else None
    async with opener(tmpdir, max_running) as system:
        server_cpu = _server_cpu(mode)
        if kind == "throughput":
            figures = await measure.throughput_case(
                system, spec["workload"], spec["n"], spec["warmup"]
            )
        elif kind == "idle":
            figures = await measure.idle_case(system, spec["n"], spec["warmup"], spec["gap"])
        elif kind == "inflight":
            figures = await measure.inflight_case(
                system, spec["n"], spec["warmup"], spec["settle"], rss_after_imports
            )
        elif kind == "cancel":
            figures = await measure.cancel_case(system, spec["n"], spec["warmup"])
        else:
            raise ValueError(f"unknown case kind {kind!r}")
        info = system.describe()
        if server_cpu is not None:  # (while the connections live: their CPU counts)
            end = _server_cpu(mode)
            if end is not None:
                figures["server_cpu_s"] = end - server_cpu
    if info:
        figures.setdefault("raw", {}).update(info)
    return figures


def _server_cpu(mode: str) -> float | None:
    if mode not in PG_MODES:
        return None
    from perf.postgres import server_cpu_s

    return server_cpu_s(os.environ["CORRAL_PERF_DB"])


def main(argv: list[str]) -> int:
    spec = json.loads(argv[0])
    t0 = time.perf_counter()
    if spec["mode"] in PG_MODES:
        from perf.postgres import fresh_database, server_counters

        with fresh_database() as url:
            os.environ["CORRAL_PERF_DB"] = url
            before = server_counters(url)
            figures = trio.run(run_case, spec)
            time.sleep(1.0)  # (closed connections report their statistics as they exit)
            after = server_counters(url)
        per = max(1, spec["n"] + spec.get("warmup", 0))
        for key in after:  # the server's work per workflow (commits, rows)
            figures[f"server_{key}_per_wf"] = (after[key] - before[key]) / per
        if "server_cpu_s" in figures:
            figures["server_cpu_s_per_wf"] = figures.pop("server_cpu_s") / per
    else:
        figures = trio.run(run_case, spec)
    figures["peak_rss_mb"] = peak_rss_mb()
    figures["case_wall_s"] = time.perf_counter() - t0
    sys.stdout.write(RESULT_PREFIX + json.dumps(figures) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
