"""The architecture report as one self-contained, offline HTML page.

It writes the same intermediate document as the markdown (:mod:`.render_doc`)
and adds each project's interactive package graph (:mod:`.render_graph`),
placed before the tables and linked from the top of the page, since on a large
project the map is what a reader looks for first.

The page is one offline file: inline CSS and JS, no fonts, images or scripts
fetched from anywhere (a Content-Security-Policy meta tag makes the browser
enforce that). Every string taken from the report goes through
:func:`html.escape`. The script is optional sugar (zoom, search, highlight,
opening a package's expanded view from its ``<template>``): it builds no
markup from strings, so report data never reaches it as code, and the page
reads the same with scripts off, minus the interaction.
"""

from __future__ import annotations

import html
from typing import Any

from corral.plugins.builtin.architecture.render_doc import (
    Block,
    GraphBlock,
    Heading,
    ListBlock,
    Para,
    Run,
    Table,
    document,
)
from corral.plugins.builtin.architecture.render_graph import graph_section

__all__ = ["CSP", "GRAPH_SCRIPT", "PAGE_CSS", "render_html"]

#: The page's styles (and the graphs'), for other self-contained reports too.
PAGE_CSS = """
:root { color-scheme: light; }
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1f2937;
  background: #fafbfc; margin: 0; }
main { max-width: 1400px; margin: 0 auto; padding: 1.5rem 2rem 4rem; }
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
p.jump a { font-weight: 600; }
.graphbox { margin: .8rem 0; background: #fff; border: 1px solid #d0d7de; border-radius: 6px; }
.toolbar { display: flex; flex-wrap: wrap; gap: .5rem; align-items: center;
  padding: .4rem .6rem; background: #f6f8fa; border-bottom: 1px solid #d0d7de;
  border-radius: 6px 6px 0 0; }
.toolbar[hidden], .toolbar .back[hidden] { display: none; }
.toolbar .spacer { flex: 1; }
.toolbar input { font: inherit; padding: .15rem .4rem; width: 16rem; }
.toolbar button { font: inherit; padding: .1rem .6rem; cursor: pointer; }
.toolbar .found { color: #57606a; font-size: 13px; }
.viewport { overflow: auto; max-height: 78vh; }
.viewport svg { display: block; max-width: none; }
.view-note { font-size: 13px; color: #57606a; margin: 0; padding: .4rem .6rem;
  border-top: 1px solid #d0d7de; }
svg .edge { fill: none; stroke: #8a94a6; stroke-width: 1.1; opacity: .6; }
svg .edge.cycle { stroke: #d62728; opacity: .45; }
svg .edge.cut { stroke-dasharray: 7 4; opacity: .9; }
svg .node rect { fill: #eef3fb; stroke: #5b7db1; stroke-width: 1; }
svg .node text { fill: #1f2937; }
svg .node.cycle rect { fill: #fdecea; stroke: #d62728; }
svg .node.ext rect { fill: #f3f4f6; stroke: #8a94a6; stroke-dasharray: 4 3; }
svg .node[data-expand] { cursor: pointer; }
svg .band rect { fill: #fff7f7; stroke: #d62728; stroke-width: 1.5; stroke-dasharray: 8 4; }
svg .band text { fill: #b42318; font-weight: 600; }
svg.focus .edge { opacity: .07; }
svg.focus .edge.out { stroke: #1f6feb; stroke-width: 2.2; opacity: 1; }
svg.focus .edge.in { stroke: #d9822b; stroke-width: 2.2; opacity: 1; }
svg.focus .node { opacity: .35; }
svg.focus .node.hl, svg.focus .node.nb { opacity: 1; }
svg .node.hl rect { stroke-width: 3; }
svg.searching .node { opacity: .3; }
svg.searching .node.match { opacity: 1; }
svg .node.match rect { stroke: #8250df; stroke-width: 3; }
svg .node.current rect { fill: #fff3b0; }
"""

