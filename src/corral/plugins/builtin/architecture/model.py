"""What the analysis steps hand each other, as msgspec Structs: the scan of
the files (:class:`Discovery`), the project's :class:`Settings`, and the
import graph (:class:`ImportGraph`) the ``graph`` step builds and the
``section`` step reads. Typed once where they are built
(or decoded from the step cache), read by attribute everywhere after; JSON
data given by a caller (a test, an embedder) is decoded once by ``of``.
The report the ``section`` and ``report`` steps make stays JSON data: it is
the product, read by people and other tools.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import msgspec

__all__ = [
    "Discovery",
    "Edge",
    "ImportGraph",
    "NotAnalysed",
    "Settings",
    "SourceModule",
    "SourcePackage",
    "Unresolved",
    "edges_of",
]


class Edge(msgspec.Struct):
    """``importer`` imports ``imported`` on ``lines`` (an external edge's
    ``imported`` is a top-level name outside the analysed packages)."""

    importer: str
    imported: str
    lines: list[int] = msgspec.field(default_factory=list)


class Unresolved(msgspec.Struct):
    """An import of a module that is not in the tree (listed, never an edge)."""

    importer: str
    path: str
    line: int
    name: str


class NotAnalysed(msgspec.Struct):
    """A file the import parser could not read, and why."""

    path: str
    reason: str


class SourceModule(msgspec.Struct):
    """A module found by the scan: its dotted ``name`` and ``path`` (its file,
    relative to the root; a namespace package's folder). ``namespace``: a
    package without a usable ``__init__.py`` (no file, no imports, no
    ``digest``); ``plain`` false for a file not in plain UTF-8. ``loc``,
    ``classes`` and ``abstract_classes`` are filled in by the merge with the
    facts step's output."""

    name: str
    path: str
    is_package: bool = False
    namespace: bool = False
    digest: str = ""
    plain: bool = True
    loc: int = 0
    classes: int = 0
    abstract_classes: int = 0


class SourcePackage(msgspec.Struct):
    """A top-level package: ``source_root`` is the folder it is imported from
    (absolute), ``path`` its own folder (relative to the root). Files of it
    that are not analysed keep their place as ``placeholders`` (imports of
    them are dropped, not turned into imports of the package above)."""

    name: str
    source_root: str
    path: str
    modules: list[SourceModule] = msgspec.field(default_factory=list)
    namespace_dirs: list[str] = msgspec.field(default_factory=list)
    placeholders: list[str] = msgspec.field(default_factory=list)


class Discovery(msgspec.Struct):
    """The packages under ``root`` (absolute) and every file not analysed,
    with its reason: what the ``scan`` step finds (and, merged with the
    facts and the graph, what the report's sections describe)."""

    root: str
    packages: list[SourcePackage] = msgspec.field(default_factory=list)
    not_analysed: list[NotAnalysed] = msgspec.field(default_factory=list)

    def modules(self) -> Iterator[SourceModule]:
        """Every module of every package."""
        for package in self.packages:
            yield from package.modules

    @classmethod
    def of(cls, discovery: Discovery | Mapping[str, Any]) -> Discovery:
        """``discovery`` itself, or the discovery JSON data describes."""
        if isinstance(discovery, Discovery):
            return discovery
        return msgspec.convert(discovery, cls)


class Settings(msgspec.Struct):
    """One project's effective options: those given, joined with its
    ``[tool.corral.architecture]`` ones."""

    exclude: list[str] = msgspec.field(default_factory=list)
    exclude_tests: bool = False
    exclude_type_checking: bool = False
    fail_on: list[str] = msgspec.field(default_factory=list)


class ImportGraph(msgspec.Struct):
    """The modules, the imports between them and to the outside, and what the
    later steps need of the discovery (``paths``, ``packages``), so they can
    depend on the graph alone. ``packages is None``: a bare graph whose
    packages are not known (a module is then a package when another lives
    under it)."""

    modules: list[str] = msgspec.field(default_factory=list)
    edges: list[Edge] = msgspec.field(default_factory=list)
    external: list[Edge] = msgspec.field(default_factory=list)
    unresolved: list[Unresolved] = msgspec.field(default_factory=list)
    not_analysed: list[NotAnalysed] = msgspec.field(default_factory=list)
    paths: dict[str, str] = msgspec.field(default_factory=dict)
    packages: list[str] | None = None

    @classmethod
    def of(cls, graph: ImportGraph | Mapping[str, Any]) -> ImportGraph:
        """``graph`` itself, or the graph JSON data describes."""
        if isinstance(graph, ImportGraph):
            return graph
        return msgspec.convert(graph, cls)


def edges_of(edges: list[Edge] | list[Mapping[str, Any]] | None) -> list[Edge]:
    """Edges, decoded when given as JSON data."""
    if not edges:
        return []
    if isinstance(edges[0], Edge):
        return edges
    return msgspec.convert(edges, list[Edge])
