"""The report: one JSON-ready dict (schema in docs/analysis.md), and a short
plain-text summary for terminals.

A report has one *section* per project (a repository with subprojects gets
one each); the top level sums them up. Field names are part of the
documented schema and only change with ``REPORT_VERSION``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

import msgspec

from corral.plugins.builtin.architecture.externals import classify
from corral.plugins.builtin.architecture.metrics import package_of
from corral.plugins.builtin.architecture.model import Discovery, ImportGraph
from corral.plugins.builtin.architecture.score import (
    MAX_RECOMMENDATIONS,
    compute_score,
    recommend,
)

REPORT_VERSION = 2
SUMMARY_KEYS = (
    "packages",
    "modules",
    "loc",
    "edges",
    "external_imports",
    "module_cycles",
    "package_cycles",
    "violations",
    "broken_contracts",
    "not_analysed",
    "unresolved_imports",
    "score",
)
_KIND_RANK = {"cycle": 0, "violation": 1, "hub": 2, "distance": 3, "not_analysed": 4}


def build_section(
    project: dict[str, Any],
    discovery: Discovery | Mapping[str, Any],
    graph: ImportGraph | Mapping[str, Any],
    metrics: dict[str, Any],
    cycles: dict[str, Any],
    layers: dict[str, Any],
) -> dict[str, Any]:
    """One project's section of the report."""
    graph = ImportGraph.of(graph)
    discovery = Discovery.of(discovery)
    modules = metrics["modules"]
    pkg_names = {n for n, row in modules.items() if row["is_package"]}
    package_edges = Counter(
        (package_of(e.importer, pkg_names), package_of(e.imported, pkg_names)) for e in graph.edges
    )
    internal_tops = {p.name for p in discovery.packages}
    external = classify(graph.external, internal_tops)
    hubs = sorted(modules, key=lambda m: (-(modules[m]["ca"] + modules[m]["ce"]), m))[:10]
    score = compute_score(metrics, cycles, layers)
    not_analysed = msgspec.to_builtins(discovery.not_analysed)
    unresolved = graph.unresolved
    return {
        "name": project["name"],
        "path": project["path"],
        "config_file": project.get("config_file"),
        "packages": [
            {
                "name": p.name,
                "path": p.path,
                "source_root": p.source_root,
                "modules": len(p.modules),
                "namespace_dirs": p.namespace_dirs,
            }
            for p in discovery.packages
        ],
        "summary": {
            "packages": len(discovery.packages),
            "modules": len(modules),
            "loc": sum(m["loc"] for m in modules.values()),
            "edges": len(graph.edges),
            "external_imports": len(external),
            "module_cycles": len(cycles["modules"]),
            "package_cycles": len(cycles["packages"]),
            "violations": layers.get("violations", 0),
            "broken_contracts": sum(1 for c in layers.get("contracts", []) if c["kept"] is False),
            "not_analysed": len(not_analysed),
            "unresolved_imports": len(unresolved),
            "score": score["value"],
        },
        "metrics": metrics,
        "edges": msgspec.to_builtins(graph.edges),
        "package_edges": [
            {"importer": a, "imported": b, "count": n}
            for (a, b), n in sorted(package_edges.items())
            if a != b
        ],
        "external": external,
        "cycles": cycles,
        "layers": layers,
        "hubs": [
            {
                "module": m,
                "path": modules[m]["path"],
                "ca": modules[m]["ca"],
                "ce": modules[m]["ce"],
                "instability": modules[m]["instability"],
            }
            for m in hubs
            if modules[m]["ca"] + modules[m]["ce"]
        ],
        "score": score,
        "recommendations": recommend(metrics, cycles, layers, not_analysed),
        "not_analysed": not_analysed,
        # imports of project modules that are not in the tree: no edge
        "unresolved": msgspec.to_builtins(unresolved),
    }


