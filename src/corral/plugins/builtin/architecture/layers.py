"""Architecture contracts (layers, independence, forbidden), checked (pure).

:func:`check_architecture`, given the declared configuration
(:func:`.contracts.load_config`, or ``None``), the module import graph and
the external imports, returns the ``LAYERS`` object of the architecture
report. Without a configuration it first asks :func:`.styles.detect_style`
for the contracts implied by the package names (or by the direction of the
imports) and checks those the same way, so declared and detected
architectures are reported identically.

Semantics follow import-linter's where it has them:

- A module belongs to a member ``x.y`` when its name is ``x.y`` or starts with
  ``x.y.``; when several members of one contract match, the longest wins.
- *layers*: a module in a lower layer may not import a higher layer, directly
  or through a chain of imports. Siblings written ``a | b`` share a layer and
  may not import each other either; siblings written ``a : b`` may.
  ``containers`` repeat the layers under each container; each container is
  checked on its own (``foo.low`` may import ``bar.high``).
- *independence*: no chain between any two members, either way.
- *forbidden*: no chain from a source member to a forbidden member
  (direct edges only with ``allow_indirect_imports``); pairs where one member
  contains the other are skipped. A forbidden name that is an external
  top-level package is matched against the external imports, and chains that
  reach it through the project's own modules count too.
- ``ignore_imports`` (``importer -> imported``, ``*`` standing for one name
  segment and ``**`` for one or more) removes edges before checking, for that
  contract only.

Indirect chains may only pass through modules that belong to *no* member of
the contract (in that container): a chain that enters another member is
reported where it enters it instead. So every broken contract is still
reported, each violation points at the import to change, and the search is
one breadth-first search per target member, linear in the graph size, instead
of one per pair of modules.

What is counted (``violation_count``, exact, never capped):

- every distinct direct import edge ``importer -> imported`` that breaks the
  contract (after ``ignore_imports``), plus
- when indirect imports are checked, one indirect violation per
  (importer module, target member) that has a chain but no direct edge into
  that member, with the shortest chain (ties broken by name) as its example.

Only the listed ``violations`` are capped (``max_violations`` per contract,
direct ones first, then by name); ``truncated`` says when some were left out.
Each contract also carries a ``detail`` sentence (what was checked, declared
names no module matches, or that an import-linter contract type is not
checked), and ``modules`` lists the members actually checked (wildcards
resolved): the independent modules, or a forbidden contract's sources.

Declared names that match no module (a name matches when it is a module or a
prefix of one; an expression when it matches a module), as import-linter,
which refuses to check such contracts:

- *required* names: a layers contract's containers and its non-optional
  layers (in each container that matches), an independence contract's
  modules, a forbidden contract's sources. Forbidden modules are not required
  (an external package nobody imports is not in the graph). A missing
  required name breaks the contract (``kept`` false) even without violations;
  the rest of the contract is still checked.
- a contract with *no* matching member at all (no layer module in any
  matching container, no independent module, no source) is not checked:
  ``kept`` false, no violations, and the detail says ``no module matches:``
  followed by every declared name that matches nothing (optional layers
  included).

``kept`` is ``True``/``False`` for checked contracts and ``None`` for
contract types corral does not check (``protected``, ``acyclic_siblings``,
custom ones); those count as neither kept nor broken, and add no violations.
The top-level ``problems`` lists, one sentence each and in contract order, the
contracts with a required name matching nothing (``"<name>: no module
matches: <names>; the other members were checked"``) or matching nothing at
all (``"...; nothing was checked"``).

``checked_edges`` counts the distinct import edges (over all contracts, after
each contract's ``ignore_imports``) that a contract checks directly:

- module edges whose two ends fall in different members of one contract
  scope, whether they break the contract or not;
- edges into an external package whose importer is in a member that may not
  import the package's member: in practice a forbidden contract's source
  importing an external top-level name listed in ``forbidden``. Allowed
  external imports are not counted, so each of these edges is violating.

``conformance`` is one minus the share of those edges that are direct
violations (internal or external), rounded to 4 places, ``None`` when no edge
is checked. Indirect violations are counted in ``violations`` but not in
``conformance``, since no single checked edge carries them.

Over 600 lines with a reason: a seventh of it is this specification, and the
rest is one algorithm (scopes, memberships, one search per target member)
whose pieces mean little apart; reading the configuration lives in
:mod:`.contracts`, detecting a style in :mod:`.styles`.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec

from corral.plugins.builtin.architecture.contracts import (
    ArchitectureConfig,
    Contract,
    ForbiddenContract,
    IndependenceContract,
    LayersContract,
    UncheckedContract,
)
from corral.plugins.builtin.architecture.model import Edge, ImportGraph, edges_of
from corral.plugins.builtin.architecture.styles import detect_style

__all__ = ["DEFAULT_MAX_VIOLATIONS", "check_architecture"]

DEFAULT_MAX_VIOLATIONS = 50

_Data = dict[str, Any]

# --------------------------------------------------------------------------
# Checking (pure)
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Unit:
    """One member of a contract scope: a layer, a sibling, an independent
    module, a source or a forbidden module."""

    name: str
    layer: int = 0
    exact: bool = False  # import-linter's as_packages = False


@dataclass
class _Scope:
    """Units checked together; ``rules[t]`` are the units that may not reach
    unit ``t``. Chains only pass through modules outside every unit."""

    units: list[_Unit]
    rules: dict[int, set[int]]
    indirect: bool


class _Graph:
    """The module graph as adjacency lists, external top-level names added as
    sink nodes so forbidden external packages are checked like modules."""

    def __init__(
        self,
        graph: ImportGraph,
        modules: Mapping[str, Mapping[str, Any]],
        external: Sequence[Edge],
    ) -> None:
        internal: set[str] = set(graph.modules) | set(modules)
        self.lines: dict[tuple[str, str], list[int]] = {}
        succ: dict[str, set[str]] = {}
        for e in graph.edges:
            a, b = e.importer, e.imported
            internal.update((a, b))
            if a != b:
                succ.setdefault(a, set()).add(b)
                self.lines[(a, b)] = sorted(e.lines)
        self.internal = internal
        self.external: set[str] = set()
        for e in external:
            a, b = e.importer, e.imported
            if b in internal:
                continue
            self.external.add(b)
            succ.setdefault(a, set()).add(b)
            known = self.lines.setdefault((a, b), [])
            known.extend(e.lines)
            known.sort()
        self.succ: dict[str, list[str]] = {a: sorted(bs) for a, bs in succ.items()}
        pred: dict[str, list[str]] = {}
        for a in sorted(self.succ):
            for b in self.succ[a]:
                pred.setdefault(b, []).append(a)
        self.pred = pred
        self.nodes = sorted(internal | self.external)
        self.modules = sorted(internal)  # what wildcard expressions resolve against
        self.path: dict[str, Any] = {m: info.get("path") for m, info in modules.items()}

    def line(self, a: str, b: str) -> int | None:
        lines = self.lines.get((a, b))
        return lines[0] if lines else None


def _expression(pattern: str) -> re.Pattern[str]:
    parts = []
    for segment in pattern.split("."):
        if segment == "*":
            parts.append(r"[^.]+")
        elif segment == "**":
            parts.append(r"[^.]+(?:\.[^.]+)*")
        else:
            parts.append(re.escape(segment))
    return re.compile(r"\.".join(parts) + r"\Z")


def _resolve(names: Iterable[str], nodes: Sequence[str]) -> list[str]:
    """Expand wildcard expressions against the graph's modules (sorted,
    unique); plain names are kept as given, present or not."""
    out: set[str] = set()
    for name in names:
        if "*" in name:
            rx = _expression(name)
            out.update(n for n in nodes if rx.match(n))
        else:
            out.add(name)
    return sorted(out)


def _ignored(g: _Graph, pairs: Sequence[Sequence[str]]) -> set[tuple[str, str]]:
    if not pairs:
        return set()
    plain = {(a, b) for a, b in pairs if "*" not in a and "*" not in b}
    wild = [(_expression(a), _expression(b)) for a, b in pairs if "*" in a or "*" in b]
    out = {p for p in plain if p in g.lines}
    if wild:
        for edge in g.lines:
            if any(ra.match(edge[0]) and rb.match(edge[1]) for ra, rb in wild):
                out.add(edge)
    return out


def _membership(units: Sequence[_Unit], nodes: Iterable[str]) -> dict[str, int]:
    """Module -> index of the unit it belongs to (longest matching name)."""
    prefix = {u.name: i for i, u in enumerate(units) if not u.exact}
    exact = {u.name: i for i, u in enumerate(units) if u.exact}
    out: dict[str, int] = {}
    for node in nodes:
        if node in exact:
            out[node] = exact[node]
            continue
        name = node
        while True:
            if name in prefix:
                out[node] = prefix[name]
                break
            name, dot, _ = name.rpartition(".")
            if not dot:
                break
    return out


@dataclass
class _Found:
    """Violations of one contract before they are listed."""

    direct: dict[tuple[str, str], tuple[str, str]]  # edge -> (importer unit, imported unit)
    # (importer, target unit name) -> (distance, first hop, scope id)
    indirect: dict[tuple[str, str], tuple[int, str, int]]


class _ScopeRun:
    """Checks one scope; keeps what chain reconstruction needs."""

    def __init__(self, g: _Graph, scope: _Scope, ignored: set[tuple[str, str]]) -> None:
        self.g = g
        self.scope = scope
        self.ignored = ignored
        self.unit_of = _membership(scope.units, g.nodes)
        self.members: dict[int, list[str]] = {}
        for node in g.nodes:
            u = self.unit_of.get(node)
            if u is not None:
                self.members.setdefault(u, []).append(node)
        self.dist: dict[int, dict[str, int]] = {}

    def succ(self, a: str) -> Iterable[str]:
        if not self.ignored:
            return self.g.succ.get(a, ())
        return (b for b in self.g.succ.get(a, ()) if (a, b) not in self.ignored)

    def checked(self, into: set[tuple[str, str]]) -> None:
        """Add the edges this scope checks: module edges between different
        units, and edges into an external package only where the rules forbid
        them (a forbidden contract's source importing a forbidden external)."""
        rules = self.scope.rules
        for a, ua in self.unit_of.items():
            if a in self.g.external:
                continue
            for b in self.succ(a):
                ub = self.unit_of.get(b)
                if ub is None or ub == ua:
                    continue
                if b not in self.g.external or ua in rules.get(ub, ()):
                    into.add((a, b))

    def distances(self, target: int) -> dict[str, int]:
        """Reverse BFS from the target's modules through modules outside every
        unit: hops to the nearest target module."""
        if target in self.dist:
            return self.dist[target]
        dist = {m: 0 for m in self.members.get(target, ())}
        queue = deque(self.members.get(target, ()))
        while queue:
            node = queue.popleft()
            d = dist[node] + 1
            for p in self.g.pred.get(node, ()):
                if p in dist or p in self.unit_of or (p, node) in self.ignored:
                    continue
                dist[p] = d
                queue.append(p)
        self.dist[target] = dist
        return dist

    def run(self, found: _Found, scope_id: int) -> None:
        units = self.scope.units
        for target in sorted(self.scope.rules):
            dist = self.distances(target) if self.scope.indirect else {}
            for source in sorted(self.scope.rules[target]):
                for m in self.members.get(source, ()):
                    if m in self.g.external:
                        continue
                    best: tuple[int, str] | None = None
                    hit = False
                    for b in self.succ(m):
                        ub = self.unit_of.get(b)
                        if ub == target:
                            hit = True
                            found.direct[(m, b)] = (units[source].name, units[target].name)
                        elif ub is None and b in dist and (best is None or dist[b] < best[0]):
                            best = (dist[b], b)  # successors are sorted: first wins ties
                    if not hit and best is not None:
                        key = (m, units[target].name)
                        old = found.indirect.get(key)
                        if old is None or (best[0] + 1, best[1]) < old[:2]:
                            found.indirect[key] = (best[0] + 1, best[1], scope_id)

    def chain(self, start: str, first: str, target_name: str) -> list[str]:
        target = next(i for i, u in enumerate(self.scope.units) if u.name == target_name)
        dist = self.distances(target)
        chain = [start, first]
        node = first
        while self.unit_of.get(node) != target:
            want = dist[node] - 1
            node = next(z for z in self.succ(node) if dist.get(z) == want)
            chain.append(node)
        return chain


@dataclass
class _Plan:
    """How one contract is checked (see :func:`_scopes`)."""

    scopes: list[_Scope] = field(default_factory=list)
    detail: str = ""
    modules: list[str] | None = None  # the report's ``modules``
    # declared names matching no module: required ones (they break the
    # contract) and all of them, optional layers included (for the detail of
    # a contract that matches nothing at all)
    missing: list[str] = field(default_factory=list)
    unmatched: list[str] = field(default_factory=list)
    matched: bool = False  # whether any member (a forbidden contract: any source) matches


def _layer_scopes(contract: LayersContract, nodes: Sequence[str]) -> _Plan:
    """One scope per container that matches a module (or one scope without
    containers), with the names that match nothing."""
    declared = list(contract.containers)
    layers = contract.layers
    independent = contract.independent or [True] * len(layers)
    optional = set(contract.optional)
    node_set = set(nodes)
    plan = _Plan()
    if declared:
        plan.unmatched = _unmatched(declared, node_set, nodes)
        plan.missing = list(plan.unmatched)
        containers = [c for c in _resolve(declared, nodes) if _present(c, node_set, nodes)]
    else:
        containers = [""]
    for container in containers:
        units: list[_Unit] = []
        for index, names in enumerate(layers):
            for name in names:
                full = f"{container}.{name}" if container else name
                units.append(_Unit(full, index))
                if _present(full, node_set, nodes):
                    plan.matched = True
                else:
                    plan.unmatched.append(full)
                    if name not in optional:
                        plan.missing.append(full)
        rules: dict[int, set[int]] = {}
        for t, ut in enumerate(units):
            for s, us in enumerate(units):
                below = us.layer > ut.layer
                siblings = s != t and us.layer == ut.layer and independent[ut.layer]
                if below or siblings:
                    rules.setdefault(t, set()).add(s)
        plan.scopes.append(_Scope(units, rules, indirect=True))
    return plan


def _present(name: str, node_set: set[str], nodes: Sequence[str]) -> bool:
    if name in node_set:
        return True
    prefix = name + "."
    return any(n.startswith(prefix) for n in nodes)


def _unmatched(names: Iterable[str], node_set: set[str], nodes: Sequence[str]) -> list[str]:
    """The declared names (or wildcard expressions) that match no module."""
    out: list[str] = []
    for name in names:
        if "*" in name:
            rx = _expression(name)
            if not any(rx.match(n) for n in nodes):
                out.append(name)
        elif not _present(name, node_set, nodes):
            out.append(name)
    return out


def _overlap(a: str, b: str) -> bool:
    return a == b or a.startswith(b + ".") or b.startswith(a + ".")


def _scopes(
    contract: LayersContract | IndependenceContract | ForbiddenContract, g: _Graph
) -> _Plan:
    """How a contract is checked: its scopes, a detail sentence, the members
    checked (wildcards resolved) for the report's ``modules``, and the
    declared names that match no module."""
    modules = g.modules
    node_set = set(modules)
    if isinstance(contract, LayersContract):
        plan = _layer_scopes(contract, modules)
        where = f" in containers {', '.join(contract.containers)}" if contract.containers else ""
        plan.detail = f"{len(contract.layers)} layers, top first{where}"
        return plan
    if isinstance(contract, IndependenceContract):
        members = _resolve(contract.modules, modules)
        units = [_Unit(m) for m in members]
        pairs = {t: {s for s in range(len(units)) if s != t} for t in range(len(units))}
        unmatched = _unmatched(contract.modules, node_set, modules)
        return _Plan(
            [_Scope(units, pairs, indirect=True)],
            f"{', '.join(members) or 'no modules'}: none may import another",
            members,
            missing=unmatched,
            unmatched=unmatched,
            matched=any(_present(m, node_set, modules) for m in members),
        )
    exact = not contract.as_packages
    sources = _resolve(contract.source, modules)
    forbidden = _resolve(contract.forbidden, modules)
    names = sorted(set(sources) | set(forbidden))
    index = {n: i for i, n in enumerate(names)}
    units = [_Unit(n, exact=exact) for n in names]
    rules: dict[int, set[int]] = {}
    for f in forbidden:
        for s in sources:
            if not (s == f if exact else _overlap(s, f)):
                rules.setdefault(index[f], set()).add(index[s])
    indirect = not contract.allow_indirect
    unmatched = _unmatched(contract.source, node_set, modules)
    return _Plan(
        [_Scope(units, rules, indirect=indirect)],
        f"{', '.join(sources) or 'no modules'} must not import {', '.join(forbidden)}"
        f"{'' if indirect else ' directly (indirect imports allowed)'}",
        sources,
        missing=unmatched,
        unmatched=unmatched,
        matched=any(_present(m, node_set, modules) for m in sources),
    )


def _check_contract(
    contract: Contract,
    g: _Graph,
    max_violations: int,
    checked: set[tuple[str, str]],
    violating: set[tuple[str, str]],
) -> tuple[_Data, str | None]:
    """One contract's report entry, and the problem to list at the top level
    when some of its declared names match no module."""
    if isinstance(contract, UncheckedContract):
        return {
            "name": contract.name,
            "kind": contract.type,
            "layers": None,
            "modules": None,
            "kept": None,
            "violation_count": 0,
            "truncated": False,
            "violations": [],
            "detail": f"contract type {contract.type!r} is not checked by corral",
        }, None
    base: _Data = {
        "name": contract.name,
        "kind": contract.__struct_config__.tag,
        "layers": [list(n) for n in contract.layers]
        if isinstance(contract, LayersContract)
        else None,
        "modules": None,
    }
    plan = _scopes(contract, g)
    base["modules"] = plan.modules
    if not plan.matched:
        names = ", ".join(plan.unmatched) or "no member declared"
        return {
            **base,
            "kept": False,
            "violation_count": 0,
            "truncated": False,
            "violations": [],
            "detail": f"{plan.detail}; no module matches: {names}",
        }, f"{contract.name}: no module matches: {names}; nothing was checked"
    ignored = _ignored(g, contract.ignore_imports)
    scopes = plan.scopes
    found = _Found({}, {})
    runs: list[_ScopeRun] = []
    for i, scope in enumerate(scopes):
        run = _ScopeRun(g, scope, ignored)
        run.checked(checked)
        run.run(found, i)
        runs.append(run)
    violating.update(found.direct)
    count = len(found.direct) + len(found.indirect)
    rows: list[tuple[bool, str, str, str]] = [(False, a, b, "") for a, b in found.direct]
    rows += [(True, a, t, t) for a, t in found.indirect]
    rows.sort()
    listed: list[_Data] = []
    for indirect, a, b, t in rows[: max(0, max_violations)]:
        if not indirect:
            ua, ub = found.direct[(a, b)]
            chain = [a, b]
        else:
            _dist, first, scope_id = found.indirect[(a, t)]
            chain = runs[scope_id].chain(a, first, t)
            ua = scopes[scope_id].units[runs[scope_id].unit_of[a]].name
            ub = t
        listed.append(
            {
                "importer": a,
                "imported": chain[-1],
                "line": g.line(a, chain[1]),
                "path": g.path.get(a),
                "chain": chain,
                "direct": not indirect,
                "importer_layer": ua,
                "imported_layer": ub,
            }
        )
    detail = plan.detail
    if plan.missing:
        detail += f"; no module matches: {', '.join(plan.missing)}"
    if count:
        n_direct, n_indirect = len(found.direct), len(found.indirect)
        detail += f"; broken: {n_direct} direct and {n_indirect} indirect violation"
        detail += "s" if n_indirect != 1 else ""
    else:
        detail += "; broken" if plan.missing else "; kept"
    problem = (
        f"{contract.name}: no module matches: {', '.join(plan.missing)}; "
        "the other members were checked"
        if plan.missing
        else None
    )
    return {
        **base,
        "kept": count == 0 and not plan.missing,
        "violation_count": count,
        "truncated": len(rows) > max(0, max_violations),
        "violations": listed,
        "detail": detail,
    }, problem


def check_architecture(
    config: ArchitectureConfig | Mapping[str, Any] | None,
    graph: ImportGraph | Mapping[str, Any],
    modules: dict[str, dict[str, Any]],
    external: list[Edge] | list[Mapping[str, Any]] | None = None,
    *,
    max_violations: int = DEFAULT_MAX_VIOLATIONS,
) -> dict[str, Any]:
    """The report's ``LAYERS`` object: check the declared contracts (or, when
    ``config`` is ``None``, the ones implied by the detected style) against the
    import graph. Pure and deterministic. ``config`` as JSON data (a mapping)
    is decoded into an :class:`ArchitectureConfig` first, a graph given as
    JSON data into an :class:`ImportGraph`."""
    graph = ImportGraph.of(graph)
    g = _Graph(graph, modules, edges_of(external))
    if config is not None:
        declared = (
            config
            if isinstance(config, ArchitectureConfig)
            else msgspec.convert(config, ArchitectureConfig)
        )
        contracts: list[Contract] = list(declared.contracts)
        source = declared.source
        config_file: str | None = declared.file
        style: str | None = "declared"
        where = f" in {config_file}" if config_file else ""
        what = "[tool.corral.architecture]" if source == "corral" else "import-linter configuration"
        plural = "s" if len(contracts) != 1 else ""
        detail = f"{len(contracts)} contract{plural} declared{where} ({what})"
    else:
        detected = detect_style(graph, modules)
        config_file = None
        if detected is None:
            return {
                "source": "none",
                "config_file": None,
                "style": None,
                "detail": (
                    "No architecture declared, and no layering recognised from package names "
                    "or from the direction of imports between sibling packages."
                ),
                "contracts": [],
                "violations": 0,
                "checked_edges": 0,
                "conformance": None,
                "problems": [],
            }
        source, style, detail = "detected", detected["style"], detected["detail"]
        contracts = detected["contracts"]
    checked: set[tuple[str, str]] = set()
    violating: set[tuple[str, str]] = set()
    results: list[_Data] = []
    problems: list[str] = []
    for contract in contracts:
        result, problem = _check_contract(contract, g, max_violations, checked, violating)
        results.append(result)
        if problem is not None:
            problems.append(problem)
    if config is not None:
        detail += f", {sum(r['kept'] is False for r in results)} broken"
        unchecked = sum(r["kept"] is None for r in results)
        if unchecked:
            detail += f", {unchecked} not checked"
    conformance = round(1 - len(violating) / len(checked), 4) if checked else None
    return {
        "source": source,
        "config_file": config_file,
        "style": style,
        "detail": detail,
        "contracts": results,
        "violations": sum(r["violation_count"] for r in results),
        "checked_edges": len(checked),
        "conformance": conformance,
        "problems": problems,
    }
