"""Meaning checks: a structurally valid :class:`WorkflowSpec` -> a :class:`Plan`.

Handlers looked up, params checked against each handler's ``Params`` (and
converted once when they hold no references), references and conditions
checked against the graph, pools and child workflows resolved. Every problem
is a :class:`corral.SpecError` with the JSON path (and the YAML line when the
spec came from a file).

About 650 lines, one job: the checks of one spec, in the order a reader
meets them (bounds, ids, needs, the graph, each step's target, params,
references, conditions, pools, the output), each a small function; the pure
graph algorithms are :mod:`.graph`, references :mod:`.references`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from corral.core.errors import SpecError
from corral.core.model import StepSpec, WorkflowSpec
from corral.plugins import Handler
from corral.workflow.conditions import Condition, ConditionError
from corral.workflow.documents import (
    LineIndex,
    check_document,
    close_names,
    explain,
    is_struct,
    line_for,
)
from corral.workflow.graph import IndexSet, ancestors, dependents_of, find_cycle, topological_order
from corral.workflow.plan import NO_RETRY, Plan, StepPlan, type_ok
from corral.workflow.reading import MAX_STEPS, read_file, too_many_steps
from corral.workflow.references import Ref, RefError, compile_value, is_dynamic, iter_refs, key_path

__all__ = ["compile_spec", "digest_of"]


def digest_of(spec: WorkflowSpec) -> str:
    """Content hash of a spec (sha256 of its canonical JSON)."""
    return hashlib.sha256(msgspec.json.encode(spec, order="sorted")).hexdigest()


class _Checker:
    def __init__(self, file: str | None, lines: LineIndex | None) -> None:
        self.file = file
        self.lines = lines

    def error(self, message: str, path: str) -> SpecError:
        return SpecError(message, file=self.file, path=path, line=line_for(self.lines, path))


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
        message, path = explain(exc, WorkflowSpec, raw)
        raise c.error(message, path) from None


#: The most steps in one workflow, and the most ``needs`` entries summed over
#: its steps. Within them loading is linear (a 10,000-step workflow loads in
#: well under a second); past them a spec is refused rather than slow (the
#: ancestry the engine keeps grows with the square of a long chain).
MAX_NEEDS = 100_000


def compile_file(
    path: str | Path,
    *,
    fmt: str | None = None,
    handlers: Mapping[str, type[Handler]] | None = None,
    pools: Mapping[str, int] | None = None,
    _seen: tuple[Path, ...] = (),
) -> Plan:
    """Read, check and compile a workflow file (``corral.load_file``; a child
    workflow's file too). ``_seen``: the files that include it."""
    spec, lines, resolved = read_file(path, fmt, _seen)
    return compile_spec(
        spec,
        handlers=handlers,
        pools=pools,
        file=str(path),
        lines=lines,
        base_dir=resolved.parent,
        _seen=(*_seen, resolved),
        _checked=True,
    )


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
    _check_bounds(c, spec)
    index = _step_index(c, steps)
    needs = _step_needs(c, steps, index)
    _check_acyclic(c, steps, needs)
    order = topological_order(needs)
    ancestry = ancestors(needs, order)
    dependents = dependents_of(needs)
    declared_inputs = set(spec.inputs)

    plans: list[StepPlan] = []
    errors: list[SpecError] = []  # every step's, not only the first (as compilers do)
    shape = _Shape(index, needs, ancestry, dependents, declared_inputs)
    for i, step in enumerate(steps):
        try:
            plans.append(
                _compile_step(c, shape, i, step, _Lookup(handlers, pools, base_dir, _seen))
            )
        except SpecError as exc:
            errors.append(exc)
            if len(errors) >= MAX_ERRORS:
                break

    output: Any = msgspec.UNSET
    if spec.output is not msgspec.UNSET:
        try:
            output = _compile_output(c, spec.output, shape, len(steps))
        except SpecError as exc:
            errors.append(exc)
    if errors:
        head, *more = errors
        raise SpecError(head.message, file=head.file, path=head.path, line=head.line, more=more)
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


#: The most errors one check reports.
MAX_ERRORS = 50


@dataclass(frozen=True, slots=True)
class _Shape:
    """What every step's compilation reads of the whole workflow."""

    index: Mapping[str, int]
    needs: list[tuple[int, ...]]
    ancestry: Any
    dependents: Any
    declared_inputs: AbstractSet[str]


def _compile_output(c: _Checker, raw: Any, shape: _Shape, count: int) -> Any:
    try:
        output = compile_value(raw, "$.output")
    except RefError as exc:
        raise c.error(str(exc), exc.path or "$.output") from None
    everything = IndexSet(range(count))
    for ref_path, ref in iter_refs(output, "$.output"):
        _check_ref(c, ref, ref_path, shape.declared_inputs, shape.index, everything, None)
    return output


@dataclass(frozen=True, slots=True)
class _Lookup:
    """Where a step's handler, pools and child workflows are looked up:
    ``handlers`` / ``pools`` ``None`` skip those checks; ``base_dir`` is
    where child workflow files are found, ``seen`` the files already being
    compiled (a child including its parent is refused)."""

    handlers: Mapping[str, type[Handler]] | None
    pools: Mapping[str, int] | None
    base_dir: Path | None
    seen: tuple[Path, ...]


def _compile_step(c: _Checker, shape: _Shape, i: int, step: StepSpec, at: _Lookup) -> StepPlan:
    """One step's plan; a ``SpecError`` names what is wrong with it."""
    index, needs, ancestry, dependents = shape.index, shape.needs, shape.ancestry, shape.dependents
    declared_inputs = shape.declared_inputs
    base = f"$.steps[{i}]"
    handler_cls, child = _step_target(c, step, base, at)
    pools = at.pools
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
                    f"unknown resource pool {pool!r}{close_names(pool, pools)}; "
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
    _condition_inputs(c, step.when, declared_inputs, f"{base}.when")
    param_refs = sorted({index[ref.step] for _, ref in iter_refs(params) if ref.step is not None})
    key = None
    if step.concurrency is not None:
        try:
            key = Condition(step.concurrency.key, ("inputs", "params"))
        except ConditionError as exc:
            raise c.error(f"invalid key expression: {exc}", f"{base}.concurrency.key") from None
        _condition_inputs(c, step.concurrency.key, declared_inputs, f"{base}.concurrency.key")
    cache = step.cache
    return StepPlan(
        index=i,
        id=step.id,
        spec=step,
        handler=handler_cls,
        child=child,
        params=params,
        static_params=static,
        static_blob=_blob(static),
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
        key_refs=tuple(sorted({*needs[i], *param_refs})),
    )


_STEP_NAME = re.compile(
    r"""\bsteps\s*(?:\.\s*([A-Za-z_][A-Za-z0-9_]*)|\[\s*(?:"([^"]*)"|'([^']*)')\s*\])"""
)
_STEPS_WORD = re.compile(r"\bsteps\b")
# (not after a dot: `steps.a.output.inputs.n` reads a step's output, not an input)
_INPUT_NAME = re.compile(r"(?<![.\w])inputs\s*\.\s*([A-Za-z_][A-Za-z0-9_]*)")
# CEL string literals (any prefix of r/b; triple-quoted first).
_CEL_STRING = re.compile(
    r"""[rRbB]{0,2}(?:'''(?:\\.|[^\\])*?'''|\"\"\"(?:\\.|[^\\])*?\"\"\"|'(?:\\.|[^'\\\n])*'|"(?:\\.|[^"\\\n])*")""",
    re.S,
)
_STEPS_INDEX = re.compile(r"\bsteps\s*\[\s*$")


def _without_strings(source: str) -> str:
    """``source`` with its string literals emptied, except a step's name in
    ``steps["a-b"]``: text inside a string is no reference to a step."""
    out: list[str] = []
    pos = 0
    for m in _CEL_STRING.finditer(source):
        out.append(source[pos : m.start()])
        keep = _STEPS_INDEX.search(source, 0, m.start()) is not None
        out.append(m.group() if keep else '""')
        pos = m.end()
    out.append(source[pos:])
    return "".join(out)


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
    source = _without_strings(source)
    found = list(_STEP_NAME.finditer(source))
    if len(found) < len(_STEPS_WORD.findall(source)):
        return tuple(sorted(upstream))
    out: set[int] = set()
    for m in found:
        name = m.group(1) or m.group(2) or m.group(3) or ""
        if name not in index:
            raise c.error(
                f"condition refers to unknown step {name!r}{close_names(name, index)}", path
            )
        if index[name] not in upstream:
            raise c.error(
                f"condition refers to step {name!r}, which is not upstream; add it to needs", path
            )
        out.add(index[name])
    return tuple(sorted(out))


def _condition_inputs(
    c: _Checker, source: str | None, declared: AbstractSet[str], path: str
) -> None:
    """An input a condition reads (``inputs.m``) must be declared: found
    here, not as a ``'m'`` when the condition runs."""
    if source is None:
        return
    for m in _INPUT_NAME.finditer(_without_strings(source)):
        name = m.group(1)
        if name not in declared:
            have = f"; declared: {', '.join(sorted(declared))}" if declared else ""
            raise c.error(
                f"the condition reads input {name!r}, which the workflow does not declare"
                f"{close_names(name, declared)}{have}",
                path,
            )


def _check_bounds(c: _Checker, spec: WorkflowSpec) -> None:
    """At least one step, at most ``MAX_STEPS`` and ``MAX_NEEDS``; input
    defaults of their declared types."""
    steps = spec.steps
    if not steps:
        raise c.error("a workflow needs at least one step", "$.steps")
    if len(steps) > MAX_STEPS:
        raise c.error(too_many_steps(len(steps)), "$.steps")
    edges = sum(len(step.needs) for step in steps)
    if edges > MAX_NEEDS:
        raise c.error(
            f"the workflow's steps name {edges:,} needs in all; the limit is {MAX_NEEDS:,} "
            "per workflow (a step after many others can need one step that gathers them)",
            "$.steps",
        )
    for name, decl in spec.inputs.items():
        if decl.default is not msgspec.UNSET and not type_ok(decl.type, decl.default):
            raise c.error(
                f"the default of input {name!r} is not of its type {decl.type}: "
                f"{type(decl.default).__name__} {decl.default!r}",
                key_path(key_path("$.inputs", name), "default"),
            )


def _step_index(c: _Checker, steps: list[StepSpec]) -> dict[str, int]:
    """Step id -> position; a duplicate id names where it was first used."""
    index: dict[str, int] = {}
    for i, step in enumerate(steps):
        if step.id in index:
            raise c.error(
                f"duplicate step id {step.id!r} (first used at $.steps[{index[step.id]}])",
                f"$.steps[{i}].id",
            )
        index[step.id] = i
    return index


def _step_needs(
    c: _Checker, steps: list[StepSpec], index: Mapping[str, int]
) -> list[tuple[int, ...]]:
    """Each step's needs as positions (each once), checked: no step needs
    itself or an unknown one."""
    needs: list[tuple[int, ...]] = []
    for i, step in enumerate(steps):
        deps: list[int] = []
        for j, need in enumerate(step.needs):
            if need == step.id:
                raise c.error(f"step {step.id!r} needs itself", f"$.steps[{i}].needs[{j}]")
            if need not in index:
                close = close_names(need, index)
                raise c.error(f"unknown step {need!r} in needs{close}", f"$.steps[{i}].needs[{j}]")
            if index[need] not in deps:
                deps.append(index[need])
        needs.append(tuple(deps))
    return needs


def _check_acyclic(c: _Checker, steps: list[StepSpec], needs: list[tuple[int, ...]]) -> None:
    """A cycle of needs is an error at the need that closes it."""
    cycle = find_cycle(needs)
    if cycle is not None:
        names = " -> ".join(steps[k].id for k in cycle)
        first, second = cycle[0], cycle[1]
        j = steps[first].needs.index(steps[second].id)
        raise c.error(
            f"steps form a cycle: {names} (each step needs the next)",
            f"$.steps[{first}].needs[{j}]",
        )


def _step_target(
    c: _Checker, step: StepSpec, base: str, at: _Lookup
) -> tuple[type[Handler] | None, Plan | None]:
    """What runs the step: its handler class, or its child workflow's plan."""
    if step.handler is None and step.workflow is None:
        raise c.error("a step needs a 'handler' or a child 'workflow'", base)
    if step.handler is not None and step.workflow is not None:
        raise c.error("a step has either a 'handler' or a child 'workflow', not both", base)
    if step.workflow is not None:
        return None, _child_plan(c, step, base, at)
    assert step.handler is not None
    handlers = at.handlers
    if handlers is None:
        return None, None
    if step.handler not in handlers:
        raise c.error(_unknown_handler(step.handler, handlers), f"{base}.handler")
    return handlers[step.handler], None


def _child_plan(c: _Checker, step: StepSpec, base: str, at: _Lookup) -> Plan:
    """A child workflow step's own plan (the child given inline or as a
    file), after what such a step may not have."""
    handlers, pools, base_dir, seen = at.handlers, at.pools, at.base_dir, at.seen
    if step.cache:
        raise c.error("a child workflow step cannot be cached", f"{base}.cache")
    if step.resources:
        # The step would hold the units while its child's steps wait for them.
        raise c.error(
            "a child workflow step cannot hold resources; declare them on the child's steps",
            f"{base}.resources",
        )
    if step.concurrency is not None:
        raise c.error(
            "a child workflow step cannot take a concurrency slot; declare it on the child's steps",
            f"{base}.concurrency",
        )
    if isinstance(step.workflow, WorkflowSpec):
        try:
            return compile_spec(
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
            raise c.error(exc.message, f"{base}.workflow{exc.path[1:]}") from None
    rel = Path(str(step.workflow))
    target = rel if rel.is_absolute() or base_dir is None else base_dir / rel
    try:
        found = target.is_file()
    except (OSError, ValueError):
        found = False
    if not found:
        where = f" (looked in {base_dir})" if base_dir is not None and not rel.is_absolute() else ""
        raise c.error(f"child workflow file {step.workflow!r} not found{where}", f"{base}.workflow")
    try:
        return compile_file(target, handlers=handlers, pools=pools, _seen=seen)
    except SpecError as exc:
        raise c.error(f"in child workflow: {exc}", f"{base}.workflow") from None


def _unknown_handler(name: str, handlers: Mapping[str, type[Handler]]) -> str:
    """The message for a handler no plugin registered: close names, else the
    known ones (by family when there are many), and a broken plugin that
    offered it."""
    hint = close_names(name, handlers)
    if not hint:
        known = sorted(handlers)
        if len(known) <= 10:
            hint = f" (known handlers: {', '.join(known)})" if known else ""
        else:  # too many to list: name the families
            families: dict[str, int] = {}
            for k in known:
                family = k.rpartition(".")[0] or k
                families[family] = families.get(family, 0) + 1
            listed = ", ".join(f"{f}.* ({n})" for f, n in families.items())
            hint = f" (known handlers: {listed}; `corral plugins` lists them)"
    broken = getattr(handlers, "broken", None) or []
    provider = next((b for b in broken if name in b.handlers), None)
    if provider is not None:
        hint = f": its plugin {provider.plugin} is broken and was left out ({provider.reason})"
    elif broken:
        hint += (
            f"; {len(broken)} installed plugin(s) could not be loaded: `corral plugins` says why"
        )
    return f"unknown handler {name!r}{hint}"


def _check_ref(
    c: _Checker,
    ref: Ref,
    path: str,
    inputs: AbstractSet[str],
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
            f"${{{ref.text}}} refers to unknown step {target!r}{close_names(target, index)}", path
        )
    if index[target] not in upstream:
        if step_id == target:
            raise c.error(f"${{{ref.text}}}: step {step_id!r} cannot use its own output", path)
        raise c.error(
            f"${{{ref.text}}} refers to step {target!r}, which is not upstream of {step_id!r}; "
            f"add it to needs",
            path,
        )


def _blob(static: Any) -> bytes | None:
    """Converted params, encoded once so each run can decode its own copy."""
    if static is msgspec.UNSET:
        return None
    try:
        return msgspec.json.encode(static)
    except (TypeError, ValueError, OverflowError):
        return None


def _params_struct(ptype: Any) -> type[msgspec.Struct] | None:
    return ptype if is_struct(ptype) else None


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
                        f"{name} has no param {key!r}{close_names(key, fields)} (params: {listed})",
                        key_path(path, key),
                    )
        for fname, f in fields.items():
            if f.required and fname not in raw:
                raise c.error(f"{name}: missing required param {fname!r}", path)
    if not is_dynamic(compiled):
        try:
            return msgspec.convert(compiled, ptype)
        except msgspec.ValidationError as exc:
            message, full = explain(exc, ptype, compiled, path)
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
            message, full = explain(exc, ftype, value, key_path(path, fname))
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
                f"{label} has no input {key!r}{close_names(key, declared)} (inputs: {listed})",
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
