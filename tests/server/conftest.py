"""The server under test: ``corral serve`` on 127.0.0.1 (a free port) with a
real SQLite store, in the test's own Trio run; and a real headless Chromium
(tests/server/browser.py) for the status page."""

from __future__ import annotations

import contextlib

import importlib.util
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import trio

import corral
from corral.server.auth import Tokens
from corral.server.serve import serve

READ, RUN, ADMIN = "r" * 20, "u" * 20, "a" * 20


def _browser() -> Any:
    path = Path(__file__).with_name("browser.py")
    spec = importlib.util.spec_from_file_location("corral_test_browser", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


async def _server(
    tmp_path: Path,
    tokens: Tokens,
    run_here: bool = True,
    limits: corral.Limits | None = None,
    **options: Any,
) -> AsyncIterator[str]:
    stop = trio.Event()
    urls: list[str] = []
    started = trio.Event()

    def ready(url: str) -> None:
        urls.append(url)
        started.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(
            lambda: serve(
                f"sqlite:///{tmp_path / 'api.db'}",
                port=0,
                tokens=tokens,
                run_here=run_here,
                grace=0.5,  # (what still runs at the test's end is released, at once)
                limits=limits,
                ready=ready,
                **options,
                stop=stop,
            )
        )
        with trio.fail_after(30):
            await started.wait()
        yield urls[0]
        stop.set()


@pytest.fixture
def servers() -> Any:
    """Servers one after another: ``async with servers(tmp_path, tokens) as url``."""
    return contextlib.asynccontextmanager(_server)


@pytest.fixture
async def url(tmp_path: Path) -> AsyncIterator[str]:
    async for u in _server(tmp_path, Tokens([])):
        yield u


@pytest.fixture
def scope_tokens() -> dict[str, str]:
    """The token of each scope the ``secured`` server knows."""
    return {"read": READ, "run": RUN, "admin": ADMIN}


@pytest.fixture
async def secured(tmp_path: Path) -> AsyncIterator[str]:
    tokens = Tokens([("read", READ), ("run", RUN), ("admin", ADMIN)])
    async for u in _server(tmp_path, tokens):
        yield u


@pytest.fixture
async def queue_only(tmp_path: Path) -> AsyncIterator[str]:
    async for u in _server(tmp_path, Tokens([]), run_here=False):
        yield u


@pytest.fixture
async def crowded(tmp_path: Path) -> AsyncIterator[str]:
    """A server whose engine runs one execution and queues none."""
    limits = corral.Limits(max_running_workflows=1, max_queued=0)
    async for u in _server(tmp_path, Tokens([]), limits=limits):
        yield u


@pytest.fixture
async def page() -> AsyncIterator[Any]:
    """A tab of a fresh headless Chromium."""
    async with _browser().open_page() as tab:
        yield tab
