"""``corral serve``'s HTTP API (issue 16, a first part): workflows and
executions over HTTP, versioned under ``/v1``, on Litestar served by
Hypercorn's Trio worker, in the same Trio run as the engine.

Bodies are msgspec Structs (Litestar validates them); every error is an RFC
9457 ``application/problem+json`` document, never a traceback (see
:mod:`.problems`); bearer tokens with scopes guard every route but the
health checks (:mod:`.auth`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

import msgspec
from litestar import Litestar, MediaType, Request, Response, get, post
from litestar.datastructures import State
from litestar.exceptions import NotFoundException
from litestar.openapi import OpenAPIConfig
from litestar.params import FromPath, FromQuery, JSONBody
from litestar.response import ServerSentEvent, ServerSentEventMessage

from corral.errors import SpecError, UsageError
from corral.server import bodies
from corral.server.auth import Guard, Tokens
from corral.server.bodies import (
    Accepted,
    Definition,
    ExecutionPage,
    ExecutionView,
    Submission,
    WorkflowSummary,
    WorkflowVersions,
)
from corral.server.events import EventHub
from corral.server.problems import EXCEPTION_HANDLERS

__all__ = ["MAX_BODY_BYTES", "make_app"]

#: Request bodies larger than this are refused (413) before they are parsed.
MAX_BODY_BYTES = 1 << 20

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


@post("/v1/workflows", status_code=201, guards=[Guard("admin")])
async def create_workflow(request: Request[Any, Any, Any], state: State) -> Definition:
    """Store a versioned workflow definition: a JSON spec, or YAML/TOML text
    with its content type."""
    from corral.loader import parse_spec, parse_text

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
    return bodies.definition(stored)


@get("/v1/workflows", guards=[Guard("read")])
async def list_workflows(state: State) -> list[WorkflowSummary]:
    """Every stored workflow by name: its newest version and how many it has."""
    summaries: dict[str, WorkflowSummary] = {}
    for stored in await _engine(state).store.list_definitions():
        if stored.name in summaries:
            summaries[stored.name].versions += 1
        else:
            summaries[stored.name] = WorkflowSummary(stored.name, bodies.definition(stored), 1)
    return list(summaries.values())


@get("/v1/workflows/{name:str}", guards=[Guard("read")])
async def get_workflow(name: FromPath[str], state: State) -> WorkflowVersions:
    """Every stored version of a workflow, newest first."""
    found = await _engine(state).store.list_definitions(name)
    if not found:
        raise NotFoundException(f"no stored workflow {name!r}")
    return WorkflowVersions(name, [bodies.definition(d) for d in found])


@get("/v1/workflows/{name:str}/versions/{version:str}", guards=[Guard("read")])
async def get_workflow_version(
    name: FromPath[str], version: FromPath[str], state: State
) -> Definition:
    """One stored version of a workflow, with its spec."""
    stored = await _engine(state).store.get_definition(name, version)
    if stored is None:
        raise NotFoundException(f"no stored workflow {name!r} version {version!r}")
    return bodies.definition(stored, with_spec=True)


@post("/v1/executions", guards=[Guard("run")])
async def submit(data: JSONBody[Submission], state: State) -> Response[Accepted]:
    """Admit an execution (202), or return the one its idempotency key names (200)."""
    engine = _engine(state)
    if (data.workflow is None) == (data.spec is None):
        raise UsageError("give either `workflow` (a stored name) or `spec` (an inline spec)")
    if data.spec is not None:
        from corral.loader import parse_spec

        target: Any = parse_spec(data.spec, file="<body>")
    else:
        target = await _stored_plan(engine, str(data.workflow))
    existed = False
    if data.key is not None:
        existed = await engine.store.find_by_key(data.key) is not None
    handle = await engine.submit(target, data.inputs, key=data.key, priority=data.priority)
    record = await engine.get(handle.id)
    body = Accepted(id=handle.id, status=record.status, links=bodies.links(handle.id))
    return Response(body, status_code=200 if existed else 202)


async def _stored_plan(engine: Any, ref: str) -> Any:
    name, _, version = ref.partition("@")
    stored = await engine.store.get_definition(name, version or None)
    if stored is None:
        raise SpecError(f"no stored workflow {ref!r} (POST /v1/workflows first)", path="$.workflow")
    from corral.model import WorkflowSpec

    return msgspec.json.decode(stored.spec, type=WorkflowSpec)


@get("/v1/executions", guards=[Guard("read")])
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
    before = None if cursor is None else bodies.decode_cursor(cursor)
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


@get("/v1/executions/{execution_id:str}", guards=[Guard("read")])
async def get_execution(execution_id: FromPath[str], state: State) -> ExecutionView:
    """One execution with its steps (status, attempts, durations, errors, output)."""
    return bodies.execution_view(await _engine(state).get(execution_id))


@post("/v1/executions/{execution_id:str}/cancel", status_code=200, guards=[Guard("run")])
async def cancel_execution(execution_id: FromPath[str], state: State) -> ExecutionView:
    """Cancel an execution (it ends ``cancelled``; a finished one is left as it is)."""
    return bodies.execution_view(await _engine(state).cancel(execution_id))


def _last_event_id(request: Request[Any, Any, Any]) -> int | None:
    raw = request.headers.get("last-event-id")
    if raw is None or raw == "":
        return None
    if not raw.isdigit():
        raise UsageError(f"Last-Event-ID {raw[:40]!r}: expected the id of an event (a number)")
    return int(raw)


def _sse(hub: EventHub, execution_id: str | None, last_id: int | None) -> ServerSentEvent:
    async def messages() -> AsyncIterator[ServerSentEventMessage]:
        async for number, name, data in hub.stream(execution_id, last_id):
            yield ServerSentEventMessage(
                data=msgspec.json.encode(data).decode(), event=name, id=number
            )
            finished = name == "workflow.finished" and data.get("execution_id") == execution_id
            if execution_id is not None and finished:
                return  # the execution's stream ends with it

    return ServerSentEvent(messages())


@get("/v1/events", guards=[Guard("read")])
async def all_events(request: Request[Any, Any, Any], state: State) -> ServerSentEvent:
    """Server-Sent Events of every execution's lifecycle events (``Last-Event-ID`` resumes)."""
    return _sse(state.hub, None, _last_event_id(request))


