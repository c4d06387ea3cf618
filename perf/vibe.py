"""The ``vibe`` cases (``python -m perf --vibe``): the whole ``corral vibe``
on a real tree, against running the same tools by hand, one after another.

On each tree (twisted 24.11.0 and sympy 1.14.0, the wheels' source trees,
fetched once by :mod:`perf.realtree`), each command in a fresh process with
its wall time and peak RSS (:mod:`perf.proctree`):

- ``vibe_cold_s``: ``corral vibe TREE --format json`` with an empty store
  and cache directory;
- ``vibe_warm_s``: the same again (every step from the cache);
- ``vibe_edit_s``: after one module is edited (the analyses of that
  subproject run again; ruff, radon and bandit only on the edited file);
- ``sequential_s``: the sum of each tool run by hand on the same files, one
  after another, as a developer would without corral: ``ruff check`` and
  ``vulture`` on every Python file, ``radon cc``, ``radon mi`` and
  ``bandit`` on the code (not the tests, as vibe does), ``corral analyze``
  (deptry too when the tree has a project file; a wheel has none, and vibe's
  dependencies step says so), each tool's time kept (``tool_<name>_s``);
- ``sequential_over_cold``: how many times longer the sequential sum takes.

A repeat takes minutes (radon's maintainability index alone is over two on
sympy): the vibe cases run once, whatever ``--repeat`` says.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from perf.analysis import AnalysisSkipped
from perf.proctree import run_measured
from perf.realtree import REAL_TREES, TreeUnavailable, edit_real_tree, fetch

__all__ = ["VIBE_TREES", "run_vibe_repeat"]

VIBE_TREES = ("twisted", "sympy")


def _tools(tree: Path) -> list[tuple[str, list[str]]]:
    """Each tool on the files vibe gives it (the same work, by hand): ruff
    and vulture on every Python file, radon and bandit on the code, not the
    tests (vibe's choice: see docs/vibe.md)."""
    from corral.plugins.builtin.architecture.discover import is_test_path
    from corral.plugins.builtin.vibe.handlers import python_files

    files = python_files(tree, [])
    code = [f for f in files if not is_test_path(f)]
    py = [sys.executable, "-m"]
    out = [
        (
            "ruff",
            [
                *py,
                "ruff",
                "check",
                "--isolated",
                "--extend-select",
                "B",
                "--exit-zero",
                "--no-cache",
                "--output-format",
                "json",
                *files,
            ],
        ),
        ("radon_cc", [*py, "radon", "cc", "-j", *code]),
        ("radon_mi", [*py, "radon", "mi", "-j", *code]),
        ("bandit", [*py, "bandit", "-f", "json", "-q", *code]),
        ("vulture", [*py, "vulture", *files, "--min-confidence", "80"]),
        ("analyze", [*py, "corral", "analyze", ".", "--format", "json", "--out", os.devnull]),
    ]
    if any((tree / f).is_file() for f in ("pyproject.toml", "setup.cfg", "setup.py")):
        out.append(("deptry", [*py, "deptry", "."]))
    return out


def run_vibe_repeat(name: str, timeout: float) -> dict[str, Any]:
    spec = REAL_TREES[name]
    try:
        source = fetch(spec)
    except TreeUnavailable as exc:
        raise AnalysisSkipped(str(exc)) from None
    with tempfile.TemporaryDirectory(prefix="corral-perf-vibe-") as tmp:
        work = Path(tmp)
        tree = work / "tree"
        shutil.copytree(source, tree)  # the edit must not reach the cache
        env = {
            **os.environ,
            "CORRAL_STORE": f"sqlite:///{work / 'store.db'}",
            "CORRAL_CACHE_DIR": str(work / "cache"),
        }
        figures: dict[str, Any] = {"tree": spec.label}
        cmd = [sys.executable, "-m", "corral", "vibe", str(tree), "--format", "json"]
        for label in ("cold", "warm", "edit"):
            if label == "edit":
                edit_real_tree(spec, tree)
            out = work / f"vibe-{label}.json"
            proc = run_measured(
                [*cmd, "--out", str(out)],
                work=work,
                label=f"vibe-{label}",
                timeout=timeout,
                env=env,
                cwd=work,
            )
            if proc.returncode != 0:
                raise RuntimeError(
                    f"corral vibe ({label}) exited {proc.returncode}: "
                    f"{(proc.stderr or proc.stdout)[-600:]}"
                )
            figures[f"vibe_{label}_s"] = proc.wall_s
            figures[f"vibe_{label}_rss_mb"] = proc.sum_mb
            plan = json.loads(out.read_text())
            figures[f"findings_{label}"] = plan["summary"]["findings"]
            figures[f"score_{label}"] = plan["score"]["value"]
            missing = [a["analysis"] for a in plan["analyses"] if a["status"] != "ok"]
            if missing:
                raise RuntimeError(f"corral vibe ({label}): no result from {missing}")
        total = 0.0
        tool_env = {
            **env,
            "CORRAL_STORE": f"sqlite:///{work / 'seq.db'}",
            "CORRAL_CACHE_DIR": str(work / "seq-cache"),
        }
        for tool, tool_cmd in _tools(tree):
            proc = run_measured(
                tool_cmd, work=work, label=f"tool-{tool}", timeout=timeout, env=tool_env, cwd=tree
            )
            if proc.timed_out:
                raise RuntimeError(f"{tool} timed out after {timeout:.0f} s")
            figures[f"tool_{tool}_s"] = proc.wall_s
            total += proc.wall_s
        figures["sequential_s"] = total
        figures["sequential_over_cold"] = total / figures["vibe_cold_s"]
    return figures
