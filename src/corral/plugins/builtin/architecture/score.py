"""The 0-100 architecture score and the recommendations.

The score starts at 100 and loses at most:

- **cycles, 35**: ``min(35, 70*s + 5*p)``, with ``s`` the share of modules
  in an import cycle and ``p`` the number of package-level cycles. Cycles
  come first because they make every other change harder (nothing in a
  cycle can be understood, tested or moved alone).
- **layers, 25**: ``min(25, 100*(1 - conformance))``, conformance being the
  share of the contract-checked imports that respect the declared contracts;
  at most 10 when the layers were only detected from package names; 0 when
  nothing is checked.
- **distance, 20**: ``20 * max(0, D - 0.3) / 0.7``, with ``D`` the
  LOC-weighted mean distance from the main sequence of the packages that
  import or are imported by another package: up to 0.3 is normal for
  Python code, which has few abstract classes.
- **coupling, 20**: ``min(20, 100*h)``, with ``h`` the share of modules
  that import more than 15 of the project's own modules.

The result is rounded to an integer; a project in which no module could be
analysed scores 0 (a gate must not pass on nothing). Every rule is pure: the inputs are the
report's own figures, so the same code always gets the same score.
"""

from __future__ import annotations

from typing import Any

HUB_FAN_OUT = 15
MAX_RECOMMENDATIONS = 15


def _component(name: str, penalty: float, limit: float, detail: str) -> dict[str, Any]:
    return {"name": name, "penalty": round(min(penalty, limit), 2), "max": limit, "detail": detail}


def compute_score(
    metrics: dict[str, Any], cycles: dict[str, Any], layers: dict[str, Any]
) -> dict[str, Any]:
    """``{"value", "components": [{"name", "penalty", "max", "detail"}]}``."""
    modules = metrics["modules"]
    count = len(modules) or 1
    in_cycles = {m for c in cycles["modules"] for m in c["members"]}
    share = len(in_cycles) / count
    pcycles = len(cycles["packages"])
    components = [
        _component(
            "cycles",
            70 * share + 5 * pcycles,
            35,
            f"{len(in_cycles)} of {len(modules)} modules in import cycles, "
            f"{pcycles} package-level cycle(s)",
        )
    ]
    checked, conformance = layers.get("checked_edges", 0), layers.get("conformance")
    if checked and conformance is not None:
        # A detected style is a guess from names: it weighs less than a declaration.
        guessed = layers.get("source") == "detected"
        components.append(
            _component(
                "layers",
                100 * (1 - conformance),
                10 if guessed else 25,
                f"{conformance:.1%} of {checked} checked imports follow the "
                + ("detected layers" if guessed else "declared contracts"),
            )
        )
    elif layers.get("problems"):
        components.append(
            _component("layers", 0, 25, "nothing checked: " + "; ".join(layers["problems"]))
        )
    else:
        components.append(_component("layers", 0, 25, "no layer contract declared or detected"))
    # A package coupled to no other has no instability to speak of (I is 0
    # by convention), so it would sit at D = 1 for no reason: leave it out.
    weighted = [
        (p["distance"], p["loc"])
        for p in metrics["packages"].values()
        if p["loc"] and p["ca"] + p["ce"]
    ]
    total_loc = sum(loc for _, loc in weighted)
    mean_d = sum(d * loc for d, loc in weighted) / total_loc if total_loc else 0.0
    components.append(
        _component(
            "distance",
            20 * max(0.0, mean_d - 0.3) / 0.7,
            20,
            f"mean distance from the main sequence {mean_d:.2f} "
            f"(LOC-weighted, {len(weighted)} coupled package(s))",
        )
    )
    hubs = [m for m, row in modules.items() if row["ce"] > HUB_FAN_OUT]
    components.append(
        _component(
            "coupling",
            100 * len(hubs) / count,
            20,
            f"{len(hubs)} module(s) import more than {HUB_FAN_OUT} project modules",
        )
    )
    value = round(max(0.0, 100 - sum(c["penalty"] for c in components)))
    if not modules:  # nothing analysed: a score of 100 would pass any gate unearned
        value = 0
    return {"value": value, "components": components}


def _loc(path: str | None, line: int | None = None, module: str | None = None) -> dict[str, Any]:
    return {"path": path, "line": line, "module": module}


def _first_line(edge: dict[str, Any]) -> int | None:
    lines = edge.get("lines") or []
    return int(lines[0]) if lines else None


def _names(members: list[str], limit: int = 4) -> str:
    shown = ", ".join(members[:limit])
    return shown + (f" and {len(members) - limit} more" if len(members) > limit else "")


