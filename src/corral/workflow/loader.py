"""Workflow files (YAML, TOML, JSON) and specs -> validated :class:`~corral.workflow.plan.Plan`.

Everything is checked before anything runs, and every problem is a
:class:`corral.SpecError` naming the file, the JSON path and, for YAML, the
line. Nothing in a workflow file is ever evaluated as Python: references are
parsed (``corral.workflow.references``) and conditions are CEL. Reading a
document is :mod:`corral.workflow.reading`'s job; compiling it, the
compiler's; this module puts the two together.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from corral.core.errors import SpecError
from corral.plugins import Handler
from corral.workflow.compiler import compile_file, compile_spec, digest_of
from corral.workflow.plan import Plan
from corral.workflow.reading import (
    FORMATS,
    MAX_FILE_BYTES,
    parse_document,
    parse_spec,
    parse_text,
)

__all__ = [
    "FORMATS",
    "MAX_FILE_BYTES",
    "compile_spec",
    "digest_of",
    "load_file",
    "loads",
    "parse_document",
    "parse_spec",
    "parse_text",
]


def loads(
    text: str | bytes,
    fmt: str = "yaml",
    *,
    file: str | None = None,
    handlers: Mapping[str, type[Handler]] | None = None,
    pools: Mapping[str, int] | None = None,
    base_dir: Path | None = None,
) -> Plan:
    """Parse and validate a workflow document given as text."""
    if isinstance(text, (bytes, bytearray)):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise SpecError(f"file is not UTF-8 text ({exc.reason})", file=file) from None
    if not isinstance(text, str):
        raise SpecError(f"expected the text of a document, got {type(text).__name__}", file=file)
    if fmt not in ("yaml", "toml", "json"):
        raise SpecError(f"unknown format {fmt!r}; expected yaml, toml or json", file=file)
    raw, lines = parse_document(text, fmt, file)
    spec = parse_spec(raw, file=file, lines=lines)
    return compile_spec(
        spec,
        handlers=handlers,
        pools=pools,
        file=file,
        lines=lines,
        base_dir=base_dir,
        _checked=True,
    )


def load_file(
    path: str | Path,
    *,
    fmt: str | None = None,
    handlers: Mapping[str, type[Handler]] | None = None,
    pools: Mapping[str, int] | None = None,
    _seen: tuple[Path, ...] = (),
) -> Plan:
    """Read, parse and validate a workflow file."""
    return compile_file(path, fmt=fmt, handlers=handlers, pools=pools, _seen=_seen)
