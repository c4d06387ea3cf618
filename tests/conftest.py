"""Shared fixtures. Tests run under pytest-trio (``trio_mode = true``)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import importlib.util
import itertools
import os
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

import corral
from corral.plugins.manager import HandlerRegistry, build_registry

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


@pytest.fixture(scope="session")
def registry() -> HandlerRegistry:
    """Built-in handlers only (installed plugins are ignored for determinism)."""
    return build_registry(entry_points=False)


@pytest.fixture
async def engine() -> AsyncIterator[corral.Engine]:
    """An engine on the memory store with built-in handlers only."""
    async with corral.open_engine("memory://", entry_points=False) as eng:
        yield eng


@pytest.fixture
def make_engine() -> Any:
    """``make_engine(store=..., **options)``: ``corral.open_engine`` with the
    built-in handlers only (installed plugins ignored, for determinism) and
    the memory store unless a store is named; use it as
    ``async with make_engine(url, plugins=[...]) as engine``."""

    def make(store: Any = "memory://", **options: Any) -> Any:
        options.setdefault("entry_points", False)
        return corral.open_engine(store, **options)

    return make


@pytest.fixture(autouse=True, scope="session")
def _memory_store_by_default() -> Iterator[None]:
    """Tests that do not name a store use the memory store, never the user's
    file (subprocesses too: they inherit it); put back as it was at the end."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CORRAL_STORE", "memory://")
        yield


@pytest.fixture(autouse=True, scope="session")
def _private_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Caches written by tests (the analysis memo) stay out of the user's
    home; put back as it was at the end."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CORRAL_CACHE_DIR", str(tmp_path_factory.mktemp("corral-cache")))
        yield


def _pgcluster() -> Any:
    path = Path(__file__).with_name("pgcluster.py")
    spec = importlib.util.spec_from_file_location("pgcluster", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["pgcluster"] = module  # (dataclasses look their module up)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A PostgreSQL server for the session: ``$CORRAL_TEST_POSTGRES`` (CI starts
    one), else a throwaway cluster started here (tests/pgcluster.py); tests
    that need it skip, with the reason, when neither is possible."""
    url = os.environ.get("CORRAL_TEST_POSTGRES")
    if url:
        yield url
        return
    pgcluster = _pgcluster()
    try:
        cluster = pgcluster.start()
    except pgcluster.Unavailable as exc:
        if os.environ.get("CORRAL_TEST_REQUIRE_POSTGRES"):  # CI: no PostgreSQL test is skipped
            pytest.fail(f"no PostgreSQL server could be started: {exc}")
        pytest.skip(f"no PostgreSQL server could be started: {exc}")
    try:
        yield cluster.url
    finally:
        cluster.stop()


_databases = itertools.count(1)


def _admin(url: str, statement: str) -> None:
    import asyncpg

    async def run() -> None:
        conn = await asyncpg.connect(url)
        try:
            await conn.execute(statement)
        finally:
            await conn.close()

    # In a thread of its own: this may be called from inside Trio (a fixture
    # asked for by an async fixture), where asyncio.run refuses to start.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, run()).result()


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """The URL of a new, empty database on the session's server (dropped after)."""
    name = f"corral_test_{os.getpid()}_{next(_databases)}"
    _admin(postgres_server, f"CREATE DATABASE {name}")
    base, _, _ = postgres_server.rpartition("/")
    try:
        yield f"{base}/{name}"
    finally:
        _admin(postgres_server, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
