"""``corral restructure`` as a corral workflow: plan → snapshot → write →
validate → finish (commit, or roll back).

Each phase of :mod:`.apply` is one step, so a restructuring gets what every
workflow gets: progress, cancellation, a durable record of each step
(``corral show ID``), and one error path. The plan travels between steps as
data (:meth:`.ProjectPlan.to_data`). The modules that do the work (libcst
among them, ~0.2 s to import) are imported when a step runs, not when an
engine registers these handlers.

What makes it safe across processes is the journal, not the store: the
snapshot step writes it (every byte the plan will touch) and names the
execution that owns it; the steps that change the tree refuse unless the
journal is their execution's. So a run that a later one rolled back (after a
crash, ``corral restructure --apply`` rolls back whatever journal it finds)
can never change the tree again, even if an engine takes its execution over.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
import trio

from corral.plugins import Handler, StepContext
from corral.plugins.builtin.restructure.errors import RestructureError, RestructureRolledBack
from corral.plugins.builtin.restructure.moves import Move

if TYPE_CHECKING:
    from corral.plugins.builtin.restructure.project import ProjectPlan

__all__ = ["restructure_workflow", "run_tests"]

VERSION = "1"

_Data = dict[str, Any]


def _plan(data: _Data) -> ProjectPlan:
    from corral.plugins.builtin.restructure.project import ProjectPlan

    return ProjectPlan.from_data(data)


class PlanStep(Handler):
    """Everything the moves change: files moved, every file rewritten (in
    parallel, one process per core), warnings, the architecture predicted."""

    internal = True

    name = "restructure.plan"
    version = VERSION
    kind = "blocking"

    class Params(msgspec.Struct, forbid_unknown_fields=True):
        root: str
        moves: list[tuple[str, str]]

    def run(self, ctx: StepContext, params: Params) -> _Data:  # type: ignore[override]
        from corral.plugins.builtin.restructure.project import plan_project

        ctx.progress(0, None, "planning: reading the project")
        plan = plan_project(params.root, [Move(old, new) for old, new in params.moves])
        ctx.progress(1, 1, f"planned: {len(plan.changes)} file(s) to change")
        return plan.to_data()


class Snapshot(Handler):
    """Refuse a tree that must not be changed; save every byte the plan
    touches (the journal, owned by this execution); in git, a new branch."""

    internal = True

    name = "restructure.snapshot"
    version = VERSION
    kind = "blocking"

    class Params(msgspec.Struct, forbid_unknown_fields=True):
        plan: _Data
        allow_dirty: bool = False
        branch: str = "corral/restructure"  # the new branch's name, before its time

    def run(self, ctx: StepContext, params: Params) -> _Data:  # type: ignore[override]
        from corral.plugins.builtin.restructure.apply import begin

        plan = _plan(params.plan)
        begin(plan, allow_dirty=params.allow_dirty, owner=ctx.execution_id, branch=params.branch)
        return {"saved": len(plan.changes) + len(plan.data_moves)}


class Write(Handler):
    """Move the files (``git mv`` in git), write the rewritten ones, the new
    packages and the shims."""

    internal = True

    name = "restructure.write"
    version = VERSION
    kind = "blocking"

    class Params(msgspec.Struct, forbid_unknown_fields=True):
        plan: _Data
        keep_shims: bool = False

    def run(self, ctx: StepContext, params: Params) -> _Data:  # type: ignore[override]
        from corral.plugins.builtin.restructure.apply import carry_out, sort_imports

        plan = _plan(params.plan)
        moved = carry_out(plan, keep_shims=params.keep_shims, owner=ctx.execution_id)
        written = sum(c.rewritten for c in plan.changes)
        ctx.progress(1, 1, f"{moved} file(s) moved, {written} rewritten")
        return {"moved": moved, "written": written, "imports_sorted": sort_imports(plan)}


class Validate(Handler):
    """Every touched file compiles; the import graph is the one the plan
    predicts; the test command passes. A failed check is data (the finish
    step rolls back), not a failed step."""

    internal = True

    name = "restructure.validate"
    version = VERSION
    kind = "async"

    class Params(msgspec.Struct, forbid_unknown_fields=True):
        plan: _Data
        test_command: str | None = None
        keep_shims: bool = False

    async def run(self, ctx: StepContext, params: Params) -> _Data:
        from corral.plugins.builtin.restructure.apply import test_check, test_env, validate

        plan = _plan(params.plan)
        ctx.progress(0, None, "validating: compiling, analysing the result")
        checks, architecture = await trio.to_thread.run_sync(
            lambda: validate(plan, keep_shims=params.keep_shims)
        )
        if params.test_command:
            ctx.progress(0, None, f"validating: {params.test_command}")
            code, output = await run_tests(params.test_command, plan.root, test_env(plan))
            checks.append(test_check(params.test_command, code, output))
        return {
            "ok": all(c["ok"] for c in checks),
            "checks": checks,
            "architecture": architecture,
        }


async def run_tests(command: str, cwd: Path, env: dict[str, str]) -> tuple[int, str]:
    """The test command in its own process group, killed whole (the shell
    and what it started) when the step is cancelled."""

    async def kill_group(process: trio.Process) -> None:
        with contextlib.suppress(ProcessLookupError):  # (it ended meanwhile)
            os.killpg(process.pid, signal.SIGKILL)

    done = await trio.run_process(
        command,
        shell=True,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_stdout=True,
        stderr=subprocess.STDOUT,
        check=False,
        start_new_session=True,
        deliver_cancel=kill_group,
    )
    return done.returncode, done.stdout.decode("utf-8", "replace")


class Finish(Handler):
    """Keep a validated result (committed on the new branch, in git) or put
    every byte back and fail (:class:`~corral.core.errors.RestructureRolledBack`):
    a rolled-back restructuring is a failed execution."""

    internal = True

    name = "restructure.finish"
    version = VERSION
    kind = "blocking"

    class Params(msgspec.Struct, forbid_unknown_fields=True):
        plan: _Data
        checks: list[_Data]
        message: str | None = None  # the commit's (by default, the moves)

    def run(self, ctx: StepContext, params: Params) -> _Data:  # type: ignore[override]
        from corral.plugins.builtin.restructure.apply import finish

        plan = _plan(params.plan)
        branch, commit, rolled_back = finish(
            plan, params.checks, owner=ctx.execution_id, message=params.message
        )
        if rolled_back is not None:  # the execution fails: nothing of it was kept
            raise RestructureRolledBack(
                f"validation failed, everything was rolled back: {rolled_back}"
            )
        return {"ok": True, "branch": branch, "commit": commit, "rolled_back": None}


def restructure_workflow(
    root: str | os.PathLike[str],
    moves: list[Move],
    *,
    apply: bool = False,
    test_command: str | None = None,
    keep_shims: bool = False,
    allow_dirty: bool = False,
) -> Any:
    """The ``restructure.plan`` workflow (only the plan), or with ``apply``
    the ``restructure.apply`` one (a ``corral.Workflow``). Its result holds
    the plan (``plan``), and when applied the outputs of the validate and
    finish steps (``validation``, ``finish``)."""
    from corral.workflow.builder import Workflow  # (the builder alone: not corral's __init__)

    top = Path(root)
    if not top.is_dir():
        raise RestructureError(f"{root}: not a directory")
    wf = Workflow("restructure.apply" if apply else "restructure.plan")
    plan = wf.step(
        "plan",
        "restructure.plan",
        root=str(top.resolve()),
        moves=[[m.old, m.new] for m in moves],
    )
    if not apply:
        wf.output({"plan": plan.output})
        return wf
    snapshot = wf.step(
        "snapshot", "restructure.snapshot", needs=[plan], plan=plan.output, allow_dirty=allow_dirty
    )
    write = wf.step(
        "write", "restructure.write", needs=[snapshot], plan=plan.output, keep_shims=keep_shims
    )
    check = wf.step(
        "validate",
        "restructure.validate",
        needs=[write],
        plan=plan.output,
        test_command=test_command,
        keep_shims=keep_shims,
    )
    done = wf.step(
        "finish", "restructure.finish", needs=[check], plan=plan.output, checks=check.output.checks
    )
    wf.output({"plan": plan.output, "validation": check.output, "finish": done.output})
    return wf


class Suggest(Handler):
    """The moves that break the package cycles and resolve the layer
    violations of the project under ``root``, and the plan file that holds
    them (``corral analyze --suggest-moves``: the architecture plugin asks
    for them by this handler's name, without importing this plugin)."""

    name = "restructure.suggest"
    version = VERSION
    kind = "blocking"

    class Params(msgspec.Struct, forbid_unknown_fields=True):
        root: str

    def run(self, ctx: StepContext, params: Params) -> _Data:  # type: ignore[override]
        from corral.plugins.builtin.restructure.architecture import analysis
        from corral.plugins.builtin.restructure.suggest import suggestion

        now = analysis(Path(params.root).resolve())
        proposed = suggestion(now, now.kinds)
        return {"moves": [str(m) for m in proposed["moves"]], "plan": proposed["plan"]}
