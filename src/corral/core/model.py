"""The data of corral: specs, records, events and settings, as msgspec Structs.

Everything here is plain data with no behaviour and no I/O, so it can be
encoded (JSON, msgpack), stored, sent over HTTP and compared. Specs reject
unknown fields: a typo in a workflow file is an error, not a silent default.
"""

from __future__ import annotations

import os
import time
from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, Meta, Struct

from corral.core.status import PENDING
from corral.core.status import TERMINAL_EXECUTION as TERMINAL_EXECUTION
from corral.core.status import TERMINAL_STEP as TERMINAL_STEP
from corral.core.status import ExecutionStatus as ExecutionStatus
from corral.core.status import StepStatus as StepStatus

__all__ = [
    "CachePolicy",
    "ConcurrencySpec",
    "ErrorInfo",
    "Event",
    "ExecutionRecord",
    "ExecutionStatus",
    "InputSpec",
    "Limits",
    "RetryPolicy",
    "StepFinished",
    "StepProgress",
    "StepRecord",
    "StepRetrying",
    "StepSpec",
    "StepStarted",
    "StepStatus",
    "WorkflowFinished",
    "WorkflowSettings",
    "WorkflowSpec",
    "WorkflowStarted",
    "WorkflowSubmitted",
]

StepId = Annotated[str, Meta(pattern=r"^[A-Za-z_][A-Za-z0-9_-]*$", max_length=128)]
PositiveFloat = Annotated[float, Meta(gt=0)]
NonNegativeFloat = Annotated[float, Meta(ge=0)]
PositiveInt = Annotated[int, Meta(ge=1)]

InputType = Literal["string", "integer", "number", "boolean", "array", "object", "any"]
FailurePolicy = Literal["fail_fast", "continue"]
Trigger = Literal["success", "done"]


# The status rules live in corral.core.status; re-exported here, where the
# records that carry them are.
class _Spec(Struct, forbid_unknown_fields=True, omit_defaults=True, kw_only=True):
    """Base of every spec Struct: unknown fields are errors."""


class InputSpec(_Spec):
    """A declared workflow input. Without ``default`` the input is required."""

    type: InputType = "any"
    default: Any = UNSET
    description: str = ""

    @property
    def required(self) -> bool:
        return self.default is UNSET


class RetryPolicy(_Spec):
    """How a failing step is retried.

    Attempt ``n`` (1-based) that fails waits ``backoff * multiplier ** (n-1)``
    seconds (at most ``max_backoff``), spread by ``±jitter`` (a fraction)
    before attempt ``n+1``. ``retry_on`` restricts retries to exceptions whose
    class (or a base class) has one of the given names; empty means every
    error except :class:`corral.NonRetryable`.
    """

    attempts: PositiveInt = 1
    backoff: NonNegativeFloat = 1.0
    multiplier: Annotated[float, Meta(ge=1)] = 2.0
    max_backoff: NonNegativeFloat = 300.0
    jitter: Annotated[float, Meta(ge=0, le=1)] = 0.1
    retry_on: list[str] = msgspec.field(default_factory=list)


class CachePolicy(_Spec):
    """Cache a step's successful result; ``ttl`` in seconds (``None``: no expiry)."""

    ttl: PositiveFloat | None = None


class ConcurrencySpec(_Spec):
    """A keyed limit: at most ``limit`` steps run at once per value of ``key``.

    ``key`` is a CEL expression over ``inputs`` and ``params`` (the step's
    resolved params), e.g. ``inputs.path``. Limits are shared by every workflow
    of the engine under the same ``name`` (default: the handler's name).
    """

    key: str
    limit: PositiveInt = 1
    name: str | None = None


