"""Carrying a plan out: snapshot, move, rewrite, validate, then keep or roll back.

Before anything changes, the bytes of every file the plan touches are copied
into a journal folder (``.corral-restructure/`` at the project's root) with
a ``journal.json`` that lists them and what will be created; it is synced to
disk. Then files are moved (``git mv`` in a git work tree, so history
follows), rewritten, and new packages get their ``__init__.py``. Validation:
every touched Python file compiles, and the ``--test-command`` passes if
given. On any failure, on Ctrl-C, or when the next run finds a journal left
by a process that was killed, the journal puts every byte back and removes
what was created: the tree is as it was. Only a validated result is kept
(and, in git, committed on a new branch ``corral/restructure-<time>``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from corral.plugins.builtin.restructure.architecture import Analysis, analysis
from corral.plugins.builtin.restructure.errors import RestructureError
from corral.plugins.builtin.restructure.project import ProjectPlan

__all__ = [
    "JOURNAL_DIR",
    "Applied",
    "apply_plan",
    "begin",
    "carry_out",
    "compile_check",
    "failures",
    "finish",
    "owned",
    "recover",
    "test_check",
    "test_env",
    "validate",
]

JOURNAL_DIR = ".corral-restructure"


@dataclass
class Applied:
    """What applying did: validated and kept, or rolled back (and why)."""

    ok: bool
    validation: list[dict[str, Any]] = field(default_factory=list)
    branch: str | None = None
    commit: str | None = None
    rolled_back: str | None = None  # the reason, when rolled back
    architecture: dict[str, Any] = field(default_factory=dict)  # before / after


def _git(root: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        ["git", "-C", str(root), *args], capture_output=True, text=True, timeout=300
    )
    if check and done.returncode != 0:
        raise RestructureError(f"git {' '.join(args)} failed: {done.stderr.strip()[-400:]}")
    return done


def in_git(root: Path) -> bool:
    if shutil.which("git") is None:
        return False
    done = _git(root, "rev-parse", "--is-inside-work-tree", check=False)
    return done.returncode == 0 and done.stdout.strip() == "true"


def _dirty(root: Path) -> list[str]:
    done = _git(root, "status", "--porcelain", "--", ".")
    return [line[3:] for line in done.stdout.splitlines() if JOURNAL_DIR not in line]


def _sync_write(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


# ---------------------------------------------------------------- the journal


def _journal(root: Path) -> Path:
    return root / JOURNAL_DIR


def _write_journal(root: Path, plan: ProjectPlan, owner: str | None) -> dict[str, Any]:
    folder = _journal(root)
    folder.mkdir()
    saved = []
    for i, path in enumerate([c.path for c in plan.changes] + [a for a, _ in plan.data_moves]):
        _sync_write(folder / f"{i}.orig", (root / path).read_bytes())
        saved.append({"path": path, "copy": f"{i}.orig"})
    created = sorted(
        {c.new_path for c in plan.changes if c.moved}
        | {b for _, b in plan.data_moves}
        | {f"{p}/__init__.py" for p in plan.new_packages}
    )
    folders = sorted(
        {str(Path(p).parent) for p in created} | set(plan.new_packages), key=len, reverse=True
    )
    journal = {
        "state": "applying",
        "owner": owner,
        "saved": saved,
        "created": created,
        "folders": folders,
        "git": None,
    }
    _sync_write(folder / "journal.json", json.dumps(journal).encode())
    return journal


def _update_journal(root: Path, journal: dict[str, Any]) -> None:
    path = _journal(root) / "journal.json"
    tmp = path.with_suffix(".tmp")
    _sync_write(tmp, json.dumps(journal).encode())
    os.replace(tmp, path)


def recover(root: str | os.PathLike[str], owner: str | None = None) -> str | None:
    """Roll back what a killed run left half done (its journal); None when
    there was nothing to recover, else what was done. With ``owner``, only
    that execution's journal (another run's is left alone)."""
    top = Path(root).resolve()
    path = _journal(top) / "journal.json"
    if not path.is_file():
        if owner is None and _journal(top).exists():  # killed while it was written
            shutil.rmtree(_journal(top))
        return None
    journal = json.loads(path.read_text())
    if owner is not None and journal.get("owner") != owner:
        return None
    _roll_back(top, journal)
    return "a restructuring left half done by a stopped run was rolled back"


def _roll_back(root: Path, journal: dict[str, Any]) -> None:
    """Put every saved byte back, remove what was created, undo git's side."""
    folder = _journal(root)
    git = journal.get("git")
    if git:
        # index and branch as they were (the files themselves are restored below)
        _git(root, "reset", "-q", git["head"], check=False)
        if git.get("branch"):
            current = _git(root, "symbolic-ref", "-q", "--short", "HEAD", check=False)
            if current.stdout.strip() == git["branch"]:
                if git["original_ref"]:
                    _git(root, "symbolic-ref", "HEAD", git["original_ref"], check=False)
                    _git(root, "reset", "-q", git["head"], check=False)
                else:  # it was a detached HEAD (a worktree, a CI checkout)
                    _git(root, "switch", "-q", "--detach", git["head"], check=False)
            _git(root, "branch", "-q", "-D", git["branch"], check=False)
    saved_paths = {s["path"] for s in journal["saved"]}
    for rel in journal["created"]:
        target = root / rel
        if rel not in saved_paths and target.exists():
            target.unlink()
    for item in journal["saved"]:
        target = root / item["path"]
        target.parent.mkdir(parents=True, exist_ok=True)
        _sync_write(target, (folder / item["copy"]).read_bytes())
    for rel in journal["folders"]:
        _remove_if_empty(root / rel)
    shutil.rmtree(folder)


