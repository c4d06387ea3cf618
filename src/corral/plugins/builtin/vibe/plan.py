"""The join of ``corral vibe``: every analysis's findings in one ranked,
de-duplicated plan, and a 0-100 health score. Pure: data in, data out.

**Ranking.** Each finding gets ``rank = weight * reach * confidence``:

- ``weight``: high 10, medium 4, low 1;
- ``reach``: ``1 + log2(1 + fan-in)``, the fan-in being how many modules of
  the project import the finding's module (from the architecture analysis;
  1 when unknown or for a whole-project finding): a problem in a module
  everything imports matters more;
- ``confidence``: 0.5 when the tool says its confidence is low or below 100%
  for dead code (vulture), else 1.

**De-duplication.** Two findings are one when they are at the same file and
line and say the same thing: the same tool and rule, or two tools' names for
one problem (ruff F401 and vulture's unused import; ruff ``S6xx`` and
bandit ``B6xx``; ruff C901 and radon's complexity). The kept finding lists
every tool that reported it.

**Score.** The mean of the component scores (0-100) of the analyses that
finished (architecture counts twice): architecture, the architecture
analysis's own score; lint ``100·e^(-n/10)`` with ``n`` findings per 1,000
lines of code (a smaller project counts as 1,000 lines); complexity
``100·e^(-n)``, ``n`` complex functions per 1,000 lines; security
``100 - 25·high - 10·medium - 2·low``; dependencies
``100 - 20·missing - 5·others``; dead code ``100·e^(-n/5)``; tests
``min(100, 200 * test lines / code lines)`` (0 when the test command fails).
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["PLAN_VERSION", "dedupe", "failed_conditions", "make_plan", "parse_fail_on"]

PLAN_VERSION = 1

_WEIGHT = {"high": 10.0, "medium": 4.0, "low": 1.0}
_SAME = {  # (tool, rule) -> the problem it names, when two tools name one
    ("vulture", "unused-import"): "unused-import",
    ("ruff", "F401"): "unused-import",
    ("vulture", "unused-variable"): "unused-variable",
    ("ruff", "F841"): "unused-variable",
    ("ruff", "C901"): "complexity",
}

Finding = dict[str, Any]


def _topic(f: Finding) -> str:
    key = (f["tool"], f["rule"])
    if key in _SAME:
        return _SAME[key]
    if f["tool"] == "ruff" and f["rule"].startswith("S") and f["rule"][1:].isdigit():
        return f"bandit:B{f['rule'][1:]}"  # flake8-bandit mirrors bandit's codes
    if f["tool"] == "radon" and f["rule"].startswith("CC-"):
        return "complexity"
    if f["tool"] == "bandit":
        return f"bandit:{f['rule']}"
    return f"{f['tool']}:{f['rule']}"


def architecture_findings(section: dict[str, Any]) -> list[Finding]:
    """The architecture section's cycles and layer violations as findings."""
    out: list[Finding] = []
    for kind, severity in (("packages", "high"), ("modules", "medium")):
        for cycle in section.get("cycles", {}).get(kind, []):
            edge = (cycle.get("cut") or [{}])[0]
            via = (edge.get("via") or [edge])[0]
            names = " <-> ".join(cycle["members"][:4]) + (" ..." if cycle["size"] > 4 else "")
            out.append(
                {
                    "tool": "corral",
                    "kind": "architecture",
                    "rule": "package-cycle" if kind == "packages" else "import-cycle",
                    "severity": severity,
                    "file": via.get("path") or ".",
                    "line": (via.get("lines") or [None])[0],
                    "message": f"{kind[:-1]} import cycle of {cycle['size']}: {names}",
                    "fix": f"remove the import {via.get('importer')} -> {via.get('imported')} "
                    "(the cycle's cut), or move a module (corral analyze --suggest-moves)",
                    "fixable": False,
                }
            )
    for contract in section.get("layers", {}).get("contracts", []):
        for v in contract.get("violations", []):
            out.append(
                {
                    "tool": "corral",
                    "kind": "architecture",
                    "rule": "layer-violation",
                    "severity": "high" if v.get("direct") else "medium",
                    "file": v.get("path") or ".",
                    "line": v.get("line"),
                    "message": f"{v['importer']} ({v.get('importer_layer')}) imports "
                    f"{v['imported']} ({v.get('imported_layer')}), a higher layer"
                    + ("" if v.get("direct") else " (through " + " -> ".join(v["chain"]) + ")"),
                    "fix": "invert the dependency, or move the module "
                    "(corral analyze --suggest-moves)",
                    "fixable": False,
                }
            )
    return out


def _fan_in(sections: list[dict[str, Any]]) -> dict[str, int]:
    """File -> how many project modules import its module."""
    out: dict[str, int] = {}
    for section in sections:
        for info in section.get("metrics", {}).get("modules", {}).values():
            if info.get("path"):
                out[info["path"]] = int(info.get("ca") or 0)
    return out