class StepSpec(_Spec):
    """One step of a workflow: a handler call, or a child workflow."""

    id: StepId
    handler: str | None = None
    params: dict[str, Any] = msgspec.field(default_factory=dict)
    needs: list[str] = msgspec.field(default_factory=list)
    when: str | None = None
    retry: RetryPolicy | None = None
    timeout: PositiveFloat | None = None
    resources: dict[str, PositiveInt] = msgspec.field(default_factory=dict)
    cache: bool | CachePolicy = False
    concurrency: ConcurrencySpec | None = None
    workflow: str | WorkflowSpec | None = None
    description: str = ""
    trigger: Trigger = "success"
    """When the step may start: ``success`` (once every step it needs has
    succeeded; skipped when one fails or is skipped) or ``done`` (once every
    step it needs has ended, whatever its status: a join that sums up a
    ``continue`` workflow; a failed or skipped step's output is ``null``)."""


class WorkflowSettings(_Spec):
    """Workflow-wide settings."""

    on_failure: FailurePolicy = "fail_fast"
    timeout: PositiveFloat | None = None
    max_parallel_steps: PositiveInt | None = None


class WorkflowSpec(_Spec):
    """A workflow: declared inputs, steps, settings, and optionally its output.

    ``output`` is a value that may contain references (``${steps.x.output}``);
    without it the workflow's result maps each sink step (no step needs it) to
    its output.
    """

    name: Annotated[str, Meta(min_length=1, max_length=200)]
    steps: list[StepSpec]
    version: int | str = 1
    description: str = ""
    inputs: dict[str, InputSpec] = msgspec.field(default_factory=dict)
    settings: WorkflowSettings = msgspec.field(default_factory=WorkflowSettings)
    output: Any = UNSET


# ---------------------------------------------------------------- records


class ErrorInfo(Struct, omit_defaults=True):
    """An error as stored and reported: exception type, message, failing step."""

    type: str
    message: str
    step: str | None = None


