"""``corral vibe``: the vibe plugin's command.

Runs every analysis of a codebase in parallel (the ``vibe`` workflow),
ranks what they found into one plan with a health score, and with
``--fix`` applies the safe fixes (and with ``--fix=moves`` the moves that
``corral restructure`` plans, through :func:`run_restructure`), each
validated on its own branch or rolled back.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from corral.core.errors import UsageError
from corral.core.model import ExecutionRecord
from corral.core.status import SUCCEEDED
from corral.plugins.builtin.restructure.command import run_restructure
from corral.plugins.commands import EXIT_FAILED, EXIT_OK, Command, Terminal

__all__ = ["Vibe"]


class Vibe(Command):
    name = "vibe"
    help = "every analysis of a codebase in parallel, one ranked plan and a health score"
    description = (
        "Run every analysis of the Python code under PATH in parallel, one "
        "workflow step per analysis per subproject (architecture, ruff, radon, bandit, "
        "deptry, vulture, tests), and rank what they found into one plan with a 0-100 "
        "health score. An analyser that is missing or fails is reported; the others "
        "finish. See docs/vibe.md."
    )

    def configure(self, parser: argparse.ArgumentParser, terminal: Terminal) -> None:
        parser.add_argument("path", help="the codebase's directory")
        parser.add_argument(
            "--only",
            metavar="KIND,...",
            action="append",
            default=[],
            help="only these analyses: architecture, lint, complexity, security, dependencies, "
            "deadcode, tests (comma-separated or repeated)",
        )
        parser.add_argument(
            "--test-command",
            metavar="CMD",
            help="a shell command that runs the tests (in each subproject); its result and "
            "duration are part of the report",
        )
        parser.add_argument(
            "--format",
            choices=["text", "json", "markdown", "html"],
            default=None,
            help="report format (default: from --out's extension, else text on a "
            "terminal and json otherwise)",
        )
        parser.add_argument("--out", metavar="FILE", help="write the report here instead of stdout")
        parser.add_argument(
            "--fail-on",
            metavar="COND",
            action="append",
            default=[],
            help="exit 1 when COND holds: score<N, high, incomplete, or an analysis's name "
            "(any finding of it); repeatable",
        )
        parser.add_argument(
            "--no-cache",
            action="store_true",
            help="recompute every analysis (ignore cached results)",
        )
        parser.add_argument(
            "--fix",
            nargs="?",
            const="safe",
            choices=["safe", "moves"],
            help="apply ruff's safe fixes (unused imports among them) on a new branch, validate "
            "(compiles, no analysis worse, --test-command passes) and keep, or roll back; "
            "--fix=moves also applies the moves corral restructure plans for package cycles and "
            "layer violations, validated the same way",
        )
        parser.add_argument(
            "--allow-dirty",
            action="store_true",
            help="--fix in a git work tree with uncommitted changes",
        )
        terminal.add_progress_option(parser)
        terminal.add_store_option(parser)

    def run(self, args: argparse.Namespace, terminal: Terminal) -> int:
        from corral.plugins.builtin.vibe.discover import discover
        from corral.plugins.builtin.vibe.handlers import ANALYSES, vibe_workflow
        from corral.plugins.builtin.vibe.plan import failed_conditions, parse_fail_on
        from corral.plugins.builtin.vibe.report import render

        only = [k.strip() for text in args.only for k in text.split(",") if k.strip()]
        unknown = [k for k in only if k not in ANALYSES]
        if unknown:
            raise UsageError(f"--only {unknown[0]!r}: expected one of {', '.join(ANALYSES)}")
        try:
            conditions = parse_fail_on(args.fail_on)
        except ValueError as exc:
            raise UsageError(f"--fail-on {exc}") from None
        fmt = terminal.output_format(args)
        path = Path(args.path)
        if not path.is_dir():
            raise UsageError(f"{args.path}: no such directory")
        terminal.check_out(args.out)
        found = discover(path)
        if not found["python"]:
            raise UsageError(
                f"{args.path}: no Python package found (a package is a folder with an __init__.py)"
            )
        wf = vibe_workflow(
            found, only=only or None, test_command=args.test_command, cache=not args.no_cache
        )
        done = _vibe_plan(wf, terminal, args)
        if done is None:
            return EXIT_FAILED
        plan, sections = done
        fixed_ok = True
        if args.fix:
            fixed_ok = _vibe_fixes(args, terminal, plan, found, only)
        if fmt == "html":
            from corral.plugins.builtin.vibe.report_html import render_html

            text = render_html(plan, sections)
        else:
            text = render(plan, fmt)
        terminal.write(text, args.out, f"score {plan['score']['value']}/100")
        failures = failed_conditions(plan, conditions)
        for message in failures:
            print(f"corral: --fail-on: {message}", file=sys.stderr)
        return EXIT_FAILED if failures or not fixed_ok else EXIT_OK


def _vibe_plan(
    wf: Any, terminal: Terminal, args: argparse.Namespace
) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
    """Run the ``vibe`` workflow: its plan, each analysis without a result
    given the reason from its step's record, and the architecture sections
    (for the HTML report's graphs); ``None``: no plan at all."""
    record: ExecutionRecord = terminal.run_workflow(wf, args)
    steps = {s.step_id: s for s in record.steps}
    plan_step = steps.get("plan")
    if plan_step is None or plan_step.status != SUCCEEDED or plan_step.output is None:
        terminal.print_summary(record)
        return None
    plan: dict[str, Any] = plan_step.output
    for analysis in plan["analyses"]:  # why a step gave no result: its record says
        if analysis["status"] != "ok":
            step = steps.get(analysis["step"])
            if step is not None and step.error is not None:
                analysis["error"] = step.error.message
            elif step is not None:
                analysis["error"] = f"the step was {step.status}"
    sections = [
        steps[a["step"]].output
        for a in plan["analyses"]
        if a["analysis"] == "architecture" and a["status"] == "ok"
    ]
    return plan, sections


def _vibe_fixes(
    args: argparse.Namespace,
    terminal: Terminal,
    plan: dict[str, Any],
    found: dict[str, Any],
    only: list[str],
) -> bool:
    """``--fix``: the safe fixes, then with ``--fix=moves`` the moves, each
    validated on its branch; the analyses again when anything was kept.
    What happened goes into ``plan["fix"]``; False when something was
    rolled back."""
    from corral.plugins.builtin.vibe.fix import fix_workflow
    from corral.plugins.builtin.vibe.handlers import vibe_workflow

    path = Path(args.path)
    fixing = fix_workflow(
        str(path.resolve()), plan, test_command=args.test_command, allow_dirty=args.allow_dirty
    )
    if fixing is None:
        plan["fix"] = {"applied": False, "note": "nothing ruff can fix safely"}
    else:
        plan["fix"] = _vibe_fix(fixing, terminal, args, path)
    ok = fixing is None or bool(plan["fix"]["applied"])
    if ok and args.fix == "moves":
        plan["fix"]["moves"] = _vibe_moves(args, terminal, plan)
        ok = all(m["applied"] for m in plan["fix"]["moves"])
    kept = plan["fix"]["applied"] or any(m["applied"] for m in plan["fix"].get("moves", []))
    if kept:  # the analyses again (the unchanged subprojects from the cache)
        wf = vibe_workflow(
            found, only=only or None, test_command=args.test_command, cache=not args.no_cache
        )
        again = _vibe_plan(wf, terminal, args)
        if again is not None:
            plan["fix"]["after"] = {k: again[0][k] for k in ("score", "summary", "analyses")}
    return ok


def _vibe_moves(
    args: argparse.Namespace, terminal: Terminal, plan: dict[str, Any]
) -> list[dict[str, Any]]:
    """``--fix=moves``: in each subproject whose architecture was analysed,
    the moves that break package cycles and resolve layer violations
    (``corral analyze --suggest-moves``), applied by the restructure
    workflow (validated, or rolled back)."""
    from corral.plugins.builtin.restructure.architecture import analysis
    from corral.plugins.builtin.restructure.suggest import suggest_moves

    root = Path(args.path).resolve()
    done: list[dict[str, Any]] = []
    for a in plan["analyses"]:
        if a["analysis"] != "architecture" or a["status"] != "ok":
            continue
        folder = root / a["subproject"]
        now = analysis(folder)
        moves = suggest_moves(now, now.kinds)
        if not moves:
            continue
        entry: dict[str, Any] = {"subproject": a["subproject"], "moves": [str(m) for m in moves]}
        result = run_restructure(
            str(folder),
            moves,
            apply=True,
            test_command=args.test_command,
            keep_shims=False,
            allow_dirty=args.allow_dirty,
            terminal=terminal,
            args=args,
        )
        if result is None:
            entry.update(applied=False, rolled_back="the restructure workflow failed")
        else:
            applied = result[1]
            entry.update(
                applied=applied.ok,
                branch=applied.branch,
                commit=applied.commit,
                rolled_back=applied.rolled_back,
                checks=applied.validation,
                execution=result[2].id,
            )
        done.append(entry)
    return done


def _vibe_fix(wf: Any, terminal: Terminal, args: argparse.Namespace, path: Path) -> dict[str, Any]:
    """Run the ``vibe.fix`` workflow: what it did, or why it was rolled back."""
    from corral.plugins.builtin.restructure.apply import failures, recover

    try:
        record: ExecutionRecord = terminal.run_workflow(wf, args)
    except BaseException:
        if recover(path):  # Ctrl-C: the tree as it was
            print("corral vibe: stopped: the fixes were rolled back", file=sys.stderr)
        raise
    steps = {s.step_id: s for s in record.steps}
    error = record.error
    out: dict[str, Any] = {"execution": record.id, "applied": record.status == SUCCEEDED}
    checked = steps["validate"].output if "validate" in steps else None
    if checked is not None:
        out.update(
            checks=checked["checks"],
            diff=checked["diff"],
            fixable_after=checked["after"]["fixable"],
        )
    if record.status == SUCCEEDED:
        out.update(
            branch=record.result["finish"]["branch"], commit=record.result["finish"]["commit"]
        )
        written = steps["fix_write"].output
        out["files_changed"] = written["files_changed"] if written else None
        return out
    recover(path, owner=record.id)  # (this run's journal only)
    if error is not None and error.type in ("RestructureError", "UsageError"):
        raise UsageError(f"--fix: {error.message}")  # refused: nothing was written
    if error is not None and error.type == "RestructureRolledBack" and checked is not None:
        out["rolled_back"] = failures(checked["checks"])
    else:
        out["rolled_back"] = f"{error.type}: {error.message}" if error else record.status
    return out
