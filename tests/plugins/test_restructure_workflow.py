"""``corral restructure`` as a workflow: its steps recorded in the store, the
journal owned by one execution, a tree changed since the plan refused,
Ctrl-C rolled back, and the workflow run by an embedding engine."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from _tree import tree_bytes, write_tree  # noqa: E402

import corral
from corral.errors import RestructureError
from corral.plugins.builtin.restructure.apply import begin, carry_out, finish, recover
from corral.plugins.builtin.restructure.handlers import restructure_workflow
from corral.plugins.builtin.restructure.moves import Move
from corral.plugins.builtin.restructure.project import ProjectPlan, plan_project

FILES = {
    "app/__init__.py": "",
    "app/util/__init__.py": "from .text import shout\n",
    "app/util/text.py": "def shout(s):\n    return s.upper()\n",
    "app/web/__init__.py": "",
    "app/web/views.py": "from app.util.text import shout\n\n\ndef view():\n    return shout('x')\n",
}
MOVE = Move("app.util.text", "app.lib.strings")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return write_tree(tmp_path / "proj", FILES)


snapshot = tree_bytes


def cli(*args: str, store: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "corral", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        env={**os.environ, "CORRAL_STORE": store, "PYTHONPATH": str(cwd)},
    )


def test_every_step_is_recorded_in_the_store(project: Path, tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'store.db'}"
    move = f"{MOVE.old}={MOVE.new}"
    done = cli("restructure", str(project), "--move", move, "--apply", store=store, cwd=project)
    assert done.returncode == 0, done.stdout + done.stderr
    listed = json.loads(cli("list", "--json", store=store, cwd=project).stdout)
    (execution,) = [e for e in listed if e["workflow"] == "restructure.apply"]
    assert execution["id"] in done.stderr  # the note says which execution it was
    shown = json.loads(cli("show", execution["id"], "--json", store=store, cwd=project).stdout)
    steps = {s["step_id"]: s for s in shown["steps"]}
    assert list(steps) == ["plan", "snapshot", "write", "validate", "finish"]
    assert {s["status"] for s in steps.values()} == {"succeeded"}
    assert steps["write"]["output"] == {"moved": 1, "written": 2, "imports_sorted": 0}
    assert steps["finish"]["output"]["ok"] is True


def test_the_journal_belongs_to_one_execution(project: Path) -> None:
    plan = plan_project(project, [MOVE])
    before = snapshot(project)
    begin(plan, owner="exec-a")
    with pytest.raises(RestructureError, match="snapshot is gone"):
        carry_out(plan, owner="exec-b")  # another run's step: refused, nothing written
    assert snapshot(project) == {**before, **_journal_files(project)}
    assert recover(project) is not None  # a later run rolls back ...
    with pytest.raises(RestructureError, match="snapshot is gone"):
        carry_out(plan, owner="exec-a")  # ... and the first run's steps can do nothing
    with pytest.raises(RestructureError, match="snapshot is gone"):
        finish(plan, [], owner="exec-a")
    assert snapshot(project) == before


def _journal_files(root: Path) -> dict[str, bytes]:
    return {k: v for k, v in snapshot(root).items() if k.startswith(".corral-restructure/")}


def test_a_tree_changed_since_the_plan_is_refused(project: Path) -> None:
    plan = ProjectPlan.from_data(plan_project(project, [MOVE]).to_data())  # as a step gets it
    (project / "app/web/views.py").write_text("from app.util.text import shout  # edited\n")
    before = snapshot(project)
    with pytest.raises(RestructureError, match="app/web/views.py changed since the plan"):
        begin(plan, owner="x")
    assert snapshot(project) == before  # no journal either


def test_ctrl_c_during_validation_rolls_everything_back(project: Path, tmp_path: Path) -> None:
    before = snapshot(project)
    started = tmp_path / "started"
    proc = subprocess.Popen(
        [sys.executable, "-m", "corral", "restructure", str(project), "--move",
         f"{MOVE.old}={MOVE.new}", "--apply", "--test-command", f"touch {started}; sleep 60"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "CORRAL_STORE": f"sqlite:///{tmp_path / 'store.db'}"},
    )
    deadline = time.monotonic() + 60
    while not started.exists():
        assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode != 0
    assert "rolled back" in err, err
    assert "Traceback" not in err
    assert snapshot(project) == before


async def test_an_embedding_engine_runs_the_workflow(project: Path, tmp_path: Path) -> None:
    wf = restructure_workflow(project, [MOVE], apply=True)
    async with corral.open_engine(f"sqlite:///{tmp_path / 'store.db'}") as engine:
        handle = await engine.submit(wf.build())
        result = await handle.result()
    assert result["validation"]["ok"] and result["finish"]["ok"]
    assert (project / "app/lib/strings.py").read_text() == FILES["app/util/text.py"]
    plan = ProjectPlan.from_data(result["plan"])
    assert [(m.old, m.new) for m in plan.moves] == [(MOVE.old, MOVE.new)]


async def test_an_impossible_plan_fails_its_plan_step(project: Path) -> None:
    wf = restructure_workflow(project, [Move("app.nope", "app.lib.nope")], apply=True)
    async with corral.open_engine("memory://") as engine:
        record = await (await engine.submit(wf.build())).wait()
    assert record.status == "failed"
    assert record.error is not None
    assert (record.error.type, record.error.step) == ("RestructureError", "plan")
    assert "no module or package 'app.nope'" in record.error.message


def test_a_rolled_back_restructuring_is_a_failed_execution(project: Path, tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'store.db'}"
    before = snapshot(project)
    move = f"{MOVE.old}={MOVE.new}"
    done = cli(
        "restructure", str(project), "--move", move, "--apply", "--test-command", "false",
        store=store, cwd=project,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "everything was rolled back" in done.stdout  # the report, from the recorded steps
    assert "FAILED: test command `false`" in done.stdout
    assert snapshot(project) == before
    (execution,) = json.loads(cli("list", "--json", store=store, cwd=project).stdout)
    shown = json.loads(cli("show", execution["id"], "--json", store=store, cwd=project).stdout)
    assert shown["status"] == "failed"
    assert (shown["error"]["type"], shown["error"]["step"]) == ("RestructureRolledBack", "finish")
