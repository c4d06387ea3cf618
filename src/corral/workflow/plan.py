"""A validated, compiled workflow: what the engine runs.

Loading a spec produces a :class:`Plan`: handler classes looked up, params
checked and (when they hold no references) converted once, references and
conditions compiled, the graph ordered. Running a workflow then does no
parsing, no lookups by name and no validation it could have done earlier.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
from msgspec import UNSET

from corral.core.errors import InputError
from corral.core.model import RetryPolicy, StepSpec, WorkflowSpec
from corral.workflow.references import key_path

if TYPE_CHECKING:
    from corral.plugins import Handler
    from corral.workflow.conditions import Condition

__all__ = ["Plan", "StepPlan", "bind_inputs", "type_ok"]

NO_RETRY = RetryPolicy(attempts=1)


@dataclass(slots=True, eq=False)
class StepPlan:
    index: int
    id: str
    spec: StepSpec
    handler: type[Handler] | None
    child: Plan | None
    params: Any
    """Compiled params (see ``corral.workflow.references``)."""
    static_params: Any
    """Params already converted to the handler's ``Params`` type, or ``UNSET`` if
    they hold references and must be converted at run time."""
    needs: tuple[int, ...]
    dependents: tuple[int, ...]
    ancestors: AbstractSet[int]
    """Indexes of every step this one transitively needs."""
    when: Condition | None
    key: Condition | None
    retry: RetryPolicy
    cache: bool
    cache_ttl: float | None
    static_blob: bytes | None = None
    """``static_params`` JSON-encoded: each run decodes its own copy."""
    param_refs: tuple[int, ...] = ()
    """Indexes of the steps whose outputs the params reference."""
    when_refs: tuple[int, ...] = ()
    """Indexes of the upstream steps the ``when`` condition reads."""
    key_refs: tuple[int, ...] = ()
    """Indexes of the steps whose outputs a cached result depends on (the
    needed steps and those the params reference), in step order."""
    written_params: bytes | None = None
    """The spec's params, encoded for the cache key (set on first use)."""

    @property
    def handler_name(self) -> str:
        """What runs the step, for messages and default limit names: the
        handler's name, or ``workflow:<name>`` for a child workflow (a step
        record says which kind it is: ``StepRecord.workflow``)."""
        if self.handler is not None:
            return self.handler.name
        return f"workflow:{self.child.spec.name}" if self.child else "?"

    @property
    def kind(self) -> str:
        return self.handler.kind if self.handler is not None else "async"


