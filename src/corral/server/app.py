"""``corral serve``'s HTTP API (issue 16, a first part): workflows and
executions over HTTP, versioned under ``/v1``, on Litestar served by
corral's HTTP server (:mod:`.httpserver`), in the same Trio run as the
engine; the busiest route, submission, is taken in front of Litestar when
well formed (:mod:`.lane`).

Bodies are msgspec Structs (Litestar validates them); every error is an RFC
9457 ``application/problem+json`` document, never a traceback (see
:mod:`.problems`); bearer tokens with scopes guard every route but the
health checks (:mod:`.auth`).

Over 600 lines on purpose: it is the route table, one short function per
endpoint, read top to bottom like the API page; what the routes share lives
elsewhere (bodies in :mod:`.bodies`, errors in :mod:`.problems`, tokens in
:mod:`.auth`, events in :mod:`.events`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlencode

import msgspec
import trio
from litestar import (
    HttpMethod,
    Litestar,
    MediaType,
    Request,
    Response,
    delete,
    get,
    post,
    put,
    route,
)
from litestar.datastructures import State
from litestar.exceptions import NotFoundException, ValidationException
from litestar.openapi import OpenAPIConfig, ResponseSpec
from litestar.openapi.plugins import JsonRenderPlugin
from litestar.openapi.spec import OpenAPIMediaType, OpenAPIType, Operation, RequestBody, Schema
from litestar.params import FromPath, FromQuery, JSONBody
from litestar.response import ServerSentEvent, ServerSentEventMessage

from corral.core.errors import SpecError, UsageError
from corral.core.status import PENDING, UNFINISHED
from corral.server import bodies
from corral.server.api_page import ApiPage
from corral.server.auth import Guard, Tokens
from corral.server.bodies import (
    Accepted,
    BulkResult,
    BulkRetried,
    BulkRetry,
    Definition,
    ExecutionPage,
    ExecutionView,
    HandlerInfo,
    Health,
    PauseChange,
    Pauses,
    RetryPlanView,
    RetryRequest,
    Selection,
    Submission,
    WorkflowSummary,
    WorkflowVersions,
)
from corral.server.events import EventHub, Snapshot
from corral.server.lane import MAX_BODY_BYTES, admit
from corral.server.pages import PAGES
from corral.server.problems import EXCEPTION_HANDLERS, documented

__all__ = ["MAX_BODY_BYTES", "make_app"]

_FORMATS = {
    "application/json": "json",
    "application/yaml": "yaml",
    "application/x-yaml": "yaml",
    "text/yaml": "yaml",
    "application/toml": "toml",
    "text/toml": "toml",
}


def _engine(state: State) -> Any:
    return state.engine


T = TypeVar("T")


async def _strict(request: Request[Any, Any, Any], kind: type[T]) -> T:
    """The JSON body decoded strictly. Litestar converts bodies in msgspec's
    lax mode (made for query strings), which takes ``"5"`` for an integer
    and ``0`` for a boolean; a JSON API should refuse them (400), as its
    OpenAPI document says."""
    try:
        return msgspec.json.decode(await request.body(), type=kind)
    except msgspec.ValidationError as exc:
        text = str(exc)
        message, _, where = text.rpartition(" - at `")
        key = where.rstrip("`").removeprefix("$").removeprefix(".") if message else ""
        raise ValidationException(
            detail=text, extra=[{"key": key, "message": message or text}]
        ) from None


@dataclass
class _WorkflowText(Operation):
    """Documents the body ``POST /v1/workflows`` reads itself: a spec as JSON,
    or as YAML or TOML text."""

    def __post_init__(self) -> None:
        text = OpenAPIMediaType(schema=Schema(type=OpenAPIType.STRING))
        self.request_body = RequestBody(
            required=True,
            description="A workflow spec (the same format as a workflow file)",
            content={
                "application/json": OpenAPIMediaType(schema=Schema(type=OpenAPIType.OBJECT)),
                "application/yaml": text,
                "application/toml": text,
            },
        )


@post(
    "/v1/workflows",
    status_code=201,
    guards=[Guard("admin")],
    operation_class=_WorkflowText,
    responses=documented(400, 401, 403, 409, 413, 422, 503),
)
async def create_workflow(request: Request[Any, Any, Any], state: State) -> Definition:
    """Store a versioned workflow definition: a JSON spec, or YAML/TOML text
    with its content type."""
    from corral.workflow.loader import parse_spec, parse_text

    kind = (request.headers.get("content-type") or "application/json").split(";")[0].strip()
    fmt = _FORMATS.get(kind.lower())
    if fmt is None:
        raise UsageError(
            f"content type {kind!r}: send a workflow as application/json, application/yaml "
            "or application/toml"
        )
    body = await request.body()
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise SpecError("the body is not UTF-8 text", file="<body>") from None
    if fmt == "json":
        try:
            raw = msgspec.json.decode(body)
        except msgspec.DecodeError as exc:
            raise SpecError(f"the body is not JSON: {exc}", file="<body>") from None
        spec = parse_spec(raw, file="<body>")
    else:
        spec = parse_text(text, fmt, file="<body>")
    stored = await _engine(state).create(spec)
    state.plans.forget(stored.name)
    return bodies.definition(stored)


@get("/v1/workflows", guards=[Guard("read")], responses=documented(401, 403))
async def list_workflows(state: State) -> list[WorkflowSummary]:
    """Every stored workflow by name: its newest version and how many it has."""
    summaries: dict[str, WorkflowSummary] = {}
    for stored in await _engine(state).store.list_definitions():
        if stored.name in summaries:
            summaries[stored.name].versions += 1
        else:
            summaries[stored.name] = WorkflowSummary(stored.name, bodies.definition(stored), 1)
    return list(summaries.values())


@get("/v1/workflows/{name:str}", guards=[Guard("read")], responses=documented(401, 403, 404))
async def get_workflow(name: FromPath[str], state: State) -> WorkflowVersions:
    """Every stored version of a workflow, newest first."""
    found = await _engine(state).store.list_definitions(name)
    if not found:
        raise NotFoundException(f"no stored workflow {name!r}")
    return WorkflowVersions(name, [bodies.definition(d) for d in found])


@get(
    "/v1/workflows/{name:str}/versions/{version:str}",
    guards=[Guard("read")],
    responses=documented(401, 403, 404),
)
async def get_workflow_version(
    name: FromPath[str], version: FromPath[str], state: State
) -> Definition:
    """One stored version of a workflow, with its spec."""
    stored = await _engine(state).store.get_definition(name, version)
    if stored is None:
        raise NotFoundException(f"no stored workflow {name!r} version {version!r}")
    return bodies.definition(stored, with_spec=True)


@post(
    "/v1/executions",
    status_code=202,
    guards=[Guard("run")],
    responses={
        200: ResponseSpec(Accepted, description="The execution its idempotency key names"),
        **documented(400, 401, 403, 413, 422, 503),
    },
)
async def submit(
    data: JSONBody[Submission], state: State, request: Request[Any, Any, Any]
) -> Response[Accepted]:
    """Admit an execution (202), or return the one its idempotency key names (200)."""
    # (a well-formed submission is taken in front of this route: lane.SubmitLane)
    data = await _strict(request, Submission)
    answer, status = await admit(_engine(state), state.plans, data)
    return Response(answer, status_code=status)


class StoredPlans:
    """Stored workflows, compiled once: a ``name@version`` never changes once
    stored, so its plan is kept; a bare ``name`` means its newest version,
    looked up again after :data:`NEWEST_TTL` seconds (a version stored by
    another process is used from then on; one stored here, at once)."""

    NEWEST_TTL = 1.0

    def __init__(self) -> None:
        self._plans: dict[tuple[str, str], Any] = {}
        self._newest: dict[str, tuple[float, str]] = {}

    def forget(self, name: str) -> None:
        self._newest.pop(name, None)

    async def get(self, engine: Any, ref: str) -> Any:
        name, _, version = ref.partition("@")
        if not version:
            now = trio.current_time()
            newest = self._newest.get(name)
            if newest is not None and now - newest[0] < self.NEWEST_TTL:
                version = newest[1]
        plan = self._plans.get((name, version)) if version else None
        if plan is not None:
            return plan
        stored = await engine.store.get_definition(name, version or None)
        if stored is None:
            raise SpecError(
                f"no stored workflow {ref!r} (POST /v1/workflows first)", path="$.workflow"
            )
        from corral.core.model import WorkflowSpec

        plan = engine.prepare(msgspec.json.decode(stored.spec, type=WorkflowSpec))
        if len(self._plans) >= 1000:
            self._plans.clear()  # (a bound on memory; plans are cheap to make again)
        self._plans[(stored.name, stored.version)] = plan
        if not version:
            self._newest[name] = (trio.current_time(), stored.version)
        return plan


@get("/v1/executions", guards=[Guard("read")], responses=documented(400, 401, 403))
async def list_executions(
    state: State,
    status: FromQuery[str | None] = None,
    workflow: FromQuery[str | None] = None,
    limit: FromQuery[int] = 50,
    cursor: FromQuery[str | None] = None,
) -> Response[ExecutionPage]:
    """Executions, newest first, without their steps, a page at a time: the
    answer's ``next`` (also a ``Link: rel="next"`` header) is the ``cursor``
    of the next page."""
    if not 1 <= limit <= 1000:
        raise UsageError(f"limit must be from 1 to 1000, not {limit}")
    before = bodies.decode_cursor(cursor) if cursor else None  # (empty: the first page)
    records = await _engine(state).list(
        status=status, workflow=workflow, limit=limit + 1, before=before
    )
    more = len(records) > limit
    records = records[:limit]
    page = ExecutionPage([bodies.execution_view(r) for r in records])
    headers = {}
    if more:
        page.next = bodies.encode_cursor(records[-1])
        query = {"limit": str(limit), "cursor": page.next}
        query.update({k: v for k, v in (("status", status), ("workflow", workflow)) if v})
        headers["Link"] = f'</v1/executions?{urlencode(query)}>; rel="next"'
    return Response(page, headers=headers)


@get(
    "/v1/executions/{execution_id:str}",
    guards=[Guard("read")],
    responses=documented(401, 403, 404),
)
async def get_execution(execution_id: FromPath[str], state: State) -> ExecutionView:
    """One execution with its steps (status, attempts, durations, errors, output)."""
    return bodies.execution_view(await _engine(state).get(execution_id))


@post(
    "/v1/executions/{execution_id:str}/cancel",
    status_code=200,
    guards=[Guard("run")],
    responses=documented(401, 403, 404),
)
async def cancel_execution(execution_id: FromPath[str], state: State) -> ExecutionView:
    """Cancel an execution (it ends ``cancelled``; a finished one is left as it is)."""
    return bodies.execution_view(await _engine(state).cancel(execution_id))


@post(
    "/v1/executions/{execution_id:str}/retry",
    status_code=202,
    guards=[Guard("run")],
    responses={
        200: ResponseSpec(RetryPlanView, description="A dry run: what the retry would do"),
        **documented(400, 401, 403, 404, 409, 413, 422, 503),
    },
)
async def retry_execution(
    execution_id: FromPath[str],
    data: JSONBody[RetryRequest],
    state: State,
    request: Request[Any, Any, Any],
) -> Response[RetryPlanView]:
    """Run a finished execution again as a new execution linked to it
    (``retry_of``): the steps that failed (or were cancelled, timed out,
    skipped) run again with everything downstream; the others keep their
    recorded output. 409 names the steps whose handler, handler version or
    params changed since they ran (``rerun_changed`` runs them again)."""
    data = await _strict(request, RetryRequest)
    engine = _engine(state)
    if data.workflow is not None and data.spec is not None:
        raise UsageError("give `workflow` (a stored name@version) or `spec`, not both")
    target: Any = None
    if data.spec is not None:
        from corral.workflow.loader import parse_spec

        target = parse_spec(data.spec, file="<body>")
    elif data.workflow is not None:
        target = await state.plans.get(engine, data.workflow)
    preview = await engine.plan_retry(
        execution_id,
        from_steps=data.from_steps,
        inputs=data.inputs,
        spec=target,
        rerun_changed=data.rerun_changed,
    )
    view = RetryPlanView(preview.original.id, dict(preview.rerun), list(preview.reused))
    if data.dry_run:
        return Response(view, status_code=200)
    handle = await engine.submit_retry(preview, priority=data.priority)
    view.id, view.status, view.links = handle.id, PENDING, bodies.links(handle.id)
    return Response(view, status_code=202)


def _selected_statuses(data: Selection | BulkRetry, default: list[str]) -> list[str]:
    return list(data.status) or default


@post(
    "/v1/bulk/cancel",
    status_code=200,
    guards=[Guard("run")],
    responses=documented(400, 401, 403, 413),
)
async def cancel_many(
    data: JSONBody[Selection], state: State, request: Request[Any, Any, Any]
) -> BulkResult:
    """Cancel every top-level execution that matches (by default the
    unfinished ones): those this server runs stop at once, the others are
    asked of the engines holding them in one transaction. ``touched``: the
    ids that were unfinished."""
    data = await _strict(request, Selection)
    engine = _engine(state)
    found = await engine.select(
        status=_selected_statuses(data, sorted(UNFINISHED)),
        workflow=data.workflow,
        since=None if data.since is None else engine.clock() - data.since,
    )
    ids = [r.id for r in found]
    if data.dry_run:
        return BulkResult(len(ids), ids, dry_run=True)
    return BulkResult(len(ids), await engine.cancel_many(ids))


@post(
    "/v1/bulk/retry",
    status_code=200,
    guards=[Guard("run")],
    responses=documented(400, 401, 403, 413, 503),
)
async def retry_many(
    data: JSONBody[BulkRetry], state: State, request: Request[Any, Any, Any]
) -> BulkRetried:
    """Retry every top-level execution that matches (by default the failed
    ones), each as ``POST /v1/executions/{id}/retry`` would; one retried
    already is left out (its retry is the one to retry), one that cannot be
    retried is listed in ``skipped`` with why."""
    from corral.core.errors import CorralError
    from corral.core.status import FAILED

    data = await _strict(request, BulkRetry)
    engine = _engine(state)
    found = await engine.select(
        status=_selected_statuses(data, [FAILED]),
        workflow=data.workflow,
        since=None if data.since is None else engine.clock() - data.since,
    )
    previews, skipped = [], {}
    for record in found:
        if await engine.store.list_executions(retry_of=record.id, limit=1):
            continue
        try:
            previews.append(
                await engine.plan_retry(
                    record.id,
                    from_steps=data.from_steps,
                    inputs=data.inputs,
                    rerun_changed=data.rerun_changed,
                )
            )
        except CorralError as exc:
            skipped[record.id] = str(exc)
    retries: dict[str, str | None] = {}
    for preview in previews:
        if data.dry_run:
            retries[preview.original.id] = None
        else:
            retries[preview.original.id] = (await engine.submit_retry(preview)).id
    return BulkRetried(len(found), retries, skipped, dry_run=data.dry_run)


@get("/v1/pauses", guards=[Guard("read")], responses=documented(401, 403))
async def list_pauses(state: State) -> Pauses:
    """The paused workflows (``*``: every workflow) and when each was paused."""
    return Pauses(await _engine(state).paused())


@put("/v1/pauses/{workflow:str}", guards=[Guard("run")], responses=documented(400, 401, 403))
async def pause_workflow(workflow: FromPath[str], state: State) -> PauseChange:
    """Pause a workflow (``*``: every one): its queued executions stay queued,
    in every engine and worker on the store, until the pause is deleted."""
    changed = await _engine(state).pause(workflow)
    return PauseChange(workflow, True, changed)


@delete(
    "/v1/pauses/{workflow:str}",
    status_code=200,
    guards=[Guard("run")],
    responses=documented(400, 401, 403),
)
async def unpause_workflow(workflow: FromPath[str], state: State) -> PauseChange:
    """Lift a pause: what it held starts."""
    changed = await _engine(state).unpause(workflow)
    return PauseChange(workflow, False, changed)


def _last_event_id(request: Request[Any, Any, Any]) -> int | None:
    # The header a reconnecting EventSource sends, or (for a page's first
    # connection, which cannot set headers) the ``last_event_id`` query.
    raw = request.headers.get("last-event-id") or request.query_params.get("last_event_id")
    if raw is None or raw == "":
        return None
    if not (raw.isascii() and raw.isdigit()):
        raise UsageError(f"Last-Event-ID {raw[:40]!r}: expected the id of an event (a number)")
    return int(raw)


def _sse(
    hub: EventHub, execution_id: str | None, last_id: int | None, snapshot: Snapshot | None = None
) -> ServerSentEvent:
    async def messages() -> AsyncIterator[ServerSentEventMessage]:
        async for number, name, data in hub.stream(execution_id, last_id, snapshot):
            yield ServerSentEventMessage(
                data=msgspec.json.encode(data).decode(), event=name, id=number
            )
            finished = name == "workflow.finished" and data.get("execution_id") == execution_id
            if execution_id is not None and finished:
                return  # the execution's stream ends with it

    return ServerSentEvent(messages())


@get(
    "/v1/events",
    guards=[Guard("read")],
    media_type="text/event-stream",
    responses=documented(400, 401, 403),
)
async def all_events(request: Request[Any, Any, Any], state: State) -> ServerSentEvent:
    """Server-Sent Events of every execution's lifecycle events (``Last-Event-ID`` resumes)."""
    return _sse(state.hub, None, _last_event_id(request))


