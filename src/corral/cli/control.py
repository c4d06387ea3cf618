"""Commands that change tracked executions: ``cancel`` (one, or every
one a selection matches), ``retry`` (one, or a selection) and ``pause`` /
``unpause`` (hold a workflow's queued executions)."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from typing import Any

import trio

from corral.cli.common import (
    _FINISHED,
    EXIT_FAILED,
    EXIT_OK,
    _confirm,
    _dump,
    _execution_id,
    _lease,
    _record,
    _status,
    _via_api,
    _when,
    _with_store,
    one_line,
    parse_duration,
    parse_inputs,
)
from corral.cli.running import _print_summary, _Progress
from corral.core.errors import (
    CorralError,
    UsageError,
)
from corral.core.model import (
    ExecutionRecord,
)
from corral.core.status import (
    CANCELLED,
    EXECUTION_STATUSES,
    FAILED,
    SUCCEEDED,
    UNFINISHED,
)
from corral.engine.engine import Engine
from corral.engine.handles import ExecutionHandle, RetryPreview
from corral.engine.opening import open_engine
from corral.storage import Store, default_store_url, open_store, select
from corral.storage.rules import PAUSED_ALL

#: How long `corral cancel` waits to see the engine holding an execution stop it.
_CANCEL_WAIT = 3.0


def _bulk(args: argparse.Namespace, command: str) -> bool:
    """Whether a command acts on a selection (``--workflow``/``--status``/
    ``--since``) rather than on one id; refuses both and neither."""
    _named_workflow(args)
    bulk = bool(args.workflow or args.status or args.since)
    if bulk and args.id:
        raise UsageError(
            f"give an execution id, or --workflow/--status/--since to {command} many; not both"
        )
    if not bulk and not args.id:
        raise UsageError(
            f"give an execution id, or --workflow/--status/--since to {command} many "
            f"(for example `corral {command} --workflow NAME --status failed`)"
        )
    if bulk and getattr(args, "api", None):
        raise UsageError(f"--api {command}s one execution at a time: give its id")
    return bulk


def _selection(
    args: argparse.Namespace, default: Sequence[str], allowed: Sequence[str]
) -> tuple[list[str], float | None, str]:
    """The statuses, the creation cut-off and a description of a bulk
    command's selection."""
    statuses: list[str] = []
    for item in args.status:
        for part in item.split(","):
            if part.strip():
                statuses.append(_status(part.strip(), allowed) or "")
    statuses = statuses or list(default)
    since = None if not args.since else time.time() - parse_duration(args.since, "--since")
    what = f" of workflow {args.workflow!r}" if args.workflow else ""
    what += f" ({', '.join(statuses)})"
    if since is not None:
        what += f" created since {_when(since)}"
    return statuses, since, what


def _listed(records: Sequence[ExecutionRecord], limit: int = 5) -> str:
    ids = ", ".join(r.id for r in records[:limit])
    return ids + (f" and {len(records) - limit} more" if len(records) > limit else "")


def _cmd_cancel(args: argparse.Namespace) -> int:
    if _bulk(args, "cancel"):
        return _cancel_many(args)
    if args.dry_run:
        raise UsageError("--dry-run goes with a bulk cancel (--workflow/--status/--since)")
    asked: list[ExecutionRecord] = []  # the record as the request left it

    async def work(store: Store) -> tuple[ExecutionRecord, ExecutionRecord]:
        execution_id = await _execution_id(store, args.id)
        before = await store.get_execution(execution_id)
        if before.status not in UNFINISHED:
            return before, before
        after = await store.request_cancel(execution_id, time.time())
        asked.append(after)
        # The engine holding it hears the request at once (the store's
        # signal): wait a moment to say how it ended, not only that it was asked.
        # The deadline is checked between reads, never by cancelling one: a
        # PostgreSQL read cancelled mid-query was seen to hang its connection.
        deadline = trio.current_time() + _CANCEL_WAIT
        while after.status in UNFINISHED and after.owner is not None:
            if trio.current_time() >= deadline:
                break
            await trio.sleep(0.02)
            after = await store.get_execution(execution_id)
        return before, after

    if args.api:
        before = _record(_via_api(args.api, lambda c: c.get(args.id)))
        after = (
            before
            if before.status not in UNFINISHED
            else _record(_via_api(args.api, lambda c: c.cancel(args.id)))
        )
    else:
        before, after = _with_store(args.store, work)
    execution_id = before.id  # (a prefix was given: the whole id)
    if before is after:
        print(f"execution {execution_id} already {before.status}; nothing to cancel")
    elif after.status == CANCELLED and asked and asked[0].status == CANCELLED:
        print(f"execution {execution_id} cancelled (no live engine held it)")
    elif after.status == CANCELLED:
        by = f" by the engine running it ({after.owner})" if after.owner else ""
        print(f"execution {execution_id} cancelled{by}")
    elif after.status in UNFINISHED:
        owner = f" ({after.owner})" if after.owner else ""
        print(
            f"cancellation of execution {execution_id} requested: the engine holding it{owner} did "
            f"not stop it within {_CANCEL_WAIT:g} s (busy, or gone)"
        )
        if after.lease_expires_at is not None:
            print(
                f"if that engine is gone, its lease expires at {_when(after.lease_expires_at)}; "
                "then the engine that takes it over cancels it, or run "
                f"`corral cancel {execution_id}` again"
            )
    else:
        print(f"execution {execution_id} finished ({after.status}) before it could be cancelled")
    return EXIT_OK


