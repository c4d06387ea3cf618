"""Helpers of the architecture tests: a tree of files from a dict, edge sets."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any


def write_tree(root: Path, files: dict[str, str]) -> Path:
    """Write ``{relative path: text}`` under ``root`` (texts dedented)."""
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


def edge_set(graph: dict[str, Any]) -> set[tuple[str, str]]:
    return {(e["importer"], e["imported"]) for e in graph["edges"]}
