"""Commands about workflow definitions and running them: ``run``,
``validate``, ``submit``, ``schema``, ``convert`` and ``plugins``."""

from __future__ import annotations

import argparse
import functools
import inspect
import re
import sys
from pathlib import Path
from typing import Any

import msgspec
import trio

from corral.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    _dump,
    _int_arg,
    _lease,
    _load,
    _record,
    _registry,
    _say,
    _via_api,
    parse_inputs,
)
from corral.cli.running import _print_summary, _run
from corral.core.errors import (
    SpecError,
    UsageError,
)
from corral.core.model import (
    ExecutionRecord,
)
from corral.core.status import (
    SUCCEEDED,
)
from corral.engine.opening import open_engine
from corral.storage import MemoryStore, default_store_url, open_store
from corral.storage.rules import PAUSED_ALL
from corral.workflow.plan import Plan

# ---------------------------------------------------------------- commands


def _cmd_validate(args: argparse.Namespace) -> int:
    try:
        plan = _load(args.file, _registry())
    except SpecError as exc:
        # every error found, each with its file, line and path (not only the first)
        if args.json:
            found = [
                {"file": e.file, "line": e.line, "path": e.path, "message": e.message}
                for e in exc.errors
            ]
            print(_dump({"file": args.file, "valid": False, "errors": found}))
        for e in exc.errors:  # one line each (as every error), in full with --verbose
            _say(
                "corral: error: ", SpecError(e.message, file=e.file, path=e.path, line=e.line), args
            )
        if len(exc.errors) > 1:
            print(f"{args.file}: {len(exc.errors)} errors", file=sys.stderr)
        return EXIT_USAGE
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


_RST_ROLE = re.compile(r":[a-z]+:`~?\.?([^`]+)`")


def _plain(doc: str) -> str:
    """A docstring's text without its reStructuredText markup."""
    return _RST_ROLE.sub(r"\1", doc).replace("``", "")


def _cmd_convert(args: argparse.Namespace) -> int:
    import yaml

    from corral.workflow.convert import convert
    from corral.workflow.documents import line_for
    from corral.workflow.loader import parse_document, parse_spec

    path = Path(args.file)
    fmt = {".yaml": "yaml", ".yml": "yaml", ".json": "json"}.get(path.suffix.lower())
    if fmt is None:
        raise UsageError(f"{args.file}: expected a .yaml, .yml or .json file")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{args.file}: {getattr(exc, 'strerror', None) or exc}") from None
    raw, lines = parse_document(text, fmt, args.file)
    registry = _registry()
    core = [n for n in registry if n.startswith("core.")]
    try:
        doc = convert(raw, name=args.name or path.stem, core=core)
    except SpecError as exc:  # the same file:line: path as `corral validate`
        raise exc.located(file=args.file, line=line_for(lines, exc.path)) from None
    if args.name:
        doc["name"] = args.name
    parse_spec(doc, file=f"{args.file} (converted)")  # a valid corral document
    header = f"# Converted from {path.name} by `corral convert`: each step needs the one before.\n"
    out = header + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=100)
    missing = sorted({s["handler"] for s in doc["steps"]} - set(registry))
    for name in missing:
        print(
            f"corral convert: warning: handler {name!r} is not installed: register the legacy "
            f"class with corral.plugins.compat.legacy_handler(..., name={name!r}) "
            "(docs/migration.md)",
            file=sys.stderr,
        )
    if args.out:
        try:
            Path(args.out).write_text(out, encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"--out {args.out}: {exc.strerror or exc}") from None
        print(f"corral convert: wrote {args.out} ({len(doc['steps'])} steps)", file=sys.stderr)
    else:
        sys.stdout.write(out)
    return EXIT_OK


def _cmd_schema(args: argparse.Namespace) -> int:
    from corral.workflow import reference

    if args.markdown:
        sys.stdout.write(reference.reference_markdown(_registry()))
    else:
        print(_dump(reference.workflow_schema()))
    return EXIT_OK


def _cmd_plugins(args: argparse.Namespace) -> int:
    registry = _registry()
    if args.name is not None:
        return _show_handler(registry, args.name, args.json)
    infos = [i for i in registry.infos() if args.all or not i.internal]
    if args.json:
        print(
            _dump(
                [
                    {
                        "name": i.name,
                        "plugin": i.plugin,
                        "version": i.version,
                        "kind": i.kind,
                        "description": _plain(i.description),
                        "internal": i.internal,
                    }
                    for i in infos
                ]
            )
        )
        return EXIT_OK
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = Console(highlight=False)
    by_plugin: dict[str, list[Any]] = {}
    for i in infos:
        by_plugin.setdefault(i.plugin, []).append(i)
    for plugin, members in by_plugin.items():
        table = Table(box=None, show_header=False, padding=(0, 2, 0, 0), expand=False)
        table.add_column(no_wrap=True, style="bold")
        table.add_column(no_wrap=True, style="dim")
        table.add_column(overflow="fold")
        for i in members:
            table.add_row(Text(i.name), Text(i.kind), Text(_plain(i.description)))
        console.print(Text(plugin, style="underline"))
        console.print(table)
        console.print()
    hidden = sum(1 for i in registry.infos() if i.internal) if not args.all else 0
    notes = ["`corral plugins NAME` shows a handler's params"]
    if hidden:
        notes.append(f"{hidden} internal steps of built-in commands hidden (--all shows them)")
    console.print(Text("; ".join(notes) + ".", style="dim"))
    for b in registry.broken:
        offered = f" (its handlers: {', '.join(b.handlers)})" if b.handlers else ""
        console.print(Text.assemble(("broken", "red"), f": {b.plugin}{offered}: {b.reason}"))
    return EXIT_OK


