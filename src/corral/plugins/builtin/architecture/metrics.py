"""Coupling metrics (Robert C. Martin) per module and per package.

- Ca (afferent coupling, fan-in): distinct analysed modules (packages) that
  import this one; Ce (efferent, fan-out): distinct ones it imports.
  External imports are not counted.
- I = Ce / (Ca + Ce) (instability), 0.0 when Ca + Ce = 0.
- A = abstract classes / classes (abstractness), 0.0 without classes.
- D = |A + I - 1| (distance from the main sequence).

A module's *package* is the package holding it (``a.b`` for ``a.b.c``; a
package's ``__init__`` belongs to the package itself). Package metrics count
edges between distinct packages; LOC and classes sum over the package's own
modules (not its sub-packages).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from corral.plugins.builtin.architecture.model import Discovery, ImportGraph


def package_of(module: str, packages: set[str]) -> str:
    """The package holding ``module`` (itself if it is a package)."""
    if module in packages:
        return module
    return module.rpartition(".")[0] or module


def _row(ca: int, ce: int, classes: int, abstract: int, loc: int) -> dict[str, Any]:
    i = ce / (ca + ce) if ca + ce else 0.0
    a = abstract / classes if classes else 0.0
    return {
        "ca": ca,
        "ce": ce,
        "instability": round(i, 4),
        "abstractness": round(a, 4),
        "distance": round(abs(a + i - 1), 4),
        "loc": loc,
        "classes": classes,
        "abstract_classes": abstract,
    }


def compute_metrics(
    discovery: Discovery | Mapping[str, Any], graph: ImportGraph | Mapping[str, Any]
) -> dict[str, Any]:
    """``{"modules": {name: row}, "packages": {name: row}}``.

    Rows are as in ``_row``; a module row adds ``path`` (its file, relative to
    the root), ``package`` and ``is_package``; a package row adds ``path``
    (its folder) and ``modules`` (how many modules it holds directly).
    """
    graph = ImportGraph.of(graph)
    facts = {m.name: m for m in Discovery.of(discovery).modules()}
    names = set(graph.modules) | set(facts)
    pkg_names = {n for n, m in facts.items() if m.is_package}
    fan_in: dict[str, set[str]] = defaultdict(set)
    fan_out: dict[str, set[str]] = defaultdict(set)
    pin: dict[str, set[str]] = defaultdict(set)
    pout: dict[str, set[str]] = defaultdict(set)
    for edge in graph.edges:
        a, b = edge.importer, edge.imported
        if a == b:
            continue
        fan_out[a].add(b)
        fan_in[b].add(a)
        pa, pb = package_of(a, pkg_names), package_of(b, pkg_names)
        if pa != pb:
            pout[pa].add(pb)
            pin[pb].add(pa)
    modules: dict[str, Any] = {}
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for name in sorted(names):
        f = facts.get(name)
        classes, abstract, loc = (f.classes, f.abstract_classes, f.loc) if f else (0, 0, 0)
        package = package_of(name, pkg_names)
        modules[name] = {
            "path": f.path if f else None,
            "package": package,
            "is_package": name in pkg_names,
            **_row(len(fan_in[name]), len(fan_out[name]), classes, abstract, loc),
        }
        t = totals[package]
        t[0] += classes
        t[1] += abstract
        t[2] += loc
        t[3] += 1
    packages = {}
    for p in sorted(set(totals) | pkg_names):
        classes, abstract, loc, count = totals[p]
        known = facts.get(p)
        path = known.path if known else None
        if path is not None and path.endswith("__init__.py"):
            path = path.rpartition("/")[0] or "."
        packages[p] = {
            "path": path,
            "modules": count,
            **_row(len(pin[p]), len(pout[p]), classes, abstract, loc),
        }
    return {"modules": modules, "packages": packages}
