"""A restructuring plan as text, JSON or Markdown (``corral restructure``)."""

from __future__ import annotations

import json
from typing import Any

from corral.plugins.builtin.restructure.apply import Applied
from corral.plugins.builtin.restructure.project import ProjectPlan

__all__ = ["render"]

KIND_LABELS = {
    "import": "import a.b",
    "from": "from a.b import c",
    "relative": "relative",
    "attribute": "a.b.c.f attributes",
    "string": "strings",
    "prose": "docstrings and comments",
    "config": "configuration",
}


def _kinds(counts: dict[str, int]) -> str:
    return ", ".join(f"{KIND_LABELS.get(k, k)} {n}" for k, n in sorted(counts.items()))


def _cycles(cycles: list[list[str]]) -> str:
    return "; ".join(" <-> ".join(c) for c in cycles)


def _architecture(plan: ProjectPlan, applied: Applied | None, head: str, item: str) -> list[str]:
    """Score and cycles before, as predicted, and after (when applied)."""
    if plan.before is None:
        return []
    before = plan.before.summary
    predicted = plan.predicted
    out = [f"{head}architecture"]
    after = applied.architecture.get("after") if applied is not None else None
    if after:
        out.append(f"{item}score {before['score']} -> {after['score']}")
    else:
        out.append(f"{item}score today {before['score']}")
    out.append(
        f"{item}module cycles {len(before['module_cycles'])} -> "
        f"{len(predicted.get('module_cycles', []))}, package cycles "
        f"{len(before['package_cycles'])} -> {len(predicted.get('package_cycles', []))}"
    )
    for key, label in (("new_module_cycles", "module"), ("new_package_cycles", "package")):
        if predicted.get(key):
            out.append(f"{item}NEW {label} cycle(s) the plan creates: {_cycles(predicted[key])}")
    return out


def _outcome(applied: Applied | None) -> dict[str, Any] | None:
    if applied is None:
        return None
    return {
        "applied": applied.ok,
        "rolled_back": applied.rolled_back,
        "branch": applied.branch,
        "commit": applied.commit,
        "validation": applied.validation,
        "architecture": applied.architecture,
    }


def render(plan: ProjectPlan, fmt: str, applied: Applied | None = None) -> str:
    """The plan in ``fmt`` (text, json or markdown), diffs included; with
    ``applied``, what applying it did."""
    data = plan.as_dict()
    outcome = _outcome(applied)
    if fmt == "json":
        return json.dumps({**data, "result": outcome}, indent=2) + "\n"
    md = fmt == "markdown"
    out: list[str] = []
    head = "## " if md else ""
    item = "- " if md else "  "
    if applied is None:
        status = "dry run: nothing was written"
    elif applied.ok:
        status = "applied and validated" + (
            f"; committed on branch {applied.branch}" if applied.branch else ""
        )
    else:
        status = f"validation failed: everything was rolled back ({applied.rolled_back})"
    out.append(f"{'# ' if md else ''}corral restructure: {plan.root} ({status})")
    if applied is not None:
        out.append(f"{head}validation")
        out += [
            f"{item}{'ok' if v['ok'] else 'FAILED'}: {v['what']} ({v['detail']})"
            for v in applied.validation
        ]
    out.append(f"{head}moves ({len(plan.moves)})")
    out += [f"{item}{m.old} -> {m.new}" for m in plan.moves]
    moved = data["files_moved"]
    out.append(f"{head}files moved ({len(moved)})")
    out += [f"{item}{f['from']} -> {f['to']}" for f in moved]
    if plan.new_packages:
        out.append(f"{head}new packages ({len(plan.new_packages)}): an __init__.py in each")
        out += [f"{item}{p}" for p in plan.new_packages]
    changed = data["files_changed"]
    out.append(f"{head}files rewritten ({len(changed)}): {_kinds(data['rewrites']) or 'none'}")
    out += [f"{item}{f['path']} ({_kinds(f['rewrites'])})" for f in changed]
    out += _architecture(plan, applied, head, item)
    out.append(f"{head}warnings ({len(plan.warnings)})")
    out += [f"{item}{p}:{n}: {m}" if n else f"{item}{p}: {m}" for p, n, m in plan.warnings]
    if data["diff"]:
        out.append(f"{head}diff")
        out.append("```diff" if md else "")
        out.append(data["diff"].rstrip("\n"))
        if md:
            out.append("```")
    return "\n".join(out) + "\n"
