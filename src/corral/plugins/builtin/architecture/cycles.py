"""Import cycles: strongly connected components of size > 1 (iterative Tarjan)."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from corral.plugins.builtin.architecture.metrics import package_of


def strongly_connected_components(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """Tarjan's algorithm without recursion; each component sorted, list sorted."""
    succ = {n: sorted(set(v)) for n, v in graph.items()}
    for targets in list(succ.values()):
        for t in targets:
            succ.setdefault(t, [])
    return sorted(components_sinks_first(succ, sorted(succ)))


def components_sinks_first(succ: Mapping[str, list[str]], roots: Iterable[str]) -> list[list[str]]:
    """Tarjan's algorithm without recursion, from ``roots`` in their order.

    ``succ`` must hold every node. Components (each sorted) come out in
    Tarjan's emission order, which is reverse topological: a component comes
    after every component it imports (what a layered drawing needs).
    """
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    result: list[list[str]] = []
    for start in roots:
        if start in index:
            continue
        work: list[tuple[str, int]] = [(start, 0)]
        while work:
            node, i = work.pop()
            if i == 0:
                index[node] = low[node] = len(index)
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
    return result


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


def feedback_edges(
    graph: Mapping[str, Iterable[str]],
    members: list[str],
    weight: Callable[[str, str], int],
) -> list[tuple[str, str]]:
    """Edges to cut so that the component ``members`` has no cycle left.

    Greedy Eades-Lin-Smyth ordering on the weighted sub-graph (weight: how
    many import lines an edge stands for, so light edges are cut first), the
    edges pointing backwards in that order are the cut; then every cut edge
    that can be put back without closing a cycle is put back (heaviest
    first), so the result is minimal though not always minimum (that problem
    is NP-hard).
    """
    inside = set(members)
    succ = {n: {t for t in graph.get(n, ()) if t in inside and t != n} for n in members}
    pred: dict[str, set[str]] = {n: set() for n in members}
    for a, targets in succ.items():
        for b in targets:
            pred[b].add(a)
    out_w = {n: sum(weight(n, t) for t in succ[n]) for n in members}
    in_w = {n: sum(weight(s, n) for s in pred[n]) for n in members}
    remaining = set(members)
    left: list[str] = []
    right: list[str] = []

    def remove(node: str) -> None:
        remaining.discard(node)
        for t in succ[node]:
            if t in remaining:
                in_w[t] -= weight(node, t)
        for s in pred[node]:
            if s in remaining:
                out_w[s] -= weight(s, node)

    while remaining:
        changed = True
        while changed:
            changed = False
            for node in sorted(remaining):
                if not any(t in remaining for t in succ[node]):
                    right.append(node)
                    remove(node)
                    changed = True
                elif not any(s in remaining for s in pred[node]):
                    left.append(node)
                    remove(node)
                    changed = True
        if remaining:
            best = max(sorted(remaining), key=lambda n: out_w[n] - in_w[n])
            left.append(best)
            remove(best)
    position = {n: i for i, n in enumerate(left + right[::-1])}
    cut = sorted(
        ((a, b) for a in members for b in succ[a] if position[a] > position[b]),
        key=lambda e: (-weight(*e), e),
    )
    kept = {a: {b for b in succ[a] if position[a] < position[b]} for a in members}

    def reaches(start: str, goal: str) -> bool:
        seen, todo = {start}, [start]
        while todo:
            node = todo.pop()
            if node == goal:
                return True
            for nxt in kept[node]:
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return False

    final = []
    for a, b in cut:  # heaviest first: the most worth keeping
        if reaches(b, a):
            final.append((a, b))
        else:
            kept[a].add(b)
    return sorted(final, key=lambda e: (weight(*e), e))


def _cycles(
    graph: dict[str, set[str]],
    weight: Callable[[str, str], int],
    describe: Callable[[str, str], dict[str, Any]],
) -> list[dict[str, Any]]:
    cycles: list[dict[str, Any]] = []
    for comp in strongly_connected_components(graph):
        if len(comp) < 2:
            continue
        cut = [describe(a, b) for a, b in feedback_edges(graph, comp, weight)]
        cycles.append(
            {
                "members": comp,
                "size": len(comp),
                "example": shortest_cycle(graph, comp),
                "cut": cut,
            }
        )
    # The biggest tangles first: they are where to start.
    cycles.sort(key=lambda c: (-c["size"], c["members"]))
    return cycles


def find_cycles(graph: dict[str, Any], discovery: dict[str, Any] | None = None) -> dict[str, Any]:
    """``{"modules": [...], "packages": [...]}``, biggest first. Each cycle has
    ``members``, ``size``, an ``example`` (a shortest cycle, first node
    repeated last) and ``cut``: edges whose removal breaks every cycle of the
    component (``importer``, ``imported``, ``lines``, ``path`` of the
    importer; package cuts add ``via``, the module imports behind them)."""
    modules: dict[str, set[str]] = {m: set() for m in graph["modules"]}
    lines: dict[tuple[str, str], list[int]] = {}
    for e in graph["edges"]:
        if e["importer"] != e["imported"]:
            modules.setdefault(e["importer"], set()).add(e["imported"])
            lines[e["importer"], e["imported"]] = list(e.get("lines", []))
    names = set(modules)
    paths: dict[str, str] = {}
    if discovery is not None:
        known = [m for p in discovery["packages"] for m in p["modules"]]
        pkgs = {m["name"] for m in known if m["is_package"]}
        paths = {m["name"]: m["path"] for m in known}
    elif "packages" in graph:  # a graph from build_import_graph knows both
        pkgs, paths = set(graph["packages"]), dict(graph["paths"])
    else:  # a bare graph: a module is a package if another lives under it
        pkgs = {n.rpartition(".")[0] for n in names if "." in n} & names
    packages: dict[str, set[str]] = {}
    via: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for a, targets in modules.items():
        pa = package_of(a, pkgs)
        packages.setdefault(pa, set())
        for b in targets:
            pb = package_of(b, pkgs)
            if pa != pb:
                packages[pa].add(pb)
                via.setdefault((pa, pb), []).append((a, b))

    def module_edge(a: str, b: str) -> dict[str, Any]:
        return {"importer": a, "imported": b, "lines": lines.get((a, b), []), "path": paths.get(a)}

    def package_edge(a: str, b: str) -> dict[str, Any]:
        return {
            "importer": a,
            "imported": b,
            "lines": [],
            "path": paths.get(a),
            "via": [module_edge(x, y) for x, y in sorted(via[a, b])],
        }

    package_cycles = _cycles(packages, lambda a, b: len(via[a, b]), package_edge)
    # Module edges behind a package cut are cut first: one story at both levels.
    preferred = {
        (v["importer"], v["imported"]) for c in package_cycles for p in c["cut"] for v in p["via"]
    }

    def module_weight(a: str, b: str) -> int:
        return 2 * max(1, len(lines.get((a, b), []))) - ((a, b) in preferred)

    return {"modules": _cycles(modules, module_weight, module_edge), "packages": package_cycles}
