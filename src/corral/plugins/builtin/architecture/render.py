"""Markdown and self-contained HTML renderings of the architecture report.

Both renderings come from one intermediate document (headings, paragraphs,
tables and lists built by :func:`_document`), so the two formats cannot drift
apart: whatever the markdown says, the HTML says too. The HTML adds what
markdown cannot carry, an inline SVG drawing of each project's package graph,
laid out here in pure Python so the file needs nothing but a browser.

The renderers only read the report (schema version 2). They tolerate missing
optional sections (``.get`` with a neutral default), so a partial or older
report still renders instead of raising. Long lists are bounded: a report of
1,500 modules must stay something a person can read.

The HTML is one offline file: inline CSS, a few lines of optional inline JS,
no fonts, images or scripts fetched from anywhere (a Content-Security-Policy
meta tag makes the browser enforce that). Every string taken from the report
goes through :func:`html.escape`; in markdown, through :func:`_md_text` or
:func:`_md_code`, because module names, paths and error messages are data, not
markup.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from corral.plugins.builtin.architecture.cycles import components_sinks_first

__all__ = ["GraphLayout", "layout_graph", "render_html", "render_markdown"]

MAX_ROWS = 50
"""Rows of any one table or list; the rest is counted ("… and N more")."""
MAX_LOCATIONS = 10
"""File locations / cut edges / members listed under one item."""
MAX_GRAPH_NODES = 150
"""Packages drawn in one SVG; past this, a drawing is a hairball, not a map."""

NODE_W = 140.0
NODE_H = 28.0
H_GAP = 18.0
ROW_GAP = 64.0
MARGIN_X = 20.0
MARGIN_Y = 48.0  # room for the arcs drawn above the first / below the last row
MAX_ROW_NODES = 8
LABEL_CHARS = 20

_RED = "#d62728"
_GREY = "#8a94a6"

_T = TypeVar("_T")

# --------------------------------------------------------------------------
# The intermediate document
# --------------------------------------------------------------------------

InlineKind = Literal["text", "code", "strong"]
Inline = tuple[InlineKind, str]
Run = list[Inline]


def _t(value: object) -> Inline:
    return ("text", str(value))


def _c(value: object) -> Inline:
    return ("code", str(value))


def _b(value: object) -> Inline:
    return ("strong", str(value))


@dataclass(slots=True)
class _Heading:
    level: int
    run: Run


@dataclass(slots=True)
class _Para:
    run: Run


@dataclass(slots=True)
class _Table:
    headers: tuple[str, ...]
    numeric: tuple[bool, ...]
    rows: list[list[Run]]


@dataclass(slots=True)
class _Item:
    main: Run
    body: list[Run] = field(default_factory=list)  # further lines of the item
    children: list[Run] = field(default_factory=list)  # nested bullets


@dataclass(slots=True)
class _List:
    ordered: bool
    items: list[_Item]


@dataclass(slots=True)
class _Graph:
    """HTML only: the package graph of one project."""

    level: int
    index: int
    project: dict[str, Any]


_Block = _Heading | _Para | _Table | _List | _Graph


def _bounded(items: Sequence[_T], limit: int = MAX_ROWS) -> tuple[list[_T], int]:
    return list(items[:limit]), max(0, len(items) - limit)


def _more(rest: int, what: str) -> _Para:
    return _Para([_t(f"… and {rest} more {what}.")])


def _num(value: Any, digits: int = 2) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _loc(path: Any, line: Any) -> str:
    return f"{path}:{line}" if line is not None else str(path)


def _loc_lines(path: Any, lines: Sequence[Any] | None) -> str:
    """``path:3`` or ``path:3,7``: the import statements of one edge."""
    if not lines:
        return str(path)
    shown = ",".join(str(n) for n in lines[:MAX_LOCATIONS])
    return f"{path}:{shown}" + (",…" if len(lines) > MAX_LOCATIONS else "")


def _names(names: Sequence[Any], limit: int = MAX_LOCATIONS * 2) -> Run:
    shown, rest = _bounded(names, limit)
    run: Run = []
    for i, name in enumerate(shown):
        if i:
            run.append(_t(", "))
        run.append(_c(name))
    if rest:
        run.append(_t(f" … and {rest} more"))
    return run


# --------------------------------------------------------------------------
# Building the document from the report
# --------------------------------------------------------------------------

_SUMMARY_LABELS = (
    ("projects", "Projects"),
    ("packages", "Packages"),
    ("modules", "Modules"),
    ("loc", "Lines of code"),
    ("edges", "Internal imports (module edges)"),
    ("external_imports", "External dependencies"),
    ("module_cycles", "Module cycles"),
    ("package_cycles", "Package cycles"),
    ("violations", "Layer violations"),
    ("not_analysed", "Files not analysed"),
    ("score", "Score"),
)


def _document(report: dict[str, Any]) -> list[_Block]:
    blocks: list[_Block] = [
        _Heading(1, [_t("Architecture report: "), _c(report.get("root", "?"))]),
        _Para(_meta_run(report)),
    ]
    blocks += _summary_blocks(report.get("summary") or {})
    blocks += _score_blocks(report.get("score"))
    blocks += _recommendation_blocks(report.get("recommendations") or [])
    projects = report.get("projects") or []
    for index, project in enumerate(projects):
        blocks += _project_blocks(project, index, multi=len(projects) > 1)
    blocks += _not_analysed_blocks(report.get("not_analysed") or [])
    return blocks


def _meta_run(report: dict[str, Any]) -> Run:
    run: Run = [_t(f"Generated by {report.get('tool', 'corral')}")]
    if "version" in report:
        run.append(_t(f" (report version {report['version']})"))
    options = report.get("options") or {}
    notes: Run = []
    excludes = options.get("exclude") or []
    if excludes:
        notes += [_t("excluded "), *_names(excludes)]
    if options.get("exclude_tests"):
        notes += [*([_t("; ")] if notes else []), _t("tests excluded")]
    if options.get("exclude_type_checking"):
        notes += [*([_t("; ")] if notes else []), _t("imports under TYPE_CHECKING ignored")]
    if notes:
        run += [_t(". Options: "), *notes]
    run.append(_t("."))
    return run


def _summary_blocks(summary: dict[str, Any]) -> list[_Block]:
    if not summary:
        return []
    known = dict(_SUMMARY_LABELS)
    keys = [k for k, _ in _SUMMARY_LABELS if k in summary]
    keys += sorted(k for k in summary if k not in known)
    rows = [[[_t(known.get(k, k))], [_t(_num(summary[k]))]] for k in keys]
    return [_Heading(2, [_t("Summary")]), _Table(("Metric", "Value"), (False, True), rows)]


def _score_blocks(score: dict[str, Any] | None, level: int = 2) -> list[_Block]:
    if not score:
        return []
    blocks: list[_Block] = [_Heading(level, [_t(f"Score: {score.get('value', '?')}/100")])]
    components = score.get("components") or []
    if components:
        rows = [
            [
                [_t(comp.get("name", ""))],
                [_t(_num(comp.get("penalty"), 1))],
                [_t(_num(comp.get("max"), 1))],
                [_t(comp.get("detail", ""))],
            ]
            for comp in components
        ]
        blocks.append(
            _Table(("Component", "Penalty", "Max", "Detail"), (False, True, True, False), rows)
        )
    return blocks


def _recommendation_blocks(recs: Sequence[dict[str, Any]]) -> list[_Block]:
    blocks: list[_Block] = [_Heading(2, [_t("Recommendations")])]
    if not recs:
        return [*blocks, _Para([_t("Nothing to recommend.")])]
    ordered = sorted(recs, key=lambda r: r.get("priority", 1_000_000))
    shown, rest = _bounded(ordered)
    items = []
    for rec in shown:
        main: Run = [_b(rec.get("title", "")), _t(f" ({rec.get('kind', '?')})")]
        body = [[_t(rec["detail"])]] if rec.get("detail") else []
        locations, more = _bounded(rec.get("locations") or [], MAX_LOCATIONS)
        children: list[Run] = [[_c(_loc(loc.get("path"), loc.get("line")))] for loc in locations]
        if more:
            children.append([_t(f"… and {more} more locations")])
        items.append(_Item(main, body, children))
    blocks.append(_List(True, items))
    if rest:
        blocks.append(_more(rest, "recommendations"))
    return blocks


def _project_blocks(project: dict[str, Any], index: int, *, multi: bool) -> list[_Block]:
    level = 3 if multi else 2
    blocks: list[_Block] = []
    where: Run = [
        _t("Project "),
        _c(project.get("name", "?")),
        _t(" at "),
        _c(project.get("path", ".")),
    ]
    if project.get("config_file"):
        where += [_t(", configured by "), _c(project["config_file"])]
    if multi:
        blocks.append(_Heading(2, [_t("Project: "), _c(project.get("name", "?"))]))
        s = project.get("summary") or {}
        where.append(
            _t(
                f": {s.get('packages', 0)} packages, {s.get('modules', 0)} modules, "
                f"{s.get('loc', 0)} lines of code, {s.get('edges', 0)} internal imports; "
                f"cycles: {s.get('module_cycles', 0)} between modules, "
                f"{s.get('package_cycles', 0)} between packages; "
                f"layer violations: {s.get('violations', 0)}"
            )
        )
        if project.get("score"):
            where.append(_t(f"; score {project['score'].get('value', '?')}/100"))
    where.append(_t("."))
    blocks.append(_Para(where))
    blocks += _packages_blocks(project, level)
    if (project.get("metrics") or {}).get("packages"):
        blocks.append(_Graph(level, index, project))
    blocks += _cycle_blocks(project.get("cycles") or {}, level)
    blocks += _layers_blocks(project.get("layers") or {}, level)
    blocks += _hub_blocks(project.get("hubs") or [], level)
    blocks += _external_blocks(project.get("external") or [], level)
    return blocks


def _coupling(info: dict[str, Any]) -> int:
    return int(info.get("ca") or 0) + int(info.get("ce") or 0)


def _packages_blocks(project: dict[str, Any], level: int) -> list[_Block]:
    packages: dict[str, dict[str, Any]] = (project.get("metrics") or {}).get("packages") or {}
    blocks: list[_Block] = [_Heading(level, [_t("Packages")])]
    if not packages:
        return [*blocks, _Para([_t("No packages found.")])]
    names = sorted(packages)
    rest = max(0, len(names) - MAX_ROWS)
    if rest:  # keep the most coupled, still listed by name
        keep = sorted(names, key=lambda n: (-_coupling(packages[n]), n))[:MAX_ROWS]
        names = sorted(keep)
    rows = []
    for name in names:
        info = packages[name]
        rows.append(
            [[_c(name)]]
            + [
                [_t(_num(info.get(key)))]
                for key in ("modules", "loc", "ca", "ce", "instability", "abstractness", "distance")
            ]
        )
    blocks.append(
        _Table(
            ("Package", "Modules", "LOC", "Ca", "Ce", "I", "A", "D"),
            (False, True, True, True, True, True, True, True),
            rows,
        )
    )
    blocks.append(
        _Para(
            [
                _t(
                    "Ca: packages importing it; Ce: packages it imports; I = Ce/(Ca+Ce) "
                    "instability; A abstractness; D distance from the main sequence |A+I-1|."
                )
            ]
        )
    )
    if rest:
        blocks.append(_more(rest, "packages (the most coupled are shown)"))
    return blocks


def _cycle_item(cycle: dict[str, Any], noun: str) -> _Item:
    members = list(cycle.get("members") or [])
    example = list(cycle.get("example") or ([*members, members[0]] if members else []))
    size = cycle.get("size", len(members))
    main: Run = [_c(" -> ".join(str(x) for x in example)), _t(f" ({size} {noun})")]
    children: list[Run] = []
    if len(set(example)) < len(members):
        children.append([_t("members: "), *_names(members)])
    cuts, rest = _bounded(cycle.get("cut") or [], MAX_LOCATIONS)
    for cut in cuts:
        children.append(
            [
                _t("suggested cut: "),
                _c(f"{cut.get('importer')} -> {cut.get('imported')}"),
                _t(" at "),
                _c(_loc_lines(cut.get("path"), cut.get("lines"))),
            ]
        )
    if rest:
        children.append([_t(f"… and {rest} more suggested cuts")])
    return _Item(main, [], children)


def _cycle_blocks(cycles: dict[str, Any], level: int) -> list[_Block]:
    blocks: list[_Block] = [_Heading(level, [_t("Cycles")])]
    kinds = (("packages", "Package cycles", "packages"), ("modules", "Module cycles", "modules"))
    if not any(cycles.get(key) for key, _, _ in kinds):
        return [*blocks, _Para([_t("No import cycles between modules or packages.")])]
    for key, title, noun in kinds:
        found = cycles.get(key) or []
        blocks.append(_Heading(level + 1, [_t(f"{title} ({len(found)})")]))
        if not found:
            blocks.append(_Para([_t(f"No cycles between {noun}.")]))
            continue
        shown, rest = _bounded(found)
        blocks.append(_List(True, [_cycle_item(cycle, noun) for cycle in shown]))
        if rest:
            blocks.append(_more(rest, f"{noun[:-1]} cycles"))
    return blocks


def _layers_blocks(layers: dict[str, Any], level: int) -> list[_Block]:
    blocks: list[_Block] = [_Heading(level, [_t("Layers")])]
    source = layers.get("source") or "none"
    head: Run = [_t("Source: "), _c(source), _t(", style: "), _c(layers.get("style") or "none")]
    if layers.get("config_file"):
        head += [_t(", from "), _c(layers["config_file"])]
    head.append(_t("."))
    blocks.append(_Para(head))
    if layers.get("detail"):
        blocks.append(_Para([_t(layers["detail"])]))
    contracts = layers.get("contracts") or []
    if not contracts:
        blocks.append(_Para([_t("No layer contracts were declared or detected.")]))
        return blocks
    conformance = layers.get("conformance")
    if conformance is not None:
        blocks.append(
            _Para(
                [
                    _t(
                        f"Conformance: {conformance * 100:.1f}% of "
                        f"{layers.get('checked_edges', 0)} checked imports; "
                        f"{layers.get('violations', 0)} violations."
                    )
                ]
            )
        )
    for problem in layers.get("problems") or []:
        blocks.append(_Para([_b("Problem: "), _t(problem)]))
    shown, rest = _bounded(contracts)
    rows = [
        [
            [_t(ct.get("name", ""))],
            [_t(ct.get("kind", ""))],
            [_t(_contract_status(ct))],
            [_t(_num(ct.get("violation_count", 0)))],
        ]
        for ct in shown
    ]
    blocks.append(
        _Table(("Contract", "Kind", "Status", "Violations"), (False, False, False, True), rows)
    )
    if rest:
        blocks.append(_more(rest, "contracts"))
    for ct in shown:
        blocks += _contract_blocks(ct)
    return blocks


def _contract_status(ct: dict[str, Any]) -> str:
    """kept / broken / not checked (``kept`` is None for contract types corral
    does not check)."""
    kept = ct.get("kept")
    return "not checked" if kept is None else "kept" if kept else "broken"


def _contract_blocks(ct: dict[str, Any]) -> list[_Block]:
    count = ct.get("violation_count", 0)
    status = _contract_status(ct)
    if status == "broken":
        status = f"broken, {count} violations" if count else f"broken: {ct.get('detail', '')}"
    head: Run = [_b(ct.get("name", "")), _t(f" ({ct.get('kind', '?')}): {status}")]
    if ct.get("layers"):
        head.append(_t(". Layers, top first: "))
        for i, layer in enumerate(ct["layers"]):
            if i:
                head.append(_t(" > "))
            head += _names(list(layer), MAX_LOCATIONS)
    elif ct.get("modules"):
        head += [_t(". Modules: "), *_names(ct["modules"])]
    head.append(_t("."))
    blocks: list[_Block] = [_Para(head)]
    violations = ct.get("violations") or []
    if not violations:
        return blocks
    shown, rest = _bounded(violations)
    items = []
    for v in shown:
        chain = v.get("chain") or [v.get("importer"), v.get("imported")]
        main: Run = [
            _c(" -> ".join(str(x) for x in chain)),
            _t(" at "),
            _c(_loc(v.get("path"), v.get("line"))),
            _t(" (direct" if v.get("direct") else " (indirect"),
        ]
        if v.get("importer_layer") or v.get("imported_layer"):
            main += [
                _t(", layer "),
                _c(v.get("importer_layer") or "?"),
                _t(" -> "),
                _c(v.get("imported_layer") or "?"),
            ]
        main.append(_t(")"))
        items.append(_Item(main))
    blocks.append(_List(False, items))
    hidden = rest + (max(0, count - len(violations)) if ct.get("truncated") else 0)
    if ct.get("truncated"):
        blocks.append(
            _Para(
                [
                    _t(
                        f"Showing {len(shown)} of {count} violations: the analyser "
                        "truncated the list."
                    )
                ]
            )
        )
    elif hidden:
        blocks.append(_more(hidden, "violations"))
    return blocks


def _hub_blocks(hubs: Sequence[dict[str, Any]], level: int) -> list[_Block]:
    blocks: list[_Block] = [_Heading(level, [_t("Most coupled modules")])]
    if not hubs:
        return [*blocks, _Para([_t("No module imports or is imported by another.")])]
    shown, rest = _bounded(hubs)
    rows = [
        [
            [_c(h.get("module", ""))],
            [_c(h.get("path", ""))],
            [_t(_num(h.get("ca")))],
            [_t(_num(h.get("ce")))],
            [_t(_num(h.get("instability")))],
        ]
        for h in shown
    ]
    blocks.append(
        _Table(("Module", "Path", "Ca", "Ce", "I"), (False, False, True, True, True), rows)
    )
    if rest:
        blocks.append(_more(rest, "modules"))
    return blocks


def _external_blocks(external: Sequence[dict[str, Any]], level: int) -> list[_Block]:
    blocks: list[_Block] = [_Heading(level, [_t("External dependencies")])]
    if not external:
        return [*blocks, _Para([_t("No imports outside the project.")])]
    ordered = sorted(external, key=lambda e: (-int(e.get("importers") or 0), str(e.get("name"))))
    shown, rest = _bounded(ordered)
    rows = [
        [
            [_c(e.get("name", ""))],
            [_c(e["distribution"]) if e.get("distribution") else _t("—")],
            [_t("yes" if e.get("stdlib") else "no")],
            [_t(_num(e.get("importers")))],
        ]
        for e in shown
    ]
    blocks.append(
        _Table(("Name", "Distribution", "Stdlib", "Importers"), (False, False, False, True), rows)
    )
    if rest:
        blocks.append(_more(rest, "external dependencies"))
    return blocks


def _not_analysed_blocks(files: Sequence[dict[str, Any]]) -> list[_Block]:
    blocks: list[_Block] = [_Heading(2, [_t(f"Files not analysed ({len(files)})")])]
    if not files:
        return [*blocks, _Para([_t("Every Python file was analysed.")])]
    shown, rest = _bounded(files)
    rows = [[[_c(f.get("path", ""))], [_t(f.get("reason", ""))]] for f in shown]
    blocks.append(_Table(("Path", "Reason"), (False, False), rows))
    if rest:
        blocks.append(_more(rest, "files"))
    return blocks


# --------------------------------------------------------------------------
# Markdown
# --------------------------------------------------------------------------

# Backslash-escapable punctuation that means something inline in GFM. ``>``,
# ``#``, ``-`` and digits only matter at the start of a line: see _md_start.
_MD_SPECIAL = re.compile(r"([\\`*_\[\]<|&~])")
_NEWLINES = re.compile(r"[\r\n\t]+")


def _md_text(text: str) -> str:
    return _MD_SPECIAL.sub(r"\\\1", _NEWLINES.sub(" ", text))


def _md_code(text: str, *, table: bool) -> str:
    text = _NEWLINES.sub(" ", text)
    if not text:
        return ""
    if table:  # GFM splits cells before inline parsing, even inside code spans
        text = text.replace("|", "\\|")
    fence = "`" * (max((len(m) for m in re.findall(r"`+", text)), default=0) + 1)
    pad = " " if text[0] in "` " or text[-1] in "` " else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _md_inline(run: Run, *, table: bool = False) -> str:
    out = []
    for kind, value in run:
        if kind == "code":
            out.append(_md_code(value, table=table))
        elif kind == "strong":
            out.append(f"**{_md_text(value.strip())}**" if value.strip() else "")
        else:
            out.append(_md_text(value))
    return "".join(out)


def _md_start(line: str) -> str:
    """Keep a line of data from starting a heading, quote, list or rule."""
    line = line.lstrip()
    if line[:1] in ("#", ">", "-", "+", "="):
        return "\\" + line
    m = re.match(r"\d+(?=[.)])", line)
    return f"{m.group()}\\{line[m.end() :]}" if m else line


def _md_block(block: _Block) -> str | None:
    if isinstance(block, _Heading):
        return "#" * block.level + " " + _md_inline(block.run)
    if isinstance(block, _Para):
        return _md_start(_md_inline(block.run))
    if isinstance(block, _Table):
        lines = [
            "| " + " | ".join(block.headers) + " |",
            "| " + " | ".join("---:" if n else "---" for n in block.numeric) + " |",
        ]
        for row in block.rows:
            lines.append("| " + " | ".join(_md_inline(c, table=True) for c in row) + " |")
        return "\n".join(lines)
    if isinstance(block, _List):
        lines = []
        for n, item in enumerate(block.items, 1):
            marker = f"{n}." if block.ordered else "-"
            indent = " " * (len(marker) + 1)
            lines.append(f"{marker} {_md_start(_md_inline(item.main))}")
            for run in item.body:  # a hard line break keeps the item one paragraph
                lines[-1] += "\\"
                lines.append(indent + _md_start(_md_inline(run)))
            lines += [f"{indent}- {_md_start(_md_inline(run))}" for run in item.children]
        return "\n".join(lines)
    return None  # the graph: HTML only


def render_markdown(report: dict[str, Any]) -> str:
    """The report as a GitHub-flavoured markdown document."""
    parts = [_md_block(block) for block in _document(report)]
    return "\n\n".join(p for p in parts if p) + "\n"


# --------------------------------------------------------------------------
# Graph layout
# --------------------------------------------------------------------------


@dataclass(slots=True)
class GraphLayout:
    """Where each node box goes (top-left corner, SVG user units).

    ``layer`` is the longest-path level (0 = top: importers above what they
    import); ``row`` is the drawn row, since a wide layer wraps onto several.
    """

    positions: dict[str, tuple[float, float]]
    layer: dict[str, int]
    row: dict[str, int]
    width: float
    height: float


_STEP = NODE_W + H_GAP


def _row_centres(nodes: Sequence[str]) -> dict[str, float]:
    """Centre x (0 = canvas centre line) of a layer's nodes, wrapped into rows."""
    xs: dict[str, float] = {}
    for start in range(0, len(nodes), MAX_ROW_NODES):
        chunk = nodes[start : start + MAX_ROW_NODES]
        for j, name in enumerate(chunk):
            xs[name] = (j - (len(chunk) - 1) / 2) * _STEP
    return xs