class StepRecord(Struct, omit_defaults=True):
    """What happened to one step of an execution."""

    step_id: str
    status: StepStatus = PENDING
    attempts: int = 0
    handler: str | None = None
    """The handler that runs it; ``None`` for a step that runs a child workflow."""
    started_at: float | None = None
    finished_at: float | None = None
    output: Any = None
    error: ErrorInfo | None = None
    warnings: list[str] = msgspec.field(default_factory=list)
    """What went wrong without failing the step (it held the event loop ...)."""
    logs: list[str] = msgspec.field(default_factory=list)
    """What its handler wrote with ``ctx.log`` (info and above), bounded
    (``corral show ID --logs``)."""
    handler_version: str | None = None
    """The ``version`` of the handler that ran it (a retry reuses its output
    only while the installed handler has the same version)."""
    reused_from: str | None = None
    """Set in a retry: the execution whose recorded output this step took
    instead of running (``corral retry``)."""
    workflow: str | None = None
    """The child workflow it runs (its name), for a step of that kind: such
    a step has no handler, and its child execution names it as parent."""

    @property
    def duration(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return self.finished_at - self.started_at


class ExecutionRecord(Struct, omit_defaults=True):
    """One execution of a workflow, with a record per step."""

    id: str
    workflow: str
    version: int | str
    status: ExecutionStatus = PENDING
    priority: int = 0
    inputs: dict[str, Any] = msgspec.field(default_factory=dict)
    result: Any = None
    error: ErrorInfo | None = None
    parent_id: str | None = None
    parent_step: str | None = None
    key: str | None = None
    owner: str | None = None
    lease_expires_at: float | None = None
    cancel_requested: bool = False
    definition: str | None = None
    """Content hash of the workflow definition (spec) this execution runs."""
    created_at: float = 0.0
    started_at: float | None = None
    finished_at: float | None = None
    steps: list[StepRecord] = msgspec.field(default_factory=list)
    handlers: list[str] = msgspec.field(default_factory=list)
    """The handlers it needs (its steps' and its child workflows'), sorted: a
    worker claims only executions whose handlers it has. Empty: unknown."""
    retry_of: str | None = None
    """The execution this one retries (``corral retry``): history is never
    rewritten, a retry is a new execution linked to the one it retries."""

    def step(self, step_id: str) -> StepRecord:
        """The record of one step (``KeyError`` if the workflow has no such step)."""
        for record in self.steps:
            if record.step_id == step_id:
                return record
        raise KeyError(step_id)


# ---------------------------------------------------------------- events


class _Event(Struct, tag_field="event", kw_only=True):
    execution_id: str
    workflow: str
    at: float


class WorkflowSubmitted(_Event, tag="workflow.submitted"):
    priority: int = 0


class WorkflowStarted(_Event, tag="workflow.started"):
    pass


class WorkflowFinished(_Event, tag="workflow.finished"):
    status: ExecutionStatus
    error: ErrorInfo | None = None


class StepStarted(_Event, tag="step.started"):
    step_id: str
    attempt: int


class StepRetrying(_Event, tag="step.retrying"):
    step_id: str
    attempt: int
    delay: float
    error: ErrorInfo


class StepFinished(_Event, tag="step.finished"):
    step_id: str
    status: StepStatus
    attempts: int
    error: ErrorInfo | None = None


class StepProgress(_Event, tag="step.progress"):
    step_id: str
    done: float
    total: float | None = None
    message: str | None = None
    unit: str | None = None
    """What ``done`` and ``total`` count (``"bytes"`` is shown as KB, MB ...)."""


Event = (
    WorkflowSubmitted
    | WorkflowStarted
    | WorkflowFinished
    | StepStarted
    | StepRetrying
    | StepFinished
    | StepProgress
)


# ---------------------------------------------------------------- settings


class Limits(Struct, kw_only=True, forbid_unknown_fields=True):
    """The engine's limits. Every field has a sane default.

    ``pools`` adds or resizes named resource pools (defaults: ``cpu`` = core
    count, ``io`` = 64). ``max_running_workflows`` bounds workflows running at
    once; up to ``max_queued`` more wait in the admission queue, past which
    ``submit`` raises :class:`corral.Overloaded`. The memory guard pauses
    admission above ``memory_soft_mb`` of process RSS and refuses new work above
    ``memory_hard_mb`` (``None`` disables a mark).

    ``queue_in_store``: past ``max_queued`` (or while the memory guard pauses
    admission), a submission is not refused but stored as a queued record,
    with no task and nothing held in memory (a few hundred bytes on disk),
    and the engine claims such records back, highest priority first, then
    oldest, as it has room: millions can wait. They are ordinary queued
    executions: any engine that claims work (a ``corral worker``, another
    engine with ``queue_in_store``) may take them, and after a crash the next
    such engine does.
    """

    max_running_workflows: PositiveInt = 1000
    max_queued: Annotated[int, Meta(ge=0)] = 100_000
    queue_in_store: bool = False
    pools: dict[str, PositiveInt] = msgspec.field(default_factory=dict)
    memory_soft_mb: PositiveFloat | None = None
    memory_hard_mb: PositiveFloat | None = None
    memory_interval: PositiveFloat = 0.5
    subscriber_buffer: PositiveInt = 10_000
    status_write_timeout: PositiveFloat = 10.0
    cache_max_entries: PositiveInt = 10_000
    cache_max_bytes: PositiveInt = 64 * 1024 * 1024
    #: Seconds a handler may hold the event loop before it is reported (a
    #: warning in the log and on the step's record, ``loop_stalls`` counted);
    #: 0 turns the watch off.
    loop_stall_warning: Annotated[float, Meta(ge=0)] = 0.5

    def pool_sizes(self) -> dict[str, int]:
        """Default pools merged with the declared ones."""
        sizes = {"cpu": os.cpu_count() or 1, "io": 64}
        sizes.update(self.pools)
        return sizes


def now() -> float:
    """Wall-clock time for records (seconds since the epoch)."""
    return time.time()
