"""The report: one JSON-ready dict, and a short plain-text summary."""

from __future__ import annotations

from typing import Any

REPORT_VERSION = 1


def build_report(
    discovery: dict[str, Any],
    graph: dict[str, Any],
    metrics: dict[str, Any],
    cycles: dict[str, Any],
) -> dict[str, Any]:
    """Assemble the report (field names are meant to stay stable)."""
    modules = metrics["modules"]
    hubs = sorted(modules, key=lambda m: (-(modules[m]["ca"] + modules[m]["ce"]), m))[:10]
    return {
        "version": REPORT_VERSION,
        "root": discovery["root"],
        "summary": {
            "packages": len(discovery["packages"]),
            "modules": len(modules),
            "edges": len(graph["edges"]),
            "external_imports": len({e["imported"] for e in graph["external"]}),
            "loc": sum(m["loc"] for m in modules.values()),
            "module_cycles": len(cycles["modules"]),
            "package_cycles": len(cycles["packages"]),
            "not_analysed": len(discovery["not_analysed"]),
        },
        "packages": [
            {
                "name": p["name"],
                "path": p["path"],
                "source_root": p["source_root"],
                "modules": len(p["modules"]),
                "namespace_dirs": p["namespace_dirs"],
            }
            for p in discovery["packages"]
        ],
        "hubs": [{"module": m, **modules[m]} for m in hubs if modules[m]["ca"] + modules[m]["ce"]],
        "metrics": metrics,
        "cycles": cycles,
        "edges": graph["edges"],
        "external": sorted({e["imported"] for e in graph["external"]}),
        "not_analysed": discovery["not_analysed"],
    }


def summary_text(report: dict[str, Any]) -> str:
    """A few lines for a terminal."""
    s = report["summary"]
    lines = [
        f"corral architecture report: {report['root']}",
        f"  {s['packages']} package(s), {s['modules']} modules, {s['loc']} lines of code, "
        f"{s['edges']} internal imports, {s['external_imports']} external dependencies",
        f"  cycles: {s['module_cycles']} between modules, {s['package_cycles']} between packages",
    ]
    for cycle in report["cycles"]["modules"][:5]:
        lines.append(f"    {' -> '.join(cycle['example'])}  ({cycle['size']} modules)")
    if report["hubs"]:
        lines.append("  most coupled modules:")
        for hub in report["hubs"][:5]:
            lines.append(
                f"    {hub['module']}: Ca={hub['ca']} Ce={hub['ce']} I={hub['instability']:.2f}"
            )
    if s["not_analysed"]:
        lines.append(f"  {s['not_analysed']} file(s) not analysed:")
        for item in report["not_analysed"][:10]:
            lines.append(f"    {item['path']}: {item['reason']}")
    return "\n".join(lines) + "\n"
