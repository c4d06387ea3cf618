"""The ``corral`` command line: a thin layer over the engine's public API.

Exit codes: 0 the workflow succeeded (or the command did its job), 1 the
workflow failed, timed out or was cancelled, 2 a usage, spec, input or plugin
error (a message, never a traceback).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

import msgspec
import trio

import corral
from corral.errors import CorralError, InputError, UsageError
from corral.model import (
    Event,
    ExecutionRecord,
    StepFinished,
    StepProgress,
    StepRetrying,
    StepStarted,
)
from corral.plan import Plan

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"corral: error: {message}\n")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="corral", description="corral: a workflow engine on Trio.")
    p.add_argument("--version", action="version", version=f"corral {corral.__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    run = sub.add_parser("run", help="run a workflow file and print its result")
    run.add_argument("file", help="workflow file (.yaml, .yml, .toml, .json)")
    run.add_argument(
        "-i",
        "--input",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an input value, converted to the input's declared type (repeatable)",
    )
    run.add_argument("--json", action="store_true", help="print the execution record as JSON")
    run.add_argument(
        "--progress",
        choices=["auto", "always", "never"],
        default="auto",
        help="live progress display (default: when stdout is a terminal)",
    )
    run.add_argument("--store", default="memory://", help="store URL (default: memory://)")

    val = sub.add_parser("validate", help="check a workflow file without running it")
    val.add_argument("file")
    val.add_argument("--json", action="store_true", help="print a JSON summary")

    plg = sub.add_parser("plugins", help="list available handlers")
    plg.add_argument("--json", action="store_true")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command is None:
        _parser().print_help()
        return EXIT_USAGE
    try:
        if args.command == "run":
            return _cmd_run(args)
        if args.command == "validate":
            return _cmd_validate(args)
        if args.command == "plugins":
            return _cmd_plugins(args)
    except CorralError as exc:
        print(f"corral: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        # The engine has already cancelled the workflow (recorded `cancelled`).
        print("corral: interrupted; the workflow was cancelled", file=sys.stderr)
        return EXIT_FAILED
    raise AssertionError(f"unhandled command {args.command}")


# ---------------------------------------------------------------- helpers


def _registry() -> Any:
    from corral.plugins.manager import build_registry

    return build_registry()


def _load(path: str, registry: Any) -> Plan:
    from corral.model import Limits

    return corral.load_file(Path(path), handlers=registry, pools=Limits().pool_sizes())


_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def parse_inputs(pairs: Sequence[str], plan: Plan) -> dict[str, Any]:
    """``NAME=VALUE`` strings -> typed inputs, by each input's declared type."""
    out: dict[str, Any] = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        name = name.strip()
        if not sep or not name:
            raise UsageError(f"--input {pair!r}: expected NAME=VALUE")
        decl = plan.spec.inputs.get(name)
        if decl is None:
            declared = ", ".join(sorted(plan.spec.inputs)) or "none"
            raise InputError(
                f"unknown input {name!r} (declared inputs: {declared})",
                file=plan.file,
                path=f"$.inputs.{name}",
            )
        out[name] = _coerce(name, text, decl.type, plan.file)
    return out


def _coerce(name: str, text: str, kind: str, file: str | None) -> Any:
    def bad(what: str) -> InputError:
        return InputError(
            f"input {name!r} must be {what}, got {text!r}", file=file, path=f"$.inputs.{name}"
        )

    if kind == "string":
        return text
    if kind == "integer":
        try:
            return int(text)
        except ValueError:
            raise bad("an integer") from None
    if kind == "number":
        try:
            return int(text)
        except ValueError:
            try:
                return float(text)
            except ValueError:
                raise bad("a number") from None
    if kind == "boolean":
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise bad("a boolean (true/false)")
    try:
        value = json.loads(text)
    except ValueError:
        if kind == "any":
            return text
        raise bad(f"JSON ({kind})") from None
    if kind == "array" and not isinstance(value, list):
        raise bad("a JSON array")
    if kind == "object" and not isinstance(value, dict):
        raise bad("a JSON object")
    return value


def _dump(value: Any) -> str:
    return msgspec.json.format(msgspec.json.encode(value), indent=2).decode()


# ---------------------------------------------------------------- commands


def _cmd_validate(args: argparse.Namespace) -> int:
    plan = _load(args.file, _registry())
    summary = {
        "file": args.file,
        "name": plan.spec.name,
        "version": plan.spec.version,
        "steps": [s.id for s in plan.steps],
        "inputs": {k: v.type for k, v in plan.spec.inputs.items()},
        "valid": True,
    }
    if args.json:
        print(_dump(summary))
    else:
        print(
            f"{args.file}: ok — workflow {plan.spec.name!r} v{plan.spec.version}, "
            f"{len(plan.steps)} steps"
        )
    return EXIT_OK


