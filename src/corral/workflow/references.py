"""``${inputs.x}`` and ``${steps.<id>.output...}`` references: parsed once, resolved
without ``eval``.

A string that is exactly one reference takes the referenced value with its type;
a reference inside a longer string is interpolated as text (JSON for
non-strings). ``$${`` escapes a literal ``${``. Paths use dots for keys and
``[n]`` for list indexes: ``${steps.scan.output.files[0].name}``.

Pure logic: no I/O, no engine imports.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import msgspec

__all__ = [
    "Ref",
    "RefError",
    "Template",
    "compile_value",
    "is_dynamic",
    "iter_refs",
    "key_path",
    "parse_ref",
    "resolve",
]

_REF = re.compile(r"\$\$\{|\$\{([^}]*)\}|\$\{")
_SEGMENT = re.compile(r"\.?([A-Za-z_][A-Za-z0-9_-]*)|\[(-?\d+)\]|\[\"([^\"]*)\"\]|\['([^']*)'\]")


class RefError(ValueError):
    """A reference is malformed or cannot be resolved.

    ``path`` is the JSON path of the offending value when known (set by
    :func:`compile_value`).
    """

    path: str | None = None


_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


def key_path(path: str, key: object) -> str:
    """``path`` extended by a mapping key: ``$.a.b``, or ``$.a["odd key"]`` when
    the key is not a plain name."""
    if isinstance(key, str) and _IDENT.fullmatch(key):
        return f"{path}.{key}"
    return f"{path}[{json.dumps(key if isinstance(key, str) else str(key))}]"


def _show_path(path: tuple[str | int, ...]) -> str:
    out = ""
    for seg in path:
        out = f"{out}[{seg}]" if isinstance(seg, int) else key_path(out, seg)
    return out.lstrip(".")


@dataclass(frozen=True, slots=True)
class Ref:
    """``root`` is ``inputs`` or ``steps``; for steps, ``step`` is the id and
    ``path`` starts after ``output``."""

    root: str
    step: str | None
    path: tuple[str | int, ...]
    text: str

    def lookup(self, inputs: Mapping[str, Any], outputs: Mapping[str, Any]) -> Any:
        if self.root == "inputs":
            value: Any = inputs
        else:
            assert self.step is not None
            if self.step not in outputs:
                raise RefError(f"${{{self.text}}}: step {self.step!r} has no output")
            value = outputs[self.step]
        for i, seg in enumerate(self.path):
            found, value = _step_into(value, seg)
            if not found:
                where = _show_path(self.path[: i + 1])
                source = "inputs" if self.root == "inputs" else f"the output of {self.step!r}"
                raise RefError(f"${{{self.text}}}: {where!r} not found in {source}")
        return value


def _step_into(value: Any, seg: str | int) -> tuple[bool, Any]:
    """One path segment: a key of a mapping, an index of a list, a field of a Struct."""
    if isinstance(seg, int):
        if isinstance(value, (list, tuple)) and -len(value) <= seg < len(value):
            return True, value[seg]
        return False, None
    if type(value) is dict or isinstance(value, Mapping):  # (an ABC check costs more)
        if seg in value:
            return True, value[seg]
        return False, None
    if isinstance(value, msgspec.Struct) and seg in value.__struct_fields__:
        return True, getattr(value, seg)
    return False, None


#: No list holds more than 10**18 items: a longer index is a mistake (and
#: Python refuses to read an integer of more than 4,300 digits).
MAX_INDEX_DIGITS = 18


def _clip(text: str, limit: int = 80) -> str:
    """``text`` shortened for a message."""
    return text if len(text) <= limit else f"{text[: limit - 1]}…"


def parse_ref(text: str) -> Ref:
    """Parse the inside of ``${...}``."""
    body = text.strip()
    segments: list[str | int] = []
    pos = 0
    while pos < len(body):
        m = _SEGMENT.match(body, pos)
        if m is None or m.end() == pos:
            raise RefError(f"${{{text}}}: cannot parse near {body[pos:]!r}")
        name, index, dq, sq = m.groups()
        if name is not None:
            if (pos > 0) != (body[pos] == "."):
                what = "expected '.' before" if pos > 0 else "unexpected '.' before"
                raise RefError(f"${{{text}}}: {what} {name!r}")
            segments.append(name)
        elif index is not None:
            if len(index.lstrip("-")) > MAX_INDEX_DIGITS:
                raise RefError(
                    f"${{{_clip(text)}}}: list index {_clip(index, 24)} is too large "
                    f"(at most {MAX_INDEX_DIGITS} digits)"
                )
            segments.append(int(index))
        else:
            segments.append(dq if dq is not None else sq)
        pos = m.end()
    if not segments or segments[0] not in ("inputs", "steps"):
        raise RefError(f"${{{text}}}: a reference starts with 'inputs.' or 'steps.'")
    if segments[0] == "inputs":
        if len(segments) < 2 or not isinstance(segments[1], str):
            raise RefError(f"${{{text}}}: name an input, as in ${{inputs.name}}")
        return Ref("inputs", None, tuple(segments[1:]), body)
    if len(segments) < 3 or not isinstance(segments[1], str) or segments[2] != "output":
        raise RefError(f"${{{text}}}: step references look like ${{steps.<id>.output}}")
    return Ref("steps", segments[1], tuple(segments[3:]), body)


@dataclass(frozen=True, slots=True)
class Template:
    """A string containing references: literal parts interleaved with refs."""

    parts: tuple[str | Ref, ...]

    @property
    def whole(self) -> Ref | None:
        if len(self.parts) == 1 and isinstance(self.parts[0], Ref):
            return self.parts[0]
        return None

    def render(self, inputs: Mapping[str, Any], outputs: Mapping[str, Any]) -> Any:
        whole = self.whole
        if whole is not None:
            return whole.lookup(inputs, outputs)
        out: list[str] = []
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
            else:
                value = part.lookup(inputs, outputs)
                if isinstance(value, str):
                    out.append(value)
                    continue
                try:
                    out.append(msgspec.json.encode(value).decode())
                except (TypeError, ValueError) as exc:  # msgspec.EncodeError is a ValueError
                    raise RefError(
                        f"${{{part.text}}}: a {type(value).__name__} cannot be put into a "
                        f"string ({exc})"
                    ) from None
        return "".join(out)


def _compile_str(s: str) -> str | Template:
    if "${" not in s:
        return s
    parts: list[str | Ref] = []
    literal: list[str] = []
    pos = 0
    for m in _REF.finditer(s):
        literal.append(s[pos : m.start()])
        if m.group(0) == "$${":
            literal.append("${")
        elif m.group(1) is None:
            raise RefError(
                f"unterminated reference in {s!r}: '${{' without a closing '}}' "
                "(write '$${' for a literal '${')"
            )
        else:
            if literal:
                text = "".join(literal)
                if text:
                    parts.append(text)
                literal = []
            parts.append(parse_ref(m.group(1)))
        pos = m.end()
    literal.append(s[pos:])
    text = "".join(literal)
    if text:
        parts.append(text)
    if not any(isinstance(p, Ref) for p in parts):
        return "".join(p for p in parts if isinstance(p, str))
    return Template(tuple(parts))


class _Compiled:
    """Marker base: a compiled container holding at least one Template."""


@dataclass(frozen=True, slots=True)
class _List(_Compiled):
    items: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class _Dict(_Compiled):
    items: tuple[tuple[str, Any], ...]


def compile_value(value: Any, path: str = "$") -> Any:
    """Compile a params value; raises ``RefError`` with ``.path`` set.

    Values without references come back as plain data (the same object when
    nothing had to change; ``$${`` escapes are replaced), so resolving them is
    free.
    """
    try:
        return _compile(value, path)
    except _PathError as exc:
        err = RefError(str(exc.__cause__))
        err.path = exc.path
        raise err from None


class _PathError(Exception):
    def __init__(self, path: str) -> None:
        self.path = path


def _compile(value: Any, path: str) -> Any:
    if isinstance(value, str):
        try:
            return _compile_str(value)
        except RefError as exc:
            raise _PathError(path) from exc
    if isinstance(value, list):
        items = [_compile(v, f"{path}[{i}]") for i, v in enumerate(value)]
        if any(_dynamic(v) for v in items):
            return _List(tuple(items))
        if all(new is old for new, old in zip(items, value, strict=True)):
            return value
        return items
    if isinstance(value, dict):
        pairs = [(k, _compile(v, key_path(path, k))) for k, v in value.items()]
        if any(_dynamic(v) for _, v in pairs):
            return _Dict(tuple(pairs))
        if all(new is value[k] for k, new in pairs):
            return value
        return dict(pairs)
    return value


def _dynamic(value: Any) -> bool:
    return isinstance(value, (Template, _Compiled))


def resolve(compiled: Any, inputs: Mapping[str, Any], outputs: Mapping[str, Any]) -> Any:
    """Resolve a compiled value against inputs and upstream outputs."""
    if isinstance(compiled, Template):
        return compiled.render(inputs, outputs)
    if isinstance(compiled, _Dict):
        return {k: resolve(v, inputs, outputs) for k, v in compiled.items}
    if isinstance(compiled, _List):
        return [resolve(v, inputs, outputs) for v in compiled.items]
    return compiled


def iter_refs(compiled: Any, path: str = "$") -> Iterator[tuple[str, Ref]]:
    """Every reference in a compiled value with the JSON path where it occurs."""
    if isinstance(compiled, Template):
        for part in compiled.parts:
            if isinstance(part, Ref):
                yield path, part
    elif isinstance(compiled, _Dict):
        for k, v in compiled.items:
            yield from iter_refs(v, key_path(path, k))
    elif isinstance(compiled, _List):
        for i, v in enumerate(compiled.items):
            yield from iter_refs(v, f"{path}[{i}]")


def is_dynamic(compiled: Any) -> bool:
    """True if the compiled value contains at least one reference."""
    return _dynamic(compiled)
