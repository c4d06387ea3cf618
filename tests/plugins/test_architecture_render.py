"""Markdown and HTML renderings of the architecture report (schema version 2)."""

from __future__ import annotations

import copy
import itertools
import random
import re
import time
from html.parser import HTMLParser
from typing import Any

from corral.plugins.builtin.architecture.render import render_html, render_markdown
from corral.plugins.builtin.architecture.render_graph import MAX_GRAPH_NODES, MAX_LABEL, labels
from corral.plugins.builtin.architecture.render_layout import layout_graph

HOSTILE = "<script>alert(1)</script>"
RED = "#d62728"


def _pkg(ca: int, ce: int, modules: int = 2, loc: int = 100) -> dict[str, Any]:
    inst = ce / (ca + ce) if ca + ce else 0.0
    return {
        "path": "src/x",
        "ca": ca,
        "ce": ce,
        "instability": inst,
        "abstractness": 0.5,
        "distance": abs(0.5 + inst - 1),
        "loc": loc,
        "classes": 2,
        "abstract_classes": 1,
        "modules": modules,
    }


def _score(value: int) -> dict[str, Any]:
    return {
        "value": value,
        "components": [
            {"name": "cycles", "penalty": 12.5, "max": 40.0, "detail": "1 package cycle"},
            {"name": "layers", "penalty": 5.0, "max": 30.0, "detail": "1 violation | direct"},
        ],
    }


def _summary(**over: int) -> dict[str, int]:
    base = {
        "packages": 3,
        "modules": 6,
        "loc": 450,
        "edges": 5,
        "external_imports": 2,
        "module_cycles": 1,
        "package_cycles": 1,
        "violations": 1,
        "not_analysed": 0,
        "score": 72,
    }
    return {**base, **over}


def shop_project() -> dict[str, Any]:
    """Packages shop.core <-> shop.web in a cycle, both importing shop.util."""
    return {
        "name": "shop",
        "path": "services/shop",
        "config_file": "services/shop/pyproject.toml",
        "packages": [
            {
                "name": "shop",
                "path": "services/shop/src/shop",
                "source_root": "services/shop/src",
                "modules": 6,
                "namespace_dirs": [],
            }
        ],
        "summary": _summary(),
        "metrics": {
            "modules": {
                "shop.core.models": {"path": "src/shop/core/models.py", "package": "shop.core"},
                "shop.web.views": {"path": "src/shop/web/views.py", "package": "shop.web"},
            },
            "packages": {
                "shop.core": _pkg(1, 2, modules=2, loc=120),
                "shop.web": _pkg(1, 2),
                "shop.util": _pkg(2, 0),
            },
        },
        "edges": [
            {"importer": "shop.core.models", "imported": "shop.web.views", "lines": [12]},
            {"importer": "shop.web.views", "imported": "shop.core.models", "lines": [3]},
        ],
        "package_edges": [
            {"importer": "shop.core", "imported": "shop.web", "count": 1},
            {"importer": "shop.web", "imported": "shop.core", "count": 4},
            {"importer": "shop.web", "imported": "shop.util", "count": 2},
            {"importer": "shop.core", "imported": "shop.util", "count": 1},
        ],
        "external": [
            {"name": "json", "distribution": None, "stdlib": True, "importers": 1},
            {"name": "requests", "distribution": "requests", "stdlib": False, "importers": 2},
        ],
        "cycles": {
            "modules": [
                {
                    "members": ["shop.core.models", "shop.web.views"],
                    "size": 2,
                    "example": ["shop.core.models", "shop.web.views", "shop.core.models"],
                    "cut": [
                        {
                            "importer": "shop.core.models",
                            "imported": "shop.web.views",
                            "lines": [12],
                            "path": "src/shop/core/models.py",
                        }
                    ],
                }
            ],
            "packages": [
                {
                    "members": ["shop.core", "shop.web"],
                    "size": 2,
                    "example": ["shop.core", "shop.web", "shop.core"],
                    "cut": [  # module names: the renderer maps them onto packages
                        {
                            "importer": "shop.core.models",
                            "imported": "shop.web.views",
                            "lines": [12, 40],
                            "path": "src/shop/core/models.py",
                        }
                    ],
                }
            ],
        },
        "layers": {
            "source": "corral",
            "config_file": "services/shop/pyproject.toml",
            "style": "layered",
            "detail": "3 layers declared in [tool.corral.layers]",
            "contracts": [
                {
                    "name": "shop layers",
                    "kind": "layers",
                    "layers": [["shop.web"], ["shop.core"], ["shop.util"]],
                    "modules": None,
                    "kept": False,
                    "violation_count": 3,
                    "truncated": True,
                    "violations": [
                        {
                            "importer": "shop.core.models",
                            "imported": "shop.web.views",
                            "line": 12,
                            "path": "src/shop/core/models.py",
                            "chain": ["shop.core.models", "shop.web.views"],
                            "direct": True,
                            "importer_layer": "shop.core",
                            "imported_layer": "shop.web",
                        }
                    ],
                }
            ],
            "violations": 3,
            "checked_edges": 20,
            "conformance": 0.95,
        },
        "hubs": [
            {
                "module": "shop.web.views",
                "path": "src/shop/web/views.py",
                "ca": 1,
                "ce": 3,
                "instability": 0.75,
            }
        ],
        "score": _score(72),
        "recommendations": [],
    }


