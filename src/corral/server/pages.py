"""The status page: recent executions at ``/`` (filterable by status) and a
page per execution at ``/executions/{id}`` with its steps as a table and its
step graph. Rendered on the server from the engine's records, then kept up to
date in the browser from the Server-Sent Events stream (no reload, no build
step, no CDN). With tokens configured, a browser signs in at ``/login``: its
HttpOnly, SameSite=Strict cookie holds a session value derived from the token
(:meth:`corral.server.auth.Tokens.session`), never the token, and grants
*read* only (see :class:`corral.server.auth.Guard`)."""

from __future__ import annotations

import html
import time
from typing import Any, get_args
from urllib.parse import quote

import msgspec
from litestar import MediaType, Request, Response, get, post
from litestar.datastructures import Cookie, State
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect

from corral.core.errors import ExecutionNotFound, SpecError, UsageError
from corral.core.model import Event, ExecutionRecord, StepRecord
from corral.core.status import EXECUTION_STATUSES, PENDING, TERMINAL_EXECUTION
from corral.server.auth import COOKIE, presented_scopes
from corral.server.page_assets import CSP, EXECUTION_SCRIPT, LIST_SCRIPT, PAGE_CSS

__all__ = ["PAGES"]

#: Rows on the list page.
LIMIT = 100
#: Steps beyond which the execution page shows no graph (only the table).
GRAPH_MAX_STEPS = 200
_EVENTS = [t.__struct_config__.tag for t in get_args(Event)] + ["gap", "snapshot"]

_e = html.escape


def _page(
    title: str, body: str, script: str = "", cfg: dict[str, Any] | None = None
) -> Response[str]:
    data = msgspec.json.encode(cfg or {}).decode().replace("</", "<\\/")
    doc = (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)} · corral</title><style>{PAGE_CSS}</style></head><body>"
        '<header><h1><a href="/">corral</a></h1><span>'
        f"{_e(title)}</span><span class=live id=live></span></header><main>{body}</main>"
        f'<script type="application/json" id=cfg>{data}</script>'
        + (f"<script>{script}</script>" if script else "")
        + "</body></html>"
    )
    headers = {"Content-Security-Policy": CSP, "Cache-Control": "no-store"}
    return Response(doc, media_type=MediaType.HTML, headers=headers)


def _allowed(request: Request[Any, Any, Any]) -> bool:
    scopes = presented_scopes(request, allow_cookie=True)
    return scopes is None or "read" in scopes


def _to_login(request: Request[Any, Any, Any]) -> Response[Any]:
    return Redirect(f"/login?next={quote(request.url.path)}")


def _when(t: float | None) -> str:
    return "" if not t else time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t))


def _seconds(start: float | None, end: float | None) -> str:
    if start is None or end is None:
        return ""
    d = end - start
    return f"{d:.2f} s" if d < 10 else f"{d:.1f} s"


def _badge(status: str) -> str:
    return f'<span class="status st-{_e(status)}">{_e(status)}</span>'


def _row(r: ExecutionRecord) -> str:
    return (
        f'<tr id="x-{_e(r.id)}" data-status="{_e(r.status)}">'
        f'<td><a class=mono href="/executions/{quote(r.id)}">{_e(r.id)}</a></td>'
        f"<td>{_e(r.workflow)}</td><td>{_badge(r.status)}</td>"
        f"<td>{_when(r.created_at)}</td>"
        f"<td class=num>{_seconds(r.started_at, r.finished_at)}</td></tr>"
    )


