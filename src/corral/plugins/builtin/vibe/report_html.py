"""``corral vibe``'s report as one self-contained, offline HTML page: the
score and its components, a tab per analysis, every finding in one table
(sortable by any column, filtered by text, severity and analysis), the
subprojects and their stack, and each subproject's package graph (the
architecture report's own, :mod:`~corral.plugins.builtin.architecture.render_graph`).

Like the architecture report: inline CSS and JS only, a Content-Security-
Policy that forbids fetching anything, every string from the plan through
:func:`html.escape`; the tabs are radio buttons (CSS), so the page reads
the same with scripts off, minus sorting and filtering.
"""

from __future__ import annotations

import html
from typing import Any

from corral.plugins.builtin.architecture.render_graph import graph_section
from corral.plugins.builtin.architecture.render_html import CSP, GRAPH_SCRIPT, PAGE_CSS

__all__ = ["render_html"]

_CSS = """
.score { display: flex; gap: 2rem; align-items: center; margin: 1rem 0; }
.score .big { font-size: 3.2rem; font-weight: 700; line-height: 1; }
.sev-high { color: #b42318; font-weight: 600; }
.sev-medium { color: #b54708; }
.sev-low { color: #57606a; }
.tabs > input { position: absolute; opacity: 0; pointer-events: none; }
.tabs > label { display: inline-block; padding: .35rem .9rem; margin: 0 .2rem -1px 0;
  border: 1px solid #d0d7de; border-radius: 6px 6px 0 0; background: #f6f8fa; cursor: pointer; }
.tabs > input:checked + label { background: #fff; border-bottom-color: #fff; font-weight: 600; }
.tabs > input:focus-visible + label { outline: 2px solid #1f6feb; }
.panel { display: none; border-top: 1px solid #d0d7de; padding-top: .6rem; }
.filters { display: flex; gap: .6rem; flex-wrap: wrap; margin: .4rem 0; }
.filters input, .filters select { font: inherit; padding: .15rem .4rem; }
table.sortable th { cursor: pointer; user-select: none; }
table.sortable th[aria-sort="ascending"]::after { content: " ▲"; }
table.sortable th[aria-sort="descending"]::after { content: " ▼"; }
td.msg { max-width: 46rem; }
td code { white-space: nowrap; overflow-wrap: normal; }
td { overflow-wrap: break-word; }
td.num, td.nowrap { white-space: nowrap; }
.noresult { color: #b42318; }
"""

# Sorting and filtering of the findings tables; cells are only compared and
# hidden, never parsed as markup.
_SCRIPT = """
(function () {
  function each(list, fn) { Array.prototype.forEach.call(list, fn); }
  each(document.querySelectorAll("table.sortable"), function (table) {
    var body = table.tBodies[0];
    each(table.tHead.rows[0].cells, function (th, col) {
      th.addEventListener("click", function () {
        var asc = th.getAttribute("aria-sort") !== "ascending";
        each(table.tHead.rows[0].cells, function (c) { c.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", asc ? "ascending" : "descending");
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (a, b) {
          var x = a.cells[col].getAttribute("data-v") || a.cells[col].textContent;
          var y = b.cells[col].getAttribute("data-v") || b.cells[col].textContent;
          var nx = parseFloat(x), ny = parseFloat(y);
          var d = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : x.localeCompare(y);
          return asc ? d : -d;
        });
        each(rows, function (r) { body.appendChild(r); });
      });
    });
  });
  each(document.querySelectorAll(".filters"), function (box) {
    var table = document.getElementById(box.getAttribute("data-for"));
    var text = box.querySelector("input"), sev = box.querySelector(".f-sev");
    var kind = box.querySelector(".f-kind"), count = box.querySelector(".count");
    function apply() {
      var q = text.value.trim().toLowerCase(), shown = 0;
      each(table.tBodies[0].rows, function (r) {
        var ok = (q === "" || r.textContent.toLowerCase().indexOf(q) >= 0) &&
          (sev.value === "" || r.getAttribute("data-sev") === sev.value) &&
          (kind.value === "" || r.getAttribute("data-kind") === kind.value);
        r.hidden = !ok;
        if (ok) { shown += 1; }
      });
      count.textContent = shown + " shown";
    }
    text.addEventListener("input", apply);
    sev.addEventListener("change", apply);
    kind.addEventListener("change", apply);
    apply();
  });
})();
"""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _findings_table(tid: str, findings: list[dict[str, Any]], kinds: list[str]) -> str:
    options = "".join(f'<option value="{_e(k)}">{_e(k)}</option>' for k in kinds)
    out = [
        f'<div class="filters" data-for="{tid}"><input type="search" placeholder="Filter…" '
        'aria-label="Filter the findings"><select class="f-sev" aria-label="Severity">'
        '<option value="">every severity</option><option>high</option><option>medium</option>'
        f'<option>low</option></select><select class="f-kind" aria-label="Analysis">'
        f'<option value="">every analysis</option>{options}</select>'
        '<span class="count" aria-live="polite"></span></div>',
        f'<div class="scroll"><table class="sortable" id="{tid}"><thead><tr><th class="num">rank'
        "</th><th>severity</th><th>where</th><th>analysis</th><th>tool</th><th>rule</th>"
        "<th>finding</th><th>what to do</th></tr></thead><tbody>",
    ]
    for f in findings:
        where = f["file"] + (f":{f['line']}" if f.get("line") else "")
        out.append(
            f'<tr data-sev="{_e(f["severity"])}" data-kind="{_e(f["kind"])}">'
            f'<td class="num">{_e(f.get("rank"))}</td>'
            f'<td class="sev-{_e(f["severity"])}" data-v="{"hml".index(f["severity"][0])}">'
            f"{_e(f['severity'])}</td><td><code>{_e(where)}</code></td><td>{_e(f['kind'])}</td>"
            f"<td>{_e('+'.join(f.get('tools', [f['tool']])))}</td><td>{_e(f['rule'])}</td>"
            f'<td class="msg">{_e(f["message"])}</td><td>{_e(f.get("fix"))}</td></tr>'
        )
    out.append("</tbody></table></div>")
    return "\n".join(out)


