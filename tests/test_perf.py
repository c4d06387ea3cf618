"""The perf suite's smoke test: ``--quick`` runs end to end so the suite never rots.

Nothing here asserts speed: the machine running the tests is shared and noisy,
and a figure is only meaningful next to its baseline in a full run. What is
checked is that every case ran in its own process, every workflow's result was
checked, every figure made it into the JSON document and the tables printed.
"""

from __future__ import annotations

import ast
import json
import math
import sys
from pathlib import Path
from typing import Any

import pytest

# perf/ lives at the repository root and is not installed.
ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import perf  # noqa: E402
from perf.codegen import generate  # noqa: E402
from perf.runner import Case, run_cases  # noqa: E402

WORKLOADS = ("single", "fanout", "chain")
MODES = ("baseline-a", "corral-memory", "baseline-b", "corral-sqlite")
THROUGHPUT = ("workflows_per_s", "start_p50_ms", "start_p99_ms", "peak_rss_mb", "submit_all_ms")
PER_KIND = {
    "idle": ("idle_start_p50_ms", "idle_start_p99_ms"),
    "inflight": ("inflight_rss_mb", "inflight_delta_mb", "inflight_kb_per_workflow"),
    "cancel": ("cancel_ms",),
}
ANALYSIS = (
    "grimp_build_s",
    "grimp_process_s",
    "analyze_cold_s",
    "analyze_warm_s",
    "analyze_edit_s",
)