def _show_handler(registry: Any, name: str, as_json: bool) -> int:
    if name not in registry:
        close = registry.suggest(name)
        hint = f"; did you mean {', '.join(close)}?" if close else "; `corral plugins` lists them"
        raise UsageError(f"no handler named {name!r}{hint}")
    info = registry.info(name)
    from corral.workflow.reference import handler_params

    rows = [(n, t, d, _plain(e)) for n, t, d, e in handler_params(info.cls)]
    if as_json:
        params = [{"name": n, "type": t, "default": d, "description": e} for n, t, d, e in rows]
        print(
            _dump(
                {
                    "name": info.name,
                    "plugin": info.plugin,
                    "version": info.version,
                    "kind": info.kind,
                    "internal": info.internal,
                    "description": _plain(info.description),
                    "params": params,
                }
            )
        )
        return EXIT_OK
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = Console(highlight=False)
    console.print(Text(info.name, style="bold"))
    for label, value in (
        ("plugin", info.plugin),
        ("version", info.version),
        ("kind", info.kind + (" (internal step)" if info.internal else "")),
    ):
        console.print(Text.assemble((f"{label:<8} ", "dim"), value))
    doc = _plain(inspect.getdoc(info.cls) or info.description)
    if doc:
        console.print()
        console.print(doc)
    console.print()
    if not rows:
        console.print("params: none")
        return EXIT_OK
    table = Table(title="params", title_justify="left", box=None, padding=(0, 2, 0, 0))
    described = any(row[3] for row in rows)
    for column in ("name", "type", "default", "description")[: 4 if described else 3]:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*(Text(cell) for cell in row[: 4 if described else 3]))
    console.print(table)
    return EXIT_OK


def _cmd_run(args: argparse.Namespace) -> int:
    registry = _registry()
    plan = _load(args.file, registry)
    inputs = parse_inputs(args.input, plan)
    plan.bind_inputs(inputs)  # report input errors before starting anything
    output = "record" if args.json else args.output
    lease = _lease(args)
    show = args.progress == "always" or (args.progress == "auto" and sys.stderr.isatty())
    store = open_store(args.store or default_store_url(), init=args.init)
    record: ExecutionRecord = trio.run(
        functools.partial(
            _run, store, plan, inputs, show, to_stderr=True, say_orphans=True, lease=lease
        )
    )
    # stdout carries the result only (a script's `> out.json`); the rest is stderr
    _print_summary(record, result=False)
    if output == "record":
        print(_dump(record))
    elif output == "result" and record.status == SUCCEEDED:
        print(_dump(record.result))
    return EXIT_OK if record.status == SUCCEEDED else EXIT_FAILED


def _cmd_submit(args: argparse.Namespace) -> int:
    registry = _registry()
    plan = _load(args.file, registry)
    inputs = parse_inputs(args.input, plan)
    plan.bind_inputs(inputs)
    priority = _int_arg("--priority", args.priority)
    if args.key is not None and not args.key:
        raise UsageError("--key must not be empty")
    if args.api:
        return _submit_via_api(args, plan, inputs, priority)
    store = open_store(args.store or default_store_url())
    if isinstance(store, MemoryStore):
        raise UsageError(
            "corral submit queues work in a shared store for `corral worker`; "
            "memory:// is gone with this process (use `corral run`, or --store URL)"
        )

    async def submit() -> ExecutionRecord | str:
        async with open_engine(store, run_here=False) as client:
            handle = await client.submit(plan, inputs, key=args.key, priority=priority)
            paused = await client.paused()
            if plan.name in paused or PAUSED_ALL in paused:
                print(
                    f"corral: workflow {plan.name!r} is paused: no worker starts it until "
                    "`corral unpause`",
                    file=sys.stderr,
                )
            if not args.wait:
                return handle.id
            print(f"submitted {handle.id}; waiting for a worker", file=sys.stderr)
            return await handle.wait()

    done = trio.run(submit)
    return _submitted(done, args.json)


def _submit_via_api(
    args: argparse.Namespace, plan: Plan, inputs: dict[str, Any], priority: int
) -> int:
    """``corral submit --api URL``: the checked spec sent inline."""
    spec = msgspec.to_builtins(plan.spec)

    async def submit(client: Any) -> ExecutionRecord | str:
        execution = await client.submit(spec, inputs, key=args.key, priority=priority)
        if not args.wait:
            return str(execution)
        print(f"submitted {execution}; waiting for it to end", file=sys.stderr)
        return _record(await client.wait(execution))

    done = _via_api(args.api, submit)
    return _submitted(done, args.json)


def _submitted(done: ExecutionRecord | str, as_json: bool) -> int:
    """What ``corral submit`` prints: the id, or (``--wait``) how it ended."""
    if isinstance(done, str):
        print(done)
        return EXIT_OK
    if as_json:
        print(_dump(done))
    else:
        _print_summary(done)
    return EXIT_OK if done.status == SUCCEEDED else EXIT_FAILED