def _rank(f: Finding, fan_in: dict[str, int]) -> float:
    reach = 1 + math.log2(1 + fan_in.get(f["file"], 0))
    confidence = f.get("confidence")
    low = confidence == "low" or (f["tool"] == "vulture" and confidence != "100%")
    return round(_WEIGHT[f["severity"]] * reach * (0.5 if low else 1.0), 2)


def dedupe(findings: list[Finding]) -> list[Finding]:
    """One finding per file, line and problem, listing every tool that reported it."""
    kept: dict[tuple[str, Any, str], Finding] = {}
    for f in findings:
        key = (f["file"], f["line"], _topic(f))
        if key in kept:
            first = kept[key]
            if f["tool"] not in first["tools"]:
                first["tools"].append(f["tool"])
            if _WEIGHT[f["severity"]] > _WEIGHT[first["severity"]]:
                first["severity"] = f["severity"]
            first["fixable"] = first["fixable"] or f.get("fixable", False)
            continue
        kept[key] = {**f, "tools": [f["tool"]]}
    return list(kept.values())


def _components(by_analysis: dict[str, dict[str, Any]], loc: int) -> list[dict[str, Any]]:
    kloc = max(loc, 1000) / 1000  # densities of a small project: per 1,000 lines at least
    out = []

    def add(name: str, value: float, detail: str, weight: int = 1) -> None:
        out.append(
            {
                "name": name,
                "score": round(max(0.0, min(100.0, value)), 1),
                "weight": weight,
                "detail": detail,
            }
        )

    for name, data in by_analysis.items():
        findings = data["findings"]
        n = len(findings)
        if name == "architecture":
            scores = data["scores"]
            add(name, sum(scores) / len(scores), f"architecture score {scores}", 2)
        elif name == "lint":
            add(name, 100 * math.exp(-n / kloc / 10), f"{n} finding(s), {n / kloc:.1f} per KLOC")
        elif name == "complexity":
            fns = sum(f["rule"].startswith("CC-") for f in findings)
            add(name, 100 * math.exp(-fns / kloc), f"{fns} complex function(s)")
        elif name == "security":
            sev = {s: sum(f["severity"] == s for f in findings) for s in _WEIGHT}
            add(
                name,
                100 - 25 * sev["high"] - 10 * sev["medium"] - 2 * sev["low"],
                f"{sev['high']} high, {sev['medium']} medium, {sev['low']} low",
            )
        elif name == "dependencies":
            missing = sum(f["rule"] == "DEP001" for f in findings)
            add(
                name,
                100 - 20 * missing - 5 * (n - missing),
                f"{missing} missing, {n - missing} other",
            )
        elif name == "deadcode":
            add(name, 100 * math.exp(-n / kloc / 5), f"{n} finding(s)")
        elif name == "tests":
            metrics = data["metrics"]
            code = sum(m.get("code_loc") or 0 for m in metrics)
            tests = sum(m.get("test_loc") or 0 for m in metrics)
            failing = any(m.get("passed") is False for m in metrics)
            value = 0.0 if failing or not code else 200 * tests / code
            add(
                name,
                value,
                f"{tests} test lines for {code} lines of code"
                + ("; the test command fails" if failing else ""),
            )
    return out


def _imported_frameworks(section: dict[str, Any]) -> list[str]:
    """Frameworks a subproject imports (the architecture analysis's external
    imports, named by distribution where installed), whether declared or not."""
    from corral.plugins.builtin.vibe.discover import FRAMEWORKS, requirement_name

    names = set()
    for ext in section.get("external", []):
        for name in (ext.get("distribution"), ext.get("name")):
            if name:
                names.add(requirement_name(str(name)) or "")
    return sorted(label for dist, label in FRAMEWORKS.items() if dist in names)