def _inner_depths(
    comp: list[str], succ: dict[str, list[str]], feedback: set[tuple[str, str]]
) -> dict[str, int]:
    """Levels inside one strongly connected component, top = 0.

    The preferred feedback edges (the report's suggested cuts) are dropped,
    then the back edges of a deterministic DFS, which leaves a DAG; its longest
    paths give the levels. Drawn this way a cycle reads like the rest of the
    graph, with only its feedback edges pointing up, instead of a row of boxes
    tangled in arcs.
    """
    inside = set(comp)
    internal = {n: [m for m in succ[n] if m in inside and (n, m) not in feedback] for n in comp}
    indeg = dict.fromkeys(comp, 0)
    for targets in internal.values():
        for m in targets:
            indeg[m] += 1
    kept: dict[str, list[str]] = {n: [] for n in comp}
    state: dict[str, int] = {}  # 1 = on the DFS path, 2 = finished
    for root in sorted(comp, key=lambda n: (indeg[n] - len(internal[n]), n)):
        if root in state:
            continue
        state[root] = 1
        stack = [(root, iter(internal[root]))]
        while stack:
            node, pending = stack[-1]
            nxt = next(pending, None)
            if nxt is None:
                state[node] = 2
                stack.pop()
            elif state.get(nxt) != 1:  # an edge back onto the path would close a cycle
                kept[node].append(nxt)
                if nxt not in state:
                    state[nxt] = 1
                    stack.append((nxt, iter(internal[nxt])))
    remaining = dict.fromkeys(comp, 0)
    for targets in kept.values():
        for m in targets:
            remaining[m] += 1
    depth = dict.fromkeys(comp, 0)
    ready = sorted(n for n in comp if remaining[n] == 0)
    while ready:  # Kahn: longest path from the top
        node = ready.pop()
        for m in kept[node]:
            depth[m] = max(depth[m], depth[node] + 1)
            remaining[m] -= 1
            if remaining[m] == 0:
                ready.append(m)
    return depth


