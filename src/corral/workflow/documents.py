"""Plain-data documents: bounds checks, and msgspec's errors made precise.

A workflow file decodes to dicts, lists and scalars. Before msgspec converts
that into Structs, :func:`check_document` bounds its depth and size and
rejects values no JSON document could hold (dates, binary, sets). When
conversion fails, :func:`explain` turns msgspec's message into one that names
the exact path (mapping keys included) and suggests the right field or value.
Pure: no I/O.
"""

from __future__ import annotations

import datetime
import difflib
import json
import re
import types
import typing
from collections.abc import Iterable
from typing import Any

import msgspec

from corral.core.errors import SpecError
from corral.workflow.references import key_path

__all__ = [
    "MAX_DEPTH",
    "MAX_VALUES",
    "LineIndex",
    "check_document",
    "close_names",
    "explain",
    "is_struct",
    "json_kind",
    "line_for",
]

MAX_DEPTH = 100
"""Deepest nesting accepted in a document (mappings and lists)."""
MAX_VALUES = 1_000_000
"""Most values a document may hold, counting YAML alias expansions."""

LineIndex = dict[tuple[str | int, ...], int]

_PATH_TOKEN = re.compile(r"\.([^.\[\]]+)|\[(\d+)\]|\[(\"(?:[^\"\\]|\\.)*\")\]|\[\.\.\.\]")


def _split_path(path: str) -> tuple[str | int, ...]:
    parts: list[str | int] = []
    for m in _PATH_TOKEN.finditer(path[1:] if path.startswith("$") else path):
        key, idx, quoted = m.groups()
        if key is not None:
            parts.append(key)
        elif idx is not None:
            parts.append(int(idx))
        elif quoted is not None:
            parts.append(json.loads(quoted))
        else:
            break  # "[...]": an unknown key; stop at its container
    return tuple(parts)


def line_for(lines: LineIndex | None, path: str) -> int | None:
    if not lines:
        return None
    parts = _split_path(path)
    while True:
        if parts in lines:
            return lines[parts]
        if not parts:
            return None
        parts = parts[:-1]


def _kind(value: Any) -> str:
    if isinstance(value, (datetime.date, datetime.time)):
        return f"a date/time ({value.isoformat()})"
    if isinstance(value, (bytes, bytearray)):
        return "binary data"
    if isinstance(value, (set, frozenset)):
        return "a set"
    return f"a {type(value).__name__}"


def check_document(value: Any, path: str = "$", *, plain: bool = True) -> None:
    """Check a decoded document is a tree of JSON-like values of bounded depth and size.

    Raises ``SpecError`` (without file) naming the offending path. With
    ``plain=False`` (values built in Python) only depth and size are checked.
    Iterative, so it never recurses however deep the input.
    """
    stack: list[tuple[Any, str, int]] = [(value, path, 0)]
    count = 0
    while stack:
        v, p, depth = stack.pop()
        count += 1
        if count > MAX_VALUES:
            raise SpecError(
                f"document is too large (more than {MAX_VALUES:,} values, "
                "counting repeated YAML aliases)",
                path=p,
            )
        if depth > MAX_DEPTH:
            raise SpecError(f"nested too deeply (the limit is {MAX_DEPTH} levels)", path=p)
        if isinstance(v, dict):
            items = list(v.items())
            for k, _ in items:
                if not isinstance(k, str):
                    raise SpecError(
                        f"keys must be strings, got {json_kind(k)} {show_value(k)}"
                        + ("; quote it" if isinstance(k, (int, float, bool)) or k is None else ""),
                        path=p,
                    )
            stack.extend((x, key_path(p, k), depth + 1) for k, x in reversed(items))
        elif isinstance(v, (list, tuple)):
            stack.extend((v[i], f"{p}[{i}]", depth + 1) for i in range(len(v) - 1, -1, -1))
        elif not plain or v is None or isinstance(v, (str, int, float)):
            continue
        else:
            raise SpecError(
                f"{_kind(v)} is not allowed in a workflow file; quote it to make it a string",
                path=p,
            )


_AT_PATH = re.compile(r" - at `(\$[^`]*)`$")
_AT_KEY = re.compile(r" - at `key` in `(\$[^`]*)`$")
_UNKNOWN_FIELD = re.compile(r"^Object contains unknown field `(.*)`$", re.S)
_MISSING_FIELD = re.compile(r"^Object missing required field `(.*)`$", re.S)
_BAD_ENUM = re.compile(r"^Invalid enum value (.*)$", re.S)


