"""The result cache is an optimisation: a store failure in it never fails a
step (issue 11, point 13)."""

from __future__ import annotations

from typing import Any

import trio

import corral
from corral.storage.base import CacheEntry


class _CacheFails(corral.storage.MemoryStore):
    """A real memory store whose cache operations fail as a locked database would."""

    def __init__(self) -> None:
        super().__init__()
        self.fail_get = self.fail_put = self.fail_prune = False
        self.prunes = 0

    async def get_cache(self, key: str, now: float) -> CacheEntry | None:
        if self.fail_get:
            raise corral.StoreError("database is locked")
        return await super().get_cache(key, now)

    async def put_cache(self, entry: CacheEntry) -> None:
        if self.fail_put:
            raise corral.StoreError("database or disk is full")
        await super().put_cache(entry)

    async def prune_cache(self, now: float, max_entries: int, max_bytes: int) -> int:
        self.prunes += 1
        if self.fail_prune:
            raise corral.StoreError("database is locked")
        return await super().prune_cache(now, max_entries, max_bytes)


def _cached(value: Any) -> corral.Workflow:
    wf = corral.Workflow("cached")
    wf.step("s", "core.echo", cache=True, value=value)
    return wf


async def test_a_cache_write_failure_is_a_skipped_write() -> None:
    store = _CacheFails()
    async with corral.open_engine(store, entry_points=False) as engine:
        store.fail_put = True
        assert await engine.run(_cached(1)) == {"s": 1}
        assert engine.metrics().cache_errors == 1
        store.fail_put = False
        assert await engine.run(_cached(1)) == {"s": 1}  # kept in memory meanwhile


async def test_a_cache_read_failure_is_a_miss() -> None:
    store = _CacheFails()
    async with corral.open_engine(store, entry_points=False) as engine:
        store.fail_get = True
        handle = await engine.submit(_cached(2))
        assert await handle.result() == {"s": 2}
        assert (await engine.get(handle.id)).steps[0].status == "succeeded"
        assert engine.metrics().cache_errors == 1


async def test_a_pruning_failure_never_reaches_a_step() -> None:
    store = _CacheFails()
    async with corral.open_engine(store, entry_points=False) as engine:
        store.fail_prune = True
        before = store.prunes
        for i in range(40):  # the 32nd write asks for a prune
            assert await engine.run(_cached(i)) == {"s": i}
        with trio.fail_after(10):
            while engine.metrics().cache_errors == 0:
                await trio.sleep(0.01)
        assert store.prunes == before + 1
        assert all(r.status == "succeeded" for r in await engine.list())