@dataclass(slots=True, eq=False)
class Plan:
    spec: WorkflowSpec
    steps: list[StepPlan]
    order: list[int]
    index: dict[str, int]
    sinks: tuple[int, ...]
    output: Any
    digest: str
    file: str | None = None
    pools: frozenset[tuple[str, int]] = field(default_factory=frozenset)
    """The resource pools (name, size) the plan's ``resources`` were checked against."""
    bound: bool = False
    """Whether handler classes were looked up (a plan compiled without a registry
    only had its structure checked; the engine compiles it again)."""
    base_dir: Path | None = None
    """Where relative child-workflow paths are resolved from."""
    stored_digest: str | None = None
    """Content hash of :meth:`resolved_spec` once stored (set by the engine)."""
    stored_blob: bytes | None = None
    handler_set: list[str] | None = None
    step_keys: list[tuple[str, str | None, str | None]] | None = None
    need_counts: list[int] | None = None
    is_sequential: bool | None = None

    def step_records(self) -> list[tuple[str, str | None, str | None]]:
        """Each step's ``(step_id, handler, workflow)`` as its fresh record
        holds them (computed once: every submission makes these records)."""
        if self.step_keys is None:
            self.step_keys = [
                (sp.id, None, sp.child.spec.name)
                if sp.child is not None
                else (sp.id, sp.handler_name, None)
                for sp in self.steps
            ]
        return self.step_keys

    def sequential(self) -> bool:
        """Whether no two of its steps can ever run at once: one step with no
        needs, and none with two dependents (a chain; computed once)."""
        if self.is_sequential is None:
            roots = sum(1 for sp in self.steps if not sp.needs)
            self.is_sequential = roots <= 1 and all(len(sp.dependents) <= 1 for sp in self.steps)
        return self.is_sequential

    def needs_count(self) -> list[int]:
        """How many steps each step needs (computed once; copy it to count down)."""
        if self.need_counts is None:
            self.need_counts = [len(sp.needs) for sp in self.steps]
        return self.need_counts

    def handler_names(self) -> list[str]:
        """The handlers its steps and its child workflows' steps run, sorted
        (computed once)."""
        if self.handler_set is None:
            names: set[str] = set()
            for sp in self.steps:
                if sp.child is not None:
                    names.update(sp.child.handler_names())
                elif sp.handler is not None:
                    names.add(sp.handler.name)
                elif sp.spec.handler:
                    names.add(sp.spec.handler)
            self.handler_set = sorted(names)
        return self.handler_set

    def resolved_spec(self) -> WorkflowSpec:
        """The spec with child-workflow files replaced by their (resolved) specs:
        self-contained, so an execution can be resumed from it alone."""
        steps = []
        changed = False
        for sp in self.steps:
            step = sp.spec
            if sp.child is not None and not isinstance(step.workflow, WorkflowSpec):
                step = msgspec.structs.replace(step, workflow=sp.child.resolved_spec())
                changed = True
            elif sp.child is not None:
                inner = sp.child.resolved_spec()
                if inner is not step.workflow:
                    step = msgspec.structs.replace(step, workflow=inner)
                    changed = True
            steps.append(step)
        return msgspec.structs.replace(self.spec, steps=steps) if changed else self.spec

    @property
    def name(self) -> str:
        return self.spec.name

    def bind_inputs(self, given: Mapping[str, Any] | None) -> dict[str, Any]:
        return bind_inputs(self.spec, given, file=self.file)


_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "array": (list, tuple),
    "object": (Mapping,),
}


def type_ok(type_name: str, value: Any) -> bool:
    """Whether ``value`` fits a declared input type (a bool is not a number,
    a string is not an array)."""
    if type_name == "any":
        return True
    expected = _TYPES.get(type_name)
    if expected is None:
        return False
    if isinstance(value, bool) and type_name in ("integer", "number"):
        return False
    return isinstance(value, expected)


def _describe(value: Any) -> str:
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{type(value).__name__} {text}"


def bind_inputs(
    spec: WorkflowSpec, given: Mapping[str, Any] | None, *, file: str | None = None
) -> dict[str, Any]:
    """Check given inputs against the declared ones and fill in defaults.

    Raises :class:`InputError` naming the input; unknown inputs are errors so a
    typo never silently falls back to a default.
    """
    if given is not None and not isinstance(given, Mapping):
        raise InputError(
            f"inputs must be a mapping, got {type(given).__name__}", file=file, path="$.inputs"
        )
    given = dict(given or {})
    bound: dict[str, Any] = {}
    for name, decl in spec.inputs.items():
        if name in given:
            value = given.pop(name)
            if not type_ok(decl.type, value):
                raise InputError(
                    f"input {name!r} must be of type {decl.type}, got {_describe(value)}",
                    file=file,
                    path=key_path("$.inputs", name),
                )
            bound[name] = value
        elif decl.default is not UNSET:
            # A copy, so one execution cannot change another's default.
            bound[name] = copy.deepcopy(decl.default)
        else:
            raise InputError(
                f"missing required input {name!r} ({decl.type})",
                file=file,
                path=key_path("$.inputs", name),
            )
    if given:
        unknown = sorted(given, key=str)
        declared = ", ".join(sorted(spec.inputs)) or "none"
        raise InputError(
            f"unknown input {unknown[0]!r} (declared inputs: {declared})",
            file=file,
            path=key_path("$.inputs", unknown[0]),
        )
    for name, value in bound.items():
        try:
            msgspec.json.encode(value)
        except (TypeError, ValueError, OverflowError) as exc:
            raise InputError(
                f"input {name!r} cannot be stored (only JSON-like data can): {exc}",
                file=file,
                path=key_path("$.inputs", name),
            ) from None
    return bound
