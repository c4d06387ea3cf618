"""The ``--analysis`` case: ``corral analyze`` next to grimp's own build time.

On a generated codebase (:mod:`perf.codegen`, fresh per repeat) it measures,
each in a fresh process:

- ``grimp_build_s``: ``grimp.build_graph(*packages, cache_dir=None)`` alone,
  timed inside the process (the floor: parsing and graph building in Rust);
  ``grimp_process_s`` is that process's wall time (interpreter start and
  ``import grimp`` included), the fair thing to set beside a CLI run;
- ``analyze_cold_s``: ``python -m corral analyze TREE --format json --out F``
  with a fresh ``CORRAL_STORE`` and ``CORRAL_CACHE_DIR``;
- ``analyze_warm_s``: the same command again, same store and cache;
- ``analyze_edit_s``: after changing one file (:func:`perf.codegen.edit_one_file`).

Every report must count exactly the generated number of modules, or the
case fails: a fast wrong answer is not a result.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from perf.codegen import edit_one_file, generate

__all__ = ["AnalysisFailed", "run_analysis_repeat"]

_GRIMP = r"""
import json, sys, time
root, packages = sys.argv[1], sys.argv[2:]
sys.path.insert(0, root)
import grimp
t0 = time.perf_counter()
graph = grimp.build_graph(*packages, cache_dir=None)
elapsed = time.perf_counter() - t0
print(json.dumps({"build_s": elapsed, "modules": len(graph.modules)}))
"""


class AnalysisFailed(RuntimeError):
    """A step of the analysis case failed; the message carries the error text."""


def _tail(text: str, limit: int = 2000) -> str:
    text = text.strip()
    return text if len(text) <= limit else "…" + text[-limit:]


def _grimp(tree_root: Path, packages: list[str], timeout: float) -> tuple[float, float, int]:
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-I", "-c", _GRIMP, str(tree_root), *packages],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise AnalysisFailed(f"grimp build failed (exit {proc.returncode}): {_tail(proc.stderr)}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    return float(out["build_s"]), wall, int(out["modules"])


def _analyze(
    tree: Path, work: Path, label: str, env: dict[str, str], timeout: float
) -> tuple[float, Any]:
    report_path = work / f"report-{label}.json"
    cmd = [
        sys.executable,
        "-m",
        "corral",
        "analyze",
        str(tree),
        "--format",
        "json",
        "--out",
        str(report_path),
    ]
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, env=env, cwd=work, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        raise AnalysisFailed(f"corral analyze ({label}) timed out after {timeout:.0f} s") from None
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise AnalysisFailed(
            f"corral analyze ({label}) exited {proc.returncode}: "
            f"{_tail(proc.stderr or proc.stdout)}"
        )
    try:
        report = json.loads(report_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise AnalysisFailed(f"corral analyze ({label}): no readable JSON report: {exc}") from None
    return wall, report


def _module_count(report: Any) -> int | None:
    summary = report.get("summary") if isinstance(report, dict) else None
    if isinstance(summary, dict) and isinstance(summary.get("modules"), int):
        return int(summary["modules"])
    return None


def run_analysis_repeat(modules: int, seed: int, timeout: float) -> dict[str, Any]:
    """One repeat: generate, grimp, analyze cold / warm / after an edit.

    Raises :class:`AnalysisFailed` with the error text; the figures gathered
    before the failure are attached as ``exc.partial``.
    """
    figures: dict[str, Any] = {"modules": modules}
    with tempfile.TemporaryDirectory(prefix="corral-perf-analysis-") as tmp:
        work = Path(tmp)
        try:
            t0 = time.perf_counter()
            tree = generate(work / "tree", modules=modules, seed=seed)
            figures["generate_s"] = time.perf_counter() - t0
            figures["lines"] = tree.lines
            build, wall, seen = _grimp(tree.source_root, tree.packages, timeout)
            figures["grimp_build_s"], figures["grimp_process_s"] = build, wall
            if seen != tree.modules:
                raise AnalysisFailed(f"grimp saw {seen} modules, {tree.modules} were generated")
            env = dict(os.environ)
            env["CORRAL_STORE"] = f"sqlite:///{work / 'store.db'}"
            env["CORRAL_CACHE_DIR"] = str(work / "cache")
            for label in ("cold", "warm", "edit"):
                if label == "edit":
                    edit_one_file(tree)
                wall, report = _analyze(tree.root, work, label, env, timeout)
                count = _module_count(report)
                if count != tree.modules:
                    raise AnalysisFailed(
                        f"corral analyze ({label}) reported {count} modules, "
                        f"{tree.modules} were generated"
                    )
                figures[f"analyze_{label}_s"] = wall
            figures["checked"] = 3
        except (AnalysisFailed, subprocess.TimeoutExpired, OSError) as exc:
            failure = exc if isinstance(exc, AnalysisFailed) else AnalysisFailed(str(exc))
            failure.partial = figures  # type: ignore[attr-defined]
            raise failure from exc
    return figures
