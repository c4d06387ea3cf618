"""Workflow files (YAML, TOML, JSON) and specs -> validated :class:`~corral.plan.Plan`.

Everything is checked before anything runs, and every problem is a
:class:`corral.SpecError` naming the file, the JSON path and, for YAML, the
line. Nothing in a workflow file is ever evaluated as Python: references are
parsed (``corral.references``) and conditions are CEL.
"""

from __future__ import annotations

import datetime
import difflib
import hashlib
import json
import re
import tomllib
import types
import typing
from collections.abc import Iterable, Mapping
from collections.abc import Set as AbstractSet
from pathlib import Path
from typing import Any

import msgspec
import yaml

from corral.engine.conditions import Condition, ConditionError
from corral.engine.graph import IndexSet, ancestors, dependents_of, find_cycle, topological_order
from corral.errors import SpecError
from corral.model import StepSpec, WorkflowSpec
from corral.plan import NO_RETRY, Plan, StepPlan, type_ok
from corral.plugins import Handler
from corral.references import Ref, RefError, compile_value, is_dynamic, iter_refs, key_path

__all__ = ["FORMATS", "check_document", "compile_spec", "load_file", "loads", "parse_spec"]

FORMATS = {".yaml": "yaml", ".yml": "yaml", ".toml": "toml", ".json": "json"}
MAX_FILE_BYTES = 10_000_000

LineIndex = dict[tuple[str | int, ...], int]


# ---------------------------------------------------------------- parsing

MAX_DEPTH = 100
"""Deepest nesting accepted in a document (mappings and lists)."""
MAX_VALUES = 1_000_000
"""Most values a document may hold, counting YAML alias expansions."""


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


_TOML_AT = re.compile(r"\s*\(at line (\d+), column (\d+)\)$")
_TOML_AT_EOF = re.compile(r"\s*\(at end of document\)$")


def _parse_document(text: str, fmt: str, file: str | None) -> tuple[Any, LineIndex | None]:
    """Decode a document; return it and (for YAML) the line of every path."""
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
        msg = str(exc)
        line = getattr(exc, "lineno", None)
        m = _TOML_AT.search(msg)
        if m is not None:
            line = line or int(m.group(1))
            msg = f"{msg[: m.start()]} (column {m.group(2)})"
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


def _line_for(lines: LineIndex | None, path: str) -> int | None:
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
                        f"keys must be strings, got {_json_kind(k)} {_show(k)}"
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


def _explain(exc: msgspec.ValidationError, tp: Any, raw: Any, prefix: str = "$") -> tuple[str, str]:
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
        hint = _close(key, names) or (f"; fields: {', '.join(names)}" if names else "")
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


def _is_struct(tp: Any) -> bool:
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
            elif _is_struct(alt):
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
        if _is_struct(alt):
            return [f.encode_name for f in msgspec.structs.fields(alt)]
    return []


def _literal_choices(tp: Any) -> list[Any]:
    for alt in _unwrap(tp):
        if typing.get_origin(alt) is typing.Literal:
            return list(typing.get_args(alt))
    return []


def parse_spec(
    raw: Any, *, file: str | None = None, lines: LineIndex | None = None
) -> WorkflowSpec:
    """Convert a decoded document into a :class:`WorkflowSpec` (structure and types only)."""
    if not isinstance(raw, dict):
        kind = "an empty document" if raw is None else f"a {_json_kind(raw)}"
        raise SpecError(
            f"a workflow document is a mapping with 'name' and 'steps'; got {kind}",
            file=file,
            line=1 if lines is not None else None,
        )
    try:
        check_document(raw)
    except SpecError as exc:
        raise exc.located(file=file, line=_line_for(lines, exc.path)) from None
    try:
        return msgspec.convert(raw, WorkflowSpec, strict=True)
    except msgspec.ValidationError as exc:
        message, path = _explain(exc, WorkflowSpec, raw)
        raise SpecError(message, file=file, path=path, line=_line_for(lines, path)) from None
    except (TypeError, ValueError, RecursionError) as exc:
        raise SpecError(f"invalid document: {exc}", file=file) from None


