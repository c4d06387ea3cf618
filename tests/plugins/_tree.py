"""Helpers of the architecture and restructure tests: a tree of files from a
dict, a tree's bytes, edge sets."""

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


def tree_bytes(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (but git's and bytecode) and its bytes."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".git" not in p.parts and "__pycache__" not in p.parts
    }
