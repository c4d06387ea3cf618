"""The import graph, built by grimp in an isolated subprocess.

The analysed code is never imported or executed: grimp parses the files. The
graph is built in a child interpreter (``python -I``) whose ``sys.path``
starts with a *shadow tree*: a temporary directory mirroring the discovered
modules (hard links, which cost ~15 µs each where a symbolic link costs
~0.5 ms on some file systems; symbolic links across file systems; copies as a
last resort). So

- a target package that shares its name with one installed in, or imported
  by, corral's process is read from the target tree, never from elsewhere;
- files that discovery left out (excluded, tests, syntax errors, too large)
  are invisible to grimp and cannot break the build;
- namespace sub-folders (no ``__init__.py``) get an empty one in the mirror,
  so grimp analyses them as packages instead of skipping them.

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
import importlib.util, json, os, sys
args = json.loads(sys.argv[1])
sys.path.insert(0, args["root"])
for name in args["packages"]:
    spec = importlib.util.find_spec(name)
    origin = os.path.realpath(os.path.dirname(spec.origin)) if spec and spec.origin else None
    want = os.path.realpath(os.path.join(args["root"], name))
    if origin != want:
        sys.exit(f"package {name!r} resolves to {origin}, not the analysed tree {want}")
import grimp
graph = grimp.build_graph(
    *args["packages"],
    include_external_packages=True,
    exclude_type_checking_imports=args["exclude_type_checking"],
    cache_dir=None,
)
internal = set()
for name in args["packages"]:
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


def _mirror(discovery: dict[str, Any], shadow: Path) -> dict[str, list[str]]:
    """Lay the analysed modules out under ``shadow``; return packages per source root."""
    root = Path(discovery["root"])
    by_root: dict[str, list[str]] = {}
    # Cheapest first; a mode that fails once (another file system, no
    # permission) is dropped. Nothing ever writes to the mirrored files.
    modes: list[Callable[[Path, Path], object]] = [os.link, os.symlink, shutil.copyfile]
    for package in discovery["packages"]:
        src = package["source_root"]
        index = len(by_root) if src not in by_root else list(by_root).index(src)
        by_root.setdefault(src, []).append(package["name"])
        base = shadow / str(index)
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
    return by_root


def build_import_graph(
    discovery: dict[str, Any],
    *,
    exclude_type_checking: bool = False,
    timeout: float | None = 600,
) -> dict[str, Any]:
    """Build the import graph of every discovered package.

    Packages sharing a source root are built together (imports between them
    are edges); each source root gets its own child process. Returns
    ``{"modules": [...], "edges": [{"importer", "imported", "lines"}],
    "external": [{"importer", "imported", "lines"}], "paths": {module: file},
    "packages": [...]}`` with ``external`` naming top-level modules outside
    the analysed packages and ``packages`` the modules that are packages.
    """
    modules: set[str] = set()
    edges: list[dict[str, Any]] = []
    external: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="corral-arch-") as tmp:
        shadow = Path(tmp)
        by_root = _mirror(discovery, shadow)
        for index, names in enumerate(by_root.values()):
            names = sorted(set(names))
            args = {
                "root": str(shadow / str(index)),
                "packages": names,
                "exclude_type_checking": exclude_type_checking,
            }
            env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
            proc = subprocess.run(
                [sys.executable, "-I", "-c", _CHILD, json.dumps(args)],
                capture_output=True,
                text=True,
                cwd=tmp,
                env=env,
                timeout=timeout,
                check=False,
            )
            if proc.returncode != 0:
                tail = proc.stderr.strip().splitlines()[-1:] or ["(no output)"]
                raise GraphBuildError(
                    f"import graph build failed for {', '.join(names)}: {tail[0]}"
                )
            data = json.loads(proc.stdout)
            modules.update(data["modules"])
            edges += [{"importer": a, "imported": b, "lines": ln} for a, b, ln in data["edges"]]
            external += [
                {"importer": a, "imported": b, "lines": ln} for a, b, ln in data["external"]
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