def jobs_project() -> dict[str, Any]:
    """A second project: a plain DAG jobs -> jobs.queue, no layers."""
    return {
        "name": "jobs",
        "path": "services/jobs",
        "config_file": None,
        "packages": [],
        "summary": _summary(packages=2, module_cycles=0, package_cycles=0, violations=0),
        "metrics": {"modules": {}, "packages": {"jobs": _pkg(0, 1), "jobs.queue": _pkg(1, 0)}},
        "edges": [],
        "package_edges": [{"importer": "jobs", "imported": "jobs.queue", "count": 1}],
        "external": [],
        "cycles": {"modules": [], "packages": []},
        "layers": {
            "source": "none",
            "config_file": None,
            "style": None,
            "detail": "no layers declared or detected",
            "contracts": [],
            "violations": 0,
            "checked_edges": 0,
            "conformance": None,
        },
        "hubs": [],
        "score": _score(95),
        "recommendations": [],
    }


def make_report(projects: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    projects = [shop_project(), jobs_project()] if projects is None else projects
    return {
        "version": 2,
        "tool": "corral 0.1.0",
        "root": "/repo",
        "options": {"exclude": ["build"], "exclude_tests": True, "exclude_type_checking": False},
        "summary": {"projects": len(projects), **_summary(not_analysed=2)},
        "score": _score(80),
        "recommendations": [
            {
                "priority": 2,
                "kind": "violation",
                "title": "Respect the shop layers",
                "detail": "shop.core imports shop.web",
                "locations": [{"path": "src/shop/core/models.py", "line": 12, "module": None}],
            },
            {
                "priority": 1,
                "kind": "cycle",
                "title": "Break the package cycle shop.core -> shop.web",
                "detail": "cut the import of shop.web.views in shop.core.models",
                "locations": [
                    {"path": "src/shop/core/models.py", "line": 12, "module": "shop.core.models"},
                    {"path": "src/shop/web/views.py", "line": None, "module": None},
                ],
            },
        ],
        "projects": projects,
        "not_analysed": [
            {"path": "src/odd|name.py", "reason": "syntax error: line 3: a < b & c | d"},
            {"path": "src/evil.py", "reason": f"decode error {HOSTILE} \"quoted\" 'x'"},
        ],
    }


def big_report(n: int) -> dict[str, Any]:
    """One project of ``n`` packages: a layered DAG plus one two-package cycle."""
    names = [f"big.p{i:03d}" for i in range(n)]
    pairs = set()
    for i in range(n):
        for j in (i + 1 + i % 7, i + 2 + (i * 3) % 11):
            if j < n:
                pairs.add((names[i], names[j]))
    pairs.add((names[5], names[0]))  # closes the cycle p000 -> p002 -> p005 -> p000
    ca = {name: 0 for name in names}
    ce = {name: 0 for name in names}
    for a, b in pairs:
        ce[a] += 1
        ca[b] += 1
    project = jobs_project()
    project.update(
        name="big",
        metrics={"modules": {}, "packages": {name: _pkg(ca[name], ce[name]) for name in names}},
        package_edges=[{"importer": a, "imported": b, "count": 1} for a, b in sorted(pairs)],
        cycles={
            "modules": [],
            "packages": [
                {
                    "members": [names[0], names[2], names[5]],
                    "size": 3,
                    "example": [names[0], names[2], names[5], names[0]],
                    "cut": [],
                }
            ],
        },
        hubs=[
            {
                "module": f"{name}.mod",
                "path": f"src/{name}.py",
                "ca": 1,
                "ce": 1,
                "instability": 0.5,
            }
            for name in names
        ],
    )
    return make_report([project])


class StrictParser(HTMLParser):
    """Collects elements and checks that every non-void tag is closed in order."""

    VOID = frozenset(
        {"meta", "br", "hr", "img", "input", "link", "source", "wbr", "area", "col", "embed"}
    )

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.elements: list[tuple[str, dict[str, str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, {k: v or "" for k, v in attrs}))
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, {k: v or "" for k, v in attrs}))

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
            return
        self.stack.pop()

    def of(self, tag: str, cls: str | None = None) -> list[dict[str, str]]:
        return [
            a
            for t, a in self.elements
            if t == tag and (cls is None or cls in a.get("class", "").split())
        ]


