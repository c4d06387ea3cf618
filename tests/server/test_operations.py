"""Retry, bulk cancel and pauses over HTTP (issue 18), against the real
server: the same semantics and errors as the Python API and the CLI."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import trio


def gate(path: Path) -> dict[str, Any]:
    """Three steps; ``check`` fails until ``path`` exists."""
    return {
        "name": "gated",
        "settings": {"on_failure": "continue"},
        "steps": [
            {"id": "first", "handler": "core.echo", "params": {"value": 1}},
            {
                "id": "check",
                "handler": "core.shell",
                "needs": ["first"],
                "params": {"args": ["test", "-f", str(path)]},
            },
            {"id": "last", "handler": "core.echo", "needs": ["check"], "params": {"value": 3}},
        ],
    }


async def _finished(client: httpx.AsyncClient, url: str, execution: str) -> dict[str, Any]:
    with trio.fail_after(30):
        while True:
            got = (await client.get(f"{url}/v1/executions/{execution}")).json()
            if got["status"] not in ("pending", "running"):
                return got  # type: ignore[no-any-return]
            await trio.sleep(0.02)


async def test_retry_over_http(url: str, tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    async with httpx.AsyncClient() as client:
        r = await client.post(f"{url}/v1/executions", json={"spec": gate(ready)})
        original = await _finished(client, url, r.json()["id"])
        assert original["status"] == "failed"
        assert original["links"]["retry"] == f"/v1/executions/{original['id']}/retry"
        retry = f"{url}/v1/executions/{original['id']}/retry"
        dry = await client.post(retry, json={"dry_run": True})
        assert dry.status_code == 200
        assert dry.json() == {
            "retry_of": original["id"],
            "rerun": {"check": "it failed", "last": "it was skipped"},
            "reused": ["first"],
        }
        ready.write_text("")
        r = await client.post(retry, json={})
        assert r.status_code == 202
        body = r.json()
        done = await _finished(client, url, body["id"])
        assert done["status"] == "succeeded" and done["retry_of"] == original["id"]
        assert [s.get("reused_from") for s in done["steps"]] == [original["id"], None, None]
        # from a step, by name; errors as problem documents
        r = await client.post(f"{url}/v1/executions/{done['id']}/retry", json={"from": ["last"]})
        assert r.status_code == 202 and r.json()["rerun"] == {"last": "asked for (--from)"}
        bad = await client.post(retry, json={"from": ["nope"]})
        assert bad.status_code == 400 and "no such step" in bad.json()["detail"]
        unknown = await client.post(f"{url}/v1/executions/nope/retry", json={})
        assert unknown.status_code == 404
        extra = await client.post(retry, json={"form": ["check"]})
        assert extra.status_code == 400  # a misspelt field is refused, not dropped
        wrong = await client.post(retry, json={"inputs": {"x": 1}})
        assert wrong.status_code == 422 and wrong.json()["kind"] == "inputs"


async def test_bulk_cancel_and_pauses_over_http(url: str) -> None:
    slow = {
        "name": "slow",
        "steps": [{"id": "nap", "handler": "core.sleep", "params": {"seconds": 60}}],
    }
    async with httpx.AsyncClient() as client:
        assert (await client.get(f"{url}/v1/pauses")).json() == {"paused": {}}
        r = await client.put(f"{url}/v1/pauses/slow")
        assert r.json() == {"workflow": "slow", "paused": True, "changed": True}
        assert list((await client.get(f"{url}/v1/pauses")).json()["paused"]) == ["slow"]
        held = (await client.post(f"{url}/v1/executions", json={"spec": slow})).json()["id"]
        await trio.sleep(0.3)
        got = (await client.get(f"{url}/v1/executions/{held}")).json()
        assert got["status"] == "pending"
        r = await client.delete(f"{url}/v1/pauses/slow")
        assert r.json() == {"workflow": "slow", "paused": False, "changed": True}
        with trio.fail_after(20):
            while (await client.get(f"{url}/v1/executions/{held}")).json()["status"] != "running":
                await trio.sleep(0.02)
        other = (await client.post(f"{url}/v1/executions", json={"spec": slow})).json()["id"]
        dry = await client.post(f"{url}/v1/bulk/cancel", json={"workflow": "slow", "dry_run": True})
        assert dry.json()["matched"] == 2 and dry.json()["dry_run"] is True
        assert sorted(dry.json()["touched"]) == sorted([held, other])
        r = await client.post(f"{url}/v1/bulk/cancel", json={"workflow": "slow"})
        assert r.status_code == 200 and sorted(r.json()["touched"]) == sorted([held, other])
        for execution in (held, other):
            assert (await _finished(client, url, execution))["status"] == "cancelled"
        bad = await client.post(f"{url}/v1/bulk/cancel", json={"status": ["sleepy"]})
        assert bad.status_code == 400 and "unknown status" in bad.json()["detail"]
        allowed = (await client.options(f"{url}/v1/pauses/x")).headers["allow"]
        assert {"DELETE", "PUT"} <= set(allowed.replace(" ", "").split(","))


async def test_bulk_retry_over_http(url: str, tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    async with httpx.AsyncClient() as client:
        ids = []
        for _ in range(2):
            r = await client.post(f"{url}/v1/executions", json={"spec": gate(ready)})
            ids.append(r.json()["id"])
        for execution in ids:
            assert (await _finished(client, url, execution))["status"] == "failed"
        dry = await client.post(f"{url}/v1/bulk/retry", json={"workflow": "gated", "dry_run": True})
        assert dry.status_code == 200
        assert dry.json() == {
            "matched": 2,
            "retries": dict.fromkeys(ids),
            "skipped": {},
            "dry_run": True,
        }
        ready.write_text("")
        done = (await client.post(f"{url}/v1/bulk/retry", json={"workflow": "gated"})).json()
        assert sorted(done["retries"]) == sorted(ids)
        for retry in done["retries"].values():
            assert (await _finished(client, url, retry))["status"] == "succeeded"
        # retried already: left out
        again = (await client.post(f"{url}/v1/bulk/retry", json={"workflow": "gated"})).json()
        assert again["matched"] == 0 or again["retries"] == {}
        bad = await client.post(
            f"{url}/v1/bulk/retry", json={"status": ["succeeded"], "from": ["nope"]}
        )
        skipped = bad.json()["skipped"]
        assert bad.status_code == 200 and sorted(skipped) == sorted(done["retries"].values())
        assert all("no such step" in why for why in skipped.values())


async def test_bodies_are_read_strictly(url: str) -> None:
    # Litestar's own conversion is lax (for query strings): "5" for an int, 0 for a
    # boolean. A JSON body must hold what the OpenAPI document says.
    async with httpx.AsyncClient() as client:
        for path, body, field in [
            ("/v1/bulk/retry", {"dry_run": 0}, "$.dry_run"),
            ("/v1/bulk/cancel", {"dry_run": "true"}, "$.dry_run"),
            ("/v1/executions", {"workflow": "x", "priority": "5"}, "$.priority"),
            ("/v1/executions/nope/retry", {"rerun_changed": 1}, "$.rerun_changed"),
        ]:
            r = await client.post(f"{url}{path}", json=body)
            assert r.status_code == 400, (path, r.text)
            problem = r.json()
            assert problem["errors"][0]["path"] == field, problem
            assert "Expected `" in problem["errors"][0]["message"]
