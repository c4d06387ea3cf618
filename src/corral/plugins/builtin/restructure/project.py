"""What a plan does to a project: the files it moves, the packages it
creates, and every file it rewrites, with a unified diff of each.

The project's modules come from the architecture analysis's walk
(:func:`~corral.plugins.builtin.architecture.discover.scan`: packages with an
``__init__.py`` and the namespace folders inside them). Every ``.py`` file
under the path is a candidate for rewriting, packages or not (tests,
``conftest.py``, scripts, examples), and so is ``pyproject.toml`` (entry points
and architecture contracts name modules). Only files that mention a moved
module's name, and the moved files themselves, are parsed: the rest cannot
change. Nothing is written here.
"""

from __future__ import annotations

import concurrent.futures
import difflib
import multiprocessing as mp
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from corral.plugins.builtin.architecture import discover
from corral.plugins.builtin.restructure.architecture import Analysis, analysis, predicted_cycles
from corral.plugins.builtin.restructure.errors import RestructureError
from corral.plugins.builtin.restructure.moves import Move, Renames, check
from corral.plugins.builtin.restructure.rewrite import FileRewrite, rewrite_source

__all__ = ["FileChange", "ProjectPlan", "plan_project"]

#: Text files (besides Python) whose module names a move rewrites.
CONFIG_FILES = ("pyproject.toml", "setup.cfg", ".importlinter")


@dataclass
class FileChange:
    """One file the plan moves or rewrites (paths relative to the root)."""

    path: str
    new_path: str
    before: str
    after: str
    counts: Counter[str] = field(default_factory=Counter)

    @property
    def moved(self) -> bool:
        return self.path != self.new_path

    @property
    def rewritten(self) -> bool:
        return self.before != self.after

    def diff(self) -> str:
        return "".join(
            difflib.unified_diff(
                self.before.splitlines(keepends=True),
                self.after.splitlines(keepends=True),
                f"a/{self.path}",
                f"b/{self.new_path}",
            )
        )


@dataclass
class ProjectPlan:
    root: Path
    moves: list[Move]
    renames: Renames
    changes: list[FileChange]
    new_packages: list[str]  # folders that get an __init__.py (relative to the root)
    created: list[str]  # the dotted names of those new packages
    warnings: list[tuple[str, int, str]]  # path, line, message
    # every moved module file: (its old path, old name, new name, is a package)
    moved_modules: list[tuple[str, str, str, bool]] = field(default_factory=list)
    before: Analysis | None = None  # the project's architecture today
    predicted: dict[str, Any] = field(default_factory=dict)  # the cycles the plan leads to
    data_moves: list[tuple[str, str]] = field(default_factory=list)  # other files of packages

    def to_data(self) -> dict[str, Any]:
        """Everything in the plan as plain data (a workflow step's output);
        :meth:`from_data` makes the plan again."""
        before = self.before
        return {
            "root": str(self.root),
            "moves": [[m.old, m.new] for m in self.moves],
            "renamed": self.renames.modules,
            "changes": [
                [c.path, c.new_path, c.before, c.after, dict(c.counts)] for c in self.changes
            ],
            "new_packages": self.new_packages,
            "created": self.created,
            "warnings": [list(w) for w in self.warnings],
            "moved_modules": [list(m) for m in self.moved_modules],
            "before": None if before is None else before.to_data(),
            "predicted": self.predicted,
            "data_moves": [list(m) for m in self.data_moves],
        }

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> ProjectPlan:
        moves = [Move(old, new) for old, new in data["moves"]]
        return cls(
            Path(data["root"]),
            moves,
            Renames(moves, data["renamed"]),
            [FileChange(a, b, old, new, Counter(n)) for a, b, old, new, n in data["changes"]],
            list(data["new_packages"]),
            list(data["created"]),
            [(p, int(n), m) for p, n, m in data["warnings"]],
            [(p, old, new, bool(k)) for p, old, new, k in data["moved_modules"]],
            None if data["before"] is None else Analysis.from_data(data["before"]),
            dict(data["predicted"]),
            [(a, b) for a, b in data["data_moves"]],
        )

    def counts(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for change in self.changes:
            total.update(change.counts)
        return total

    def as_dict(self) -> dict[str, Any]:
        return {
            "root": str(self.root),
            "moves": [{"from": m.old, "to": m.new} for m in self.moves],
            "modules": dict(sorted(self.renames.modules.items())),
            "files_moved": [{"from": c.path, "to": c.new_path} for c in self.changes if c.moved]
            + [{"from": a, "to": b, "data": True} for a, b in self.data_moves],
            "new_packages": self.new_packages,
            "files_changed": [
                {"path": c.path, "new_path": c.new_path, "rewrites": dict(c.counts)}
                for c in self.changes
                if c.rewritten
            ],
            "rewrites": dict(self.counts()),
            "warnings": [{"path": p, "line": n, "message": m} for p, n, m in self.warnings],
            "architecture": {
                "before": None if self.before is None else self.before.summary,
                "predicted": self.predicted,
            },
            "diff": "".join(c.diff() for c in self.changes if c.rewritten),
        }


def _python_files(root: Path) -> list[Path]:
    found: list[Path] = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and not discover.skip_dir(d))
        found += [Path(folder, f) for f in sorted(files) if f.endswith(".py")]
    return found


