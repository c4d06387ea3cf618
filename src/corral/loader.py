"""Workflow files (YAML, TOML, JSON) and specs -> validated :class:`~corral.plan.Plan`.

Everything is checked before anything runs, and every problem is a
:class:`corral.SpecError` naming the file, the JSON path and, for YAML, the
line. Nothing in a workflow file is ever evaluated as Python: references are
parsed (``corral.references``) and conditions are CEL.
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgspec
import yaml

from corral.engine.conditions import Condition, ConditionError
from corral.engine.graph import ancestors, dependents_of, find_cycle, topological_order
from corral.errors import SpecError
from corral.model import WorkflowSpec
from corral.plan import NO_RETRY, Plan, StepPlan
from corral.plugins import Handler
from corral.references import RefError, compile_value, is_dynamic, iter_refs

__all__ = ["FORMATS", "compile_spec", "load_file", "loads", "parse_spec"]

FORMATS = {".yaml": "yaml", ".yml": "yaml", ".toml": "toml", ".json": "json"}
MAX_FILE_BYTES = 10_000_000

LineIndex = dict[tuple[str | int, ...], int]


# ---------------------------------------------------------------- parsing


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


def _parse_document(text: str, fmt: str, file: str | None) -> Any:
    try:
        if fmt == "yaml":
            return yaml.safe_load(text)
        if fmt == "toml":
            return tomllib.loads(text)
        return json.loads(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        msg = " ".join(str(p) for p in (exc.context, exc.problem) if p)
        raise SpecError(f"invalid YAML: {msg}", file=file, line=line) from None
    except yaml.YAMLError as exc:
        raise SpecError(f"invalid YAML: {exc}", file=file) from None
    except tomllib.TOMLDecodeError as exc:
        line = getattr(exc, "lineno", None)
        raise SpecError(f"invalid TOML: {exc}", file=file, line=line) from None
    except json.JSONDecodeError as exc:
        raise SpecError(f"invalid JSON: {exc.msg}", file=file, line=exc.lineno) from None
    except RecursionError:
        raise SpecError("document is nested too deeply", file=file) from None
    except ValueError as exc:  # e.g. out-of-range numbers or dates
        raise SpecError(f"invalid {fmt.upper()}: {exc}", file=file) from None


def _yaml_lines(text: str) -> LineIndex:
    """JSON path -> 1-based line, from PyYAML's node marks."""
    index: LineIndex = {}
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except (yaml.YAMLError, RecursionError):
        return index
    stack: list[tuple[yaml.Node, tuple[str | int, ...]]] = [(root, ())] if root else []
    while stack:
        node, path = stack.pop()
        index.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode):
                    index[(*path, key.value)] = key.start_mark.line + 1
                    stack.append((value, (*path, key.value)))
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                stack.append((item, (*path, i)))
    return index


_PATH_TOKEN = re.compile(r"\.([^.\[\]]+)|\[(\d+)\]")


def _split_path(path: str) -> tuple[str | int, ...]:
    parts: list[str | int] = []
    for key, idx in _PATH_TOKEN.findall(path[1:] if path.startswith("$") else path):
        parts.append(int(idx) if idx else key)
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


_MSGSPEC_PATH = re.compile(r" - at `(\$[^`]*)`$")


def _validation_error(exc: msgspec.ValidationError, prefix: str = "$") -> tuple[str, str]:
    """Split msgspec's "message - at `$.a.b`" into (message, full path)."""
    text = str(exc)
    m = _MSGSPEC_PATH.search(text)
    if m is None:
        return text, prefix
    return text[: m.start()], prefix + m.group(1)[1:]


