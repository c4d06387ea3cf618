"""The import graph, built by grimp in an isolated subprocess.

The analysed code is never imported or executed: grimp parses the files. The
graph is built in a child interpreter (``python -I``) from a *mirror*: a
temporary directory holding the discovered modules (hard links, which cost
~15 µs each where a symbolic link costs ~0.5 ms on some file systems;
symbolic links across file systems; copies as a last resort). grimp is told
where each analysed package lies in the mirror (its package finder is
replaced); the mirror is never put on ``sys.path``. So

- no module of the analysed tree can be imported by the child, whatever its
  name (a package called ``textwrap`` or ``grimp`` stays data);
- a target package that shares its name with one installed in, or imported
  by, corral's process is read from the target tree, never from elsewhere;
- files that discovery left out (excluded, tests, syntax errors, too large)
  are mirrored as empty placeholder modules, and imports of them are dropped
  (grimp would otherwise count them as imports of the package above);
- namespace sub-folders (no ``__init__.py``), and packages whose
  ``__init__.py`` is not analysed, get an empty one, so grimp analyses them
  as packages instead of skipping them.

Edges follow grimp's rules: ``import a.b.c`` is an edge to ``a.b.c`` only,
``from pkg import sub`` to ``pkg.sub``, imports in functions and ``try``
blocks count, ``if TYPE_CHECKING:`` imports count unless excluded,
self-imports are not edges.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

_CHILD = r"""
import json, os, sys
args = json.loads(sys.argv[1])
import grimp
from grimp.application.config import settings
from grimp.application.ports.packagefinder import AbstractPackageFinder

# grimp finds a package through the import system; here it is told where each
# analysed package lies instead. Nothing is added to sys.path, so no module of
# the analysed tree can ever be imported (and run) by this process, whatever
# its name (`textwrap`, `json`, `grimp` ...).
dirs = args["dirs"]


class MirrorFinder(AbstractPackageFinder):
    def determine_package_directories(self, package_name, file_system):
        return {dirs[package_name]}


settings.configure(PACKAGE_FINDER=MirrorFinder())
names = sorted(dirs)
graph = grimp.build_graph(
    *names,
    include_external_packages=True,
    exclude_type_checking_imports=args["exclude_type_checking"],
    cache_dir=None,
)
internal = set()
for name in names:
    internal |= {name} | graph.find_descendants(name)
edges = []
external = []
for importer in sorted(internal):
    for imported in sorted(graph.find_modules_directly_imported_by(importer)):
        if imported == importer:
            continue
        details = graph.get_import_details(importer=importer, imported=imported)
        lines = sorted({d["line_number"] for d in details})
        if imported in internal:
            edges.append([importer, imported, lines])
        else:
            external.append([importer, imported.split(".")[0], lines])
json.dump({"modules": sorted(internal), "edges": edges, "external": external}, sys.stdout)
"""


class GraphBuildError(RuntimeError):
    """The isolated graph build failed."""


def _mirror(discovery: dict[str, Any], shadow: Path) -> tuple[dict[str, str], set[str]]:
    """Lay the analysed modules out under ``shadow``.

    Returns (package name -> its folder in the mirror, placeholder module
    names): files of a package that are not analysed are mirrored as empty
    modules, so imports of them can be recognised and dropped.
    """
    root = Path(discovery["root"])
    roots: dict[str, int] = {}
    dirs: dict[str, str] = {}
    placeholders: set[str] = set()
    # Cheapest first; a mode that fails once (another file system, no
    # permission, Windows, where deleting a hard link may need a chmod of the
    # original) is dropped. Nothing ever writes to the mirrored files.
    modes: list[Callable[[Path, Path], object]] = [os.symlink, shutil.copyfile]
    if os.name != "nt":
        modes.insert(0, os.link)
    for package in discovery["packages"]:
        src = package["source_root"]
        base = shadow / str(roots.setdefault(src, len(roots)))
        dirs[package["name"]] = str(base / package["name"])
        for path in package.get("placeholders", []):
            relative = (root / path).relative_to(src)
            target = base / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.touch()
            parts = relative.with_suffix("").parts
            placeholders.add(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
        for module in package["modules"]:
            original = root / module["path"]
            relative = original.relative_to(src)
            target = base / relative
            if module.get("namespace"):
                # grimp skips folders without __init__.py: give the mirror one.
                target.mkdir(parents=True, exist_ok=True)
                (target / "__init__.py").touch()
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            while True:
                try:
                    modes[0](original, target)
                    break
                except OSError:
                    if len(modes) == 1:
                        raise
                    modes.pop(0)
    return dirs, placeholders


def build_import_graph(
    discovery: dict[str, Any],
    *,
    exclude_type_checking: bool = False,
    timeout: float | None = 600,
) -> dict[str, Any]:
    """Build the import graph of every discovered package.

    All packages are built together, in one child process (imports between
    them are edges, whatever their source roots). Returns
    ``{"modules": [...], "edges": [{"importer", "imported", "lines"}],
    "external": [{"importer", "imported", "lines"}], "paths": {module: file},
    "packages": [...]}`` with ``external`` naming top-level modules outside
    the analysed packages and ``packages`` the modules that are packages.
    """
    shadow = Path(tempfile.mkdtemp(prefix="corral-arch-"))
    try:
        dirs, placeholders = _mirror(discovery, shadow)
        if not dirs:
            return {"modules": [], "edges": [], "external": [], "paths": {}, "packages": []}
        args = {"dirs": dirs, "exclude_type_checking": exclude_type_checking}
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
        proc = subprocess.run(
            [sys.executable, "-I", "-c", _CHILD, json.dumps(args)],
            capture_output=True,
            encoding="utf-8",
            errors="replace",
            cwd=shadow,
            env=env,
            timeout=timeout,
            check=False,
        )
    finally:
        # Plain removal: never a chmod, which on a hard link would change the original.
        shutil.rmtree(shadow, ignore_errors=True)
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-1:] or ["(no output)"]
        raise GraphBuildError(f"import graph build failed for {', '.join(sorted(dirs))}: {tail[0]}")
    data = json.loads(proc.stdout)
    modules = set(data["modules"]) - placeholders
    edges = [
        {"importer": a, "imported": b, "lines": ln}
        for a, b, ln in data["edges"]
        if a in modules and b in modules
    ]
    external = [
        {"importer": a, "imported": b, "lines": ln} for a, b, ln in data["external"] if a in modules
    ]
    edges.sort(key=lambda e: (e["importer"], e["imported"]))
    external.sort(key=lambda e: (e["importer"], e["imported"]))
    known = {m["name"]: m for p in discovery["packages"] for m in p["modules"]}
    return {
        "modules": sorted(modules),
        "edges": edges,
        "external": external,
        # What later steps need of the discovery, so they can depend on the
        # graph alone (and stay cached when only a file's body changed).
        "paths": {m: known[m]["path"] for m in sorted(modules) if m in known},
        "packages": sorted(m for m in modules if m in known and known[m]["is_package"]),
    }