def _cmd_plugins(args: argparse.Namespace) -> int:
    infos = _registry().infos()
    if args.json:
        print(
            _dump(
                [
                    {
                        "name": i.name,
                        "plugin": i.plugin,
                        "version": i.version,
                        "kind": i.kind,
                        "description": i.description,
                    }
                    for i in infos
                ]
            )
        )
        return EXIT_OK
    from rich.console import Console
    from rich.table import Table

    table = Table(title="corral handlers")
    for col in ("handler", "plugin", "version", "kind", "description"):
        table.add_column(col)
    for i in infos:
        table.add_row(i.name, i.plugin, i.version, i.kind, i.description)
    Console(width=max(100, Console().width)).print(table)
    return EXIT_OK


def _cmd_run(args: argparse.Namespace) -> int:
    registry = _registry()
    plan = _load(args.file, registry)
    inputs = parse_inputs(args.input, plan)
    plan.bind_inputs(inputs)  # report input errors before starting anything
    show = args.progress == "always" or (
        args.progress == "auto" and sys.stdout.isatty() and not args.json
    )
    record: ExecutionRecord = trio.run(_run, args.store, plan, inputs, show)
    if args.json:
        print(msgspec.json.format(msgspec.json.encode(record), indent=2).decode())
    else:
        _print_summary(record)
    return EXIT_OK if record.status == "succeeded" else EXIT_FAILED


async def _run(store: str, plan: Plan, inputs: dict[str, Any], show: bool) -> ExecutionRecord:
    async with corral.open_engine(store) as engine:
        if not show:
            handle = await engine.submit(plan, inputs)
            return await handle.wait()
        with engine.subscribe() as events:
            handle = await engine.submit(plan, inputs)
            progress = _Progress(plan, handle.id)
            try:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(progress.follow, events)
                    record = await handle.wait()
                    nursery.cancel_scope.cancel()
            except BaseExceptionGroup as group:  # e.g. Ctrl-C: not a group for the user
                raise group.exceptions[0] if len(group.exceptions) == 1 else group from None
            finally:
                progress.stop()
            return record


def _print_summary(record: ExecutionRecord) -> None:
    took = (
        f" in {record.finished_at - record.started_at:.2f}s"
        if record.finished_at and record.started_at
        else ""
    )
    if record.status == "succeeded":
        print(f"workflow {record.workflow!r} succeeded{took} (execution {record.id})")
        print(_dump(record.result))
        return
    print(
        f"workflow {record.workflow!r} {record.status}{took} (execution {record.id})",
        file=sys.stderr,
    )
    if record.error is not None:
        where = f" in step {record.error.step!r}" if record.error.step else ""
        print(f"  {record.error.type}{where}: {record.error.message}", file=sys.stderr)
    for step in record.steps:
        if step.status in ("failed", "timed_out") and step.error is not None:
            print(
                f"  step {step.step_id}: {step.status} after {step.attempts} attempt(s): "
                f"{step.error.type}: {step.error.message}",
                file=sys.stderr,
            )


class _Progress:
    """A live table of steps, fed by engine events (rich)."""

    _STYLE = {
        "pending": "dim",
        "running": "cyan",
        "succeeded": "green",
        "cached": "green",
        "failed": "red",
        "timed_out": "red",
        "cancelled": "yellow",
        "skipped": "dim",
        "retrying": "magenta",
    }

    def __init__(self, plan: Plan, execution_id: str) -> None:
        from rich.console import Console
        from rich.live import Live

        self.plan = plan
        self.execution_id = execution_id
        self.rows: dict[str, dict[str, Any]] = {
            s.id: {"status": "pending", "attempt": 0, "start": None, "end": None, "note": ""}
            for s in plan.steps
        }
        self.started = time.monotonic()
        # get_renderable: the table is rebuilt at every refresh, so running
        # steps' times keep moving between events.
        self.live = Live(
            console=Console(), refresh_per_second=8, transient=False, get_renderable=self._table
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
            took = "" if start is None else f"{(end or now) - start:.2f}s"
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
            row.update(status="running", attempt=event.attempt)
            row["start"] = row["start"] or time.monotonic()
        elif isinstance(event, StepRetrying):
            self.rows[event.step_id].update(
                status="retrying", note=f"{event.error.type}; retry in {event.delay:.1f}s"
            )
        elif isinstance(event, StepProgress):
            total = f"/{event.total:g}" if event.total is not None else ""
            msg = f" {event.message}" if event.message else ""
            self.rows[event.step_id]["note"] = f"{event.done:g}{total}{msg}"
        elif isinstance(event, StepFinished):
            row = self.rows[event.step_id]
            row.update(status=event.status, attempt=event.attempts)
            if row["start"] is not None:
                row["end"] = time.monotonic()
            if event.error is not None:
                row["note"] = f"{event.error.type}: {event.error.message}"[:80]

    async def follow(self, events: corral.Subscription) -> None:
        async for event in events:
            self.apply(event)

    def stop(self) -> None:
        self.live.refresh()
        self.live.stop()


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