@get("/", include_in_schema=False)
async def index(
    request: Request[Any, Any, Any], state: State, status: FromQuery[str | None] = None
) -> Response[Any]:
    """Recent executions, newest first; ``?status=`` keeps one status."""
    if not _allowed(request):
        return _to_login(request)
    if status is not None and status not in EXECUTION_STATUSES:
        raise UsageError(f"unknown status {status!r}; one of {', '.join(EXECUTION_STATUSES)}")
    last = state.hub.last_id
    records = await state.engine.list(status=status, limit=LIMIT)
    filters = "".join(
        f'<a href="{"/" if s is None else "/?status=" + s}"'
        f"{' class=on' if s == status else ''}>{s or 'all'}</a>"
        for s in (None, *EXECUTION_STATUSES)
    )
    rows = "".join(_row(r) for r in records)
    empty = "" if records else "<p class=empty id=empty>No executions yet.</p>"
    body = (
        f"<nav class=filters>{filters}</nav>"
        "<table id=executions><thead><tr><th>id</th><th>workflow</th><th>status</th>"
        f"<th>created (UTC)</th><th>duration</th></tr></thead><tbody>{rows}</tbody></table>"
        f"{empty}"
    )
    cfg = {"filter": status, "limit": LIMIT, "last_event_id": last, "events": _EVENTS}
    return _page("executions" if status is None else f"{status} executions", body, LIST_SCRIPT, cfg)


def _output(step: StepRecord) -> str:
    if step.error is not None:
        return f'<td class="out error">{_e(step.error.type)}: {_e(step.error.message)}</td>'
    if step.output is None:
        return "<td class='out mono'></td>"
    text = msgspec.json.encode(step.output).decode()
    return f"<td class='out mono'>{_e(text[:200])}</td>"


def step_graph(steps: list[tuple[str, list[str]]], status: dict[str, str]) -> str:
    """An SVG of the steps (``(id, the ids it needs)``, in order) in layers:
    each step one column right of the last step it needs."""
    depth: dict[str, int] = {}
    for step_id, needs in steps:
        depth[step_id] = 1 + max((depth[n] for n in needs if n in depth), default=-1)
    rows: dict[int, int] = {}
    where: dict[str, tuple[float, float]] = {}
    w, h, gap_x, gap_y, pad = 150.0, 28.0, 60.0, 14.0, 12.0
    for step_id, _needs in steps:
        col = depth[step_id]
        row = rows.get(col, 0)
        rows[col] = row + 1
        where[step_id] = (pad + col * (w + gap_x), pad + row * (h + gap_y))
    width = pad * 2 + (max(depth.values(), default=0) + 1) * (w + gap_x) - gap_x
    height = pad * 2 + max(rows.values(), default=1) * (h + gap_y) - gap_y
    edges = []
    for step_id, needs in steps:
        x2, y2 = where[step_id]
        for n in needs:
            x1, y1 = where[n]
            a, b, c = x1 + w, y1 + h / 2, y2 + h / 2
            mid = (a + x2) / 2
            edges.append(
                f'<path d="M{a:.0f},{b:.0f} C{mid:.0f},{b:.0f} '
                f'{mid:.0f},{c:.0f} {x2:.0f},{c:.0f}"/>'
            )
    nodes = []
    for step_id, _needs in steps:
        x, y = where[step_id]
        label = step_id if len(step_id) <= 20 else step_id[:19] + "…"
        nodes.append(
            f'<g id="n-{_e(step_id)}" class="node st-{_e(status.get(step_id, PENDING))}">'
            f"<title>{_e(step_id)}</title>"
            f'<rect x="{x:.0f}" y="{y:.0f}" width="{w:.0f}" height="{h:.0f}" rx="5"/>'
            f'<text x="{x + 8:.0f}" y="{y + h / 2 + 4:.0f}">{_e(label)}</text></g>'
        )
    return (
        f'<svg class=graph xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" '
        f'height="{height:.0f}" viewBox="0 0 {width:.0f} {height:.0f}" role="img" '
        f'aria-label="step graph">{"".join(edges)}{"".join(nodes)}</svg>'
    )


async def _graph(engine: Any, record: ExecutionRecord) -> str:
    """The execution's step graph from its stored definition ('' when there is none)."""
    if record.definition is None:
        return ""
    stored = await engine.store.get_definition_by_digest(record.definition)
    if stored is None:
        return ""
    from corral.core.model import WorkflowSpec
    from corral.workflow.compiler import compile_spec

    try:
        plan = compile_spec(msgspec.json.decode(stored.spec, type=WorkflowSpec))
    except (SpecError, msgspec.DecodeError):
        return ""
    if len(plan.steps) > GRAPH_MAX_STEPS:
        return f"<p class=empty>{len(plan.steps)} steps: too many to draw; see the table.</p>"
    steps = [(sp.id, [plan.steps[i].id for i in sp.needs]) for sp in plan.steps]
    return step_graph(steps, {s.step_id: s.status for s in record.steps})


