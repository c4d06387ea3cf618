"""Real codebases for the analysis case, fetched at benchmark time and cached.

A generated tree (:mod:`perf.codegen`) is exact and repeatable, but only a real
one has the shapes nobody thought to generate: sympy has 1,533 ``.py`` files,
folders that are not importable names, star imports, imports in every
function, long-standing cycles. It is downloaded with pip (the wheel: no build
step, and its content is pinned by version and checked by pip against the
index's hash), unzipped once, and reused from the cache by later runs. It is
never put in the repository or the test suite.

The cache is ``$CORRAL_PERF_CACHE``, else ``$XDG_CACHE_HOME/corral-perf``,
else ``~/.cache/corral-perf``. If the wheel cannot be fetched (offline, no
pip), the case is skipped with the reason, not failed: that says nothing
about corral.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

__all__ = ["REAL_TREES", "RealTree", "TreeUnavailable", "cache_root", "edit_real_tree", "fetch"]

_DONE = "tree.complete"  # beside the tree, not in it: the tree is analysed as is


class TreeUnavailable(RuntimeError):
    """The tree could not be fetched or unpacked; the message says why."""


@dataclass(frozen=True)
class RealTree:
    """A pinned distribution to analyse, and the edit made for the "after an edit" run."""

    name: str  # the case id's last part: "analysis/sympy"
    dist: str
    version: str
    package: str  # the top-level package grimp is asked for
    py_files: int  # in the unpacked wheel: a check that the cache holds what was pinned
    edit_path: str  # relative to the tree: the module the edit appends to
    edit_import: tuple[str, str]  # (module, name): imported inside the appended function

    @property
    def label(self) -> str:
        return f"{self.dist} {self.version}"

    @property
    def edit_edge(self) -> tuple[str, str]:
        """The import edge the edit adds (it may already exist; then nothing changes)."""
        importer = self.edit_path.removesuffix(".py").replace("/", ".")
        return importer, self.edit_import[0]


REAL_TREES: dict[str, RealTree] = {
    "sympy": RealTree(
        name="sympy",
        dist="sympy",
        version="1.14.0",
        package="sympy",
        py_files=1533,
        # A mid-layer module (it imports core, is imported by solvers and more).
        edit_path="sympy/polys/polytools.py",
        edit_import=("sympy.utilities.misc", "filldedent"),
    ),
    "twisted": RealTree(
        name="twisted",
        dist="twisted",
        version="24.11.0",
        package="twisted",
        py_files=852,
        edit_path="twisted/internet/task.py",
        edit_import=("twisted.python.failure", "Failure"),
    ),
}


def cache_root() -> Path:
    explicit = os.environ.get("CORRAL_PERF_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "corral-perf"


def _tail(text: str, limit: int = 800) -> str:
    text = text.strip()
    return text if len(text) <= limit else "…" + text[-limit:]


def _download(spec: RealTree, into: Path, timeout: float) -> Path:
    wheels = sorted(into.glob(f"{spec.dist}-{spec.version}-*.whl"))
    if wheels:
        return wheels[0]
    into.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        "--no-input",
        "-q",
        f"{spec.dist}=={spec.version}",
        "-d",
        str(into),
    ]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise TreeUnavailable(f"pip download {spec.dist}=={spec.version}: timed out") from None
    except OSError as exc:
        raise TreeUnavailable(f"pip download {spec.dist}=={spec.version}: {exc}") from None
    wheels = sorted(into.glob(f"{spec.dist}-{spec.version}-*.whl"))
    if proc.returncode != 0 or not wheels:
        raise TreeUnavailable(
            f"pip download {spec.dist}=={spec.version} failed (exit {proc.returncode}): "
            f"{_tail(proc.stderr or proc.stdout) or 'no wheel written'}"
        )
    return wheels[0]


def fetch(spec: RealTree, timeout: float = 300.0) -> Path:
    """The unpacked wheel of ``spec`` (downloaded and unzipped on first use).

    Unpacking goes to a temporary folder renamed into place, and a marker file
    beside it is written last, so an interrupted run leaves nothing that a later run
    would take for a complete tree.
    """
    home = cache_root() / f"{spec.dist}-{spec.version}"
    tree = home / "tree"
    if (home / _DONE).exists() and tree.is_dir():
        return tree
    try:
        wheel = _download(spec, home, timeout)
        if tree.exists():
            shutil.rmtree(tree)  # a partial tree from an interrupted run
        staging = home / f"tree.partial-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        with zipfile.ZipFile(wheel) as zf:
            zf.extractall(staging)
        found = sum(1 for _ in staging.rglob("*.py"))
        if found != spec.py_files:
            shutil.rmtree(staging, ignore_errors=True)
            raise TreeUnavailable(f"{wheel.name} holds {found} .py files, {spec.py_files} expected")
        staging.rename(tree)
        (home / _DONE).write_text(f"{wheel.name}\n", encoding="utf-8")
    except (OSError, zipfile.BadZipFile) as exc:
        raise TreeUnavailable(f"{spec.label}: cannot unpack into {home}: {exc}") from None
    return tree


def edit_real_tree(spec: RealTree, tree: Path) -> tuple[str, str]:
    """Append a function with a local import to one module, as a developer would;
    returns the import edge it adds, which the report after the edit must hold."""
    module, name = spec.edit_import
    with (tree / spec.edit_path).open("a", encoding="utf-8") as f:
        f.write(
            f"\n\ndef _edited_by_perf() -> str:\n    from {module} import {name}\n\n"
            f"    return {name}('  edited')\n"
        )
    return spec.edit_edge
