"""Running one execution from the command line: the engine opened for it
alone, live progress on a terminal (:class:`_Progress`), the summary
printed at its end, and :class:`CommandLine`, the
:class:`~corral.plugins.commands.Terminal` plugins' commands are given."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import trio

from corral.cli.common import (
    _FORMATS_BY_SUFFIX,
    _STATUS_STYLE,
    T,
    _compiled,
    _dump,
    _progress_option,
    _size,
    _span,
    _store_option,
)
from corral.core.errors import (
    CorralError,
    UsageError,
    WorkflowCancelled,
    WorkflowFailed,
)
from corral.core.model import (
    Event,
    ExecutionRecord,
    StepFinished,
    StepProgress,
    StepRetrying,
    StepStarted,
)
from corral.core.status import (
    FAILED,
    PENDING,
    RUNNING,
    SUCCEEDED,
    TIMED_OUT,
)
from corral.engine.engine import Engine
from corral.engine.events import Subscription
from corral.engine.handles import ExecutionHandle
from corral.engine.opening import open_engine
from corral.storage import Store, default_store_url
from corral.workflow.plan import Plan


async def _wait(handle: ExecutionHandle) -> ExecutionRecord:
    return await handle.wait()


async def _run(
    store: str | Store,
    plan: Plan,
    inputs: dict[str, Any],
    show: bool,
    durability: str = "step",
    to_stderr: bool = False,
    freeze_gc: bool = True,
    end: Callable[[ExecutionHandle], Awaitable[T]] = _wait,  # type: ignore[assignment]
    say_orphans: bool = False,
    lease: float = 30.0,
) -> T:
    """Run one execution to its end; ``end`` says what to return of it
    (its stored record, by default). A one-shot command runs its own
    execution only: the engine adopts no orphans of the store (with
    ``say_orphans``, it says on stderr that there are some, and how to
    resume them)."""
    async with open_engine(
        store, durability=durability, freeze_gc=freeze_gc, adopt=False, lease=lease
    ) as engine:
        if say_orphans:
            await _say_orphans(engine)
        if engine.is_paused(plan.name):
            print(
                f"corral: workflow {plan.name!r} is paused: this execution waits, queued, "
                "until `corral unpause` (Ctrl-C leaves it queued for the next engine)",
                file=sys.stderr,
            )
        if not show:
            handle = await engine.submit(plan, inputs)
            return await end(handle)
        with engine.subscribe() as events:
            handle = await engine.submit(plan, inputs)
            progress = _Progress(plan, handle.id, to_stderr=to_stderr)
            try:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(progress.follow, events)
                    record = await end(handle)
                    nursery.cancel_scope.cancel()
            except BaseExceptionGroup as group:  # e.g. Ctrl-C: not a group for the user
                raise group.exceptions[0] if len(group.exceptions) == 1 else group from None
            finally:
                progress.stop()
            return record


#: Set by the ``corral`` command (:func:`corral.cli.app.run`): the process
#: ends once the command returns. Embedders calling ``main()`` keep it False.
EXITS_AFTER_COMMAND = False


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """``gc.disable()`` for the block, as it was after (reference counting
    still frees everything that is not in a cycle).

    When the process ends after the command, what the block allocated is
    frozen first (:func:`gc.freeze`): the collection the next allocation
    would trigger walks every object the paused block made (~40 ms after
    analysing 1,500 modules) to free memory the exit frees anyway.
    """
    import gc

    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            if EXITS_AFTER_COMMAND:
                gc.freeze()
            gc.enable()


async def _result_or_record(handle: ExecutionHandle) -> Any:
    """The result of a succeeded execution, taken as the engine hands it
    over (reading a large result back from the store costs more than the
    rest of a small run); the stored record of any other."""
    try:
        return await handle.result()
    except (WorkflowFailed, WorkflowCancelled):
        return await handle.wait()


async def _say_orphans(engine: Engine) -> None:
    try:
        orphans = await engine.orphans()
    except CorralError:  # a notice: never worth failing the run
        return
    if orphans:
        n = len(orphans)
        ids = " ".join(r.id for r in orphans[:3]) + (" ..." if n > 3 else "")
        print(
            f"corral: {n} unfinished execution(s) in this store lost their process ({ids}); "
            "this run leaves them alone: `corral resume --all` (or `corral resume ID`) "
            "continues them",
            file=sys.stderr,
        )


def _print_summary(record: ExecutionRecord, *, result: bool = True) -> None:
    """How it ended: on stdout when it succeeded (then its result), on
    stderr otherwise; ``result=False``: the status line only, on stderr."""
    took = (
        f" in {_span(record.finished_at - record.started_at)}"
        if record.finished_at and record.started_at
        else ""
    )
    if record.status == SUCCEEDED:
        line = f"workflow {record.workflow!r} succeeded{took} (execution {record.id})"
        if not result:
            print(line, file=sys.stderr)
            return
        print(line)
        print(_dump(record.result))
        return
    print(
        f"workflow {record.workflow!r} {record.status}{took} (execution {record.id})",
        file=sys.stderr,
    )
    # Each error once: a failed step's (with its attempts), then the
    # workflow's own if no step said it.
    said = set()
    for step in record.steps:
        if step.status in (FAILED, TIMED_OUT) and step.error is not None:
            said.add((step.error.type, step.error.message))
            print(
                f"  step {step.step_id}: {step.status} after {step.attempts} attempt(s): "
                f"{step.error.type}: {step.error.message}",
                file=sys.stderr,
            )
    error = record.error
    if error is not None and (error.type, error.message) not in said:
        where = f" in step {error.step!r}" if error.step else ""
        print(f"  {error.type}{where}: {error.message}", file=sys.stderr)


class _Progress:
    """A live table of steps, fed by engine events (rich)."""

    _STYLE = {**_STATUS_STYLE, "retrying": "magenta"}

    def __init__(
        self,
        plan: Plan,
        execution_id: str,
        *,
        to_stderr: bool = False,
        reused: Mapping[str, str] | None = None,
    ) -> None:
        from rich.console import Console
        from rich.live import Live

        self.plan = plan
        self.execution_id = execution_id
        self.rows: dict[str, dict[str, Any]] = {
            s.id: {"status": PENDING, "attempt": 0, "start": None, "end": None, "note": ""}
            for s in plan.steps
        }
        for step_id, status in (reused or {}).items():  # (a retry): not run, not timed
            self.rows[step_id].update(status=status, note="reused")
        self.started = time.monotonic()
        # get_renderable: the table is rebuilt at every refresh, so running
        # steps' times keep moving between events.
        self.live = Live(
            console=Console(stderr=to_stderr),
            refresh_per_second=8,
            transient=False,
            get_renderable=self._table,
        )
        self.live.start()

    def _table(self) -> Any:
        from rich.table import Table

        table = Table(title=f"{self.plan.spec.name}  ({time.monotonic() - self.started:.1f}s)")
        for col in ("step", "status", "attempt", "time", "note"):
            table.add_column(col)
        now = time.monotonic()
        for step_id, row in self.rows.items():
            start, end = row["start"], row["end"]
            took = "" if start is None else _span((end or now) - start)
            status = row["status"]
            table.add_row(
                step_id,
                f"[{self._STYLE.get(status, '')}]{status}[/]",
                str(row["attempt"] or ""),
                took,
                row["note"],
            )
        return table

    def apply(self, event: Event) -> None:
        if event.execution_id != self.execution_id:
            return
        if isinstance(event, StepStarted):
            row = self.rows[event.step_id]
            row.update(status=RUNNING, attempt=event.attempt)
            row["start"] = row["start"] or time.monotonic()
        elif isinstance(event, StepRetrying):
            self.rows[event.step_id].update(
                status="retrying", note=f"{event.error.type}; retry in {event.delay:.1f}s"
            )
        elif isinstance(event, StepProgress):
            self.rows[event.step_id]["note"] = progress_note(event)
        elif isinstance(event, StepFinished):
            row = self.rows[event.step_id]
            row.update(status=event.status, attempt=event.attempts)
            if row["start"] is not None:
                row["end"] = time.monotonic()
            if event.error is not None:
                row["note"] = f"{event.error.type}: {event.error.message}"[:80]

    async def follow(self, events: Subscription) -> None:
        async for event in events:
            self.apply(event)

    def stop(self) -> None:
        self.live.refresh()
        self.live.stop()


def progress_note(event: StepProgress) -> str:
    """``3/10 files``, ``1.5 MB/12.0 MB``, ``40%`` ...: a progress event in words."""
    if event.unit == "bytes":
        done = _size(event.done)
        total = "" if event.total is None else f"/{_size(event.total)}"
        unit = ""
    else:
        done = f"{event.done:g}"
        total = "" if event.total is None else f"/{event.total:g}"
        unit = f" {event.unit}" if event.unit else ""
    msg = f" {event.message}" if event.message else ""
    return f"{done}{total}{unit}{msg}"


class CommandLine:
    """The :class:`corral.plugins.commands.Terminal` a plugin's command is
    given: the shared options, running a workflow as ``corral run`` does
    (live progress, one execution, no orphans adopted), writing reports."""

    def add_store_option(self, parser: argparse.ArgumentParser) -> None:
        _store_option(parser)

    def add_progress_option(self, parser: argparse.ArgumentParser) -> None:
        _progress_option(parser)

    def run_workflow(
        self,
        workflow: Any,
        args: argparse.Namespace,
        *,
        durability: str = "step",
        result: bool = False,
        pause_gc: bool = False,
    ) -> Any:
        progress = getattr(args, "progress", "never")
        show = progress == "always" or (progress == "auto" and sys.stderr.isatty())
        store = getattr(args, "store", None) or default_store_url()
        end = _result_or_record if result else _wait
        plan = _compiled(workflow)
        if not pause_gc:
            return trio.run(_run, store, plan, {}, show, durability, True, True, end)
        with _collector_paused():  # (and no heap freeze at open: nothing to freeze for)
            return trio.run(_run, store, plan, {}, show, durability, True, False, end)

    def print_summary(self, record: Any) -> None:
        _print_summary(record)

    def output_format(self, args: argparse.Namespace) -> str:
        fmt: str | None = getattr(args, "format", None)
        out = getattr(args, "out", None)
        if fmt is None and out:
            fmt = _FORMATS_BY_SUFFIX.get(Path(out).suffix.lower(), "json")
        if fmt is None:
            fmt = "text" if sys.stdout.isatty() else "json"
        return fmt

    def check_out(self, out: str | None) -> None:
        if not out:
            return
        folder = Path(out).resolve().parent
        if not folder.is_dir():
            raise UsageError(f"--out {out}: directory {folder} does not exist")
        if not os.access(folder, os.W_OK):
            raise UsageError(f"--out {out}: directory {folder} is not writable")

    def write(self, text: str, out: str | None, note: str = "") -> None:
        if not out:
            sys.stdout.write(text)
            return
        try:
            Path(out).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"--out {out}: {exc.strerror or exc}") from None
        print(f"report written to {out}" + (f" ({note})" if note else ""), file=sys.stderr)
