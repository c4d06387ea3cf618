"""Markdown and HTML renderings of the architecture report (schema version 2)."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

from corral.plugins.builtin.architecture.render import (
    MAX_GRAPH_NODES,
    layout_graph,
    render_html,
    render_markdown,
)

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


def edges_by_pair(parser: StrictParser) -> dict[tuple[str, str], dict[str, str]]:
    return {(a["data-from"], a["data-to"]): a for a in parser.of("path", "edge")}


def test_html_is_well_formed_and_has_one_graph_per_project() -> None:
    text = render_html(make_report())
    assert text.startswith("<!DOCTYPE html>")
    parser = parse(text)
    assert text.count("<svg") == 2
    assert len(parser.of("svg")) == 2
    names = sorted(a["data-name"] for a in parser.of("g", "node"))
    assert names == ["jobs", "jobs.queue", "shop.core", "shop.util", "shop.web"]
    for tag in ("html", "head", "body", "main", "table", "figure"):
        assert parser.of(tag), tag


def test_html_graph_highlights_cycles_and_cuts() -> None:
    parser = parse(render_html(make_report()))
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
        assert edges[pair]["stroke"] == RED
        assert float(edges[pair]["stroke-width"]) > 2
    for pair in [("shop.web", "shop.util"), ("shop.core", "shop.util"), ("jobs", "jobs.queue")]:
        assert "cycle" not in edges[pair]["class"].split()
        assert edges[pair]["stroke"] != RED
    # the cut (given as modules) lands on the package edge shop.core -> shop.web only
    assert "cut" in edges[("shop.core", "shop.web")]["class"].split()
    assert edges[("shop.core", "shop.web")].get("stroke-dasharray")
    dashed = {pair for pair, a in edges.items() if a.get("stroke-dasharray")}
    assert dashed == {("shop.core", "shop.web")}
    nodes = {a["data-name"]: a for a in parser.of("g", "node")}
    assert "cycle" in nodes["shop.core"]["class"].split()
    assert "cycle" not in nodes["shop.util"]["class"].split()
    red_rects = [a for a in parser.of("rect") if a.get("stroke") == RED]
    assert len(red_rects) == 2
    # each edge has an arrowhead defined in its own svg
    markers = {a["id"] for a in parser.of("marker")}
    for a in edges.values():
        ref = re.fullmatch(r"url\(#(.+)\)", a["marker-end"])
        assert ref and ref.group(1) in markers


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


def test_layout_dag_gets_one_level_per_step_top_down() -> None:
    layout = layout_graph(["c", "b", "a"], [("a", "b"), ("b", "c")])
    ys = {n: y for n, (_, y) in layout.positions.items()}
    assert len(set(ys.values())) == 3
    assert ys["a"] < ys["b"] < ys["c"]
    assert layout.layer == {"a": 0, "b": 1, "c": 2}
    for x, y in layout.positions.values():
        assert x >= 0 and x + 140 <= layout.width
        assert y >= 0 and y + 28 <= layout.height


def test_layout_cycle_gets_its_own_band_and_is_deterministic() -> None:
    edges = [("a", "b"), ("b", "a"), ("b", "c"), ("top", "a")]
    layout = layout_graph(["a", "b", "c", "top"], edges)
    layer = layout.layer
    # the cycle is condensed for the layering: everything it imports is below it,
    # everything importing it above; inside, one edge of the cycle points up
    assert layer["top"] < min(layer["a"], layer["b"])
    assert max(layer["a"], layer["b"]) < layer["c"]
    assert layer["a"] != layer["b"]
    assert sorted(layer.values()) == [0, 1, 2, 3]
    again = layout_graph(["top", "c", "b", "a"], list(reversed(edges)))
    assert again == layout


def test_layout_feedback_edges_are_the_ones_pointing_up() -> None:
    edges = [("a", "b"), ("b", "a")]
    up_ba = layout_graph(["a", "b"], edges, feedback=[("b", "a")]).layer
    assert up_ba["a"] < up_ba["b"]  # b -> a is drawn upwards: b below a
    up_ab = layout_graph(["a", "b"], edges, feedback=[("a", "b")]).layer
    assert up_ab["b"] < up_ab["a"]


def test_layout_barycenter_uncrosses_edges() -> None:
    # x1 -> y2 and x2 -> y1: sorted by name the two edges cross; ordering fixes it
    layout = layout_graph(["x1", "x2", "y1", "y2"], [("x1", "y2"), ("x2", "y1")])
    pos = layout.positions
    assert (pos["x1"][0] < pos["x2"][0]) == (pos["y2"][0] < pos["y1"][0])


def test_layout_wraps_wide_layers() -> None:
    leaves = [f"leaf{i}" for i in range(20)]
    layout = layout_graph(["root", *leaves], [("root", leaf) for leaf in leaves])
    rows = {layout.row[leaf] for leaf in leaves}
    assert len(rows) == 3  # 8 + 8 + 4
    assert all(layout.layer[leaf] == 1 for leaf in leaves)
    assert len(set(layout.positions.values())) == 21


def test_medium_report_renders_whole_graph() -> None:
    text = render_html(big_report(120))
    parser = parse(text)
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


def test_large_report_graph_is_truncated_with_caption() -> None:
    text = render_html(big_report(300))
    parser = parse(text)
    assert len(parser.of("g", "node")) == MAX_GRAPH_NODES
    assert f"Showing the {MAX_GRAPH_NODES} most coupled of 300 packages" in text
    drawn = {a["data-name"] for a in parser.of("g", "node")}
    for a in parser.of("path", "edge"):
        assert a["data-from"] in drawn and a["data-to"] in drawn


def test_long_names_are_shortened_with_full_name_in_tooltip() -> None:
    long = "corral.plugins.builtin.architecture.render"
    project = jobs_project()
    project["metrics"]["packages"] = {long: _pkg(0, 0)}
    project["package_edges"] = []
    text = render_html(make_report([project]))
    assert ">…architecture.render</text>" in text
    assert f"<title>{long}: " in text
