"""The ``submit-window`` case: what a crash right after ``submit`` can lose.

Without a key, ``submit`` returns before its record is committed (the insert
rides with the store's next batch). A process that submits in a tight loop
is killed with SIGKILL after ``seconds``; every submission it acknowledged
(printed after ``submit`` returned) is looked for in the database. Figures:

- ``window_ms``: from the oldest acknowledged submission that was lost to the
  kill (0 when none was lost);
- ``lost``: how many acknowledged submissions were lost, next to the bound
  (``corral.storage.batched.MAX_UNACKNOWLEDGED``);
- ``acknowledged``: how many ``submit`` calls returned before the kill.

Lost submissions never ran (a run waits for its record's commit before its
first step); a key makes ``submit`` wait for the commit.
"""

from __future__ import annotations

import os
import select
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

__all__ = ["run_window_repeat"]

_CHILD = r"""
import sys, time, trio, corral
async def main():
    wf = corral.Workflow("w")
    wf.step("s", "core.noop")
    async with corral.open_engine(sys.argv[1], entry_points=False) as engine:
        out = sys.stdout
        while True:
            handle = await engine.submit(wf)
            out.write(f"{handle.id} {time.time()}\n")
            out.flush()
trio.run(main)
"""


def run_window_repeat(seconds: float, timeout: float) -> dict[str, Any]:
    from corral.storage.batched import MAX_UNACKNOWLEDGED

    with tempfile.TemporaryDirectory(prefix="corral-perf-window-") as tmp:
        db = Path(tmp) / "store.db"
        proc = subprocess.Popen(
            [sys.executable, "-c", _CHILD, f"sqlite:///{db}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            cwd=tmp,
        )
        assert proc.stdout is not None
        acknowledged: list[tuple[str, float]] = []
        started = time.monotonic()
        first: float | None = None
        try:
            while time.monotonic() - started < timeout:
                ready, _, _ = select.select([proc.stdout], [], [], 0.05)
                if ready:
                    line = proc.stdout.readline()
                    if not line:
                        raise RuntimeError("the submitting process ended by itself")
                    parts = line.split()
                    if len(parts) == 2:
                        acknowledged.append((parts[0], float(parts[1])))
                        first = first if first is not None else time.monotonic()
                if first is not None and time.monotonic() - first >= seconds:
                    break
            else:
                raise RuntimeError(f"no submissions within {timeout:.0f} s")
        finally:
            os.kill(proc.pid, signal.SIGKILL)
            killed = time.time()
            proc.wait()
        # (lines still in the pipe were acknowledged too, after our last read)
        for line in proc.stdout.read().splitlines():
            parts = line.split()
            if len(parts) == 2:
                acknowledged.append((parts[0], float(parts[1])))
        conn = sqlite3.connect(db)
        try:
            stored = {row[0] for row in conn.execute("SELECT id FROM workflow_executions")}
        finally:
            conn.close()
    lost = [at for execution_id, at in acknowledged if execution_id not in stored]
    return {
        "window_ms": (killed - min(lost)) * 1000 if lost else 0.0,
        "lost": len(lost),
        "acknowledged": len(acknowledged),
        "bound": MAX_UNACKNOWLEDGED,
        "submitted_per_s": len(acknowledged) / seconds,
    }
