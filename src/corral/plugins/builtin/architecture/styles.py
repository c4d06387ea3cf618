"""Style detection (pure): the architecture a codebase's package names (or
the direction of its imports) imply, as layer contracts :mod:`.layers`
checks like declared ones.

Detected styles and the layering each one implies (top first; ``:`` joins
siblings of one layer, which may import each other):

- hexagonal (``domain``/``core`` + ``ports`` + ``adapters``):
  adapters > application/services/use_cases > ports > domain : core
- clean (``entities`` + ``use_cases``/``usecases``):
  frameworks/drivers/infrastructure > interface_adapters/adapters/gateways/
  controllers/presenters > use_cases > entities
- ddd (``domain`` + ``application`` + ``infrastructure``):
  interfaces/presentation/api/ui/web/cli : infrastructure > application > domain
  (infrastructure implements domain and application ports, so it sits above
  both; it shares the top layer with the interfaces, which wire it in)
- mvc (``models`` + ``views`` + ``controllers``): controllers > views > models;
  Django-style (``models`` + ``views`` + one of ``urls``, ``admin``, ``apps``,
  ``migrations`` in the package itself):
  urls : admin > views > forms : serializers > models; or a Django project,
  whose apps (sub-packages with ``models`` + ``views`` and one of ``urls``,
  ``admin``, ``apps``, ``migrations``) become the containers of that layering,
  every layer optional. Templates are not Python modules, so they are not seen.
- layered (at least two of the tiers presentation/api/ui/web/cli/gui/rest >
  services/service/application/business/logic/domain > data/repository/
  repositories/dal/persistence/db/database/storage/models).
- layered, inferred: when no names match but the sibling sub-packages of a
  package form a DAG at least three levels deep, each level (longest path to a
  sink) is a layer, its siblings joined with ``:``. By construction no direct
  edge breaks it, but chains
  through the package's own ``__init__`` (or other non-member modules) can.

Candidates are each top-level package (or its only child when the top level
is a wrapper around a single sub-package) and, when there are several
top-level packages, the set of top-level packages itself. Names are compared
lowercased, leading underscores ignored.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from corral.plugins.builtin.architecture.contracts import LayersContract, layers_contract
from corral.plugins.builtin.architecture.model import ImportGraph

__all__ = ["detect_style"]

_Data = dict[str, Any]

# --------------------------------------------------------------------------
# Style detection (pure)
# --------------------------------------------------------------------------

_Tier = frozenset[str]


@dataclass(frozen=True)
class _Style:
    style: str
    label: str
    required: tuple[_Tier, ...]  # each must be matched by some sibling name
    tiers: tuple[_Tier, ...]  # top first
    min_tiers: int = 0  # for "layered": how many tiers must be present instead


def _t(*names: str) -> _Tier:
    return frozenset(names)


_PRESENTATION = _t("presentation", "api", "ui", "web", "cli", "gui", "rest")
_STYLES: tuple[_Style, ...] = (
    _Style(
        "hexagonal",
        "hexagonal (ports and adapters)",
        (_t("domain", "core"), _t("ports"), _t("adapters")),
        (
            _t("adapters"),
            _t("application", "services", "service", "use_cases", "usecases"),
            _t("ports"),
            _t("domain", "core"),
        ),
    ),
    _Style(
        "clean",
        "clean architecture",
        (_t("entities"), _t("use_cases", "usecases")),
        (
            _t("frameworks", "drivers", "frameworks_and_drivers", "infrastructure"),
            _t("interface_adapters", "adapters", "gateways", "controllers", "presenters"),
            _t("use_cases", "usecases"),
            _t("entities"),
        ),
    ),
    _Style(
        "ddd",
        "DDD layering",
        (_t("domain"), _t("application"), _t("infrastructure")),
        (
            _t("interfaces", "interface", "infrastructure") | _PRESENTATION,
            _t("application"),
            _t("domain"),
        ),
    ),
    _Style(
        "mvc",
        "MVC",
        (_t("models", "model"), _t("views", "view"), _t("controllers", "controller")),
        (_t("controllers", "controller"), _t("views", "view"), _t("models", "model")),
    ),
    _Style(
        "mvc",
        "Django-style MVC",
        (_t("models"), _t("views"), _t("urls", "templates", "admin", "apps", "migrations")),
        (_t("urls", "admin"), _t("views"), _t("forms", "serializers"), _t("models")),
    ),
    _Style(
        "layered",
        "layered architecture",
        (),
        (
            _PRESENTATION,
            _t("services", "service", "application", "business", "logic", "domain"),
            _t("data", "repository", "repositories", "dal", "persistence", "db", "database")
            | _t("storage", "models"),
        ),
        min_tiers=2,
    ),
)
_DJANGO = _STYLES[4]
_PRIORITY = {"hexagonal": 0, "clean": 1, "ddd": 2, "mvc": 3, "layered": 4}


def _norm(name: str) -> str:
    return name.lstrip("_").lower()


def _match(style: _Style, children: Sequence[str]) -> list[list[str]] | None:
    """Layers (child names per tier, top first) when ``children`` fit the style."""
    by_norm = {c: _norm(c) for c in children}
    if not all(any(n in req for n in by_norm.values()) for req in style.required):
        return None
    taken: set[str] = set()
    layers: list[list[str]] = []
    for tier in style.tiers:
        names = sorted(c for c, n in by_norm.items() if n in tier and c not in taken)
        taken.update(names)
        if names:
            layers.append(names)
    if len(layers) < max(2, style.min_tiers):
        return None
    return layers


@dataclass
class _Detection:
    style: str
    package: str  # "" for the set of top-level packages
    size: int
    contract: LayersContract
    sentence: str


def _tree(nodes: Iterable[str]) -> dict[str, list[str]]:
    """Parent ("" for the top) -> sorted child names (last segments), over all
    prefixes, so namespace directories count as packages."""
    children: dict[str, set[str]] = {}
    for node in nodes:
        parts = node.split(".")
        for i in range(len(parts)):
            children.setdefault(".".join(parts[:i]), set()).add(parts[i])
    return {p: sorted(c) for p, c in children.items()}


def _full(package: str, child: str) -> str:
    return f"{package}.{child}" if package else child


def _layers_text(layers: Sequence[Sequence[str]]) -> str:
    return " > ".join(" : ".join(names) for names in layers)


def _detected_contract(name: str, layers: list[list[str]], containers: list[str]) -> LayersContract:
    return layers_contract(name, layers, [False] * len(layers), [], containers, [])


def _by_name(
    package: str, children: list[str], tree: dict[str, list[str]]
) -> tuple[str, LayersContract, str] | None:
    where = f"package {package}" if package else "the top-level packages"
    for style in _STYLES:
        layers = _match(style, children)
        if layers is None:
            continue
        full = [[_full(package, c) for c in names] for names in layers]
        names = ", ".join(sorted(c for names in layers for c in names))
        sentence = f"{style.label} in {where} from the names {names} ({_layers_text(full)})"
        return (
            style.style,
            _detected_contract(f"{style.style} layers in {package or 'top level'}", full, []),
            sentence,
        )
    # Django project: apps below the package, each with models + views and a
    # Django signature (urls, admin, apps or migrations); the apps become
    # containers and every layer is optional, since apps differ in what they have.
    apps = [c for c in children if _is_django_app(tree.get(_full(package, c), []))]
    if apps:
        layers = [sorted(t) for t in _DJANGO.tiers]
        containers = [_full(package, a) for a in apps]
        sentence = (
            f"Django-style MVC in the apps {', '.join(containers)} of {where} from their "
            f"models and views modules ({_layers_text(layers)} in each app)"
        )
        contract = _detected_contract(
            f"mvc layers in apps of {package or 'top level'}", layers, containers
        )
        contract.optional = sorted(n for names in layers for n in names)
        return "mvc", contract, sentence
    return None


def _is_django_app(children: Sequence[str]) -> bool:
    names = {_norm(c) for c in children}
    return {"models", "views"} <= names and bool(names & {"urls", "admin", "apps", "migrations"})


def _by_direction(
    package: str, children: list[str], graph: ImportGraph
) -> tuple[LayersContract, str] | None:
    """Layers = levels of the DAG between sibling sub-packages, when it is one
    and is at least three levels deep."""
    child_set = set(children)
    prefix = f"{package}." if package else ""

    def child_of(module: str) -> str | None:
        if not module.startswith(prefix):
            return None
        head = module[len(prefix) :].split(".", 1)[0]
        return head if head in child_set and module != package else None

    succ: dict[str, set[str]] = {}
    for e in graph.edges:
        a, b = child_of(e.importer), child_of(e.imported)
        if a is not None and b is not None and a != b:
            succ.setdefault(a, set()).add(b)
            succ.setdefault(b, set())
    if not succ:
        return None
    indegree = {n: 0 for n in succ}
    for targets in succ.values():
        for t in targets:
            indegree[t] += 1
    order: list[str] = []
    queue = deque(sorted(n for n, d in indegree.items() if d == 0))
    while queue:
        n = queue.popleft()
        order.append(n)
        for t in sorted(succ[n]):
            indegree[t] -= 1
            if indegree[t] == 0:
                queue.append(t)
    if len(order) != len(succ):
        return None  # a cycle between siblings: no direction to infer
    level: dict[str, int] = {}
    for n in reversed(order):
        level[n] = 1 + max((level[t] for t in succ[n]), default=-1)
    depth = max(level.values()) + 1
    if depth < 3:
        return None
    layers = [
        sorted(_full(package, n) for n in succ if level[n] == lvl)
        for lvl in range(depth - 1, -1, -1)
    ]
    where = f"package {package}" if package else "the top-level packages"
    sentence = (
        f"layering inferred in {where} from the direction of imports between its "
        f"sub-packages, no layer names recognised ({_layers_text(layers)})"
    )
    return _detected_contract(f"inferred layers in {package or 'top level'}", layers, []), sentence


def _coverage(contract: LayersContract, nodes: Sequence[str]) -> int:
    """How many modules a detected contract's layers cover (to pick the style
    of the largest architecture when several packages were recognised)."""
    containers = contract.containers or [""]
    prefixes = {
        f"{c}.{n}" if c else n for c in containers for names in contract.layers for n in names
    }
    count = 0
    for node in nodes:
        name = node
        while name and name not in prefixes:
            name = name.rpartition(".")[0]
        count += bool(name)
    return count


def detect_style(
    graph: ImportGraph | Mapping[str, Any], modules: dict[str, dict[str, Any]]
) -> dict[str, Any] | None:
    """The architecture style the package names (or import directions) suggest.

    Returns ``None`` when nothing is recognised, else ``{"style", "detail",
    "contracts"}`` with normalised layers contracts ready for
    :func:`check_architecture`. When several packages are recognised, every
    contract is kept and ``style`` is the one of the largest package.
    """
    graph = ImportGraph.of(graph)
    nodes = sorted(
        set(graph.modules)
        | set(modules)
        | {e.importer for e in graph.edges}
        | {e.imported for e in graph.edges}
    )
    tree = _tree(nodes)
    roots = tree.get("", [])
    candidates: list[str] = []
    for root in roots:
        package = root
        kids = tree.get(package, [])
        if len(kids) == 1 and tree.get(_full(package, kids[0])):
            package = _full(package, kids[0])
        if tree.get(package):
            candidates.append(package)
    if len(roots) >= 2:
        candidates.append("")
    found: list[_Detection] = []
    detected_roots: set[str] = set()
    for package in candidates:
        children = tree.get(package, [])
        if not package:  # the top-level packages as siblings: those not seen above
            children = [c for c in children if c not in detected_roots]
        detection = _by_name(package, children, tree)
        if detection is None:
            inferred = _by_direction(package, children, graph)
            if inferred is not None:
                detection = ("layered", *inferred)
        if detection is not None:
            style, contract, sentence = detection
            size = _coverage(contract, nodes)
            found.append(_Detection(style, package, size, contract, sentence))
            detected_roots.add(package.split(".", 1)[0])
    if not found:
        return None
    best = min(found, key=lambda d: (-d.size, _PRIORITY[d.style], d.package))
    found.sort(key=lambda d: (d.package, d.contract.name))
    detail = "No architecture declared; detected " + "; ".join(d.sentence for d in found) + "."
    return {"style": best.style, "detail": detail, "contracts": [d.contract for d in found]}
