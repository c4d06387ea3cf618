"""The intermediate document both renderings of the architecture report share.

:func:`document` turns a report (schema version 2) into a flat list of blocks
(headings, paragraphs, tables, lists, and a graph placeholder) that
:mod:`.render` writes as markdown and :mod:`.render_html` as HTML, so the two
formats cannot drift apart: whatever the markdown says, the HTML says too. Only
the graph block is HTML-only (markdown cannot draw one).

The builders only read the report. They tolerate missing optional sections
and unknown fields (``.get`` with a neutral default), so a partial, older or
newer report still renders instead of raising. Long lists are bounded: a
report of 1,500 modules must stay something a person can read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

MAX_ROWS = 50
"""Rows of any one table or list; the rest is counted ("… and N more")."""
MAX_LOCATIONS = 10
"""File locations / cut edges / members listed under one item."""

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
class Heading:
    level: int
    run: Run


@dataclass(slots=True)
class Para:
    run: Run


@dataclass(slots=True)
class Table:
    headers: tuple[str, ...]
    numeric: tuple[bool, ...]
    rows: list[list[Run]]


@dataclass(slots=True)
class Item:
    main: Run
    body: list[Run] = field(default_factory=list)  # further lines of the item
    children: list[Run] = field(default_factory=list)  # nested bullets


@dataclass(slots=True)
class ListBlock:
    ordered: bool
    items: list[Item]


@dataclass(slots=True)
class GraphBlock:
    """HTML only: the package graph of one project."""

    level: int
    index: int
    project: dict[str, Any]


Block = Heading | Para | Table | ListBlock | GraphBlock


def _bounded(items: Sequence[_T], limit: int = MAX_ROWS) -> tuple[list[_T], int]:
    return list(items[:limit]), max(0, len(items) - limit)


def _more(rest: int, what: str) -> Para:
    return Para([_t(f"… and {rest} more {what}.")])


def num(value: Any, digits: int = 2) -> str:
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
    ("broken_contracts", "Broken layer contracts"),
    ("not_analysed", "Files not analysed"),
    ("unresolved_imports", "Unresolved imports"),
    ("score", "Score"),
)


def _count(n: Any, noun: str) -> str:
    """``1 violation``, ``2 violations``."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def document(report: dict[str, Any]) -> list[Block]:
    blocks: list[Block] = [
        Heading(1, [_t("Architecture report: "), _c(report.get("root", "?"))]),
        Para(_meta_run(report)),
    ]
    blocks += _summary_blocks(report.get("summary") or {})
    blocks += _score_blocks(report.get("score"))
    blocks += _recommendation_blocks(report.get("recommendations") or [])
    projects = report.get("projects") or []
    for index, project in enumerate(projects):
        blocks += _project_blocks(project, index, multi=len(projects) > 1)
    blocks += _not_analysed_blocks(report.get("not_analysed") or [])
    blocks += _unresolved_blocks(report.get("unresolved") or [])
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


def _summary_blocks(summary: dict[str, Any]) -> list[Block]:
    if not summary:
        return []
    known = dict(_SUMMARY_LABELS)
    keys = [k for k, _ in _SUMMARY_LABELS if k in summary]
    keys += sorted(k for k in summary if k not in known)
    rows = [[[_t(known.get(k, k))], [_t(num(summary[k]))]] for k in keys]
    return [Heading(2, [_t("Summary")]), Table(("Metric", "Value"), (False, True), rows)]


def _score_blocks(score: dict[str, Any] | None, level: int = 2) -> list[Block]:
    if not score:
        return []
    blocks: list[Block] = [Heading(level, [_t(f"Score: {score.get('value', '?')}/100")])]
    components = score.get("components") or []
    if components:
        rows = [
            [
                [_t(comp.get("name", ""))],
                [_t(num(comp.get("penalty"), 1))],
                [_t(num(comp.get("max"), 1))],
                [_t(comp.get("detail", ""))],
            ]
            for comp in components
        ]
        blocks.append(
            Table(("Component", "Penalty", "Max", "Detail"), (False, True, True, False), rows)
        )
    return blocks


def _recommendation_blocks(recs: Sequence[dict[str, Any]]) -> list[Block]:
    blocks: list[Block] = [Heading(2, [_t("Recommendations")])]
    if not recs:
        return [*blocks, Para([_t("Nothing to recommend.")])]
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
        items.append(Item(main, body, children))
    blocks.append(ListBlock(True, items))
    if rest:
        blocks.append(_more(rest, "recommendations"))
    return blocks


