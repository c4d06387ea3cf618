"""One suite for every Store backend: memory and SQLite (a real file); PostgreSQL
joins by adding a parameter."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio

import corral
from corral.core.errors import ExecutionNotFound, StoreError
from corral.core.model import ErrorInfo, ExecutionRecord, StepRecord
from corral.storage import (
    CacheEntry,
    DefinitionRecord,
    MemoryStore,
    SQLiteStore,
    Store,
    lifetime,
    open_store,
)

_URLS: dict[int, str] = {}  # the URL each store of the fixture was opened with


@pytest.fixture(params=["memory", "sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    if request.param == "postgres":
        url = request.getfixturevalue("postgres_url")
    else:
        url = "memory://" if request.param == "memory" else f"sqlite://{tmp_path}/store.db"
    s = open_store(url)
    _URLS[id(s)] = url
    async with lifetime(s):
        await s.open()
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(s.run)  # as in an engine: the batching writer
                yield s
                await s.close()
        finally:
            await s.close()


def _record(
    execution_id: str,
    *,
    key: str | None = None,
    workflow: str = "wf",
    created_at: float = 1000.0,
    parent: tuple[str, str] | None = None,
    owner: str | None = None,
    lease: float | None = None,
) -> ExecutionRecord:
    return ExecutionRecord(
        id=execution_id,
        workflow=workflow,
        version=1,
        inputs={"x": 1, "big": 2**70},
        key=key,
        created_at=created_at,
        parent_id=parent[0] if parent else None,
        parent_step=parent[1] if parent else None,
        owner=owner,
        lease_expires_at=lease,
        steps=[StepRecord(step_id="a", handler="core.noop"), StepRecord(step_id="b")],
    )


def test_backends_implement_the_protocol(tmp_path: Path) -> None:
    assert isinstance(MemoryStore(), Store)
    assert isinstance(SQLiteStore("sqlite://x", tmp_path / "x.db"), Store)


async def test_create_and_get(store: Store) -> None:
    record, created = await store.create_execution(_record("e1"))
    assert created and record.id == "e1"
    got = await store.get_execution("e1")
    assert got.status == "pending" and got.inputs == {"x": 1, "big": 2**70}
    assert got.version == 1 and got.created_at == 1000.0
    assert [s.step_id for s in got.steps] == ["a", "b"]
    assert {s.status for s in got.steps} == {"pending"}
    assert got.steps[0].handler == "core.noop"


async def test_get_unknown_raises(store: Store) -> None:
    with pytest.raises(corral.ExecutionNotFound, match="nope"):
        await store.get_execution("nope")


async def test_records_are_snapshots(store: Store) -> None:
    original = _record("e1")
    await store.create_execution(original)
    original.steps[0].status = "failed"
    step = StepRecord(step_id="a", status="succeeded", attempts=1, output={"list": [1]})
    await store.record_step("e1", step)
    step.output["list"].append(2)  # mutating after the write must not leak into the store
    got = await store.get_execution("e1")
    assert got.step("a").output == {"list": [1]}
    got.step("a").output["list"].append(3)  # nor mutating what was read
    assert (await store.get_execution("e1")).step("a").output == {"list": [1]}


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
    assert running.started_at == 1001.0
    await store.finish_execution(
        "e1", "failed", result={"r": [1, 2]}, error=ErrorInfo("E", "bad", "b"), finished_at=1002.0
    )
    got = await store.get_execution("e1")
    assert got.status == "failed" and got.finished_at == 1002.0
    assert got.result == {"r": [1, 2]}
    assert got.error == ErrorInfo("E", "bad", "b")
    assert got.step("a").output == {"n": 3} and got.step("a").attempts == 2
    assert got.step("b").error == ErrorInfo("E", "bad", "b")


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
        await store.create_execution(
            _record(f"e{i}", workflow="even" if i % 2 == 0 else "odd", created_at=1000.0 + i)
        )
    await store.finish_execution("e1", "succeeded", result=1, error=None, finished_at=1.0)
    assert [r.id for r in await store.list_executions()] == ["e4", "e3", "e2", "e1", "e0"]
    assert [r.id for r in await store.list_executions(workflow="odd")] == ["e3", "e1"]
    assert [r.id for r in await store.list_executions(status="succeeded")] == ["e1"]
    assert [r.id for r in await store.list_executions(limit=2)] == ["e4", "e3"]
    assert (await store.list_executions())[0].steps == []
    # a page ends at the (created_at, id) of its last row; ties of created_at by id
    await store.create_execution(_record("e5b", created_at=1004.0))
    await store.create_execution(_record("e5a", created_at=1004.0))
    first = await store.list_executions(limit=2)
    assert [r.id for r in first] == ["e5b", "e5a"]  # all three at 1004.0: e5b > e5a > e4
    after = (first[-1].created_at, first[-1].id)
    assert [r.id for r in await store.list_executions(before=after)] == [
        "e4",
        "e3",
        "e2",
        "e1",
        "e0",
    ]
    assert [r.id for r in await store.list_executions(before=(1004.0, "e5b"))][:1] == ["e5a"]
    assert [r.id for r in await store.list_executions(workflow="odd", before=(1003.0, "e3"))] == [
        "e1"
    ]


async def test_children(store: Store) -> None:
    await store.create_execution(_record("p"))
    await store.create_execution(_record("c1", parent=("p", "kid"), created_at=1001.0))
    await store.create_execution(_record("c2", parent=("p", "kid"), created_at=1002.0))
    child = await store.find_child("p", "kid")
    assert child is not None and child.id == "c2" and child.parent_step == "kid"
    assert await store.find_child("p", "other") is None


async def test_definitions(store: Store) -> None:
    d1 = DefinitionRecord("wf", "1", "d1", b'{"name":"wf"}', 1.0)
    assert (await store.put_definition(d1)).digest == "d1"
    assert await store.get_definition("wf") is None  # stored by digest only
    assert (await store.get_definition_by_digest("d1")) == d1
    assert (await store.put_definition(d1, register=True)).digest == "d1"
    other = DefinitionRecord("wf", "1", "d1-changed", b"{}", 2.0)
    assert (await store.put_definition(other, register=True)).digest == "d1"  # refused
    d2 = DefinitionRecord("wf", "2", "d2", b"{}", 3.0)
    await store.put_definition(d2, register=True)
    latest = await store.get_definition("wf")
    assert latest is not None and latest.digest == "d2"
    pinned = await store.get_definition("wf", "1")
    assert pinned is not None and pinned.digest == "d1"
    assert await store.get_definition("nope") is None
    assert await store.get_definition_by_digest("nope") is None
    await store.put_definition(DefinitionRecord("another", "1", "a1", b"{}", 4.0))  # unregistered
    await store.put_definition(DefinitionRecord("a-first", "x", "ax", b"{}", 5.0), register=True)
    listed = [(d.name, d.version) for d in await store.list_definitions()]
    assert listed == [("a-first", "x"), ("wf", "2"), ("wf", "1")]
    assert [d.digest for d in await store.list_definitions("wf")] == ["d2", "d1"]
    assert await store.list_definitions("nope") == []


async def test_leases_claims_and_cancel_requests(store: Store) -> None:
    await store.create_execution(_record("mine", owner="A", lease=100.0))
    await store.create_execution(_record("orphan", owner="dead", lease=50.0))
    await store.create_execution(_record("kid", owner="dead", lease=50.0, parent=("orphan", "s")))
    await store.create_execution(_record("done", owner="dead", lease=50.0))
    await store.finish_execution("done", "succeeded", result=None, error=None, finished_at=1.0)
    # At t=60 only the orphan's lease has expired (children go with their parent).
    assert await store.claim_expired("B", 60.0, 90.0) == ["orphan"]
    assert await store.claim_expired("C", 60.0, 90.0) == []  # B holds it now
    assert (await store.get_execution("orphan")).owner == "B"
    assert await store.renew_leases("A", 200.0) == []
    assert (await store.get_execution("mine")).lease_expires_at == 200.0
    # A held execution is flagged for its owner; an unheld one is cancelled at once.
    flagged = await store.request_cancel("mine", 150.0)
    assert flagged.status == "pending" and flagged.cancel_requested
    assert await store.renew_leases("A", 300.0) == ["mine"]
    gone = await store.request_cancel("orphan", 1000.0)
    assert gone.status == "cancelled"
    assert {s.status for s in gone.steps} == {"cancelled"}
    assert (await store.request_cancel("done", 1000.0)).status == "succeeded"


async def test_cache_entries_expire_and_are_bounded(store: Store) -> None:
    await store.put_cache(CacheEntry("k", b'{"v":1}', created_at=10.0, expires_at=20.0))
    await store.put_cache(CacheEntry("forever", b"[1]", created_at=11.0))
    hit = await store.get_cache("k", now=15.0)
    assert hit is not None and hit.value == b'{"v":1}'
    assert await store.get_cache("k", now=20.0) is None
    assert await store.get_cache("missing", now=0.0) is None
    forever = await store.get_cache("forever", now=1e12)
    assert forever is not None and forever.value == b"[1]"
    for i in range(5):
        await store.put_cache(CacheEntry(f"n{i}", b"0", created_at=100.0 + i))
    assert await store.prune_cache(now=30.0, max_entries=3, max_bytes=10**6) == 4  # k + 3 oldest
    assert await store.get_cache("n4", now=30.0) is not None
    assert await store.get_cache("forever", now=30.0) is None
    await store.put_cache(CacheEntry("big", b"x" * 100, created_at=200.0))
    assert await store.prune_cache(now=30.0, max_entries=10, max_bytes=101) == 2  # bytes bound
    assert await store.get_cache("big", now=30.0) is not None
    assert await store.get_cache("n4", now=30.0) is not None  # 100 + 1 bytes fit
    assert await store.get_cache("n3", now=30.0) is None


async def test_prune_deletes_old_finished_executions(store: Store) -> None:
    for i in range(12):
        await store.create_execution(_record(f"e{i}"))
        if i < 10:
            status = "succeeded" if i % 2 else "failed"
            await store.finish_execution(
                f"e{i}", status, result=None, error=None, finished_at=float(i)
            )
    assert await store.prune(5.0, statuses=("failed",), batch=2) == 3  # e0, e2, e4
    assert await store.prune(5.0, batch=2) == 2  # e1, e3
    remaining = {r.id for r in await store.list_executions(limit=100)}
    assert remaining == {"e5", "e6", "e7", "e8", "e9", "e10", "e11"}
    assert await store.prune(1e9) == 5  # unfinished ones stay
    assert {r.id for r in await store.list_executions()} == {"e10", "e11"}


@pytest.mark.parametrize(
    ("url", "needle"),
    [
        ("bogus://x", "unknown store scheme 'bogus'"),
        ("/just/a/path", "has no scheme"),
        ("sqlite:///:memory:", "use memory://"),
        ("sqlite:///tmp/x.db?mode=ro", "options are not supported"),
    ],
)
def test_open_store_rejects_bad_urls(url: str, needle: str) -> None:
    with pytest.raises(corral.StoreError, match=needle):
        open_store(url)


def test_open_store_rejects_non_store_and_bad_durability() -> None:
    with pytest.raises(corral.StoreError):
        open_store(42)  # type: ignore[arg-type]
    with pytest.raises(corral.StoreError, match="durability"):
        open_store("memory://", durability="sometimes")


async def test_engine_rejects_bad_store_url() -> None:
    with pytest.raises(corral.StoreError):
        async with corral.open_engine("nope://"):
            pass


async def test_writes_are_fenced_by_ownership(store: Store) -> None:
    from corral.core.errors import LeaseLost

    await store.create_execution(_record("e1", owner="A", lease=100.0))
    await store.record_step("e1", StepRecord(step_id="a", status="running"), owner="A")
    assert await store.claim_expired("B", 200.0, 300.0) == ["e1"]  # A's lease expired
    # A, stale, may no longer write: a running record is dropped, a terminal one refused.
    await store.record_step("e1", StepRecord(step_id="b", status="running"), owner="A")
    with pytest.raises(LeaseLost):
        await store.record_step("e1", StepRecord(step_id="a", status="succeeded"), owner="A")
    with pytest.raises(LeaseLost):
        await store.finish_execution(
            "e1", "succeeded", result=None, error=None, finished_at=1.0, owner="A"
        )
    assert await store.lost("A", ["e1"]) == ["e1"]
    assert await store.lost("B", ["e1"]) == []
    got = await store.get_execution("e1")
    assert got.status == "pending" and got.step("a").status == "running"
    assert got.step("b").status == "pending"
    await store.record_step("e1", StepRecord(step_id="a", status="succeeded"), owner="B")
    assert (await store.get_execution("e1")).step("a").status == "succeeded"


async def test_start_is_fenced_too(store: Store) -> None:
    from corral.core.errors import LeaseLost

    await store.create_execution(_record("e1", owner="A", lease=100.0))
    with pytest.raises(LeaseLost):
        await store.start_execution("e1", "B", 1.0)  # B does not own it
    await store.start_execution("e1", "A", 1.0)
    await store.create_execution(_record("kid", owner="dead", parent=("e1", "s")))
    await store.start_execution("kid", "A", 2.0, claim=True)  # a parent step takes it up
    assert (await store.get_execution("kid")).owner == "A"
    await store.finish_execution("e1", "succeeded", result=None, error=None, finished_at=3.0)
    with pytest.raises(LeaseLost):
        await store.start_execution("e1", "A", 4.0)  # finished: never started again


async def test_cancelling_an_orphan_cancels_its_children(store: Store) -> None:
    await store.create_execution(_record("p", owner="dead", lease=1.0))
    await store.create_execution(_record("c", owner="dead", lease=1.0, parent=("p", "s")))
    await store.create_execution(_record("g", owner="dead", lease=1.0, parent=("c", "t")))
    assert (await store.request_cancel("p", 100.0)).status == "cancelled"
    for execution_id in ("c", "g"):
        child = await store.get_execution(execution_id)
        assert child.status == "cancelled"
        assert {s.status for s in child.steps} == {"cancelled"}


async def test_create_without_waiting_is_ordered_before_later_operations(store: Store) -> None:
    """``wait=False``: not waited for, yet durable before anything issued after it."""
    record, created = await store.create_execution(_record("nw1", owner="me"), wait=False)
    assert created and record.id == "nw1"
    got = await store.get_execution("nw1")  # a read queued after it sees it
    assert [s.step_id for s in got.steps] == ["a", "b"]
    await store.start_execution("nw1", "me", 5.0)
    assert (await store.get_execution("nw1")).status == "running"


async def test_a_failed_unwaited_create_is_reported_at_start(tmp_path: Path) -> None:
    db = tmp_path / "f.db"
    s = SQLiteStore(f"sqlite:///{db}", db)
    await s.open()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(s.run)
        bad = _record("bad", owner="me")
        bad.created_at = None  # type: ignore[assignment]  # the table (NOT NULL) refuses it
        await s.create_execution(_record("ok", owner="me"), wait=False)
        await s.create_execution(bad, wait=False)
        with pytest.raises(StoreError, match="execution bad could not be stored"):
            await s.start_execution("bad", "me", 5.0)
        await s.start_execution("ok", "me", 5.0)  # its neighbour in the batch is fine
        with pytest.raises(ExecutionNotFound):
            await s.get_execution("bad")  # nothing half-written is left
        await s.close()
    # a lone failing op leaves nothing behind either
    s = SQLiteStore(f"sqlite:///{db}", db)
    await s.open()
    bad.id = "bad2"
    with pytest.raises(StoreError):
        await s.create_execution(bad)
    with pytest.raises(ExecutionNotFound):
        await s.get_execution("bad2")
    await s.close()


async def test_cancel_unstarted_in_bulk(store: Store) -> None:
    # An engine closing with its queue full: one call for them all (issue 11, point 5).
    ids = [f"q{i}" for i in range(2500)]  # more than one statement's worth in SQLite
    for execution_id in ids:
        await store.create_execution(_record(execution_id, owner="A", lease=100.0))
    await store.create_execution(_record("theirs", owner="B", lease=100.0))
    await store.finish_execution("q7", "succeeded", result=1, error=None, finished_at=5.0)
    error = ErrorInfo("WorkflowCancelled", "engine closed")
    done = await store.cancel_unstarted([*ids, "theirs"], "A", error, 42.0)
    assert sorted(done) == sorted(i for i in ids if i != "q7")  # not B's, not a finished one
    record = await store.get_execution("q0")
    assert record.status == "cancelled" and record.error == error and record.finished_at == 42.0
    assert [(s.status, s.finished_at) for s in record.steps] == [("cancelled", 42.0)] * 2
    assert (await store.get_execution("q7")).status == "succeeded"
    theirs = await store.get_execution("theirs")
    assert theirs.status == "pending" and theirs.finished_at is None


# ------------------------------------ where the memory and SQLite stores disagreed


async def test_cancelling_an_execution_nobody_holds(store: Store) -> None:
    await store.create_execution(_record("orphan", owner="dead", lease=10.0))
    record = await store.request_cancel("orphan", 50.0)  # its lease expired at 10
    assert record.status == "cancelled" and record.cancel_requested
    assert record.finished_at == 50.0
    assert [(s.status, s.finished_at) for s in record.steps] == [("cancelled", 50.0)] * 2


async def test_the_newest_definition_is_the_last_registered(store: Store) -> None:
    def definition(version: str, digest: str, at: float) -> DefinitionRecord:
        return DefinitionRecord("wf", version, digest, b"{}", at)

    await store.put_definition(definition("1", "d1", 1.0))  # stored by a run, not registered
    await store.put_definition(definition("2", "d2", 2.0), register=True)
    await store.put_definition(definition("1", "d1", 3.0), register=True)  # registered later
    newest = await store.get_definition("wf")
    assert newest is not None and newest.digest == "d1"
    # registering the same name and version again changes nothing
    again = await store.put_definition(definition("1", "dX", 9.0), register=True)
    assert again.digest == "d1"
    newest = await store.get_definition("wf")
    assert newest is not None and newest.digest == "d1"


async def test_a_step_record_for_an_unknown_step_is_ignored(store: Store) -> None:
    await store.create_execution(_record("e1"))
    await store.record_step("e1", StepRecord(step_id="nope", status="succeeded"))
    assert [s.step_id for s in (await store.get_execution("e1")).steps] == ["a", "b"]


async def test_pruning_an_old_child_attempt_keeps_the_newer_one(store: Store) -> None:
    await store.create_execution(_record("parent"))
    await store.create_execution(_record("try1", parent=("parent", "s"), created_at=1.0))
    await store.create_execution(_record("try2", parent=("parent", "s"), created_at=2.0))
    await store.finish_execution("try1", "failed", result=None, error=None, finished_at=5.0)
    assert await store.prune(10.0) == 1
    child = await store.find_child("parent", "s")
    assert child is not None and child.id == "try2"


@pytest.mark.parametrize("backend", ["memory", "sqlite"])
async def test_no_step_records_without_durability(tmp_path: Path, backend: str) -> None:
    url = "memory://" if backend == "memory" else f"sqlite://{tmp_path}/none.db"
    store = open_store(url, durability="none")
    await store.open()
    try:
        await store.create_execution(_record("e1"))
        await store.record_step("e1", StepRecord(step_id="a", status="succeeded", output=1))
        assert [s.status for s in (await store.get_execution("e1")).steps] == ["pending"] * 2
    finally:
        await store.close()


async def test_cancel_execution_is_the_one_meaning_of_cancelled(store: Store) -> None:
    await store.create_execution(_record("e", owner="A", lease=100.0))
    await store.create_execution(_record("kid", owner="A", lease=100.0, parent=("e", "s")))
    await store.record_step("e", StepRecord(step_id="a", status="succeeded", finished_at=3.0))
    assert not await store.cancel_execution("e", "nope", 9.0, owner="B")  # fenced
    assert await store.cancel_execution("e", "cancelled on request", 9.0, owner="A")
    record = await store.get_execution("e")
    assert record.status == "cancelled" and record.finished_at == 9.0
    assert record.error == ErrorInfo("WorkflowCancelled", "cancelled on request")
    assert [(s.status, s.finished_at) for s in record.steps] == [
        ("succeeded", 3.0),  # finished steps keep their record
        ("cancelled", 9.0),
    ]
    assert (await store.get_execution("kid")).status == "cancelled"
    assert not await store.cancel_execution("e", "again", 10.0)  # finished: nothing changes


def test_the_rules_as_predicates() -> None:
    # The same rules the SQL conditions say (corral/storage/rules.py); the store
    # cases above check each backend against them.
    from corral.storage import rules

    orphan = _record("o", owner="dead", lease=10.0)
    assert rules.unfinished(orphan) and not rules.lease_held(orphan, 20.0)
    assert rules.lease_held(orphan, 5.0)
    assert rules.claimable(orphan, "me", 20.0) and not rules.claimable(orphan, "dead", 20.0)
    assert not rules.claimable(orphan, "me", 5.0)  # the lease still runs
    kid = _record("k", owner="dead", lease=10.0, parent=("o", "s"))
    assert not rules.claimable(kid, "me", 20.0)  # children go with their parent
    orphan.finished_at, orphan.status = 15.0, "succeeded"
    assert not rules.unfinished(orphan) and not rules.claimable(orphan, "me", 20.0)
    assert rules.not_owned(orphan, "me") and not rules.not_owned(orphan, "dead")
    first = DefinitionRecord("wf", "1", "a", b"{}", 1.0)
    later = DefinitionRecord("wf", "2", "b", b"{}", 2.0)
    assert rules.newest([later, first]) is later and rules.newest([]) is None


# ---------------------------------------------------------------- workers' queue


def _queued(
    execution_id: str, *, priority: int = 0, at: float, handlers: list[str]
) -> ExecutionRecord:
    record = _record(execution_id, created_at=at)
    record.priority = priority
    record.handlers = handlers
    return record


async def test_claims_go_by_priority_then_age_up_to_a_limit(store: Store) -> None:
    for i, (prio, at) in enumerate([(0, 10.0), (5, 30.0), (0, 5.0), (5, 20.0)]):
        await store.create_execution(_queued(f"q{i}", priority=prio, at=at, handlers=["core.noop"]))
    assert await store.claim_expired("W1", 100.0, 200.0, limit=2) == ["q1", "q3"]  # priority 5
    assert await store.claim_expired("W2", 100.0, 200.0, limit=1) == ["q2"]  # then the oldest
    assert await store.claim_expired("W2", 100.0, 200.0, limit=0) == []
    assert await store.claim_expired("W3", 100.0, 200.0) == ["q0"]
    assert (await store.get_execution("q1")).owner == "W1"


async def test_a_claim_with_a_start_marks_queued_ones_running(store: Store) -> None:
    """A claimer that starts what it claims at once has the claim mark it
    running (one statement); an orphan that had started keeps its start."""
    await store.create_execution(_queued("q", at=1.0, handlers=["core.noop"]))
    orphan = _record("orphan", owner="dead", lease=5.0)
    orphan.status, orphan.started_at = "running", 2.0
    await store.create_execution(orphan)
    assert await store.claim_expired("W", 10.0, 40.0, start=10.0) == ["orphan", "q"]
    q, o = await store.get_execution("q"), await store.get_execution("orphan")
    assert (q.status, q.started_at, q.owner, q.lease_expires_at) == ("running", 10.0, "W", 40.0)
    assert (o.status, o.started_at, o.owner) == ("running", 2.0, "W")
    # without a start, a claim leaves them as they were
    await store.create_execution(_queued("later", at=3.0, handlers=["core.noop"]))
    assert await store.claim_expired("V", 11.0, 40.0) == ["later"]
    later = await store.get_execution("later")
    assert (later.status, later.started_at, later.owner) == ("pending", None, "V")


async def test_a_claim_can_answer_with_the_records(store: Store) -> None:
    """``claim_records``: the claim of ``claim_expired`` (same choice, same
    marks), answered with the executions and their steps."""
    for i, priority in enumerate((0, 5, 0)):
        await store.create_execution(
            _queued(f"q{i}", priority=priority, at=float(i), handlers=["core.noop"])
        )
    got = await store.claim_records("W", 10.0, 40.0, limit=2, start=10.0)
    assert [r.id for r in got] == ["q0", "q1"]  # priority 5, then the oldest; by id
    for record in got:
        assert (record.status, record.owner, record.started_at) == ("running", "W", 10.0)
        assert record.lease_expires_at == 40.0
        assert [s.step_id for s in record.steps] == [
            s.step_id for s in (await store.get_execution(record.id)).steps
        ]
        assert record.steps
    assert [r.id for r in await store.claim_records("V", 11.0, 40.0)] == ["q2"]
    assert await store.claim_records("V", 12.0, 40.0) == []


async def test_a_worker_claims_only_what_its_handlers_can_run(store: Store) -> None:
    await store.create_execution(_queued("plain", at=1.0, handlers=["core.noop"]))
    await store.create_execution(_queued("vibe", at=2.0, handlers=["core.noop", "vibe.plan"]))
    await store.create_execution(_queued("unknown", at=3.0, handlers=[]))  # says nothing: any
    assert await store.claim_expired("W1", 10.0, 20.0, handlers=["core.noop", "core.echo"]) == [
        "plain",
        "unknown",
    ]
    assert await store.claim_expired("W2", 10.0, 20.0, handlers=["core.noop"]) == []
    assert await store.claim_expired("W3", 10.0, 20.0, handlers=["vibe.plan", "core.noop"]) == [
        "vibe"
    ]
    assert (await store.get_execution("vibe")).handlers == ["core.noop", "vibe.plan"]


async def test_cancel_requests_and_release(store: Store) -> None:
    await store.create_execution(_record("mine", owner="W", lease=100.0))
    await store.create_execution(_record("other", owner="X", lease=100.0))
    await store.create_execution(_record("done", owner="W", lease=100.0))
    await store.finish_execution("done", "succeeded", result=None, error=None, finished_at=5.0)
    assert await store.cancel_requests("W") == []
    await store.request_cancel("mine", 50.0)  # held: flagged for its owner
    await store.request_cancel("other", 50.0)
    assert await store.cancel_requests("W") == ["mine"]
    assert await store.release("W") == ["mine"]
    released = await store.get_execution("mine")
    assert released.owner is None and released.lease_expires_at is None
    assert released.status == "pending" and released.cancel_requested
    assert await store.cancel_requests("W") == []
    # Released: any engine claims it at once, lease or not.
    assert await store.claim_expired("V", 50.0, 150.0) == ["mine"]


async def test_a_queued_submission_from_another_process_signals(store: Store) -> None:
    other = store
    if not isinstance(store, MemoryStore):  # a second connection, as another process has
        other = open_store(_URLS[id(store)])
    async with lifetime(other):
        if other is not store:
            await other.open()
        try:
            with trio.move_on_after(0.2):  # the first wait may return at once ("look once")
                await store.wait_signal()
            with trio.move_on_after(0.3) as idle:
                await store.wait_signal()
            assert idle.cancelled_caught  # nothing happened: no signal
            got = trio.Event()

            async def wait() -> None:
                await store.wait_signal()
                got.set()

            async with trio.open_nursery() as nursery:
                nursery.start_soon(wait)
                await trio.sleep(0.1)
                await other.create_execution(_record("queued"))  # no owner: queued
                with trio.fail_after(5):
                    await got.wait()
        finally:
            if other is not store:
                await other.close()


async def test_an_engine_that_is_not_a_worker_takes_over_orphans_only(store: Store) -> None:
    await store.create_execution(_record("queued"))  # no owner: for workers
    await store.create_execution(_record("orphan", owner="dead", lease=10.0))
    assert await store.claim_expired("E", 50.0, 100.0, queued=False) == ["orphan"]
    assert await store.claim_expired("W", 50.0, 100.0) == ["queued"]


async def test_get_executions_reads_several_in_the_order_asked(store: Store) -> None:
    for i in range(3):
        await store.create_execution(_record(f"g{i}"))
    got = await store.get_executions(["g2", "nope", "g0"])
    assert [r.id for r in got] == ["g2", "g0"]
    assert [s.step_id for s in got[0].steps] == ["a", "b"]
    assert got[1].inputs == {"x": 1, "big": 2**70}
    assert await store.get_executions([]) == []


async def test_pauses_hold_queued_work_from_claims(store: Store) -> None:
    await store.create_execution(_record("q-wf", workflow="wf"))
    await store.create_execution(_record("q-other", workflow="other", created_at=1001.0))
    await store.create_execution(_record("orphan", workflow="wf", owner="dead", lease=50.0))
    await store.start_execution("orphan", "dead", 10.0)
    assert await store.pause("wf", 5.0) is True
    assert await store.pause("wf", 6.0) is False
    assert await store.paused() == {"wf": 5.0}
    # Queued work of a paused workflow is held; what had started goes on.
    assert await store.claim_expired("W", 100.0, 200.0) == ["orphan", "q-other"]
    assert await store.claim_one("q-wf", "W", 100.0, 200.0) is False
    assert await store.pause("*", 7.0) is True
    await store.create_execution(_record("q-late", workflow="late", created_at=1002.0))
    assert await store.claim_expired("W", 100.0, 200.0) == []
    assert await store.unpause("*") is True and await store.unpause("*") is False
    assert await store.unpause("wf") is True
    assert await store.paused() == {}
    assert await store.claim_expired("W", 100.0, 200.0) == ["q-late", "q-wf"]


async def test_cancel_requests_in_bulk(store: Store) -> None:
    await store.create_execution(_record("held", owner="A", lease=500.0))
    await store.create_execution(_record("orphan", owner="dead", lease=50.0))
    await store.create_execution(_record("done", owner="A", lease=500.0))
    await store.finish_execution("done", "succeeded", result=None, error=None, finished_at=1.0)
    changed = await store.request_cancel_many(["held", "orphan", "done", "unknown"], 100.0)
    assert changed == ["held", "orphan"]
    held = await store.get_execution("held")
    assert held.status == "pending" and held.cancel_requested
    assert await store.cancel_requests("A") == ["held"]
    orphan = await store.get_execution("orphan")
    assert orphan.status == "cancelled" and {s.status for s in orphan.steps} == {"cancelled"}
    assert (await store.get_execution("done")).status == "succeeded"
    assert await store.request_cancel_many([], 100.0) == []


async def test_retries_keep_their_link_and_reused_steps(store: Store) -> None:
    await store.create_execution(_record("first", created_at=10.0))
    retry = _record("second", created_at=20.0)
    retry.retry_of = "first"
    retry.steps[0].status = "succeeded"
    retry.steps[0].output = {"kept": [1, 2]}
    retry.steps[0].attempts = 2
    retry.steps[0].started_at, retry.steps[0].finished_at = 1.0, 2.0
    retry.steps[0].handler_version = "3"
    retry.steps[0].reused_from = "first"
    await store.create_execution(retry)
    got = await store.get_execution("second")
    assert got.retry_of == "first"
    a, b = got.steps
    assert (a.status, a.output, a.attempts, a.handler_version, a.reused_from) == (
        "succeeded",
        {"kept": [1, 2]},
        2,
        "3",
        "first",
    )
    assert (a.started_at, a.finished_at) == (1.0, 2.0)
    assert b.status == "pending" and b.reused_from is None
    # A step's record written later keeps where a reused step came from, and
    # the handler version of what ran.
    b.status, b.handler_version = "succeeded", "7"
    await store.record_step("second", b)
    assert (await store.get_execution("second")).steps[1].handler_version == "7"
    assert [r.id for r in await store.list_executions(retry_of="first")] == ["second"]
    assert [r.id for r in await store.list_executions(since=15.0)] == ["second"]
    assert [r.id for r in await store.list_executions(since=5.0)] == ["second", "first"]