def layout_graph(
    nodes: Iterable[str],
    edges: Iterable[tuple[str, str]],
    feedback: Iterable[tuple[str, str]] = (),
) -> GraphLayout:
    """A deterministic layered (Sugiyama-style) layout of a directed graph.

    Strongly connected components are condensed so the layering between them
    is well defined: layers are longest paths to a sink, so the most
    depended-on nodes sit at the bottom and every edge between components
    points down. Each component gets a band of layers of its own, levelled
    by :func:`_inner_depths` (``feedback`` names the edges to prefer as the
    upward ones). A few barycenter sweeps order each layer to cut crossings.
    Layers wider than ``MAX_ROW_NODES`` wrap, so a flat graph becomes a grid
    instead of a ribbon.
    """
    names = sorted(set(nodes))
    known = set(names)
    succ_sets: dict[str, set[str]] = {n: set() for n in names}
    for a, b in edges:
        if a in known and b in known and a != b:
            succ_sets[a].add(b)
    succ = {n: sorted(v) for n, v in succ_sets.items()}
    nbrs: dict[str, set[str]] = {n: set(v) for n, v in succ_sets.items()}
    for a, targets in succ.items():
        for b in targets:
            nbrs[b].add(a)

    comps = components_sinks_first(succ, names)  # successors come first
    comp_of = {n: i for i, comp in enumerate(comps) for n in comp}
    preferred = set(feedback)
    depth: dict[str, int] = {}
    thick = [1] * len(comps)
    bottom = [0] * len(comps)  # the component's lowest layer, counted from the bottom
    for i, comp in enumerate(comps):  # successors were emitted (and placed) first
        depth.update(_inner_depths(comp, succ, preferred) if len(comp) > 1 else {comp[0]: 0})
        thick[i] = 1 + max(depth[n] for n in comp)
        below = {comp_of[b] for a in comp for b in succ[a]} - {i}
        if below:
            bottom[i] = max(bottom[j] + thick[j] for j in below)
    total = max((b + t for b, t in zip(bottom, thick, strict=True)), default=1)
    layer_of = {n: total - bottom[comp_of[n]] - thick[comp_of[n]] + depth[n] for n in names}

    rows: list[list[str]] = [[] for _ in range(total)]
    for name in names:
        rows[layer_of[name]].append(name)

    x: dict[str, float] = {}
    for row in rows:
        x.update(_row_centres(row))
    for sweep in range(4):
        downward = sweep % 2 == 0
        for li in range(len(rows)) if downward else range(len(rows) - 1, -1, -1):
            current = {name: pos for pos, name in enumerate(rows[li])}

            def barycentre(
                name: str, li: int = li, down: bool = downward, current: dict[str, int] = current
            ) -> tuple[float, int]:
                vals = [
                    x[m] for m in nbrs[name] if (layer_of[m] < li if down else layer_of[m] > li)
                ]
                return (sum(vals) / len(vals) if vals else x[name]), current[name]

            rows[li].sort(key=barycentre)
            x.update(_row_centres(rows[li]))

    positions: dict[str, tuple[float, float]] = {}
    row_of: dict[str, int] = {}
    drawn_row = 0
    widest = 1
    for row in rows:
        for start in range(0, max(len(row), 1), MAX_ROW_NODES):
            chunk = row[start : start + MAX_ROW_NODES]
            widest = max(widest, len(chunk))
            for name in chunk:
                row_of[name] = drawn_row
            drawn_row += 1
    inner = widest * _STEP - H_GAP
    for name in names:
        left = MARGIN_X + inner / 2 + x[name] - NODE_W / 2
        top_y = MARGIN_Y + row_of[name] * (NODE_H + ROW_GAP)
        positions[name] = (round(left, 1), round(top_y, 1))
    height_px = 2 * MARGIN_Y + drawn_row * (NODE_H + ROW_GAP) - ROW_GAP
    return GraphLayout(
        positions, layer_of, row_of, round(inner + 2 * MARGIN_X, 1), round(height_px, 1)
    )