def _show(value: Any) -> str:
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    return repr(value)


def _json_kind(value: Any) -> str:
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
    raw, lines = _parse_document(text, fmt, file)
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
    p = Path(path)
    file = str(path)
    kind = _format_of(p, fmt)
    try:
        resolved = p.resolve()
        if resolved in _seen:
            chain = " -> ".join(str(s) for s in (*_seen, resolved))
            raise SpecError(f"child workflows include each other: {chain}", file=file)
        size = p.stat().st_size
        if size > MAX_FILE_BYTES:
            raise SpecError(f"file is too large ({size} bytes; limit {MAX_FILE_BYTES})", file=file)
        data = p.read_bytes()
    except FileNotFoundError:
        raise SpecError("no such file", file=file) from None
    except IsADirectoryError:
        raise SpecError("is a directory, not a workflow file", file=file) from None
    except OSError as exc:
        raise SpecError(f"cannot read file: {exc.strerror or exc}", file=file) from None
    except ValueError as exc:  # e.g. a NUL byte in the path
        raise SpecError(f"invalid file name: {exc}", file=file) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError(f"file is not UTF-8 text ({exc.reason})", file=file) from None
    raw, lines = _parse_document(text, kind, file)
    spec = parse_spec(raw, file=file, lines=lines)
    return compile_spec(
        spec,
        handlers=handlers,
        pools=pools,
        file=file,
        lines=lines,
        base_dir=resolved.parent,
        _seen=(*_seen, resolved),
        _checked=True,
    )


# ---------------------------------------------------------------- validation


def digest_of(spec: WorkflowSpec) -> str:
    """Content hash of a spec (sha256 of its canonical JSON)."""
    return hashlib.sha256(msgspec.json.encode(spec, order="sorted")).hexdigest()


class _Checker:
    def __init__(self, file: str | None, lines: LineIndex | None) -> None:
        self.file = file
        self.lines = lines

    def error(self, message: str, path: str) -> SpecError:
        return SpecError(message, file=self.file, path=path, line=_line_for(self.lines, path))


def _recheck(spec: WorkflowSpec, c: _Checker) -> None:
    """Validate a spec built in Python (Struct constructors check nothing)."""
    try:
        raw = msgspec.to_builtins(spec)
        check_document(raw, plain=False)
    except SpecError as exc:
        raise c.error(exc.message, exc.path) from None
    except (TypeError, ValueError, RecursionError) as exc:
        raise c.error(f"the spec holds a value that is not plain data: {exc}", "$") from None
    try:
        msgspec.convert(raw, WorkflowSpec, strict=True)
    except msgspec.ValidationError as exc:
        message, path = _explain(exc, WorkflowSpec, raw)
        raise c.error(message, path) from None