def _target_path(source_root: Path, name: str, is_package: bool) -> Path:
    base = source_root.joinpath(*name.split("."))
    return base / "__init__.py" if is_package else base.with_suffix(".py")


def plan_project(root: str | os.PathLike[str], moves: list[Move]) -> ProjectPlan:
    """Everything ``moves`` would change under ``root``, without writing."""
    top = Path(root).resolve()
    try:
        scanned = discover.scan(top)
    except (FileNotFoundError, NotADirectoryError) as exc:
        raise RestructureError(str(exc)) from None
    modules: dict[str, bool] = {}
    where: dict[str, tuple[str, bool]] = {}  # path -> (module, is_package)
    source_roots: dict[str, Path] = {}  # top-level package -> its source root
    for package in scanned.packages:
        source_roots[package.name] = Path(package.source_root)
        for m in package.modules:
            modules[m.name] = m.is_package or m.namespace
            if not m.namespace:
                where[m.path] = (m.name, m.is_package)
    if not modules:
        raise RestructureError(f"no Python package under {top} (a folder with an __init__.py)")
    renames = check(moves, modules)

    # Where each moved file goes, and the packages the targets need.
    new_paths: dict[str, str] = {}
    moved_modules: list[tuple[str, str, str, bool]] = []
    new_packages: list[str] = []
    created: list[str] = []
    for rel, (name, is_package) in where.items():
        target = renames.modules.get(name)
        if target is None:
            continue
        source_root = source_roots[name.split(".")[0]]
        new_rel = _target_path(source_root, target, is_package).relative_to(top).as_posix()
        if (top / new_rel).exists():
            raise RestructureError(f"moving {name} to {target}: {new_rel} exists already")
        new_paths[rel] = new_rel
        moved_modules.append((rel, name, target, is_package))
    warnings: list[tuple[str, int, str]] = []
    data_moves: list[tuple[str, str]] = []
    for move in moves:
        source_root = source_roots[move.old.split(".")[0]]
        if modules[move.old]:  # a package: its other files (data, templates) go with it
            folder = source_root.joinpath(*move.old.split("."))
            into = source_root.joinpath(*move.new.split("."))
            for path in sorted(folder.rglob("*")):
                if path.is_file() and path.suffix != ".py" and "__pycache__" not in path.parts:
                    new_path = into / path.relative_to(folder)
                    if new_path.exists():
                        raise RestructureError(
                            f"moving {move.old} to {move.new}: "
                            f"{new_path.relative_to(top).as_posix()} exists already"
                        )
                    data_moves.append(
                        (path.relative_to(top).as_posix(), new_path.relative_to(top).as_posix())
                    )
        parts = move.new.split(".")
        for i in range(1, len(parts)):
            parent = ".".join(parts[:i])
            if parent in modules or parent in renames.modules.values():
                continue
            folder = source_root.joinpath(*parts[:i])
            rel = folder.relative_to(top).as_posix()
            if rel not in new_packages:
                new_packages.append(rel)
                created.append(parent)

    mentions = _Mentions(renames)
    changes: list[FileChange] = []
    jobs: list[_Job] = []
    for path in _python_files(top):
        rel = path.relative_to(top).as_posix()
        try:
            text = path.read_bytes().decode("utf-8")  # line ends as they are
        except (OSError, UnicodeDecodeError) as exc:
            if rel in new_paths:
                raise RestructureError(f"{rel}: cannot be read: {exc}") from None
            warnings.append((rel, 0, f"not read, so not rewritten: {exc}"))
            continue
        moved = rel in new_paths
        module, is_package = where.get(rel, (None, False))
        if not moved and not mentions.may_change(text, module):
            continue
        jobs.append((rel, text, module, is_package))
    for (rel, text, _, _), result in zip(jobs, _rewrite_all(jobs, renames), strict=True):
        warnings += [(rel, line, message) for line, message in result.warnings]
        if result.changed or rel in new_paths:
            changes.append(
                FileChange(rel, new_paths.get(rel, rel), text, result.source, result.counts)
            )
    changes += _config_changes(top, renames)
    before = analysis(top)
    return ProjectPlan(
        top,
        moves,
        renames,
        changes,
        new_packages,
        created,
        sorted(warnings),
        sorted(moved_modules),
        before,
        predicted_cycles(before, renames, created),
        data_moves,
    )


