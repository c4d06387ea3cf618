"""The interactive package graph of the HTML report: data, labels and SVG.

What a reader of a large project needs from the drawing is to follow one
package's imports, see which packages form a cycle, and get from a package to
its modules. So the graph is drawn collapsed to packages (one box each, laid
out by :mod:`.render_layout`, which routes edges around boxes and keeps each
cycle's members together inside one outline), and every package also gets an
*expanded view*: its modules, the imports between them, and the packages they
import or are imported by, as boxes of their own. The expanded views are
rendered here, in Python, into inert ``<template>`` elements; the page's few
lines of script (:mod:`.render_html`) only swap them in, highlight and search,
so nothing is laid out in the browser and everything is escaped in one place.

Labels drop the prefix every drawn name shares (``twisted.`` in Twisted) and
are never truncated into ambiguity: a long one has its leading components
abbreviated to initials only while the result stays unique, and the full dotted
name is in every box's tooltip and ``data-name``.

Drawing is bounded: ``MAX_GRAPH_NODES`` packages in the overview, the
``MAX_MODULES`` most coupled modules and ``MAX_NEIGHBOURS`` most connected
other packages in an expanded view; what is left out is counted on the page.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from corral.plugins.builtin.architecture.render_doc import coupling, num
from corral.plugins.builtin.architecture.render_layout import (
    GraphLayout,
    layout_graph,
    path_data,
)

__all__ = ["MAX_GRAPH_NODES", "MAX_MODULES", "MAX_NEIGHBOURS", "graph_section", "labels"]

MAX_GRAPH_NODES = 150
"""Packages drawn in the overview; past this a drawing is a hairball, not a map."""
MAX_MODULES = 120
"""Modules drawn in one package's expanded view (the most coupled)."""
MAX_NEIGHBOURS = 24
"""Other packages drawn around an expanded package (the most connected)."""
MAX_LABEL = 28
CHAR_W = 7.0  # a generous average width of a 12px system-ui character
PAD_W = 18.0
MIN_W = 44.0


@dataclass(slots=True)
class _Node:
    name: str  # full dotted name
    kind: str  # "pkg" (overview), "mod" (module), "ext" (another package)
    label: str
    tip: str
    expand: bool  # clicking opens this package's expanded view


@dataclass(slots=True)
class _View:
    """One drawing: the overview or a package's expanded view."""

    nodes: dict[str, _Node]  # by layout id
    edges: dict[tuple[str, str], int]  # layout ids -> import count
    cuts: set[tuple[str, str]]
    noun: str  # what a cycle here is made of: "packages" or "modules"
    note: str


def _common_prefix(names: list[str]) -> str:
    """The dotted prefix (with its dot) that the names extend, or "".

    One name may be the prefix itself (``twisted`` among ``twisted.*``); it
    keeps its full name as its label.
    """
    split = [n.split(".") for n in names]
    if len(split) < 2:
        return ""
    common: list[str] = []
    for parts in zip(*split, strict=False):
        if len(set(parts)) != 1:
            break
        common.append(parts[0])
    return ".".join(common) + "." if common else ""


def labels(names: list[str], prefix: str | None = None) -> dict[str, str]:
    """Short, unambiguous labels: ``prefix`` dropped, long ones abbreviated.

    ``twisted.words.protocols.jabber`` under ``twisted.`` is
    ``words.protocols.jabber``; past ``MAX_LABEL`` characters the leading
    components become initials (``w.p.jabber``) unless that would make two
    labels equal, in which case the longer label is kept.
    """
    prefix = _common_prefix(names) if prefix is None else prefix
    out = {n: n[len(prefix) :] if prefix and n.startswith(prefix) else n for n in names}
    out = {n: label or n for n, label in out.items()}
    taken = set(out.values())
    for name in sorted(names):
        label = out[name]
        parts = label.split(".")
        for k in range(len(parts) - 1):
            if len(label) <= MAX_LABEL:
                break
            shorter = ".".join([p[:1] for p in parts[: k + 1]] + parts[k + 1 :])
            if shorter in taken:
                break
            taken.discard(label)
            taken.add(shorter)
            label = shorter
        out[name] = label
    return out