def parse(text: str) -> StrictParser:
    parser = StrictParser()
    parser.feed(text)
    parser.close()
    assert parser.errors == []
    assert parser.stack == []
    return parser


# -- markdown ---------------------------------------------------------------


def test_markdown_header_summary_score_and_recommendations() -> None:
    md = render_markdown(make_report())
    lines = md.splitlines()
    assert lines[0] == "# Architecture report: `/repo`"
    assert "| Projects | 2 |" in lines
    assert "| Files not analysed | 2 |" in lines
    assert "## Score: 80/100" in lines
    assert "| layers | 5.0 | 30.0 | 1 violation \\| direct |" in lines
    # recommendations sorted by priority, numbered, detail on a hard break, locations
    rec = lines.index("1. **Break the package cycle shop.core -> shop.web** (cycle)\\")
    assert lines[rec + 1] == "   cut the import of shop.web.views in shop.core.models"
    assert lines[rec + 2] == "   - `src/shop/core/models.py:12`"
    assert lines[rec + 3] == "   - `src/shop/web/views.py`"
    assert lines[rec + 4] == "2. **Respect the shop layers** (violation)\\"


def test_markdown_project_sections() -> None:
    md = render_markdown(make_report())
    lines = md.splitlines()
    assert "## Project: `shop`" in lines
    assert "## Project: `jobs`" in lines
    assert "| `shop.core` | 2 | 120 | 1 | 2 | 0.67 | 0.50 | 0.17 |" in lines
    # cycles: example chain and the suggested cut with file:lines
    assert "1. `shop.core -> shop.web -> shop.core` (2 packages)" in lines
    assert (
        "   - suggested cut: `shop.core.models -> shop.web.views` at "
        "`src/shop/core/models.py:12,40`"
    ) in lines
    assert "1. `shop.core.models -> shop.web.views -> shop.core.models` (2 modules)" in lines
    # layers
    assert "Source: `corral`, style: `layered`, from `services/shop/pyproject.toml`." in lines
    assert "| shop layers | layers | broken | 3 |" in lines
    assert (
        "- `shop.core.models -> shop.web.views` at `src/shop/core/models.py:12` "
        "(direct, layer `shop.core` -> `shop.web`)"
    ) in lines
    assert "Showing 1 of 3 violations: the analyser truncated the list." in lines
    # hubs and external dependencies (most importers first)
    assert "| `shop.web.views` | `src/shop/web/views.py` | 1 | 3 | 0.75 |" in lines
    ext = [line for line in lines if line.startswith("| `requests`") or line.startswith("| `json`")]
    assert ext == ["| `requests` | `requests` | no | 2 |", "| `json` | — | yes | 1 |"]
    assert "No import cycles between modules or packages." in lines  # the jobs project
    assert "No layer contracts were declared or detected." in lines