# Optional sugar; the page reads the same with scripts off. Nothing here is
# built from report strings: names are only compared, never parsed as markup.
GRAPH_SCRIPT = """
(function () {
  function each(list, fn) { Array.prototype.forEach.call(list, fn); }
  each(document.querySelectorAll(".graphbox"), function (box) {
    var bar = box.querySelector(".toolbar"), port = box.querySelector(".viewport");
    var title = box.querySelector(".view-title"), note = box.querySelector(".view-note");
    var back = box.querySelector(".back"), find = box.querySelector(".find");
    var found = box.querySelector(".found");
    var main = port.querySelector("svg"), svg = main, scale = 1, pinned = null;
    var home = [title.textContent, note.textContent], matches = [], at = -1;
    bar.hidden = false;
    function size() {
      svg.setAttribute("width", Math.round(svg.getAttribute("data-w") * scale));
      svg.setAttribute("height", Math.round(svg.getAttribute("data-h") * scale));
    }
    function fit() {
      scale = Math.max(0.55, Math.min(1, (port.clientWidth - 2) / svg.getAttribute("data-w")));
      size();
      port.scrollLeft = (port.scrollWidth - port.clientWidth) / 2;  // wide graphs: the middle
    }
    function light(node, on) {
      var name = node.getAttribute("data-name"), near = {};
      svg.classList.toggle("focus", on);
      node.classList.toggle("hl", on);
      each(svg.querySelectorAll(".edge"), function (e) {
        var out = on && e.getAttribute("data-from") === name;
        var inn = on && e.getAttribute("data-to") === name;
        if (!e.hasAttribute("data-m")) { e.setAttribute("data-m", e.getAttribute("marker-end")); }
        e.classList.toggle("out", out);
        e.classList.toggle("in", inn);
        e.setAttribute("marker-end", out ? "url(#" + svg.id + "-arrow-out)" :
          inn ? "url(#" + svg.id + "-arrow-in)" : e.getAttribute("data-m"));
        if (out || inn) { near[e.getAttribute("data-from")] = near[e.getAttribute("data-to")] = 1; }
      });
      each(svg.querySelectorAll(".node"), function (n) {
        n.classList.toggle("nb", on && near[n.getAttribute("data-name")] === 1);
      });
    }
    function show(next, texts) {
      if (pinned) { light(pinned, false); pinned = null; }
      if (svg !== main) { svg.remove(); }
      main.style.display = next === main ? "" : "none";
      if (next !== main) { port.appendChild(next); }
      svg = next;
      title.textContent = texts[0];
      note.textContent = texts[1];
      back.hidden = next === main;
      fit();
      port.scrollTop = 0;
      search();
    }
    function open(name) {
      each(box.querySelectorAll("template[data-pkg]"), function (t) {
        if (t.getAttribute("data-pkg") === name) {
          show(t.content.querySelector("svg").cloneNode(true),
               [t.getAttribute("data-title"), t.getAttribute("data-note")]);
        }
      });
    }
    function go(i) {
      at = (i + matches.length) % matches.length;
      var r = matches[at].getBoundingClientRect(), p = port.getBoundingClientRect();
      port.scrollLeft += r.left - p.left - (p.width - r.width) / 2;
      port.scrollTop += r.top - p.top - (p.height - r.height) / 2;
      each(matches, function (m, k) { m.classList.toggle("current", k === at); });
      found.textContent = (at + 1) + " of " + matches.length;
    }
    function search() {
      var q = find.value.trim().toLowerCase();
      matches = [];
      each(svg.querySelectorAll(".node"), function (n) {
        var hit = q !== "" && n.getAttribute("data-name").toLowerCase().indexOf(q) >= 0;
        n.classList.toggle("match", hit);
        n.classList.remove("current");
        if (hit) { matches.push(n); }
      });
      svg.classList.toggle("searching", q !== "");
      found.textContent = q === "" ? "" : matches.length ? "" : "not in this view";
      if (matches.length) { go(0); }
    }
    find.addEventListener("input", search);
    find.addEventListener("keydown", function (ev) {
      if (ev.key === "Enter" && matches.length) {
        ev.preventDefault();
        go(at + (ev.shiftKey ? -1 : 1));
      }
      if (ev.key === "Escape") { find.value = ""; search(); }
    });
    back.addEventListener("click", function () { show(main, home); });
    each(box.querySelectorAll("[data-zoom]"), function (b) {
      b.addEventListener("click", function () {
        var z = +b.getAttribute("data-zoom");
        if (z === 0) { fit(); return; }
        scale = Math.max(0.2, Math.min(3, scale * (z > 0 ? 1.25 : 0.8)));
        size();
      });
    });
    port.addEventListener("mouseover", function (ev) {
      var node = ev.target.closest(".node");
      if (node && !pinned) { light(node, true); }
    });
    port.addEventListener("mouseout", function (ev) {
      var node = ev.target.closest(".node");
      if (node && !pinned && !node.contains(ev.relatedTarget)) { light(node, false); }
    });
    port.addEventListener("click", function (ev) {
      var node = ev.target.closest(".node");
      if (node && node.hasAttribute("data-expand")) {
        open(node.getAttribute("data-expand"));
        return;
      }
      if (pinned) { light(pinned, false); }
      pinned = node && node !== pinned ? node : null;
      if (pinned) { light(pinned, true); }
    });
    fit();
  });
})();
"""