def _width(label: str) -> float:
    return max(MIN_W, round(len(label) * CHAR_W + PAD_W))


def _f(value: float) -> str:
    return f"{value:.1f}".removesuffix(".0")


def _package_tip(name: str, info: dict[str, Any], extra: str = "") -> str:
    return (
        f"{name} (package): {num(info.get('modules'))} modules, {num(info.get('loc'))} LOC, "
        f"Ca {num(info.get('ca'))}, Ce {num(info.get('ce'))}, I {num(info.get('instability'))}, "
        f"D {num(info.get('distance'))}{extra}"
    )


def _owner(name: str, packages: set[str], modules: dict[str, Any]) -> str | None:
    """The package a module (or package) name belongs to."""
    package = (modules.get(name) or {}).get("package")
    if package in packages:
        return str(package)
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in packages:
            return candidate
    return None


def _cuts(project: dict[str, Any], owner: dict[str, str | None]) -> set[tuple[str, str]]:
    """The suggested cuts of the report's package cycles, as package pairs."""
    cuts: set[tuple[str, str]] = set()
    for cycle in (project.get("cycles") or {}).get("packages") or []:
        for cut in cycle.get("cut") or []:
            a = owner.get(str(cut.get("importer")))
            b = owner.get(str(cut.get("imported")))
            if a and b and a != b:
                cuts.add((a, b))
    return cuts


@dataclass(slots=True)
class _Project:
    info: dict[str, dict[str, Any]]
    modules: dict[str, Any]
    drawn: list[str]
    package_edges: dict[tuple[str, str], int]
    module_edges: list[tuple[str, str]]
    owner: dict[str, str | None]
    members: dict[str, list[str]]  # package -> its modules, sorted
    touching: dict[str, list[tuple[str, str]]]  # package -> module edges at either end


def _project_data(project: dict[str, Any]) -> _Project:
    metrics = project.get("metrics") or {}
    info: dict[str, dict[str, Any]] = metrics.get("packages") or {}
    modules: dict[str, Any] = metrics.get("modules") or {}
    counts: dict[tuple[str, str], int] = {}
    for edge in project.get("package_edges") or []:
        a, b = str(edge.get("importer")), str(edge.get("imported"))
        if a != b and a in info and b in info:
            counts[(a, b)] = counts.get((a, b), 0) + int(edge.get("count") or 1)
    owner, module_edges = _owners(project, set(info), modules)
    members: dict[str, list[str]] = {}
    for m, o in sorted(owner.items()):
        if o:
            members.setdefault(o, []).append(m)
    touching: dict[str, list[tuple[str, str]]] = {}
    for a, b in module_edges:  # grouped once, not scanned once per package
        for p in {owner.get(a), owner.get(b)}:
            if p:
                touching.setdefault(p, []).append((a, b))
    drawn = _most_coupled(info, counts)
    return _Project(info, modules, drawn, counts, module_edges, owner, members, touching)


def _most_coupled(info: dict[str, dict[str, Any]], counts: dict[tuple[str, str], int]) -> list[str]:
    """The packages drawn: all of them, or the ``MAX_GRAPH_NODES`` most coupled."""
    names = sorted(info)
    if len(names) <= MAX_GRAPH_NODES:
        return names
    degree = dict.fromkeys(names, 0)
    for a, b in counts:
        degree[a] += 1
        degree[b] += 1
    ranked = sorted(names, key=lambda n: (-(coupling(info[n]) or degree[n]), n))
    return sorted(ranked[:MAX_GRAPH_NODES])