_Job = tuple[str, str, str | None, bool]  # path, text, module, is a package
#: Below this many files, one process rewrites them (starting others costs more).
PARALLEL_FROM = 64


def _rewrite_one(job: _Job, renames: Renames) -> FileRewrite:
    rel, text, module, is_package = job
    return rewrite_source(
        text,
        path=rel,
        renames=renames,
        module_old=module,
        module_new=renames.modules.get(module, module) if module else None,
        is_package=is_package,
    )


def _rewrite_all(jobs: list[_Job], renames: Renames) -> list[FileRewrite]:
    """Every file's rewrite, in order; in parallel (one process per core,
    forked: nothing of the project is imported) when there are many. A file
    that does not parse fails the plan, as in one process."""
    workers = min(len(os.sched_getaffinity(0)), 8) if hasattr(os, "sched_getaffinity") else 1
    if len(jobs) < PARALLEL_FROM or workers < 2 or "fork" not in mp.get_all_start_methods():
        return [_rewrite_one(job, renames) for job in jobs]
    chunk = max(1, len(jobs) // (workers * 4))
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=mp.get_context("fork")) as pool:
        return list(pool.map(_rewrite_one, jobs, [renames] * len(jobs), chunksize=chunk))


class _Mentions:
    """Which files can change, read from their text without parsing (libcst
    costs ~15 ms a file): one that names a moved module in full
    (``a.b.c``), or its parent and its last name (``from a.b import c``),
    or, in the same top-level package, its last name in a relative import;
    and a package whose ``__all__`` may name a submodule that moves."""

    _RELATIVE = re.compile(r"^[ \t]*from[ \t]+\.", re.MULTILINE)
    _WORD = re.compile(r"[A-Za-z_]\w*")

    def __init__(self, renames: Renames) -> None:
        self.full = renames.in_text()
        self.parents: dict[str, set[str]] = {}  # last name -> parents of moved modules
        for name in renames.modules:
            parent, _, last = name.rpartition(".")
            self.parents.setdefault(last, set()).add(parent)
        self.holders: set[str | None] = {p for ps in self.parents.values() for p in ps}

    def may_change(self, text: str, module: str | None) -> bool:
        if self.full is not None and self.full.search(text):
            return True
        if module in self.holders and "__all__" in text:
            return True  # a package whose __all__ may name a submodule that moves
        words = set(self._WORD.findall(text)) & self.parents.keys()
        if not words:
            return False
        for last in words:
            for parent in self.parents[last]:
                if not parent or parent in text:
                    return True
                same_top = module is not None and module.split(".")[0] == parent.split(".")[0]
                if same_top and self._RELATIVE.search(text):
                    return True
        return False


def _config_changes(top: Path, renames: Renames) -> list[FileChange]:
    """Entry points and contracts in configuration files that name a moved module."""
    out: list[FileChange] = []
    for name in CONFIG_FILES:
        path = top / name
        if not path.is_file():
            continue
        text = path.read_bytes().decode("utf-8")
        new, n = renames.replace_in_text(text)
        if n:
            out.append(FileChange(name, name, text, new, Counter({"config": n})))
    return out
