"""corral's performance suite: ``python -m perf`` (and ``corral bench``).

Every case runs in a fresh process, a few times, and the median is reported
next to two raw-Trio baselines measured in the same run, so the figures that
matter are ratios, which survive a noisy shared machine far better than
absolute times. See ``docs/performance.md``.

``main(argv)`` is the whole command line; ``corral bench ARGS`` calls it with
the same arguments, so there is one parser and one behaviour.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as _dt
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["DEFAULT_OUT", "main"]

DEFAULT_OUT = Path(__file__).resolve().parent / "results"


def _parser(prog: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog,
        description="Measure corral against raw-Trio baselines. Each case runs in "
        "a fresh process; medians of --repeat runs are reported with corral ÷ baseline "
        "ratios and the targets.",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="small sizes and 1 repeat: a smoke test (seconds), not a measurement",
    )
    p.add_argument(
        "--repeat",
        type=int,
        default=None,
        metavar="N",
        help="runs per case, median reported (default: 3; 1 with --quick)",
    )
    p.add_argument(
        "--case",
        action="append",
        default=[],
        metavar="NAME",
        help="only cases whose id or a part of it matches NAME (glob), e.g. "
        "single, throughput, 'idle', 'cancel/*', sympy; repeatable. 'analysis' "
        "(both analysis cases) and 'sympy' imply --analysis",
    )
    p.add_argument(
        "--mode",
        action="append",
        default=[],
        metavar="MODE",
        choices=[
            "corral-memory",
            "corral-sqlite",
            "corral-postgres",
            "baseline-a",
            "baseline-b",
            "baseline-pg",
        ],
        help="only these modes (a corral mode keeps its baseline); repeatable",
    )
    p.add_argument(
        "--analysis",
        action="store_true",
        help="also time `corral analyze` (cold, warm, after an edit; time and peak RSS) "
        "against grimp on a generated codebase and, in full runs, on sympy 1.14.0 "
        "(downloaded once into $CORRAL_PERF_CACHE or ~/.cache/corral-perf)",
    )
    p.add_argument(
        "--restructure",
        action="store_true",
        help="also time `corral restructure` (a 100-module plan over the generated "
        "1,500-module tree: plan, and apply with validation) against rope's MoveModule on "
        "the same modules (needs rope installed)",
    )
    p.add_argument(
        "--vibe",
        action="store_true",
        help="also time the whole `corral vibe` on twisted 24.11.0 and sympy 1.14.0 (cold, "
        "warm, after an edit; peak RSS) against the same tools run by hand one after "
        "another; minutes each, run once (trees downloaded once into the perf cache)",
    )
    p.add_argument(
        "--serve",
        action="store_true",
        help="also load `corral serve` on SQLite: 200 kept-alive clients submitting a stored "
        "single-step workflow for 30 s (5 s with --quick), against a bare Litestar app on "
        "corral's HTTP server (the HTTP stack's floor); then paced at half that rate for "
        "the latency of a server not overloaded; run once",
    )
    p.add_argument(
        "--soak",
        action="store_true",
        help="also the soak case: steady load (1,000 single-step workflows per second, "
        "~500 in flight) on SQLite for 10 minutes (10 s with --quick), RSS sampled every "
        "second, its slope reported; run once",
    )
    p.add_argument(
        "--postgres",
        action="store_true",
        help="also the PostgreSQL cases: corral ÷ a raw asyncpg floor, 1/2/4 worker "
        "processes, cross-process cancel latency (SQLite too); a server is started for the "
        "run unless $CORRAL_PERF_POSTGRES names one",
    )
    p.add_argument(
        "--analysis-modules",
        type=int,
        default=None,
        metavar="N",
        help="size of the generated codebase (default: 1500; 60 with --quick)",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        metavar="DIR",
        help=f"where the JSON document goes (default: {DEFAULT_OUT})",
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help="per case process (default: 900; 180 with --quick)",
    )
    p.add_argument(
        "--json",
        action="store_true",
        help="print the JSON document on stdout instead of the tables",
    )
    p.add_argument(
        "--markdown",
        action="store_true",
        help="print the tables as Markdown (for docs/performance.md)",
    )
    p.add_argument(
        "--show",
        type=Path,
        metavar="FILE",
        help="run nothing: print the tables of an earlier run's JSON document",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress lines on stderr")
    p.add_argument("--list", action="store_true", help="list the selected cases and exit")
    return p


def main(argv: Sequence[str] | None = None, *, prog: str = "python -m perf") -> int:
    """Run the suite; returns 0 if every case ran and every result checked, else 1."""
    from perf import report
    from perf.runner import Scale, build_cases, run_cases, select

    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser(prog).parse_args(argv)
    if args.show is not None:
        try:
            shown = json.loads(args.show.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            print(f"{prog}: error: --show {args.show}: {exc}", file=sys.stderr)
            return 2
        _print(shown, args)
        return 0
    if args.repeat is not None and args.repeat < 1:
        print(f"{prog}: error: --repeat must be at least 1", file=sys.stderr)
        return 2
    scale = Scale.quick() if args.quick else Scale.full()
    if args.analysis_modules is not None:
        if args.analysis_modules < 20:
            print(f"{prog}: error: --analysis-modules must be at least 20", file=sys.stderr)
            return 2
        scale = dataclasses.replace(scale, analysis_modules=args.analysis_modules)
    if args.timeout is not None:
        scale = dataclasses.replace(scale, timeout=args.timeout)
    repeat = args.repeat or (1 if args.quick else 3)
    analysis = args.analysis or any(n.startswith(("analysis", "sympy")) for n in args.case)
    postgres = (
        args.postgres
        or any(
            n.startswith(("workers", "xcancel")) or "postgres" in n or "-pg" in n for n in args.case
        )
        or any(m in ("corral-postgres", "baseline-pg") for m in args.mode)
    )
    restructure = args.restructure or any(n.startswith("restructure") for n in args.case)
    vibe = args.vibe or any(n.startswith("vibe") for n in args.case)
    serve = args.serve or any(n.startswith("serve") for n in args.case)
    soak = args.soak or any(n.startswith("soak") for n in args.case)
    cases = select(
        build_cases(
            scale,
            analysis=analysis,
            postgres=postgres,
            restructure=restructure,
            vibe=vibe,
            serve=serve,
            soak=soak,
        ),
        args.case,
        args.mode,
    )
    if not cases:
        print(f"{prog}: error: no case matches {args.case} {args.mode}", file=sys.stderr)
        return 2
    if args.list:
        for case in cases:
            print(case.id, json.dumps(case.params))
        return 0

    def progress(line: str) -> None:
        if not args.quiet:
            print(line, file=sys.stderr, flush=True)

    env = report.environment()
    started = _dt.datetime.now().astimezone()
    t0 = time.perf_counter()
    progress(f"{prog}: {len(cases)} cases x {repeat} repeat(s), each in a fresh process")
    results = run_cases(cases, repeat, scale.timeout, progress)
    doc = report.build_document(
        env,
        results,
        scale,
        argv=[prog, *argv],
        quick=args.quick,
        repeat=repeat,
        started=started,
        wall_s=time.perf_counter() - t0,
    )
    path = report.write_document(doc, args.out)
    _print(doc, args)
    if not args.json:
        print(f"JSON document: {path}", flush=True)
    progress(f"{prog}: wrote {path} in {doc['wall_s']:.1f} s")
    return 0 if doc["ok"] else 1


def _print(doc: dict[str, Any], args: argparse.Namespace) -> None:
    from perf import report

    if args.json:
        print(json.dumps(doc, indent=2))
    elif args.markdown:
        print(report.markdown(doc))
    else:
        from rich.console import Console

        console = Console(file=sys.stdout, width=None if sys.stdout.isatty() else 140)
        report.print_tables(doc, console)
        sys.stdout.flush()