def compile_spec(
    spec: WorkflowSpec,
    *,
    handlers: Mapping[str, type[Handler]] | None = None,
    pools: Mapping[str, int] | None = None,
    file: str | None = None,
    lines: LineIndex | None = None,
    base_dir: Path | None = None,
    _seen: tuple[Path, ...] = (),
    _checked: bool = False,
) -> Plan:
    """Validate a spec's meaning and compile it into a :class:`Plan`.

    ``handlers`` maps handler names to classes (``None``: skip handler checks,
    for tools that only check structure). ``pools`` are the engine's resource
    pools and their sizes (``None``: skip pool checks).
    """
    if not isinstance(spec, WorkflowSpec):
        raise SpecError(f"expected a WorkflowSpec, got {type(spec).__name__}", file=file)
    c = _Checker(file, lines)
    if not _checked:
        _recheck(spec, c)
    steps = spec.steps
    if not steps:
        raise c.error("a workflow needs at least one step", "$.steps")
    for name, decl in spec.inputs.items():
        if decl.default is not msgspec.UNSET and not type_ok(decl.type, decl.default):
            raise c.error(
                f"the default of input {name!r} is not of its type {decl.type}: "
                f"{type(decl.default).__name__} {decl.default!r}",
                key_path(key_path("$.inputs", name), "default"),
            )
    index: dict[str, int] = {}
    for i, step in enumerate(steps):
        if step.id in index:
            raise c.error(
                f"duplicate step id {step.id!r} (first used at $.steps[{index[step.id]}])",
                f"$.steps[{i}].id",
            )
        index[step.id] = i

    needs: list[tuple[int, ...]] = []
    for i, step in enumerate(steps):
        deps: list[int] = []
        for j, need in enumerate(step.needs):
            if need == step.id:
                raise c.error(f"step {step.id!r} needs itself", f"$.steps[{i}].needs[{j}]")
            if need not in index:
                close = _close(need, index)
                raise c.error(f"unknown step {need!r} in needs{close}", f"$.steps[{i}].needs[{j}]")
            if index[need] not in deps:
                deps.append(index[need])
        needs.append(tuple(deps))

    cycle = find_cycle(needs)
    if cycle is not None:
        names = " -> ".join(steps[k].id for k in cycle)
        first, second = cycle[0], cycle[1]
        j = steps[first].needs.index(steps[second].id)
        raise c.error(
            f"steps form a cycle: {names} (each step needs the next)",
            f"$.steps[{first}].needs[{j}]",
        )
    order = topological_order(needs)
    ancestry = ancestors(needs, order)
    dependents = dependents_of(needs)
    declared_inputs = set(spec.inputs)

    plans: list[StepPlan] = []
    for i, step in enumerate(steps):
        base = f"$.steps[{i}]"
        handler_cls, child = _step_target(c, step, base, handlers, pools, base_dir, _seen)
        try:
            params = compile_value(step.params, f"{base}.params")
        except RefError as exc:
            raise c.error(str(exc), exc.path or f"{base}.params") from None
        for ref_path, ref in iter_refs(params, f"{base}.params"):
            _check_ref(c, ref, ref_path, declared_inputs, index, ancestry[i], step.id)
        static: Any = msgspec.UNSET
        if handler_cls is not None:
            static = _check_params(c, handler_cls, step.params, params, f"{base}.params")
        elif child is not None:
            _check_child_params(c, child, step.params, f"{base}.params")
        if pools is not None:
            for pool, amount in step.resources.items():
                if pool not in pools:
                    raise c.error(
                        f"unknown resource pool {pool!r}{_close(pool, pools)}; "
                        f"pools: {', '.join(sorted(pools))}",
                        key_path(f"{base}.resources", pool),
                    )
                if amount > pools[pool]:
                    raise c.error(
                        f"asks for {amount} of pool {pool!r}, which has only {pools[pool]}",
                        key_path(f"{base}.resources", pool),
                    )
        when = None
        if step.when is not None:
            try:
                when = Condition(step.when, ("inputs", "steps"))
                if not when.variables:
                    when.test({})  # a constant must at least be a boolean
            except ConditionError as exc:
                raise c.error(f"invalid condition: {exc}", f"{base}.when") from None
        when_refs = _condition_steps(c, step.when, index, ancestry[i], f"{base}.when")
        param_refs = sorted(
            {index[ref.step] for _, ref in iter_refs(params) if ref.step is not None}
        )
        key = None
        if step.concurrency is not None:
            try:
                key = Condition(step.concurrency.key, ("inputs", "params"))
            except ConditionError as exc:
                raise c.error(f"invalid key expression: {exc}", f"{base}.concurrency.key") from None
        cache = step.cache
        plans.append(
            StepPlan(
                index=i,
                id=step.id,
                spec=step,
                handler=handler_cls,
                child=child,
                params=params,
                static_params=static,
                needs=needs[i],
                dependents=tuple(dependents[i]),
                ancestors=ancestry[i],
                when=when,
                key=key,
                retry=step.retry or NO_RETRY,
                cache=bool(cache),
                cache_ttl=None if isinstance(cache, bool) else cache.ttl,
                param_refs=tuple(param_refs),
                when_refs=when_refs,
            )
        )

    output: Any = msgspec.UNSET
    if spec.output is not msgspec.UNSET:
        try:
            output = compile_value(spec.output, "$.output")
        except RefError as exc:
            raise c.error(str(exc), exc.path or "$.output") from None
        everything = IndexSet(range(len(steps)))
        for ref_path, ref in iter_refs(output, "$.output"):
            _check_ref(c, ref, ref_path, declared_inputs, index, everything, None)
    sinks = tuple(i for i, deps in enumerate(dependents) if not deps)
    return Plan(
        spec=spec,
        steps=plans,
        order=order,
        index=index,
        sinks=sinks,
        output=output,
        digest=digest_of(spec),
        file=file,
        pools=frozenset((pools or {}).items()),
        bound=handlers is not None,
        base_dir=base_dir,
    )


