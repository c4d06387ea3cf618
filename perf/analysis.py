"""The ``--analysis`` cases: ``corral analyze`` next to grimp in a fresh process.

Two trees: a generated codebase (:mod:`perf.codegen`, fresh per repeat, case
``analysis``) and a real one, sympy 1.14.0 (:mod:`perf.realtree`, fetched and
cached at benchmark time, case ``analysis/sympy``, full runs only). On each,
every figure comes from a fresh process:

- ``grimp_build_s``: ``grimp.build_graph(*packages, include_external_packages=True,
  cache_dir=None)`` alone, timed inside the process (the floor: parsing and
  graph building in Rust). External packages are included because corral
  builds its graph that way: like is compared with like;
- ``grimp_process_s``: that process's wall time (interpreter start and
  ``import grimp`` included), the fair thing to set beside a CLI run, and
  ``grimp_rss_mb`` its peak RSS;
- ``analyze_cold_s``: ``python -m corral analyze TREE --format json --out F``
  with a fresh ``CORRAL_STORE`` and ``CORRAL_CACHE_DIR``;
- ``analyze_warm_s``: the same command again, same store and cache;
- ``analyze_edit_s``: after changing one file;
- ``analyze_<run>_rss_{main,max,sum}_mb``: peak RSS of the ``corral analyze``
  process, of the largest process in its tree, and of the whole tree at once
  (:mod:`perf.proctree`); ``analyze_rss_mb`` is the largest tree sum of the
  three runs, the figure set beside grimp's;
- ``cold_vs_grimp``, ``warm_vs_grimp``, ``rss_vs_grimp``: the ratios the
  targets are about, paired within the repeat (same minute, same load).

Every report is checked against grimp's own graph, built by a separate,
untimed process: the analysed modules and the set of internal import edges
(importer and imported both analysed, self-imports excluded) must be
grimp's, plus the edge the edit adds. A fast wrong answer is not a result: on
the generated tree any difference fails the case; on the real tree it is
recorded (``mismatches``, ``checks``) and shown loudly, and fails the case
only beyond 1% of the modules or edges.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from perf.codegen import edit_one_file, generate
from perf.proctree import Measured, run_measured
from perf.realtree import REAL_TREES, TreeUnavailable, edit_real_tree, fetch

__all__ = [
    "AnalysisFailed",
    "AnalysisSkipped",
    "compare",
    "run_analysis_repeat",
    "run_real_tree_repeat",
]

# Timed: the build and nothing else, so the process's wall time and peak RSS
# are grimp's. The module count is a cheap sanity check.
_GRIMP = r"""
import json, sys, time
root, packages = sys.argv[1], sys.argv[2:]
sys.path.insert(0, root)
import grimp
t0 = time.perf_counter()
graph = grimp.build_graph(*packages, include_external_packages=True, cache_dir=None)
elapsed = time.perf_counter() - t0
tops = set(packages)
internal = sum(1 for m in graph.modules if m.split(".")[0] in tops)
print(json.dumps({"build_s": elapsed, "modules": internal}))
"""

# Untimed: the reference the reports are checked against.
_GRIMP_REFERENCE = r"""
import json, sys
root, out, packages = sys.argv[1], sys.argv[2], sys.argv[3:]
sys.path.insert(0, root)
import grimp
graph = grimp.build_graph(*packages, include_external_packages=True, cache_dir=None)
internal = set()
for name in packages:
    internal |= {name} | graph.find_descendants(name)
edges = sorted(
    [importer, imported]
    for importer in internal
    for imported in graph.find_modules_directly_imported_by(importer)
    if imported in internal and imported != importer
)
with open(out, "w", encoding="utf-8") as f:
    json.dump({"modules": sorted(internal), "edges": edges}, f)