def test_markdown_escapes_table_cells_and_text() -> None:
    md = render_markdown(make_report())
    lines = md.splitlines()
    assert "## Files not analysed (2)" in lines
    assert "| `src/odd\\|name.py` | syntax error: line 3: a \\< b \\& c \\| d |" in lines
    evil = next(line for line in lines if line.startswith("| `src/evil.py`"))
    assert HOSTILE not in evil
    assert "\\<script>alert(1)\\</script>" in evil
    # every table row has exactly as many unescaped pipes as its header
    for line in lines:
        if line.startswith("| `src/"):
            assert len(re.findall(r"(?<!\\)\|", line)) == 3, line


def test_markdown_single_project_has_no_project_heading() -> None:
    md = render_markdown(make_report([shop_project()]))
    assert "Project: " not in md
    assert "## Packages" in md.splitlines()
    assert "## Cycles" in md.splitlines()


def test_markdown_long_lists_are_bounded() -> None:
    md = render_markdown(big_report(120))
    lines = md.splitlines()
    package_rows = [line for line in lines if re.match(r"\| `big\.p\d+` \|", line)]
    assert len(package_rows) == 50
    assert "… and 70 more packages (the most coupled are shown)." in lines
    assert "… and 70 more modules." in lines


# -- HTML -------------------------------------------------------------------

TEMPLATE = re.compile(r"<template\b.*?</template>", re.S)


def overview(text: str) -> StrictParser:
    """The page without the expanded views (the package graphs as first drawn)."""
    return parse(TEMPLATE.sub("", text))


def expanded_views(text: str) -> dict[str, StrictParser]:
    """Each package's expanded view, parsed, by package name."""
    views = {}
    for match in TEMPLATE.finditer(text):
        parser = parse(match.group())
        views[parser.of("template")[0]["data-pkg"]] = parser
    return views


def edges_by_pair(parser: StrictParser) -> dict[tuple[str, str], dict[str, str]]:
    return {(a["data-from"], a["data-to"]): a for a in parser.of("path", "edge")}


def test_html_is_well_formed_and_has_one_graph_per_project() -> None:
    text = render_html(make_report())
    assert text.startswith("<!DOCTYPE html>")
    parse(text)  # the templates too
    parser = overview(text)
    assert len(parser.of("svg")) == 2
    names = sorted(a["data-name"] for a in parser.of("g", "node"))
    assert names == ["jobs", "jobs.queue", "shop.core", "shop.util", "shop.web"]
    for tag in ("html", "head", "body", "main", "table"):
        assert parser.of(tag), tag


def test_html_links_to_the_graph_from_the_top_and_draws_it_before_the_tables() -> None:
    text = render_html(make_report())
    parser = parse(text)
    jumps = [
        a["href"] for t, a in parser.elements if t == "a" and a.get("href", "").startswith("#graph")
    ]
    ids = {a.get("id") for _, a in parser.elements}
    assert jumps[:2] == ["#graph-0", "#graph-1"]  # the first links on the page
    assert {"graph-0", "graph-1"} <= ids
    assert text.index('href="#graph-0"') < text.index("<h2")
    assert text.index('id="graph-0"') < text.index(">Packages</h3>")


