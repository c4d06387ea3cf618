"""The import graph, from grimp's import scanner, one bad file at a time.

The analysed code is never imported or executed. grimp's Rust scanner
(the parser of ruff, which knows every syntax up to Python 3.14, whatever
interpreter runs corral) reads each module's text from an in-memory file
system filled by :mod:`._child`, in a throwaway process (``python -I``, an
empty working directory, see :mod:`.isolation`): grimp is told which
modules exist and where each package is, nothing is put on ``sys.path``, so
no module of the analysed tree can be imported, whatever its name. A file
that grimp rejects (a syntax error), panics on (a relative import two levels
above its top package) or crashes on (deep nesting) is found and listed;
every other file still counts.

Edges follow grimp's rules: ``import a.b.c`` is an edge to ``a.b.c`` only,
``from pkg import sub`` to ``pkg.sub``, ``from pkg import name`` to ``pkg``,
imports in functions and ``try`` blocks count, ``if TYPE_CHECKING:`` imports
count unless excluded, self-imports are not edges. Two corrections:

- **Unresolved imports.** grimp maps an import of a module missing from the
  tree (``import pkg.generated`` of a module written at build time, a
  Cython ``.pyx``, a module a test writes) to the nearest package above it,
  an edge that does not exist. Each import line grimp reports is read again
  (:func:`._child.raw_imports`); a name whose top package is analysed but
  that is no module of the tree is listed as *unresolved* with its file and
  line, and makes no edge.
- **Files not analysed** (excluded, too large, unreadable, a syntax error)
  stay in the module set as placeholders, so imports of them are dropped
  instead of becoming imports of the package above.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from corral.plugins.builtin.architecture.isolation import ChildFailed, run_isolated
from corral.plugins.builtin.architecture.model import (
    Discovery,
    Edge,
    ImportGraph,
    NotAnalysed,
    SourceModule,
    Unresolved,
)

__all__ = ["GraphBuildError", "absolute_name", "build_import_graph", "placeholder_modules"]


class GraphBuildError(RuntimeError):
    """The isolated graph build failed as a whole (not because of one file)."""


def placeholder_modules(discovery: Discovery) -> dict[str, str]:
    """Module name -> path of each file of a package that is not analysed."""
    root = Path(discovery.root)
    out: dict[str, str] = {}
    for package in discovery.packages:
        src = Path(package.source_root)
        for path in package.placeholders:
            parts = (root / path).relative_to(src).with_suffix("").parts
            out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def absolute_name(raw: str, importer: str, is_package: bool) -> str | None:
    """``raw`` (``..x.y`` or ``a.b``) made absolute from ``importer``, as
    grimp does; ``None`` for a relative import above the top package."""
    dots = len(raw) - len(raw.lstrip("."))
    if dots == 0:
        return raw
    parts = importer.split(".")
    keep = len(parts) - dots + (1 if is_package else 0)
    if keep <= 0:
        return None
    rest = raw[dots:]
    return ".".join(parts[:keep]) + (f".{rest}" if rest else "")


def _virtual_path(module: SourceModule) -> str:
    base = "/" + module.name.replace(".", "/")
    return base + ("/__init__.py" if module.is_package else ".py")


def _syntax_reason(file: Path, line: int | None, text: str) -> str:
    """Python's own message when it agrees on the line, else grimp's line."""
    try:
        ast.parse(file.read_bytes())
    except SyntaxError as exc:
        if exc.lineno == line and exc.msg:
            return f"syntax error: line {line}: {exc.msg}"
    except (OSError, ValueError, RecursionError, MemoryError):
        pass
    snippet = " ".join(text.split())[:80]
    return f"syntax error: line {line}: {snippet}" if snippet else f"syntax error: line {line}"


def _reason(error: dict[str, Any], file: Path) -> str:
    kind = error.get("error")
    message = " ".join(str(error.get("message", "")).split())[:160]
    if kind == "syntax":
        return _syntax_reason(file, error.get("line"), str(error.get("text", "")))
    if kind == "unreadable":
        return f"unreadable: {message}"
    if kind == "panic":
        return f"the import parser failed on this file (grimp: {message})"
    if kind == "timeout":
        return "the import parser took too long on this file"
    return "the import parser crashed on this file (deeply nested code?)"


def build_import_graph(
    discovery: Discovery | Mapping[str, Any],
    *,
    exclude_type_checking: bool = False,
    on_progress: Callable[[int, int], None] | None = None,
    chunk_size: int | None = None,
) -> ImportGraph:
    """Build the import graph of every discovered package.

    All packages are built together (imports between them are edges,
    whatever their source roots). Returns the :class:`ImportGraph`:
    ``external`` names top-level modules outside the analysed packages,
    ``packages`` the modules that are packages, ``not_analysed`` the files
    the import parser could not read.
    """
    discovery = Discovery.of(discovery)
    root = Path(discovery.root)
    known = {m.name: m for m in discovery.modules()}
    placeholders = placeholder_modules(discovery)
    everything = set(known) | set(placeholders)
    tops = {p.name for p in discovery.packages}
    scanned = [m for m in known.values() if not m.namespace]
    if not known:
        return ImportGraph([], [], packages=[])
    shared = {
        "modules": sorted(everything),
        "dirs": {p.name: str(Path(p.source_root) / p.name) for p in discovery.packages},
        "exclude_type_checking": exclude_type_checking,
    }
    items = [[m.name, _virtual_path(m), str(root / m.path), m.plain] for m in scanned]
    if chunk_size is None:
        # About eight chunks: each scan call pays for telling grimp the whole
        # module set, and a crash costs a bisection of one chunk.
        chunk_size = max(64, -(-len(items) // 8))
    not_analysed: list[NotAnalysed] = []
    failed: set[str] = set()
    edge_lines: dict[tuple[str, str], set[int]] = defaultdict(set)
    ext_lines: dict[tuple[str, str], set[int]] = defaultdict(set)
    unresolved: dict[tuple[str, int, str], None] = {}

    def take(index: int, result: dict[str, Any]) -> None:
        """One module's imports, as they arrive from the child."""
        module = scanned[index]
        importer = module.name
        if "error" in result:
            not_analysed.append(NotAnalysed(module.path, _reason(result, root / module.path)))
            failed.add(importer)
            return
        is_package = module.is_package
        statements: dict[int, list[tuple[str, str | None]]] = {}
        for line, found in result["statements"].items():
            resolved = [(kind, absolute_name(raw, importer, is_package)) for kind, raw in found]
            statements[int(line)] = resolved
            for (_, raw), (_, name) in zip(found, resolved, strict=True):
                if name is None:
                    unresolved[(importer, int(line), raw)] = None
                elif name.split(".")[0] in tops and name not in everything:
                    unresolved[(importer, int(line), name)] = None
        for imported, line in result["imports"]:
            if imported == importer:
                continue
            if imported in everything:
                if _legit(imported, statements.get(line), everything):
                    edge_lines[(importer, imported)].add(line)
                # (else: what grimp made of an unresolved import)
            elif imported and imported[0] != "." and imported.split(".")[0] not in tops:
                ext_lines[(importer, imported.split(".")[0])].add(line)

    try:
        run_isolated(
            "imports",
            shared,
            items,
            chunk_size=chunk_size,
            on_progress=on_progress,
            on_result=take,
        )
    except ChildFailed as exc:
        tried = ", ".join(sorted(tops))
        raise GraphBuildError(f"import graph build failed for {tried}: {exc}") from exc
    # A failed package __init__ keeps its package (without imports of its own).
    modules = {n for n in known if n not in failed or known[n].is_package}
    for key in [k for k in edge_lines if k[1] not in modules]:
        del edge_lines[key]  # an import of a module that could not be read
    not_analysed.sort(key=lambda f: f.path)
    return ImportGraph(
        modules=sorted(modules),
        edges=[Edge(a, b, sorted(lines)) for (a, b), lines in sorted(edge_lines.items())],
        external=[Edge(a, b, sorted(lines)) for (a, b), lines in sorted(ext_lines.items())],
        unresolved=[
            Unresolved(a, known[a].path, line, name) for a, line, name in sorted(unresolved)
        ],
        not_analysed=not_analysed,
        # What later steps need of the discovery, so they can depend on the
        # graph alone (and stay cached when only a file's body changed).
        paths={m: known[m].path for m in sorted(modules)},
        packages=sorted(m for m in modules if known[m].is_package),
    )


def _legit(
    imported: str, statements: list[tuple[str, str | None]] | None, everything: set[str]
) -> bool:
    """Whether a statement on the line really imports ``imported``: ``import
    a.b`` only ``a.b``; ``from x import n`` (``x`` a module) ``x`` or ``x.n``.
    A line that could not be read again keeps grimp's answer."""
    if not statements:
        return True
    for kind, name in statements:
        if name is None:
            continue
        if kind == "import":
            if name == imported:
                return True
        elif name in everything and (imported == name or imported.rpartition(".")[0] == name):
            return True
    return False
