"""Commands that read tracked executions, or pick up orphans: ``list``,
``show`` and ``resume`` (a store, or a ``corral serve`` through ``--api``);
those that change them are :mod:`.control`."""

from __future__ import annotations

import argparse
import sys
from typing import Any

import msgspec
import trio

from corral.cli.common import (
    _STATUSES,
    EXIT_FAILED,
    EXIT_OK,
    _console,
    _dump,
    _execution_id,
    _positive_int,
    _record,
    _status,
    _styled,
    _took,
    _via_api,
    _when,
    _with_store,
)
from corral.cli.running import _print_summary
from corral.core.errors import (
    ExecutionNotFound,
    UsageError,
)
from corral.core.model import (
    ExecutionRecord,
)
from corral.core.status import (
    PENDING,
    RUNNING,
    SUCCEEDED,
    UNFINISHED,
)
from corral.engine.handles import ExecutionHandle
from corral.engine.opening import open_engine
from corral.storage import Store, default_store_url, open_store


def _cmd_list(args: argparse.Namespace) -> int:
    status = _status(args.status, _STATUSES)
    limit = _positive_int("--limit", args.limit)

    async def work(store: Store) -> list[ExecutionRecord]:
        return await store.list_executions(
            status=status, workflow=args.workflow, limit=limit, top_level=not args.all
        )

    url = args.api or args.store or default_store_url()
    if args.api:
        rows = _via_api(
            args.api, lambda c: c.list(status=status, workflow=args.workflow, limit=limit)
        )
        records = [_record(r) for r in rows]
    else:
        records = _with_store(url, work, readonly=True)
    if args.json:
        print(_dump(records))
        return EXIT_OK
    if not records:
        hint = " (memory:// keeps nothing between commands)" if url.startswith("memory:") else ""
        print(f"no executions{hint}")
        return EXIT_OK
    from rich.table import Table

    table = Table()
    table.add_column("id", no_wrap=True)
    for col in ("workflow", "version", "status", "created", "duration"):
        table.add_column(col)
    for r in records:
        table.add_row(
            r.id,
            r.workflow,
            str(r.version),
            _styled(r.status),
            _when(r.created_at),
            _took(r.started_at, r.finished_at, live=r.status == RUNNING),
        )
    _console().print(table)
    return EXIT_OK


#: How many of its retries `corral show` lists by id.
_SHOWN_RETRIES = 5


def _cmd_show(args: argparse.Namespace) -> int:
    record, children, retries = _shown(args)
    if args.json:
        print(_dump(record))
        return EXIT_OK
    from rich.markup import escape

    console = _console()
    for line in _header(record, retries):
        console.print(line)
    if record.steps:
        console.print(_steps_table(record, children))
        _step_notes(record, console, logs=args.logs)
    if record.status == SUCCEEDED:
        console.print("result:")
        print(_dump(record.result))
    elif record.error is not None:
        e = record.error
        where = f" in step {e.step!r}" if e.step else ""
        console.print(f"error: {escape(e.type)}{escape(where)}: {escape(e.message)}")
    return EXIT_OK


def _shown(args: argparse.Namespace) -> tuple[ExecutionRecord, dict[str, str], list[str]]:
    """The execution ``corral show`` shows, its child executions by step
    and the ids of the executions that retried it."""

    async def work(store: Store) -> tuple[ExecutionRecord, dict[str, str], list[str]]:
        record = await store.get_execution(await _execution_id(store, args.id))
        children: dict[str, str] = {}
        for step in record.steps:
            if step.workflow is not None:
                child = await store.find_child(record.id, step.step_id)
                if child is not None:
                    children[step.step_id] = child.id
        retries = await store.list_executions(retry_of=record.id, limit=_SHOWN_RETRIES + 1)
        return record, children, [r.id for r in reversed(retries)]

    if args.api:
        return _record(_via_api(args.api, lambda c: c.get(args.id))), {}, []
    return _with_store(args.store, work, readonly=True)


