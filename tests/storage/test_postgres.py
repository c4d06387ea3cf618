"""The PostgreSQL store's own concerns, on a real server: URLs, bad input
(one clear line, nothing written, the password never shown), migrations
from two processes at once, and a server restart under a running worker."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trio

import corral
from corral.core.errors import StoreError
from corral.storage import lifetime, open_store
from corral.storage.pg_url import Settings, redact

ROOT = Path(__file__).resolve().parents[2]


def _sql(url: str, statement: str) -> Any:
    import asyncpg

    async def run() -> Any:
        conn = await asyncpg.connect(url)
        try:
            return await conn.fetch(statement)
        finally:
            await conn.close()

    with concurrent.futures.ThreadPoolExecutor(1) as pool:  # asyncio, outside Trio
        return pool.submit(asyncio.run, run()).result()


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "corral", *args], capture_output=True, text=True, timeout=120
    )


def _with(url: str, part: str, value: str) -> str:
    """``url`` with its password, port or database replaced."""
    head, _, db = url.rpartition("/")
    scheme, _, rest = head.partition("://")
    auth, _, hostport = rest.rpartition("@")
    user, _, password = auth.partition(":")
    host, _, port = hostport.partition(":")
    parts = {"password": password, "port": port, "db": db, part: value}
    return f"{scheme}://{user}:{parts['password']}@{host}:{parts['port']}/{parts['db']}"


def test_urls_are_parsed_and_the_password_hidden() -> None:
    st = Settings("postgres://me:s%40cret@db.example:6000/app?pool_size=4&statement_timeout=2.5")
    assert (st.host, st.port, st.user, st.password, st.database) == (
        "db.example",
        6000,
        "me",
        "s@cret",
        "app",
    )
    assert (st.pool_size, st.statement_timeout) == (4, 2.5)
    assert st.shown == "postgres://me:***@db.example:6000/app?pool_size=4&statement_timeout=2.5"
    assert redact("postgresql://u@h/db") == "postgresql://u@h/db"
    store = open_store("postgresql://me:hunter2@h/db")
    assert "hunter2" not in store.url


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgresql://u:pw@h:99999999/db", "the port is not a number"),
        ("postgresql://u:pw@h/db?pool_size=0", "pool_size='0' must be a number from 1"),
        ("postgresql://u:pw@h/db?statement_timeout=x", "statement_timeout='x' must be a number"),
        ("postgresql://u:pw@h/db?colour=red", "unknown option(s) colour"),
        ("postgresql://u:pw@h/db?sslmode=maybe", "sslmode='maybe'; expected one of"),
        ("postgresq://u:pw@h/db", "unknown store scheme 'postgresq'"),
    ],
)
def test_bad_urls(url: str, message: str) -> None:
    with pytest.raises(StoreError) as caught:
        open_store(url)
    assert message in str(caught.value)
    assert ":pw@" not in str(caught.value)


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never says anything."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    try:
        yield int(server.getsockname()[1])
    finally:
        server.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_bad_servers_are_one_clear_line(postgres_url: str, silent_port: int) -> None:
    cases = [
        (_with(postgres_url, "password", "wrong"), "refused user corral: wrong password"),
        (_with(postgres_url, "db", "no_such_db"), "has no database 'no_such_db'"),
        (_with(postgres_url, "port", str(_free_port())), "connection refused"),
        (
            f"postgresql://corral:pw@127.0.0.1:{silent_port}/db?connect_timeout=0.5",
            "no PostgreSQL answered at 127.0.0.1",
        ),
    ]
    for url, message in cases:
        done = _cli("list", "--store", url)
        assert done.returncode == 2, (url, done.stderr)
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], (url, done.stderr)
        assert "corral-test-secret" not in done.stderr + done.stdout


def test_a_newer_schema_is_refused_and_nothing_written(postgres_url: str) -> None:
    assert _cli("migrate", "--store", postgres_url).returncode == 0
    _sql(postgres_url, "INSERT INTO schema_migrations VALUES (99, 'future', 'x', 0)")
    done = _cli("run", str(ROOT / "examples" / "fanout.yaml"), "--store", postgres_url)
    assert done.returncode == 2
    assert "newer than this corral knows" in done.stderr and "upgrade corral" in done.stderr
    assert _sql(postgres_url, "SELECT count(*) FROM workflow_executions")[0][0] == 0


def test_a_database_holding_other_tables_is_refused_unless_init(postgres_url: str) -> None:
    _sql(postgres_url, "CREATE TABLE customers (id int)")
    done = _cli("run", str(ROOT / "examples" / "fanout.yaml"), "--store", postgres_url)
    assert done.returncode == 2 and "holds other tables (customers)" in done.stderr
    assert _sql(postgres_url, "SELECT to_regclass('workflow_executions') IS NULL")[0][0]
    done = _cli("migrate", "--init", "--store", postgres_url)
    assert done.returncode == 0, done.stderr


def test_migrations_from_two_processes_at_once_are_serialised(postgres_url: str) -> None:
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "corral", "migrate", "--store", postgres_url],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    applied = [out for out, _ in outs if "applied 001_create_workflow_definitions" in out]
    assert len(applied) == 1, outs  # one applied everything, the other found nothing to do
    rows = _sql(postgres_url, "SELECT version FROM schema_migrations ORDER BY version")
    assert [r[0] for r in rows] == list(range(1, 10))


def test_migrate_down_and_up(postgres_url: str) -> None:
    done = _cli("migrate", "--store", postgres_url, "--to", "0", "--yes")
    assert done.returncode == 0, done.stderr
    done = _cli("migrate", "--store", postgres_url, "--to", "3")
    assert done.returncode == 0 and "now at schema version 3" in done.stdout
    done = _cli("migrate", "--store", postgres_url, "--to", "0", "--yes")
    assert "rolled back 001_create_workflow_definitions" in done.stdout
    tables = _sql(
        postgres_url,
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'",
    )
    assert [t[0] for t in tables] == ["schema_migrations"]
    done = _cli("migrate", "--store", postgres_url)
    assert "now at schema version 9" in done.stdout


async def test_the_store_needs_its_lifetime(postgres_url: str) -> None:
    store = open_store(postgres_url)
    with pytest.raises(StoreError, match="inside its lifetime"):
        await store.open()
    async with lifetime(store):
        await store.open()
        await store.close()


async def test_statement_timeout_is_a_store_error(postgres_url: str) -> None:
    store = open_store(postgres_url + "?statement_timeout=0.05")
    async with lifetime(store):
        await store.open()
        try:

            async def sleepy(conn: Any) -> None:
                await conn.execute("SELECT pg_sleep(1)")

            with pytest.raises(StoreError, match="statement_timeout"):
                await store._call(sleepy)  # type: ignore[attr-defined]
            assert await store.list_executions() == []  # the pool is fine after it
        finally:
            await store.close()


async def test_engine_on_postgres_runs_a_workflow_file(postgres_url: str) -> None:
    async with corral.open_engine(postgres_url) as engine:
        result = await engine.run(str(ROOT / "examples" / "fanout.yaml"))
        (record,) = await engine.list()
    assert record.status == "succeeded" and record.result == result


async def test_a_server_restart_under_a_running_worker(
    postgres_server: str, tmp_path: Path
) -> None:
    """The worker retries with backoff and carries on; nothing is lost; no
    traceback. On a server of its own (it is restarted)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("pgc", ROOT / "tests" / "pgcluster.py")
    assert spec is not None and spec.loader is not None
    pgc = importlib.util.module_from_spec(spec)
    sys.modules["pgc"] = pgc
    spec.loader.exec_module(pgc)
    cluster = pgc.start()
    try:
        url = cluster.url
        flow = tmp_path / "slow.yaml"
        flow.write_text(
            "name: slow\nsteps:\n"
            "  - {id: a, handler: core.sleep, params: {seconds: 0.3}}\n"
            "  - {id: b, handler: core.sleep, params: {seconds: 0.3}, needs: [a]}\n"
        )
        worker = subprocess.Popen(
            [sys.executable, "-m", "corral", "worker", "--store", url, "--lease", "2s"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            ids = []
            for _ in range(20):
                done = _cli("submit", str(flow), "--store", url)
                assert done.returncode == 0, done.stderr
                ids.append(done.stdout.strip())
            await trio.sleep(0.5)  # some are running now
            cluster.restart()
            with trio.fail_after(120):
                while True:
                    done = _cli("list", "--store", url, "--json", "--limit", "100")
                    if done.returncode == 0:
                        records = json.loads(done.stdout)
                        if len(records) == 20 and all(r["finished_at"] for r in records):
                            break
                    await trio.sleep(0.5)
            assert sorted(r["id"] for r in records) == sorted(ids)
            assert {r["status"] for r in records} == {"succeeded"}, records
        finally:
            worker.terminate()
            out, err = worker.communicate(timeout=60)
        assert worker.returncode == 0, err
        assert "Traceback" not in err, err
    finally:
        cluster.stop()


# ---------------------------------------------------------------- status writes in bulk


def _record(execution_id: str, owner: str | None = "A") -> Any:
    from corral.core.model import ExecutionRecord, StepRecord

    return ExecutionRecord(
        id=execution_id,
        workflow="wf",
        version=1,
        owner=owner,
        lease_expires_at=None if owner is None else 1e12,
        created_at=1.0,
        steps=[StepRecord(step_id="a", handler="core.noop"), StepRecord(step_id="b")],
    )


async def _close_on_failure(store: Any) -> None:
    """(The writer runs until the store closes: close it if the test fails.)"""
    try:
        await trio.sleep_forever()
    finally:
        with trio.CancelScope(shield=True):
            await store.close()


async def _in_one_batch(store: Any, *calls: Any) -> list[BaseException | None]:
    """Run the calls concurrently (queued together: one batch); their errors."""
    errors: list[BaseException | None] = [None] * len(calls)

    async def one(i: int) -> None:
        try:
            await calls[i]()
        except Exception as exc:
            errors[i] = exc

    async with trio.open_nursery() as nursery:
        for i in range(len(calls)):
            nursery.start_soon(one, i)
    return errors


async def test_status_writes_of_a_batch_go_in_bulk_and_stay_fenced(postgres_url: str) -> None:
    from corral.core.errors import LeaseLost
    from corral.core.model import StepRecord

    store = open_store(postgres_url)
    async with lifetime(store):
        await store.open()
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(store.run)
                nursery.start_soon(_close_on_failure, store)
                for i in range(3):
                    await store.create_execution(_record(f"e{i}"))
                # e1 was taken over by B
                await store.cancel_requests("A")  # (any op: the inserts are committed)
                _sql(postgres_url, "UPDATE workflow_executions SET owner = 'B' WHERE id = 'e1'")
                done = StepRecord(step_id="a", status="succeeded", attempts=1, output={"n": 1})
                before = store.batches  # type: ignore[attr-defined]
                errors = await _in_one_batch(
                    store,
                    *[
                        (lambda i=i: store.record_step(f"e{i}", done, owner="A"))
                        for i in range(3)
                    ],
                    *[
                        (
                            lambda i=i: store.finish_execution(
                                f"e{i}", "succeeded", result=i, error=None, finished_at=5.0,
                                owner="A",
                            )
                        )
                        for i in range(3)
                    ],
                )
                assert store.batches - before <= 2  # type: ignore[attr-defined]
                assert [type(e).__name__ if e else None for e in errors] == [
                    None, "LeaseLost", None, None, "LeaseLost", None
                ]
                assert all(isinstance(e, LeaseLost) for e in errors if e)
                for i in (0, 2):
                    got = await store.get_execution(f"e{i}")
                    assert got.status == "succeeded" and got.result == i
                    assert got.step("a").output == {"n": 1}
                stolen = await store.get_execution("e1")
                assert stolen.status == "pending" and stolen.step("a").status == "pending"
                nursery.cancel_scope.cancel()
        finally:
            await store.close()


async def test_a_failing_write_in_a_bulk_batch_fails_alone(postgres_url: str) -> None:
    store = open_store(postgres_url)
    async with lifetime(store):
        await store.open()
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(store.run)
                nursery.start_soon(_close_on_failure, store)
                await store.create_execution(_record("dup"))
                errors = await _in_one_batch(
                    store,
                    lambda: store.create_execution(_record("new1")),
                    lambda: store.create_execution(_record("dup")),  # the id exists
                    lambda: store.create_execution(_record("new2")),
                )
                assert errors[0] is None and errors[2] is None
                assert isinstance(errors[1], StoreError) and "dup" in str(errors[1])
                ids = sorted(r.id for r in await store.list_executions())
                assert ids == ["dup", "new1", "new2"]
                assert len((await store.get_execution("new2")).steps) == 2
                nursery.cancel_scope.cancel()
        finally:
            await store.close()
