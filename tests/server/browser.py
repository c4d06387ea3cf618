"""A real headless Chromium for the tests, driven over the DevTools protocol
(a websocket, with trio-websocket): open a page, evaluate JavaScript in it,
wait for a condition, take a screenshot. Chromium comes from Debian's
``chromium`` package (``.ci/run`` installs it; the tests install it when
missing and they are root, as in CI, or skip saying why)."""

from __future__ import annotations

import base64
import itertools
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from trio_websocket import WebSocketConnection, open_websocket_url

__all__ = ["Page", "chromium", "open_page"]


def chromium() -> str:
    """The Chromium binary (installed with apt-get when missing and root)."""
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=False, env=env, capture_output=True)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "chromium"],
            check=False,
            env=env,
            capture_output=True,
        )
        found = shutil.which("chromium")
        if found:
            return found
    if os.environ.get("CORRAL_TEST_REQUIRE_BROWSER"):
        pytest.fail("Chromium is required (CORRAL_TEST_REQUIRE_BROWSER) but is not installed")
    pytest.skip("no Chromium (Debian's `chromium` package) and not root to install it")


class Page:
    """One browser tab."""

    def __init__(self, ws: WebSocketConnection) -> None:
        self._ws = ws
        self._ids = itertools.count(1)

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        number = next(self._ids)
        await self._ws.send_message(json.dumps({"id": number, "method": method, "params": params}))
        while True:
            message = json.loads(await self._ws.get_message())
            if message.get("id") == number:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result") or {}

    async def goto(self, url: str) -> None:
        await self.send("Page.navigate", url=url)
        await self.wait_for("document.readyState === 'complete'")

    async def js(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (awaited if a promise)."""
        got = await self.send(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in got:
            raise RuntimeError(f"{expression}: {got['exceptionDetails']}")
        return got.get("result", {}).get("value")

    async def wait_for(self, expression: str, within: float = 30.0) -> Any:
        """Poll ``expression`` until it is truthy; its value."""
        with trio.fail_after(within):
            while True:
                value = await self.js(expression)
                if value:
                    return value
                await trio.sleep(0.05)

    async def screenshot(self, path: Path) -> Path:
        shot = await self.send("Page.captureScreenshot", format="png")
        await trio.Path(path).write_bytes(base64.b64decode(shot["data"]))
        return path


@asynccontextmanager
async def open_page(width: int = 1200, height: int = 800) -> AsyncIterator[Page]:
    """A fresh headless Chromium (its own profile, killed at the end) and one tab."""
    binary = chromium()
    profile = tempfile.mkdtemp(prefix="corral-chromium-")
    args = [
        binary,
        "--headless=new",
        "--no-sandbox",  # root in CI
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--remote-debugging-port=0",
        f"--user-data-dir={profile}",
        f"--window-size={width},{height}",
        "about:blank",
    ]
    proc = await trio.lowlevel.open_process(
        args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        port_file = Path(profile) / "DevToolsActivePort"
        with trio.fail_after(60):
            while not port_file.exists() or not port_file.read_text().strip():  # noqa: ASYNC110
                await trio.sleep(0.05)
        port = int(port_file.read_text().split()[0])
        async with httpx.AsyncClient() as http:
            targets = (await http.get(f"http://127.0.0.1:{port}/json/list")).json()
        page = next(t for t in targets if t.get("type") == "page")
        async with open_websocket_url(
            page["webSocketDebuggerUrl"], max_message_size=64 << 20
        ) as ws:
            tab = Page(ws)
            await tab.send("Page.enable")
            await tab.send("Runtime.enable")
            yield tab
    finally:
        proc.kill()
        with trio.move_on_after(10):
            await proc.wait()
        shutil.rmtree(profile, ignore_errors=True)
