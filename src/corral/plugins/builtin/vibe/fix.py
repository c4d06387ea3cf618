"""``corral vibe --fix``: only fixes that are safe by construction, applied
on a branch, validated, kept or rolled back.

The fixes are ruff's *safe* fixes (``ruff check --fix`` without unsafe
fixes), with unused imports (``F401``) always among the rules, under each
subproject's own lint configuration. They run as a second workflow,
``vibe.fix``, on the machinery of ``corral restructure``:

``fix_plan`` (the files with fixable findings, their bytes today) →
``restructure.snapshot`` (the journal, a ``corral/vibe-fix-<time>`` branch)
→ ``fix_write`` (ruff fixes those files in place) → ``fix_validate`` (every
file compiles; the analyses run again and no analysis has more findings, or
more high-severity ones, than before; the test command passes) →
``restructure.finish`` (commit, or every byte back and the execution
failed).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import trio

from corral.plugins import Handler, StepContext
from corral.plugins.builtin.vibe import tools

__all__ = ["FixPlan", "FixValidate", "FixWrite", "fix_workflow", "fixable_files"]

VERSION = "1"

_Data = dict[str, Any]

#: The analyses run again to validate the fixes (the architecture's imports
#: are not what a safe fix changes beyond unused imports, which no check of
#: the architecture counts against).
RECHECKED = ("lint", "complexity", "security", "dependencies", "deadcode")


def fixable_files(plan: dict[str, Any]) -> dict[str, list[str]]:
    """Subproject -> its files (relative to it) with findings ruff can fix safely."""
    out: dict[str, set[str]] = {}
    for f in plan["findings"]:
        if f.get("fixable") and "ruff" in f["tools"]:
            project = f.get("subproject", ".")
            prefix = "" if project == "." else project + "/"
            out.setdefault(project, set()).add(f["file"].removeprefix(prefix))
    return {p: sorted(files) for p, files in sorted(out.items())}


class FixPlan(Handler):
    """The files the fixes touch and their bytes today, as a plan that
    ``restructure.snapshot`` can journal."""

    internal = True

    name = "vibe.fix_plan"
    version = VERSION
    kind = "blocking"

    class Params(msgspec.Struct, forbid_unknown_fields=True):
        root: str
        files: dict[str, list[str]]

    def run(self, ctx: StepContext, params: Params) -> _Data:  # type: ignore[override]
        from collections import Counter

        from corral.plugins.builtin.restructure.moves import Renames
        from corral.plugins.builtin.restructure.project import FileChange, ProjectPlan

        root = Path(params.root)
        changes = []
        for project, files in params.files.items():
            for rel in files:
                path = rel if project == "." else f"{project}/{rel}"
                text = (root / path).read_bytes().decode("utf-8")
                changes.append(FileChange(path, path, text, text, Counter()))
        plan = ProjectPlan(root, [], Renames([], {}), changes, [], [], [])
        return plan.to_data()


class FixWrite(Handler):
    """ruff's safe fixes, in place, on the journaled files only."""

    internal = True

    name = "vibe.fix_write"
    version = VERSION
    kind = "blocking"

    class Params(msgspec.Struct, forbid_unknown_fields=True):
        root: str
        files: dict[str, list[str]]

    def run(self, ctx: StepContext, params: Params) -> _Data:  # type: ignore[override]
        from corral.plugins.builtin.restructure.apply import owned
        from corral.plugins.builtin.vibe.handlers import ruff_rules

        root = Path(params.root)
        owned(root, ctx.execution_id)  # this execution's snapshot, or nothing is written
        changed = 0
        for project, files in params.files.items():
            folder = root / project
            args = ["check", "--fix", "--exit-zero", "--no-cache", "--quiet"]
            args += [*ruff_rules(folder), "--extend-select", "F401"]
            before = {rel: (folder / rel).read_bytes() for rel in files}
            tools.run_tool("ruff", [*args, *files], folder)
            changed += sum((folder / rel).read_bytes() != data for rel, data in before.items())
        ctx.progress(1, 1, f"{changed} file(s) fixed")
        return {"files_changed": changed}


