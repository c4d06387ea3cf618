"""The workflow file's reference, generated from the model: the JSON Schema
``corral schema`` prints (for editors: the YAML language server validates
and completes workflow files with it) and the tables of
``docs/workflow-file.md`` (``corral schema --markdown``; a test keeps the
page and the model in step). Pure: no I/O.

The model's Structs say each key's type and default; :data:`KEYS` says what
each one is for, one line per key (the test fails on a key without one, or
on a line for a key the model no longer has).
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Iterable, Mapping
from typing import Any

import msgspec

from corral.core.model import (
    CachePolicy,
    ConcurrencySpec,
    InputSpec,
    RetryPolicy,
    StepSpec,
    WorkflowSettings,
    WorkflowSpec,
)

__all__ = [
    "KEYS",
    "SECTIONS",
    "handler_params",
    "reference_markdown",
    "schema_type",
    "workflow_schema",
]

#: Each Struct of a workflow file, in the order the reference shows them,
#: with the heading it is shown under.
SECTIONS: list[tuple[type[msgspec.Struct], str]] = [
    (WorkflowSpec, "The workflow (top level)"),
    (InputSpec, "`inputs.NAME`"),
    (WorkflowSettings, "`settings`"),
    (StepSpec, "`steps[]`"),
    (RetryPolicy, "`steps[].retry`"),
    (CachePolicy, "`steps[].cache` (or `true`)"),
    (ConcurrencySpec, "`steps[].concurrency`"),
]

#: What each key is for (Struct name -> key -> one line).
KEYS: dict[str, dict[str, str]] = {
    "WorkflowSpec": {
        "name": "The workflow's name (executions are listed under it).",
        "steps": "Its steps; they run as soon as the steps they need are done.",
        "version": "Its version: a stored workflow is `name@version`.",
        "description": "What it does (shown by tools).",
        "inputs": "The inputs it takes, by name; without a `default` an input is required.",
        "settings": "Workflow-wide settings.",
        "output": "Its result, may hold references (`${steps.x.output}`); default: each "
        "final step's output by step id.",
    },
    "InputSpec": {
        "type": "The input's JSON type (`any`: not checked).",
        "default": "Its value when none is given (it is then optional).",
        "description": "What it is for.",
    },
    "WorkflowSettings": {
        "on_failure": "`fail_fast`: a failed step cancels the rest; `continue`: only "
        "the steps after it are skipped.",
        "timeout": "Seconds the whole workflow may take; then it ends `timed_out`.",
        "max_parallel_steps": "At most this many of its steps run at once.",
    },
    "StepSpec": {
        "id": "The step's id: letters, digits, `_` and `-`; unique in the workflow.",
        "handler": "The handler that runs it (`corral plugins` lists them); a step has a "
        "`handler` or a `workflow`.",
        "params": "The handler's params; values may hold references (`${inputs.x}`, "
        "`${steps.a.output}`).",
        "needs": "The ids of the steps it runs after (references add theirs too).",
        "when": "A CEL condition over `inputs` and `steps`: false skips the step.",
        "retry": "How a failing attempt is retried.",
        "timeout": "Seconds one attempt may take; then it fails as `timed_out`.",
        "resources": "Units of named resource pools it holds while it runs (`cpu`, `io`, ...).",
        "cache": "Reuse a succeeded result of the same handler, version and params.",
        "concurrency": "A keyed limit on how many such steps run at once.",
        "workflow": "A child workflow to run as this step: a file path or an inline spec.",
        "description": "What it does.",
        "trigger": "`success`: after the steps it needs succeeded; `done`: after they "
        "ended, however (a join).",
    },
    "RetryPolicy": {
        "attempts": "Attempts in all (1: no retry).",
        "backoff": "Seconds before the first retry.",
        "multiplier": "Each next wait is this many times the last.",
        "max_backoff": "The longest wait, in seconds.",
        "jitter": "Each wait varies by up to this fraction, either way.",
        "retry_on": "Only errors of these exception class names are retried (empty: all).",
    },
    "CachePolicy": {
        "ttl": "Seconds a cached result is reused (none: until pruned).",
    },
    "ConcurrencySpec": {
        "key": "A CEL expression over `inputs` and `params`: steps with the same value "
        "share the limit.",
        "limit": "How many run at once per key.",
        "name": "The limit's name, shared across workflows (default: the handler's name).",
    },
}


def _resolve(schema: Mapping[str, Any], defs: Mapping[str, Any]) -> Mapping[str, Any]:
    ref = schema.get("$ref")
    return defs.get(str(ref).rsplit("/", 1)[-1], {}) if ref else schema


def schema_type(sub: Mapping[str, Any]) -> str:
    """A JSON Schema in a few words: ``list[string]``, ``integer | null``."""
    if "$ref" in sub:
        return str(sub["$ref"]).rsplit("/", 1)[-1]
    for key in ("anyOf", "oneOf"):
        if key in sub:
            return " | ".join(schema_type(x) for x in sub[key])
    if sub.get("type") == "array":
        return f"list[{schema_type(sub.get('items') or {})}]"
    if sub.get("type") == "object" and isinstance(sub.get("additionalProperties"), dict):
        return f"dict[string, {schema_type(sub['additionalProperties'])}]"
    if "enum" in sub:
        return " | ".join(json.dumps(v) for v in sub["enum"])
    if "const" in sub:
        return json.dumps(sub["const"])
    return str(sub.get("type", "any"))


def _rows(
    schema: Mapping[str, Any], defs: Mapping[str, Any], docs: Mapping[str, str]
) -> list[tuple[str, str, str, str]]:
    """``(key, type, default, description)`` of one object schema."""
    schema = _resolve(schema, defs)
    required = set(schema.get("required", []))
    out = []
    for key, sub in (schema.get("properties") or {}).items():
        if key in required:
            default = "required"
        elif "default" in sub:
            default = json.dumps(sub["default"])
        else:
            default = "-"
        out.append((key, schema_type(sub), default, docs.get(key, str(sub.get("description", "")))))
    return out


def workflow_schema() -> dict[str, Any]:
    """The JSON Schema of a workflow file, each key described."""
    schema: dict[str, Any] = msgspec.json.schema(WorkflowSpec)
    defs = schema.get("$defs", {})
    for struct, _heading in SECTIONS:
        target = defs.get(struct.__name__)
        if target is None:
            continue
        for key, text in KEYS.get(struct.__name__, {}).items():
            prop = (target.get("properties") or {}).get(key)
            if prop is not None:
                prop["description"] = text
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "corral workflow file",
        **schema,
    }


def handler_params(cls: Any) -> list[tuple[str, str, str, str]]:
    """``(name, type, default, description)`` of a handler's params, from the
    JSON Schema of its ``Params`` (what validates them)."""
    try:
        schema = msgspec.json.schema(cls.Params)
    except (TypeError, ValueError):
        return []
    return _rows(schema, schema.get("$defs", {}), {})


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _table(rows: Iterable[tuple[str, str, str, str]], first: str) -> list[str]:
    lines = [f"| {first} | type | default | what it is |", "|---|---|---|---|"]
    lines += [
        f"| `{k}` | {_cell(t)} | {_cell(d if d in ('required', '-') else f'`{d}`')} | {_cell(e)} |"
        for k, t, d, e in rows
    ]
    return lines


def reference_markdown(handlers: Mapping[str, Any] | None = None) -> str:
    """The generated part of ``docs/workflow-file.md``: a table per Struct of a
    workflow file, then the params of each ``core.*`` handler of ``handlers``."""
    schema = workflow_schema()
    defs = schema.get("$defs", {})
    out: list[str] = []
    for struct, heading in SECTIONS:
        out += [f"### {heading}", ""]
        out += _table(_rows(defs[struct.__name__], defs, KEYS[struct.__name__]), "key")
        out.append("")
    for name in sorted(handlers or {}):
        if not name.startswith("core."):
            continue
        cls = (handlers or {})[name]
        doc = (inspect.getdoc(cls) or "").replace("``", "`")
        out += [f"### `{name}`", "", doc, ""]
        rows = handler_params(cls)
        out += [*_table(rows, "param"), ""] if rows else ["No params.", ""]
    return "\n".join(out).rstrip() + "\n"
