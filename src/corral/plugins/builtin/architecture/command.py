"""``corral analyze``: the architecture plugin's command.

Runs the ``architecture.analyze`` workflow (:func:`analysis_workflow`) with
live progress, prints or writes the report (text, JSON, markdown, HTML) and
exits 1 when a ``--fail-on`` condition holds. ``--suggest-moves`` adds a
step run by the ``restructure.suggest`` handler, named and never imported:
the plugins stay independent of each other.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgspec

from corral.core.errors import UsageError
from corral.core.model import ExecutionRecord
from corral.plugins.commands import EXIT_FAILED, EXIT_OK, Command, Terminal

__all__ = ["Analyze", "failed_conditions", "parse_fail_on"]

_FAIL_ON = re.compile(r"^\s*(cycles|violations|score\s*<\s*(\d+))\s*$")


def parse_fail_on(conditions: Sequence[str], where: str = "--fail-on") -> list[tuple[str, int]]:
    """``cycles``, ``violations``, ``score<N`` (comma-separated or repeated)."""
    parsed: list[tuple[str, int]] = []
    for text in conditions:
        for part in text.split(","):
            match = _FAIL_ON.match(part)
            if match is None or (match.group(2) and int(match.group(2)) > 100):
                raise UsageError(
                    f"{where} {part.strip()!r}: expected cycles, violations or score<N "
                    "(N from 0 to 100)"
                )
            kind = "score" if match.group(2) else match.group(1)
            parsed.append((kind, int(match.group(2) or 0)))
    return parsed


def failed_conditions(report: dict[str, Any], conditions: list[tuple[str, int]]) -> list[str]:
    """What makes ``--fail-on`` hold, one message each (empty: nothing)."""
    s = report["summary"]
    messages = []
    for kind, limit in conditions:
        if kind == "cycles" and s["module_cycles"] + s["package_cycles"]:
            messages.append(
                f"{s['module_cycles']} module cycle(s), {s['package_cycles']} package cycle(s)"
            )
        elif kind == "violations" and (s["violations"] or s.get("broken_contracts")):
            messages.append(
                f"{s['violations']} layer contract violation(s), "
                f"{s.get('broken_contracts', 0)} broken contract(s)"
            )
        elif kind == "score" and s["score"] < limit:
            messages.append(f"score {s['score']} < {limit}")
    return messages


class Analyze(Command):
    name = "analyze"
    help = "architecture report of a Python codebase"
    description = (
        "Analyse the architecture of the Python code under PATH (nothing is "
        "imported or run): import graph, coupling metrics, cycles, layers, a 0-100 score "
        "and recommendations. See docs/analysis.md."
    )

    def configure(self, parser: argparse.ArgumentParser, terminal: Terminal) -> None:
        parser.add_argument("path", help="directory to analyse")
        parser.add_argument(
            "--format",
            choices=["text", "json", "markdown", "html"],
            help="report format (default: from --out's extension; else text on a terminal, "
            "json otherwise)",
        )
        parser.add_argument("--out", metavar="FILE", help="write the report here instead of stdout")
        parser.add_argument(
            "--exclude", action="append", default=[], metavar="GLOB", help="skip matching paths"
        )
        parser.add_argument(
            "--exclude-tests", action="store_true", help="skip tests and conftest files"
        )
        parser.add_argument(
            "--exclude-type-checking",
            action="store_true",
            help="ignore imports under `if TYPE_CHECKING:`",
        )
        parser.add_argument(
            "--fail-on",
            action="append",
            default=[],
            metavar="COND",
            help="exit 1 when COND holds: cycles, violations or score<N (repeatable)",
        )
        parser.add_argument(
            "--no-cache", action="store_true", help="recompute everything (ignore cached results)"
        )
        parser.add_argument(
            "--suggest-moves",
            metavar="FILE",
            help="also write moves that break package cycles and resolve layer violations as a "
            "plan for `corral restructure --plan FILE`",
        )
        terminal.add_progress_option(parser)
        terminal.add_store_option(parser)

    def run(self, args: argparse.Namespace, terminal: Terminal) -> int:
        from corral.plugins.builtin.architecture import (
            analysis_workflow,
            builds_graph,
            project_settings,
        )
        from corral.plugins.builtin.architecture.isolation import prestart
        from corral.plugins.builtin.architecture.projects import find_projects
        from corral.plugins.builtin.architecture.report import summary_text

        conditions = parse_fail_on(args.fail_on)
        fmt = terminal.output_format(args)
        path = Path(args.path)
        if not path.exists():
            raise UsageError(f"{args.path}: no such directory")
        if not path.is_dir():
            raise UsageError(f"{args.path}: not a directory (give the folder that holds the code)")
        terminal.check_out(args.out)  # a bad destination is a usage error before any work
        projects = find_projects(path, exclude=args.exclude, exclude_tests=args.exclude_tests)
        root = path.resolve()
        if any(builds_graph(root, p, cache=not args.no_cache) for p in projects):
            # The graph's process starts now, its start-up beside the
            # engine's opening and the walk (the scan step takes it).
            prestart("imports")
        root_project = {"name": path.name, "path": ".", "config_file": "pyproject.toml"}
        listed = [p for p in projects if p["path"] != "."]
        # Configuration errors are usage errors: every project's table is checked
        # now, the root's too (even when it holds no package itself, as in a monorepo).
        for project in [root_project, *listed]:
            options, _ = project_settings(path, project, {})
            if project is root_project and not conditions:
                conditions = parse_fail_on(
                    options.fail_on, "pyproject.toml: tool.corral.architecture.fail_on"
                )
        wf = analysis_workflow(
            path,
            exclude=args.exclude,
            exclude_tests=args.exclude_tests,
            exclude_type_checking=args.exclude_type_checking,
            cache=not args.no_cache,
            projects=projects,
        )
        # One workflow of a few long steps over a large, acyclic data set:
        # the cycle collector is paused while it runs (a sixth of a cold run
        # on 1,500 modules otherwise). Nothing to record step by step.
        outcome = terminal.run_workflow(wf, args, durability="none", result=True, pause_gc=True)
        if isinstance(outcome, ExecutionRecord):
            terminal.print_summary(outcome)
            return EXIT_FAILED
        report = outcome["report"]
        if fmt == "json":
            text = msgspec.json.format(msgspec.json.encode(report), indent=2).decode() + "\n"
        elif fmt == "markdown":  # the renderers are imported only when asked for
            from corral.plugins.builtin.architecture.render import render_markdown

            text = render_markdown(report)
        elif fmt == "html":
            from corral.plugins.builtin.architecture.render import render_html

            text = render_html(report)
        else:
            text = summary_text(report)
        terminal.write(text, args.out, f"score {report['summary']['score']}/100")
        if args.suggest_moves:
            _suggest_moves(terminal, args)
        failures = failed_conditions(report, conditions)
        for message in failures:
            print(f"corral: --fail-on: {message}", file=sys.stderr)
        return EXIT_FAILED if failures else EXIT_OK


def _suggest_moves(terminal: Terminal, args: argparse.Namespace) -> None:
    """Write the moves that break package cycles and resolve layer violations
    as a plan file (the ``restructure.suggest`` handler finds them)."""
    from corral.workflow.builder import Workflow

    out, path = args.suggest_moves, args.path
    wf = Workflow("architecture.suggest-moves")
    wf.step("suggest", "restructure.suggest", root=str(Path(path).resolve()))
    quiet = argparse.Namespace(store=args.store, progress="never")
    outcome = terminal.run_workflow(wf, quiet, durability="none", result=True)
    if isinstance(outcome, ExecutionRecord):
        terminal.print_summary(outcome)
        raise UsageError(f"--suggest-moves {out}: the moves could not be found")
    proposed = outcome["suggest"]
    try:
        Path(out).write_text(proposed["plan"], encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"--suggest-moves {out}: {exc.strerror or exc}") from None
    moves = proposed["moves"]
    print(
        f"{len(moves)} suggested move(s) written to {out}"
        + (
            ""
            if moves
            else " (no move breaks a package cycle or resolves a layer violation "
            "without creating another)"
        )
        + (f"; try: corral restructure {path} --plan {out}" if moves else ""),
        file=sys.stderr,
    )