def test_html_graph_groups_cycles_and_marks_cuts() -> None:
    parser = overview(render_html(make_report()))
    edges = edges_by_pair(parser)
    assert set(edges) == {
        ("shop.core", "shop.web"),
        ("shop.web", "shop.core"),
        ("shop.web", "shop.util"),
        ("shop.core", "shop.util"),
        ("jobs", "jobs.queue"),
    }
    for pair in [("shop.core", "shop.web"), ("shop.web", "shop.core")]:
        assert "cycle" in edges[pair]["class"].split()
        assert edges[pair]["marker-end"].endswith("-arrow-cycle)")
    for pair in [("shop.web", "shop.util"), ("shop.core", "shop.util"), ("jobs", "jobs.queue")]:
        assert "cycle" not in edges[pair]["class"].split()
    # the cut (given as modules) lands on the package edge shop.core -> shop.web only
    cut = {pair for pair, a in edges.items() if "cut" in a["class"].split()}
    assert cut == {("shop.core", "shop.web")}
    nodes = {a["data-name"]: a for a in parser.of("g", "node")}
    assert "cycle" in nodes["shop.core"]["class"].split()
    assert "cycle" not in nodes["shop.util"]["class"].split()
    assert len(parser.of("g", "band")) == 1  # one outline around shop.core and shop.web
    markers = {a["id"] for a in parser.of("marker")}
    for a in edges.values():  # each edge has an arrowhead defined in its own svg
        ref = re.fullmatch(r"url\(#(.+)\)", a["marker-end"])
        assert ref and ref.group(1) in markers


def test_html_packages_expand_to_their_modules_and_module_edges() -> None:
    text = render_html(make_report())
    nodes = {a["data-name"]: a for a in overview(text).of("g", "node")}
    views = expanded_views(text)
    assert set(views) == {"shop.core", "shop.web"}  # the packages with known modules
    assert nodes["shop.core"]["data-expand"] == "shop.core"
    assert "data-expand" not in nodes["shop.util"]
    core = views["shop.core"]
    drawn = {a["data-name"]: a["class"].split() for a in core.of("g", "node")}
    assert drawn == {
        "shop.core.models": ["node", "mod", "cycle"],
        "shop.web": ["node", "ext", "cycle"],
    }
    assert set(edges_by_pair(core)) == {
        ("shop.core.models", "shop.web"),
        ("shop.web", "shop.core.models"),
    }
    assert "cut" in edges_by_pair(core)[("shop.core.models", "shop.web")]["class"].split()
    ext = next(a for a in core.of("g", "node") if a["data-name"] == "shop.web")
    assert ext["data-expand"] == "shop.web"  # another package: click to open it
    ids = [a["id"] for t, a in parse(text).elements if "id" in a]
    assert len(ids) == len(set(ids))  # marker ids stay unique once a view is shown


def test_html_graph_escapes_names() -> None:
    project = jobs_project()
    evil = 'jobs.<b>"x"&y'
    project["metrics"]["packages"][evil] = _pkg(1, 0)
    project["metrics"]["modules"] = {f"{evil}.m": {"package": evil}}
    project["package_edges"].append({"importer": "jobs", "imported": evil, "count": 1})
    project["edges"] = [{"importer": "jobs", "imported": f"{evil}.m", "lines": [1]}]
    text = render_html(make_report([project]))
    assert "<b>" not in text and '"x"' not in text
    parser = parse(text)
    assert evil in {a["data-name"] for a in parser.of("g", "node")}
    assert evil in {a.get("data-pkg") for a in parser.of("template")}


def test_html_uses_no_external_resources() -> None:
    text = render_html(make_report())
    parser = parse(text)
    for _tag, attrs in parser.elements:
        for key in ("src", "href", "xlink:href", "action", "data"):
            value = attrs.get(key, "")
            assert not re.match(r"\s*(https?:)?//", value), (key, value)
    assert not parser.of("link")
    assert not parser.of("img")
    assert all("src" not in a for a in parser.of("script"))
    assert "@import" not in text
    assert not re.search(r"url\(\s*['\"]?(https?:)?//", text)
    assert "http://" not in text and "https://" not in text


def test_html_escapes_report_strings() -> None:
    text = render_html(make_report())
    assert HOSTILE not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &quot;quoted&quot; &#x27;x&#x27;" in text
    assert "syntax error: line 3: a &lt; b &amp; c | d" in text
    assert text.count("<script") == 1  # ours, inline, no src
    parser = parse(text)
    tds = [a for a in parser.elements if a[0] == "td"]
    assert tds  # tables were rendered as tables