#: Nothing is fetched from anywhere: the browser enforces it.
CSP = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:"


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


def _h_block(block: Block, anchor: str | None = None) -> str:
    if isinstance(block, Heading):
        attr = f' id="{anchor}"' if anchor else ""
        return f"<h{block.level}{attr}>{_h_inline(block.run)}</h{block.level}>"
    if isinstance(block, Para):
        return f"<p>{_h_inline(block.run)}</p>"
    if isinstance(block, Table):

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
    if isinstance(block, ListBlock):
        tag = "ol" if block.ordered else "ul"
        items = []
        for item in block.items:
            text = _h_inline(item.main) + "".join(f"<br>{_h_inline(r)}" for r in item.body)
            if item.children:
                text += "<ul>" + "".join(f"<li>{_h_inline(r)}</li>" for r in item.children)
                text += "</ul>"
            items.append(f"<li>{text}</li>")
        return f"<{tag}>\n" + "\n".join(items) + f"\n</{tag}>"
    return graph_section(block.project, block.index, block.level)[1]


def render_html(report: dict[str, Any]) -> str:
    """The report as one self-contained, offline HTML5 page (with package graphs)."""
    blocks = document(report)
    parts: list[str] = []
    toc: list[str] = []
    jumps: list[str] = []
    multi = sum(isinstance(b, GraphBlock) for b in blocks) > 1
    for n, block in enumerate(blocks):
        if isinstance(block, GraphBlock):
            gid, text = graph_section(block.project, block.index, block.level)
            what = "Package graph" + (f" of {block.project.get('name', '?')}" if multi else "")
            jumps.append(f'<a href="#{gid}">{html.escape(what)} ↓</a>')
            if block.level == 2:
                toc.append(f'<li><a href="#{gid}">Package dependency graph</a></li>')
            parts.append(text)
            continue
        anchor = None
        if isinstance(block, Heading) and block.level == 2:
            anchor = f"s{n}"
            toc.append(f'<li><a href="#{anchor}">{_h_inline(block.run)}</a></li>')
        parts.append(_h_block(block, anchor))
    top = []  # after the title and the generated-by line
    if jumps:
        top.append('<p class="jump">' + " · ".join(jumps) + "</p>")
    if toc:
        top.append("<nav><ul>\n" + "\n".join(toc) + "\n</ul></nav>")
    parts[min(2, len(parts)) : min(2, len(parts))] = top
    body = "\n".join(parts)
    title = html.escape(f"Architecture report: {report.get('root', '?')}")
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{title}</title>\n<style>{PAGE_CSS}</style>\n</head>\n<body>\n<main>\n"
        + f"{body}\n</main>\n<script>{GRAPH_SCRIPT}</script>\n</body>\n</html>\n"
    )
