"""What the analysis steps hand each other, as msgspec Structs: the import
graph (:class:`ImportGraph`) the ``graph`` step builds and the ``section``
step reads. Typed once where the graph is built (or decoded from the step
cache), read by attribute everywhere after; JSON data given by a caller
(a test, an embedder) is decoded once by :meth:`ImportGraph.of`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

__all__ = ["Edge", "ImportGraph", "NotAnalysed", "Unresolved", "edges_of"]


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
