"""A one-shot ``corral run`` runs its own workflow only: orphans of the
store (their process killed, their lease expired) are left alone and
pointed out on stderr; ``corral resume`` continues them from their last
finished step. stdout carries the result only."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

SLOW = """name: slow
steps:
  - {id: first, handler: core.echo, params: {value: 1}}
  - {id: nap, handler: core.sleep, params: {seconds: 1.5}, needs: [first]}
"""
QUICK = "name: quick\nsteps:\n  - {id: a, handler: core.echo, params: {value: {x: 1}}}\n"


def corral(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "corral", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
    )


def _orphan(tmp_path: Path, db: Path) -> str:
    """Run the slow workflow, SIGKILL its process mid-step, expire its lease."""
    (tmp_path / "slow.yaml").write_text(SLOW)
    proc = subprocess.Popen(
        [sys.executable, "-m", "corral", "run", "slow.yaml", "--store", f"sqlite:///{db}"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    row = None
    while time.monotonic() < deadline:
        if db.exists():
            with sqlite3.connect(db) as conn:
                try:
                    row = conn.execute(
                        "SELECT e.id FROM workflow_executions e JOIN step_executions s "
                        "ON s.execution_seq = e.seq WHERE s.step_id = 'nap' AND s.status = 'running'"
                    ).fetchone()
                except sqlite3.OperationalError:
                    row = None
            if row:
                break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert row, "the slow workflow never reached its second step"
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE workflow_executions SET lease_expires_at = 1 WHERE id = ?", row)
    return str(row[0])


def test_run_leaves_orphans_alone_and_resume_continues_them(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    store = f"sqlite:///{db}"
    orphan = _orphan(tmp_path, db)
    (tmp_path / "quick.yaml").write_text(QUICK)

    ran = corral("run", "quick.yaml", "--store", store, cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout) == {"a": {"x": 1}}  # stdout: the result, nothing else
    assert "1 unfinished execution(s)" in ran.stderr and orphan in ran.stderr
    assert "corral resume --all" in ran.stderr and "succeeded" in ran.stderr
    shown = json.loads(corral("show", orphan, "--json", "--store", store, cwd=tmp_path).stdout)
    assert shown["status"] == "running"  # not taken over by the run

    resumed = corral("resume", "--all", "--store", store, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert f"[1/1] {orphan} (slow): succeeded" in resumed.stderr
    shown = json.loads(corral("show", orphan, "--json", "--store", store, cwd=tmp_path).stdout)
    steps = {s["step_id"]: s for s in shown["steps"]}
    assert shown["status"] == "succeeded" and steps["first"]["attempts"] == 1  # not run again

    again = corral("resume", "--all", "--store", store, cwd=tmp_path)
    assert again.returncode == 0 and "nothing to resume" in again.stderr
    finished = corral("resume", orphan, "--store", store, cwd=tmp_path)
    assert finished.returncode == 2 and "cannot be resumed: it is succeeded" in finished.stderr
    both = corral("resume", orphan, "--all", "--store", store, cwd=tmp_path)
    assert both.returncode == 2 and "Traceback" not in both.stderr


@pytest.mark.parametrize("output", ["record", "none"])
def test_run_output_choices(tmp_path: Path, output: str) -> None:
    (tmp_path / "quick.yaml").write_text(QUICK)
    store = f"sqlite:///{tmp_path / 's.db'}"
    ran = corral(
        "run",
        "quick.yaml",
        "--output",
        output,
        "--progress",
        "always",
        "--store",
        store,
        cwd=tmp_path,
    )
    assert ran.returncode == 0, ran.stderr
    if output == "none":
        assert ran.stdout == ""
    else:
        record = json.loads(ran.stdout)  # the progress display went to stderr
        assert record["status"] == "succeeded" and record["result"] == {"a": {"x": 1}}


def test_cancel_from_another_process_stops_a_run_at_once(tmp_path: Path) -> None:
    (tmp_path / "nap.yaml").write_text(
        "name: nap\nsteps:\n  - {id: s, handler: core.sleep, params: {seconds: 600}}\n"
    )
    db = tmp_path / "s.db"
    proc = subprocess.Popen(
        [sys.executable, "-m", "corral", "run", "nap.yaml", "--store", f"sqlite:///{db}"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        row = None
        while row is None and time.monotonic() < deadline:
            time.sleep(0.05)
            if db.exists():
                with sqlite3.connect(db) as conn:
                    try:
                        row = conn.execute(
                            "SELECT id FROM workflow_executions WHERE status = 'running'"
                        ).fetchone()
                    except sqlite3.OperationalError:
                        row = None
        assert row is not None
        done = corral("cancel", row[0], "--store", f"sqlite:///{db}", cwd=tmp_path)
        # the holder heard the request through the store's signal, not at a lease renewal
        assert done.returncode == 0 and "cancelled by the engine running it" in done.stdout
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 1 and "cancelled" in err and out == ""
    finally:
        proc.kill()