class FixValidate(Handler):
    """Every fixed file compiles; no analysis got worse; the tests pass."""

    internal = True

    name = "vibe.fix_validate"
    version = VERSION
    kind = "async"

    class Params(msgspec.Struct, forbid_unknown_fields=True):
        plan: _Data  # the fix plan (restructure's shape)
        before: _Data  # the vibe plan before the fixes
        test_command: str | None = None

    async def run(self, ctx: StepContext, params: Params) -> _Data:
        from corral.plugins.builtin.restructure.apply import compile_check, test_check, test_env
        from corral.plugins.builtin.restructure.handlers import run_tests
        from corral.plugins.builtin.restructure.project import ProjectPlan

        plan = ProjectPlan.from_data(params.plan)
        ctx.progress(0, None, "validating the fixes: compiling, analysing again")
        checks = [await trio.to_thread.run_sync(compile_check, plan.root, plan)]
        after = await trio.to_thread.run_sync(_reanalyse, plan.root, params.before)
        checks.append(_no_worse(params.before, after))
        if params.test_command:
            from corral.plugins.builtin.vibe.handlers import test_folders

            discovery = {"python": params.before["subprojects"]}
            for project in test_folders(discovery):
                ctx.progress(0, None, f"validating the fixes: {params.test_command}")
                code, output = await run_tests(
                    params.test_command, plan.root / project, test_env(plan)
                )
                checks.append(test_check(params.test_command, code, output))
        diff = "".join(_diff(plan.root, c.path, c.before) for c in plan.changes)
        return {"ok": all(c["ok"] for c in checks), "checks": checks, "after": after, "diff": diff}


def _diff(root: Path, path: str, before: str) -> str:
    import difflib

    after = (root / path).read_bytes().decode("utf-8")
    return "".join(
        difflib.unified_diff(
            before.splitlines(keepends=True),
            after.splitlines(keepends=True),
            f"a/{path}",
            f"b/{path}",
        )
    )


def _counts(findings: list[dict[str, Any]]) -> dict[str, list[int]]:
    """Analysis -> [findings, high-severity findings], counted as the plan
    counts them (de-duplicated across tools)."""
    from corral.plugins.builtin.vibe.plan import dedupe

    out: dict[str, list[int]] = {}
    for f in dedupe([f for f in findings if f["kind"] in RECHECKED]):
        n = out.setdefault(f["kind"], [0, 0])
        n[0] += 1
        n[1] += f["severity"] == "high"
    return out


def _reanalyse(root: Path, before: dict[str, Any]) -> dict[str, Any]:
    """The analyses that ran before, run again (in this thread, in the same
    order): findings counted by analysis, and how many are still fixable."""
    from corral.plugins.builtin.vibe.handlers import analyse

    findings: list[dict[str, Any]] = []
    for item in before["analyses"]:
        if item["analysis"] in RECHECKED and item["status"] == "ok":
            project = next(p for p in before["subprojects"] if p["path"] == item["subproject"])
            findings += analyse(item["analysis"], root, project)
    return {
        "counts": _counts(findings),
        "fixable": sum(bool(f.get("fixable")) for f in findings),
    }


def _no_worse(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    was = _counts(before["findings"])
    worse = []
    for kind, (n, high) in after["counts"].items():
        n0, high0 = was.get(kind, [0, 0])
        if n > n0 or high > high0:
            worse.append(f"{kind} {n0} -> {n} finding(s) ({high0} -> {high} high)")
    kinds = sorted(set(was) | set(after["counts"]))
    detail = "; ".join(worse) or ", ".join(
        f"{k} {was.get(k, [0, 0])[0]} -> {after['counts'].get(k, [0, 0])[0]}" for k in kinds
    )
    return {"what": "no analysis got worse", "ok": not worse, "detail": detail or "no findings"}


def fix_workflow(
    root: str,
    before: dict[str, Any],
    *,
    test_command: str | None = None,
    allow_dirty: bool = False,
) -> Any:
    """The ``vibe.fix`` workflow for the fixable findings of ``before`` (a
    vibe plan); ``None`` when nothing is fixable."""
    from corral.workflow.builder import Workflow  # (the builder alone: not corral's __init__)

    files = fixable_files(before)
    if not files:
        return None
    n = sum(len(v) for v in files.values())
    wf = Workflow("vibe.fix")
    plan = wf.step("fix_plan", "vibe.fix_plan", root=root, files=files)
    snapshot = wf.step(
        "snapshot",
        "restructure.snapshot",
        needs=[plan],
        plan=plan.output,
        allow_dirty=allow_dirty,
        branch="corral/vibe-fix",
    )
    write = wf.step("fix_write", "vibe.fix_write", needs=[snapshot], root=root, files=files)
    check = wf.step(
        "validate",
        "vibe.fix_validate",
        needs=[write],
        plan=plan.output,
        before=before,
        test_command=test_command,
    )
    done = wf.step(
        "finish",
        "restructure.finish",
        needs=[check],
        plan=plan.output,
        checks=check.output.checks,
        message=f"corral vibe --fix\n\nruff's safe fixes in {n} file(s)\n",
    )
    wf.output({"validation": check.output, "finish": done.output})
    return wf
