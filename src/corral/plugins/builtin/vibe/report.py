"""``corral vibe``'s report: text for a terminal (the score, each analysis,
the top findings), Markdown, and JSON (the plan as it is, see :mod:`.plan`)."""

from __future__ import annotations

from typing import Any

__all__ = ["render"]

#: Findings shown in the text and Markdown reports (JSON has them all).
TOP = 20


def _where(f: dict[str, Any]) -> str:
    return str(f["file"]) + (f":{f['line']}" if f.get("line") else "")


def _analysis_line(a: dict[str, Any]) -> str:
    head = f"{a['analysis']:<13} {a['subproject']:<12}"
    if a["status"] != "ok":
        return f"{head} NO RESULT: {a.get('error') or 'its step did not finish'}"
    tool = f"{a['tool']} {a['version']}" if a.get("version") else a["tool"]
    return f"{head} {a['findings']:>5} finding(s)  ({tool})"


def _text(plan: dict[str, Any]) -> str:
    score = plan["score"]
    out = [f"corral vibe: {plan['root']}", f"health score {score['value']}/100"]
    out += [f"  {c['name']:<13} {c['score']:>5}  {c['detail']}" for c in score["components"]]
    out.append("subprojects")
    scores = {s["subproject"]: s for s in plan.get("sections", [])}
    for p in plan["subprojects"]:
        stack = p["stack"]
        bits = [f"python {stack['python']}" if stack["python"] else "python (unpinned)"]
        bits += stack["frameworks"] + [f"tests: {stack['test_runner']}"]
        if stack["linters"]:
            bits.append("linters: " + ", ".join(stack["linters"]))
        if stack["ci"]:
            bits.append("CI: " + ", ".join(stack["ci"]))
        own = scores.get(p["path"])
        if own is not None:
            bits.insert(
                0, f"score {own['score']['value']}, {own['summary']['findings']} finding(s)"
            )
        out.append(f"  {p['path']} ({p['name']}): " + "; ".join(bits))
    for o in plan["other_subprojects"]:
        stack = o.get("stack", {})
        bits = [*stack.get("frameworks", [])]
        if stack.get("test_runner"):
            bits.append(f"tests: {stack['test_runner']}")
        bits.append(o["note"])
        out.append(f"  {o['path']} ({o['language']}): " + "; ".join(bits))
    out.append("analyses")
    out += ["  " + _analysis_line(a) for a in plan["analyses"]]
    summary = plan["summary"]
    severity = summary["by_severity"]
    out.append(
        f"findings: {summary['findings']} ({severity.get('high', 0)} high, "
        f"{severity.get('medium', 0)} medium, {severity.get('low', 0)} low; "
        f"{summary['fixable']} fixable), top {min(TOP, summary['findings'])}:"
    )
    for f in plan["findings"][:TOP]:
        out.append(
            f"  {f['rank']:>6}  {f['severity']:<6} {_where(f)}  [{'+'.join(f['tools'])} "
            f"{f['rule']}] {f['message']}"
        )
        if f.get("fix"):
            out.append(f"          -> {f['fix']}")
    if "fix" in plan:
        out += _fix_lines(plan)
    return "\n".join(out) + "\n"


def _fix_lines(plan: dict[str, Any]) -> list[str]:
    """The ``--fix`` outcome: kept (where), or rolled back (why); the checks;
    the analyses and the score before -> after."""
    fix = plan["fix"]
    out = _fix_head(fix)
    for m in fix.get("moves", []):
        moves = ", ".join(m["moves"])
        if m["applied"]:
            where = f" on branch {m['branch']}" if m.get("branch") else ""
            out.append(f"moves in {m['subproject']}: {moves}: applied and validated{where}")
        else:
            out.append(f"moves in {m['subproject']}: {moves}: rolled back ({m['rolled_back']})")
        for check in m.get("checks", []):
            out.append(
                f"  {'ok' if check['ok'] else 'FAILED'}: {check['what']} ({check['detail']})"
            )
    after = fix.get("after")
    if after is not None:
        out.append(
            f"  health score {plan['score']['value']} -> {after['score']['value']}/100; "
            "findings by analysis, before -> after:"
        )
        was = {(a["analysis"], a["subproject"]): a.get("findings") for a in plan["analyses"]}
        for a in after["analyses"]:
            if a["status"] == "ok":
                before = was.get((a["analysis"], a["subproject"]))
                out.append(
                    f"    {a['analysis']:<13} {a['subproject']:<12} {before} -> {a['findings']}"
                )
    return out


def _fix_head(fix: dict[str, Any]) -> list[str]:
    """The safe fixes: kept (where), rolled back (why), or none to make."""
    if "note" in fix:
        return [f"fix: {fix['note']}"]
    if fix["applied"]:
        where = f" on branch {fix['branch']} ({fix['commit'][:12]})" if fix.get("branch") else ""
        head = f"fix: applied and validated{where}: {fix.get('files_changed')} file(s) changed"
    else:
        head = f"fix: validation failed, everything was rolled back ({fix['rolled_back']})"
    return [head, *(_check_line(c) for c in fix.get("checks", []))]


def _check_line(check: dict[str, Any]) -> str:
    return f"  {'ok' if check['ok'] else 'FAILED'}: {check['what']} ({check['detail']})"


def _markdown(plan: dict[str, Any]) -> str:
    score = plan["score"]
    out = [
        f"# corral vibe: health score {score['value']}/100",
        "",
        "| component | score | detail |",
        "|---|---|---|",
    ]
    out += [f"| {c['name']} | {c['score']} | {c['detail']} |" for c in score["components"]]
    out += [
        "",
        "## Analyses",
        "",
        "| analysis | subproject | tool | findings |",
        "|---|---|---|---|",
    ]
    for a in plan["analyses"]:
        if a["status"] != "ok":
            out.append(
                f"| {a['analysis']} | {a['subproject']} | - | no result: "
                f"{a.get('error') or 'its step did not finish'} |"
            )
        else:
            out.append(
                f"| {a['analysis']} | {a['subproject']} | {a['tool']} "
                f"{a.get('version') or ''} | {a['findings']} |"
            )
    out += [
        "",
        f"## Top findings (of {plan['summary']['findings']})",
        "",
        "| rank | severity | where | tool | rule | finding | what to do |",
        "|---|---|---|---|---|---|---|",
    ]
    for f in plan["findings"][:TOP]:
        cells = [
            str(f["rank"]),
            f["severity"],
            f"`{_where(f)}`",
            "+".join(f["tools"]),
            f["rule"],
            f["message"],
            f.get("fix") or "",
        ]
        out.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    if "fix" in plan:
        out += ["", "## Fixes", "", "```", *_fix_lines(plan), "```"]
    return "\n".join(out) + "\n"


def render(plan: dict[str, Any], fmt: str) -> str:
    """The plan as ``text``, ``markdown`` or ``json``."""
    if fmt == "json":
        import msgspec

        return str(msgspec.json.format(msgspec.json.encode(plan), indent=2).decode()) + "\n"
    return _markdown(plan) if fmt == "markdown" else _text(plan)