def combine(
    root: str, options: dict[str, Any], sections: list[dict[str, Any]], version: str
) -> dict[str, Any]:
    """The whole report from the project sections.

    The top-level score is the LOC-weighted mean of the projects' scores
    (each component likewise); recommendations are merged by kind (cycles
    first) then by each project's own priority.
    """
    sections = sorted(sections, key=lambda s: s["path"])
    weights = [max(1, s["summary"]["loc"]) for s in sections]
    total = sum(weights) or 1
    components: list[dict[str, Any]] = []
    if sections:
        for i, comp in enumerate(sections[0]["score"]["components"]):
            penalty = sum(
                s["score"]["components"][i]["penalty"] * w
                for s, w in zip(sections, weights, strict=True)
            )
            details = [f"{s['name']}: {s['score']['components'][i]['detail']}" for s in sections]
            components.append(
                {
                    "name": comp["name"],
                    "penalty": round(penalty / total, 2),
                    "max": comp["max"],
                    "detail": comp["detail"] if len(sections) == 1 else "; ".join(details),
                }
            )
    value = round(
        sum(s["score"]["value"] * w for s, w in zip(sections, weights, strict=True)) / total
    )
    merged = []
    for s in sections:
        for rec in s["recommendations"]:
            title = rec["title"] if len(sections) == 1 else f"[{s['name']}] {rec['title']}"
            merged.append({**rec, "title": title})
    merged.sort(key=lambda r: (_KIND_RANK.get(r["kind"], 9), r["priority"]))
    merged = [{**r, "priority": i} for i, r in enumerate(merged[:MAX_RECOMMENDATIONS], 1)]
    summary: dict[str, Any] = {"projects": len(sections)}
    for key in SUMMARY_KEYS:
        summary[key] = sum(s["summary"].get(key, 0) for s in sections) if key != "score" else value
    summary["external_imports"] = len({e["name"] for s in sections for e in s["external"]})
    not_analysed = sorted(
        (f for s in sections for f in s.pop("not_analysed")), key=lambda f: f["path"]
    )
    unresolved = sorted(
        (u for s in sections for u in s.pop("unresolved", [])),
        key=lambda u: (u["path"], u["line"], u["name"]),
    )
    return {
        "version": REPORT_VERSION,
        "tool": f"corral {version}",
        "root": root,
        "options": options,
        "summary": summary,
        "score": {"value": value, "components": components},
        "recommendations": merged,
        "projects": sections,
        "not_analysed": not_analysed,
        "unresolved": unresolved,
    }


def summary_text(report: dict[str, Any]) -> str:
    """A few lines for a terminal: the figures, then what to do first."""
    s = report["summary"]
    lines = [
        f"corral architecture report: {report['root']}",
        f"  score {s['score']}/100 — {s['projects']} project(s), {s['packages']} package(s), "
        f"{s['modules']} modules, {s['loc']} lines of code",
        f"  {s['edges']} internal imports; external: {_externals(report)}",
        f"  cycles: {s['module_cycles']} between modules, {s['package_cycles']} between packages;"
        f" layer violations: {s['violations']}",
    ]
    for section in report["projects"]:
        layers = section["layers"]
        label = f"{section['name']}: " if len(report["projects"]) > 1 else ""
        if layers.get("detail"):
            lines.append(f"  {label}layers: {layers['detail']}")
        for problem in layers.get("problems") or []:
            lines.append(f"  {label}layers: problem: {problem}")
    if report["recommendations"]:
        lines.append("  recommendations:")
        for rec in report["recommendations"][:5]:
            where = ", ".join(
                f"{loc['path']}:{loc['line']}" if loc.get("line") else str(loc["path"])
                for loc in rec["locations"][:3]
                if loc.get("path")
            )
            lines.append(f"  {rec['priority']}. {rec['title']}")
            if where:
                lines.append(f"     at {where}")
    if s["not_analysed"]:
        kinds = Counter(
            item["reason"].split(":")[0].split(" (")[0] for item in report["not_analysed"]
        )
        lines.append(
            f"  {s['not_analysed']} file(s) not analysed: "
            + ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items(), key=lambda kv: -kv[1]))
        )
        # The actionable ones (broken files) first, then the rest.
        ordered = sorted(
            report["not_analysed"],
            key=lambda f: (not f["reason"].startswith(("syntax", "unreadable")), f["path"]),
        )
        for item in ordered[:5]:
            lines.append(f"    {item['path']}: {item['reason']}")
        if s["not_analysed"] > 5:
            lines.append("    … (all of them in --format json/markdown/html)")
    unresolved = report.get("unresolved") or []
    if unresolved:
        lines.append(
            f"  {len(unresolved)} unresolved import(s) (project modules not in the tree, no edge):"
        )
        for item in unresolved[:5]:
            lines.append(f"    {item['path']}:{item['line']}: {item['name']}")
        if len(unresolved) > 5:
            lines.append("    … (all of them in --format json/markdown/html)")
    return "\n".join(lines) + "\n"


def _externals(report: dict[str, Any]) -> str:
    names: dict[str, dict[str, Any]] = {}
    for section in report["projects"]:
        for ext in section["external"]:
            names.setdefault(ext["name"], ext)

    def listed(items: list[str]) -> str:
        return ", ".join(items[:8]) + (f" and {len(items) - 8} more" if len(items) > 8 else "")

    stdlib = sum(1 for e in names.values() if e["stdlib"])
    dists = sorted({e["distribution"] for e in names.values() if e["distribution"]})
    # neither installed here nor standard library: a missing dependency, or a
    # name that is not a module at all (e.g. imported under TYPE_CHECKING)
    unknown = sorted(n for n, e in names.items() if not e["stdlib"] and not e["distribution"])
    parts = []
    if dists:
        parts.append(f"{len(dists)} third-party ({listed(dists)})")
    if unknown:
        parts.append(f"{len(unknown)} not installed here ({listed(unknown)})")
    parts.append(f"{stdlib} standard-library modules")
    return ", ".join(parts)