_STEP_NAME = re.compile(
    r"""\bsteps\s*(?:\.\s*([A-Za-z_][A-Za-z0-9_]*)|\[\s*(?:"([^"]*)"|'([^']*)')\s*\])"""
)
_STEPS_WORD = re.compile(r"\bsteps\b")


def _condition_steps(
    c: _Checker,
    source: str | None,
    index: Mapping[str, int],
    upstream: AbstractSet[int],
    path: str,
) -> tuple[int, ...]:
    """The upstream steps a condition reads, so a run builds only those.

    Names are found syntactically (``steps.a``, ``steps["a-b"]``); a step that
    is not upstream is an error, as for references. If ``steps`` is used in a
    way that hides which step is read (``steps[name]``), every upstream step
    is made available.
    """
    if source is None:
        return ()
    found = list(_STEP_NAME.finditer(source))
    if len(found) < len(_STEPS_WORD.findall(source)):
        return tuple(sorted(upstream))
    out: set[int] = set()
    for m in found:
        name = m.group(1) or m.group(2) or m.group(3) or ""
        if name not in index:
            raise c.error(f"condition refers to unknown step {name!r}{_close(name, index)}", path)
        if index[name] not in upstream:
            raise c.error(
                f"condition refers to step {name!r}, which is not upstream; add it to needs", path
            )
        out.add(index[name])
    return tuple(sorted(out))


def _close(name: str, names: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(names), n=3, cutoff=0.5)
    return f" (did you mean {', '.join(repr(n) for n in close)}?)" if close else ""


def _step_target(
    c: _Checker,
    step: StepSpec,
    base: str,
    handlers: Mapping[str, type[Handler]] | None,
    pools: Mapping[str, int] | None,
    base_dir: Path | None,
    seen: tuple[Path, ...],
) -> tuple[type[Handler] | None, Plan | None]:
    if step.handler is None and step.workflow is None:
        raise c.error("a step needs a 'handler' or a child 'workflow'", base)
    if step.handler is not None and step.workflow is not None:
        raise c.error("a step has either a 'handler' or a child 'workflow', not both", base)
    if step.workflow is not None:
        if step.cache:
            raise c.error("a child workflow step cannot be cached", f"{base}.cache")
        if isinstance(step.workflow, WorkflowSpec):
            try:
                child = compile_spec(
                    step.workflow,
                    handlers=handlers,
                    pools=pools,
                    file=c.file,
                    base_dir=base_dir,
                    _seen=seen,
                    _checked=True,
                )
            except SpecError as exc:
                # Re-anchor the child's paths under this step.
                path = f"{base}.workflow{exc.path[1:]}"
                raise c.error(exc.message, path) from None
            return None, child
        rel = Path(step.workflow)
        target = rel if rel.is_absolute() or base_dir is None else base_dir / rel
        try:
            found = target.is_file()
        except (OSError, ValueError):
            found = False
        if not found:
            where = (
                f" (looked in {base_dir})" if base_dir is not None and not rel.is_absolute() else ""
            )
            raise c.error(
                f"child workflow file {step.workflow!r} not found{where}", f"{base}.workflow"
            )
        try:
            child = load_file(target, handlers=handlers, pools=pools, _seen=seen)
        except SpecError as exc:
            raise c.error(f"in child workflow: {exc}", f"{base}.workflow") from None
        return None, child
    assert step.handler is not None
    if handlers is None:
        return None, None
    name = step.handler
    if name not in handlers:
        hint = _close(name, handlers)
        if not hint:
            known = sorted(handlers)
            more = ", ..." if len(known) > 10 else ""
            hint = f" (known handlers: {', '.join(known[:10])}{more})" if known else ""
        raise c.error(f"unknown handler {name!r}{hint}", f"{base}.handler")
    return handlers[name], None