def _cancel_many(args: argparse.Namespace) -> int:
    """``corral cancel --workflow W --status running``: one transaction asks
    for all (the engines holding them stop them at once; those no engine
    holds are cancelled in it), then up to a few seconds to see them stop."""
    unfinished = [s for s in EXECUTION_STATUSES if s in UNFINISHED]
    statuses, since, what = _selection(args, unfinished, unfinished)

    async def find(store: Store) -> list[ExecutionRecord]:
        return await select(store, status=statuses, workflow=args.workflow, since=since)

    found = _with_store(args.store, find, readonly=True)
    n = len(found)
    plural = "s" if n != 1 else ""
    if args.dry_run or n == 0:
        verb = "would cancel" if args.dry_run else CANCELLED  # (the word)
        listed = f": {_listed(found)}" if n else ""
        print(
            f"{verb} {n} execution{plural}{what}{listed}" + (" (dry run)" if args.dry_run else "")
        )
        return EXIT_OK
    if _confirm(f"Cancel {n} execution{plural}{what}?", args.yes) is False:
        print("nothing cancelled", file=sys.stderr)
        return EXIT_FAILED
    ids = [r.id for r in found]

    async def any_left(store: Store) -> bool:  # (one row per status: cheap)
        for status in unfinished:
            if await store.list_executions(
                status=status, workflow=args.workflow, since=since, top_level=True, limit=1
            ):
                return True
        return False

    async def act(store: Store) -> tuple[int, int]:
        changed = set(await store.request_cancel_many(ids, time.time()))
        with trio.move_on_after(_CANCEL_WAIT):
            while changed:
                if not await any_left(store):
                    break
                await trio.sleep(0.05)
        running = await select(store, status=unfinished, workflow=args.workflow, since=since)
        return len(changed), len(changed & {r.id for r in running})

    changed, left = _with_store(args.store, act)
    print(f"cancelled {changed - left} execution{'s' if changed - left != 1 else ''}{what}")
    if left:
        print(
            f"{left} more asked to stop: the engines holding them did not stop them within "
            f"{_CANCEL_WAIT:g} s (busy, or gone: then they are cancelled when their lease "
            "expires and another engine takes them over)"
        )
    if changed < n:
        print(f"{n - changed} had finished meanwhile")
    return EXIT_OK


def _from_steps(values: Sequence[str]) -> list[str]:
    return [part.strip() for v in values for part in v.split(",") if part.strip()]


async def _retry_preview(
    engine: Engine, execution_id: str, args: argparse.Namespace
) -> RetryPreview:
    inputs = None
    if args.input:  # typed by the declared inputs of the workflow it will run
        base = await engine.plan_retry(execution_id, spec=args.spec, rerun_changed=True)
        inputs = parse_inputs(args.input, base.plan)
    return await engine.plan_retry(
        execution_id,
        from_steps=_from_steps(args.from_steps),
        inputs=inputs,
        spec=args.spec,
        rerun_changed=args.rerun_changed,
    )


def _say_retry(preview: RetryPreview, file: Any) -> None:
    original = preview.original
    rerun, reused = preview.rerun, preview.reused
    print(
        f"retry of execution {original.id} ({original.workflow}, {original.status}): "
        f"{len(rerun)} step(s) run again, {len(reused)} reused"
        + (f" ({', '.join(reused)})" if reused else ""),
        file=file,
    )
    for step_id, why in rerun.items():
        print(f"  {step_id}: {why}", file=file)


def _cmd_retry(args: argparse.Namespace) -> int:
    bulk = _bulk(args, "retry")
    show = args.progress == "always" or (args.progress == "auto" and sys.stderr.isatty())
    lease = _lease(args)
    if bulk:
        return _retry_many(args)
    store = open_store(args.store or default_store_url())

    async def main() -> ExecutionRecord | None:
        async with open_engine(store, adopt=False, lease=lease) as engine:
            execution_id = await _execution_id(engine.store, args.id)
            preview = await _retry_preview(engine, execution_id, args)
            _say_retry(preview, sys.stdout if args.dry_run else sys.stderr)
            if args.dry_run:
                return None
            if not show:
                return await (await engine.submit_retry(preview)).wait()
            with engine.subscribe() as events:
                handle = await engine.submit_retry(preview)
                kept = {s.step_id: s.status for s in preview.original.steps}
                progress = _Progress(
                    preview.plan,
                    handle.id,
                    to_stderr=True,
                    reused={k: kept[k] for k in preview.reused},
                )
                try:
                    async with trio.open_nursery() as nursery:
                        nursery.start_soon(progress.follow, events)
                        record = await handle.wait()
                        nursery.cancel_scope.cancel()
                finally:
                    progress.stop()
                return record

    record = trio.run(main)
    if record is None:
        print("(dry run: nothing run)")
        return EXIT_OK
    _print_summary(record, result=False)
    print(f"retry of {record.retry_of}: execution {record.id}", file=sys.stderr)
    if args.output == "record":
        print(_dump(record))
    elif args.output == "result" and record.status == SUCCEEDED:
        print(_dump(record.result))
    return EXIT_OK if record.status == SUCCEEDED else EXIT_FAILED