# --------------------------------------------------------------------------
# The package graph as SVG
# --------------------------------------------------------------------------


@dataclass(slots=True)
class _GraphData:
    nodes: list[str]
    edges: list[tuple[str, str, int]]
    total: int
    hidden_edges: int
    cycle_of: dict[str, set[int]]
    cuts: set[tuple[str, str]]
    info: dict[str, dict[str, Any]]


def _owner(name: str, nodes: set[str], modules: dict[str, Any]) -> str | None:
    """The drawn package a module (or package) name belongs to: longest prefix."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in nodes:
            return candidate
    package = (modules.get(name) or {}).get("package")
    return package if package in nodes else None


def _graph_data(project: dict[str, Any]) -> _GraphData:
    metrics = project.get("metrics") or {}
    info: dict[str, dict[str, Any]] = metrics.get("packages") or {}
    modules: dict[str, Any] = metrics.get("modules") or {}
    counts: dict[tuple[str, str], int] = {}
    for edge in project.get("package_edges") or []:
        a, b = str(edge.get("importer")), str(edge.get("imported"))
        if a != b and a in info and b in info:
            counts[(a, b)] = counts.get((a, b), 0) + int(edge.get("count") or 1)
    degree = {n: 0 for n in info}
    for a, b in counts:
        degree[a] += 1
        degree[b] += 1
    names = sorted(info)
    if len(names) > MAX_GRAPH_NODES:
        names = sorted(
            sorted(names, key=lambda n: (-(_coupling(info[n]) or degree[n]), n))[:MAX_GRAPH_NODES]
        )
    drawn = set(names)
    edges = sorted((a, b, n) for (a, b), n in counts.items() if a in drawn and b in drawn)
    cycle_of: dict[str, set[int]] = {}
    cuts: set[tuple[str, str]] = set()
    for i, cycle in enumerate((project.get("cycles") or {}).get("packages") or []):
        for member in cycle.get("members") or []:
            cycle_of.setdefault(str(member), set()).add(i)
        for cut in cycle.get("cut") or []:
            src = _owner(str(cut.get("importer")), drawn, modules)
            dst = _owner(str(cut.get("imported")), drawn, modules)
            if src and dst and src != dst:
                cuts.add((src, dst))
    return _GraphData(names, edges, len(info), len(counts) - len(edges), cycle_of, cuts, info)


def _label(name: str) -> str:
    """The last dotted components that fit; the full name is in the tooltip."""
    if len(name) <= LABEL_CHARS:
        return name
    parts = name.split(".")
    label = parts[-1]
    for part in reversed(parts[:-1]):
        if len(part) + 1 + len(label) + 1 > LABEL_CHARS:
            break
        label = f"{part}.{label}"
    label = "…" + label
    return label if len(label) <= LABEL_CHARS else label[: LABEL_CHARS - 1] + "…"


def _f(value: float) -> str:
    return f"{value:.1f}".removesuffix(".0")


def _edge_geometry(
    layout: GraphLayout, a: str, b: str
) -> tuple[tuple[str, str], tuple[str, str], float]:
    """Which side of each box the edge leaves/enters, and the bow of the curve."""
    (ax, ay), (bx, by) = layout.positions[a], layout.positions[b]
    if by > ay:
        return (a, "bottom"), (b, "top"), max(18.0, (by - ay - NODE_H) / 2)
    if by < ay:
        return (a, "top"), (b, "bottom"), max(18.0, (ay - by - NODE_H) / 2)
    bow = min(40.0, 14.0 + abs(bx - ax) * 0.08)
    # same row (inside a cycle): left-to-right arcs above, right-to-left below
    side = "top" if ax < bx else "bottom"
    return (a, side), (b, side), bow


def _render_svg(data: _GraphData, index: int, title: str) -> str:
    layout = layout_graph(data.nodes, [(a, b) for a, b, _ in data.edges], data.cuts)
    pos = layout.positions

    geometry = [_edge_geometry(layout, a, b) for a, b, _ in data.edges]
    ports: dict[tuple[str, str], list[tuple[float, int]]] = {}
    for k, ((a, b, _), (src, dst, _bow)) in enumerate(zip(data.edges, geometry, strict=True)):
        ports.setdefault(src, []).append((pos[b][0], k))
        ports.setdefault(dst, []).append((pos[a][0], k))
    offset: dict[tuple[tuple[str, str], int], float] = {}
    for key, attached in ports.items():
        attached.sort()
        spacing = min(12.0, NODE_W * 0.7 / max(len(attached) - 1, 1))
        for j, (_, k) in enumerate(attached):
            offset[(key, k)] = (j - (len(attached) - 1) / 2) * spacing

    def anchor(end: tuple[str, str], k: int) -> tuple[float, float]:
        x, y = pos[end[0]]
        return x + NODE_W / 2 + offset[(end, k)], y + (NODE_H if end[1] == "bottom" else 0)

    pid = f"g{index}"
    out = [
        f'<svg class="depgraph" id="{pid}" viewBox="0 0 {_f(layout.width)} {_f(layout.height)}" '
        f'width="{_f(layout.width)}" height="{_f(layout.height)}" role="img" '
        f'aria-labelledby="{pid}-title" font-family="system-ui, sans-serif" font-size="12">',
        f'<title id="{pid}-title">{html.escape(title)}</title>',
        "<defs>",
    ]
    for name, colour in (("arrow", _GREY), ("arrow-cycle", _RED)):
        out.append(
            f'<marker id="{pid}-{name}" viewBox="0 0 10 10" refX="10" refY="5" '
            f'markerWidth="9" markerHeight="9" markerUnits="userSpaceOnUse" orient="auto">'
            f'<path d="M0,0 L10,5 L0,10 z" fill="{colour}"/></marker>'
        )
    out.append("</defs>")

    edge_svg: list[tuple[bool, str]] = []
    for k, ((a, b, count), (src, dst, bow)) in enumerate(zip(data.edges, geometry, strict=True)):
        (sx, sy), (ex, ey) = anchor(src, k), anchor(dst, k)
        sgn_s = 1 if src[1] == "bottom" else -1
        sgn_e = 1 if dst[1] == "bottom" else -1
        d = (
            f"M{_f(sx)},{_f(sy)} C{_f(sx)},{_f(sy + sgn_s * bow)} "
            f"{_f(ex)},{_f(ey + sgn_e * bow)} {_f(ex)},{_f(ey)}"
        )
        in_cycle = bool(data.cycle_of.get(a, set()) & data.cycle_of.get(b, set()))
        cut = (a, b) in data.cuts
        classes = "edge" + (" cycle" if in_cycle else "") + (" cut" if cut else "")
        attrs = (
            f'stroke="{_RED}" stroke-width="2.5" marker-end="url(#{pid}-arrow-cycle)"'
            if in_cycle
            else f'stroke="{_GREY}" stroke-width="1.2" marker-end="url(#{pid}-arrow)"'
        )
        if cut:
            attrs += ' stroke-dasharray="7 4"'
        tip = f"{a} → {b}: {count} import{'s' if count != 1 else ''}"
        if cut:
            tip += " (suggested cut)"
        edge_svg.append(
            (
                in_cycle,
                f'<path class="{classes}" data-from="{html.escape(a)}" '
                f'data-to="{html.escape(b)}" d="{d}" fill="none" {attrs}>'
                f"<title>{html.escape(tip)}</title></path>",
            )
        )
    out.append('<g class="edges">')
    out += [s for cyc, s in edge_svg if not cyc] + [s for cyc, s in edge_svg if cyc]
    out.append("</g>")

    out.append('<g class="nodes">')
    for name in data.nodes:
        x, y = pos[name]
        info = data.info.get(name) or {}
        in_cycle = name in data.cycle_of
        tip = (
            f"{name}: {_num(info.get('modules'))} modules, {_num(info.get('loc'))} LOC, "
            f"Ca {_num(info.get('ca'))}, Ce {_num(info.get('ce'))}, "
            f"I {_num(info.get('instability'))}, D {_num(info.get('distance'))}"
            + (" (in a package cycle)" if in_cycle else "")
        )
        fill, stroke, width = ("#fdecea", _RED, "2") if in_cycle else ("#eef3fb", "#5b7db1", "1")
        out.append(
            f'<g class="node{" cycle" if in_cycle else ""}" data-name="{html.escape(name)}">'
            f"<title>{html.escape(tip)}</title>"
            f'<rect x="{_f(x)}" y="{_f(y)}" width="{_f(NODE_W)}" height="{_f(NODE_H)}" rx="5" '
            f'fill="{fill}" stroke="{stroke}" stroke-width="{width}"/>'
            f'<text x="{_f(x + NODE_W / 2)}" y="{_f(y + NODE_H / 2 + 4)}" '
            f'text-anchor="middle" fill="#1f2937">{html.escape(_label(name))}</text></g>'
        )
    out.append("</g></svg>")
    return "\n".join(out)


def _graph_html(block: _Graph) -> str:
    data = _graph_data(block.project)
    name = str(block.project.get("name", "?"))
    caption = (
        "Arrows point from the importing package to the imported one; importers are drawn "
        "above what they import. Red: packages and imports in a package cycle; dashed: a "
        "suggested cut. Hover a package for its figures."
    )
    if data.total > len(data.nodes):
        caption += (
            f" Showing the {len(data.nodes)} most coupled of {data.total} packages; "
            f"{data.hidden_edges} imports involving hidden packages are not drawn."
        )
    svg = _render_svg(data, block.index, f"Package dependency graph of {name}")
    return (
        f"<h{block.level}>Package dependency graph</h{block.level}>\n"
        f'<figure class="graph"><div class="scroll">\n{svg}\n</div>'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
    )


# --------------------------------------------------------------------------
# HTML
# --------------------------------------------------------------------------

_CSS = """
:root { color-scheme: light; }
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1f2937;
  background: #fafbfc; margin: 0; }
