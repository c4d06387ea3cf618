"""One suite for every Store backend (memory now; SQLite and PostgreSQL join later
by adding a parameter)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

import corral
from corral.model import ErrorInfo, ExecutionRecord, StepRecord
from corral.storage import CacheEntry, MemoryStore, Store, open_store

BACKENDS = ["memory://"]


@pytest.fixture(params=BACKENDS)
async def store(request: pytest.FixtureRequest) -> AsyncIterator[Store]:
    s = open_store(request.param)
    await s.open()
    try:
        yield s
    finally:
        await s.close()


def _record(execution_id: str, *, key: str | None = None, workflow: str = "wf") -> ExecutionRecord:
    return ExecutionRecord(
        id=execution_id,
        workflow=workflow,
        version=1,
        inputs={"x": 1},
        key=key,
        created_at=1000.0,
        steps=[StepRecord(step_id="a", handler="core.noop"), StepRecord(step_id="b")],
    )


def test_memory_store_implements_protocol() -> None:
    assert isinstance(MemoryStore(), Store)


async def test_create_and_get(store: Store) -> None:
    record, created = await store.create_execution(_record("e1"))
    assert created and record.id == "e1"
    got = await store.get_execution("e1")
    assert got.status == "pending" and got.inputs == {"x": 1}
    assert [s.step_id for s in got.steps] == ["a", "b"]
    assert {s.status for s in got.steps} == {"pending"}


async def test_get_unknown_raises(store: Store) -> None:
    with pytest.raises(corral.ExecutionNotFound, match="nope"):
        await store.get_execution("nope")


async def test_records_are_snapshots(store: Store) -> None:
    original = _record("e1")
    await store.create_execution(original)
    original.steps[0].status = "failed"
    step = StepRecord(step_id="a", status="running", attempts=1)
    await store.record_step("e1", step)
    step.status = "succeeded"  # mutating after the write must not leak into the store
    got = await store.get_execution("e1")
    assert got.step("a").status == "running"


async def test_step_lifecycle_and_finish(store: Store) -> None:
    await store.create_execution(_record("e1"))
    await store.start_execution("e1", "owner-1", 1001.0)
    await store.record_step(
        "e1", StepRecord(step_id="a", status="succeeded", attempts=2, output={"n": 3})
    )
    await store.record_step(
        "e1",
        StepRecord(step_id="b", status="failed", attempts=1, error=ErrorInfo("E", "bad", "b")),
    )
    running = await store.get_execution("e1")
    assert running.status == "running" and running.owner == "owner-1"
    await store.finish_execution(
        "e1", "failed", result=None, error=ErrorInfo("E", "bad", "b"), finished_at=1002.0
    )
    got = await store.get_execution("e1")
    assert got.status == "failed" and got.finished_at == 1002.0
    assert got.error == ErrorInfo("E", "bad", "b")
    assert got.step("a").output == {"n": 3} and got.step("a").attempts == 2
    assert got.step("b").error is not None


async def test_idempotency_key(store: Store) -> None:
    first, created = await store.create_execution(_record("e1", key="K"))
    assert created
    again, created = await store.create_execution(_record("e2", key="K"))
    assert not created and again.id == "e1"
    assert (await store.find_by_key("K")) is not None
    assert await store.find_by_key("other") is None
    with pytest.raises(corral.ExecutionNotFound):
        await store.get_execution("e2")


async def test_list_filters_and_orders_newest_first(store: Store) -> None:
    for i in range(5):
        await store.create_execution(_record(f"e{i}", workflow="even" if i % 2 == 0 else "odd"))
    await store.finish_execution("e1", "succeeded", result=1, error=None, finished_at=1.0)
    assert [r.id for r in await store.list_executions()] == ["e4", "e3", "e2", "e1", "e0"]
    assert [r.id for r in await store.list_executions(workflow="odd")] == ["e3", "e1"]
    assert [r.id for r in await store.list_executions(status="succeeded")] == ["e1"]
    assert len(await store.list_executions(limit=2)) == 2


async def test_cache_entries_expire(store: Store) -> None:
    await store.put_cache(CacheEntry("k", {"v": 1}, created_at=10.0, expires_at=20.0))
    await store.put_cache(CacheEntry("forever", [1], created_at=10.0))
    hit = await store.get_cache("k", now=15.0)
    assert hit is not None and hit.value == {"v": 1}
    assert await store.get_cache("k", now=20.0) is None
    assert await store.get_cache("missing", now=0.0) is None
    forever = await store.get_cache("forever", now=1e12)
    assert forever is not None and forever.value == [1]


async def test_memory_cache_is_bounded() -> None:
    s = MemoryStore(max_cache_entries=3)
    for i in range(5):
        await s.put_cache(CacheEntry(f"k{i}", i, created_at=0.0))
    assert await s.get_cache("k0", now=1.0) is None
    assert await s.get_cache("k4", now=1.0) is not None


@pytest.mark.parametrize(
    ("url", "needle"),
    [
        ("bogus://x", "unknown store scheme 'bogus'"),
        ("/just/a/path", "has no scheme"),
        ("http://[::1", "invalid store URL"),
    ],
)
def test_open_store_rejects_bad_urls(url: str, needle: str) -> None:
    with pytest.raises(corral.StoreError, match=needle):
        open_store(url)


def test_open_store_rejects_non_store() -> None:
    with pytest.raises(corral.StoreError):
        open_store(42)  # type: ignore[arg-type]


async def test_engine_rejects_bad_store_url() -> None:
    with pytest.raises(corral.StoreError):
        async with corral.open_engine("nope://"):
            pass
