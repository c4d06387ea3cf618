"""Markdown and self-contained HTML renderings of the architecture report.

Both renderings come from one intermediate document (headings, paragraphs,
tables and lists built by :func:`.render_doc.document`), so the two formats
cannot drift apart: whatever the markdown says, the HTML says too. This module
writes the markdown; :mod:`.render_html` writes the HTML page, which adds what
markdown cannot carry, an interactive drawing of each project's package graph
(:mod:`.render_graph`, laid out by :mod:`.render_layout`). ``render_html`` is
re-exported here so callers keep one import.

The HTML is one offline file: inline CSS and JS, no fonts, images or scripts
fetched from anywhere (a Content-Security-Policy meta tag makes the browser
enforce that). Every string taken from the report goes through
:func:`html.escape`; in markdown, through :func:`_md_text` or :func:`_md_code`,
because module names, paths and error messages are data, not markup.
"""

from __future__ import annotations

import re
from typing import Any

from corral.plugins.builtin.architecture.render_doc import (
    MAX_ROWS,
    Block,
    Heading,
    ListBlock,
    Para,
    Run,
    Table,
    document,
)
from corral.plugins.builtin.architecture.render_html import render_html

__all__ = ["MAX_ROWS", "render_html", "render_markdown"]

# --------------------------------------------------------------------------
# Markdown
# --------------------------------------------------------------------------

# Backslash-escapable punctuation that means something inline in GFM. ``>``,
# ``#``, ``-`` and digits only matter at the start of a line: see _md_start.
_MD_SPECIAL = re.compile(r"([\\`*_\[\]<|&~])")
_NEWLINES = re.compile(r"[\r\n\t]+")


def _md_text(text: str) -> str:
    return _MD_SPECIAL.sub(r"\\\1", _NEWLINES.sub(" ", text))


def _md_code(text: str, *, table: bool) -> str:
    text = _NEWLINES.sub(" ", text)
    if not text:
        return ""
    if table:  # GFM splits cells before inline parsing, even inside code spans
        text = text.replace("|", "\\|")
    fence = "`" * (max((len(m) for m in re.findall(r"`+", text)), default=0) + 1)
    pad = " " if text[0] in "` " or text[-1] in "` " else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _md_inline(run: Run, *, table: bool = False) -> str:
    out = []
    for kind, value in run:
        if kind == "code":
            out.append(_md_code(value, table=table))
        elif kind == "strong":
            out.append(f"**{_md_text(value.strip())}**" if value.strip() else "")
        else:
            out.append(_md_text(value))
    return "".join(out)


def _md_start(line: str) -> str:
    """Keep a line of data from starting a heading, quote, list or rule."""
    line = line.lstrip()
    if line[:1] in ("#", ">", "-", "+", "="):
        return "\\" + line
    m = re.match(r"\d+(?=[.)])", line)
    return f"{m.group()}\\{line[m.end() :]}" if m else line


def _md_block(block: Block) -> str | None:
    if isinstance(block, Heading):
        return "#" * block.level + " " + _md_inline(block.run)
    if isinstance(block, Para):
        return _md_start(_md_inline(block.run))
    if isinstance(block, Table):
        lines = [
            "| " + " | ".join(block.headers) + " |",
            "| " + " | ".join("---:" if n else "---" for n in block.numeric) + " |",
        ]
        for row in block.rows:
            lines.append("| " + " | ".join(_md_inline(c, table=True) for c in row) + " |")
        return "\n".join(lines)
    if isinstance(block, ListBlock):
        lines = []
        for n, item in enumerate(block.items, 1):
            marker = f"{n}." if block.ordered else "-"
            indent = " " * (len(marker) + 1)
            lines.append(f"{marker} {_md_start(_md_inline(item.main))}")
            for run in item.body:  # a hard line break keeps the item one paragraph
                lines[-1] += "\\"
                lines.append(indent + _md_start(_md_inline(run)))
            lines += [f"{indent}- {_md_start(_md_inline(run))}" for run in item.children]
        return "\n".join(lines)
    return None  # the graph: HTML only


def render_markdown(report: dict[str, Any]) -> str:
    """The report as a GitHub-flavoured markdown document."""
    parts = [_md_block(block) for block in document(report)]
    return "\n\n".join(p for p in parts if p) + "\n"
