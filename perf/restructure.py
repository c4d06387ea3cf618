"""The ``restructure`` case (``python -m perf --restructure``): a 100-module
move plan over the generated 1,500-module project, against rope.

On copies of one generated tree, each in a fresh process:

- ``plan_s``: ``corral restructure --move ...`` without ``--apply`` (every
  file that mentions a moved module parsed and rewritten in memory, the
  architecture analysed, the diff produced; nothing written);
- ``apply_s``: the same with ``--apply`` (journal, moves, writes, validation:
  every touched file compiled and the import graph checked against the plan);
- ``rope_s``: rope's ``MoveModule`` for the same modules into the same
  package, one after another, each refactoring applied (rope rewrites the
  imports of each move across the project).

Every module moves into one new package ``<top>.relocated``; modules are
picked evenly across the tree, with names that do not clash there. The
figures are medians of the repeats; the ratio that matters is
``rope_s / apply_s``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from perf.analysis import AnalysisSkipped
from perf.codegen import generate

__all__ = ["run_restructure_repeat"]

_ROPE = r"""
import json, sys, time
from rope.base.project import Project
from rope.refactor.move import MoveModule
root, dest, paths = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
t0 = time.perf_counter()
project = Project(root, ropefolder=None)
target = project.get_resource(dest)
failed = []
for path in paths:
    try:
        changes = MoveModule(project, project.get_resource(path)).get_changes(target)
        project.do(changes)
    except Exception as exc:  # rope gives up on some files of the tree
        failed.append(f"{path}: {type(exc).__name__}: {exc}"[:200])
project.close()
print(json.dumps({"rope_s": time.perf_counter() - t0, "failed": failed}))
"""


def _picks(source_root: Path, root: Path, count: int) -> list[tuple[str, str]]:
    """``count`` modules spread over the tree, unique by name: (dotted, path)."""
    files = sorted(p for p in source_root.rglob("*.py") if p.name != "__init__.py")
    seen: set[str] = set()
    unique = []
    for path in files:
        if path.stem not in seen:
            seen.add(path.stem)
            unique.append(path)
    step = max(1, len(unique) // count)
    chosen = unique[::step][:count]
    return [
        (".".join(p.relative_to(source_root).with_suffix("").parts), p.relative_to(root).as_posix())
        for p in chosen
    ]


def _timed(
    cmd: list[str], timeout: float, cwd: Path
) -> tuple[float, subprocess.CompletedProcess[str]]:
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=cwd)
    return time.perf_counter() - t0, done


def run_restructure_repeat(modules: int, moves: int, timeout: float) -> dict[str, Any]:
    try:
        import rope  # noqa: F401
    except ImportError:
        raise AnalysisSkipped("rope is not installed (pip install rope)") from None
    with tempfile.TemporaryDirectory(prefix="corral-perf-restructure-") as tmp:
        base = Path(tmp)
        tree = generate(base / "tree", modules=modules, seed=5)
        picks = _picks(tree.source_root, tree.root, moves)
        top = picks[0][0].split(".")[0]
        args = []
        for dotted, _ in picks:
            args += ["--move", f"{dotted}={top}.relocated.{dotted.rsplit('.', 1)[-1]}"]
        figures: dict[str, Any] = {"modules": tree.modules, "moves": len(picks)}

        plan_s, done = _timed(
            [
                sys.executable,
                "-m",
                "corral",
                "restructure",
                str(tree.root),
                *args,
                "--format",
                "json",
            ],
            timeout,
            base,
        )
        if done.returncode != 0:
            raise RuntimeError(f"corral restructure (plan) failed: {done.stderr[-600:]}")
        plan = json.loads(done.stdout)
        figures["plan_s"] = plan_s
        figures["files_changed"] = len(plan["files_changed"])
        figures["rewrites"] = sum(plan["rewrites"].values())

        applied = base / "applied"
        shutil.copytree(tree.root, applied)
        apply_s, done = _timed(
            [
                sys.executable,
                "-m",
                "corral",
                "restructure",
                str(applied),
                *args,
                "--apply",
                "--format",
                "json",
            ],
            timeout,
            base,
        )
        if done.returncode != 0:
            raise RuntimeError(f"corral restructure --apply failed: {done.stdout[-600:]}")
        result = json.loads(done.stdout)["result"]
        if not result["applied"]:
            raise RuntimeError(f"corral restructure --apply rolled back: {result}")
        figures["apply_s"] = apply_s

        roped = base / "rope"
        shutil.copytree(tree.root, roped)
        dest = tree.source_root.relative_to(tree.root) / top / "relocated"
        (roped / dest).mkdir()
        (roped / dest / "__init__.py").write_text("")
        rope_s, done = _timed(
            [
                sys.executable,
                "-c",
                _ROPE,
                str(roped),
                dest.as_posix(),
                json.dumps([path for _, path in picks]),
            ],
            timeout,
            base,
        )
        if done.returncode != 0:
            raise RuntimeError(f"rope failed: {done.stderr[-600:]}")
        figures["rope_s"] = rope_s
        inside = json.loads(done.stdout.strip().splitlines()[-1])
        figures["rope_inside_s"] = inside["rope_s"]
        figures["rope_failed_moves"] = len(inside["failed"])
        figures["rope_failures"] = inside["failed"][:5]
        figures["rope_over_apply"] = rope_s / apply_s
    return figures
