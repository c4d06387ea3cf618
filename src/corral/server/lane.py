"""The submission lane: ``POST /v1/executions``, the route a busy server
answers most, taken in front of Litestar when everything about the request
is in order.

Why: under load (200 clients, 2 cores) Litestar's per-request machinery
(routing, signature model, guard, kwargs, response object) took about a
third of the server's CPU per submission, more than the durable execution
the submission makes. The lane answers the well-formed case with the same
code the route runs (:func:`admit`) and the same bytes; it does not
re-implement anything that can go wrong: a request it does not take as it
is (no or another token, another content type, a body in several pieces,
one that does not decode into a :class:`~corral.server.bodies.Submission`)
is handed to Litestar's route unchanged, body included, and answered there
(401, 403, 400 with the field's path ...). A corral error raised while
admitting (unknown workflow, bad inputs, overloaded) is answered here, with
:func:`~corral.server.problems.corral_problem`, the document the route's
error handler gives: admitting is never tried twice.
"""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
from typing import Any

import msgspec

from corral.core.errors import CorralError, UsageError
from corral.core.status import PENDING
from corral.server import bodies
from corral.server.auth import Tokens
from corral.server.bodies import Accepted, Submission
from corral.server.httpserver import ASGIApp, Message, Receive, Send
from corral.server.problems import PROBLEM, corral_problem, document, problem_headers

__all__ = ["MAX_BODY_BYTES", "PATH", "SubmitLane", "admit"]

log = logging.getLogger("corral.server")

#: The route the lane takes.
PATH = "/v1/executions"

#: Request bodies larger than this are refused (413) by default (``corral
#: serve --max-body``).
MAX_BODY_BYTES = 1 << 20


_JSON = b"application/json"
_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(Submission)


async def admit(engine: Any, plans: Any, data: Submission) -> tuple[Accepted, int]:
    """Admit the execution ``data`` asks for: its answer and status (202; 200
    for the execution its idempotency key already names). The route and the
    lane both run this."""
    if (data.workflow is None) == (data.spec is None):
        raise UsageError("give either `workflow` (a stored name) or `spec` (an inline spec)")
    if data.spec is not None:
        from corral.workflow.loader import parse_spec

        target: Any = parse_spec(data.spec, file="<body>")
    else:
        target = await plans.get(engine, str(data.workflow))
    if data.key is not None:
        existing = await engine.store.find_by_key(data.key)
        if existing is not None:
            links = bodies.links(existing.id)
            return Accepted(id=existing.id, status=existing.status, links=links), 200
    handle = await engine.submit(target, data.inputs, key=data.key, priority=data.priority)
    # (admitted: queued, or already started; GET its link for more)
    return Accepted(id=handle.id, status=PENDING, links=bodies.links(handle.id)), 202


class SubmitLane:
    """An ASGI app in front of ``app`` (the Litestar one) taking well-formed
    submissions (see the module's docstring). ``engine``, ``tokens``,
    ``plans``: the app's (its state); ``max_body``: the app's limit (a body
    over it is the app's to refuse)."""

    def __init__(
        self,
        app: ASGIApp,
        engine: Any,
        tokens: Tokens,
        plans: Any,
        *,
        max_body: int = MAX_BODY_BYTES,
    ) -> None:
        self.app = app
        self.max_body = max_body
        self.engine = engine
        self.tokens = tokens
        self.plans = plans

    async def __call__(self, scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != PATH or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        first = await receive()
        data = self._taken(scope, first)
        if data is None:
            await self.app(scope, _Replay(first, receive), send)
            return
        try:
            answer, status = await admit(self.engine, self.plans, data)
        except CorralError as exc:
            body = corral_problem(exc)
            await _answer(send, body["status"], _encoder.encode(body), PROBLEM)
            return
        except Exception:
            log.exception("internal error answering POST %s", PATH)
            body = document(500, "the server failed to answer this request; its log says why")
            await _answer(send, 500, _encoder.encode(body), PROBLEM)
            return
        await _answer(send, status, _encoder.encode(answer), "application/json")

    def _taken(self, scope: MutableMapping[str, Any], first: Message) -> Submission | None:
        """The submission, when the lane takes the request as it is."""
        if first["type"] != "http.request" or first.get("more_body", False):
            return None
        body = first.get("body", b"")
        if len(body) > self.max_body:
            return None
        authorization: bytes | None = None
        kind: bytes | None = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                if authorization is not None:
                    return None  # (said twice: the route decides what that means)
                authorization = value
            elif name == b"content-type":
                if kind is not None:
                    return None
                kind = value.partition(b";")[0].strip().lower()
        if kind not in (None, _JSON) or not self._may_run(authorization or b""):
            return None
        try:
            return _decoder.decode(body)
        except (msgspec.DecodeError, RecursionError):  # (ValidationError is a DecodeError)
            return None

    def _may_run(self, authorization: bytes) -> bool:
        if not self.tokens:
            return True  # no token configured: everything is allowed
        kind, _, token = authorization.partition(b" ")
        if kind.lower() != b"bearer" or not token.strip():
            return False
        scopes = self.tokens.scopes(token.strip().decode("latin-1"))  # (as Litestar reads it)
        return scopes is not None and "run" in scopes


class _Replay:
    """``receive`` for Litestar after the lane read the first message."""

    __slots__ = ("first", "receive")

    def __init__(self, first: Message, receive: Receive) -> None:
        self.first: Message | None = first
        self.receive = receive

    async def __call__(self) -> Message:
        first, self.first = self.first, None
        return first if first is not None else await self.receive()


async def _answer(send: Send, status: int, body: bytes, media_type: str) -> None:
    headers = [
        (b"content-type", media_type.encode()),
        (b"content-length", str(len(body)).encode()),
    ]
    headers += [(k.lower().encode(), v.encode()) for k, v in problem_headers(status).items()]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
