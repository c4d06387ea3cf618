"""``corral serve`` for real: the server on 127.0.0.1 (a free port) with a
real SQLite store, talked to with httpx: every endpoint of this first part,
errors as problem documents, idempotency, auth scopes, the body limit."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from corral.server.auth import load_tokens

SPEC = {"name": "hi", "steps": [{"id": "a", "handler": "core.echo", "params": {"value": 42}}]}


async def _finished(client: httpx.AsyncClient, url: str, execution: str) -> dict[str, Any]:
    with trio.fail_after(30):
        while True:
            got = (await client.get(f"{url}/v1/executions/{execution}")).json()
            if got["status"] in ("succeeded", "failed", "cancelled", "timed_out"):
                return got  # type: ignore[no-any-return]
            await trio.sleep(0.02)


async def test_submit_get_list_and_idempotency(url: str) -> None:
    async with httpx.AsyncClient() as client:
        r = await client.post(f"{url}/v1/executions", json={"spec": SPEC})
        assert r.status_code == 202
        accepted = r.json()
        assert accepted["links"]["self"] == f"/v1/executions/{accepted['id']}"
        done = await _finished(client, url, accepted["id"])
        assert done["status"] == "succeeded" and done["result"] == {"a": 42}
        assert [s["step_id"] for s in done["steps"]] == ["a"]
        first = await client.post(f"{url}/v1/executions", json={"spec": SPEC, "key": "k"})
        again = await client.post(f"{url}/v1/executions", json={"spec": SPEC, "key": "k"})
        assert (first.status_code, again.status_code) == (202, 200)
        assert first.json()["id"] == again.json()["id"]
        listed = (await client.get(f"{url}/v1/executions", params={"limit": 5})).json()
        assert {e["id"] for e in listed["executions"]} == {accepted["id"], first.json()["id"]}
        assert listed["next"] is None
        assert done["steps"][0]["duration"] >= 0 and done["duration"] >= 0


async def test_cursor_pagination(url: str) -> None:
    async with httpx.AsyncClient() as client:
        ids = [
            (await client.post(f"{url}/v1/executions", json={"spec": SPEC})).json()["id"]
            for _ in range(7)
        ]
        for execution in ids:
            await _finished(client, url, execution)
        seen: list[str] = []
        params: dict[str, Any] = {"limit": 3, "status": "succeeded"}
        pages = 0
        while True:
            r = await client.get(f"{url}/v1/executions", params=params)
            page = r.json()
            seen += [e["id"] for e in page["executions"]]
            pages += 1
            if page["next"] is None:
                assert "link" not in r.headers
                break
            assert 'rel="next"' in r.headers["link"] and "status=succeeded" in r.headers["link"]
            params["cursor"] = page["next"]
            # an execution added meanwhile is not seen by the pages after the first
            await client.post(f"{url}/v1/executions", json={"spec": SPEC})
        assert pages == 3 and sorted(seen) == sorted(ids) and len(set(seen)) == 7
        bad = await client.get(f"{url}/v1/executions", params={"cursor": "not-a-cursor"})
        assert bad.status_code == 400 and "cursor" in bad.json()["detail"]
        assert (await client.get(f"{url}/v1/executions", params={"limit": 0})).status_code == 400


async def test_stored_workflows_by_name_and_version(url: str) -> None:
    text = "name: hello\nversion: 2\nsteps:\n  - {id: a, handler: core.echo, params: {value: hi}}\n"
    async with httpx.AsyncClient() as client:
        r = await client.post(
            f"{url}/v1/workflows", content=text, headers={"content-type": "application/yaml"}
        )
        assert r.status_code == 201 and r.json()["name"] == "hello" and r.json()["version"] == "2"
        changed = text.replace("value: hi", "value: bye")
        conflict = await client.post(
            f"{url}/v1/workflows", content=changed, headers={"content-type": "application/yaml"}
        )
        assert conflict.status_code == 409
        assert conflict.headers["content-type"].startswith("application/problem+json")
        newer = await client.post(
            f"{url}/v1/workflows",
            content=changed.replace("version: 2", "version: 3"),
            headers={"content-type": "application/yaml"},
        )
        assert newer.status_code == 201
        listed = (await client.get(f"{url}/v1/workflows")).json()
        assert [(w["name"], w["latest"]["version"], w["versions"]) for w in listed] == [
            ("hello", "3", 2)
        ]
        versions = (await client.get(f"{url}/v1/workflows/hello")).json()["versions"]
        assert [v["version"] for v in versions] == ["3", "2"]
        assert versions[1]["digest"] == r.json()["digest"] and "spec" not in versions[1]
        one = (await client.get(f"{url}/v1/workflows/hello/versions/2")).json()
        assert one["spec"]["steps"][0]["params"] == {"value": "hi"}
        assert (await client.get(f"{url}/v1/workflows/nope")).status_code == 404
        assert (await client.get(f"{url}/v1/workflows/hello/versions/9")).status_code == 404
        sub = await client.post(f"{url}/v1/executions", json={"workflow": "hello@2"})
        assert (await _finished(client, url, sub.json()["id"]))["result"] == {"a": "hi"}


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        ({"workflow": 3}, 400, "$.workflow"),
        ({"spec": SPEC, "surprise": 1}, 400, "surprise"),
        ({"workflow": "hi", "spec": SPEC}, 400, "either `workflow`"),
        ({"workflow": "not-stored"}, 422, "no stored workflow"),
        ({"spec": {"name": "x", "steps": [{"id": "a", "handler": "nope.x"}]}}, 422, "nope.x"),
    ],
)
async def test_bad_bodies_are_problem_documents(
    url: str, body: dict[str, Any], status: int, fragment: str
) -> None:
    async with httpx.AsyncClient() as client:
        r = await client.post(f"{url}/v1/executions", json=body)
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    problem = r.json()
    assert problem["status"] == status and fragment in r.text
    assert "Traceback" not in r.text and "/src/corral" not in r.text


async def test_raw_garbage_too_big_and_unknown(url: str) -> None:
    async with httpx.AsyncClient() as client:
        bad_json = await client.post(
            f"{url}/v1/executions",
            content=b"{not json",
            headers={"content-type": "application/json"},
        )
        assert bad_json.status_code == 400
        huge = await client.post(
            f"{url}/v1/executions",
            content=b"x" * (2 << 20),
            headers={"content-type": "application/json"},
        )
        assert huge.status_code == 413
        assert (await client.get(f"{url}/v1/executions/..%2F..%2Fetc%2Fpasswd")).status_code == 404
        assert (await client.post(f"{url}/v1/executions/nope/cancel")).status_code == 404
        wrong_type = await client.post(
            f"{url}/v1/workflows", content=b"x", headers={"content-type": "text/plain"}
        )
        assert wrong_type.status_code == 400 and "content type" in wrong_type.text


async def test_the_body_limit_is_configurable(servers: Any, tmp_path: Path) -> None:
    from corral.server.auth import Tokens

    async with servers(tmp_path, Tokens([]), max_body=1000) as url, httpx.AsyncClient() as client:
        small = {"spec": SPEC}
        assert (await client.post(f"{url}/v1/executions", json=small)).status_code == 202
        padded = {"spec": SPEC, "inputs": {}, "key": "k" * 1200}
        for path in ("/v1/executions", "/v1/workflows"):
            refused = await client.post(f"{url}{path}", json=padded)
            assert refused.status_code == 413, path
            assert refused.headers["content-type"] == "application/problem+json"


async def test_hostile_bodies(url: str) -> None:
    async with httpx.AsyncClient(timeout=60) as client:
        # 50 MB: refused from its Content-Length, before it is read
        try:
            huge = await client.post(
                f"{url}/v1/executions",
                content=b"{" + b" " * (50 << 20) + b"}",
                headers={"content-type": "application/json"},
            )
        except (httpx.WriteError, httpx.RemoteProtocolError):
            pass  # the server answered and closed while the body was still going out
        else:
            assert huge.status_code == 413
        deep = "[" * 10_000 + "]" * 10_000
        nested = await client.post(
            f"{url}/v1/executions",
            content=f'{{"spec": {json.dumps(SPEC)}, "inputs": {{"x": {deep}}}}}',
            headers={"content-type": "application/json"},
        )
        assert nested.status_code in (400, 422), nested.text
        nested_spec = await client.post(
            f"{url}/v1/workflows", content=deep, headers={"content-type": "application/json"}
        )
        assert nested_spec.status_code in (400, 422), nested_spec.text
        laughs = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
        for i, name in enumerate("bcdefghi"):
            prev = "abcdefghi"[i]
            laughs.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
        bomb = "name: bomb\nsteps: []\n" + "\n".join(laughs) + "\n"
        r = await client.post(
            f"{url}/v1/workflows", content=bomb, headers={"content-type": "application/yaml"}
        )
        assert r.status_code == 422 and "alias" in r.text, r.text
        spec = {
            "name": "needs",
            "inputs": {"who": {"type": "string"}},
            "steps": [{"id": "a", "handler": "core.echo", "params": {"value": "${inputs.who}"}}],
        }
        missing = await client.post(f"{url}/v1/executions", json={"spec": spec})
        assert missing.status_code == 422 and "who" in missing.text
        assert missing.json()["kind"] == "inputs"
        for r in (nested, nested_spec, missing):
            assert r.headers["content-type"].startswith("application/problem+json")
            assert "Traceback" not in r.text


async def test_overloaded_is_503_with_retry_after(crowded: str) -> None:
    url = crowded
    slow = {
        "name": "slow",
        "steps": [{"id": "s", "handler": "core.sleep", "params": {"seconds": 30}}],
    }
    async with httpx.AsyncClient() as client:
        first = await client.post(f"{url}/v1/executions", json={"spec": slow})
        assert first.status_code == 202
        refused = await client.post(f"{url}/v1/executions", json={"spec": slow})
        assert refused.status_code == 503, refused.text
        assert refused.headers["retry-after"] == "1"
        assert refused.headers["content-type"].startswith("application/problem+json")
        await client.post(f"{url}/v1/executions/{first.json()['id']}/cancel")


async def test_cancel_handlers_health_metrics_openapi(url: str) -> None:
    slow = {
        "name": "slow",
        "steps": [{"id": "s", "handler": "core.sleep", "params": {"seconds": 30}}],
    }
    async with httpx.AsyncClient() as client:
        sub = (await client.post(f"{url}/v1/executions", json={"spec": slow})).json()
        cancelled = await client.post(f"{url}{sub['links']['cancel']}")
        assert cancelled.status_code == 200
        assert (await _finished(client, url, sub["id"]))["status"] == "cancelled"
        handlers = (await client.get(f"{url}/v1/handlers")).json()
        echo = next(h for h in handlers if h["name"] == "core.echo")
        assert echo["plugin"] == "builtin:core" and echo["params_schema"] is not None
        assert (await client.get(f"{url}/healthz")).json() == {"status": "ok"}
        assert (await client.get(f"{url}/readyz")).status_code == 200
        assert "corral_" in (await client.get(f"{url}/metrics")).text
        doc = (await client.get(f"{url}/schema/openapi.json")).json()
        assert "/v1/executions" in doc["paths"] and "/v1/workflows" in doc["paths"]


async def test_tokens_and_scopes(secured: str, scope_tokens: dict[str, str]) -> None:
    READ, RUN, ADMIN = (scope_tokens[s] for s in ("read", "run", "admin"))
    url = secured

    def auth(token: str) -> dict[str, str]:
        return {"authorization": f"Bearer {token}"}

    async with httpx.AsyncClient() as client:
        assert (await client.get(f"{url}/healthz")).status_code == 200  # always open
        assert (await client.get(f"{url}/v1/executions")).status_code == 401
        assert (await client.get(f"{url}/v1/executions", headers=auth("x" * 20))).status_code == 401
        assert (await client.get(f"{url}/v1/executions", headers=auth(READ))).status_code == 200
        denied = await client.post(f"{url}/v1/executions", json={"spec": SPEC}, headers=auth(READ))
        assert denied.status_code == 403 and READ not in denied.text
        ok = await client.post(f"{url}/v1/executions", json={"spec": SPEC}, headers=auth(RUN))
        assert ok.status_code == 202
        yaml = "name: w\nsteps:\n  - {id: a, handler: core.noop}\n"
        headers = {**auth(RUN), "content-type": "application/yaml"}
        assert (
            await client.post(f"{url}/v1/workflows", content=yaml, headers=headers)
        ).status_code == 403
        headers = {**auth(ADMIN), "content-type": "application/yaml"}
        assert (
            await client.post(f"{url}/v1/workflows", content=yaml, headers=headers)
        ).status_code == 201


def test_tokens_from_a_file_and_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    READ, RUN, ADMIN = "r" * 16, "u" * 16, "a" * 16
    path.write_text(f"# comment\nread:{READ}\n")
    tokens = load_tokens(str(path), {"CORRAL_API_TOKENS": f"admin:{ADMIN}"})
    assert tokens.scopes(READ) == {"read"} and tokens.scopes(ADMIN) == {"read", "run", "admin"}
    assert tokens.scopes(RUN) is None
    path.write_text("write:short\n")
    with pytest.raises(Exception, match=r"tokens:1: expected SCOPE:TOKEN") as info:
        load_tokens(str(path), {})
    assert "short" not in str(info.value)


def test_no_token_means_loopback_only(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "corral", "serve", "--host", "0.0.0.0", "--store", "memory://"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "listens on loopback only" in done.stderr and "Traceback" not in done.stderr


async def _sse(
    client: httpx.AsyncClient, url: str, until: str, headers: dict[str, str] | None = None
) -> list[tuple[int | None, str, dict[str, Any]]]:
    """Read an SSE stream until an event named ``until`` (or its end)."""
    import json

    out: list[tuple[int | None, str, dict[str, Any]]] = []
    async with client.stream("GET", url, headers=headers or {}) as r:
        assert r.status_code == 200, await r.aread()
        assert r.headers["content-type"].startswith("text/event-stream")
        fields: dict[str, str] = {}
        async for line in r.aiter_lines():
            if line:
                key, _, value = line.partition(":")
                fields[key] = value.strip()
                continue
            if "event" in fields:
                number = int(fields["id"]) if "id" in fields else None
                out.append((number, fields["event"], json.loads(fields.get("data") or "{}")))
                if fields["event"] == until:
                    break
            fields = {}
    return out


async def test_events_stream_and_resume(url: str) -> None:
    two = {
        "name": "two",
        "steps": [
            {"id": "a", "handler": "core.sleep", "params": {"seconds": 0.2}},
            {"id": "b", "handler": "core.echo", "needs": ["a"], "params": {"value": 1}},
        ],
    }
    async with httpx.AsyncClient(timeout=30) as client:
        seen: list[tuple[int | None, str, dict[str, Any]]] = []
        async with trio.open_nursery() as nursery:

            async def watch() -> None:
                seen.extend(await _sse(client, f"{url}/v1/events", "workflow.finished"))

            nursery.start_soon(watch)
            await trio.sleep(0.3)  # the stream is open
            sub = (await client.post(f"{url}/v1/executions", json={"spec": two})).json()
        mine = [(n, name) for n, name, data in seen if data.get("execution_id") == sub["id"]]
        names = [name for _, name in mine]
        assert names[-1] == "workflow.finished" and "step.finished" in names
        numbers = [n for n, _ in mine]
        assert numbers == sorted(numbers) and None not in numbers
        # Resume from the first step's start: everything after it, once, and the end.
        started = next(n for n, name in mine if name == "step.started")
        resumed = await _sse(
            client,
            f"{url}/v1/executions/{sub['id']}/events",
            "workflow.finished",
            headers={"last-event-id": str(started)},
        )
        assert [n for n, _, _ in resumed] == [n for n, _ in mine if n is not None and n > started]
        bad = await client.get(f"{url}/v1/events", headers={"last-event-id": "x1"})
        assert bad.status_code == 400
        assert (await client.get(f"{url}/v1/executions/nope/events")).status_code == 404


async def test_a_finished_executions_stream_is_served_from_the_store(
    tmp_path: Path, servers: Any
) -> None:
    from corral.server.auth import Tokens

    async with httpx.AsyncClient(timeout=30) as client:
        async with servers(tmp_path, Tokens([])) as url:
            sub = (await client.post(f"{url}/v1/executions", json={"spec": SPEC})).json()
            await _finished(client, url, sub["id"])
            # Finished before the stream opened: its current record, and the end
            # (not a stream waiting for a workflow.finished already sent).
            with trio.fail_after(10):
                got = await _sse(client, f"{url}/v1/executions/{sub['id']}/events", "none")
            assert [(n, name) for n, name, _ in got] == [(None, "snapshot")]
            assert got[0][2]["status"] == "succeeded" and got[0][2]["result"] == {"a": 42}
        # Another server on the same store: the events are gone from memory, the
        # record is not. A resume gets the gap, then the record, then the end.
        async with servers(tmp_path, Tokens([])) as url:
            with trio.fail_after(10):
                got = await _sse(
                    client,
                    f"{url}/v1/executions/{sub['id']}/events",
                    "none",
                    headers={"last-event-id": "3"},
                )
            assert [name for _, name, _ in got] == ["gap", "snapshot"]
            assert got[0][2]["missed_from"] == 4 and got[0][2]["resumed_at"] > 4
            assert got[1][2]["id"] == sub["id"] and got[1][2]["status"] == "succeeded"


async def test_no_run_here_only_enqueues_for_workers(queue_only: str, tmp_path: Path) -> None:
    import corral

    url = queue_only
    async with httpx.AsyncClient(timeout=30) as client:
        sub = (await client.post(f"{url}/v1/executions", json={"spec": SPEC})).json()
        await trio.sleep(0.3)
        got = (await client.get(f"{url}/v1/executions/{sub['id']}")).json()
        assert got["status"] == "pending" and got.get("owner") is None  # nobody ran it
        async with corral.open_engine(f"sqlite:///{tmp_path / 'api.db'}", claim=True):
            done = await _finished(client, url, sub["id"])  # a worker took it
        assert done["status"] == "succeeded" and done["result"] == {"a": 42}


async def test_the_python_client(secured: str, scope_tokens: dict[str, str]) -> None:
    READ, RUN = scope_tokens["read"], scope_tokens["run"]
    from corral.server.client import Client
    from corral.core.errors import ApiError, WorkflowFailed

    async with Client(secured, token=RUN) as api:
        execution = await api.submit(SPEC, key="c1")
        assert await api.result(execution) == {"a": 42}
        assert await api.submit(SPEC, key="c1") == execution  # the same, by its key
        assert (await api.get(execution))["status"] == "succeeded"
        failing = {"name": "f", "steps": [{"id": "x", "handler": "core.fail"}]}
        with pytest.raises(WorkflowFailed, match="failed"):
            await api.result(await api.submit(failing))
        with pytest.raises(ApiError) as info:
            await api.submit({"name": "x", "steps": [{"id": "a", "handler": "nope.x"}]})
        assert info.value.status == 422 and info.value.path == "$.steps[0].handler"
        slow = {
            "name": "s",
            "steps": [{"id": "s", "handler": "core.sleep", "params": {"seconds": 30}}],
        }
        running = await api.submit(slow)
        names = []
        async with trio.open_nursery() as nursery:

            async def follow() -> None:
                async for event in api.events(running):
                    names.append(event["event"])

            nursery.start_soon(follow)
            await trio.sleep(0.2)
            await api.cancel(running)
        assert names[-1] == "workflow.finished"
    async with Client(secured, token=READ) as reader:
        with pytest.raises(ApiError) as denied:
            await reader.submit(SPEC)
        assert denied.value.status == 403


async def test_the_cli_talks_to_the_api(url: str, tmp_path: Path) -> None:
    import json

    wf = tmp_path / "wf.yaml"
    wf.write_text("name: cli\nsteps:\n  - {id: a, handler: core.echo, params: {value: 7}}\n")

    async def cli(*args: str) -> subprocess.CompletedProcess[bytes]:
        return await trio.run_process(
            [sys.executable, "-m", "corral", *args, "--api", url],
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )

    submitted = await cli("submit", str(wf), "--wait", "--json")
    assert submitted.returncode == 0, submitted.stderr
    record = json.loads(submitted.stdout)
    assert record["status"] == "succeeded" and record["result"] == {"a": 7}
    listed = await cli("list", "--json", "--workflow", "cli")
    assert [r["id"] for r in json.loads(listed.stdout)] == [record["id"]]
    shown = await cli("show", record["id"])
    assert b"succeeded" in shown.stdout
    again = await cli("cancel", record["id"])
    assert b"already succeeded" in again.stdout
    missing = await cli("show", "nope")
    assert missing.returncode == 2 and b"HTTP 404" in missing.stderr