def _retry_many(args: argparse.Namespace) -> int:
    """``corral retry --workflow W --status failed --since 1h``: every match
    retried here, at once, each as ``corral retry ID`` would; one that
    cannot be (refused, its definition gone) is reported and skipped."""
    statuses, since, what = _selection(args, [FAILED], _FINISHED)
    url = args.store or default_store_url()

    async def find(engine: Engine) -> list[ExecutionRecord]:
        return await engine.select(status=statuses, workflow=args.workflow, since=since)

    async def plan_all() -> tuple[list[RetryPreview], list[str]]:
        async with open_engine(open_store(url), adopt=False) as engine:
            found = await find(engine)
            previews, skipped = [], []
            for record in found:
                # Retried already: its retry is the one to retry (selected too
                # when it matches), not the same steps twice.
                if await engine.store.list_executions(retry_of=record.id, limit=1):
                    continue
                try:
                    previews.append(await _retry_preview(engine, record.id, args))
                except CorralError as exc:
                    skipped.append(f"{record.id}: {one_line(str(exc))}")
            return previews, skipped

    previews, skipped = trio.run(plan_all)
    n = len(previews)
    plural = "s" if n != 1 else ""
    for line in skipped:
        print(f"skipped {line}", file=sys.stderr)
    if args.dry_run or n == 0:
        verb = "would retry" if args.dry_run else "retried"
        listed = f": {_listed([p.original for p in previews])}" if n else ""
        print(
            f"{verb} {n} execution{plural}{what}{listed}" + (" (dry run)" if args.dry_run else "")
        )
        return EXIT_OK if not skipped else EXIT_FAILED
    if _confirm(f"Retry {n} execution{plural}{what}?", args.yes) is False:
        print("nothing retried", file=sys.stderr)
        return EXIT_FAILED

    async def run_all() -> list[ExecutionRecord]:
        done: list[ExecutionRecord] = []
        async with open_engine(open_store(url), adopt=False, lease=_lease(args)) as engine:
            handles = [await engine.submit_retry(p) for p in previews]

            async def one(handle: ExecutionHandle) -> None:
                record = await handle.wait()
                done.append(record)
                print(
                    f"[{len(done)}/{n}] {record.retry_of} -> {record.id}: {record.status}",
                    file=sys.stderr,
                )

            async with trio.open_nursery() as nursery:
                for handle in handles:
                    nursery.start_soon(one, handle)
        return done

    done = trio.run(run_all)
    ok = sum(1 for r in done if r.status == SUCCEEDED)
    print(
        f"retried {len(done)} execution{plural}{what}: {ok} succeeded, {len(done) - ok} did not"
        + (f"; {len(skipped)} skipped" if skipped else "")
    )
    return EXIT_OK if ok == len(done) and not skipped else EXIT_FAILED


def _paused_label(workflow: str) -> str:
    return "every workflow" if workflow == PAUSED_ALL else f"workflow {workflow!r}"


def _named_workflow(args: argparse.Namespace) -> None:
    """An empty ``--workflow ""`` would mean "every workflow": refused."""
    if args.workflow is not None and not args.workflow.strip():
        raise UsageError("--workflow needs a workflow name (leave it out for every workflow)")


def _cmd_pause(args: argparse.Namespace) -> int:
    _named_workflow(args)
    workflow = args.workflow or PAUSED_ALL

    async def work(store: Store) -> tuple[bool, dict[str, float]]:
        changed = False if args.list else await store.pause(workflow, time.time())
        return changed, await store.paused()

    changed, paused = _with_store(args.store, work, readonly=args.list)
    if args.list:
        if not paused:
            print("nothing is paused")
        for name, at in paused.items():
            label = _paused_label(name)
            print(f"{label} paused since {_when(at)}")
        return EXIT_OK
    label = _paused_label(workflow)
    if changed:
        print(f"paused {label}: queued executions stay queued until `corral unpause`")
    else:
        print(f"{label} was paused already (since {_when(paused.get(workflow))})")
    return EXIT_OK


def _cmd_unpause(args: argparse.Namespace) -> int:
    _named_workflow(args)
    workflow = args.workflow or PAUSED_ALL

    async def work(store: Store) -> tuple[bool, dict[str, float]]:
        return await store.unpause(workflow), await store.paused()

    changed, paused = _with_store(args.store, work)
    label = _paused_label(workflow)
    if changed:
        print(f"unpaused {label}: what it held starts")
    else:
        print(f"{label} was not paused")
    if paused:
        names = ", ".join("every workflow" if n == PAUSED_ALL else n for n in paused)
        print(f"still paused: {names}")
    return EXIT_OK
