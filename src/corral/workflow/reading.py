"""Workflow documents (YAML, TOML, JSON) read and checked for structure,
into a :class:`~corral.core.model.WorkflowSpec` (not compiled: no handler is
looked up). Below the compiler, which reads child workflow files through
it, and the loader, which reads and compiles.

Nothing in a workflow file is ever evaluated as Python.
"""

from __future__ import annotations

import errno
import json
import re
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from corral.core.errors import SpecError
from corral.core.files import DEFAULT_LIMIT, read_capped, toml_position
from corral.core.model import WorkflowSpec
from corral.workflow.documents import (
    MAX_DEPTH,
    LineIndex,
    check_document,
    explain,
    json_kind,
    line_for,
)
from corral.workflow.references import key_path

if TYPE_CHECKING:
    import yaml

__all__ = [
    "FORMATS",
    "MAX_FILE_BYTES",
    "MAX_STEPS",
    "parse_document",
    "parse_spec",
    "parse_text",
    "read_file",
    "too_many_steps",
]

MAX_STEPS = 10_000


def too_many_steps(count: int) -> str:
    return (
        f"the workflow has {count:,} steps; the limit is {MAX_STEPS:,} per workflow "
        "(split the work into child workflows, or pass a list to one step)"
    )


FORMATS = {".yaml": "yaml", ".yml": "yaml", ".toml": "toml", ".json": "json"}
MAX_FILE_BYTES = DEFAULT_LIMIT


def _format_of(path: Path, fmt: str | None) -> str:
    if fmt is not None:
        if fmt not in ("yaml", "toml", "json"):
            raise SpecError(f"unknown format {fmt!r}; expected yaml, toml or json", file=str(path))
        return fmt
    try:
        return FORMATS[path.suffix.lower()]
    except KeyError:
        raise SpecError(
            f"cannot tell the format from the suffix {path.suffix!r}; "
            "use .yaml, .yml, .toml or .json",
            file=str(path),
        ) from None


