"""The store commands of the CLI on real SQLite files: list, show, cancel,
prune, migrate, and their errors (exit 2, one line, no traceback).

These tests are synchronous: the CLI calls ``trio.run`` itself, so stores are
prepared with their own ``trio.run`` too.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
import trio

import corral
from corral.cli import main, parse_duration
from corral.core.errors import UsageError
from corral.core.model import ErrorInfo, ExecutionRecord, StepRecord
from corral.storage import Store, lifetime, migrate, open_store

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"

T = TypeVar("T")


@pytest.fixture(autouse=True)
def _plain_output(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    try:
        code = main(list(args))
    except SystemExit as exc:  # argparse's own usage errors
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def with_store(url: str, work: Callable[[Store], Awaitable[T]]) -> T:
    async def run() -> T:
        store = open_store(url)
        async with lifetime(store):
            await store.open()
            try:
                return await work(store)
            finally:
                await store.close()

    return trio.run(run)


def record(
    execution_id: str,
    *,
    status: Any = "running",
    created_at: float | None = None,
    finished_at: float | None = None,
    owner: str | None = "other-engine",
    lease: float | None = None,
) -> ExecutionRecord:
    t = time.time() if created_at is None else created_at
    return ExecutionRecord(
        id=execution_id,
        workflow="made-by-hand",
        version=1,
        status=status,
        owner=owner,
        lease_expires_at=lease,
        created_at=t,
        started_at=t,
        finished_at=finished_at,
        steps=[
            StepRecord("a", "succeeded", 1, "core.noop", t, t + 0.1),
            StepRecord("b", "running" if finished_at is None else "succeeded", 1, "core.noop", t),
        ],
    )


def backend_of(url: str) -> str:
    return "postgres" if url.startswith("postgres") else "sqlite"


def newest(url: str) -> int:
    """The schema version corral ships for the store at ``url`` (or a backend name)."""
    return len(migrate.migrations(backend_of(url)))


def create(url: str, *records: ExecutionRecord) -> None:
    async def work(store: Store) -> None:
        for r in records:
            await store.create_execution(r)

    with_store(url, work)


def get(url: str, execution_id: str) -> ExecutionRecord:
    async def work(store: Store) -> ExecutionRecord:
        return await store.get_execution(execution_id)

    return with_store(url, work)


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgres":
        return str(request.getfixturevalue("postgres_url"))
    return f"sqlite://{tmp_path / 'corral.db'}"


@pytest.fixture
def failing(tmp_path: Path) -> Path:
    wf = tmp_path / "fail.yaml"
    wf.write_text("name: f\nsteps:\n  - {id: boom, handler: core.fail, params: {message: nope}}\n")
    return wf


def run_example(capsys: pytest.CaptureFixture[str], url: str, name: str, *extra: str) -> str:
    code, out, err = cli(capsys, "run", str(EXAMPLES / name), "--store", url, "--json", *extra)
    assert code == 0, err
    execution_id: str = json.loads(out)["id"]
    return execution_id


# ---------------------------------------------------------------- run, list, show


def test_run_then_list_and_show(capsys: pytest.CaptureFixture[str], url: str) -> None:
    first = run_example(capsys, url, "conditions.yaml")
    second = run_example(capsys, url, "retries.yaml")

    code, out, err = cli(capsys, "list", "--store", url, "--json")
    assert code == 0, err
    listed = json.loads(out)
    assert [r["id"] for r in listed] == [second, first]  # newest first
    assert {r["status"] for r in listed} == {"succeeded"}

    code, out, _ = cli(capsys, "list", "--store", url)
    assert code == 0
    assert first in out and second in out and "conditions" in out and "retries" in out
    assert out.index(second) < out.index(first)

    code, out, _ = cli(capsys, "list", "--store", url, "--workflow", "retries", "--json")
    assert [r["id"] for r in json.loads(out)] == [second]
    code, out, _ = cli(capsys, "list", "--store", url, "--limit", "1", "--json")
    assert [r["id"] for r in json.loads(out)] == [second]
    code, out, _ = cli(capsys, "list", "--store", url, "--status", "failed", "--json")
    assert json.loads(out) == []
    code, out, _ = cli(capsys, "list", "--store", url, "--status", "failed")
    assert "no executions" in out

    code, out, _ = cli(capsys, "show", second, "--store", url)
    assert code == 0
    assert second in out and "retries" in out and "succeeded" in out
    assert "flaky" in out and "second try works" in out
    code, out, _ = cli(capsys, "show", second, "--store", url, "--json")
    shown = json.loads(out)
    assert shown["id"] == second and shown["status"] == "succeeded"
    flaky = next(s for s in shown["steps"] if s["step_id"] == "flaky")
    assert flaky["attempts"] == 2


def test_show_a_failed_execution(
    capsys: pytest.CaptureFixture[str], url: str, failing: Path
) -> None:
    code, _, err = cli(capsys, "run", str(failing), "--store", url)
    assert code == 1
    execution_id = err.split("(execution ")[1].split(")")[0]  # run prints the id
    code, out, _ = cli(capsys, "show", execution_id, "--store", url)
    assert code == 0
    assert "failed" in out and "boom" in out and "StepFailure" in out and "nope" in out
    code, out, _ = cli(capsys, "list", "--store", url, "--status", "failed", "--json")
    assert [r["id"] for r in json.loads(out)] == [execution_id]


def test_show_names_child_executions(capsys: pytest.CaptureFixture[str], url: str) -> None:
    parent = run_example(capsys, url, "child.yaml")
    code, out, _ = cli(capsys, "list", "--store", url, "--workflow", "greet", "--json")
    assert json.loads(out) == []  # children are shown under their parent ...
    code, out, _ = cli(capsys, "list", "--store", url, "--workflow", "greet", "--json", "--all")
    children = {r["id"] for r in json.loads(out)}  # ... or with --all
    assert len(children) == 2
    code, out, _ = cli(capsys, "list", "--store", url, "--json")
    assert [r["id"] for r in json.loads(out)] == [parent]
    code, out, _ = cli(capsys, "show", parent, "--store", url)
    assert code == 0
    assert all(child in out for child in children)


def test_an_id_prefix_names_an_execution(capsys: pytest.CaptureFixture[str], url: str) -> None:
    create(url, record("abcd1111"), record("abcd2222"), record("ef001234"))
    code, out, _ = cli(capsys, "show", "ef00", "--store", url, "--json")
    assert code == 0 and json.loads(out)["id"] == "ef001234"
    code, _, err = cli(capsys, "show", "abcd", "--store", url)
    assert code == 2 and "several execution ids (abcd1111, abcd2222)" in err
    code, _, err = cli(capsys, "cancel", "ef0", "--store", url)  # under 4 characters: no
    assert code == 2 and "no execution with id 'ef0'" in err
    code, out, _ = cli(capsys, "cancel", "abcd2", "--store", url)
    assert code == 0 and "abcd2222" in out


async def test_ids_of_one_engine_differ_from_their_start() -> None:
    import corral

    async with corral.open_engine("memory://", entry_points=False) as engine:
        wf = corral.Workflow("w")
        wf.step("a", "core.noop")
        ids = [(await engine.submit(wf)).id for _ in range(50)]
    assert len({i[:4] for i in ids}) >= 45 and len(set(ids)) == 50


def test_show_a_running_execution(capsys: pytest.CaptureFixture[str], url: str) -> None:
    create(url, record("live", lease=time.time() + 60))
    code, out, _ = cli(capsys, "show", "live", "--store", url)
    assert code == 0
    assert "running" in out and "other-engine" in out and "so far" in out
    code, out, _ = cli(capsys, "list", "--store", url, "--status", "running")
    assert "live" in out and "so far" in out


def test_run_and_list_default_to_corral_store(
    capsys: pytest.CaptureFixture[str], url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CORRAL_STORE", url)
    code, out, err = cli(capsys, "run", str(EXAMPLES / "conditions.yaml"))
    assert code == 0, err
    execution_id = err.split("(execution ")[1].split(")")[0]
    code, out, _ = cli(capsys, "list", "--json")
    assert [r["id"] for r in json.loads(out)] == [execution_id]


def test_default_store_is_the_per_user_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CORRAL_STORE")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    code, out, err = cli(capsys, "list")
    assert code == 2 and "no corral database" in err  # list does not create it
    assert not (tmp_path / "data" / "corral").exists()
    code, _, err = cli(capsys, "run", str(EXAMPLES / "conditions.yaml"))
    assert code == 0, err
    assert (tmp_path / "data" / "corral" / "corral.db").is_file()
    code, out, _ = cli(capsys, "list", "--json")
    assert len(json.loads(out)) == 1


# ---------------------------------------------------------------- cancel


def test_cancel_a_finished_execution_changes_nothing(
    capsys: pytest.CaptureFixture[str], url: str
) -> None:
    execution_id = run_example(capsys, url, "conditions.yaml")
    before = get(url, execution_id)
    code, out, _ = cli(capsys, "cancel", execution_id, "--store", url)
    assert code == 0
    assert "already succeeded" in out and "nothing to cancel" in out
    assert get(url, execution_id) == before


def test_cancel_an_orphan_cancels_it_at_once(capsys: pytest.CaptureFixture[str], url: str) -> None:
    create(url, record("orphan", lease=time.time() - 60))  # its engine died
    code, out, _ = cli(capsys, "cancel", "orphan", "--store", url)
    assert code == 0
    assert "orphan cancelled" in out and "no live engine" in out
    after = get(url, "orphan")
    assert after.status == "cancelled" and after.finished_at is not None
    assert after.step("a").status == "succeeded"
    assert after.step("b").status == "cancelled"


def test_cancel_a_held_execution_flags_it(capsys: pytest.CaptureFixture[str], url: str) -> None:
    create(url, record("held", lease=time.time() + 60))  # a live engine holds it
    code, out, _ = cli(capsys, "cancel", "held", "--store", url)
    assert code == 0
    assert "requested" in out and "other-engine" in out and "did not stop it" in out
    after = get(url, "held")
    assert after.status == "running" and after.cancel_requested


def test_cancel_an_unknown_id(capsys: pytest.CaptureFixture[str], url: str) -> None:
    run_example(capsys, url, "conditions.yaml")
    for command in ("cancel", "show"):
        code, _, err = cli(capsys, command, "nope", "--store", url)
        assert code == 2
        assert err.strip() == "corral: error: no execution with id 'nope'"


# ---------------------------------------------------------------- prune


def test_prune_deletes_old_finished_executions(
    capsys: pytest.CaptureFixture[str], url: str
) -> None:
    old = time.time() - 10 * 86400
    create(
        url,
        record("old-ok", status="succeeded", created_at=old, finished_at=old + 1),
        record("old-failed", status="failed", created_at=old, finished_at=old + 1),
        record("old-cancelled", status="cancelled", created_at=old, finished_at=old + 1),
        record("old-running", status="running", created_at=old, lease=time.time() + 60),
    )
    recent = run_example(capsys, url, "conditions.yaml")

    code, out, _ = cli(capsys, "prune", "--older-than", "7d", "--status", "failed", "--store", url)
    assert code == 0 and "pruned 1 execution " in out
    code, out, _ = cli(capsys, "list", "--store", url, "--json")
    assert {r["id"] for r in json.loads(out)} == {
        "old-ok",
        "old-cancelled",
        "old-running",
        recent,
    }

    code, out, _ = cli(capsys, "prune", "--older-than", "1w", "--store", url)
    assert code == 0 and "pruned 2 executions" in out
    code, out, _ = cli(capsys, "list", "--store", url, "--json")
    assert {r["id"] for r in json.loads(out)} == {"old-running", recent}  # unfinished stays

    code, out, _ = cli(capsys, "prune", "--older-than", "2w", "--store", url)
    assert code == 0 and "pruned 0 executions" in out


def test_prune_statuses_in_one_or_several_options(
    capsys: pytest.CaptureFixture[str], url: str
) -> None:
    old = time.time() - 3600
    statuses = ("succeeded", "failed", "cancelled", "timed_out")
    create(url, *(record(s, status=s, created_at=old, finished_at=old) for s in statuses))
    code, out, _ = cli(
        capsys, "prune", "--older-than", "30m", "--status", "failed", "timed_out", "--store", url
    )
    assert code == 0 and "pruned 2 executions" in out
    code, out, _ = cli(
        capsys, "prune", "--older-than", "30m", "--status", "cancelled,succeeded", "--store", url
    )
    assert code == 0 and "pruned 2 executions" in out


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("30m", 1800), ("12h", 43200), ("7d", 604800), ("2w", 1209600), ("15", 15)],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    ("text", "size"),
    [("512", 512), ("64k", 65536), ("64KiB", 65536), ("1m", 1 << 20), ("2 MB", 2 << 20)],
)
def test_parse_size(text: str, size: int) -> None:
    from corral.cli.common import parse_size

    assert parse_size(text, "--max-body") == size


def test_destructive_commands_are_guarded(
    capsys: pytest.CaptureFixture[str], url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = time.time() - 3 * 86400
    create(
        url,
        *(record(f"x{i}", status="succeeded", created_at=old, finished_at=old) for i in range(3)),
    )
    # a bare number (3 seconds, not days) is refused where it deletes data
    code, _, err = cli(capsys, "prune", "--older-than", "3", "--store", url)
    assert code == 2 and "give a unit (3s, 3m, 3h, 3d or 3w)" in err
    code, out, _ = cli(capsys, "prune", "--older-than", "1d", "--dry-run", "--store", url)
    assert code == 0 and "would prune 3 executions" in out and "nothing deleted" in out
    assert len(json.loads(cli(capsys, "list", "--json", "--store", url)[1])) == 3
    # on a terminal it asks; "no" keeps everything
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    monkeypatch.setattr("builtins.input", lambda question: "n")
    code, _, err = cli(capsys, "prune", "--older-than", "1d", "--store", url)
    assert code == 1 and "nothing deleted" in err
    code, _, err = cli(capsys, "migrate", "--to", "0", "--store", url)
    assert code == 1 and "nothing changed" in err
    assert len(json.loads(cli(capsys, "list", "--json", "--store", url)[1])) == 3
    monkeypatch.setattr("builtins.input", lambda question: "y")
    code, out, _ = cli(capsys, "prune", "--older-than", "1d", "--store", url)
    assert code == 0 and "pruned 3 executions" in out
    # off a terminal, rolling the schema back needs --yes
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    code, _, err = cli(capsys, "migrate", "--to", "0", "--store", url)
    assert code == 2 and "give --yes" in err
    code, out, _ = cli(capsys, "migrate", "--to", "4", "--dry-run", "--store", url)
    back = ", ".join(f"-{v}" for v in range(newest(url), 4, -1))
    assert code == 0 and f"would roll back {back} to reach 4" in out
    code, out, _ = cli(capsys, "migrate", "--store", url)
    assert f"already at schema version {newest(url)}" in out  # the dry run changed nothing


@pytest.mark.parametrize("text", ["", "7x", "-1d", "d", "1d2h", "1.d", "soon"])
def test_parse_duration_refuses(text: str) -> None:
    with pytest.raises(UsageError, match="expected a duration"):
        parse_duration(text)


# ---------------------------------------------------------------- migrate


def test_migrate_down_and_up(capsys: pytest.CaptureFixture[str], url: str) -> None:
    execution_id = run_example(capsys, url, "conditions.yaml")
    code, out, _ = cli(capsys, "migrate", "--store", url)
    assert code == 0 and f"already at schema version {newest(url)}" in out

    code, out, _ = cli(capsys, "migrate", "--store", url, "--to", "2", "--yes")
    assert code == 0
    shipped = migrate.migrations(backend_of(url))
    assert out.splitlines()[: len(shipped) - 2] == [
        f"rolled back {m.label}" for m in reversed(shipped[2:])
    ]
    assert out.splitlines()[len(shipped) - 3] == "rolled back 003_create_step_executions"
    assert "now at schema version 2" in out

    code, out, _ = cli(capsys, "migrate", "--store", url, "--to", "0", "--yes")
    assert code == 0
    assert "rolled back 001_create_workflow_definitions" in out
    assert "now at schema version 0" in out

    code, out, _ = cli(capsys, "migrate", "--store", url)
    assert code == 0 and f"now at schema version {newest(url)}" in out
    code, out, _ = cli(capsys, "list", "--store", url, "--json")
    assert json.loads(out) == []  # rolling back to 0 dropped the tables and their rows
    assert execution_id not in out


def test_migrate_creates_a_database(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    db = tmp_path / "new.db"
    code, out, _ = cli(capsys, "migrate", "--store", f"sqlite://{db}")
    assert code == 0 and db.is_file()
    assert f"created schema version {newest('sqlite')}" in out
    code, out, _ = cli(capsys, "list", "--store", f"sqlite://{db}")
    assert code == 0 and "no executions" in out


@pytest.mark.parametrize("to", ["99", "-1", "two"])
def test_migrate_to_an_unknown_version(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, to: str
) -> None:
    db = tmp_path / "x.db"
    code, _, err = cli(capsys, "migrate", "--store", f"sqlite://{db}", "--to", to)
    assert code == 2
    assert f"schema versions go from 0 to {newest('sqlite')}" in err
    assert not db.exists()  # refused before anything was created


def test_migrate_refuses_memory(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(capsys, "migrate", "--store", "memory://")
    assert code == 2 and "SQLite and PostgreSQL stores" in err


# ---------------------------------------------------------------- errors


STORE_COMMANDS: list[list[str]] = [
    ["list"],
    ["list", "--json"],
    ["show", "some-id"],
    ["cancel", "some-id"],
    ["prune", "--older-than", "7d"],
]


@pytest.mark.parametrize("args", STORE_COMMANDS)
def test_missing_database_is_not_created(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, args: list[str]
) -> None:
    db = tmp_path / "missing.db"
    code, out, err = cli(capsys, *args, "--store", f"sqlite://{db}")
    assert code == 2 and out == ""
    assert err.startswith(f"corral: error: no corral database at {db}")
    assert len(err.strip().splitlines()) == 1
    assert not db.exists()


@pytest.mark.parametrize("args", [*STORE_COMMANDS, ["migrate"]])
def test_corrupt_database(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, args: list[str]
) -> None:
    db = tmp_path / "corrupt.db"
    garbage = bytes(range(256)) * 64
    db.write_bytes(garbage)
    code, out, err = cli(capsys, *args, "--store", f"sqlite://{db}")
    assert code == 2 and out == ""
    assert "not a corral database, or it is corrupt" in err
    assert len(err.strip().splitlines()) == 1
    assert db.read_bytes() == garbage


@pytest.mark.parametrize("args", [*STORE_COMMANDS, ["migrate"]])
def test_directory_instead_of_database(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, args: list[str]
) -> None:
    code, out, err = cli(capsys, *args, "--store", f"sqlite://{tmp_path}")
    assert code == 2 and out == ""
    assert "is a directory" in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["list", "--limit", "0"], "--limit '0': expected a positive integer"),
        (["list", "--limit", "many"], "--limit 'many': expected a positive integer"),
        (["list", "--status", "done"], "--status 'done': expected one of"),
        (["prune", "--older-than", "7 days"], "expected a duration"),
        (["prune", "--older-than", "7d", "--status", "running"], "--status 'running'"),
        (["list", "--store", "bogus://x"], "unknown store scheme"),
        (["show", "x", "--store", "no-scheme.db"], "has no scheme"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(
    capsys: pytest.CaptureFixture[str], url: str, args: list[str], needle: str
) -> None:
    run_example(capsys, url, "conditions.yaml")
    if "--store" not in args:
        args = [*args, "--store", url]
    code, out, err = cli(capsys, *args)
    assert code == 2 and out == ""
    assert needle in err
    assert len(err.strip().splitlines()) == 1


def test_memory_store_commands(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "list", "--store", "memory://")
    assert code == 0 and "no executions" in out and "memory://" in out
    code, _, err = cli(capsys, "show", "x", "--store", "memory://")
    assert code == 2 and "no execution with id 'x'" in err


def test_error_records_round_trip_through_show(
    capsys: pytest.CaptureFixture[str], url: str
) -> None:
    r = record("broken", status="failed", finished_at=time.time(), owner=None)
    r.error = ErrorInfo("ResumeError", "cannot resume: [markup] is not markup", "b")
    create(url, r)
    code, out, _ = cli(capsys, "show", "broken", "--store", url)
    assert code == 0
    assert "ResumeError in step 'b': cannot resume: [markup] is not markup" in out


def test_show_says_when_no_step_records_were_kept(
    capsys: pytest.CaptureFixture[str], url: str
) -> None:
    async def work() -> str:
        async with corral.open_engine(url, durability="none", entry_points=False) as engine:
            handle = await engine.submit(EXAMPLES / "conditions.yaml")
            await handle.wait()
            return handle.id

    execution_id = trio.run(work)
    code, out, _ = cli(capsys, "show", execution_id, "--store", url)
    assert code == 0
    assert "succeeded" in out and 'durability "none"' in out


@pytest.mark.parametrize(
    "args",
    [
        ["list", "--limit", "99999999999999999999"],
        ["prune", "--older-than", "99999999999999999999999999w"],
    ],
)
def test_huge_numbers_are_usage_errors(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, args: list[str]
) -> None:
    from corral.cli import main

    db = tmp_path / "c.db"
    assert main(["migrate", "--store", f"sqlite://{db}"]) == 0
    capsys.readouterr()
    assert main([*args, "--store", f"sqlite://{db}"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "error" in err


# ---------------------------------------------------------------- whose database


def _app_db(path: Path) -> bytes:
    """An application's own SQLite database (rollback journal, a users table)."""
    import sqlite3

    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
    conn.execute("INSERT INTO users (name) VALUES ('ada')")
    conn.commit()
    conn.close()
    return path.read_bytes()