def _remove_if_empty(folder: Path) -> None:
    """Remove ``folder`` if nothing is left in it but bytecode caches."""
    if not folder.is_dir():
        return
    entries = list(folder.iterdir())
    if all(e.name == "__pycache__" for e in entries):
        for e in entries:
            shutil.rmtree(e, ignore_errors=True)
        folder.rmdir()


# ---------------------------------------------------------------- applying
#
# Four phases, each callable on its own: the ``restructure.apply`` workflow
# runs one per step (see :mod:`.handlers`); :func:`apply_plan` runs them in a
# row for code that embeds them. The journal names its owner (the execution
# whose steps carry the plan out): a step of an execution whose journal a
# later run rolled back, or that another run now owns, refuses to touch the
# tree.


def begin(
    plan: ProjectPlan,
    *,
    allow_dirty: bool = False,
    owner: str | None = None,
    branch: str = "corral/restructure",
) -> None:
    """Check the tree may be changed, then snapshot every file the plan
    touches (the journal) and, in git, switch to a new branch
    ``<branch>-<time>``."""
    root = plan.root
    if _journal(root).exists():
        raise RestructureError(
            f"{root / JOURNAL_DIR} exists: another restructuring runs here, or one was "
            "stopped; run the command again once it has ended (a stopped one is rolled back "
            "first)"
        )
    git = in_git(root)
    if git and not allow_dirty:
        dirty = _dirty(root)
        if dirty:
            shown = ", ".join(dirty[:5]) + (f" and {len(dirty) - 5} more" if len(dirty) > 5 else "")
            raise RestructureError(
                f"uncommitted changes in the work tree ({shown}): commit or stash them, or "
                "pass --allow-dirty"
            )
    for change in plan.changes:
        try:
            now = (root / change.path).read_bytes().decode("utf-8")
        except (OSError, UnicodeDecodeError):
            now = None
        if now != change.before:
            raise RestructureError(
                f"{change.path} changed since the plan was made: plan again (nothing was written)"
            )
    journal = _write_journal(root, plan, owner)
    try:
        if git:
            head = _git(root, "rev-parse", "HEAD", check=False).stdout.strip() or None
            original = _git(root, "symbolic-ref", "-q", "HEAD", check=False).stdout.strip()
            name = f"{branch}-{time.strftime('%Y%m%d-%H%M%S')}"
            # A detached HEAD (a worktree, a CI checkout) gets its branch too:
            # without one the result would be left uncommitted.
            if head:
                journal["git"] = {"head": head, "original_ref": original, "branch": name}
                _update_journal(root, journal)
                _git(root, "switch", "-q", "-c", name)
    except BaseException:
        _roll_back(root, journal)
        raise


