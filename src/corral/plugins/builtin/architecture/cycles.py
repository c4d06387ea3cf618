"""Import cycles: strongly connected components of size > 1 (iterative Tarjan)."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any

from corral.plugins.builtin.architecture.metrics import package_of


def strongly_connected_components(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """Tarjan's algorithm without recursion; each component sorted, list sorted."""
    succ = {n: sorted(set(v)) for n, v in graph.items()}
    for targets in list(succ.values()):
        for t in targets:
            succ.setdefault(t, [])
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    result: list[list[str]] = []
    counter = 0
    for start in sorted(succ):
        if start in index:
            continue
        work: list[tuple[str, int]] = [(start, 0)]
        while work:
            node, i = work.pop()
            if i == 0:
                index[node] = low[node] = counter
                counter += 1
                stack.append(node)
                on_stack.add(node)
            targets = succ[node]
            if i < len(targets):
                work.append((node, i + 1))
                nxt = targets[i]
                if nxt not in index:
                    work.append((nxt, 0))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            if low[node] == index[node]:
                comp: list[str] = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == node:
                        break
                result.append(sorted(comp))
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return sorted(result)


def shortest_cycle(graph: Mapping[str, Iterable[str]], members: list[str]) -> list[str]:
    """A shortest cycle through ``members[0]`` inside the component (BFS).

    Returned as ``[a, b, ..., a]``.
    """
    inside = set(members)
    start = members[0]
    parent: dict[str, str] = {}
    queue = deque([start])
    seen = {start}
    while queue:
        node = queue.popleft()
        for nxt in sorted(graph.get(node, ())):
            if nxt not in inside:
                continue
            if nxt == start:
                path = [node]
                while path[-1] != start:
                    path.append(parent[path[-1]])
                return [*reversed(path), start]
            if nxt not in seen:
                seen.add(nxt)
                parent[nxt] = node
                queue.append(nxt)
    return [start, start]


def _cycles(graph: dict[str, set[str]]) -> list[dict[str, Any]]:
    return [
        {"members": comp, "size": len(comp), "example": shortest_cycle(graph, comp)}
        for comp in strongly_connected_components(graph)
        if len(comp) > 1
    ]


def find_cycles(graph: dict[str, Any], discovery: dict[str, Any] | None = None) -> dict[str, Any]:
    """``{"modules": [...], "packages": [...]}``: each cycle has ``members``,
    ``size`` and an ``example`` (a shortest cycle, first node repeated last)."""
    modules: dict[str, set[str]] = {m: set() for m in graph["modules"]}
    for e in graph["edges"]:
        if e["importer"] != e["imported"]:
            modules.setdefault(e["importer"], set()).add(e["imported"])
    names = set(modules)
    if discovery is not None:
        pkgs = {m["name"] for p in discovery["packages"] for m in p["modules"] if m["is_package"]}
    else:  # without discovery: a module is a package if another lives under it
        pkgs = {n.rpartition(".")[0] for n in names if "." in n} & names
    packages: dict[str, set[str]] = {}
    for a, targets in modules.items():
        pa = package_of(a, pkgs)
        packages.setdefault(pa, set())
        for b in targets:
            pb = package_of(b, pkgs)
            if pa != pb:
                packages[pa].add(pb)
    return {"modules": _cycles(modules), "packages": _cycles(packages)}