@get("/executions/{execution_id:str}", include_in_schema=False)
async def execution_page(
    request: Request[Any, Any, Any], state: State, execution_id: FromPath[str]
) -> Response[Any]:
    """One execution: what it is, its steps as a table, its step graph."""
    if not _allowed(request):
        return _to_login(request)
    last = state.hub.last_id
    try:
        record: ExecutionRecord = await state.engine.get(execution_id)
    except ExecutionNotFound:
        raise NotFoundException(f"no execution {execution_id!r}") from None
    steps = "".join(
        f'<tr id="s-{_e(s.step_id)}" data-status="{_e(s.status)}">'
        f"<td class=mono>{_e(s.step_id)}</td>"
        f"<td>{_badge(s.status)}</td><td class=num>{s.attempts}</td>"
        f"<td class=num>{_seconds(s.started_at, s.finished_at)}</td>{_output(s)}</tr>"
        for s in record.steps
    )
    error = "" if record.error is None else f"{record.error.type}: {record.error.message}"
    graph = await _graph(state.engine, record)
    body = (
        "<dl class=meta>"
        f"<dt>id</dt><dd class=mono>{_e(record.id)}</dd>"
        f"<dt>workflow</dt><dd>{_e(record.workflow)} (version {_e(str(record.version))})</dd>"
        f"<dt>status</dt><dd id=status>{_badge(record.status)}</dd>"
        f"<dt>created</dt><dd>{_when(record.created_at)} UTC</dd>"
        f"<dt>duration</dt><dd id=duration>{_seconds(record.started_at, record.finished_at)}</dd>"
        f"<dt>error</dt><dd id=error class=error>{_e(error)}</dd>"
        "</dl><h2>Steps</h2><table id=steps><thead><tr><th>step</th><th>status</th>"
        f"<th>attempts</th><th>duration</th><th>output or error</th></tr></thead>"
        f"<tbody>{steps}</tbody></table>" + (f"<h2>Graph</h2>{graph}" if graph else "")
    )
    cfg = {
        "id": record.id,
        "status": record.status,
        "terminal": sorted(TERMINAL_EXECUTION),
        "last_event_id": last,
        "events": _EVENTS,
    }
    return _page(f"execution {record.id}", body, EXECUTION_SCRIPT, cfg)


_LOGIN = (
    "<p>This server needs a token to show its executions (any scope; the page only reads).</p>"
    '<form class=login method=post action="/login"><input type=hidden name=next value="{next}">'
    '<input type=password name=token placeholder="token" autocomplete=current-password required>'
    "<button>Sign in</button></form>{error}"
)


def _safe_next(target: str | None) -> str:
    # Only a path on this server (no //host, no scheme): never an open redirect.
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


@get("/login", include_in_schema=False)
async def login_form(next: FromQuery[str | None] = None) -> Response[str]:
    return _page("sign in", _LOGIN.format(next=_e(_safe_next(next)), error=""))


@post("/login", include_in_schema=False, status_code=303)
async def login(request: Request[Any, Any, Any]) -> Response[Any]:
    """Check a token and keep it in a read-only cookie for the pages."""
    form = await request.form()
    token = str(form.get("token") or "").strip()
    target = _safe_next(str(form.get("next") or "/"))
    if not token or request.app.state.tokens.scopes(token) is None:
        body = _LOGIN.format(next=_e(target), error="<p class=error>Unknown token.</p>")
        page = _page("sign in", body)
        page.status_code = 401
        return page
    cookie = Cookie(
        key=COOKIE,
        value=request.app.state.tokens.session(token),  # never the token itself
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
        max_age=12 * 3600,
    )
    return Redirect(target, status_code=303, cookies=[cookie])


PAGES = [index, execution_page, login_form, login]
