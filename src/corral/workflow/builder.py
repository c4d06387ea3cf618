"""Build workflow specs in Python: ``corral.Workflow``.

::

    wf = corral.Workflow("report", inputs={"path": "string"})
    scan = wf.step("scan", "core.shell", args=["ls", wf.input("path")])
    wf.step("count", "core.echo", needs=[scan], value=scan.output["stdout"])
    result = await engine.run(wf, {"path": "."})

References are built as objects (``scan.output["stdout"]`` is
``${steps.scan.output.stdout}``), so a typo in a step name is a Python error
at build time. ``build()`` returns a plain :class:`WorkflowSpec`, validated by
the engine like one loaded from a file.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import msgspec

from corral.core.errors import SpecError
from corral.core.model import WorkflowSpec

__all__ = ["Ref", "StepRef", "Workflow"]


class Ref:
    """A reference being built: ``str(ref)`` is its ``${...}`` text."""

    __slots__ = ("_path",)

    def __init__(self, path: str) -> None:
        self._path = path

    def __getitem__(self, key: str | int) -> Ref:
        if isinstance(key, int):
            return Ref(f"{self._path}[{key}]")
        return Ref(f"{self._path}.{key}")

    def __getattr__(self, name: str) -> Ref:
        if name.startswith("_"):
            raise AttributeError(name)
        return Ref(f"{self._path}.{name}")

    def __str__(self) -> str:
        return "${" + self._path + "}"

    def __repr__(self) -> str:
        return f"Ref({str(self)!r})"


class StepRef:
    """What ``Workflow.step`` returns: usable in ``needs`` and for ``.output``."""

    __slots__ = ("id",)

    def __init__(self, step_id: str) -> None:
        self.id = step_id

    @property
    def output(self) -> Ref:
        return Ref(f"steps.{self.id}.output")

    def __repr__(self) -> str:
        return f"StepRef({self.id!r})"


def _plain(value: Any) -> Any:
    if isinstance(value, Ref):
        return str(value)
    if isinstance(value, StepRef):
        return str(value.output)
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _mapping(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise SpecError(f"{what} must be a mapping, got {type(value).__name__} {value!r}")
    return dict(value)


class Workflow:
    """A workflow built step by step in Python."""

    def __init__(
        self,
        name: str,
        *,
        version: int | str = 1,
        inputs: Mapping[str, str | Mapping[str, Any]] | None = None,
        on_failure: str = "fail_fast",
        timeout: float | None = None,
        max_parallel_steps: int | None = None,
        description: str = "",
    ) -> None:
        self.name = name
        self.version = version
        self.description = description
        self._inputs: dict[str, Any] = {}
        for key, decl in _mapping(inputs or {}, f"Workflow {name!r}: inputs").items():
            self._inputs[key] = (
                {"type": decl}
                if isinstance(decl, str)
                else _mapping(decl, f"Workflow {name!r}: input {key!r}")
            )
        self._settings: dict[str, Any] = {"on_failure": on_failure}
        if timeout is not None:
            self._settings["timeout"] = timeout
        if max_parallel_steps is not None:
            self._settings["max_parallel_steps"] = max_parallel_steps
        self._steps: list[dict[str, Any]] = []
        self._output: Any = msgspec.UNSET

    def input(self, name: str, type: str = "any", default: Any = msgspec.UNSET) -> Ref:
        """Declare (or reuse) an input; returns a reference to it."""
        if name not in self._inputs:
            decl: dict[str, Any] = {"type": type}
            if default is not msgspec.UNSET:
                decl["default"] = default
            self._inputs[name] = decl
        return Ref(f"inputs.{name}")

    def step(
        self,
        id: str,
        handler: str | None = None,
        *,
        needs: Sequence[StepRef | str] = (),
        when: str | None = None,
        retry: Mapping[str, Any] | None = None,
        timeout: float | None = None,
        resources: Mapping[str, int] | None = None,
        cache: bool | Mapping[str, Any] = False,
        concurrency: Mapping[str, Any] | None = None,
        trigger: str | None = None,
        workflow: Workflow | WorkflowSpec | str | None = None,
        params: Mapping[str, Any] | None = None,
        **more_params: Any,
    ) -> StepRef:
        """Add a step; params come from ``params=`` and/or keyword arguments."""
        merged = {**(params or {}), **more_params}
        step: dict[str, Any] = {"id": id}
        if handler is not None:
            step["handler"] = handler
        if merged:
            step["params"] = _plain(merged)
        if needs:
            step["needs"] = [n.id if isinstance(n, StepRef) else n for n in needs]
        if when is not None:
            step["when"] = when
        where = f"Workflow {self.name!r}: step {id!r}"
        if retry is not None:
            step["retry"] = _mapping(retry, f"{where}: retry")
        if timeout is not None:
            step["timeout"] = timeout
        if resources:
            step["resources"] = _mapping(resources, f"{where}: resources")
        if cache:
            step["cache"] = cache if isinstance(cache, bool) else _mapping(cache, f"{where}: cache")
        if concurrency is not None:
            step["concurrency"] = _mapping(concurrency, f"{where}: concurrency")
        if trigger is not None:
            step["trigger"] = trigger
        if workflow is not None:
            if isinstance(workflow, Workflow):
                step["workflow"] = msgspec.to_builtins(workflow.build())
            elif isinstance(workflow, WorkflowSpec):
                step["workflow"] = msgspec.to_builtins(workflow)
            else:
                step["workflow"] = workflow
        self._steps.append(step)
        return StepRef(id)

    def output(self, value: Any) -> None:
        """Set the workflow's result (may contain references)."""
        self._output = _plain(value)

    def build(self) -> WorkflowSpec:
        """The :class:`WorkflowSpec` (structure checked; meaning is checked by the engine)."""
        doc: dict[str, Any] = {
            "name": self.name,
            "version": self.version,
            "description": self.description,
            "inputs": self._inputs,
            "settings": self._settings,
            "steps": self._steps,
        }
        if self._output is not msgspec.UNSET:
            doc["output"] = self._output
        try:
            return msgspec.convert(doc, WorkflowSpec)
        except msgspec.ValidationError as exc:
            raise SpecError(f"Workflow {self.name!r}: {exc}", file="<builder>") from None