main { max-width: 1200px; margin: 0 auto; padding: 1.5rem 2rem 4rem; }
h1 { font-size: 1.6rem; border-bottom: 2px solid #d0d7de; padding-bottom: .3rem; }
h2 { font-size: 1.3rem; margin-top: 2.2rem; border-bottom: 1px solid #d0d7de; }
h3 { font-size: 1.1rem; margin-top: 1.6rem; }
h4 { font-size: 1rem; }
code { font: 13px/1.4 ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace;
  background: #eef1f4; padding: .05rem .3rem; border-radius: 4px; overflow-wrap: anywhere; }
table { border-collapse: collapse; margin: .6rem 0; background: #fff; }
th, td { border: 1px solid #d0d7de; padding: .25rem .6rem; text-align: left;
  vertical-align: top; }
th { background: #f0f3f6; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
tbody tr:nth-child(even) { background: #f8fafc; }
.scroll { overflow-x: auto; }
nav ul { columns: 2; }
figure.graph { margin: .8rem 0; background: #fff; border: 1px solid #d0d7de;
  border-radius: 6px; padding: .5rem; }
figure.graph svg { max-width: 100%; height: auto; display: block; margin: 0 auto; }
figcaption { font-size: 13px; color: #57606a; margin-top: .4rem; }
svg .node { cursor: default; }
svg.focus .edge { opacity: .12; }
svg.focus .edge.hl { opacity: 1; stroke-width: 2.8; }
svg .node:hover rect { stroke-width: 3; }
"""

# Optional sugar: highlight a package's imports on hover. The page reads the
# same with scripts off; nothing here comes from the report.
_JS = """
document.querySelectorAll("svg.depgraph").forEach(function (svg) {
  var edges = svg.querySelectorAll(".edge");
  svg.querySelectorAll(".node").forEach(function (node) {
    var name = node.getAttribute("data-name");
    node.addEventListener("mouseenter", function () {
      svg.classList.add("focus");
      edges.forEach(function (e) {
        if (e.getAttribute("data-from") === name || e.getAttribute("data-to") === name) {
          e.classList.add("hl");
        }
      });
    });
    node.addEventListener("mouseleave", function () {
      svg.classList.remove("focus");
      edges.forEach(function (e) { e.classList.remove("hl"); });
    });
  });
});
"""

_CSP = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:"


def _h_inline(run: Run) -> str:
    out = []
    for kind, value in run:
        text = html.escape(value)
        if kind == "code":
            out.append(f"<code>{text}</code>")
        elif kind == "strong":
            out.append(f"<strong>{text}</strong>")
        else:
            out.append(text)
    return "".join(out)


def _h_block(block: _Block, anchor: str | None = None) -> str:
    if isinstance(block, _Heading):
        attr = f' id="{anchor}"' if anchor else ""
        return f"<h{block.level}{attr}>{_h_inline(block.run)}</h{block.level}>"
    if isinstance(block, _Para):
        return f"<p>{_h_inline(block.run)}</p>"
    if isinstance(block, _Table):

        def cls(numeric: bool) -> str:
            return ' class="num"' if numeric else ""

        head = "".join(
            f"<th{cls(n)}>{html.escape(h)}</th>"
            for h, n in zip(block.headers, block.numeric, strict=True)
        )
        body = "\n".join(
            "<tr>"
            + "".join(
                f"<td{cls(n)}>{_h_inline(cell)}</td>"
                for cell, n in zip(row, block.numeric, strict=True)
            )
            + "</tr>"
            for row in block.rows
        )
        return (
            f'<div class="scroll"><table>\n<thead><tr>{head}</tr></thead>\n'
            f"<tbody>\n{body}\n</tbody>\n</table></div>"
        )
    if isinstance(block, _List):
        tag = "ol" if block.ordered else "ul"
        items = []
        for item in block.items:
            text = _h_inline(item.main) + "".join(f"<br>{_h_inline(r)}" for r in item.body)
            if item.children:
                text += "<ul>" + "".join(f"<li>{_h_inline(r)}</li>" for r in item.children)
                text += "</ul>"
            items.append(f"<li>{text}</li>")
        return f"<{tag}>\n" + "\n".join(items) + f"\n</{tag}>"
    return _graph_html(block)


def render_html(report: dict[str, Any]) -> str:
    """The report as one self-contained, offline HTML5 page (with package graphs)."""
    blocks = _document(report)
    parts: list[str] = []
    toc: list[str] = []
    for n, block in enumerate(blocks):
        anchor = None
        if isinstance(block, _Heading) and block.level == 2:
            anchor = f"s{n}"
            toc.append(f'<li><a href="#{anchor}">{_h_inline(block.run)}</a></li>')
        parts.append(_h_block(block, anchor))
    if toc:  # after the title and the generated-by line
        parts.insert(min(2, len(parts)), "<nav><ul>\n" + "\n".join(toc) + "\n</ul></nav>")
    body = "\n".join(parts)
    title = html.escape(f"Architecture report: {report.get('root', '?')}")
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{title}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n<main>\n"
        + f"{body}\n</main>\n<script>{_JS}</script>\n</body>\n</html>\n"
    )
