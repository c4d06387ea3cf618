"""Shared fixtures. Tests run under pytest-trio (``trio_mode = true``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
import os
from pathlib import Path

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
    async with corral.open_engine(entry_points=False) as eng:
        yield eng


@pytest.fixture(autouse=True, scope="session")
def _memory_store_by_default() -> None:
    """Tests that do not name a store use the memory store, never the user's file."""
    os.environ["CORRAL_STORE"] = "memory://"


@pytest.fixture(autouse=True, scope="session")
def _private_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Caches written by tests (the analysis memo) stay out of the user's home."""
    os.environ["CORRAL_CACHE_DIR"] = str(tmp_path_factory.mktemp("corral-cache"))