def _owners(
    project: dict[str, Any], packages: set[str], modules: dict[str, Any]
) -> tuple[dict[str, str | None], list[tuple[str, str]]]:
    """The package of every module the report names (its imports, its
    metrics, the imports a cycle's cut goes through), and the module edges."""
    owner: dict[str, str | None] = {}
    module_edges: list[tuple[str, str]] = []

    def own(m: str) -> None:
        if m not in owner:
            owner[m] = _owner(m, packages, modules)

    for edge in project.get("edges") or []:
        a, b = str(edge.get("importer")), str(edge.get("imported"))
        own(a)
        own(b)
        if a != b:
            module_edges.append((a, b))
    for m in modules:
        own(m)
    for cycle in (project.get("cycles") or {}).get("packages") or []:
        for cut in cycle.get("cut") or []:
            own(str(cut.get("importer")))
            own(str(cut.get("imported")))
    return owner, module_edges


def _overview(data: _Project, cuts: set[tuple[str, str]]) -> _View:
    drawn = set(data.drawn)
    label = labels(data.drawn)
    expandable = {o for o in data.owner.values() if o}
    nodes = {
        n: _Node(n, "pkg", label[n], _package_tip(n, data.info.get(n) or {}), n in expandable)
        for n in data.drawn
    }
    edges = {(a, b): c for (a, b), c in data.package_edges.items() if a in drawn and b in drawn}
    note = ""
    if len(data.info) > len(data.drawn):
        hidden = len(data.package_edges) - len(edges)
        note = (
            f"Showing the {len(data.drawn)} most coupled of {len(data.info)} packages; "
            f"{hidden} package imports involving the others are not drawn."
        )
    return _View(nodes, edges, cuts, "packages", note)


def _expanded(data: _Project, package: str, prefix: str, cuts: set[tuple[str, str]]) -> _View:
    """``package``'s modules, the imports between them and to/from other packages."""
    internal, outside, weight = _around(data, package)
    own, notes = _kept_modules(list(data.members.get(package, [])), (*internal, *outside))
    others = sorted(weight, key=lambda p: (-weight[p], p))
    if len(others) > MAX_NEIGHBOURS:
        notes.append(
            f"showing the {MAX_NEIGHBOURS} most connected of the {len(others)} packages "
            "it imports or is imported by"
        )
        others = others[:MAX_NEIGHBOURS]
    others.sort()
    mod_label = labels(own, package + ".")
    pkg_label = labels(others, prefix)
    nodes: dict[str, _Node] = {}
    for m in own:
        info = data.modules.get(m) or {}
        tip = (
            f"{m} (module{', the package itself' if m == package else ''}): "
            f"{num(info.get('loc'))} LOC, Ca {num(info.get('ca'))}, Ce {num(info.get('ce'))}"
        )
        nodes[f"m:{m}"] = _Node(m, "mod", mod_label[m] if m != package else "__init__", tip, False)
    for p in others:
        tip = _package_tip(p, data.info.get(p) or {}, "; click to open it")
        nodes[f"p:{p}"] = _Node(p, "ext", pkg_label[p], tip, True)
    edges = {k: c for k, c in (internal | outside).items() if k[0] in nodes and k[1] in nodes}
    note = "; ".join(notes)
    note = note[:1].upper() + note[1:] + ("." if note else "")
    return _View(nodes, edges, _cuts_around(package, edges, cuts), "modules", note)


_Counts = dict[tuple[str, str], int]


def _around(data: _Project, package: str) -> tuple[_Counts, _Counts, dict[str, int]]:
    """The imports between ``package``'s modules, those between its modules
    and other packages (either way), and how many each other package has."""
    internal: _Counts = {}
    outside: _Counts = {}  # (module id, package id) either way
    weight: dict[str, int] = {}
    for a, b in data.touching.get(package, []):
        pa, pb = data.owner.get(a), data.owner.get(b)
        if pa == package and pb == package:
            key = (f"m:{a}", f"m:{b}")
            internal[key] = internal.get(key, 0) + 1
        elif pa == package and pb:
            key = (f"m:{a}", f"p:{pb}")
            outside[key] = outside.get(key, 0) + 1
            weight[pb] = weight.get(pb, 0) + 1
        elif pb == package and pa:
            key = (f"p:{pa}", f"m:{b}")
            outside[key] = outside.get(key, 0) + 1
            weight[pa] = weight.get(pa, 0) + 1
    return internal, outside, weight


