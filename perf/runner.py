"""Which cases exist, running each in a fresh process, and medians.

Cases are run in rounds: round ``r`` runs every selected case once, in an
order that puts each corral mode right after its baseline for the same
workload. A burst of noise from a neighbour on a shared machine then tends to
hit a corral run and its baseline alike, and ratios are computed per round
(paired) before taking their median.
"""

from __future__ import annotations

import fnmatch
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from perf._case import MODES, PG_MODES, RESULT_PREFIX
from perf.analysis import AnalysisSkipped
from perf.workloads import FULL_N, QUICK_N

__all__ = [
    "BASELINE_OF",
    "FLOOR_OF",
    "FLOOR_SUFFIX",
    "Case",
    "CaseResult",
    "Scale",
    "build_cases",
    "paired_ratios",
    "run_cases",
    "select",
]

REPO_ROOT = Path(__file__).resolve().parent.parent

# Each corral mode is compared with the baseline that does the same durable work.
BASELINE_OF = {
    "corral-memory": "baseline-a",
    "corral-sqlite": "baseline-b",
    "corral-postgres": "baseline-pg",
}
#: The stricter floor durable corral is also compared with (issue 20): its
#: ratios are reported as ``<case id>/vs-c``.
FLOOR_OF = {"corral-sqlite": "baseline-c"}
FLOOR_SUFFIX = "/vs-c"

MODE_LABELS = {
    "baseline-a": "baseline (a) trio",
    "corral-memory": "corral memory://",
    "baseline-b": "baseline (b) trio+sqlite",
    "baseline-c": "baseline (c) one row per step",
    "corral-sqlite": "corral sqlite",
    "baseline-pg": "floor (pg) trio+asyncpg",
    "corral-postgres": "corral postgresql",
}
#: Issue 20: the soak's length (full run), seconds.
SOAK_SECONDS = 600.0
#: Issue 20: executions waiting in the store at once (the full run's size).
QUEUED_TARGET_N = 1_000_000
#: Worker processes against one server (the --postgres table).
WORKER_COUNTS = (1, 2, 4)


@dataclass(frozen=True)
class Scale:
    """Sizes of every case; ``full`` is issue 5's, ``quick`` the smoke test's."""

    n: dict[str, int]
    inflight: int
    cancel_width: int
    idle_count: int
    idle_gap: float
    inflight_settle: float
    analysis_modules: int
    timeout: float
    # Real trees for the analysis cases (perf.realtree): fetched and analysed in
    # full runs only, so that --quick stays seconds and needs no network.
    analysis_real: tuple[str, ...] = ()

    @classmethod
    def full(cls) -> Scale:
        return cls(dict(FULL_N), 10_000, 1_000, 200, 0.005, 0.5, 1500, 900.0, ("sympy",))

    @classmethod
    def quick(cls) -> Scale:
        return cls(dict(QUICK_N), 300, 100, 20, 0.002, 0.05, 60, 180.0)


@dataclass(frozen=True)
class Case:
    """One measurement: run ``repeat`` times, each in a fresh process."""

    id: str  # "throughput/single/corral-sqlite", "idle/corral-memory", "analysis", "analysis/sympy"
    kind: str
    mode: str | None = None
    workload: str | None = None
    params: dict[str, Any] = field(default_factory=dict)

    def spec(self, tmpdir: Path) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "mode": self.mode,
            "workload": self.workload,
            "tmpdir": str(tmpdir),
            **self.params,
        }