def explain(exc: msgspec.ValidationError, tp: Any, raw: Any, prefix: str = "$") -> tuple[str, str]:
    """Turn msgspec's ``"message - at `$.a[...].b`"`` into (clear message, exact path).

    ``tp`` is the type ``raw`` was converted to. msgspec writes ``[...]`` for
    mapping keys; they are found again in ``raw``.
    """
    text = str(exc)
    m = _AT_KEY.search(text) or _AT_PATH.search(text)
    if m is None:
        message, tokens = text, []
    else:
        message, tokens = text[: m.start()], _tokens(m.group(1))
        if _AT_KEY.search(text):
            message = f"keys must be strings: {message}"
    if "..." in tokens:
        tokens = _find_keys(tp, tokens, raw)
    path = prefix
    for token in tokens:
        path = f"{path}[{token}]" if isinstance(token, int) else key_path(path, token)
    container = _type_at(tp, tokens)
    if um := _UNKNOWN_FIELD.match(message):
        key = um.group(1)
        names = _field_names(container)
        hint = close_names(key, names) or (f"; fields: {', '.join(names)}" if names else "")
        return f"unknown field {key!r}{hint}", key_path(path, key)
    if mm := _MISSING_FIELD.match(message):
        return f"missing required field {mm.group(1)!r}", path
    if em := _BAD_ENUM.match(message):
        choices = _literal_choices(container)
        hint = f"; expected one of: {', '.join(repr(c) for c in choices)}" if choices else ""
        return f"invalid value {em.group(1)}{hint}", path
    return message, path


def _tokens(path: str) -> list[str | int]:
    """``$.a[0][...].b`` -> ``["a", 0, "...", "b"]`` (msgspec's own path syntax)."""
    out: list[str | int] = []
    for m in re.finditer(r"\.([^.\[]+)|\[(\d+)\]|\[\.\.\.\]", path[1:]):
        if m.group(1) is not None:
            out.append(m.group(1))
        elif m.group(2) is not None:
            out.append(int(m.group(2)))
        else:
            out.append("...")
    return out


def _find_keys(tp: Any, tokens: list[str | int], raw: Any) -> list[str | int]:
    """Replace each ``"..."`` token by the mapping key whose value is invalid.

    msgspec converts a mapping's entries in order and stops at the first bad
    one, so that is the first entry whose value alone fails to convert to the
    mapping's value type.
    """
    tokens = list(tokens)
    node = raw
    for pos, token in enumerate(tokens):
        if token == "...":
            mapping = _type_at(tp, tokens[:pos])
            value_type = _type_at(mapping, ["..."]) if mapping is not None else None
            if not isinstance(node, dict) or value_type is None:
                return tokens[:pos]
            for key, value in node.items():
                try:
                    msgspec.convert(value, value_type, strict=True)
                except (msgspec.ValidationError, TypeError, ValueError):
                    tokens[pos] = key
                    break
            else:
                return tokens[:pos]  # not found: stop at the container
            token = tokens[pos]
        try:
            node = node[token]
        except (KeyError, IndexError, TypeError):
            return tokens[: pos + 1]
    return tokens


def _unwrap(tp: Any) -> list[Any]:
    """The alternatives of a type: ``Annotated`` and ``Optional``/unions taken apart."""
    while typing.get_origin(tp) is typing.Annotated:
        tp = typing.get_args(tp)[0]
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return [alt for arg in typing.get_args(tp) for alt in _unwrap(arg)]
    return [tp]


def is_struct(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, msgspec.Struct)


def _type_at(tp: Any, tokens: list[str | int]) -> Any:
    """The declared type at a path inside ``tp`` (``None`` if unknown)."""
    for token in tokens:
        nxt = None
        for alt in _unwrap(tp):
            origin = typing.get_origin(alt)
            if isinstance(token, int):
                if origin in (list, tuple) or alt in (list, tuple):
                    args = typing.get_args(alt)
                    nxt = args[0] if args else Any
            elif is_struct(alt):
                for f in msgspec.structs.fields(alt):
                    if f.encode_name == token:
                        nxt = f.type
            elif origin is dict or alt is dict:  # any key, "..." included
                args = typing.get_args(alt)
                nxt = args[1] if args else Any
            if nxt is not None:
                break
        if nxt is None:
            return None
        tp = nxt
    return tp


def _field_names(tp: Any) -> list[str]:
    for alt in _unwrap(tp):
        if is_struct(alt):
            return [f.encode_name for f in msgspec.structs.fields(alt)]
    return []


def _literal_choices(tp: Any) -> list[Any]:
    for alt in _unwrap(tp):
        if typing.get_origin(alt) is typing.Literal:
            return list(typing.get_args(alt))
    return []


def show_value(value: Any) -> str:
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    return repr(value)


def json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, list):
        return "list"
    return type(value).__name__


def close_names(name: str, names: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(names), n=3, cutoff=0.5)
    return f" (did you mean {', '.join(repr(n) for n in close)}?)" if close else ""