@pytest.mark.parametrize("command", [["list"], ["show", "x"], ["cancel", "x"], ["migrate"]])
def test_a_foreign_database_is_refused_and_left_unchanged(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, command: list[str]
) -> None:
    db = tmp_path / "app.db"
    before = _app_db(db)
    code, _, err = cli(capsys, *command, "--store", f"sqlite://{db}")
    assert code == 2 and "is not a corral database" in err and "users" in err
    assert db.read_bytes() == before  # no WAL switch, no schema_migrations table
    assert not (tmp_path / "app.db-wal").exists()


def test_run_on_a_foreign_database_needs_init(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    import sqlite3

    db = tmp_path / "app.db"
    before = _app_db(db)
    code, _, err = cli(
        capsys, "run", str(EXAMPLES / "conditions.yaml"), "--store", f"sqlite://{db}"
    )
    assert code == 2 and "--init" in err and db.read_bytes() == before
    run_example(capsys, f"sqlite://{db}", "conditions.yaml", "--init")
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT name FROM users").fetchall() == [("ada",)]  # theirs, intact
    conn.close()


def test_read_commands_never_write(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    db = tmp_path / "c.db"
    url = f"sqlite://{db}"
    execution_id = run_example(capsys, url, "conditions.yaml")
    with_store(url, lambda s: s.close())  # checkpointed: everything is in the main file
    before = db.read_bytes()
    db.chmod(0o444)  # read-only commands must not even need to write
    try:
        assert cli(capsys, "list", "--store", url)[0] == 0
        assert cli(capsys, "show", execution_id, "--store", url)[0] == 0
    finally:
        db.chmod(0o644)
    assert db.read_bytes() == before


def test_a_newer_schema_says_upgrade(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    import sqlite3

    db = tmp_path / "c.db"
    url = f"sqlite://{db}"
    run_example(capsys, url, "conditions.yaml")
    conn = sqlite3.connect(db)
    conn.execute("INSERT INTO schema_migrations VALUES (99, 'future', 'x', 0)")
    conn.commit()
    conn.close()
    for command in (["list"], ["show", "x"]):
        code, _, err = cli(capsys, *command, "--store", url)
        assert code == 2 and "upgrade corral" in err and "corral migrate" not in err


def test_a_damaged_database_is_reported_not_written(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    import os
    import sqlite3

    db = tmp_path / "c.db"
    url = f"sqlite://{db}"
    for _ in range(5):
        run_example(capsys, url, "conditions.yaml")
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    page = conn.execute("PRAGMA page_size").fetchone()[0]
    conn.close()
    with db.open("r+b") as fh:  # a damaged page in the middle of the file
        fh.seek(page * 3)
        fh.write(os.urandom(page))
    before = db.read_bytes()
    code, _, err = cli(capsys, "run", str(EXAMPLES / "conditions.yaml"), "--store", url)
    assert code == 2 and "is damaged" in err and "nothing was written" in err
    assert db.read_bytes() == before


def test_migrate_dry_run_creates_nothing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    db = tmp_path / "none.db"
    code, out, _ = cli(capsys, "migrate", "--dry-run", "--store", f"sqlite://{db}")
    assert code == 0 and f"would create schema version {newest('sqlite')}" in out
    assert not db.exists()
