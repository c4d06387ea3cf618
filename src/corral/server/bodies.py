"""The HTTP API's request and response bodies, as msgspec Structs: Litestar
validates requests against them and derives the OpenAPI document from them,
so what the document promises is what the server sends."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any

import msgspec

from corral.core.errors import UsageError
from corral.core.model import ExecutionRecord, StepRecord
from corral.storage.base import DefinitionRecord

__all__ = [
    "Accepted",
    "BulkResult",
    "BulkRetried",
    "BulkRetry",
    "Definition",
    "ExecutionPage",
    "ExecutionView",
    "FieldProblem",
    "HandlerInfo",
    "Health",
    "PauseChange",
    "Pauses",
    "Problem",
    "RetryPlanView",
    "RetryRequest",
    "Selection",
    "StepView",
    "Submission",
    "WorkflowSummary",
    "WorkflowVersions",
    "decode_cursor",
    "encode_cursor",
    "execution_view",
    "links",
]


class Submission(msgspec.Struct, forbid_unknown_fields=True):
    """``POST /v1/executions``: a stored workflow by name (``name`` or
    ``name@version``), or a spec given inline; its inputs; an idempotency key;
    a priority (higher first)."""

    workflow: str | None = None
    spec: dict[str, Any] | None = None
    inputs: dict[str, Any] = msgspec.field(default_factory=dict)
    key: str | None = None
    priority: int = 0


class RetryRequest(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """``POST /v1/executions/{id}/retry``: run a finished execution again,
    reusing what need not run again. ``from``: steps to run again even if
    they succeeded; ``inputs``: new values for some inputs; ``workflow``
    (``name@version``) or ``spec``: a new definition of the same workflow;
    ``rerun_changed``: run again the steps whose handler, handler version or
    params changed instead of refusing (409); ``dry_run``: only say what it
    would do."""

    from_steps: list[str] = msgspec.field(default_factory=list, name="from")
    inputs: dict[str, Any] | None = None
    workflow: str | None = None
    spec: dict[str, Any] | None = None
    rerun_changed: bool = False
    priority: int | None = None
    dry_run: bool = False


class RetryPlanView(msgspec.Struct, omit_defaults=True):
    """What a retry runs again (step -> why) and reuses; with ``id``, the
    new execution (absent for a dry run)."""

    retry_of: str
    rerun: dict[str, str]
    reused: list[str]
    id: str | None = None
    status: str | None = None
    links: dict[str, str] | None = None


class Selection(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """The top-level executions a bulk operation acts on: of a workflow,
    with one of ``status``, created in the last ``since`` seconds."""

    workflow: str | None = None
    status: list[str] = msgspec.field(default_factory=list)
    since: Annotated[float, msgspec.Meta(gt=0)] | None = None
    dry_run: bool = False


class BulkRetry(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """``POST /v1/bulk/retry``: retry every top-level execution that matches
    (by default the failed ones; one retried already is left out: its retry
    is the one to retry), each as ``POST /v1/executions/{id}/retry`` with
    this body's other fields would."""

    workflow: str | None = None
    status: list[str] = msgspec.field(default_factory=list)
    since: Annotated[float, msgspec.Meta(gt=0)] | None = None
    from_steps: list[str] = msgspec.field(default_factory=list, name="from")
    inputs: dict[str, Any] | None = None
    rerun_changed: bool = False
    dry_run: bool = False


class BulkRetried(msgspec.Struct):
    """What a bulk retry did: ``retries`` maps each execution retried to its
    retry (``null`` in a dry run); ``skipped``, each that could not be, to why."""

    matched: int
    retries: dict[str, str | None]
    skipped: dict[str, str]
    dry_run: bool = False


class BulkResult(msgspec.Struct):
    """The executions a bulk operation touched (``matched``: selected)."""

    matched: int
    touched: list[str]
    dry_run: bool = False


class Pauses(msgspec.Struct):
    """The paused workflows (``*``: all) and when each was paused."""

    paused: dict[str, float]


