"""Worker processes of cpu handlers boot in safe-path mode (issue 10, point 3).

Each test runs from a directory holding packages named like standard-library
modules (and ``trio``, ``corral``, ``grimp``); each package records its import
in a marker file. Before the fix, a spawned worker (``python -c ...``) and
multiprocessing's resource tracker imported ``signal`` and ``selectors`` from
there while booting.
"""

from __future__ import annotations

import json
import multiprocessing.process
import multiprocessing.spawn
import multiprocessing.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import corral
from corral.engine import workers

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import _worker_handlers  # noqa: E402
from _worker_handlers import imported, shadowing_tree  # noqa: E402


@pytest.fixture
def shadow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """(the shadowing directory, now the current one; its marker file)."""
    marker = tmp_path / "imported"
    root = shadowing_tree(tmp_path / "project", marker)
    monkeypatch.chdir(root)
    return root, marker


def _facts_workflow() -> corral.Workflow:
    wf = corral.Workflow("worker-facts")
    wf.step("facts", "test.worker_facts")
    return wf


async def test_cpu_handler_imports_nothing_from_the_current_directory(
    shadow: tuple[Path, Path],
) -> None:
    _, marker = shadow
    async with corral.open_engine(entry_points=False, plugins=[_worker_handlers]) as engine:
        facts = (await engine.run(_facts_workflow()))["facts"]
    assert imported(marker) == []
    assert facts["pid"] != os.getpid()
    assert facts["safe_path"] is True
    # Once booted, the worker has the parent's path, with multiprocessing's
    # rule for an empty entry (the directory the parent started in), and the
    # parent's current directory.
    origin = multiprocessing.process.ORIGINAL_DIR  # type: ignore[attr-defined]
    assert facts["sys_path"] == [origin if p == "" else p for p in sys.path]
    assert "" not in facts["sys_path"]
    assert facts["cwd"] == os.getcwd()


_SCRIPT = """\
import json
import sys

sys.path.insert(0, {here!r})

import trio

import corral
import _worker_handlers


async def main() -> None:
    async with corral.open_engine(entry_points=False, plugins=[_worker_handlers]) as engine:
        wf = corral.Workflow("worker-facts")
        wf.step("facts", "test.worker_facts")
        print(json.dumps(await engine.run(wf)))


if __name__ == "__main__":
    trio.run(main)
"""


def test_a_fresh_process_starts_its_workers_and_resource_tracker_clean(
    shadow: tuple[Path, Path], tmp_path: Path
) -> None:
    """An application script run from the directory: its first worker also
    starts multiprocessing's resource tracker, another ``-c`` child."""
    root, marker = shadow
    script = tmp_path / "app.py"  # outside the directory: the parent itself is clean
    script.write_text(_SCRIPT.format(here=str(HERE)))
    proc = subprocess.run(
        [sys.executable, str(script)],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert imported(marker) == []
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["facts"]["safe_path"] is True


def _console_script() -> str | None:
    beside = Path(sys.executable).parent / "corral"
    return str(beside) if beside.exists() else shutil.which("corral")


def test_corral_analyze_imports_nothing_from_the_analysed_directory(
    shadow: tuple[Path, Path],
) -> None:
    """``corral analyze .`` (the console script: ``python -m corral`` would
    import ./corral by Python's own rules)."""
    root, marker = shadow
    exe = _console_script()
    if exe is None:
        pytest.skip("the corral console script is not installed")
    proc = subprocess.run(
        [exe, "analyze", ".", "--format", "json"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert imported(marker) == []
    assert proc.returncode == 0, proc.stderr
    packages = {
        p["name"] for project in json.loads(proc.stdout)["projects"] for p in project["packages"]
    }
    assert {"demo", "signal", "json"} <= packages  # the packages were analysed, not run


async def test_analysis_workflow_imports_nothing_from_the_analysed_directory(
    shadow: tuple[Path, Path],
) -> None:
    from corral.plugins.builtin import architecture

    _, marker = shadow
    wf = architecture.analysis_workflow(".")
    async with corral.open_engine(entry_points=False, plugins=[architecture]) as engine:
        result = await engine.run(wf)
    assert imported(marker) == []
    assert result["report"]["summary"]["modules"] >= 3


def _command_line() -> list[str]:
    return [os.fsdecode(arg) for arg in multiprocessing.spawn.get_command_line(pipe_handle=5)]


def test_only_processes_started_for_corral_get_the_flag() -> None:
    """No environment variable, no global flag: other spawns keep Python's
    usual command line (``core.shell`` running ``python script.py`` keeps its
    script's directory)."""
    workers.install()
    workers.install()  # idempotent: wrapped once
    flags = multiprocessing.util._args_from_interpreter_flags  # type: ignore[attr-defined]
    assert not hasattr(flags.__wrapped__, "__corral_safe_path__")
    assert "-P" not in _command_line() or sys.flags.safe_path
    token = workers._SAFE_PATH.set(True)
    try:
        inside = _command_line()
    finally:
        workers._SAFE_PATH.reset(token)
    assert inside.count("-P") == 1
    assert inside.index("-P") < inside.index("-c")
    assert "PYTHONSAFEPATH" not in os.environ
