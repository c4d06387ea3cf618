"""The ``corral`` parser, assembled from corral's own commands and the
commands plugins add (``corral_commands``; loaded only when they may be
asked for), and :func:`main` / :func:`run`, the entry point."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from corral.cli import running
from corral.cli.common import (
    _STATUS_HELP,
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    _api_option,
    _configure_logging,
    _grace_option,
    _guard_options,
    _init_option,
    _input_option,
    _lease_option,
    _Parser,
    _progress_option,
    _registry,
    _say,
    _selection_options,
    _store_option,
)
from corral.cli.control import _cmd_cancel, _cmd_pause, _cmd_retry, _cmd_unpause
from corral.cli.definitions import (
    _cmd_convert,
    _cmd_plugins,
    _cmd_run,
    _cmd_schema,
    _cmd_submit,
    _cmd_validate,
)
from corral.cli.executions import _cmd_list, _cmd_resume, _cmd_show
from corral.cli.operate import _cmd_migrate, _cmd_prune, _cmd_serve, _cmd_worker
from corral.cli.running import CommandLine
from corral.core.errors import (
    CorralError,
    PluginError,
    UsageError,
    WorkflowFailed,
)
from corral.core.status import (
    FAILED,
)
from corral.core.version import __version__
from corral.plugins.manager import CommandInfo, plugin_commands


def _parser(commands: Mapping[str, CommandInfo] | None = None) -> argparse.ArgumentParser:
    """The whole command line: corral's own commands, then the plugins'
    (``commands``: each one's parser configured by the command itself)."""
    p = _Parser(prog="corral", description="corral: a workflow engine on Trio.")
    p.add_argument("--version", action="version", version=f"corral {__version__}")
    p.add_argument(
        "--no-plugins",
        action="store_true",
        help="load no installed plugin, only the built-in handlers (also CORRAL_NO_PLUGINS=1)",
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    run = sub.add_parser("run", help="run a workflow file and print its result")
    run.add_argument("file", help="workflow file (.yaml, .yml, .toml, .json)")
    _input_option(run)
    run.add_argument(
        "--output",
        choices=["result", "record", "none"],
        default="result",
        help="what goes to stdout: the workflow's result as JSON (default), the whole "
        "execution record, or nothing (the exit status says how it ended); everything else "
        "goes to stderr",
    )
    run.add_argument("--json", action="store_true", help="the same as --output record")
    _lease_option(run)
    _init_option(run)
    _progress_option(run)
    _store_option(run)

    smt = sub.add_parser(
        "submit", help="queue a workflow for the workers of a shared store; print its id"
    )
    smt.add_argument("file", help="workflow file (.yaml, .yml, .toml, .json)")
    _input_option(smt)
    smt.add_argument("--key", help="idempotency key: the same key gives the same execution")
    smt.add_argument("--priority", default="0", help="higher runs first (default: 0)")
    smt.add_argument(
        "--wait", action="store_true", help="wait for the result and print it (exit codes as run)"
    )
    smt.add_argument("--json", action="store_true", help="with --wait: print the record as JSON")
    _store_option(smt)
    _api_option(smt)

    wrk = sub.add_parser("worker", help="run queued executions of a shared store until SIGTERM")
    wrk.add_argument(
        "--concurrency",
        default="8",
        metavar="N",
        help="executions run at once (default: 8)",
    )
    wrk.add_argument(
        "--handlers",
        action="append",
        default=[],
        metavar="PATTERN",
        help="claim only executions whose handlers all match these patterns, e.g. 'core.*' "
        "(repeatable; default: every installed handler)",
    )
    _grace_option(wrk)
    wrk.add_argument(
        "--lease",
        default="30s",
        metavar="DURATION",
        help="how long the work of a worker that died (SIGKILL, a lost machine) waits "
        "before another worker takes it over (default: 30s; renewed every third of it)",
    )
    _store_option(wrk)

    val = sub.add_parser("validate", help="check a workflow file without running it")
    val.add_argument("file")
    val.add_argument("--json", action="store_true", help="print a JSON summary")

    srv = sub.add_parser(
        "serve",
        help="the HTTP API (workflows, executions, handlers, health, metrics; OpenAPI)",
        description="Serve corral's HTTP API (versioned under /v1, OpenAPI at "
        "/schema/openapi.json) with the engine in this process. Without an API token it "
        "listens on loopback only. A status page is at /. SIGTERM or Ctrl-C drains it as a "
        "worker drains: no more requests, running work finishes (up to --grace), the rest is "
        "released for the next engine. See docs/api.md.",
    )
    srv.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    srv.add_argument("--port", default="8080", help="port (default 8080; 0: any free port)")
    srv.add_argument(
        "--token-file",
        metavar="FILE",
        help="API tokens, one per line as SCOPE:TOKEN (SCOPE: read, run or admin); also "
        "$CORRAL_API_TOKENS",
    )
    srv.add_argument(
        "--run-here",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="run executions in this process (default), or with --no-run-here only enqueue "
        "them for `corral worker`s on the same store",
    )
    srv.add_argument(
        "--max-body",
        default="1m",
        metavar="SIZE",
        help="larger request bodies are refused with 413 (default 1m; e.g. 256k, 4m)",
    )
    _grace_option(srv)
    _store_option(srv)

    if _perf_checkout() is not None:  # (a source checkout: listed only where it works)
        sub.add_parser(
            "bench",
            help="the perf suite against raw-Trio baselines (corral bench --help)",
            add_help=False,
        )

    cvt = sub.add_parser(
        "convert",
        help="turn a legacy sequential workflow into a corral workflow file",
        description="Read a legacy sequential workflow (a YAML or JSON list of steps run one "
        "after another, each with a type and options; see docs/migration.md) and write the "
        "corral workflow file that runs it the same way: each step needs the one before.",
    )
    cvt.add_argument("file", help="the legacy workflow (.yaml, .yml or .json)")
    cvt.add_argument("--name", help="the workflow's name (default: the file's or its own)")
    cvt.add_argument("--out", metavar="FILE", help="write it here (default: stdout)")

    sch = sub.add_parser(
        "schema",
        help="the JSON Schema of a workflow file (for editors)",
        description="Print the JSON Schema of a workflow file: point an editor's YAML "
        "language server at it (`# yaml-language-server: $schema=corral.schema.json`) to "
        "validate and complete workflow files. --markdown prints the reference tables of "
        "docs/workflow-file.md instead.",
    )
    sch.add_argument(
        "--markdown", action="store_true", help="the workflow-file reference tables, as Markdown"
    )

    plg = sub.add_parser(
        "plugins",
        help="list available handlers, or show one with its params",
        description="The handlers of the installed plugins, by plugin. `corral plugins NAME` "
        "shows one: its plugin, version, kind, description and params.",
    )
    plg.add_argument("name", nargs="?", help="a handler to show in full, e.g. core.shell")
    plg.add_argument(
        "--all",
        action="store_true",
        help="also the internal steps of the built-in commands (analyze, restructure, vibe)",
    )
    plg.add_argument("--json", action="store_true", help="as JSON")

    lst = sub.add_parser("list", help="list tracked executions, newest first")
    lst.add_argument("--status", help=f"only executions with this status ({_STATUS_HELP})")
    lst.add_argument("--workflow", help="only executions of this workflow (by name)")
    lst.add_argument("--limit", default="50", help="at most N executions (default: 50)")
    lst.add_argument("--json", action="store_true", help="print the records as JSON")
    lst.add_argument(
        "--all",
        action="store_true",
        help="also the child executions of workflow steps (shown under their parent by "
        "`corral show`)",
    )
    _store_option(lst)
    _api_option(lst)

    shw = sub.add_parser("show", help="show one execution with its steps")
    shw.add_argument(
        "id", help="execution id (as printed by `corral run` or `corral list`), or its start"
    )
    shw.add_argument("--json", action="store_true", help="print the record as JSON")
    shw.add_argument(
        "--logs",
        action="store_true",
        help="also what each step's handler wrote with ctx.log (info and above, kept with "
        "its record)",
    )
    _store_option(shw)
    _api_option(shw)

    rsm = sub.add_parser(
        "resume",
        help="resume executions whose process stopped, in this process",
        description="Resume orphaned executions (their process stopped and their lease "
        "expired) here, from their last finished step, and wait for them. `corral run` "
        "never takes them over; a worker or a long-lived engine on the store does.",
    )
    rsm.add_argument("id", nargs="?", help="the execution to resume")
    rsm.add_argument("--all", action="store_true", help="every orphaned execution of the store")
    _store_option(rsm)

    cnc = sub.add_parser(
        "cancel",
        help="cancel an execution, or every one that matches --workflow/--status/--since",
    )
    cnc.add_argument("id", nargs="?", help="execution id, or its start (at least 4 characters)")
    _selection_options(cnc, "unfinished (pending and running)")
    _guard_options(cnc, "a bulk cancel stops many executions")
    _store_option(cnc)
    _api_option(cnc)

    rty = sub.add_parser(
        "retry",
        help="run a finished execution again, reusing the steps that need not run again",
        description="Run a finished execution again as a new execution linked to it. Steps "
        "that failed, timed out, were cancelled or skipped run again with everything "
        "downstream of them; steps that succeeded keep their recorded output and do not run. "
        "See docs/failures.md.",
    )
    rty.add_argument(
        "id", nargs="?", help="the execution to retry (or select many with --workflow/--status)"
    )
    rty.add_argument(
        "--from",
        dest="from_steps",
        action="extend",
        nargs="+",
        default=[],
        metavar="STEP",
        help="also run these steps again, and everything downstream, even if they succeeded",
    )
    _input_option(rty)
    rty.add_argument(
        "--spec",
        metavar="FILE_OR_NAME",
        help="run this definition of the workflow (a file, or a stored name[@version]) "
        "instead of the one the execution ran",
    )
    rty.add_argument(
        "--rerun-changed",
        action="store_true",
        help="run again the steps whose handler, handler version or params changed since "
        "they ran (without it, such a retry is refused and the steps are named)",
    )
    _selection_options(rty, FAILED)
    _guard_options(rty, "a bulk retry runs many executions again")
    rty.add_argument(
        "--output",
        choices=["result", "record", "none"],
        default="result",
        help="what goes to stdout for one retry: its result as JSON (default), its record, "
        "or nothing",
    )
    _lease_option(rty)
    _progress_option(rty)
    _store_option(rty)

    pau = sub.add_parser(
        "pause",
        help="hold the queued executions of a workflow (or of all) until `corral unpause`",
        description="Queued executions of a paused workflow stay queued, in every engine "
        "and worker sharing the store, until it is unpaused; running ones finish. The "
        "pause is kept in the store.",
    )
    pau.add_argument("--workflow", help="the workflow to pause (default: every workflow)")
    pau.add_argument("--list", action="store_true", help="only list what is paused")
    _store_option(pau)
    unp = sub.add_parser("unpause", help="lift a pause: what it held starts")
    unp.add_argument(
        "--workflow", help="the workflow to unpause (default: the pause of every workflow)"
    )
    _store_option(unp)

    mig = sub.add_parser(
        "migrate", help="apply or roll back schema migrations (SQLite or PostgreSQL)"
    )
    mig.add_argument(
        "--to", metavar="N", help="target schema version (default: the newest; 0: empty)"
    )
    _guard_options(mig, "rolling back drops tables and their data")
    _init_option(mig)
    _store_option(mig)

    prn = sub.add_parser("prune", help="delete finished executions older than a duration")
    prn.add_argument(
        "--older-than",
        required=True,
        metavar="DURATION",
        help="e.g. 90s, 30m, 12h, 7d, 2w: a unit is required (by the time the execution finished)",
    )
    prn.add_argument(
        "--status",
        action="extend",
        nargs="+",
        default=[],
        metavar="S",
        help="only executions with one of these statuses (succeeded, failed, cancelled, "
        "timed_out); default: all finished ones",
    )
    _guard_options(prn, "deleting executions cannot be undone")
    _store_option(prn)
    terminal = CommandLine()
    for info in (commands or {}).values():
        command = info.cls()
        try:  # on a parser of its own first: a command that fails here is left out
            command.configure(_Parser(prog=f"corral {info.name}"), terminal)
        except Exception as exc:
            print(
                f"corral: plugin {info.plugin}: command {info.name!r} left out: its "
                f"configure() raised {type(exc).__name__}: {exc}",
                file=sys.stderr,
            )
            continue
        own = sub.add_parser(info.name, help=info.cls.help, description=info.cls.description)
        command.configure(own, terminal)
        own.set_defaults(plugin_command=command, plugin=info.plugin)
    for parser in (p, *sub.choices.values()):
        parser.add_argument(
            "--verbose",
            action="store_true",
            default=argparse.SUPPRESS,
            help="after an error's one-line message, its full form (the caret under "
            "a condition's mistake, the YAML reader's context)",
        )
        parser.add_argument(
            "--log-level",
            choices=["debug", "info", "warning", "error"],
            default=argparse.SUPPRESS,
            help="show log records from this level up on stderr, handlers' ctx.log among "
            "them (default: warning)",
        )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _main(list(sys.argv[1:] if argv is None else argv))
    except BrokenPipeError:
        # `corral ... | head`: the reader left; say nothing more, like other tools.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK


def run() -> None:
    """The ``corral`` command (and ``python -m corral``): :func:`main`, then
    an immediate exit once the output is flushed.

    A one-shot command need not free what it built: the interpreter's
    teardown after analysing 1,500 modules costs up to 0.3 s, for nothing
    (mypy exits the same way). Everything the command owns is closed by
    then: the engine, its store and its worker processes end with
    ``open_engine``'s block. ``main()`` itself returns normally, for callers
    that embed it.
    """
    running.EXITS_AFTER_COMMAND = True
    code = main()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe: nothing more to say
            stream.flush()
    logging.shutdown()
    os._exit(code)


def _main(argv: list[str]) -> int:
    if argv[:1] == ["bench"]:  # every other argument belongs to the perf suite's parser
        try:
            return _cmd_bench(argv[1:])
        except CorralError as exc:
            _say("corral: error: ", exc, None)
            return EXIT_USAGE
    _registry.cache_clear()  # one registry per command, not per process (embedders call main)
    words = [a for a in argv if not a.startswith("-")]
    if "--no-plugins" in argv[: argv.index(words[0]) if words else len(argv)]:
        # the environment: engines and worker processes follow it too
        os.environ["CORRAL_NO_PLUGINS"] = "1"
    try:
        # The plugins are loaded only when their commands may be asked for:
        # corral's own commands start without them.
        commands = None if words and words[0] in _COMMANDS else _plugin_commands()
    except PluginError as exc:
        _say("corral: error: ", exc, None)
        return EXIT_USAGE
    parser = _parser(commands)
    args = parser.parse_args(argv)
    if getattr(args, "log_level", None):
        _configure_logging(args.log_level)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        command = getattr(args, "plugin_command", None)
        if command is not None:  # a plugin's: its run() returns the exit code (None: 0)
            code = command.run(args, CommandLine())
            return EXIT_OK if code is None else int(code)
        return _COMMANDS[args.command](args)
    except WorkflowFailed as exc:
        _say("corral: ", exc, args)
        return EXIT_FAILED
    except CorralError as exc:
        _say("corral: error: ", exc, args)
        return EXIT_USAGE
    except KeyboardInterrupt:
        if args.command == "run":
            # The engine has already cancelled the workflow (recorded `cancelled`).
            print("corral: interrupted; the workflow was cancelled", file=sys.stderr)
        else:
            print("corral: interrupted", file=sys.stderr)
        return EXIT_FAILED


def _plugin_commands() -> dict[str, CommandInfo]:
    """The commands of every plugin (built-ins and installed ones)."""
    found, _ = plugin_commands(_registry(), reserved=[*_COMMANDS, "bench", "help"])
    return found


def _perf_checkout() -> Path | None:
    """The source checkout whose perf/ suite `corral bench` runs (None: an
    installed package without it)."""
    checkout = Path(__file__).resolve().parents[3]
    return checkout if (checkout / "perf" / "__init__.py").is_file() else None


def _cmd_bench(argv: list[str]) -> int:
    """``corral bench ARGS``: the perf suite (``python -m perf ARGS``), same code.

    The suite lives in ``perf/`` beside ``src/`` in a source checkout; it is
    not part of the installed package.
    """
    import importlib

    checkout = _perf_checkout()
    if checkout is not None and str(checkout) not in sys.path:
        sys.path.insert(0, str(checkout))
    try:
        perf = importlib.import_module("perf")
        run = perf.main
    except (ImportError, AttributeError):
        raise UsageError(
            "corral bench needs corral's source checkout (the perf/ folder beside src/); "
            "run it from a git clone installed with `pip install -e .`"
        ) from None
    try:
        code: int = run(argv, prog="corral bench")
    except SystemExit as exc:  # its argument parser's --help and usage errors
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    return code


#: corral's own commands (``bench`` hands its arguments to the perf suite).
_COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "run": _cmd_run,
    "validate": _cmd_validate,
    "submit": _cmd_submit,
    "serve": _cmd_serve,
    "schema": _cmd_schema,
    "convert": _cmd_convert,
    "worker": _cmd_worker,
    "plugins": _cmd_plugins,
    "list": _cmd_list,
    "show": _cmd_show,
    "cancel": _cmd_cancel,
    "resume": _cmd_resume,
    "retry": _cmd_retry,
    "pause": _cmd_pause,
    "unpause": _cmd_unpause,
    "migrate": _cmd_migrate,
    "prune": _cmd_prune,
}


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