def _kept_modules(own: list[str], keys: Iterable[tuple[str, str]]) -> tuple[list[str], list[str]]:
    """The modules drawn (all, or the ``MAX_MODULES`` most coupled) and a note."""
    if len(own) <= MAX_MODULES:
        return own, []
    degree = dict.fromkeys(own, 0)
    for key in keys:
        for end in key:
            if end[2:] in degree and end.startswith("m:"):
                degree[end[2:]] += 1
    keep = sorted(sorted(own, key=lambda m: (-degree[m], m))[:MAX_MODULES])
    return keep, [f"showing the {MAX_MODULES} most coupled of its {len(own)} modules"]


def _cuts_around(package: str, edges: _Counts, cuts: set[tuple[str, str]]) -> set[tuple[str, str]]:
    """The drawn edges behind a cut package import touching ``package`` (dashed)."""
    view_cuts: set[tuple[str, str]] = set()
    for a, b in cuts:
        if a == package or b == package:
            view_cuts |= {
                k
                for k in edges
                if (k[0][2:] if k[0].startswith("p:") else package) == a
                and (k[1][2:] if k[1].startswith("p:") else package) == b
            }
    return view_cuts


_ARROWS = (("", "#8a94a6"), ("-cycle", "#d62728"), ("-out", "#1f6feb"), ("-in", "#d9822b"))


def _svg(view: _View, layout: GraphLayout, pid: str, title: str) -> str:
    band_of: dict[str, int] = {}
    for i, (members, _) in enumerate(layout.bands):
        for m in members:
            band_of[m] = i
    w, h = _f(layout.width), _f(layout.height)
    out = [
        f'<svg class="depgraph" id="{pid}" viewBox="0 0 {w} {h}" width="{w}" height="{h}" '
        f'data-w="{w}" data-h="{h}" role="img" aria-label="{html.escape(title)}" '
        'font-family="system-ui, sans-serif" font-size="12">',
        "<defs>",
    ]
    for suffix, colour in _ARROWS:
        out.append(
            f'<marker id="{pid}-arrow{suffix}" viewBox="0 0 10 10" refX="10" refY="5" '
            'markerWidth="8" markerHeight="8" markerUnits="userSpaceOnUse" orient="auto">'
            f'<path d="M0,0 L10,5 L0,10 z" fill="{colour}"/></marker>'
        )
    out.append("</defs>")
    out.append('<g class="bands">')
    for members, (x, y, bw, bh) in layout.bands:
        noun = view.noun if all(view.nodes[m].kind != "ext" for m in members) else "members"
        names = ", ".join(view.nodes[m].name for m in members)
        tip = f"Import cycle of {len(members)} {noun}: {names}"
        out.append(
            f'<g class="band"><title>{html.escape(tip)}</title>'
            f'<rect x="{_f(x)}" y="{_f(y)}" width="{_f(bw)}" height="{_f(bh)}" rx="8"/>'
            f'<text x="{_f(x + 6)}" y="{_f(y - 5)}">cycle: {len(members)} {noun}</text></g>'
        )
    out.append('</g><g class="edges">')
    for (a, b), count in sorted(view.edges.items()):
        points = layout.routes.get((a, b))
        if not points:
            continue
        cyc = a in band_of and band_of[a] == band_of.get(b)
        cut = (a, b) in view.cuts
        cls = "edge" + (" cycle" if cyc else "") + (" cut" if cut else "")
        tip = f"{view.nodes[a].name} → {view.nodes[b].name}: {count} import"
        tip += ("s" if count != 1 else "") + (" (suggested cut)" if cut else "")
        if (a, b) in layout.upward:
            tip += " (drawn upwards: it closes a cycle)"
        marker = f"{pid}-arrow{'-cycle' if cyc else ''}"
        out.append(
            f'<path class="{cls}" data-from="{html.escape(view.nodes[a].name)}" '
            f'data-to="{html.escape(view.nodes[b].name)}" d="{path_data(points)}" '
            f'marker-end="url(#{marker})"><title>{html.escape(tip)}</title></path>'
        )
    out.append('</g><g class="nodes">')
    for key, node in sorted(view.nodes.items()):
        x, y, bw, bh = layout.boxes[key]
        cls = f"node {node.kind}" + (" cycle" if key in band_of else "")
        expand = f' data-expand="{html.escape(node.name)}"' if node.expand else ""
        out.append(
            f'<g class="{cls}" data-name="{html.escape(node.name)}"{expand}>'
            f"<title>{html.escape(node.tip)}</title>"
            f'<rect x="{_f(x)}" y="{_f(y)}" width="{_f(bw)}" height="{_f(bh)}" rx="5"/>'
            f'<text x="{_f(x + bw / 2)}" y="{_f(y + bh / 2 + 4)}" text-anchor="middle">'
            f"{html.escape(node.label)}</text></g>"
        )
    out.append("</g></svg>")
    return "\n".join(out)


