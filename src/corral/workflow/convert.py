"""``corral convert``: the sequential workflow definitions of the system corral
replaces, as corral workflow files. Pure: a decoded document in, a spec
document out (the CLI reads and writes the files).

The legacy format (docs/migration.md): a list of steps run one after another,
or a mapping with ``name``, an optional ``description`` and that list as
``steps``. Each step is a mapping:

- ``type`` (required): the handler. A bare name (``shell``) is the core
  handler of that name when there is one (``core.shell``), else kept as it is
  (a legacy handler registered with ``compat.legacy_handler(name=...)``);
- ``name`` or ``id``: the step's id (default ``step1``, ``step2`` ...; made an
  identifier: ``fetch data`` becomes ``fetch_data``);
- ``options``: its params (default: none);
- ``retries``: how many times a failure is retried (``retry.attempts`` is one
  more); ``timeout``: seconds per attempt.

Each step needs the one before it, so the order is kept exactly; the
result is the last step's output.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Any

from corral.core.errors import SpecError

__all__ = ["STEP_KEYS", "convert"]

#: The keys a legacy step may have.
STEP_KEYS = ("type", "name", "id", "options", "retries", "timeout")
_ID_BAD = re.compile(r"[^A-Za-z0-9_]+")


def _step_id(raw: Any, n: int, taken: set[str]) -> str:
    # (identifiers: references name them as ${steps.ID.output})
    base = _ID_BAD.sub("_", str(raw)).strip("_") if raw not in (None, "") else f"step{n}"
    if not base or not (base[0].isalpha() or base[0] == "_"):
        base = f"step_{base}" if base else f"step{n}"
    base = base[:120]
    out, k = base, 2
    while out in taken:
        out, k = f"{base}_{k}", k + 1
    taken.add(out)
    return out


def _literal(value: Any) -> Any:
    """Legacy options as corral params: a ``${`` in a string is text there
    (a shell's ``${HOME}``), so it becomes ``$${``, corral's literal ``${``."""
    if isinstance(value, str):
        return value.replace("${", "$${")
    if isinstance(value, list):
        return [_literal(v) for v in value]
    if isinstance(value, dict):
        return {k: _literal(v) for k, v in value.items()}
    return value


def _handler(kind: Any, path: str, core: Collection[str]) -> str:
    if not isinstance(kind, str) or not kind.strip():
        raise SpecError("`type` must name the step's handler (a non-empty string)", path=path)
    kind = kind.strip()
    return f"core.{kind}" if "." not in kind and f"core.{kind}" in core else kind


def convert(raw: Any, *, name: str, core: Collection[str] = ()) -> dict[str, Any]:
    """A corral workflow document for a legacy sequential definition;
    ``SpecError`` (with the JSON path of the bad value) for one that is not.
    ``core``: the core handlers' names, for bare ``type`` names."""
    description = ""
    steps = raw
    base = "$"
    if isinstance(raw, dict):
        unknown = sorted(set(raw) - {"name", "description", "steps"})
        if unknown:
            raise SpecError(
                f"unknown key {unknown[0]!r}; a legacy workflow has name, description, steps",
                path=f"$.{unknown[0]}",
            )
        name = str(raw.get("name") or name)
        description = str(raw.get("description") or "")
        steps, base = raw.get("steps"), "$.steps"
    if not isinstance(steps, list) or not steps:
        raise SpecError(
            "a legacy workflow is a list of steps (or a mapping with `steps`), run in order",
            path=base,
        )
    taken: set[str] = set()
    out: list[dict[str, Any]] = []
    for n, step in enumerate(steps, start=1):
        path = f"{base}[{n - 1}]"
        if not isinstance(step, dict):
            raise SpecError("a step is a mapping with `type` and `options`", path=path)
        unknown = sorted(set(step) - set(STEP_KEYS))
        if unknown:
            raise SpecError(
                f"unknown key {unknown[0]!r}; a legacy step has {', '.join(STEP_KEYS)}",
                path=f"{path}.{unknown[0]}",
            )
        converted: dict[str, Any] = {
            "id": _step_id(step.get("name", step.get("id")), n, taken),
            "handler": _handler(step.get("type"), f"{path}.type", core),
        }
        options = step.get("options", {})
        if not isinstance(options, dict):
            raise SpecError(
                "`options` must be a mapping (the step's params)", path=f"{path}.options"
            )
        if options:
            converted["params"] = _literal(options)
        if out:
            converted["needs"] = [out[-1]["id"]]
        retries = step.get("retries")
        if retries is not None:
            if not isinstance(retries, int) or isinstance(retries, bool) or retries < 0:
                raise SpecError(
                    "`retries` must be a whole number, 0 or more", path=f"{path}.retries"
                )
            if retries:
                converted["retry"] = {"attempts": retries + 1}
        timeout = step.get("timeout")
        if timeout is not None:
            if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
                raise SpecError(
                    "`timeout` must be a number of seconds above 0", path=f"{path}.timeout"
                )
            converted["timeout"] = timeout
        out.append(converted)
    doc: dict[str, Any] = {"name": name, "version": 1}
    if description:
        doc["description"] = description
    doc["steps"] = out
    doc["output"] = "${steps." + out[-1]["id"] + ".output}"
    return doc