"""

RUNS = ("cold", "warm", "edit")
# On a real tree, a difference from grimp up to this share of the modules or
# edges is recorded and shown, not fatal: grimp and corral may legitimately
# disagree on an odd corner (see docs/analysis.md), and the timing still tells
# something. Beyond it the analysis is broken and its timing means nothing.
REAL_TOLERANCE = 0.01


class AnalysisFailed(RuntimeError):
    """A step of the analysis case failed; the message carries the error text."""


class AnalysisSkipped(RuntimeError):
    """The case could not be set up for a reason that says nothing about corral
    (the real tree could not be downloaded): reported as skipped, not failed."""


def _tail(text: str, limit: int = 2000) -> str:
    text = text.strip()
    return text if len(text) <= limit else "…" + text[-limit:]


def _reference(tree_root: Path, packages: list[str], work: Path, timeout: float) -> dict[str, Any]:
    out = work / "grimp-reference.json"
    proc = run_measured(
        [sys.executable, "-I", "-c", _GRIMP_REFERENCE, str(tree_root), str(out), *packages],
        work=work,
        label="grimp-reference",
        timeout=timeout,
    )
    if proc.returncode != 0:
        raise AnalysisFailed(
            f"grimp reference graph failed (exit {proc.returncode}): {_tail(proc.stderr)}"
        )
    data: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return data


def _grimp(
    tree_root: Path, packages: list[str], work: Path, timeout: float
) -> tuple[float, Measured, int]:
    proc = run_measured(
        [sys.executable, "-I", "-c", _GRIMP, str(tree_root), *packages],
        work=work,
        label="grimp",
        timeout=timeout,
    )
    if proc.timed_out:
        raise AnalysisFailed(f"grimp build timed out after {timeout:.0f} s")
    if proc.returncode != 0:
        raise AnalysisFailed(f"grimp build failed (exit {proc.returncode}): {_tail(proc.stderr)}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    return float(out["build_s"]), proc, int(out["modules"])


def _analyze(
    tree: Path, work: Path, label: str, env: dict[str, str], timeout: float
) -> tuple[Measured, Any]:
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
    proc = run_measured(
        cmd, work=work, label=f"analyze-{label}", timeout=timeout, env=env, cwd=work
    )
    if proc.timed_out:
        raise AnalysisFailed(f"corral analyze ({label}) timed out after {timeout:.0f} s")
    if proc.returncode != 0:
        raise AnalysisFailed(
            f"corral analyze ({label}) exited {proc.returncode}: "
            f"{_tail(proc.stderr or proc.stdout)}"
        )
    try:
        report = json.loads(report_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise AnalysisFailed(f"corral analyze ({label}): no readable JSON report: {exc}") from None
    return proc, report


def _report_modules(report: Any) -> set[str] | None:
    projects = report.get("projects") if isinstance(report, dict) else None
    if not isinstance(projects, list):
        return None
    names: set[str] = set()
    for project in projects:
        metrics = project.get("metrics") if isinstance(project, dict) else None
        modules = metrics.get("modules") if isinstance(metrics, dict) else None
        if not isinstance(modules, dict):
            return None
        names |= set(modules)
    return names


def _report_edges(report: Any) -> set[tuple[str, str]] | None:
    projects = report.get("projects") if isinstance(report, dict) else None
    if not isinstance(projects, list):
        return None
    edges: set[tuple[str, str]] = set()
    for project in projects:
        listed = project.get("edges") if isinstance(project, dict) else None
        if not isinstance(listed, list):
            return None
        edges |= {(str(e["importer"]), str(e["imported"])) for e in listed}
    return edges


def _summary(report: Any, key: str) -> int | None:
    summary = report.get("summary") if isinstance(report, dict) else None
    if isinstance(summary, dict) and isinstance(summary.get(key), int):
        return int(summary[key])
    return None


def _examples(items: Iterable[tuple[str, str]] | Iterable[str], limit: int = 5) -> list[str]:
    shown = [" -> ".join(item) if isinstance(item, tuple) else str(item) for item in items]
    return sorted(shown)[:limit]


def compare(report: Any, modules: set[str], edges: set[tuple[str, str]]) -> dict[str, Any]:
    """How a corral report differs from grimp's graph: counts, and a few examples.

    Uses the report's module and edge lists when it has them (schema 2), else
    only ``summary.modules`` and ``summary.edges``; ``same`` is the verdict.
    """
    check: dict[str, Any] = {"modules_expected": len(modules), "edges_expected": len(edges)}
    got_modules, got_edges = _report_modules(report), _report_edges(report)
    if got_modules is not None and got_edges is not None:
        check.update(
            method="sets",
            modules_reported=len(got_modules),
            edges_reported=len(got_edges),
            modules_missing=len(modules - got_modules),
            modules_extra=len(got_modules - modules),
            edges_missing=len(edges - got_edges),
            edges_extra=len(got_edges - edges),
            examples=[
                *(f"module missing: {m}" for m in _examples(modules - got_modules)),
                *(f"module extra: {m}" for m in _examples(got_modules - modules)),
                *(f"edge missing: {e}" for e in _examples(edges - got_edges)),
                *(f"edge extra: {e}" for e in _examples(got_edges - edges)),
            ],
        )
        off_modules = check["modules_missing"] + check["modules_extra"]
        off_edges = check["edges_missing"] + check["edges_extra"]
    else:
        n_modules, n_edges = _summary(report, "modules"), _summary(report, "edges")
        check.update(method="counts", modules_reported=n_modules, edges_reported=n_edges)
        off_modules = len(modules) if n_modules is None else abs(n_modules - len(modules))
        off_edges = len(edges) if n_edges is None else abs(n_edges - len(edges))
    check["off_modules"], check["off_edges"] = off_modules, off_edges
    check["same"] = off_modules == 0 and off_edges == 0
    return check


def _describe(label: str, check: dict[str, Any]) -> str:
    text = (
        f"corral analyze ({label}) differs from grimp: "
        f"{check['modules_reported']} modules vs {check['modules_expected']}, "
        f"{check['edges_reported']} internal edges vs {check['edges_expected']}"
    )
    if check.get("method") == "sets":
        text += (
            f" ({check['edges_missing']} missing, {check['edges_extra']} extra"
            + (f"; e.g. {'; '.join(check['examples'][:3])}" if check["examples"] else "")
            + ")"
        )
    return text


def _record_run(figures: dict[str, Any], label: str, proc: Measured) -> None:
    figures[f"analyze_{label}_s"] = proc.wall_s
    figures[f"analyze_{label}_rss_main_mb"] = proc.main_mb
    figures[f"analyze_{label}_rss_max_mb"] = proc.max_mb
    figures[f"analyze_{label}_rss_sum_mb"] = proc.sum_mb
    figures[f"analyze_{label}_processes"] = proc.processes
    figures["rss_method"] = proc.method


def _ratios(figures: dict[str, Any]) -> None:
    grimp_s, grimp_mb = figures.get("grimp_process_s"), figures.get("grimp_rss_mb")
    sums = [
        figures[f"analyze_{r}_rss_sum_mb"] for r in RUNS if f"analyze_{r}_rss_sum_mb" in figures
    ]
    if sums:
        figures["analyze_rss_mb"] = max(sums)
    if grimp_s:
        for label in ("cold", "warm"):
            if f"analyze_{label}_s" in figures:
                figures[f"{label}_vs_grimp"] = figures[f"analyze_{label}_s"] / grimp_s
    if grimp_mb and sums:
        figures["rss_vs_grimp"] = max(sums) / grimp_mb


def _byte_compile_corral() -> None:
    """Byte-compile corral's own modules, as ``pip install`` does for an
    installed package: a source checkout run with ``PYTHONDONTWRITEBYTECODE=1``
    (as on these machines) would otherwise compile every corral module in
    every timed process, a cost no installed corral pays (and grimp, an
    installed package, does not pay either)."""
    import compileall

    import corral

    compileall.compile_dir(str(Path(corral.__file__).parent), quiet=1)


def _measure(
    *,
    tree_root: Path,
    source_root: Path,
    packages: list[str],
    work: Path,
    timeout: float,
    figures: dict[str, Any],
    edit: Any,
    tolerance: float | None,
) -> None:
    """grimp timed, grimp's reference graph, then analyze cold / warm / edit, checked.

    ``edit()`` changes the tree and returns the import edge it adds (or None);
    ``tolerance`` None means any difference from grimp fails the case.
    """
    _byte_compile_corral()
    build, proc, seen = _grimp(source_root, packages, work, timeout)
    figures["grimp_build_s"], figures["grimp_process_s"] = build, proc.wall_s
    figures["grimp_rss_mb"] = proc.max_mb
    ref = _reference(source_root, packages, work, timeout)
    modules = set(ref["modules"])
    edges = {(a, b) for a, b in ref["edges"]}
    figures["grimp_modules"], figures["grimp_edges"] = len(modules), len(edges)
    figures.setdefault("modules", len(modules))
    if seen != len(modules):
        raise AnalysisFailed(f"grimp saw {seen} modules in one process, {len(modules)} in another")
    env = dict(os.environ)
    env["CORRAL_STORE"] = f"sqlite:///{work / 'store.db'}"
    env["CORRAL_CACHE_DIR"] = str(work / "cache")
    checks: dict[str, Any] = {}
    figures["checks"] = checks
    figures["mismatches"] = 0
    for label in RUNS:
        if label == "edit":
            added = edit()
            if added is not None:
                edges = edges | {added}
        proc, report = _analyze(tree_root, work, label, env, timeout)
        _record_run(figures, label, proc)
        _ratios(figures)
        check = compare(report, modules, edges)
        checks[label] = check
        if check["same"]:
            continue
        figures["mismatches"] += 1
        message = _describe(label, check)
        figures.setdefault("mismatch", message)
        big = tolerance is None or (
            check["off_modules"] > tolerance * len(modules)
            or check["off_edges"] > tolerance * len(edges)
        )
        if big:
            raise AnalysisFailed(message)
    figures["checked"] = len(RUNS)


def _fail(exc: BaseException, figures: dict[str, Any]) -> AnalysisFailed:
    failure = exc if isinstance(exc, AnalysisFailed) else AnalysisFailed(str(exc))
    failure.partial = figures  # type: ignore[attr-defined]
    return failure


def run_analysis_repeat(modules: int, seed: int, timeout: float) -> dict[str, Any]:
    """One repeat on a generated tree: generate, grimp, analyze cold / warm / edit.

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
            if tree.modules != modules:
                raise AnalysisFailed(f"generated {tree.modules} modules, {modules} asked")

            def edit() -> None:
                edit_one_file(tree)  # a stdlib import: no internal edge changes

            _measure(
                tree_root=tree.root,
                source_root=tree.source_root,
                packages=tree.packages,
                work=work,
                timeout=timeout,
                figures=figures,
                edit=edit,
                tolerance=None,
            )
        except (AnalysisFailed, OSError, ValueError, KeyError) as exc:
            raise _fail(exc, figures) from exc
    return figures