def make_plan(discovery: dict[str, Any], analyses: list[dict[str, Any]]) -> dict[str, Any]:
    """The plan: ranked findings, the score and its components, every
    analysis with its status (``ok``, or ``no result`` when its step did not
    finish), the subprojects and their stacks."""
    findings: list[Finding] = []
    sections: list[dict[str, Any]] = []
    listed: list[dict[str, Any]] = []
    # analysis -> bucket, for the whole codebase ("") and for each subproject
    buckets: dict[str, dict[str, dict[str, Any]]] = {}
    for item in analyses:
        output = item.get("output")
        entry = {
            "subproject": item["subproject"],
            "analysis": item["analysis"],
            "step": item["step"],
        }
        if output is None:
            listed.append({**entry, "status": "no result"})
            continue
        if item["analysis"] == "architecture":
            sections.append(output)
            found = architecture_findings(output)
            for project in discovery["python"]:  # the stack: what it imports, too
                if project["path"] == item["subproject"]:
                    stack = project["stack"]
                    stack["frameworks"] = sorted(
                        set(stack["frameworks"]) | set(_imported_frameworks(output))
                    )
            entry.update(tool="corral", version=None, metrics=output.get("summary", {}))
        else:
            found = list(output["findings"])
            entry.update(tool=output["tool"], version=output["version"], metrics=output["metrics"])
        entry.update(status="ok", findings=len(found))
        listed.append(entry)
        findings += found
        for scope in ("", item["subproject"]):
            bucket = buckets.setdefault(scope, {}).setdefault(
                item["analysis"], {"findings": [], "metrics": [], "scores": []}
            )
            bucket["findings"] += found
            bucket["metrics"].append(entry["metrics"])
            if item["analysis"] == "architecture":
                bucket["scores"].append(output["score"]["value"])
    fan_in = _fan_in(sections)
    merged = dedupe(findings)
    for f in merged:
        f["rank"] = _rank(f, fan_in)
    merged.sort(key=lambda f: (-f["rank"], f["file"], f["line"] or 0, f["rule"]))
    score = _score(buckets.get("", {}), sections)
    per_project = []
    for project in discovery["python"]:
        path = project["path"]
        mine = [f for f in merged if f.get("subproject", path) == path]
        own_sections = [s for s in sections if s.get("path", ".") == path]
        per_project.append(
            {
                "subproject": path,
                "name": project["name"],
                "score": _score(buckets.get(path, {}), own_sections),
                "summary": _summary(mine),
                "top": mine[:10],
            }
        )
    return {
        "version": PLAN_VERSION,
        "root": discovery["root"],
        "score": score,
        "summary": {
            "subprojects": len(discovery["python"]),
            **_summary(merged),
            "analyses_without_result": sum(a["status"] != "ok" for a in listed),
        },
        "subprojects": discovery["python"],
        "other_subprojects": discovery["other"],
        "sections": per_project,
        "analyses": listed,
        "findings": merged,
    }


def _summary(findings: list[Finding]) -> dict[str, Any]:
    counts: dict[str, int] = {}
    for f in findings:
        counts[f["severity"]] = counts.get(f["severity"], 0) + 1
    return {
        "findings": len(findings),
        "by_severity": counts,
        "fixable": sum(bool(f.get("fixable")) for f in findings),
    }


def _score(
    by_analysis: dict[str, dict[str, Any]], sections: list[dict[str, Any]]
) -> dict[str, Any]:
    """The health score and its components, of the analyses in ``by_analysis``."""
    loc = sum(m.get("code_loc") or 0 for m in by_analysis.get("tests", {}).get("metrics", []))
    if not loc:
        loc = sum(s.get("summary", {}).get("loc", 0) for s in sections)
    components = _components(by_analysis, loc)
    weight = sum(c["weight"] for c in components)
    value = round(sum(c["score"] * c["weight"] for c in components) / weight) if weight else None
    return {"value": value, "components": components}


_KINDS = ("architecture", "lint", "complexity", "security", "dependencies", "deadcode", "tests")


def parse_fail_on(conditions: list[str]) -> list[tuple[str, int]]:
    """``--fail-on`` conditions (comma-separated or repeated): ``score<N``,
    ``high`` (any high-severity finding), ``incomplete`` (an analysis gave no
    result), or an analysis's name (any finding of it). Raises ValueError
    naming the bad one."""
    parsed: list[tuple[str, int]] = []
    for text in conditions:
        for part in (p.strip() for p in text.split(",")):
            if part.replace(" ", "").startswith("score<"):
                number = part.replace(" ", "")[len("score<") :]
                if number.isdigit() and int(number) <= 100:
                    parsed.append(("score", int(number)))
                    continue
            elif part in ("high", "incomplete", *_KINDS):
                parsed.append((part, 0))
                continue
            raise ValueError(
                f"{part!r}: expected score<N (0-100), high, incomplete, or one of "
                + ", ".join(_KINDS)
            )
    return parsed


def failed_conditions(plan: dict[str, Any], conditions: list[tuple[str, int]]) -> list[str]:
    """What makes ``--fail-on`` hold, one message each (empty: nothing)."""
    messages = []
    score = plan["score"]["value"]
    for kind, limit in conditions:
        if kind == "score" and score is not None and score < limit:
            messages.append(f"health score {score} < {limit}")
        elif kind == "high":
            n = plan["summary"]["by_severity"].get("high", 0)
            if n:
                messages.append(f"{n} high-severity finding(s)")
        elif kind == "incomplete":
            n = plan["summary"]["analyses_without_result"]
            if n:
                messages.append(f"{n} analysis/analyses gave no result")
        elif kind in _KINDS:
            n = sum(f["kind"] == kind for f in plan["findings"])
            if n:
                messages.append(f"{n} {kind} finding(s)")
    return messages