def recommend(
    metrics: dict[str, Any],
    cycles: dict[str, Any],
    layers: dict[str, Any],
    not_analysed: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    """Concrete advice, most important first, each pointing at files.

    Order: package cycles, module cycles (biggest first), layer violations
    (direct ones first), hubs, packages far from the main sequence, files
    that could not be analysed.
    """
    recs = [
        *_cycle_advice(cycles),
        *_violation_advice(layers),
        *_hub_advice(metrics["modules"]),
        *_distance_advice(metrics["packages"]),
        *_not_analysed_advice(not_analysed),
    ]
    recs = recs[:MAX_RECOMMENDATIONS]
    for i, rec in enumerate(recs, 1):
        rec["priority"] = i
    return [
        {"priority": r["priority"], **{k: v for k, v in r.items() if k != "priority"}} for r in recs
    ]


def _cycle_advice(cycles: dict[str, Any]) -> list[dict[str, Any]]:
    """Package cycles (the first three), then module cycles (the first five)."""
    recs: list[dict[str, Any]] = []
    for cycle in cycles["packages"][:3]:
        cut = cycle["cut"]
        how = "; ".join(
            f"{c['importer']} -> {c['imported']} ({len(c.get('via', []))} import(s))" for c in cut
        )
        where = [_loc(v["path"], _first_line(v), v["importer"]) for c in cut for v in c["via"]]
        recs.append(
            {
                "kind": "cycle",
                "title": f"Break the package cycle between {_names(cycle['members'])}",
                "detail": f"{' -> '.join(cycle['example'])}; "
                f"cutting {how} breaks every cycle between these packages.",
                "locations": where[:10],
            }
        )
    for cycle in cycles["modules"][:5]:
        cut = cycle["cut"]
        how = "; ".join(f"{c['importer']} -> {c['imported']}" for c in cut[:5])
        more = f" (+{len(cut) - 5} more)" if len(cut) > 5 else ""
        recs.append(
            {
                "kind": "cycle",
                "title": f"Break the import cycle of {cycle['size']} modules "
                f"({_names(cycle['members'], 3)})",
                "detail": f"{' -> '.join(cycle['example'])}; cut {how}{more} "
                "(move the shared code down, or import lazily where it is used).",
                "locations": [_loc(c["path"], _first_line(c), c["importer"]) for c in cut[:10]],
            }
        )
    return recs


def _violation_advice(layers: dict[str, Any]) -> list[dict[str, Any]]:
    """Layer violations, direct ones first, three per contract."""
    recs: list[dict[str, Any]] = []
    for contract in layers.get("contracts", []):
        violations = sorted(
            contract["violations"], key=lambda v: (not v["direct"], len(v["chain"]))
        )
        for v in violations[:3]:
            layer = (
                f" (layer {v['importer_layer']} must not import {v['imported_layer']})"
                if v.get("importer_layer") and v.get("imported_layer")
                else ""
            )
            how = "imports" if v["direct"] else "reaches through " + " -> ".join(v["chain"])
            recs.append(
                {
                    "kind": "violation",
                    "title": f"{v['importer']} must not depend on {v['imported']}"
                    f" ({contract['name']})",
                    "detail": f"{v['importer']} {how} {v['imported']}{layer}.",
                    "locations": [_loc(v["path"], v.get("line"), v["importer"])],
                }
            )
    return recs


def _hub_advice(modules: dict[str, Any]) -> list[dict[str, Any]]:
    """Modules importing many project modules, or imported by many and importing many."""
    recs: list[dict[str, Any]] = []
    hubs = sorted(
        (
            m
            for m, r in modules.items()
            if r["ce"] > HUB_FAN_OUT or (r["ca"] >= 10 and r["ce"] >= 10)
        ),
        key=lambda m: (-(modules[m]["ca"] * modules[m]["ce"] + modules[m]["ce"]), m),
    )
    for name in hubs[:3]:
        row = modules[name]
        recs.append(
            {
                "kind": "hub",
                "title": f"Split the hub module {name}",
                "detail": f"it imports {row['ce']} project modules and {row['ca']} import it; "
                "a change here ripples both ways. Split it by responsibility.",
                "locations": [_loc(row["path"], None, name)],
            }
        )
    return recs


def _distance_advice(packages: dict[str, Any]) -> list[dict[str, Any]]:
    """Packages far from the main sequence, with what to do about each."""
    recs: list[dict[str, Any]] = []
    for name, row in sorted(packages.items(), key=lambda kv: -kv[1]["distance"]):
        if row["distance"] < 0.7:
            break
        if not row["loc"]:  # an empty __init__ only: nothing to act on
            continue
        if row["instability"] <= 0.3 and row["abstractness"] <= 0.1 and row["ca"] >= 5:
            detail = (
                f"stable (I={row['instability']:.2f}, {row['ca']} packages depend on it) "
                f"and concrete (A={row['abstractness']:.2f}): hard to change. Put an "
                "abstraction (Protocol/ABC) between it and its users."
            )
        elif row["instability"] >= 0.7 and row["abstractness"] >= 0.7:
            detail = (
                f"abstract (A={row['abstractness']:.2f}) but nothing depends on it "
                f"(I={row['instability']:.2f}): abstractions nobody uses."
            )
        else:
            continue
        recs.append(
            {
                "kind": "distance",
                "title": f"Package {name} is far from the main sequence (D={row['distance']:.2f})",
                "detail": detail,
                "locations": [_loc(row["path"], None, name)],
            }
        )
    return recs


def _not_analysed_advice(not_analysed: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Files that could not be read or parsed."""
    recs: list[dict[str, Any]] = []
    broken = [f for f in not_analysed if f["reason"].startswith(("syntax error", "unreadable"))]
    for item in broken[:3]:
        recs.append(
            {
                "kind": "not_analysed",
                "title": f"Fix {item['path']} so it can be analysed",
                "detail": f"{item['reason']}; its imports are missing from this report.",
                "locations": [_loc(item["path"])],
            }
        )
    return recs