def _header(r: ExecutionRecord, retries: list[str]) -> list[str]:
    """The lines above the steps: what, when, who, and its retries."""
    from rich.markup import escape

    live = r.status in UNFINISHED
    lines = [
        f"execution  {r.id}",
        f"workflow   {escape(r.workflow)} (version {escape(str(r.version))})",
        f"status     {_styled(r.status)}"
        + (" (cancellation requested)" if r.cancel_requested and live else ""),
        f"created    {_when(r.created_at)}",
        f"started    {_when(r.started_at)}",
        f"finished   {_when(r.finished_at)}",
        f"duration   {_took(r.started_at, r.finished_at, live=r.status == RUNNING)}",
    ]
    if r.parent_id:
        lines.append(f"parent     {r.parent_id} (step {escape(r.parent_step or '?')})")
    if r.key:
        lines.append(f"key        {escape(r.key)}")
    if r.retry_of:
        reused = sum(1 for s in r.steps if s.reused_from)
        lines.append(f"retry of   {r.retry_of} ({reused} of {len(r.steps)} step(s) reused)")
    if retries:
        more = " ..." if len(retries) > _SHOWN_RETRIES else ""
        lines.append(f"retried by {', '.join(retries[:_SHOWN_RETRIES])}{more}")
    if live and r.owner:
        lease = "" if r.lease_expires_at is None else f", lease until {_when(r.lease_expires_at)}"
        lines.append(f"owner      {escape(r.owner)}{lease}")
    if r.inputs:
        lines.append(f"inputs     {escape(msgspec.json.encode(r.inputs).decode())}")
    return lines


def _steps_table(r: ExecutionRecord, children: dict[str, str]) -> Any:
    """The steps as a table: what ran each, how it ended, and a note (its
    error, its child execution, the execution it was reused from)."""
    from rich.markup import escape
    from rich.table import Table

    table = Table(title="steps", title_justify="left")
    table.add_column("step", no_wrap=True)
    for col in ("handler", "status", "attempts", "duration", "note"):
        table.add_column(col)
    for s in r.steps:
        notes = []
        if s.reused_from:
            notes.append(f"reused from {s.reused_from}")
        if s.step_id in children:
            notes.append(f"child {children[s.step_id]}")
        if s.error is not None:
            notes.append(f"{s.error.type}: {s.error.message}")
        table.add_row(
            escape(s.step_id),
            escape(s.handler or (f"workflow {s.workflow}" if s.workflow else "-")),
            _styled(s.status),
            str(s.attempts),
            _took(s.started_at, s.finished_at, live=s.status == RUNNING),
            escape("; ".join(notes)),
        )
    return table


def _step_notes(r: ExecutionRecord, console: Any, *, logs: bool) -> None:
    """Below the table: the steps' warnings, their log lines (or how many
    were kept), and a word when no step record was written."""
    from rich.markup import escape

    for s in r.steps:
        for warning in s.warnings:
            console.print(f"warning: step {escape(s.step_id)} {escape(warning)}")
    logged = sum(len(s.logs) for s in r.steps)
    if logs:
        for s in r.steps:
            for line in s.logs:
                console.print(f"log {escape(s.step_id)}: {escape(line)}", highlight=False)
    elif logged:
        console.print(f"({logged} log line(s) kept: --logs shows them)")
    if r.finished_at is not None and all(s.status == PENDING and s.attempts == 0 for s in r.steps):
        console.print('(no step records were written: the engine ran with durability "none")')


def _cmd_resume(args: argparse.Namespace) -> int:
    if (args.id is None) == (not args.all):
        raise UsageError("give an execution id, or --all for every orphaned execution")
    store = open_store(args.store or default_store_url())

    async def main() -> list[ExecutionRecord]:
        async with open_engine(store, adopt=False) as engine:
            if args.id:
                ids = [await _execution_id(engine.store, args.id)]
            else:
                ids = [r.id for r in await engine.orphans()]
            if not ids:
                return []
            handles = []
            for execution_id in ids:
                try:
                    handles.append(await engine.resume(execution_id))
                except (UsageError, ExecutionNotFound) as exc:
                    if args.id:
                        raise
                    # (another engine took it meanwhile, or it cannot run here):
                    # the others go on
                    print(f"corral resume: skipped: {exc}", file=sys.stderr)
            if not handles:
                return []
            print(f"resuming {len(handles)} execution(s) here", file=sys.stderr)
            done: list[ExecutionRecord] = []

            async def one(handle: ExecutionHandle) -> None:
                record = await handle.wait()
                done.append(record)
                took = _took(record.started_at, record.finished_at, live=False)
                print(
                    f"[{len(done)}/{len(handles)}] {record.id} ({record.workflow}): "
                    f"{record.status} in {took}",
                    file=sys.stderr,
                )

            async with trio.open_nursery() as nursery:
                for handle in handles:
                    nursery.start_soon(one, handle)
            return done

    records = trio.run(main)
    if not records:
        print("nothing to resume: no execution of this store lost its process", file=sys.stderr)
        return EXIT_OK
    if args.id:
        _print_summary(records[0])
    return EXIT_OK if all(r.status == SUCCEEDED for r in records) else EXIT_FAILED