def owned(root: Path, owner: str | None) -> dict[str, Any]:
    """The journal, when it is ``owner``'s; else :class:`RestructureError`."""
    path = _journal(root) / "journal.json"
    journal: dict[str, Any] | None = None
    if path.is_file():
        journal = json.loads(path.read_text())
    if journal is None or journal.get("owner") != owner:
        raise RestructureError(
            f"{root}: this restructuring's snapshot is gone (rolled back by a later run, "
            "or another run owns the tree): nothing was changed by this step"
        )
    return journal


def carry_out(plan: ProjectPlan, *, keep_shims: bool = False, owner: str | None = None) -> int:
    """Move the files, write the rewritten ones and the new packages (and
    shims); returns how many files were moved."""
    root = plan.root
    journal = owned(root, owner)
    _move_and_write(root, plan, bool(journal.get("git")))
    if keep_shims:
        _write_shims(root, plan)
    return sum(c.moved for c in plan.changes) + len(plan.data_moves)


def sort_imports(plan: ProjectPlan) -> int:
    """Re-sort the import blocks of the rewritten files the project's way,
    when the project sorts them with ruff (``I`` rules selected in its
    ``[tool.ruff]`` table) and ruff is installed: a rewritten import keeps
    its place, which may no longer be where the project's isort order puts
    it (``from a.util import x`` became ``from a.lib.util import x``), and
    the project's lint would fail. Only the ``I`` rules run, with the
    project's own configuration; the journal holds every file's bytes, so a
    rollback undoes this too. Returns how many files ruff was given."""
    root = plan.root
    ruff = shutil.which("ruff")
    files = [c.new_path for c in plan.changes if c.rewritten and c.new_path.endswith(".py")]
    if ruff is None or not files or not _sorts_imports(root):
        return 0
    subprocess.run(
        [ruff, "check", "--select", "I", "--fix", "--exit-zero", "--quiet", "--", *files],
        cwd=root,
        capture_output=True,
        timeout=300,
    )
    return len(files)


def _sorts_imports(root: Path) -> bool:
    """Whether the project's ruff configuration selects the isort rules."""
    try:
        data = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return False
    tool = data.get("tool", {}).get("ruff", {})
    if not isinstance(tool, dict):
        return False
    lint = tool.get("lint", {}) if isinstance(tool.get("lint"), dict) else {}
    chosen = [
        code
        for table in (tool, lint)
        for key in ("select", "extend-select")
        for code in (table.get(key) or [])
        if isinstance(code, str)
    ]
    return any(code in ("I", "ALL") or code.startswith("I0") for code in chosen)


