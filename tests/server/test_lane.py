"""The submission lane (corral.server.lane): a well-formed submission is
answered in front of Litestar, with what the route would answer; anything
else reaches the route untouched, body included; a corral error is the
route's problem document."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import trio

from corral.engine.opening import open_engine
from corral.server.app import StoredPlans, make_app
from corral.server.auth import Tokens
from corral.server.lane import SubmitLane

RUN, READ = "u" * 20, "r" * 20
SPEC = {"name": "hi", "steps": [{"id": "a", "handler": "core.echo", "params": {"value": 1}}]}


class Downstream:
    """Stands for Litestar: records what reaches it."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        self.bodies.append(body)
        await send({"type": "http.response.start", "status": 299, "headers": []})
        await send({"type": "http.response.body", "body": b""})


async def _call(
    app: Any, body: bytes | list[bytes], headers: dict[str, Any] | None = None
) -> tuple[int, dict[bytes, bytes], Any]:
    pieces = [body] if isinstance(body, bytes) else list(body)
    given = {"content-type": "application/json", **(headers or {})}
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/v1/executions",
        "raw_path": b"/v1/executions",
        "query_string": b"",
        "headers": [
            (k.encode(), v.encode())
            for k, values in given.items()
            for v in (values if isinstance(values, list) else [values])
            if v
        ],
        "http_version": "1.1",
        "scheme": "http",
        "root_path": "",
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 2),
        "asgi": {"version": "3.0"},
        "state": {},
    }

    async def receive() -> dict[str, Any]:
        if pieces:
            return {"type": "http.request", "body": pieces.pop(0), "more_body": bool(pieces)}
        await trio.sleep_forever()
        raise AssertionError

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    body_bytes = b"".join(m.get("body", b"") for m in sent[1:])
    return sent[0]["status"], dict(sent[0]["headers"]), json.loads(body_bytes or b"null")


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[Any]:
    async with open_engine(f"sqlite:///{tmp_path / 'lane.db'}") as opened:
        yield opened


async def test_a_well_formed_submission_is_taken(engine: Any) -> None:
    downstream = Downstream()
    lane = SubmitLane(downstream, engine, Tokens([("run", RUN)]), StoredPlans())
    auth = {"authorization": f"Bearer {RUN}"}
    status, headers, body = await _call(lane, json.dumps({"spec": SPEC}).encode(), auth)
    assert status == 202 and headers[b"content-type"] == b"application/json"
    assert body["status"] == "pending" and body["links"]["self"] == f"/v1/executions/{body['id']}"
    assert downstream.bodies == []
    assert (await engine.handle(body["id"]).result()) == {"a": 1}
    # an idempotency key given twice: the same execution, 200
    keyed = json.dumps({"spec": SPEC, "key": "k"}).encode()
    first, again = await _call(lane, keyed, auth), await _call(lane, keyed, auth)
    assert (first[0], again[0]) == (202, 200) and first[2]["id"] == again[2]["id"]


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        (b'{"spec": {}}', {"authorization": ""}),  # no token
        (b'{"spec": {}}', {"authorization": f"Bearer {READ}"}),  # not allowed to run
        (b'{"spec": {}}', {"authorization": "Basic abc"}),
        (b'{"spec": {}}', {"content-type": "text/plain"}),
        (b'{"spec": ', {}),  # not JSON
        (b'{"spec": {}, "imputs": {}}', {}),  # an unknown field
        (b'{"priority": "5", "workflow": "x"}', {}),  # a string for an integer
        (b"[" * 100_000 + b"]" * 100_000, {}),  # nested too deeply
        ([b'{"spec"', b": {}}"], {}),  # in two pieces
        # a header twice: the first read-only, the second allowed to run
        (b'{"spec": {}}', {"authorization": [f"Bearer {READ}", f"Bearer {RUN}"]}),
    ],
)
async def test_anything_else_reaches_the_route_untouched(
    engine: Any, body: bytes | list[bytes], headers: dict[str, Any]
) -> None:
    downstream = Downstream()
    tokens = Tokens([("run", RUN), ("read", READ)])
    lane = SubmitLane(downstream, engine, tokens, StoredPlans())
    given = {"authorization": f"Bearer {RUN}", **headers}
    status, _, _ = await _call(lane, body, given)
    assert status == 299
    assert downstream.bodies == [body if isinstance(body, bytes) else b"".join(body)]


async def test_corral_errors_are_the_routes_problem_documents(engine: Any) -> None:
    tokens = Tokens([])
    routes = make_app(engine, tokens)
    lane = SubmitLane(routes, engine, tokens, routes.state.plans)
    cases = [
        {"workflow": "nowhere"},  # no such stored workflow: 422
        {"spec": {"name": "x", "steps": [{"id": "a", "handler": "nope.x"}]}},  # 422, its path
        {"spec": SPEC, "inputs": {"unknown": 1}},  # inputs it does not declare
        {},  # neither workflow nor spec: 400
        {"workflow": "x", "spec": SPEC},
    ]
    for case in cases:
        raw = json.dumps(case).encode()
        by_lane = await _call(lane, raw)
        # the same request in two pieces is not the lane's: the route answers it
        by_route = await _call(lane, [raw[:1], raw[1:]])
        assert by_lane[0] in (400, 422)
        assert by_lane[0] == by_route[0] and by_lane[2] == by_route[2], case
        assert by_lane[1][b"content-type"] == b"application/problem+json"