@get(
    "/v1/executions/{execution_id:str}/events",
    guards=[Guard("read")],
    media_type="text/event-stream",
    responses=documented(400, 401, 403, 404),
)
async def execution_events(
    execution_id: FromPath[str], request: Request[Any, Any, Any], state: State
) -> ServerSentEvent:
    """Server-Sent Events of one execution, until it finishes (``Last-Event-ID`` resumes)."""
    engine = _engine(state)
    await engine.get(execution_id)  # 404 for an unknown one

    async def snapshot() -> tuple[bool, dict[str, Any]]:
        record = await engine.get(execution_id)
        view = msgspec.to_builtins(bodies.execution_view(record))
        return record.status not in UNFINISHED, view

    return _sse(state.hub, execution_id, _last_event_id(request), snapshot)


@get("/v1/handlers", guards=[Guard("read")], responses=documented(401, 403))
async def list_handlers(state: State) -> list[HandlerInfo]:
    """Every handler: name, version, kind, plugin, and its params' JSON Schema."""
    engine = _engine(state)
    out = []
    for name in sorted(engine.registry):
        info = engine.registry.info(name)
        try:
            schema: Any = msgspec.json.schema(info.cls.Params)
        except (TypeError, ValueError):  # a Params type JSON Schema cannot describe
            schema = None
        out.append(
            HandlerInfo(name, info.version, info.kind, info.plugin, info.description or "", schema)
        )
    return out


