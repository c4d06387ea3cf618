"""Commands for operators: ``serve`` (the HTTP API), ``worker`` and the
store's upkeep, ``migrate`` and ``prune``."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import trio

from corral.cli.common import (
    _FINISHED,
    EXIT_FAILED,
    EXIT_OK,
    _confirm,
    _int_arg,
    _status,
    _when,
    _with_store,
    parse_duration,
    parse_size,
)
from corral.core.errors import (
    UsageError,
)
from corral.storage import MemoryStore, Store, default_store_url, lifetime, open_store


def _cmd_serve(args: argparse.Namespace) -> int:
    try:
        import httptools  # noqa: F401
        import litestar  # noqa: F401
    except ImportError:
        raise UsageError(
            "corral serve needs its extra: pip install 'corral[serve]' (Litestar, httptools)"
        ) from None
    from corral.server.auth import check_bind, load_tokens
    from corral.server.serve import serve

    port = _int_arg("--port", args.port)
    if not 0 <= port <= 65535:
        raise UsageError(f"--port {port}: expected 0 to 65535")
    grace = parse_duration(args.grace, "--grace")
    max_body = parse_size(args.max_body, "--max-body")
    tokens = load_tokens(args.token_file)
    check_bind(args.host, tokens)
    store = open_store(args.store or default_store_url())
    if not args.run_here and isinstance(store, MemoryStore):
        raise UsageError(
            "--no-run-here enqueues work for `corral worker`s in a shared store; memory:// "
            "is this process's own (give --store sqlite:///FILE or postgresql://...)"
        )

    def ready(url: str) -> None:
        print(
            f"corral serve: listening on {url} (status page at /, API under /v1, docs at /schema)",
            file=sys.stderr,
        )

    async def main() -> None:
        async with lifetime(store):
            await serve(
                store,
                host=args.host,
                port=port,
                tokens=tokens,
                run_here=args.run_here,
                grace=grace,
                max_body=max_body,
                ready=ready,
                say=lambda message: print(message, file=sys.stderr),
            )

    trio.run(main)
    return EXIT_OK


def _cmd_worker(args: argparse.Namespace) -> int:
    from corral.server.worker import serve

    concurrency = _int_arg("--concurrency", args.concurrency)
    grace = parse_duration(args.grace, "--grace")
    lease = parse_duration(args.lease, "--lease")
    if lease < 0.1:
        raise UsageError(f"--lease {args.lease!r}: at least 0.1 s")
    store = args.store or default_store_url()
    if store.startswith("memory:"):
        raise UsageError(
            "a worker needs a store other processes share (sqlite:// or postgresql://)"
        )

    def say(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    trio.run(
        lambda: serve(
            store,
            concurrency=concurrency,
            handlers=args.handlers,
            grace=grace,
            lease=lease,
            say=say,
        )
    )
    return EXIT_OK


def _cmd_migrate(args: argparse.Namespace) -> int:
    from corral.storage import PostgresStore, SQLiteStore
    from corral.storage.migrate import migrations

    store = open_store(args.store or default_store_url(), create=True, migrate=None, init=args.init)
    if not isinstance(store, (SQLiteStore, PostgresStore)):
        raise UsageError(
            f"corral migrate works on SQLite and PostgreSQL stores, not {store.url!r} "
            "(an in-memory store has no schema to migrate)"
        )
    latest = len(migrations("postgres" if isinstance(store, PostgresStore) else "sqlite"))
    target = _migration_target(args.to, latest)
    sql_store = store

    async def current(_: Store) -> int:
        return await sql_store.schema_version()

    if args.dry_run and isinstance(store, SQLiteStore) and not Path(store.path).exists():
        goal = latest if target is None else target
        print(f"no database at {store.path}: would create schema version {goal} (dry run)")
        return EXIT_OK
    if args.dry_run or target is not None:
        version = _with_store(store, current)
        # (a store is opened once: the migration below gets a fresh one)
        store = open_store(
            args.store or default_store_url(), create=True, migrate=None, init=args.init
        )
        assert isinstance(store, (SQLiteStore, PostgresStore))
        sql_store = store
        goal = latest if target is None else target
        if args.dry_run:
            print(_dry_run(version, goal))
            return EXIT_OK
        if goal < version and not _rollback_confirmed(version, goal, args.yes):
            print("nothing changed", file=sys.stderr)
            return EXIT_FAILED

    async def work(_: Store) -> tuple[list[str], int]:
        done = await sql_store.migrate(target)
        return done, await sql_store.schema_version()

    done, version = _with_store(store, work)
    for line in done:
        print(line)
    where = sql_store.path if isinstance(sql_store, SQLiteStore) else sql_store.url
    if not done:
        print(f"{where}: already at schema version {version}; nothing to do")
    else:
        print(f"{where}: now at schema version {version} (newest: {latest})")
    return EXIT_OK


def _migration_target(text: str | None, latest: int) -> int | None:
    """``--to``: a schema version from 0 to ``latest`` (``None``: the newest)."""
    if text is None:
        return None
    try:
        target = int(text)
    except ValueError:
        target = -1
    if not 0 <= target <= latest:
        raise UsageError(f"--to {text!r}: schema versions go from 0 to {latest}")
    return target


def _dry_run(version: int, goal: int) -> str:
    """What ``corral migrate --dry-run`` would do, in one line."""
    verb = "roll back" if goal < version else "apply"
    steps = range(version, goal, -1) if goal < version else range(version + 1, goal + 1)
    names = [f"{'-' if goal < version else '+'}{n}" for n in steps]
    return (
        f"at schema version {version}; would {verb} "
        f"{', '.join(names) if names else 'nothing'} to reach {goal} (dry run)"
    )


def _rollback_confirmed(version: int, goal: int, yes: bool) -> bool:
    """A rollback drops tables: asked on a terminal, else only with ``--yes``."""
    question = f"Roll the schema back from version {version} to {goal}? Tables " + (
        "and every execution in them are dropped." if goal == 0 else "may be dropped."
    )
    answer = _confirm(question, yes)
    if answer is None:
        raise UsageError(
            f"--to {goal} rolls the schema back from {version} and drops data; "
            "give --yes to do it without a terminal to confirm on"
        )
    return answer


def _cmd_prune(args: argparse.Namespace) -> int:
    seconds = parse_duration(args.older_than, unit=True)
    statuses: list[str] = []
    for item in args.status:
        for part in item.split(","):
            if part.strip():
                statuses.append(_status(part.strip(), _FINISHED) or "")
    cutoff = time.time() - seconds
    which = f" ({', '.join(statuses)})" if statuses else ""
    what = f"finished before {_when(cutoff)}"

    async def count(store: Store) -> int:
        return await store.count_prunable(cutoff, statuses=tuple(statuses))

    async def work(store: Store) -> int:
        return await store.prune(cutoff, statuses=tuple(statuses))

    if args.dry_run or not args.yes:
        n = _with_store(args.store, count)
        plural = "s" if n != 1 else ""
        if args.dry_run:
            print(f"would prune {n} execution{plural}{which} {what} (dry run: nothing deleted)")
            return EXIT_OK
        if n == 0:
            print(f"pruned 0 executions{which} {what}")
            return EXIT_OK
        if _confirm(f"Delete {n} execution{plural}{which} {what}?", args.yes) is False:
            print("nothing deleted", file=sys.stderr)
            return EXIT_FAILED
    deleted = _with_store(args.store, work)
    print(f"pruned {deleted} execution{'s' if deleted != 1 else ''}{which} {what}")
    return EXIT_OK
