"""Which steps a retry runs again and which it takes from the execution it
retries (``corral retry``, ``Engine.retry``). Pure logic: no I/O.

A retry is a new execution of a plan, seeded with recorded step outputs of
a finished one. A step runs again when:

- it did not finish with an output (failed, timed out, cancelled, skipped,
  never started), or the plan has it and the original did not;
- it was asked for (``from_steps``, ``--from``);
- its params, resolved against the new inputs and the outputs it would
  reuse, differ from what they resolved to in the original, or its ``when``
  condition no longer holds with the new inputs;
- what ran it changed (its handler, that handler's version, its params in a
  new definition) and the caller allowed it (``rerun_changed``); without
  that, such a step is *refused*, not silently recomputed or reused;
- anything it needs runs again (its descendants follow it).

Everything else keeps its recorded output: it is not run, not even looked
at by its handler.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec

from corral.core.model import ExecutionRecord, StepRecord
from corral.core.status import (
    CANCELLED,
    FAILED,
    FINISHED_OK,
    PENDING,
    RUNNING,
    SKIPPED,
    TIMED_OUT,
)
from corral.workflow.conditions import ConditionError
from corral.workflow.plan import Plan, StepPlan
from corral.workflow.references import RefError, resolve

__all__ = ["RetryChoice", "choose_reruns"]


@dataclass
class RetryChoice:
    """The steps of a retry, in the plan's order."""

    rerun: dict[str, str] = field(default_factory=dict)
    """Step id -> why it runs again."""
    reused: list[str] = field(default_factory=list)
    """Steps whose recorded output is taken as it is."""
    refused: dict[str, str] = field(default_factory=dict)
    """Steps that would be reused although what ran them changed: step id ->
    what changed. Non-empty: the retry is refused unless ``rerun_changed``."""


def _ran(rec: StepRecord) -> str | None:
    if rec.workflow is not None:
        return f"workflow {rec.workflow}"
    return rec.handler


def _runs(sp: StepPlan) -> str:
    if sp.child is not None:
        return f"workflow {sp.child.spec.name}"
    return sp.handler_name


def _changed(sp: StepPlan, rec: StepRecord, before: StepPlan | None) -> str | None:
    """What changed in how step ``sp`` is run since ``rec`` was recorded."""
    ran, runs = _ran(rec), _runs(sp)
    if ran is not None and ran != runs:
        return f"what runs it changed ({ran} -> {runs})"
    if (
        sp.handler is not None
        and rec.handler_version is not None
        and rec.handler_version != sp.handler.version
    ):
        return (
            f"handler {sp.handler.name} changed version "
            f"({rec.handler_version} -> {sp.handler.version})"
        )
    if before is not None:
        old, new = before.spec, sp.spec
        if msgspec.json.encode(old.params) != msgspec.json.encode(new.params):
            return "its params changed in the new definition"
        if msgspec.json.encode(old.workflow) != msgspec.json.encode(new.workflow):
            return "its child workflow changed in the new definition"
    return None


def choose_reruns(
    plan: Plan,
    original: ExecutionRecord,
    *,
    before: Plan | None = None,
    old_inputs: Mapping[str, Any] | None = None,
    new_inputs: Mapping[str, Any] | None = None,
    from_steps: Sequence[str] = (),
    rerun_changed: bool = False,
) -> RetryChoice:
    """Decide, step by step, what a retry of ``original`` with ``plan`` runs.

    ``before``: the plan ``original`` ran, when ``plan`` is a different
    definition (its steps' params are compared). ``old_inputs`` /
    ``new_inputs``: the original's bound inputs and the retry's.
    ``from_steps``: steps to run again even if they succeeded (ids the
    plan has: checked by the caller).
    """
    records = {rec.step_id: rec for rec in original.steps}
    old_steps = {sp.id: sp for sp in before.steps} if before is not None else {}
    asked = set(from_steps)
    inputs_changed = (
        old_inputs is not None
        and new_inputs is not None
        and msgspec.json.encode(dict(sorted(old_inputs.items())))
        != msgspec.json.encode(dict(sorted(new_inputs.items())))
    )
    choice = RetryChoice()
    why: dict[int, str] = {}
    for i in plan.order:
        sp = plan.steps[i]
        rec = records.get(sp.id)
        upstream = next((plan.steps[d].id for d in sp.needs if d in why), None)
        if rec is None:
            why[i] = "the execution it retries has no such step"
        elif rec.status not in FINISHED_OK:
            why[i] = f"it {_did(rec.status)}"
        elif sp.id in asked:
            why[i] = "asked for (--from)"
        elif upstream is not None:
            why[i] = f"it needs {upstream}, which runs again"
        else:
            change = _changed(sp, rec, old_steps.get(sp.id))
            if change is not None and rerun_changed:
                why[i] = change
            elif inputs_changed and (
                reason := _input_change(sp, plan, records, old_inputs or {}, new_inputs or {})
            ):
                why[i] = reason
            elif change is not None:
                choice.refused[sp.id] = change
    for sp in plan.steps:
        if sp.index in why:
            choice.rerun[sp.id] = why[sp.index]
        else:
            choice.reused.append(sp.id)
    # A refused step that runs again anyway (downstream of a failure) is no
    # reason to refuse.
    choice.refused = {k: v for k, v in choice.refused.items() if k not in choice.rerun}
    return choice


_DID = {
    FAILED: FAILED,  # ("it failed": the status is the word)
    TIMED_OUT: "timed out",
    CANCELLED: "was cancelled",
    SKIPPED: "was skipped",
    PENDING: "never ran",
    RUNNING: "never finished",
}


def _did(status: str) -> str:
    return _DID.get(status, status)


def _input_change(
    sp: StepPlan,
    plan: Plan,
    records: Mapping[str, StepRecord],
    old_inputs: Mapping[str, Any],
    new_inputs: Mapping[str, Any],
) -> str | None:
    """Why step ``sp`` (whose upstream is all reused) runs again with the
    new inputs, or None: its params resolved both ways (against the outputs
    it would reuse) differ, or its condition stops holding."""
    outputs = {
        plan.steps[r].id: records[plan.steps[r].id].output
        for r in {*sp.param_refs, *sp.when_refs}
        if plan.steps[r].id in records
    }
    try:
        before = resolve(sp.params, old_inputs, outputs)
        after = resolve(sp.params, new_inputs, outputs)
    except RefError:
        return "its params do not resolve with the new inputs"
    if msgspec.json.encode(before) != msgspec.json.encode(after):
        return "its params change with the new inputs"
    if sp.when is not None and "inputs" in sp.when.variables:
        steps = {
            plan.steps[r].id: {
                "output": records[plan.steps[r].id].output,
                "status": records[plan.steps[r].id].status,
            }
            for r in sp.when_refs
            if plan.steps[r].id in records
        }
        try:
            holds = sp.when.test({"inputs": dict(new_inputs), "steps": steps})
        except ConditionError:
            holds = False
        if not holds:
            return "its condition does not hold with the new inputs"
    return None