def test_html_has_the_markdown_content() -> None:
    report = make_report()
    text = render_html(report)
    assert "<code>shop.core -&gt; shop.web -&gt; shop.core</code> (2 packages)" in text
    assert "<code>src/shop/core/models.py:12,40</code>" in text
    assert "Showing 1 of 3 violations: the analyser truncated the list." in text
    assert "<code>requests</code>" in text


# -- layout -----------------------------------------------------------------


def generated_graph(n: int = 60, seed: int = 7) -> tuple[list[str], list[tuple[str, str]]]:
    """``n`` packages with deep names, mostly layered imports, hubs, and cycles."""
    rng = random.Random(seed)
    names = [f"proj.area{i % 6}.sub{i // 6}.p{i:02d}" for i in range(n)]
    edges = set()
    for i in range(n):
        for _ in range(rng.randint(1, 5)):
            j = rng.randrange(n)
            if j > i or rng.random() < 0.06:  # mostly downwards; a few close cycles
                edges.add((names[i], names[j]))
        if i > 3:
            edges.add((names[i], names[rng.randrange(3)]))  # three hubs
    return names, sorted((a, b) for a, b in edges if a != b)


def _inside(rect: tuple[float, float, float, float], px: float, py: float) -> bool:
    x, y, w, h = rect
    return x + 0.5 < px < x + w - 0.5 and y + 0.5 < py < y + h - 0.5


def _overlap(r: tuple[float, float, float, float], s: tuple[float, float, float, float]) -> bool:
    return r[0] < s[0] + s[2] and s[0] < r[0] + r[2] and r[1] < s[1] + s[3] and s[1] < r[1] + r[3]


def test_layout_dag_gets_one_level_per_step_top_down() -> None:
    layout = layout_graph(["c", "b", "a"], [("a", "b"), ("b", "c")])
    ys = {n: y for n, (_, y, _, _) in layout.boxes.items()}
    assert ys["a"] < ys["b"] < ys["c"]
    assert layout.layer == {"a": 0, "b": 1, "c": 2}
    for x, y, w, h in layout.boxes.values():
        assert x >= 0 and x + w <= layout.width
        assert y >= 0 and y + h <= layout.height


def test_layout_cycle_gets_its_own_band_and_is_deterministic() -> None:
    edges = [("a", "b"), ("b", "a"), ("b", "c"), ("top", "a"), ("side", "c")]
    layout = layout_graph(["a", "b", "c", "top", "side"], edges)
    layer = layout.layer
    # the cycle is condensed for the layering: everything it imports is below it,
    # everything importing it above; inside, one edge of the cycle points up
    assert layer["top"] < min(layer["a"], layer["b"])
    assert max(layer["a"], layer["b"]) < layer["c"]
    assert layer["a"] != layer["b"]
    # its layers are its own, so its outline holds no other box
    assert layer["side"] not in {layer["a"], layer["b"]}
    [(members, band)] = layout.bands
    assert members == ["a", "b"]
    for name, box in layout.boxes.items():
        assert _overlap(band, box) == (name in members)
    assert len(layout.upward) == 1 and layout.upward <= {("a", "b"), ("b", "a")}
    again = layout_graph(["side", "top", "c", "b", "a"], list(reversed(edges)))
    assert again == layout


def test_layout_feedback_edges_are_the_ones_pointing_up() -> None:
    edges = [("a", "b"), ("b", "a")]
    up_ba = layout_graph(["a", "b"], edges, feedback=[("b", "a")])
    assert up_ba.layer["a"] < up_ba.layer["b"]  # b -> a is drawn upwards: b below a
    assert up_ba.upward == {("b", "a")}
    up_ab = layout_graph(["a", "b"], edges, feedback=[("a", "b")])
    assert up_ab.layer["b"] < up_ab.layer["a"]


def test_layout_barycenter_uncrosses_edges() -> None:
    # x1 -> y2 and x2 -> y1: sorted by name the two edges cross; ordering fixes it
    layout = layout_graph(["x1", "x2", "y1", "y2"], [("x1", "y2"), ("x2", "y1")])
    box = layout.boxes
    assert (box["x1"][0] < box["x2"][0]) == (box["y2"][0] < box["y1"][0])