def _metrics(metrics: dict[str, Any]) -> str:
    rows = "".join(
        f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>"
        for k, v in metrics.items()
        if not isinstance(v, (dict, list))
    )
    return f"<table>{rows}</table>" if rows else ""


def render_html(plan: dict[str, Any], sections: list[dict[str, Any]] | None = None) -> str:
    """The plan as one page; ``sections`` (the architecture steps' outputs)
    give the package graphs."""
    score = plan["score"]
    findings = plan["findings"]
    kinds = [k for k in dict.fromkeys(a["analysis"] for a in plan["analyses"])]
    components = "".join(
        f'<tr><td>{_e(c["name"])}</td><td class="num">{_e(c["score"])}</td>'
        f"<td>{_e(c['detail'])}</td></tr>"
        for c in score["components"]
    )
    summary = plan["summary"]
    sev = summary["by_severity"]
    head = (
        f"<h1>corral vibe: {_e(plan['root'])}</h1>\n"
        f'<div class="score"><div><div class="big">{_e(score["value"])}</div>health score / 100'
        f"</div><table><thead><tr><th>component</th><th>score</th><th>detail</th></tr></thead>"
        f"<tbody>{components}</tbody></table></div>\n"
        f"<p>{summary['findings']} findings: {sev.get('high', 0)} high, {sev.get('medium', 0)} "
        f"medium, {sev.get('low', 0)} low; {summary['fixable']} fixable safely.</p>"
    )
    tabs: list[tuple[str, str, str]] = [
        ("findings", f"All findings ({len(findings)})", _findings_table("t-all", findings, kinds))
    ]
    for kind in kinds:
        mine = [f for f in findings if f["kind"] == kind]
        parts = []
        for a in plan["analyses"]:
            if a["analysis"] != kind:
                continue
            title = f"{a['subproject']}: " + (
                f"{a['tool']} {a.get('version') or ''}" if a["status"] == "ok" else ""
            )
            if a["status"] != "ok":
                parts.append(
                    f'<h3>{_e(title)}<span class="noresult">no result: '
                    f"{_e(a.get('error') or 'its step did not finish')}</span></h3>"
                )
            else:
                parts.append(f"<h3>{_e(title)}</h3>{_metrics(a.get('metrics') or {})}")
        parts.append(_findings_table(f"t-{kind}", mine, [kind]))
        tabs.append((kind, f"{kind} ({len(mine)})", "\n".join(parts)))
    own = {s["subproject"]: s for s in plan.get("sections", [])}
    rows = "".join(
        f"<tr><td><code>{_e(p['path'])}</code></td><td>{_e(p['name'])}</td>"
        f'<td class="num">{_e(own.get(p["path"], {}).get("score", {}).get("value"))}</td>'
        f"<td>{_e(', '.join(p['source_roots']))}</td><td>{_e(', '.join(p['test_roots']))}</td>"
        f"<td>{_e(p['stack']['python'])}</td><td>{_e(', '.join(p['stack']['frameworks']))}</td>"
        f"<td>{_e(p['stack']['test_runner'])}</td><td>{_e(', '.join(p['stack']['linters']))}</td>"
        f"<td>{_e(', '.join(p['stack']['ci']))}</td></tr>"
        for p in plan["subprojects"]
    )
    others = "".join(
        f"<li><code>{_e(o['path'])}</code> ({_e(o['language'])}): {_e(o['note'])}</li>"
        for o in plan["other_subprojects"]
    )
    tabs.append(
        (
            "subprojects",
            f"Subprojects ({len(plan['subprojects'])})",
            "<table><thead><tr><th>path</th><th>name</th><th>score</th><th>sources</th>"
            "<th>tests</th><th>python</th><th>frameworks</th>"
            f"<th>test runner</th><th>linters</th><th>CI</th></tr></thead><tbody>{rows}</tbody>"
            "</table>" + (f"<p>Not analysed:</p><ul>{others}</ul>" if others else ""),
        )
    )
    if sections:
        graphs = []
        for i, section in enumerate(sections):
            _, body = graph_section(section, i, 3)
            graphs.append(f"<h2>{_e(section.get('name'))}</h2>{body}")
        tabs.append(("graph", "Package graph", "\n".join(graphs)))
    radios, panels, css = [], [], []
    for n, (key, label, body) in enumerate(tabs):
        checked = " checked" if n == 0 else ""
        radios.append(
            f'<input type="radio" name="tab" id="tab-{key}"{checked}>'
            f'<label for="tab-{key}">{_e(label)}</label>'
        )
        panels.append(f'<section class="panel" id="panel-{key}">{body}</section>')
        css.append(f"#tab-{key}:checked ~ .panels #panel-{key} {{ display: block; }}")
    title = _e(f"corral vibe: {plan['root']}")
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{title}</title>\n<style>{PAGE_CSS}{_CSS}{chr(10).join(css)}</style>\n"
        f'</head>\n<body>\n<main>\n{head}\n<div class="tabs">{"".join(radios)}'
        f'<div class="panels">{"".join(panels)}</div></div>\n</main>\n'
        f"<script>{_SCRIPT}</script>\n<script>{GRAPH_SCRIPT}</script>\n</body>\n</html>\n"
    )