def parse_spec(raw: Any, *, file: str | None = None, lines: LineIndex | None = None) -> WorkflowSpec:
    """Convert a decoded document into a :class:`WorkflowSpec` (structure and types only)."""
    if not isinstance(raw, dict):
        kind = "empty" if raw is None else type(raw).__name__
        raise SpecError(
            f"a workflow document is a mapping with 'name' and 'steps'; got {kind}",
            file=file,
            line=1 if lines is not None else None,
        )
    try:
        return msgspec.convert(raw, WorkflowSpec, strict=True)
    except msgspec.ValidationError as exc:
        message, path = _validation_error(exc)
        raise SpecError(message, file=file, path=path, line=_line_for(lines, path)) from None
    except (TypeError, ValueError, RecursionError) as exc:
        raise SpecError(f"invalid document: {exc}", file=file) from None


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
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise SpecError(f"file is not UTF-8 text ({exc.reason})", file=file) from None
    if fmt not in ("yaml", "toml", "json"):
        raise SpecError(f"unknown format {fmt!r}; expected yaml, toml or json", file=file)
    raw = _parse_document(text, fmt, file)
    lines = _yaml_lines(text) if fmt == "yaml" else None
    spec = parse_spec(raw, file=file, lines=lines)
    return compile_spec(
        spec, handlers=handlers, pools=pools, file=file, lines=lines, base_dir=base_dir
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
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError(f"file is not UTF-8 text ({exc.reason})", file=file) from None
    raw = _parse_document(text, kind, file)
    lines = _yaml_lines(text) if kind == "yaml" else None
    spec = parse_spec(raw, file=file, lines=lines)
    return compile_spec(
        spec,
        handlers=handlers,
        pools=pools,
        file=file,
        lines=lines,
        base_dir=resolved.parent,
        _seen=(*_seen, resolved),
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


def compile_spec(
    spec: WorkflowSpec,
    *,
    handlers: Mapping[str, type[Handler]] | None = None,
    pools: Mapping[str, int] | None = None,
    file: str | None = None,
    lines: LineIndex | None = None,
    base_dir: Path | None = None,
    _seen: tuple[Path, ...] = (),
) -> Plan:
    """Validate a spec's meaning and compile it into a :class:`Plan`.

    ``handlers`` maps handler names to classes (``None``: skip handler checks,
    for tools that only check structure). ``pools`` are the engine's resource
    pools and their sizes (``None``: skip pool checks).
    """
    if not isinstance(spec, WorkflowSpec):
        raise SpecError(f"expected a WorkflowSpec, got {type(spec).__name__}", file=file)
    c = _Checker(file, lines)
    steps = spec.steps
    if not steps:
        raise c.error("a workflow needs at least one step", "$.steps")
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
            if need not in index:
                close = _close(need, index)
                raise c.error(f"unknown step {need!r} in needs{close}", f"$.steps[{i}].needs[{j}]")
            if need == step.id:
                raise c.error(f"step {step.id!r} needs itself", f"$.steps[{i}].needs[{j}]")
            if index[need] not in deps:
                deps.append(index[need])
        needs.append(tuple(deps))

    cycle = find_cycle(needs)
    if cycle is not None:
        names = " -> ".join(steps[k].id for k in cycle)
        raise c.error(f"steps form a cycle: {names}", f"$.steps[{cycle[0]}].needs")
    order = topological_order(needs)
    ancestry = ancestors(needs, order)
    dependents = dependents_of(needs)
    declared_inputs = set(spec.inputs)

    plans: list[StepPlan] = []
    for i, step in enumerate(steps):
        base = f"$.steps[{i}]"
        handler_cls, child = _step_target(
            c, step, base, handlers, pools, base_dir, _seen
        )
        try:
            params = compile_value(step.params, f"{base}.params")
        except RefError as exc:
            raise c.error(str(exc), getattr(exc, "path", f"{base}.params")) from None
        for ref_path, ref in iter_refs(params, f"{base}.params"):
            _check_ref(c, ref, ref_path, declared_inputs, index, ancestry[i], step.id)
        static: Any = msgspec.UNSET
        if handler_cls is not None:
            static = _check_params(c, handler_cls, step.params, params, f"{base}.params")
        elif child is not None and not is_dynamic(params):
            try:
                child.bind_inputs(step.params)
            except SpecError as exc:
                raise c.error(f"child workflow {child.name!r}: {exc.message}", f"{base}.params") from None
        if pools is not None:
            for pool, amount in step.resources.items():
                if pool not in pools:
                    raise c.error(
                        f"unknown resource pool {pool!r}; pools: {', '.join(sorted(pools))}",
                        f"{base}.resources.{pool}",
                    )
                if amount > pools[pool]:
                    raise c.error(
                        f"asks for {amount} of pool {pool!r}, which has only {pools[pool]}",
                        f"{base}.resources.{pool}",
                    )
        when = None
        if step.when is not None:
            try:
                when = Condition(step.when, ("inputs", "steps"))
            except ConditionError as exc:
                raise c.error(f"invalid condition: {exc}", f"{base}.when") from None
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
            )
        )

    output: Any = None
    if spec.output is not msgspec.UNSET:
        try:
            output = compile_value(spec.output, "$.output")
        except RefError as exc:
            raise c.error(str(exc), getattr(exc, "path", "$.output")) from None
        everything = frozenset(range(len(steps)))
        for ref_path, ref in iter_refs(output, "$.output"):
            _check_ref(c, ref, ref_path, declared_inputs, index, everything, None)
    sinks = tuple(i for i, deps in enumerate(dependents) if not deps)
    return Plan(
        spec=spec,
        steps=plans,
        order=order,
        index=index,
        sinks=sinks,
        output=output if spec.output is not msgspec.UNSET else msgspec.UNSET,
        digest=digest_of(spec),
        file=file,
        pools=frozenset(pools or ()),
        bound=handlers is not None,
        base_dir=base_dir,
    )