def test_layout_of_a_large_graph_has_no_overlaps_and_no_edge_through_a_box() -> None:
    names, edges = generated_graph()
    widths = {n: 60.0 + 7 * (len(n) % 9) for n in names}
    layout = layout_graph(names, edges, widths)
    assert set(layout.boxes) == set(names)
    assert set(layout.routes) == set(edges)
    assert layout.bands  # the generator closes some cycles
    boxes = sorted(layout.boxes.items())
    for i, (a, ra) in enumerate(boxes):
        assert ra[2] == widths[a]
        for b, rb in boxes[i + 1 :]:
            assert not _overlap(ra, rb), (a, b)
    for (a, b), points in layout.routes.items():
        # a route starts on its importer's box and ends on the imported one's
        assert _on_edge(layout.boxes[a], points[0]) and _on_edge(layout.boxes[b], points[-1])
        for (x1, y1), (x2, y2) in itertools.pairwise(points):
            # every piece (line or curve) stays inside the box its two ends span
            seg = (min(x1, x2), min(y1, y2), abs(x2 - x1), abs(y2 - y1))
            for name, rect in boxes:
                if name in (a, b):
                    continue
                inner = (rect[0] + 0.5, rect[1] + 0.5, rect[2] - 1, rect[3] - 1)
                hit = _overlap(seg, inner) if seg[2] and seg[3] else _segment_hits(seg, inner)
                assert not hit, ((a, b), name)
    # the hubs' many importers share trunks: far fewer pieces than one per layer crossed
    spans = sum(abs(layout.layer[a] - layout.layer[b]) for a, b in edges)
    assert len({p for pts in layout.routes.values() for p in pts}) < spans


def _on_edge(rect: tuple[float, float, float, float], point: tuple[float, float]) -> bool:
    x, y, w, h = rect
    return x <= point[0] <= x + w and point[1] in (round(y, 1), round(y + h, 1))


def _segment_hits(
    seg: tuple[float, float, float, float], rect: tuple[float, float, float, float]
) -> bool:
    """A vertical or horizontal segment (zero width or height) against a rectangle."""
    x, y, w, h = seg
    rx, ry, rw, rh = rect
    if w == 0:
        return rx < x < rx + rw and y < ry + rh and ry < y + h
    return ry < y < ry + rh and x < rx + rw and rx < x + w


def test_layout_handles_empty_and_single_graphs() -> None:
    assert layout_graph([], []).boxes == {}
    one = layout_graph(["solo"], [("solo", "solo"), ("solo", "ghost")])
    assert list(one.boxes) == ["solo"] and one.routes == {}


# -- the graph on a real-sized report --------------------------------------


def test_medium_report_renders_whole_graph() -> None:
    text = render_html(big_report(120))
    parser = overview(text)
    assert len(parser.of("g", "node")) == 120
    assert "Showing the" not in text
    cycle_edges = {
        (a["data-from"], a["data-to"])
        for a in parser.of("path", "edge")
        if "cycle" in a["class"].split()
    }
    assert cycle_edges == {
        ("big.p000", "big.p002"),
        ("big.p002", "big.p005"),
        ("big.p005", "big.p000"),
    }


def test_large_report_graph_is_bounded_and_says_so() -> None:
    text = render_html(big_report(300))
    parser = overview(text)
    assert len(parser.of("g", "node")) == MAX_GRAPH_NODES
    assert f"Showing the {MAX_GRAPH_NODES} most coupled of 300 packages" in text
    drawn = {a["data-name"] for a in parser.of("g", "node")}
    for a in parser.of("path", "edge"):
        assert a["data-from"] in drawn and a["data-to"] in drawn