class PauseChange(msgspec.Struct):
    """A pause set or lifted; ``changed``: false if it already was so."""

    workflow: str
    paused: bool
    changed: bool


class Accepted(msgspec.Struct):
    """An admitted execution: its id, its status now, and where to look."""

    id: str
    status: str
    links: dict[str, str]


class Definition(msgspec.Struct, omit_defaults=True):
    """One stored version of a workflow (``spec`` only when one version is asked for)."""

    name: str
    version: str
    digest: str
    created_at: float
    spec: dict[str, Any] | None = None


class WorkflowSummary(msgspec.Struct):
    """A stored workflow: its newest version and how many it has."""

    name: str
    latest: Definition
    versions: int


class WorkflowVersions(msgspec.Struct):
    """Every stored version of one workflow, newest first."""

    name: str
    versions: list[Definition]


class StepView(StepRecord, omit_defaults=True):
    """A step's record with its duration (seconds, once it ended)."""

    duration: float | None = None


class ExecutionView(ExecutionRecord, omit_defaults=True):
    """An execution's record (steps with durations) and its links."""

    steps: list[StepView] = msgspec.field(default_factory=list)  # type: ignore[assignment]
    duration: float | None = None
    links: dict[str, str] = msgspec.field(default_factory=dict)


class ExecutionPage(msgspec.Struct):
    """One page of a listing, newest first; ``next``: the cursor of the next
    page (``null`` on the last one)."""

    executions: list[ExecutionView]
    next: str | None = None


class HandlerInfo(msgspec.Struct):
    """A handler the server's engine can run."""

    name: str
    version: str
    kind: str
    plugin: str
    description: str
    params_schema: dict[str, Any] | None
    """The JSON Schema of its params (``null`` when its type has none)."""


class Health(msgspec.Struct, omit_defaults=True):
    """``ok``, or ``unavailable`` and why."""

    status: str
    detail: str | None = None


class FieldProblem(msgspec.Struct):
    path: str
    message: str


class Problem(msgspec.Struct, omit_defaults=True):
    """An error, as RFC 9457 ``application/problem+json``: ``path`` is the
    JSON path of the bad field of a workflow or its inputs (``kind`` says
    which), ``errors`` lists each bad field of a request body."""

    type: str
    title: str
    status: int
    detail: str
    path: str | None = None
    kind: str | None = None
    errors: list[FieldProblem] | None = None
    steps: dict[str, str] | None = None
    """A refused retry (409): the steps that changed since they ran, and how."""


def links(execution_id: str) -> dict[str, str]:
    base = f"/v1/executions/{execution_id}"
    return {
        "self": base,
        "cancel": f"{base}/cancel",
        "retry": f"{base}/retry",
        "events": f"{base}/events",
    }


def _seconds(started: float | None, finished: float | None) -> float | None:
    return None if started is None or finished is None else finished - started


def execution_view(record: ExecutionRecord) -> ExecutionView:
    fields = msgspec.structs.asdict(record)
    fields["steps"] = [
        StepView(
            **msgspec.structs.asdict(step), duration=_seconds(step.started_at, step.finished_at)
        )
        for step in record.steps
    ]
    return ExecutionView(
        **fields,
        duration=_seconds(record.started_at, record.finished_at),
        links=links(record.id),
    )


def definition(stored: DefinitionRecord, *, with_spec: bool = False) -> Definition:
    spec = msgspec.json.decode(stored.spec) if with_spec else None
    return Definition(stored.name, stored.version, stored.digest, stored.created_at, spec)


def encode_cursor(record: ExecutionRecord) -> str:
    """An opaque cursor: where the page that ended with ``record`` stopped."""
    raw = msgspec.json.encode([record.created_at, record.id])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[float, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created_at, execution_id = msgspec.json.decode(raw, type=tuple[float, str])
    except (binascii.Error, ValueError, msgspec.DecodeError):
        raise UsageError(
            f"cursor {cursor[:40]!r} is not one this server gave (use a listing's `next`)"
        ) from None
    return created_at, execution_id
