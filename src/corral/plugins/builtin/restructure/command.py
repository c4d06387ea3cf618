"""``corral restructure``: the restructure plugin's command.

Reads the moves (``--move OLD=NEW`` or a ``--plan`` file), runs the
``restructure`` workflow (a dry run: the plan; ``--apply``: plan, snapshot,
write, validate, finish, recorded step by step) with live progress, and
prints the plan and what applying did. :func:`run_restructure` is the same
for other commands (``corral vibe --fix=moves``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from corral.core.errors import UsageError
from corral.core.model import ExecutionRecord
from corral.core.status import SUCCEEDED
from corral.plugins.builtin.restructure.errors import RestructureError
from corral.plugins.commands import EXIT_FAILED, EXIT_OK, Command, Terminal

__all__ = ["Restructure", "run_restructure"]


class Restructure(Command):
    name = "restructure"
    help = "move modules and packages and rewrite every import of them"
    description = (
        "Move modules and packages of the Python project under PATH to new "
        "places and rewrite every reference to them (imports of every form, relative "
        "imports, strings, docstrings, comments, entry points). Without --apply it "
        "prints the moves, every file it would touch and a unified diff, and writes "
        "nothing; with --apply it carries the plan out as a workflow (plan, snapshot, "
        "write, validate, finish), validates it and rolls everything back on failure. "
        "See docs/restructure.md."
    )

    def configure(self, parser: argparse.ArgumentParser, terminal: Terminal) -> None:
        parser.add_argument("path", help="the project's directory")
        parser.add_argument(
            "--move",
            action="append",
            default=[],
            metavar="OLD=NEW",
            help="a dotted module or package and where it goes, e.g. pkg.util=pkg.lib.util "
            "(repeatable)",
        )
        parser.add_argument(
            "--plan", metavar="FILE", help='a TOML plan: [[move]] from = "..." to = "..."'
        )
        parser.add_argument(
            "--apply",
            action="store_true",
            help="carry the plan out, validate it, and roll everything back if validation fails "
            "(without it nothing is written)",
        )
        parser.add_argument(
            "--test-command",
            metavar="CMD",
            help="a shell command that must pass on the result (run in PATH), e.g. 'pytest -q'",
        )
        parser.add_argument(
            "--allow-dirty",
            action="store_true",
            help="apply in a git work tree that has uncommitted changes",
        )
        parser.add_argument(
            "--keep-shims",
            action="store_true",
            help="leave a module at each old path that re-exports the new one and warns "
            "(DeprecationWarning) on import",
        )
        parser.add_argument("--format", choices=["text", "json", "markdown"], default="text")
        parser.add_argument("--out", metavar="FILE", help="write the plan here instead of stdout")
        terminal.add_progress_option(parser)
        terminal.add_store_option(parser)

    def run(self, args: argparse.Namespace, terminal: Terminal) -> int:
        from corral.plugins.builtin.restructure.moves import parse_move, parse_plan
        from corral.plugins.builtin.restructure.render import render

        if args.plan and args.move:
            raise UsageError("give either --move OLD=NEW ... or --plan FILE, not both")
        if args.plan:
            try:
                text = Path(args.plan).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise UsageError(
                    f"--plan {args.plan}: {getattr(exc, 'strerror', None) or exc}"
                ) from None
            moves, planned_command = parse_plan(text, args.plan)
        else:
            moves, planned_command = [parse_move(m) for m in args.move], None
        test_command = args.test_command or planned_command
        if not Path(args.path).is_dir():
            raise UsageError(f"{args.path}: no such directory")
        terminal.check_out(args.out)

        done = run_restructure(
            args.path,
            moves,
            apply=args.apply,
            test_command=test_command,
            keep_shims=args.keep_shims,
            allow_dirty=args.allow_dirty,
            terminal=terminal,
            args=args,
        )
        if done is None:
            return EXIT_FAILED
        plan, applied, record = done
        text = render(plan, args.format, applied)
        terminal.write(text, args.out)
        if args.apply:
            print(
                f"corral restructure: execution {record.id} (corral show {record.id})",
                file=sys.stderr,
            )
        return EXIT_OK if applied is None or applied.ok else EXIT_FAILED


def run_restructure(
    path: str,
    moves: list[Any],
    *,
    apply: bool,
    test_command: str | None,
    keep_shims: bool,
    allow_dirty: bool,
    terminal: Terminal,
    args: argparse.Namespace,
) -> tuple[Any, Any, ExecutionRecord] | None:
    """Run the ``restructure`` workflow on ``args.store`` with progress as
    ``args.progress`` asks: (the plan, what applying did or ``None`` for a
    dry run, the execution); ``None`` when it failed outside validation (the
    summary printed, this run's changes rolled back). Raises
    :class:`RestructureError` when the plan or the tree is refused. ``corral
    vibe --fix=moves`` applies its moves through it too."""
    from corral.plugins.builtin.restructure.apply import Applied, failures, recover
    from corral.plugins.builtin.restructure.handlers import restructure_workflow
    from corral.plugins.builtin.restructure.project import ProjectPlan

    def say(line: str) -> None:
        print(f"corral restructure: {line}", file=sys.stderr)

    if apply:
        recovered = recover(path)
        if recovered:
            say(recovered)
    wf = restructure_workflow(
        path,
        moves,
        apply=apply,
        test_command=test_command,
        keep_shims=keep_shims,
        allow_dirty=allow_dirty,
    )
    # Applying is recorded step by step (corral show ID); a dry run writes nothing.
    durability = "step" if apply else "none"
    try:
        record: ExecutionRecord = terminal.run_workflow(wf, args, durability=durability)
    except BaseException:
        # Ctrl-C: the tree as it was (the journal is this run's: the one
        # found at the start was rolled back then, and a new one would have
        # made this run's snapshot step fail)
        if apply and recover(path):
            say("stopped: everything was rolled back")
        raise
    error = record.error
    steps = {s.step_id: s for s in record.steps}
    rolled_back_by_finish = error is not None and error.type == "RestructureRolledBack"
    if record.status != SUCCEEDED and not rolled_back_by_finish:
        # only this execution's journal: another run's stays (it may be running)
        rolled_back = recover(path, owner=record.id) if apply else None
        if error is not None and error.type in ("RestructureError", "UsageError"):
            raise RestructureError(error.message)  # refused: nothing was written
        terminal.print_summary(record)  # (a failed one goes to stderr)
        if rolled_back:
            say(f"everything was rolled back (execution {record.id})")
        return None
    if rolled_back_by_finish:  # validation failed: the report from the recorded steps
        plan_data, checked = steps["plan"].output, steps["validate"].output
        reason = failures(checked["checks"])
        finished: dict[str, Any] = {"ok": False, "branch": None, "commit": None}
        finished["rolled_back"] = reason
    else:
        plan_data = record.result["plan"]
        if apply:
            checked, finished = record.result["validation"], record.result["finish"]
    plan = ProjectPlan.from_data(plan_data)
    applied = None
    if apply:
        applied = Applied(
            ok=finished["ok"],
            validation=checked["checks"],
            branch=finished["branch"],
            commit=finished["commit"],
            rolled_back=finished["rolled_back"],
            architecture=checked["architecture"],
        )
    return plan, applied, record