def modules_report(packages: int = 64, per: int = 13, seed: int = 3) -> dict[str, Any]:
    """A Twisted-sized project: ``packages`` x ``per`` modules, ~5 imports each."""
    rng = random.Random(seed)
    names, pairs = generated_graph(packages, seed)
    modules = {f"{p}.m{k}": {"package": p, "loc": 10} for p in names for k in range(per)}
    by_package = {p: [f"{p}.m{k}" for k in range(per)] for p in names}
    edges = set()
    for a, b in pairs:
        for _ in range(rng.randint(1, 4)):
            edges.add((rng.choice(by_package[a]), rng.choice(by_package[b])))
    for p in names:  # imports inside each package
        for _ in range(per):
            u, v = rng.sample(by_package[p], 2)
            edges.add((u, v))
    project = jobs_project()
    project.update(
        name="proj",
        metrics={"modules": modules, "packages": {p: _pkg(1, 1, modules=per) for p in names}},
        edges=[{"importer": a, "imported": b, "lines": [1]} for a, b in sorted(edges)],
        package_edges=[{"importer": a, "imported": b, "count": 1} for a, b in pairs],
    )
    return make_report([project])


def test_twisted_sized_report_renders_fast_and_completely() -> None:
    report = modules_report()
    start = time.perf_counter()
    text = render_html(report)
    elapsed = time.perf_counter() - start
    assert elapsed < 5.0  # about 0.5 s on one core; generous for shared CI machines
    views = expanded_views(text)
    assert len(views) == 64
    drawn_modules = {a["data-name"] for v in views.values() for a in v.of("g", "mod")}
    assert drawn_modules == set(report["projects"][0]["metrics"]["modules"])
    assert render_html(modules_report()) == text  # deterministic, byte for byte


def test_output_does_not_depend_on_input_order() -> None:
    report = modules_report(20, 5)
    shuffled = copy.deepcopy(report)
    project = shuffled["projects"][0]
    random.Random(1).shuffle(project["edges"])
    random.Random(2).shuffle(project["package_edges"])
    project["metrics"]["packages"] = dict(reversed(project["metrics"]["packages"].items()))
    assert render_html(shuffled) == render_html(report)


def test_labels_drop_the_common_prefix_and_stay_unambiguous() -> None:
    names = [
        "twisted",
        "twisted.words.protocols.jabber",
        "twisted.conch.ssh",
        "twisted.alpha.beta.gamma.delta.one",
        "twisted.alpha.beta.gamma.delta.two",
        "twisted.alpha.bravo.gamma.delta.one",
    ]
    out = labels(names)
    assert out["twisted"] == "twisted"
    assert out["twisted.conch.ssh"] == "conch.ssh"
    assert out["twisted.words.protocols.jabber"] == "words.protocols.jabber"
    assert len(set(out.values())) == len(names)
    assert all(len(v) <= MAX_LABEL for k, v in out.items())
    assert out["twisted.alpha.beta.gamma.delta.one"].endswith("delta.one")
    # abbreviating to initials would make these two equal: the longer label stays
    clash = labels(["x.ab.c" + "d" * 30, "x.ax.c" + "d" * 30, "x.y"])
    assert len(set(clash.values())) == 3


def test_long_names_have_their_full_name_on_hover() -> None:
    long = "corral.plugins.builtin.architecture.render_something_long"
    project = jobs_project()
    project["metrics"]["packages"] = {long: _pkg(0, 0), "jobs": _pkg(0, 0)}
    project["package_edges"] = []
    parser = overview(render_html(make_report([project])))
    node = [a for a in parser.of("g", "node") if a["data-name"] == long]
    assert node
    text = render_html(make_report([project]))
    assert f"<title>{long} (package): " in text


def test_unresolved_imports_are_listed_with_file_and_line() -> None:
    report = make_report()
    report["summary"]["unresolved_imports"] = 1
    report["unresolved"] = [
        {"importer": "shop.api", "path": "shop/api.py", "line": 3, "name": "shop.generated"}
    ]
    md = render_markdown(report)
    assert "## Unresolved imports (1)" in md
    assert "`shop/api.py:3`" in md and "`shop.generated`" in md
    assert "Unresolved imports" in render_html(report)
    # a report without the field (an older one) renders as before
    assert "Unresolved imports" not in render_markdown(make_report())