def validate(
    plan: ProjectPlan,
    *,
    test_command: str | None = None,
    keep_shims: bool = False,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The checks of the result (each ``{what, ok, detail}``) and the
    architecture before and after; the test command, if given, runs in a
    subprocess (the workflow's validate step runs it itself, cancellably)."""
    root = plan.root
    checks = [compile_check(root, plan)]
    after = analysis(root)
    architecture = {
        "before": None if plan.before is None else plan.before.summary,
        "after": after.summary,
    }
    checks.append(_graph_check(after, _predicted_graph(root, plan, keep_shims)))
    if test_command:
        code, output = _run_tests(test_command, root, test_env(plan))
        checks.append(test_check(test_command, code, output))
    return checks, architecture


def test_check(command: str, code: int, output: str) -> dict[str, Any]:
    """The test command's check: its exit status and the last lines it printed."""
    tail = output.strip().splitlines()[-3:]
    return {
        "what": f"test command `{command}`",
        "ok": code == 0,
        "detail": f"exit {code}" + (f": {' | '.join(tail)}" if tail else ""),
    }


def failures(checks: list[dict[str, Any]]) -> str | None:
    """The failed checks in one line, or ``None`` when every check passed."""
    failed = [f"{v['what']}: {v['detail']}" for v in checks if not v["ok"]]
    return "; ".join(failed) or None


def finish(
    plan: ProjectPlan,
    checks: list[dict[str, Any]],
    *,
    owner: str | None = None,
    message: str | None = None,
) -> tuple[str | None, str | None, str | None]:
    """Keep a validated result (committed on the journal's branch, in git,
    with ``message``, by default the moves) or roll everything back:
    ``(branch, commit, why it was rolled back)``."""
    root = plan.root
    journal = owned(root, owner)
    failed = failures(checks)
    if failed:
        _roll_back(root, journal)
        return None, None, failed
    branch = (journal.get("git") or {}).get("branch")
    commit = None
    if branch is not None:
        moves = "\n".join(f"- {m.old} -> {m.new}" for m in plan.moves)
        # only what the plan touched: other uncommitted changes (--allow-dirty)
        # stay uncommitted, as they were
        touched = {c.path for c in plan.changes} | {c.new_path for c in plan.changes}
        touched |= {p for move in plan.data_moves for p in move}
        touched |= {f"{p}/__init__.py" for p in plan.new_packages}
        # (old paths are gone, their removal staged by git mv; a file git
        # ignores, generated code, is changed but not committed)
        present = sorted(p for p in touched if (root / p).exists())
        ignored = set(_git(root, "check-ignore", "--", *present, check=False).stdout.split())
        try:
            _git(root, "add", "-A", "--", *[p for p in present if p not in ignored])
            message = message or f"corral restructure\n\n{moves}\n"
            _git(root, "commit", "-q", "--no-verify", "-m", message)
            commit = _git(root, "rev-parse", "HEAD").stdout.strip()
        except RestructureError as exc:  # validated, but git would not keep it
            _roll_back(root, journal)
            return None, None, f"the commit failed: {exc}"
    shutil.rmtree(_journal(root))
    return branch, commit, None


def apply_plan(
    plan: ProjectPlan,
    *,
    test_command: str | None = None,
    allow_dirty: bool = False,
    keep_shims: bool = False,
    say: Callable[[str], None] = lambda line: None,
) -> Applied:
    """Carry ``plan`` out and validate it, in this process (the CLI runs the
    same phases as the ``restructure.apply`` workflow); roll everything back
    on failure."""
    root = plan.root
    begin(plan, allow_dirty=allow_dirty)
    try:
        say(f"moving {sum(c.moved for c in plan.changes)} file(s)")
        carry_out(plan, keep_shims=keep_shims)
        say("validating")
        checks, architecture = validate(plan, test_command=test_command, keep_shims=keep_shims)
        branch, commit, rolled_back = finish(plan, checks)
    except BaseException:
        recover(root)
        raise
    return Applied(
        ok=rolled_back is None,
        validation=checks,
        branch=branch,
        commit=commit,
        rolled_back=rolled_back,
        architecture=architecture,
    )


def _move_and_write(root: Path, plan: ProjectPlan, git: bool) -> None:
    for rel in plan.new_packages:
        (root / rel).mkdir(parents=True, exist_ok=True)
        init = root / rel / "__init__.py"
        if not init.exists():
            init.write_text("")
    old_folders: set[Path] = set()
    moves = [(c.path, c.new_path) for c in plan.changes if c.moved] + plan.data_moves
    for old, new in moves:
        source, target = root / old, root / new
        target.parent.mkdir(parents=True, exist_ok=True)
        if git:
            _git(root, "mv", "-k", old, new)
        if source.exists():  # (not tracked by git, or outside it)
            os.replace(source, target)
        old_folders.add(source.parent)
    for change in plan.changes:
        if change.rewritten:
            (root / change.new_path).write_bytes(change.after.encode("utf-8"))  # (line ends kept)
    for folder in sorted(old_folders, key=lambda p: len(p.parts), reverse=True):
        _remove_if_empty(folder)


def _predicted_graph(
    root: Path, plan: ProjectPlan, shims: bool
) -> tuple[set[str], set[tuple[str, str]]]:
    """The graph the result must have: today's, every moved name renamed,
    plus the packages the plan creates (and, with shims, each old module
    importing its new one)."""
    assert plan.before is not None
    modules, edges = plan.before.modules, plan.before.edges

    def new(name: str) -> str:
        return plan.renames.modules.get(name, name)

    want_modules = {new(m) for m in modules} | set(plan.created)
    want_edges = {(new(a), new(b)) for a, b in edges}
    if shims:
        want_modules |= {old for _, old, _, _ in plan.moved_modules}
        want_edges |= {(old, target) for _, old, target, _ in plan.moved_modules}
    return want_modules, want_edges


_MODULE_SHIM = '''"""Moved to {new} (corral restructure): this module is {new} under its old
name, for code that still imports {old}. It goes away in a future release."""

import sys as _sys
import warnings as _warnings

import {new} as _moved

_warnings.warn(
    "{old} moved to {new}: import {new} instead", DeprecationWarning, stacklevel=2
)
_sys.modules[__name__] = _moved
'''

_PACKAGE_SHIM = '''"""Moved to {new} (corral restructure): its names, under the old package
name, for code that still imports {old}. It goes away in a future release."""

import warnings as _warnings

from {new} import *  # noqa: F403

_warnings.warn(
    "{old} moved to {new}: import {new} instead", DeprecationWarning, stacklevel=2
)
'''


def _write_shims(root: Path, plan: ProjectPlan) -> None:
    """A module at each old path: the new module under the old name (a
    package: its names, and its moved modules' shims beside it)."""
    for path, old, new, is_package in plan.moved_modules:
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        shim = _PACKAGE_SHIM if is_package else _MODULE_SHIM
        target.write_text(shim.format(old=old, new=new), encoding="utf-8")


def _graph_check(
    after: Analysis, expected: tuple[set[str], set[tuple[str, str]]]
) -> dict[str, Any]:
    modules, edges = after.modules, after.edges
    want_modules, want_edges = expected
    problems = []
    for label, extra in (
        ("modules missing", sorted(want_modules - modules)),
        ("unexpected modules", sorted(modules - want_modules)),
        ("imports missing", [f"{a} -> {b}" for a, b in sorted(want_edges - edges)]),
        ("unexpected imports", [f"{a} -> {b}" for a, b in sorted(edges - want_edges)]),
    ):
        if extra:
            problems.append(f"{label}: {', '.join(extra[:5])}" + (" ..." if len(extra) > 5 else ""))
    return {
        "what": "the import graph is the plan's (today's, names renamed)",
        "ok": not problems,
        "detail": "; ".join(problems) or f"{len(modules)} modules, {len(edges)} imports",
    }


def compile_check(root: Path, plan: ProjectPlan) -> dict[str, Any]:
    """Every Python file the plan touches compiles (at its new path)."""
    bad = []
    for change in plan.changes:
        if not change.new_path.endswith(".py"):
            continue
        path = root / change.new_path
        try:
            compile(path.read_bytes(), str(path), "exec", dont_inherit=True)
        except SyntaxError as exc:
            bad.append(f"{change.new_path}:{exc.lineno}: {exc.msg}")
    return {
        "what": "every touched file compiles",
        "ok": not bad,
        "detail": "; ".join(bad) or f"{len(plan.changes)} file(s)",
    }


def test_env(plan: ProjectPlan | None = None) -> dict[str, str]:
    """The test command's environment: the tree must come back byte-identical
    if validation fails, so the command writes no bytecode or pytest cache
    into it; and the tree's own source folders come first on ``PYTHONPATH``,
    so the tests import the restructured code even where the project is
    installed from somewhere else (an editable install of another checkout:
    the tests would pass or fail on code the plan never touched)."""
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    env["PYTEST_ADDOPTS"] = (env.get("PYTEST_ADDOPTS", "") + " -p no:cacheprovider").strip()
    if plan is not None:
        roots = source_roots(plan)
        rest = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
        env["PYTHONPATH"] = os.pathsep.join([*roots, *rest])
    return env


def source_roots(plan: ProjectPlan) -> list[str]:
    """The folders the moved modules are imported from (``src`` of a src
    layout, the root itself of a flat one), absolute, each once."""
    roots: list[str] = []
    for path, name, _new, is_package in plan.moved_modules:
        parts = Path(path).parts
        depth = len(name.split("."))
        if is_package and parts and parts[-1] == "__init__.py":
            depth += 1  # (a package's file is its __init__.py)
        root = str(plan.root.joinpath(*parts[: max(0, len(parts) - depth)]))
        if root not in roots:
            roots.append(root)
    return roots


def _run_tests(command: str, cwd: Path, env: dict[str, str]) -> tuple[int, str]:
    done = subprocess.run(
        command,
        shell=True,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        timeout=3600,
        env=env,
    )
    return done.returncode, done.stdout