@get("/healthz")
async def healthz() -> Health:
    """The process is alive."""
    return Health("ok")


@get("/readyz", responses={503: ResponseSpec(Health, description="The store does not answer")})
async def readyz(state: State) -> Response[Health]:
    """The store answers (503 when it does not)."""
    try:
        await _engine(state).store.list_executions(limit=1)
    except Exception as exc:  # any store failure: not ready
        return Response(Health("unavailable", type(exc).__name__), status_code=503)
    return Response(Health("ok"))


@get("/metrics", media_type=MediaType.TEXT, guards=[Guard("read")], responses=documented(401, 403))
async def metrics(state: State) -> str:
    """Prometheus text exposition of the engine's metrics."""
    text: str = _engine(state).prometheus_metrics()
    return text


def _options(path: str) -> Any:
    """``OPTIONS`` for a path that several route handlers share. Litestar's
    own answers with the ``Allow`` of the first handler registered (2.25),
    so ``OPTIONS /v1/executions`` would leave out GET; this one lists every
    method the app has for the path."""

    @route(path, http_method=[HttpMethod.OPTIONS], include_in_schema=False, status_code=204)
    async def allow(request: Request[Any, Any, Any]) -> Response[None]:
        methods = {m for r in request.app.routes if r.path == path for m in r.methods}
        return Response(None, status_code=204, headers={"Allow": ", ".join(sorted(methods))})

    return allow