@dataclass
class CaseResult:
    case: Case
    runs: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    skipped: str | None = None  # why the case could not run (e.g. a download failed)

    @property
    def ok(self) -> bool:
        return not self.errors and bool(self.runs)

    @property
    def status(self) -> str:
        """``ok``, ``failed`` or ``skipped``: a case that could not be set up for a
        reason outside corral (offline) is reported with the reason, not failed."""
        if self.skipped is not None and not self.runs and not self.errors:
            return "skipped"
        return "ok" if self.ok else "failed"

    def median(self) -> dict[str, float]:
        """Median of every numeric figure over the successful repeats."""
        keys = sorted({k for run in self.runs for k, v in run.items() if _numeric(v)})
        out: dict[str, float] = {}
        for key in keys:
            values = [run[key] for run in self.runs if _numeric(run.get(key))]
            if values:
                out[key] = float(statistics.median(values))
        return out


def _numeric(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def build_cases(
    scale: Scale,
    *,
    analysis: bool,
    postgres: bool = False,
    restructure: bool = False,
    vibe: bool = False,
    serve: bool = False,
    soak: bool = False,
) -> list[Case]:
    """Every case in run order (baseline, then the corral mode it is compared with)."""
    cases: list[Case] = []
    if postgres:
        cases += _throughput_cases(scale, PG_MODES)
        count = scale.n["single"]
        for workers in WORKER_COUNTS:
            cases.append(Case(f"workers/{workers}", "workers", None, "single", {"n": count}))
        for backend in ("sqlite", "postgres"):
            tries = 5 if scale.n == FULL_N else 2
            cases.append(Case(f"xcancel/{backend}", "xcancel", None, None, {"tries": tries}))
    cases += _throughput_cases(scale, MODES)
    warm = 20 if scale.idle_count >= 100 else 5
    for mode in MODES:
        cases.append(
            Case(
                f"idle/{mode}",
                "idle",
                mode,
                "single",
                {"n": scale.idle_count, "warmup": warm, "gap": scale.idle_gap},
            )
        )
    for mode in MODES:
        cases.append(
            Case(
                f"inflight/{mode}",
                "inflight",
                mode,
                "single",
                {"n": scale.inflight, "warmup": 50, "settle": scale.inflight_settle},
            )
        )
    for mode in MODES:
        cases.append(
            Case(
                f"cancel/{mode}",
                "cancel",
                mode,
                None,
                {"n": scale.cancel_width, "warmup": max(10, scale.cancel_width // 20)},
            )
        )
    seconds = 1.0 if scale.n == FULL_N else 0.3
    cases.append(Case("submit-window", "window", "corral-sqlite", None, {"seconds": seconds}))
    bulk = 10_000 if scale.n == FULL_N else 500
    cases.append(Case("bulk-cancel", "bulk", "corral-sqlite", None, {"n": bulk}))
    queued = QUEUED_TARGET_N if scale.n == FULL_N else 5_000
    cases.append(Case("queued", "queued", "corral-sqlite", None, {"n": queued}))
    if restructure:
        moves = 100 if scale.analysis_modules >= 1000 else 10
        cases.append(
            Case(
                "restructure",
                "restructure",
                params={"modules": scale.analysis_modules, "moves": moves},
            )
        )
    if serve:
        seconds = 30.0 if scale.n == FULL_N else 5.0
        cases.append(Case("serve", "serve", params={"seconds": seconds}))
    if soak:
        seconds = SOAK_SECONDS if scale.n == FULL_N else 10.0
        cases.append(Case("soak", "soak", "corral-sqlite", None, {"seconds": seconds}))
    if vibe:
        from perf.vibe import VIBE_TREES

        for name in VIBE_TREES:
            cases.append(Case(f"vibe/{name}", "vibe", params={"real": name}))
    if analysis:
        cases.append(Case("analysis", "analysis", params={"modules": scale.analysis_modules}))
        for name in scale.analysis_real:
            cases.append(Case(f"analysis/{name}", "analysis", params={"real": name}))
    return cases


def _throughput_cases(scale: Scale, modes: Sequence[str]) -> list[Case]:
    return [
        Case(
            f"throughput/{workload}/{mode}",
            "throughput",
            mode,
            workload,
            {"n": n, "warmup": max(5, n // 10)},
        )
        for workload, n in scale.n.items()
        for mode in modes
    ]


def select(cases: Sequence[Case], names: Sequence[str], modes: Sequence[str]) -> list[Case]:
    """Cases whose id, or one part of it, matches a ``--case`` name or glob, and
    whose mode is one of ``--mode`` (baselines of selected corral modes stay)."""

    def matches(case: Case) -> bool:
        parts = case.id.split("/")
        return any(
            fnmatch.fnmatchcase(case.id, n) or any(fnmatch.fnmatchcase(p, n) for p in parts)
            for n in names
        )

    chosen = [c for c in cases if not names or matches(c)]
    if modes:
        wanted = set(modes) | {b[m] for b in (BASELINE_OF, FLOOR_OF) for m in modes if m in b}
        chosen = [c for c in chosen if c.mode is None or c.mode in wanted]
    return chosen


def _tail(text: str, limit: int = 3000) -> str:
    text = text.strip()
    return text if len(text) <= limit else "…" + text[-limit:]


def _run_subprocess(case: Case, timeout: float) -> dict[str, Any]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    with tempfile.TemporaryDirectory(prefix="corral-perf-") as tmp:
        try:
            proc = subprocess.run(
                [sys.executable, "-m", "perf._case", json.dumps(case.spec(Path(tmp)))],
                capture_output=True,
                text=True,
                cwd=tmp,
                env=env,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"timed out after {timeout:.0f} s") from None
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT_PREFIX) and proc.returncode == 0:
            result: dict[str, Any] = json.loads(line[len(RESULT_PREFIX) :])
            return result
    raise RuntimeError(f"exit status {proc.returncode}: {_tail(proc.stderr or proc.stdout)}")


def _run_once(case: Case, timeout: float, seed: int) -> dict[str, Any]:
    if case.kind == "workers":
        from perf.postgres import run_workers_repeat

        return run_workers_repeat(int(case.id.split("/")[1]), case.params["n"], timeout)
    if case.kind == "xcancel":
        from perf.postgres import run_xcancel_repeat

        return run_xcancel_repeat(case.id.split("/")[1], case.params["tries"], timeout)
    if case.kind == "restructure":
        from perf.restructure import run_restructure_repeat

        return run_restructure_repeat(case.params["modules"], case.params["moves"], timeout)
    if case.kind == "serve":
        from perf.serve import run_serve_repeat

        return run_serve_repeat(case.params["seconds"], timeout)
    if case.kind == "vibe":
        from perf.vibe import run_vibe_repeat

        return run_vibe_repeat(case.params["real"], timeout)
    if case.kind == "bulk":
        from perf.bulk import run_bulk_repeat

        return run_bulk_repeat(case.params["n"], timeout)
    if case.kind == "soak":
        from perf.soak import run_soak_repeat

        return run_soak_repeat(case.params["seconds"], case.params["seconds"] + timeout)
    if case.kind == "queued":
        from perf.queued import run_queued_repeat

        return run_queued_repeat(case.params["n"], timeout)
    if case.kind == "window":
        from perf.window import run_window_repeat

        return run_window_repeat(case.params["seconds"], timeout)
    if case.kind == "analysis":
        from perf.analysis import run_analysis_repeat, run_real_tree_repeat

        if "real" in case.params:
            return run_real_tree_repeat(case.params["real"], timeout)
        return run_analysis_repeat(case.params["modules"], seed, timeout)
    return _run_subprocess(case, timeout)


def run_cases(
    cases: Sequence[Case],
    repeat: int,
    timeout: float,
    progress: Callable[[str], None],
) -> list[CaseResult]:
    """Run every case ``repeat`` times, round by round; never raises for a case."""
    if any(c.mode in PG_MODES or c.kind in ("workers", "xcancel") for c in cases):
        from perf.postgres import server

        with server() as url:
            progress(f"PostgreSQL for the run: {url.rpartition('@')[2]}")
            return _run_rounds(cases, repeat, timeout, progress)
    return _run_rounds(cases, repeat, timeout, progress)


def _run_rounds(
    cases: Sequence[Case],
    repeat: int,
    timeout: float,
    progress: Callable[[str], None],
) -> list[CaseResult]:
    results = {c.id: CaseResult(c) for c in cases}
    total = len(cases) * repeat
    done = 0
    for round_no in range(repeat):
        for case in cases:
            done += 1
            res = results[case.id]
            t0 = time.perf_counter()
            if res.skipped is not None:
                continue
            if (
                case.kind in ("vibe", "serve", "queued", "soak") and round_no > 0
            ):  # minutes each: once
                continue
            try:
                figures = _run_once(case, timeout, seed=5)
            except Exception as exc:
                if isinstance(exc, AnalysisSkipped):
                    res.skipped = str(exc)
                    progress(f"[{done:>3}/{total}] {case.id} #{round_no + 1}: SKIPPED: {exc}")
                    continue
                partial = getattr(exc, "partial", None)
                if partial:
                    res.runs.append({**partial, "failed": True})
                res.errors.append(f"repeat {round_no + 1}: {exc}")
                progress(f"[{done:>3}/{total}] {case.id} #{round_no + 1}: FAILED: {exc}")
                continue
            figures["repeat"] = round_no + 1
            res.runs.append(figures)
            progress(
                f"[{done:>3}/{total}] {case.id} #{round_no + 1}: "
                f"{_headline(case, figures)} ({time.perf_counter() - t0:.1f} s)"
            )
    return list(results.values())


def _headline(case: Case, figures: dict[str, Any]) -> str:
    key, unit = {
        "throughput": ("workflows_per_s", "wf/s"),
        "idle": ("idle_start_p99_ms", "ms p99"),
        "inflight": ("inflight_rss_mb", "MB"),
        "cancel": ("cancel_ms", "ms"),
        "window": ("window_ms", "ms window"),
        "bulk": ("engine_cancel_ms", "ms to cancel all"),
        "queued": ("drain_wf_s", "wf/s drained"),
        "soak": ("slope_mb_per_min", "MB/min RSS slope"),
        "workers": ("workflows_per_s", "wf/s"),
        "xcancel": ("cancel_p50_ms", "ms p50"),
        "restructure": ("apply_s", "s apply"),
        "vibe": ("vibe_cold_s", "s cold"),
        "serve": ("corral_rps", "submissions/s"),
        "analysis": ("analyze_cold_s", "s cold"),
    }[case.kind]
    value = figures.get(key)
    text = f"{value:,.1f} {unit}" if isinstance(value, (int, float)) else "ok"
    if figures.get("mismatch"):
        text += f"; MISMATCH: {figures['mismatch']}"
    return text


def paired_ratios(
    results: Sequence[CaseResult],
    key: str,
    kind: str,
    baselines: dict[str, str] = BASELINE_OF,
    suffix: str = "",
) -> dict[str, dict[str, Any]]:
    """corral ÷ baseline for ``key``, per round (same repeat), and their median
    (keyed by the corral case's id and ``suffix``)."""
    by_id = {r.case.id: r for r in results}
    out: dict[str, dict[str, Any]] = {}
    for res in results:
        case = res.case
        if case.kind != kind or case.mode not in baselines or not res.ok:
            continue
        base_id = case.id.replace(case.mode, baselines[case.mode])
        base = by_id.get(base_id)
        if base is None or not base.ok:
            continue
        base_runs = {r["repeat"]: r for r in base.runs}
        per_round = [
            run[key] / base_runs[run["repeat"]][key]
            for run in res.runs
            if run["repeat"] in base_runs and base_runs[run["repeat"]].get(key)
        ]
        if per_round:
            out[case.id + suffix] = {
                "ratio": float(statistics.median(per_round)),
                "per_repeat": per_round,
                "baseline": base_id,
                "figure": key,
            }
    return out