@get("/v1/executions/{execution_id:str}/events", guards=[Guard("read")])
async def execution_events(
    execution_id: FromPath[str], request: Request[Any, Any, Any], state: State
) -> ServerSentEvent:
    """Server-Sent Events of one execution, until it finishes (``Last-Event-ID`` resumes)."""
    await _engine(state).get(execution_id)  # 404 for an unknown one
    return _sse(state.hub, execution_id, _last_event_id(request))


@get("/v1/handlers", guards=[Guard("read")])
async def list_handlers(state: State) -> list[dict[str, Any]]:
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
            {
                "name": name,
                "version": info.version,
                "kind": info.kind,
                "plugin": info.plugin,
                "description": info.description,
                "params_schema": schema,
            }
        )
    return out


@get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is alive."""
    return {"status": "ok"}


@get("/readyz")
async def readyz(state: State) -> Response[dict[str, str]]:
    """The store answers (503 when it does not)."""
    try:
        await _engine(state).store.list_executions(limit=1)
    except Exception as exc:  # any store failure: not ready
        return Response({"status": "unavailable", "detail": type(exc).__name__}, status_code=503)
    return Response({"status": "ok"})


@get("/metrics", media_type=MediaType.TEXT, guards=[Guard("read")])
async def metrics(state: State) -> str:
    """Prometheus text exposition of the engine's metrics."""
    text: str = _engine(state).prometheus_metrics()
    return text


def make_app(engine: Any, tokens: Tokens, hub: EventHub | None = None) -> Litestar:
    """The Litestar application around an open engine (``hub``: its events,
    fed by :meth:`EventHub.run` for the server's lifetime)."""
    return Litestar(
        route_handlers=[
            create_workflow,
            list_workflows,
            get_workflow,
            get_workflow_version,
            submit,
            list_executions,
            get_execution,
            cancel_execution,
            all_events,
            execution_events,
            list_handlers,
            healthz,
            readyz,
            metrics,
        ],
        state=State({"engine": engine, "tokens": tokens, "hub": hub or EventHub()}),
        exception_handlers=EXCEPTION_HANDLERS,
        request_max_body_size=MAX_BODY_BYTES,
        openapi_config=OpenAPIConfig(title="corral", version="1"),
        debug=False,
    )