def _close(name: str, names: Mapping[str, Any] | list[str]) -> str:
    import difflib

    close = difflib.get_close_matches(name, list(names), n=3, cutoff=0.5)
    return f" (did you mean {', '.join(repr(n) for n in close)}?)" if close else ""


def _step_target(
    c: _Checker,
    step: Any,
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
                    step.workflow, handlers=handlers, pools=pools, file=c.file,
                    base_dir=base_dir, _seen=seen,
                )
            except SpecError as exc:
                # Re-anchor the child's paths under this step.
                path = f"{base}.workflow{exc.path[1:]}"
                raise c.error(exc.message, path) from None
            return None, child
        rel = Path(step.workflow)
        target = rel if rel.is_absolute() or base_dir is None else base_dir / rel
        if not target.exists():
            raise c.error(f"child workflow file {step.workflow!r} not found", f"{base}.workflow")
        try:
            child = load_file(target, handlers=handlers, pools=pools, _seen=seen)
        except SpecError as exc:
            raise c.error(f"in child workflow: {exc}", f"{base}.workflow") from None
        return None, child
    if handlers is None:
        return None, None
    name = step.handler
    if name not in handlers:
        raise c.error(f"unknown handler {name!r}{_close(name, handlers)}", f"{base}.handler")
    return handlers[name], None


def _check_ref(
    c: _Checker,
    ref: Any,
    path: str,
    inputs: set[str],
    index: Mapping[str, int],
    upstream: frozenset[int],
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
    if target not in index:
        raise c.error(f"${{{ref.text}}} refers to unknown step {target!r}{_close(target, index)}", path)
    if index[target] not in upstream:
        raise c.error(
            f"${{{ref.text}}} refers to step {target!r}, which is not upstream of {step_id!r}; "
            f"add it to needs",
            path,
        )


def _check_params(
    c: _Checker, handler: type[Handler], raw: dict[str, Any], compiled: Any, path: str
) -> Any:
    """Check params against the handler's Params type.

    Without references, params are converted once here and reused by every
    run. With references, the literal parts are checked now (unknown and
    missing fields, types of literal values) and the rest once resolved.
    """
    ptype = handler.Params
    if not is_dynamic(compiled):
        try:
            return msgspec.convert(raw, ptype)
        except msgspec.ValidationError as exc:
            message, full = _validation_error(exc, path)
            raise c.error(f"{handler.name}: {message}", full) from None
    if not (isinstance(ptype, type) and issubclass(ptype, msgspec.Struct)):
        return msgspec.UNSET
    fields = {f.encode_name: f for f in msgspec.structs.fields(ptype)}
    if ptype.__struct_config__.forbid_unknown_fields:
        for key in raw:
            if key not in fields:
                raise c.error(
                    f"{handler.name} has no param {key!r}{_close(key, fields)} "
                    f"(params: {', '.join(fields) or 'none'})",
                    f"{path}.{key}",
                )
    for name, f in fields.items():
        if name not in raw:
            if f.required:
                raise c.error(f"{handler.name}: missing required param {name!r}", path)
            continue
        if is_dynamic(compile_value(raw[name])):
            continue
        try:
            msgspec.convert(raw[name], f.type)
        except msgspec.ValidationError as exc:
            message, full = _validation_error(exc, f"{path}.{name}")
            raise c.error(f"{handler.name}: {message}", full) from None
    return msgspec.UNSET
