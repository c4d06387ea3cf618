"""A restructuring plan as text, JSON or Markdown (``corral restructure``)."""

from __future__ import annotations

import json

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


def render(plan: ProjectPlan, fmt: str) -> str:
    """The plan in ``fmt`` (text, json or markdown), diffs included."""
    data = plan.as_dict()
    if fmt == "json":
        return json.dumps(data, indent=2) + "\n"
    md = fmt == "markdown"
    out: list[str] = []
    head = "## " if md else ""
    item = "- " if md else "  "
    out.append(
        f"{'# ' if md else ''}corral restructure: plan for {plan.root} "
        "(dry run: nothing was written)"
    )
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
    out.append(f"{head}warnings ({len(plan.warnings)})")
    out += [f"{item}{p}:{n}: {m}" if n else f"{item}{p}: {m}" for p, n, m in plan.warnings]
    if data["diff"]:
        out.append(f"{head}diff")
        out.append("```diff" if md else "")
        out.append(data["diff"].rstrip("\n"))
        if md:
            out.append("```")
    return "\n".join(out) + "\n"