def _project_blocks(project: dict[str, Any], index: int, *, multi: bool) -> list[Block]:
    level = 3 if multi else 2
    blocks: list[Block] = []
    where: Run = [
        _t("Project "),
        _c(project.get("name", "?")),
        _t(" at "),
        _c(project.get("path", ".")),
    ]
    if project.get("config_file"):
        where += [_t(", configured by "), _c(project["config_file"])]
    if multi:
        blocks.append(Heading(2, [_t("Project: "), _c(project.get("name", "?"))]))
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
    blocks.append(Para(where))
    if (project.get("metrics") or {}).get("packages"):  # first: the map, then the tables
        blocks.append(GraphBlock(level, index, project))
    blocks += _packages_blocks(project, level)
    blocks += _cycle_blocks(project.get("cycles") or {}, level)
    blocks += _layers_blocks(project.get("layers") or {}, level)
    blocks += _hub_blocks(project.get("hubs") or [], level)
    blocks += _external_blocks(project.get("external") or [], level)
    return blocks


def coupling(info: dict[str, Any]) -> int:
    return int(info.get("ca") or 0) + int(info.get("ce") or 0)


def _packages_blocks(project: dict[str, Any], level: int) -> list[Block]:
    packages: dict[str, dict[str, Any]] = (project.get("metrics") or {}).get("packages") or {}
    blocks: list[Block] = [Heading(level, [_t("Packages")])]
    if not packages:
        return [*blocks, Para([_t("No packages found.")])]
    names = sorted(packages)
    rest = max(0, len(names) - MAX_ROWS)
    if rest:  # keep the most coupled, still listed by name
        keep = sorted(names, key=lambda n: (-coupling(packages[n]), n))[:MAX_ROWS]
        names = sorted(keep)
    rows = []
    for name in names:
        info = packages[name]
        rows.append(
            [[_c(name)]]
            + [
                [_t(num(info.get(key)))]
                for key in ("modules", "loc", "ca", "ce", "instability", "abstractness", "distance")
            ]
        )
    blocks.append(
        Table(
            ("Package", "Modules", "LOC", "Ca", "Ce", "I", "A", "D"),
            (False, True, True, True, True, True, True, True),
            rows,
        )
    )
    blocks.append(
        Para(
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


def _cycle_item(cycle: dict[str, Any], noun: str) -> Item:
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
    return Item(main, [], children)


def _cycle_blocks(cycles: dict[str, Any], level: int) -> list[Block]:
    blocks: list[Block] = [Heading(level, [_t("Cycles")])]
    kinds = (("packages", "Package cycles", "packages"), ("modules", "Module cycles", "modules"))
    if not any(cycles.get(key) for key, _, _ in kinds):
        return [*blocks, Para([_t("No import cycles between modules or packages.")])]
    for key, title, noun in kinds:
        found = cycles.get(key) or []
        blocks.append(Heading(level + 1, [_t(f"{title} ({len(found)})")]))
        if not found:
            blocks.append(Para([_t(f"No cycles between {noun}.")]))
            continue
        shown, rest = _bounded(found)
        blocks.append(ListBlock(True, [_cycle_item(cycle, noun) for cycle in shown]))
        if rest:
            blocks.append(_more(rest, f"{noun[:-1]} cycles"))
    return blocks


def _layers_blocks(layers: dict[str, Any], level: int) -> list[Block]:
    blocks: list[Block] = [Heading(level, [_t("Layers")])]
    source = layers.get("source") or "none"
    head: Run = [_t("Source: "), _c(source), _t(", style: "), _c(layers.get("style") or "none")]
    if layers.get("config_file"):
        head += [_t(", from "), _c(layers["config_file"])]
    head.append(_t("."))
    blocks.append(Para(head))
    if layers.get("detail"):
        blocks.append(Para([_t(layers["detail"])]))
    contracts = layers.get("contracts") or []
    if not contracts:
        blocks.append(Para([_t("No layer contracts were declared or detected.")]))
        return blocks
    conformance = layers.get("conformance")
    if conformance is not None:
        blocks.append(
            Para(
                [
                    _t(
                        f"Conformance: {conformance * 100:.1f}% of "
                        f"{layers.get('checked_edges', 0)} checked imports; "
                        f"{_count(layers.get('violations', 0), 'violation')}."
                    )
                ]
            )
        )
    for problem in layers.get("problems") or []:
        blocks.append(Para([_b("Problem: "), _t(problem)]))
    shown, rest = _bounded(contracts)
    rows = [
        [
            [_t(ct.get("name", ""))],
            [_t(ct.get("kind", ""))],
            [_t(_contract_status(ct))],
            [_t(num(ct.get("violation_count", 0)))],
        ]
        for ct in shown
    ]
    blocks.append(
        Table(("Contract", "Kind", "Status", "Violations"), (False, False, False, True), rows)
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


def _contract_blocks(ct: dict[str, Any]) -> list[Block]:
    count = ct.get("violation_count", 0)
    status = _contract_status(ct)
    if status == "broken":
        status = (
            f"broken, {_count(count, 'violation')}" if count else f"broken: {ct.get('detail', '')}"
        )
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
    blocks: list[Block] = [Para(head)]
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
        items.append(Item(main))
    blocks.append(ListBlock(False, items))
    hidden = rest + (max(0, count - len(violations)) if ct.get("truncated") else 0)
    if ct.get("truncated"):
        blocks.append(
            Para(
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


def _hub_blocks(hubs: Sequence[dict[str, Any]], level: int) -> list[Block]:
    blocks: list[Block] = [Heading(level, [_t("Most coupled modules")])]
    if not hubs:
        return [*blocks, Para([_t("No module imports or is imported by another.")])]
    shown, rest = _bounded(hubs)
    rows = [
        [
            [_c(h.get("module", ""))],
            [_c(h.get("path", ""))],
            [_t(num(h.get("ca")))],
            [_t(num(h.get("ce")))],
            [_t(num(h.get("instability")))],
        ]
        for h in shown
    ]
    blocks.append(
        Table(("Module", "Path", "Ca", "Ce", "I"), (False, False, True, True, True), rows)
    )
    if rest:
        blocks.append(_more(rest, "modules"))
    return blocks


def _external_blocks(external: Sequence[dict[str, Any]], level: int) -> list[Block]:
    blocks: list[Block] = [Heading(level, [_t("External dependencies")])]
    if not external:
        return [*blocks, Para([_t("No imports outside the project.")])]
    ordered = sorted(external, key=lambda e: (-int(e.get("importers") or 0), str(e.get("name"))))
    shown, rest = _bounded(ordered)
    rows = [
        [
            [_c(e.get("name", ""))],
            [_c(e["distribution"]) if e.get("distribution") else _t("—")],
            [_t("yes" if e.get("stdlib") else "no")],
            [_t(num(e.get("importers")))],
        ]
        for e in shown
    ]
    blocks.append(
        Table(("Name", "Distribution", "Stdlib", "Importers"), (False, False, False, True), rows)
    )
    if rest:
        blocks.append(_more(rest, "external dependencies"))
    return blocks


def _unresolved_blocks(items: Sequence[dict[str, Any]]) -> list[Block]:
    """Imports of project modules that are not in the tree: no edge was drawn
    for them (a module generated at build time, a Cython source, a typo)."""
    if not items:
        return []
    blocks: list[Block] = [
        Heading(2, [_t(f"Unresolved imports ({len(items)})")]),
        Para(
            [
                _t(
                    "Imports of modules of the analysed packages that are not in the tree; "
                    "they make no edge."
                )
            ]
        ),
    ]
    shown, rest = _bounded(items)
    rows = [[[_c(_loc(u.get("path"), u.get("line")))], [_c(u.get("name", ""))]] for u in shown]
    blocks.append(Table(("Where", "Missing module"), (False, False), rows))
    if rest:
        blocks.append(_more(rest, "imports"))
    return blocks


def _not_analysed_blocks(files: Sequence[dict[str, Any]]) -> list[Block]:
    blocks: list[Block] = [Heading(2, [_t(f"Files not analysed ({len(files)})")])]
    if not files:
        return [*blocks, Para([_t("Every Python file was analysed.")])]
    shown, rest = _bounded(files)
    rows = [[[_c(f.get("path", ""))], [_t(f.get("reason", ""))]] for f in shown]
    blocks.append(Table(("Path", "Reason"), (False, False), rows))
    if rest:
        blocks.append(_more(rest, "files"))
    return blocks
