"""``corral retry``, bulk ``corral cancel`` and ``corral pause`` as a user
runs them: real processes on a real SQLite file, the retry in another
process than the original, and a retry whose own process is killed and
resumed (issue 18)."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

GATED = """name: gated
inputs:
  nap: {type: number, default: 0}
settings: {on_failure: continue}
steps:
  - id: first
    handler: core.shell
    params: {args: [sh, -c, "echo first >> calls"]}
  - id: check
    handler: core.shell
    needs: [first]
    params: {args: [sh, -c, "echo check >> calls; test -f ready"]}
  - id: nap
    handler: core.shell
    needs: [check]
    params: {args: [sh, -c, "echo nap >> calls; sleep ${inputs.nap}"]}
"""


def corral(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "corral", *args, "--store", f"sqlite:///{cwd / 'x.db'}"],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
        env={**__import__("os").environ, "NO_COLOR": "1"},
    )


def calls(cwd: Path) -> list[str]:
    return (cwd / "calls").read_text().split()


def failed_run(tmp_path: Path) -> str:
    (tmp_path / "gated.yaml").write_text(GATED)
    done = corral("run", "gated.yaml", "--output", "record", cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    return str(json.loads(done.stdout)["id"])


def test_retry_in_another_process_reuses_what_succeeded(tmp_path: Path) -> None:
    original = failed_run(tmp_path)
    assert calls(tmp_path) == ["first", "check"]
    dry = corral("retry", original[:6], "--dry-run", cwd=tmp_path)
    assert dry.returncode == 0, dry.stderr
    assert "1 reused (first)" in dry.stdout and "check: it failed" in dry.stdout
    assert "nap: it was skipped" in dry.stdout
    assert calls(tmp_path) == ["first", "check"]  # a dry run runs nothing
    (tmp_path / "ready").write_text("")
    done = corral("retry", original, "--output", "record", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    retried = json.loads(done.stdout)
    assert retried["status"] == "succeeded" and retried["retry_of"] == original
    assert calls(tmp_path) == ["first", "check", "check", "nap"]
    shown = corral("show", retried["id"], cwd=tmp_path).stdout
    assert f"retry of   {original} (1 of 3 step(s) reused)" in shown
    assert f"reused from {original}" in shown
    assert f"retried by {retried['id']}" in corral("show", original, cwd=tmp_path).stdout
    # Refusals and mistakes: exit 2, one line, no traceback.
    for args, message in [
        (["--from", "nope"], "'nope': workflow 'gated' has no such step"),
        (["--input", "nap=soon"], "nap"),
        (["--workflow", "gated"], "not both"),
    ]:
        bad = corral("retry", original, *args, cwd=tmp_path)
        assert bad.returncode == 2 and message in bad.stderr, bad.stderr
        assert "Traceback" not in bad.stderr
    bare = corral("retry", cwd=tmp_path)
    assert bare.returncode == 2 and "give an execution id" in bare.stderr


def test_a_killed_retry_resumes_without_rerunning_what_it_reused(tmp_path: Path) -> None:
    original = failed_run(tmp_path)
    (tmp_path / "ready").write_text("")
    db = tmp_path / "x.db"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "corral",
            "retry",
            original,
            "-i",
            "nap=60",
            "--lease",
            "1s",
            "--store",
            f"sqlite:///{db}",
            "--progress",
            "never",
        ],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    retry_id = None
    while time.monotonic() < deadline and retry_id is None:
        with sqlite3.connect(db) as conn:
            row = conn.execute(
                "SELECT e.id FROM workflow_executions e JOIN step_executions s ON "
                "s.execution_seq = e.seq WHERE e.retry_of = ? AND s.step_id = 'nap' "
                "AND s.status = 'running'",
                (original,),
            ).fetchone()
        retry_id = row[0] if row else None
        time.sleep(0.05)
    assert retry_id is not None
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    time.sleep(1.5)  # its lease expires
    assert calls(tmp_path) == ["first", "check", "check", "nap"]
    # The nap rerun is taken up where it stopped; what the retry reused (first)
    # and what it finished (check) do not run again.
    (tmp_path / "gated.yaml").write_text(GATED)
    with sqlite3.connect(db) as conn:  # a shorter nap, so the resumed one ends soon
        conn.execute(
            "UPDATE workflow_executions SET inputs = '{\"nap\":0}' WHERE id = ?", (retry_id,)
        )
    done = corral("resume", retry_id, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert calls(tmp_path) == ["first", "check", "check", "nap", "nap"]
    shown = corral("show", retry_id, "--json", cwd=tmp_path)
    record = json.loads(shown.stdout)
    assert record["status"] == "succeeded"
    assert [s.get("reused_from") for s in record["steps"]] == [original, None, None]


def test_bulk_cancel_and_pause(tmp_path: Path) -> None:
    (tmp_path / "slow.yaml").write_text(
        "name: slow\nsteps:\n  - {id: nap, handler: core.sleep, params: {seconds: 60}}\n"
    )
    db = tmp_path / "x.db"
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "corral",
                "run",
                "slow.yaml",
                "--store",
                f"sqlite:///{db}",
                "--progress",
                "never",
            ],
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=(tmp_path / f"run{i}.err").open("w"),
        )
        for i in range(3)
    ]
    try:
        deadline = time.monotonic() + 60
        running = 0
        while time.monotonic() < deadline and running < 3:
            time.sleep(0.05)
            if db.exists():
                with sqlite3.connect(db) as conn:
                    try:
                        running = conn.execute(
                            "SELECT count(*) FROM workflow_executions WHERE status = 'running'"
                        ).fetchone()[0]
                    except sqlite3.OperationalError:
                        running = 0
        errs = [(tmp_path / f"run{i}.err").read_text() for i in range(3)]
        assert running == 3, errs
        dry = corral("cancel", "--workflow", "slow", "--dry-run", cwd=tmp_path)
        assert "would cancel 3 executions of workflow 'slow' (pending, running)" in dry.stdout
        done = corral("cancel", "--workflow", "slow", "--status", "running", cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert "cancelled 3 executions of workflow 'slow' (running)" in done.stdout
        for proc in procs:
            assert proc.wait(timeout=30) == 1  # each run ended: its workflow was cancelled
    finally:
        for proc in procs:
            proc.kill()
    none = corral("cancel", "--workflow", "slow", cwd=tmp_path)
    assert "cancelled 0 executions" in none.stdout
    bad = corral("cancel", "--status", "succeeded", cwd=tmp_path)
    assert bad.returncode == 2 and "expected one of pending, running" in bad.stderr

    assert "paused workflow 'slow'" in corral("pause", "--workflow", "slow", cwd=tmp_path).stdout
    assert "paused since" in corral("pause", "--list", cwd=tmp_path).stdout
    submitted = corral("submit", "slow.yaml", cwd=tmp_path)
    assert "is paused: no worker starts it" in submitted.stderr
    assert (
        "unpaused workflow 'slow'" in corral("unpause", "--workflow", "slow", cwd=tmp_path).stdout
    )
    assert "was not paused" in corral("unpause", "--workflow", "slow", cwd=tmp_path).stdout
    assert "nothing is paused" in corral("pause", "--list", cwd=tmp_path).stdout
    for command in (["pause"], ["unpause"], ["cancel", "--status", "running"]):
        empty = corral(*command, "--workflow", "", cwd=tmp_path)
        assert empty.returncode == 2 and "--workflow needs a workflow name" in empty.stderr