def _only_document(out: Path) -> dict[str, Any]:
    docs = sorted(out.glob("perf-*.json"))
    assert len(docs) == 1, docs
    doc: dict[str, Any] = json.loads(docs[0].read_text(encoding="utf-8"))
    return doc


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def test_quick_run_writes_every_figure_and_prints_the_tables(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc = perf.main(["--quick", "--out", str(tmp_path), "-q"])
    printed = capsys.readouterr().out
    doc = _only_document(tmp_path)
    failures = {cid: c["errors"] for cid, c in doc["cases"].items() if c["status"] != "ok"}
    assert rc == 0 and doc["ok"], failures

    # Where the figures came from.
    assert doc["quick"] is True and doc["repeat"] == 1
    assert doc["machine"]["cpu_count"] and doc["machine"]["total_ram_mb"]
    assert doc["python"]["version"] and doc["packages"]["corral"] and doc["packages"]["trio"]
    assert "commit" in doc["git"]

    # Every figure, as a finite number.
    figures = doc["figures"]
    wanted = [f"throughput.{w}.{m}.{f}" for w in WORKLOADS for m in MODES for f in THROUGHPUT] + [
        f"{kind}.{m}.{f}" for kind, fs in PER_KIND.items() for m in MODES for f in fs
    ]
    wanted += [f"ratio.throughput.{w}.{m}" for w in WORKLOADS for m in MODES if "corral" in m]
    # durable corral against the stricter floor, baseline (c) (issue 20)
    wanted += [f"ratio.throughput.{w}.corral-sqlite.vs-c" for w in WORKLOADS]
    # a queue kept in the store (issue 20)
    wanted += [
        f"queued.{f}"
        for f in ("rss_added_mb", "submit_first_us", "submit_last_us", "drain_vs_single")
    ]
    missing = [name for name in wanted if not _number(figures.get(name))]
    assert not missing, missing

    # Every workflow's result was checked, in every case.
    for case_id, case in doc["cases"].items():
        (run,) = case["runs"]
        if case["kind"] == "window":  # submissions, not workflows run: what a kill lost
            assert run["acknowledged"] > 0 and run["lost"] <= run["bound"], run
            continue
        if case["kind"] == "bulk":  # two rounds: the engine's cancel, then the CLI's
            assert run["checked"] == 2 * case["params"]["n"], run
            continue
        assert run["checked"] == case["params"]["n"], case_id
    assert doc["checked_results"] >= sum(c["params"].get("n", 0) for c in doc["cases"].values())

    # The targets table: the plan's and ours, each with a measured value or marked n/a.
    targets = doc["targets"]
    assert {t["source"] for t in targets} == {"plan", "ours", "issue 11", "issue 18", "issue 20"}
    assert len(targets) == 27
    for t in targets:
        assert _number(t["measured"]), t
        assert t["met"] is None and "n/a" in t["detail"], t  # quick sizes are not judged

    # The tables were printed.
    for heading in ("Throughput", "Start latency", "Memory", "Targets", "corral sqlite"):
        assert heading in printed
    assert "JSON document:" in printed

    # An earlier document renders again, as Markdown for the docs.
    (doc_path,) = tmp_path.glob("perf-*.json")
    assert perf.main(["--show", str(doc_path), "--markdown"]) == 0
    markdown = capsys.readouterr().out
    assert "| workload (N) |" in markdown and "**Targets**" in markdown


def test_quick_analysis_case(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = perf.main(["--quick", "--case", "analysis", "--out", str(tmp_path), "-q"])
    printed = capsys.readouterr().out
    doc = _only_document(tmp_path)
    case = doc["cases"]["analysis"]
    assert rc == 0 and case["status"] == "ok", case["errors"]
    assert list(doc["cases"]) == ["analysis"]
    (run,) = case["runs"]
    assert run["modules"] == 60 and run["checked"] == 3
    missing = [f for f in ANALYSIS if not _number(doc["figures"].get(f"analysis.{f}"))]
    assert not missing, missing
    assert "Analysis of a generated 60-module codebase" in printed


def test_a_failing_case_is_reported_not_raised() -> None:
    bogus = Case("throughput/single/bogus", "throughput", "bogus", "single", {"n": 1, "warmup": 1})
    lines: list[str] = []
    (result,) = run_cases([bogus], repeat=1, timeout=120, progress=lines.append)
    assert not result.ok
    assert "unknown mode 'bogus'" in result.errors[0]
    assert "FAILED" in lines[0]


def test_codegen_is_deterministic_and_exact(tmp_path: Path) -> None:
    first = generate(tmp_path / "a", modules=80, seed=11)
    second = generate(tmp_path / "b", modules=80, seed=11)
    other = generate(tmp_path / "c", modules=80, seed=12)
    assert first.digest == second.digest != other.digest
    files = sorted((tmp_path / "a" / "src").rglob("*.py"))
    assert len(files) == first.modules == 80
    for path in files:
        ast.parse(path.read_text(encoding="utf-8"), filename=str(path))  # valid Python
    assert {p.relative_to(tmp_path / "a" / "src").parts[0] for p in files} == set(first.packages)
    assert first.cycles and first.upward_imports


def test_the_real_tree_is_skipped_not_failed_when_it_cannot_be_fetched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import perf.analysis
    import perf.realtree
    from perf.report import evaluate_targets
    from perf.runner import Scale

    def offline(*args: Any, **kwargs: Any) -> Path:
        raise perf.realtree.TreeUnavailable("pip download sympy==1.14.0 failed: offline")

    monkeypatch.setenv("CORRAL_PERF_CACHE", str(tmp_path))
    monkeypatch.setattr(perf.realtree, "_download", offline)
    monkeypatch.setattr(perf.analysis, "_UNAVAILABLE", {})
    case = Case("analysis/sympy", "analysis", params={"real": "sympy"})
    lines: list[str] = []
    (result,) = run_cases([case], repeat=2, timeout=60, progress=lines.append)
    assert result.status == "skipped" and not result.errors and not result.runs
    assert result.skipped is not None and "offline" in result.skipped
    assert len(lines) == 1 and "SKIPPED" in lines[0]  # not retried by the next repeat
    targets = [t for t in evaluate_targets([result], {}, Scale.full()) if t["source"] == "issue 10"]
    assert len(targets) == 3
    assert all(t["met"] is None and "skipped" in t["detail"] for t in targets)


def test_a_report_is_compared_with_grimps_edges() -> None:
    from perf.analysis import compare

    modules = {"p", "p.a", "p.b"}
    edges = {("p.a", "p.b"), ("p", "p.a")}
    report = {
        "projects": [
            {
                "metrics": {"modules": {m: {} for m in modules}},
                "edges": [{"importer": a, "imported": b, "lines": [1]} for a, b in edges],
            }
        ]
    }
    assert compare(report, modules, edges)["same"]
    report["projects"][0]["edges"].pop()  # type: ignore[attr-defined]
    check = compare(report, modules, edges)
    assert not check["same"] and check["edges_missing"] == 1 and check["edges_extra"] == 0
    # A report without the lists is compared by its summary counts.
    counted = compare({"summary": {"modules": 3, "edges": 2}}, modules, edges)
    assert counted["method"] == "counts" and counted["same"]


def test_peak_rss_covers_the_whole_process_tree(tmp_path: Path) -> None:
    from perf.proctree import run_measured

    child = (
        "import time; b = bytearray(64 * 2**20); b[::4096] = bytes(len(b[::4096])); time.sleep(0.2)"
    )
    code = f"import subprocess, sys; subprocess.run([sys.executable, '-c', {child!r}], check=True)"
    run = run_measured([sys.executable, "-c", code], work=tmp_path, label="tree", timeout=60)
    assert run.returncode == 0 and not run.timed_out
    assert run.max_mb >= 64 > run.main_mb  # the child's 64 MB, not charged to its parent
    assert run.sum_mb >= run.max_mb and run.processes >= 2
