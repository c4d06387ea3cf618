"""The status page in a real headless Chromium: it loads, an execution
submitted through the API appears and turns ``succeeded`` without a reload;
the execution page follows its steps live and draws the step graph. Then
the pages' edges without a browser: escaping, sign-in, bad filters, no
open redirect, and the rendered API page."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import httpx
import trio

from corral.server.pages import step_graph

SLOW = {
    "name": "pipeline",
    "steps": [
        {"id": "fetch", "handler": "core.sleep", "params": {"seconds": 0.6}},
        {"id": "parse", "handler": "core.echo", "params": {"value": "parsed"}, "needs": ["fetch"]},
        {"id": "count", "handler": "core.echo", "params": {"value": 3}, "needs": ["fetch"]},
        {
            "id": "report",
            "handler": "core.echo",
            "params": {"value": "done"},
            "needs": ["parse", "count"],
        },
    ],
}


def _keep(shot: Path) -> None:
    """Copy a screenshot where a person can look at it ($CORRAL_SCREENSHOTS)."""
    where = os.environ.get("CORRAL_SCREENSHOTS")
    if where:
        Path(where).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(where) / shot.name)


async def test_the_list_updates_live_in_chromium(url: str, page: Any, tmp_path: Path) -> None:
    await page.goto(f"{url}/")
    assert await page.js("document.title") == "executions · corral"
    await page.wait_for("document.getElementById('live').textContent === 'live'")
    await page.js("window.notReloaded = true")
    async with httpx.AsyncClient() as client:
        accepted = await client.post(f"{url}/v1/executions", json={"spec": SLOW})
        execution = accepted.json()["id"]
    row = f"document.getElementById('x-{execution}')"
    # it appears while it runs, then turns succeeded, in the same page
    await page.wait_for(f"{row} !== null")
    await page.wait_for(f"{row}.dataset.status === 'succeeded'")
    assert await page.js("window.notReloaded") is True
    assert await page.js(f"{row}.cells[1].textContent") == "pipeline"
    assert (await page.js(f"{row}.cells[4].textContent")).endswith(" s")
    _keep(await page.screenshot(tmp_path / "status-list.png"))

    # the filter keeps one status: a succeeded one is not listed under failed
    await page.goto(f"{url}/?status=failed")
    assert await page.js(f"{row} === null") is True
    assert await page.js("document.querySelector('nav a.on').textContent") == "failed"


async def test_the_execution_page_follows_its_steps(url: str, page: Any, tmp_path: Path) -> None:
    async with httpx.AsyncClient() as client:
        accepted = await client.post(f"{url}/v1/executions", json={"spec": SLOW})
        execution = accepted.json()["id"]
        await page.goto(f"{url}/executions/{execution}")
        # the graph: one node per step, and the four edges of the diamond
        assert await page.js("document.querySelectorAll('svg.graph g.node').length") == 4
        assert await page.js("document.querySelectorAll('svg.graph path').length") == 4
        await page.wait_for("document.querySelector('#status .status').textContent === 'succeeded'")
        await page.wait_for("document.getElementById('s-report').dataset.status === 'succeeded'")
        assert await page.js("document.getElementById('n-report').getAttribute('class')") == (
            "node st-succeeded"
        )
        assert await page.js("document.getElementById('s-parse').cells[4].textContent") == (
            '"parsed"'
        )
        assert await page.js("document.getElementById('live').textContent") == "finished"
        _keep(await page.screenshot(tmp_path / "status-execution.png"))


async def test_pages_without_a_browser(url: str) -> None:
    async with httpx.AsyncClient() as client:
        spec = {"name": "<b>x</b>", "steps": [{"id": "a", "handler": "core.echo"}]}
        accepted = (await client.post(f"{url}/v1/executions", json={"spec": spec})).json()
        with trio.fail_after(30):
            while "&lt;b&gt;x&lt;/b&gt;" not in (await client.get(f"{url}/")).text:
                await trio.sleep(0.05)
        listing = await client.get(f"{url}/")
        assert "<b>x</b>" not in listing.text and "&lt;b&gt;x&lt;/b&gt;" in listing.text
        assert "default-src 'none'" in listing.headers["content-security-policy"]
        assert "http://" not in listing.text.replace("http://www.w3.org", "")  # nothing external
        one = await client.get(f"{url}/executions/{accepted['id']}")
        assert one.status_code == 200 and "&lt;b&gt;x&lt;/b&gt;" in one.text
        missing = await client.get(f"{url}/executions/nope")
        assert missing.status_code == 404
        bad = await client.get(f"{url}/", params={"status": "bogus"})
        assert bad.status_code == 400 and "bogus" in bad.json()["detail"]
        api = await client.get(f"{url}/schema")
        assert api.status_code == 200 and "POST /v1/executions" in api.text
        assert "<script" not in api.text and "cdn" not in api.text.lower()
        assert (await client.get(f"{url}/schema/openapi.json")).json()["openapi"].startswith("3.")


async def test_signing_in_gives_the_pages_read_only(
    secured: str, scope_tokens: dict[str, str]
) -> None:
    url = secured
    async with httpx.AsyncClient(base_url=url) as client:
        first = await client.get("/executions/abc")
        assert (
            first.status_code == 302 and first.headers["location"] == "/login?next=/executions/abc"
        )
        form = await client.get("/login", params={"next": "//evil.example/"})
        assert 'value="/"' in form.text  # an off-site "next" becomes /
        wrong = await client.post("/login", data={"token": "x" * 20, "next": "/"})
        assert wrong.status_code == 401 and "Unknown token" in wrong.text
        signed = await client.post(
            "/login", data={"token": scope_tokens["admin"], "next": "https://evil.example/"}
        )
        assert signed.status_code == 303 and signed.headers["location"] == "/"
        cookie = signed.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie
        assert scope_tokens["admin"] not in signed.headers["set-cookie"]  # a session, not the token
        assert (await client.get("/")).status_code == 200  # the cookie reads ...
        assert (await client.get("/v1/executions")).status_code == 200
        # ... and never writes, even an admin's token: a browser sends cookies on its own
        spec = {"name": "w", "steps": [{"id": "a", "handler": "core.echo"}]}
        denied = await client.post("/v1/executions", json={"spec": spec})
        assert denied.status_code == 401
        assert scope_tokens["admin"] not in denied.text


def test_the_step_graph_is_layered() -> None:
    svg = step_graph([("a", []), ("b", ["a"]), ("c", ["a"]), ("d", ["b", "c"])], {"a": "failed"})
    assert svg.count("<g id=") == 4 and svg.count("<path") == 4
    assert 'id="n-a" class="node st-failed"' in svg and 'id="n-d" class="node st-pending"' in svg
    # d sits two columns right of a (x = 12 + 2 * 210)
    assert 'x="432"' in svg.split('id="n-d"')[1].split("</g>")[0]