def make_app(
    engine: Any, tokens: Tokens, hub: EventHub | None = None, *, max_body: int = MAX_BODY_BYTES
) -> Litestar:
    """The Litestar application around an open engine (``hub``: its events,
    fed by :meth:`EventHub.run` for the server's lifetime); request bodies
    over ``max_body`` bytes are refused (413) before they are parsed."""
    app = Litestar(
        route_handlers=[
            # (first: Litestar adds its own OPTIONS only where none is registered)
            _options("/v1/workflows"),
            _options("/v1/executions"),
            _options("/v1/pauses/{workflow:str}"),
            create_workflow,
            list_workflows,
            get_workflow,
            get_workflow_version,
            submit,
            list_executions,
            get_execution,
            cancel_execution,
            retry_execution,
            cancel_many,
            retry_many,
            list_pauses,
            pause_workflow,
            unpause_workflow,
            all_events,
            execution_events,
            list_handlers,
            healthz,
            readyz,
            metrics,
            *PAGES,
        ],
        state=State(
            {"engine": engine, "tokens": tokens, "hub": hub or EventHub(), "plans": StoredPlans()}
        ),
        exception_handlers=EXCEPTION_HANDLERS,
        request_max_body_size=max_body,
        openapi_config=OpenAPIConfig(
            title="corral",
            version="1",
            render_plugins=[ApiPage(path="/"), JsonRenderPlugin(path="/openapi.json")],
        ),
        debug=False,
    )
    # Unknown fields of a submission are refused (a misspelt "input" must not
    # be dropped silently): say so in the document.
    app.openapi_schema.components.schemas["Submission"].additional_properties = False
    return app