# A real tree that could not be fetched is not retried by every repeat of a run.
_UNAVAILABLE: dict[str, str] = {}


def run_real_tree_repeat(name: str, timeout: float) -> dict[str, Any]:
    """One repeat on a real tree (a private copy of the cached one, since it is edited).

    Raises :class:`AnalysisSkipped` when the tree cannot be fetched and
    :class:`AnalysisFailed` (with ``exc.partial``) when a step fails.
    """
    spec = REAL_TREES[name]
    if name in _UNAVAILABLE:
        raise AnalysisSkipped(_UNAVAILABLE[name])
    try:
        cached = fetch(spec, timeout=min(timeout, 600.0))
    except TreeUnavailable as exc:
        _UNAVAILABLE[name] = f"{spec.label} unavailable: {exc}"
        raise AnalysisSkipped(_UNAVAILABLE[name]) from None
    figures: dict[str, Any] = {"tree": spec.label}
    with tempfile.TemporaryDirectory(prefix=f"corral-perf-{name}-") as tmp:
        work = Path(tmp)
        try:
            t0 = time.perf_counter()
            tree = work / "tree"
            shutil.copytree(cached, tree)
            figures["copy_s"] = time.perf_counter() - t0
            figures["py_files"] = sum(1 for _ in tree.rglob("*.py"))
            _measure(
                tree_root=tree,
                source_root=tree,
                packages=[spec.package],
                work=work,
                timeout=timeout,
                figures=figures,
                edit=lambda: edit_real_tree(spec, tree),
                tolerance=REAL_TOLERANCE,
            )
        except (AnalysisFailed, OSError, ValueError, KeyError) as exc:
            raise _fail(exc, figures) from exc
    return figures
