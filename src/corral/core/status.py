"""The one home of the status rules: which statuses exist, which are
finished, which moves between them are legal, and which exception a caller
gets for a finished execution.

Everything else (the stores' SQL, the schema's CHECK constraints, the
runner, the engine, the CLI) takes its sets from here; the schema's lists
are tested against them (tests/test_status.py). Pure logic: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Final, Literal, get_args

from corral.core.errors import CorralError, WorkflowCancelled, WorkflowFailed, WorkflowTimedOut

__all__ = [
    "CACHED",
    "CANCELLED",
    "EXECUTION_STATUSES",
    "EXECUTION_TRANSITIONS",
    "FAILED",
    "FINISHED_OK",
    "PENDING",
    "RUNNING",
    "SKIPPED",
    "STEP_STATUSES",
    "STEP_TRANSITIONS",
    "SUCCEEDED",
    "TERMINAL_EXECUTION",
    "TERMINAL_STEP",
    "TIMED_OUT",
    "UNFINISHED",
    "ExecutionStatus",
    "StepStatus",
    "failure_for",
    "legal",
    "sql_in",
]

ExecutionStatus = Literal["pending", "running", "succeeded", "failed", "cancelled", "timed_out"]
"""``pending -> running -> succeeded | failed | cancelled | timed_out``."""

StepStatus = Literal[
    "pending", "running", "succeeded", "failed", "skipped", "cancelled", "cached", "timed_out"
]
"""A step's status. ``timed_out`` is a ``failed`` step whose last attempt hit its timeout."""

# Each status by name: code outside this module compares with these, never
# with a string of its own (tests/test_status.py greps for one).
PENDING: Final = "pending"
RUNNING: Final = "running"
SUCCEEDED: Final = "succeeded"
FAILED: Final = "failed"
SKIPPED: Final = "skipped"
CANCELLED: Final = "cancelled"
CACHED: Final = "cached"
TIMED_OUT: Final = "timed_out"

EXECUTION_STATUSES: Final[tuple[str, ...]] = get_args(ExecutionStatus)
STEP_STATUSES: Final[tuple[str, ...]] = get_args(StepStatus)

#: Not finished: queued, or being run (an execution or a step).
UNFINISHED: Final = frozenset({"pending", "running"})
TERMINAL_EXECUTION: Final = frozenset(EXECUTION_STATUSES) - UNFINISHED
TERMINAL_STEP: Final = frozenset(STEP_STATUSES) - UNFINISHED
#: A step that finished with an output its dependents may use.
FINISHED_OK: Final = frozenset({"succeeded", "cached"})

#: The legal moves: from a status to the ones it may become. A finished
#: status never changes (a resumed step goes back to ``pending`` only from
#: ``running``: it was interrupted, not finished).
EXECUTION_TRANSITIONS: Final[Mapping[str, frozenset[str]]] = {
    "pending": frozenset({"running"}) | TERMINAL_EXECUTION,
    "running": TERMINAL_EXECUTION,
    **{s: frozenset() for s in TERMINAL_EXECUTION},
}
STEP_TRANSITIONS: Final[Mapping[str, frozenset[str]]] = {
    "pending": frozenset({"running"}) | TERMINAL_STEP,
    "running": frozenset({"pending", "running"}) | TERMINAL_STEP,  # retried, resumed
    **{s: frozenset() for s in TERMINAL_STEP},
}


def legal(table: Mapping[str, frozenset[str]], old: str, new: str) -> bool:
    """Whether ``old -> new`` is a legal move in ``table`` (staying put is)."""
    return old == new or new in table.get(old, frozenset())


def sql_in(statuses: Iterable[str]) -> str:
    """``('pending', 'running')``: a SQL list of statuses, in declared order."""
    wanted = set(statuses)
    order = [s for s in STEP_STATUSES if s in wanted]
    return "(" + ", ".join(f"'{s}'" for s in order) + ")"


def failure_for(
    status: str,
    *,
    execution_id: str,
    message: str,
    step: str | None = None,
    error_type: str | None = None,
    cause: BaseException | None = None,
) -> CorralError:
    """The exception a caller gets for an execution that ended ``status``
    (anything but ``succeeded``)."""
    if status == "cancelled":
        return WorkflowCancelled(execution_id, message)
    cls = WorkflowTimedOut if status == "timed_out" else WorkflowFailed
    return cls(message, execution_id=execution_id, step=step, error_type=error_type, cause=cause)