def _draw(view: _View, pid: str, title: str) -> str:
    layout = layout_graph(
        view.nodes,
        view.edges,
        {k: _width(n.label) for k, n in view.nodes.items()},
        view.cuts,
    )
    return _svg(view, layout, pid, title)


_OVERVIEW_NOTE = (
    "Arrows point from the importing package to the imported one; importers are drawn "
    "above what they import. Packages in an import cycle are grouped in a red outline, "
    "where the arrows drawn upwards are the imports that close the cycle; dashed: a "
    "suggested cut. Hover a package to highlight what it imports (blue) and what imports "
    "it (orange); click it to see its modules; type in the box to find a package."
)
_EXPANDED_NOTE = (
    "Solid boxes are the package's modules; dashed grey boxes are other packages they "
    "import (below) or that import them (above): click one to open it."
)


def graph_section(project: dict[str, Any], index: int, level: int) -> tuple[str, str]:
    """The heading id and the HTML of one project's graph section."""
    data = _project_data(project)
    prefix = _common_prefix(data.drawn)
    cuts = _cuts(project, data.owner)
    name = str(project.get("name", "?"))
    gid = f"graph-{index}"
    overview = _overview(data, cuts)
    shown = f"All {len(data.drawn)} packages" if not overview.note else "Packages"
    if prefix:
        shown += f" (labels omit “{prefix}”)"
    main_svg = _draw(overview, f"g{index}", f"Package dependency graph of {name}")
    templates = []
    expandable = sorted(n for n in data.drawn if overview.nodes[n].expand)
    for k, package in enumerate(expandable):
        view = _expanded(data, package, prefix, cuts)
        count = sum(1 for n in view.nodes.values() if n.kind == "mod")
        title = f"Modules of {package} ({count})"
        svg = _draw(view, f"g{index}-{k}", title)
        note = " ".join(s for s in (view.note, _EXPANDED_NOTE) if s)
        templates.append(
            f'<template data-pkg="{html.escape(package)}" data-title="{html.escape(title)}" '
            f'data-note="{html.escape(note)}">{svg}</template>'
        )
    note = " ".join(s for s in (overview.note, _OVERVIEW_NOTE) if s)
    body = (
        f'<h{level} id="{gid}">Package dependency graph</h{level}>\n'
        f'<div class="graphbox">\n<div class="toolbar" hidden>'
        '<button type="button" class="back" hidden>← All packages</button>'
        f'<strong class="view-title">{html.escape(shown)}</strong>'
        '<input type="search" class="find" placeholder="Find a name…" '
        'aria-label="Find a package or module by name">'
        '<span class="found" aria-live="polite"></span><span class="spacer"></span>'
        '<button type="button" data-zoom="-1" title="Zoom out">&#8722;</button>'
        '<button type="button" data-zoom="0" title="Fit the width">Fit</button>'
        '<button type="button" data-zoom="1" title="Zoom in">+</button></div>\n'
        f'<div class="viewport">\n{main_svg}\n</div>\n'
        f'<p class="view-note">{html.escape(note)}</p>\n' + "\n".join(templates) + "\n</div>"
    )
    return gid, body