class _DuplicateKey(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKey(f"duplicate key {key!r}")
        result[key] = value
    return result


_TOML_AT_EOF = re.compile(r"\s*\(at end of document\)$")


def parse_document(text: str, fmt: str, file: str | None) -> tuple[Any, LineIndex | None]:
    """Decode a document; return it and (for YAML) the line of every path."""
    import yaml  # here: a command that reads no YAML spec does not pay for it

    try:
        if fmt == "yaml":
            return _load_yaml(text, file)
        if fmt == "toml":
            return tomllib.loads(text), None
        return json.loads(text, object_pairs_hook=_no_duplicates), None
    except SpecError:
        raise
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        msg = " ".join(str(p) for p in (exc.context, exc.problem) if p)
        raise SpecError(f"invalid YAML: {msg}", file=file, line=line) from None
    except yaml.YAMLError as exc:
        raise SpecError(f"invalid YAML: {exc}", file=file) from None
    except tomllib.TOMLDecodeError as exc:
        msg, at_line, column = toml_position(str(exc))
        line = getattr(exc, "lineno", None) or at_line
        if column is not None:
            msg = f"{msg} (column {column})"
        msg = _TOML_AT_EOF.sub(" (at the end of the document)", msg)
        raise SpecError(f"invalid TOML: {msg}", file=file, line=line) from None
    except json.JSONDecodeError as exc:
        raise SpecError(
            f"invalid JSON: {exc.msg} (column {exc.colno})", file=file, line=exc.lineno
        ) from None
    except _DuplicateKey as exc:
        raise SpecError(f"invalid JSON: {exc}", file=file) from None
    except RecursionError:
        raise SpecError(
            f"document is nested too deeply (the limit is {MAX_DEPTH} levels)", file=file
        ) from None
    except (ValueError, TypeError, OverflowError) as exc:  # e.g. out-of-range numbers or dates
        raise SpecError(f"invalid {fmt.upper()}: {exc}", file=file) from None


def _load_yaml(text: str, file: str | None) -> tuple[Any, LineIndex]:
    import yaml

    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, {}
        lines = _yaml_lines(node, file)
        return loader.construct_document(node), lines
    finally:
        loader.dispose()


_MERGE_TAG = "tag:yaml.org,2002:merge"


def _yaml_lines(root: yaml.Node, file: str | None) -> LineIndex:
    import yaml

    """JSON path -> 1-based line, from PyYAML's node marks; rejects duplicate keys.

    Iterative, and visits each node once: aliases (even recursive ones) cannot
    make it loop or blow up.
    """
    index: LineIndex = {}
    seen: set[int] = set()
    stack: list[tuple[yaml.Node, tuple[str | int, ...]]] = [(root, ())]
    while stack:
        node, path = stack.pop()
        index.setdefault(path, node.start_mark.line + 1)
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            first: dict[tuple[str, str], int] = {}
            for key, value in node.value:
                if not isinstance(key, yaml.ScalarNode) or key.tag == _MERGE_TAG:
                    continue
                line = key.start_mark.line + 1
                sub = (*path, key.value)
                if (key.tag, key.value) in first:
                    raise SpecError(
                        f"duplicate key {key.value!r} (first at line {first[key.tag, key.value]})",
                        file=file,
                        path=_join(sub),
                        line=line,
                    )
                first[key.tag, key.value] = line
                index[sub] = line
                stack.append((value, sub))
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                stack.append((item, (*path, i)))
    return index


def _join(parts: tuple[str | int, ...]) -> str:
    path = "$"
    for part in parts:
        path = f"{path}[{part}]" if isinstance(part, int) else key_path(path, part)
    return path


def parse_spec(
    raw: Any, *, file: str | None = None, lines: LineIndex | None = None
) -> WorkflowSpec:
    """Convert a decoded document into a :class:`WorkflowSpec` (structure and types only)."""
    if not isinstance(raw, dict):
        kind = "an empty document" if raw is None else f"a {json_kind(raw)}"
        raise SpecError(
            f"a workflow document is a mapping with 'name' and 'steps'; got {kind}",
            file=file,
            line=1 if lines is not None else None,
        )
    steps = raw.get("steps")
    if isinstance(steps, list) and len(steps) > MAX_STEPS:  # before any work on them
        raise SpecError(
            too_many_steps(len(steps)),
            file=file,
            path="$.steps",
            line=line_for(lines, "$.steps"),
        )
    try:
        check_document(raw)
    except SpecError as exc:
        raise exc.located(file=file, line=line_for(lines, exc.path)) from None
    try:
        return msgspec.convert(raw, WorkflowSpec, strict=True)
    except msgspec.ValidationError as exc:
        message, path = explain(exc, WorkflowSpec, raw)
        raise SpecError(message, file=file, path=path, line=line_for(lines, path)) from None
    except (TypeError, ValueError, RecursionError) as exc:
        raise SpecError(f"invalid document: {exc}", file=file) from None


def parse_text(text: str, fmt: str, *, file: str | None = None) -> WorkflowSpec:
    """A workflow document's text (``yaml``, ``toml`` or ``json``) as a spec,
    checked for structure (not compiled: no handler is looked up)."""
    if fmt not in ("yaml", "toml", "json"):
        raise SpecError(f"unknown format {fmt!r}; expected yaml, toml or json", file=file)
    raw, lines = parse_document(text, fmt, file)
    return parse_spec(raw, file=file, lines=lines)


def read_file(
    path: str | Path, fmt: str | None = None, _seen: tuple[Path, ...] = ()
) -> tuple[WorkflowSpec, LineIndex | None, Path]:
    """Read and check a workflow file: its spec, its line index and its
    resolved path (``_seen``: the files that include it, for cycles)."""
    file = str(path)
    p = Path(path)
    kind = _format_of(p, fmt)
    try:
        resolved = p.resolve()
        if resolved in _seen:
            chain = " -> ".join(str(s) for s in (*_seen, resolved))
            raise SpecError(f"child workflows include each other: {chain}", file=file)
        data = read_capped(p, MAX_FILE_BYTES)
    except FileNotFoundError:
        raise SpecError("no such file", file=file) from None
    except IsADirectoryError:
        raise SpecError("is a directory, not a workflow file", file=file) from None
    except OSError as exc:
        if exc.errno == errno.EFBIG:
            raise SpecError(f"file is {exc.strerror}", file=file) from None
        if exc.errno == errno.EINVAL and exc.strerror and "regular" in exc.strerror:
            raise SpecError(f"{exc.strerror}, not a workflow file", file=file) from None
        raise SpecError(f"cannot read file: {exc.strerror or exc}", file=file) from None
    except ValueError as exc:  # e.g. a NUL byte in the path
        raise SpecError(f"invalid file name: {exc}", file=file) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError(f"file is not UTF-8 text ({exc.reason})", file=file) from None
    raw, lines = parse_document(text, kind, file)
    return parse_spec(raw, file=file, lines=lines), lines, resolved