def _check_ref(
    c: _Checker,
    ref: Ref,
    path: str,
    inputs: set[str],
    index: Mapping[str, int],
    upstream: AbstractSet[int],
    step_id: str | None,
) -> None:
    if ref.root == "inputs":
        name = ref.path[0]
        if name not in inputs:
            declared = ", ".join(sorted(inputs)) or "none"
            raise c.error(
                f"${{{ref.text}}} refers to undeclared input {name!r} (declared: {declared})", path
            )
        return
    target = ref.step
    assert target is not None
    if target not in index:
        raise c.error(
            f"${{{ref.text}}} refers to unknown step {target!r}{_close(target, index)}", path
        )
    if index[target] not in upstream:
        if step_id == target:
            raise c.error(f"${{{ref.text}}}: step {step_id!r} cannot use its own output", path)
        raise c.error(
            f"${{{ref.text}}} refers to step {target!r}, which is not upstream of {step_id!r}; "
            f"add it to needs",
            path,
        )


def _params_struct(ptype: Any) -> type[msgspec.Struct] | None:
    return ptype if _is_struct(ptype) else None


def _check_params(
    c: _Checker, handler: type[Handler], raw: dict[str, Any], compiled: Any, path: str
) -> Any:
    """Check params against the handler's Params type.

    Without references, params are converted once here and reused by every
    run. With references, the literal parts are checked now (unknown and
    missing fields, types of literal values) and the rest once resolved.
    """
    ptype = handler.Params
    name = handler.name
    struct = _params_struct(ptype)
    fields: dict[str, msgspec.structs.FieldInfo] = {}
    if struct is not None:
        fields = {f.encode_name: f for f in msgspec.structs.fields(struct)}
        if struct.__struct_config__.forbid_unknown_fields:
            for key in raw:
                if key not in fields:
                    listed = ", ".join(fields) or "none"
                    raise c.error(
                        f"{name} has no param {key!r}{_close(key, fields)} (params: {listed})",
                        key_path(path, key),
                    )
        for fname, f in fields.items():
            if f.required and fname not in raw:
                raise c.error(f"{name}: missing required param {fname!r}", path)
    if not is_dynamic(compiled):
        try:
            return msgspec.convert(compiled, ptype)
        except msgspec.ValidationError as exc:
            message, full = _explain(exc, ptype, compiled, path)
            raise c.error(f"{name}: {message}", full) from None
        except (TypeError, ValueError) as exc:
            raise c.error(f"{name}: params cannot be converted: {exc}", path) from None
    for fname, f in fields.items():
        if fname not in raw:
            continue
        value = compile_value(raw[fname])
        if is_dynamic(value):
            continue
        ftype = f.type
        try:
            msgspec.convert(value, ftype)
        except msgspec.ValidationError as exc:
            message, full = _explain(exc, ftype, value, key_path(path, fname))
            raise c.error(f"{name}: {message}", full) from None
        except (TypeError, ValueError) as exc:
            raise c.error(f"{name}: cannot convert: {exc}", key_path(path, fname)) from None
    return msgspec.UNSET


def _check_child_params(c: _Checker, child: Plan, raw: dict[str, Any], path: str) -> None:
    """A child workflow's params are its inputs: check names, and types of literals."""
    declared = child.spec.inputs
    label = f"child workflow {child.name!r}"
    for key in raw:
        if key not in declared:
            listed = ", ".join(sorted(declared)) or "none"
            raise c.error(
                f"{label} has no input {key!r}{_close(key, declared)} (inputs: {listed})",
                key_path(path, key),
            )
    for name, decl in declared.items():
        if name not in raw:
            if decl.required:
                raise c.error(f"{label}: missing required input {name!r} ({decl.type})", path)
            continue
        value = compile_value(raw[name])
        if not is_dynamic(value) and not type_ok(decl.type, value):
            raise c.error(
                f"{label}: input {name!r} must be of type {decl.type}, got "
                f"{type(value).__name__} {value!r}",
                key_path(path, name),
            )
