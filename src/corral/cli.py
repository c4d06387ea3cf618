"""The ``corral`` command line: a thin layer over the engine's public API.

Exit codes: 0 the workflow succeeded (or the command did its job), 1 the
workflow failed, timed out or was cancelled, 2 a usage, spec, input, plugin or
store error (a one-line message, never a traceback).

Commands that work on tracked executions (``run``, ``list``, ``show``,
``cancel``, ``prune``, ``migrate``) take ``--store URL``; the default is
``$CORRAL_STORE`` or the per-user SQLite file. Only ``run`` and ``migrate``
create a missing database file: the others say that there is none.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import functools
import inspect
import json
import logging
import os
import re
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import msgspec
import trio

import corral
from corral.core.errors import (
    CorralError,
    ExecutionNotFound,
    InputError,
    RestructureError,
    SpecError,
    StoreError,
    UsageError,
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
    CACHED,
    CANCELLED,
    EXECUTION_STATUSES,
    FAILED,
    PENDING,
    RUNNING,
    SKIPPED,
    SUCCEEDED,
    TERMINAL_EXECUTION,
    TIMED_OUT,
    UNFINISHED,
)
from corral.storage import Store, default_store_url, lifetime, open_store, select
from corral.storage.rules import PAUSED_ALL
from corral.workflow.plan import Plan

T = TypeVar("T")

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"corral: error: {message}\n")


def _input_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-i",
        "--input",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an input value, converted to the input's declared type (repeatable)",
    )


def _init_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--init",
        action="store_true",
        help="add corral's tables to a SQLite database that already holds other tables "
        "(without it, such a database is refused and left unchanged)",
    )


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="corral", description="corral: a workflow engine on Trio.")
    p.add_argument("--version", action="version", version=f"corral {corral.__version__}")
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

    ana = sub.add_parser(
        "analyze",
        help="architecture report of a Python codebase",
        description="Analyse the architecture of the Python code under PATH (nothing is "
        "imported or run): import graph, coupling metrics, cycles, layers, a 0-100 score "
        "and recommendations. See docs/analysis.md.",
    )
    ana.add_argument("path", help="directory to analyse")
    ana.add_argument(
        "--format",
        choices=["text", "json", "markdown", "html"],
        help="report format (default: from --out's extension; else text on a terminal, "
        "json otherwise)",
    )
    ana.add_argument("--out", metavar="FILE", help="write the report here instead of stdout")
    ana.add_argument(
        "--exclude", action="append", default=[], metavar="GLOB", help="skip matching paths"
    )
    ana.add_argument("--exclude-tests", action="store_true", help="skip tests and conftest files")
    ana.add_argument(
        "--exclude-type-checking",
        action="store_true",
        help="ignore imports under `if TYPE_CHECKING:`",
    )
    ana.add_argument(
        "--fail-on",
        action="append",
        default=[],
        metavar="COND",
        help="exit 1 when COND holds: cycles, violations or score<N (repeatable)",
    )
    ana.add_argument(
        "--no-cache", action="store_true", help="recompute everything (ignore cached results)"
    )
    ana.add_argument(
        "--suggest-moves",
        metavar="FILE",
        help="also write moves that break package cycles and resolve layer violations as a "
        "plan for `corral restructure --plan FILE`",
    )
    _progress_option(ana)
    _store_option(ana)

    rst = sub.add_parser(
        "restructure",
        help="move modules and packages and rewrite every import of them",
        description="Move modules and packages of the Python project under PATH to new "
        "places and rewrite every reference to them (imports of every form, relative "
        "imports, strings, docstrings, comments, entry points). Without --apply it "
        "prints the moves, every file it would touch and a unified diff, and writes "
        "nothing; with --apply it carries the plan out as a workflow (plan, snapshot, "
        "write, validate, finish), validates it and rolls everything back on failure. "
        "See docs/restructure.md.",
    )
    rst.add_argument("path", help="the project's directory")
    rst.add_argument(
        "--move",
        action="append",
        default=[],
        metavar="OLD=NEW",
        help="a dotted module or package and where it goes, e.g. pkg.util=pkg.lib.util "
        "(repeatable)",
    )
    rst.add_argument("--plan", metavar="FILE", help='a TOML plan: [[move]] from = "..." to = "..."')
    rst.add_argument(
        "--apply",
        action="store_true",
        help="carry the plan out, validate it, and roll everything back if validation fails "
        "(without it nothing is written)",
    )
    rst.add_argument(
        "--test-command",
        metavar="CMD",
        help="a shell command that must pass on the result (run in PATH), e.g. 'pytest -q'",
    )
    rst.add_argument(
        "--allow-dirty",
        action="store_true",
        help="apply in a git work tree that has uncommitted changes",
    )
    rst.add_argument(
        "--keep-shims",
        action="store_true",
        help="leave a module at each old path that re-exports the new one and warns "
        "(DeprecationWarning) on import",
    )
    rst.add_argument("--format", choices=["text", "json", "markdown"], default="text")
    rst.add_argument("--out", metavar="FILE", help="write the plan here instead of stdout")
    _progress_option(rst)
    _store_option(rst)

    vib = sub.add_parser(
        "vibe",
        help="every analysis of a codebase in parallel, one ranked plan and a health score",
        description="Run every analysis of the Python code under PATH in parallel, one "
        "workflow step per analysis per subproject (architecture, ruff, radon, bandit, "
        "deptry, vulture, tests), and rank what they found into one plan with a 0-100 "
        "health score. An analyser that is missing or fails is reported; the others "
        "finish. See docs/vibe.md.",
    )
    vib.add_argument("path", help="the codebase's directory")
    vib.add_argument(
        "--only",
        metavar="KIND,...",
        action="append",
        default=[],
        help="only these analyses: architecture, lint, complexity, security, dependencies, "
        "deadcode, tests (comma-separated or repeated)",
    )
    vib.add_argument(
        "--test-command",
        metavar="CMD",
        help="a shell command that runs the tests (in each subproject); its result and "
        "duration are part of the report",
    )
    vib.add_argument(
        "--format",
        choices=["text", "json", "markdown", "html"],
        default=None,
        help="report format (default: from --out's extension, else text on a "
        "terminal and json otherwise)",
    )
    vib.add_argument("--out", metavar="FILE", help="write the report here instead of stdout")
    vib.add_argument(
        "--fail-on",
        metavar="COND",
        action="append",
        default=[],
        help="exit 1 when COND holds: score<N, high, incomplete, or an analysis's name "
        "(any finding of it); repeatable",
    )
    vib.add_argument(
        "--no-cache", action="store_true", help="recompute every analysis (ignore cached results)"
    )
    vib.add_argument(
        "--fix",
        nargs="?",
        const="safe",
        choices=["safe", "moves"],
        help="apply ruff's safe fixes (unused imports among them) on a new branch, validate "
        "(compiles, no analysis worse, --test-command passes) and keep, or roll back; "
        "--fix=moves also applies the moves corral restructure plans for package cycles and "
        "layer violations, validated the same way",
    )
    vib.add_argument(
        "--allow-dirty",
        action="store_true",
        help="--fix in a git work tree with uncommitted changes",
    )
    _progress_option(vib)
    _store_option(vib)

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


class _LogFormat(logging.Formatter):
    """``info greetings/count: message``: a step's records say whose they are."""

    def format(self, record: logging.LogRecord) -> str:
        where = record.name
        step = getattr(record, "step", None)
        if step is not None:
            where = f"{getattr(record, 'workflow', '?')}/{step}"
        text = f"{record.levelname.lower()} {where}: {record.getMessage()}"
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


def _configure_logging(level: str) -> None:
    """Log records of corral (and handlers' ``ctx.log``) on stderr from ``level``."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_LogFormat())
    root = logging.getLogger("corral")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False


def _store_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--store",
        metavar="URL",
        default=None,
        help="store URL: sqlite:///abs/path.db, sqlite://rel/path.db, sqlite:// (per-user "
        "file), memory:// (default: $CORRAL_STORE or the per-user SQLite file)",
    )


def _api_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--api",
        metavar="URL",
        default=None,
        help="talk to a `corral serve` at URL instead of the store (its token: $CORRAL_API_TOKEN)",
    )


def _via_api(url: str, work: Callable[[Any], Awaitable[T]]) -> T:
    """Run ``work(client)`` against the HTTP API at ``url``."""
    from corral.client import Client

    async def main() -> T:
        async with Client(url, os.environ.get("CORRAL_API_TOKEN")) as client:
            return await work(client)

    return trio.run(main)


def _record(data: dict[str, Any]) -> ExecutionRecord:
    """An execution record as the API sends it."""
    data = {k: v for k, v in data.items() if k != "links"}
    return msgspec.convert(data, ExecutionRecord)


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
    args = _parser().parse_args(argv)
    if args.no_plugins:  # the environment: engines and worker processes follow it too
        os.environ["CORRAL_NO_PLUGINS"] = "1"
    if getattr(args, "log_level", None):
        _configure_logging(args.log_level)
    if args.command is None:
        _parser().print_help()
        return EXIT_USAGE
    try:
        if args.command == "run":
            return _cmd_run(args)
        if args.command == "validate":
            return _cmd_validate(args)
        if args.command == "submit":
            return _cmd_submit(args)
        if args.command == "restructure":
            return _cmd_restructure(args)
        if args.command == "vibe":
            return _cmd_vibe(args)
        if args.command == "serve":
            return _cmd_serve(args)
        if args.command == "schema":
            return _cmd_schema(args)
        if args.command == "convert":
            return _cmd_convert(args)
        if args.command == "worker":
            return _cmd_worker(args)
        if args.command == "plugins":
            return _cmd_plugins(args)
        if args.command == "analyze":
            return _cmd_analyze(args)
        if args.command in _STORE_COMMANDS:
            return _STORE_COMMANDS[args.command](args)
    except corral.WorkflowFailed as exc:
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
    raise AssertionError(f"unhandled command {args.command}")


# ---------------------------------------------------------------- helpers

# Everything str.splitlines() breaks a line at, but "\n" (folded, below).
_LINE_BREAKS = str.maketrans({c: f"\\u{ord(c):04x}" for c in "\r\v\f\x1c\x1d\x1e\x85\u2028\u2029"})
_CARET_LINE = re.compile(r"^[\s|.^~-]*\^[\s.^~-]*$")


def one_line(message: str) -> str:
    """``message`` on one line: a line break inside a name is escaped
    (``\\u2028``), the lines of a multi-line message are joined with " | ",
    a caret line (meaningless once folded) left out."""
    lines = message.translate(_LINE_BREAKS).split("\n")
    kept = [line.strip().lstrip("|").strip() for line in lines if not _CARET_LINE.match(line)]
    kept = [line for line in kept if line]
    return " | ".join(kept)


def _say(prefix: str, exc: BaseException, args: argparse.Namespace | None) -> None:
    """An error for the user: one line, then with ``--verbose`` its full form."""
    text = str(exc)
    print(prefix + one_line(text), file=sys.stderr)
    if args is not None and getattr(args, "verbose", False) and "\n" in text:
        print(text, file=sys.stderr)


def _registry() -> Any:
    """The installed handlers (a broken plugin is warned about on stderr, once)."""
    from corral.plugins.manager import build_registry

    return build_registry()


def _load(path: str, registry: Any) -> Plan:
    from corral.core.model import Limits

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


_FORMATS_BY_SUFFIX = {
    ".json": "json",
    ".md": "markdown",
    ".markdown": "markdown",
    ".html": "html",
    ".htm": "html",
    ".txt": "text",
}
_FAIL_ON = re.compile(r"^\s*(cycles|violations|score\s*<\s*(\d+))\s*$")


def parse_fail_on(conditions: Sequence[str], where: str = "--fail-on") -> list[tuple[str, int]]:
    """``cycles``, ``violations``, ``score<N`` (comma-separated or repeated)."""
    parsed: list[tuple[str, int]] = []
    for text in conditions:
        for part in text.split(","):
            match = _FAIL_ON.match(part)
            if match is None or (match.group(2) and int(match.group(2)) > 100):
                raise UsageError(
                    f"{where} {part.strip()!r}: expected cycles, violations or score<N "
                    "(N from 0 to 100)"
                )
            kind = "score" if match.group(2) else match.group(1)
            parsed.append((kind, int(match.group(2) or 0)))
    return parsed


def failed_conditions(report: dict[str, Any], conditions: list[tuple[str, int]]) -> list[str]:
    """What makes ``--fail-on`` hold, one message each (empty: nothing)."""
    s = report["summary"]
    messages = []
    for kind, limit in conditions:
        if kind == "cycles" and s["module_cycles"] + s["package_cycles"]:
            messages.append(
                f"{s['module_cycles']} module cycle(s), {s['package_cycles']} package cycle(s)"
            )
        elif kind == "violations" and (s["violations"] or s.get("broken_contracts")):
            messages.append(
                f"{s['violations']} layer contract violation(s), "
                f"{s.get('broken_contracts', 0)} broken contract(s)"
            )
        elif kind == "score" and s["score"] < limit:
            messages.append(f"score {s['score']} < {limit}")
    return messages


def _cmd_analyze(args: argparse.Namespace) -> int:
    from corral.plugins.builtin.architecture import analysis_workflow, project_settings
    from corral.plugins.builtin.architecture.projects import find_projects
    from corral.plugins.builtin.architecture.report import summary_text

    conditions = parse_fail_on(args.fail_on)
    fmt = args.format
    if fmt is None and args.out:
        fmt = _FORMATS_BY_SUFFIX.get(Path(args.out).suffix.lower(), "json")
    if fmt is None:
        fmt = "text" if sys.stdout.isatty() else "json"
    path = Path(args.path)
    if not path.exists():
        raise UsageError(f"{args.path}: no such directory")
    if not path.is_dir():
        raise UsageError(f"{args.path}: not a directory (give the folder that holds the code)")
    if args.out:  # a bad destination is a usage error before any work, not after
        out_dir = Path(args.out).resolve().parent
        if not out_dir.is_dir():
            raise UsageError(f"--out {args.out}: directory {out_dir} does not exist")
        if not os.access(out_dir, os.W_OK):
            raise UsageError(f"--out {args.out}: directory {out_dir} is not writable")
    projects = find_projects(path, exclude=args.exclude, exclude_tests=args.exclude_tests)
    root_project = {"name": path.name, "path": ".", "config_file": "pyproject.toml"}
    listed = [p for p in projects if p["path"] != "."]
    # Configuration errors are usage errors: every project's table is checked
    # now, the root's too (even when it holds no package itself, as in a monorepo).
    for project in [root_project, *listed]:
        options, _ = project_settings(path, project, {})
        if project is root_project and not conditions:
            conditions = parse_fail_on(
                options["fail_on"], "pyproject.toml: tool.corral.architecture.fail_on"
            )
    wf = analysis_workflow(
        path,
        exclude=args.exclude,
        exclude_tests=args.exclude_tests,
        exclude_type_checking=args.exclude_type_checking,
        cache=not args.no_cache,
        projects=projects,
    )
    plan = _compiled(wf)
    show = args.progress == "always" or (args.progress == "auto" and sys.stderr.isatty())
    store = args.store or default_store_url()
    # One workflow of a few long steps over a large, acyclic data set: the
    # cycle collector would only walk it again and again (a sixth of a cold
    # run on 1,500 modules), so it is paused while the analysis runs (and the
    # engine's own heap freeze, a full collection at open, is not needed).
    with _collector_paused():
        outcome = trio.run(_run, store, plan, {}, show, "none", True, False, _result_or_record)
    if isinstance(outcome, ExecutionRecord):
        _print_summary(outcome)
        return EXIT_FAILED
    report = outcome["report"]
    if fmt == "json":
        text = _dump(report) + "\n"
    elif fmt == "markdown":  # the renderers are imported only when asked for
        from corral.plugins.builtin.architecture.render import render_markdown

        text = render_markdown(report)
    elif fmt == "html":
        from corral.plugins.builtin.architecture.render import render_html

        text = render_html(report)
    else:
        text = summary_text(report)
    if args.out:
        try:
            Path(args.out).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"--out {args.out}: {exc.strerror or exc}") from None
        print(
            f"report written to {args.out} (score {report['summary']['score']}/100)",
            file=sys.stderr,
        )
    else:
        sys.stdout.write(text)
    if args.suggest_moves:
        _suggest_moves(args.path, args.suggest_moves)
    failures = failed_conditions(report, conditions)
    for message in failures:
        print(f"corral: --fail-on: {message}", file=sys.stderr)
    return EXIT_FAILED if failures else EXIT_OK


def _suggest_moves(path: str, out: str) -> None:
    """Write the moves that break package cycles and resolve layer violations
    as a plan file."""
    from corral.plugins.builtin.restructure.architecture import analysis
    from corral.plugins.builtin.restructure.suggest import suggestion

    now = analysis(Path(path).resolve())
    proposed = suggestion(now, now.kinds)
    try:
        Path(out).write_text(proposed["plan"], encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"--suggest-moves {out}: {exc.strerror or exc}") from None
    moves = proposed["moves"]
    print(
        f"{len(moves)} suggested move(s) written to {out}"
        + (
            ""
            if moves
            else " (no move breaks a package cycle or resolves a layer violation "
            "without creating another)"
        )
        + (f"; try: corral restructure {path} --plan {out}" if moves else ""),
        file=sys.stderr,
    )


def _perf_checkout() -> Path | None:
    """The source checkout whose perf/ suite `corral bench` runs (None: an
    installed package without it)."""
    checkout = Path(corral.__file__).resolve().parents[2]
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


def _cmd_restructure(args: argparse.Namespace) -> int:
    from corral.plugins.builtin.restructure.moves import parse_move, parse_plan
    from corral.plugins.builtin.restructure.render import render

    if args.plan and args.move:
        raise UsageError("give either --move OLD=NEW ... or --plan FILE, not both")
    if args.plan:
        try:
            text = Path(args.plan).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(
                f"--plan {args.plan}: {getattr(exc, 'strerror', None) or exc}"
            ) from None
        moves, planned_command = parse_plan(text, args.plan)
    else:
        moves, planned_command = [parse_move(m) for m in args.move], None
    test_command = args.test_command or planned_command
    if not Path(args.path).is_dir():
        raise UsageError(f"{args.path}: no such directory")
    if args.out:
        out_dir = Path(args.out).resolve().parent
        if not out_dir.is_dir():
            raise UsageError(f"--out {args.out}: directory {out_dir} does not exist")

    show = args.progress == "always" or (args.progress == "auto" and sys.stderr.isatty())
    done = _restructure(
        args.path,
        moves,
        apply=args.apply,
        test_command=test_command,
        keep_shims=args.keep_shims,
        allow_dirty=args.allow_dirty,
        store=args.store or default_store_url(),
        show=show,
    )
    if done is None:
        return EXIT_FAILED
    plan, applied, record = done
    text = render(plan, args.format, applied)
    if args.out:
        try:
            Path(args.out).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"--out {args.out}: {exc.strerror or exc}") from None
        print(f"plan written to {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    if args.apply:
        print(
            f"corral restructure: execution {record.id} (corral show {record.id})", file=sys.stderr
        )
    return EXIT_OK if applied is None or applied.ok else EXIT_FAILED


def _restructure(
    path: str,
    moves: list[Any],
    *,
    apply: bool,
    test_command: str | None,
    keep_shims: bool,
    allow_dirty: bool,
    store: str,
    show: bool,
) -> tuple[Any, Any, ExecutionRecord] | None:
    """Run the ``restructure`` workflow: (the plan, what applying did or
    ``None`` for a dry run, the execution); ``None`` when it failed outside
    validation (the summary printed, this run's changes rolled back).
    Raises :class:`RestructureError` when the plan or the tree is refused."""
    from corral.plugins.builtin.restructure.apply import Applied, failures, recover
    from corral.plugins.builtin.restructure.handlers import restructure_workflow
    from corral.plugins.builtin.restructure.project import ProjectPlan

    def say(line: str) -> None:
        print(f"corral restructure: {line}", file=sys.stderr)

    if apply:
        recovered = recover(path)
        if recovered:
            say(recovered)
    wf = restructure_workflow(
        path,
        moves,
        apply=apply,
        test_command=test_command,
        keep_shims=keep_shims,
        allow_dirty=allow_dirty,
    )
    compiled = _compiled(wf)
    # Applying is recorded step by step (corral show ID); a dry run writes nothing.
    durability = "step" if apply else "none"
    try:
        record: ExecutionRecord = trio.run(_run, store, compiled, {}, show, durability, True)
    except BaseException:
        # Ctrl-C: the tree as it was (the journal is this run's: the one
        # found at the start was rolled back then, and a new one would have
        # made this run's snapshot step fail)
        if apply and recover(path):
            say("stopped: everything was rolled back")
        raise
    error = record.error
    steps = {s.step_id: s for s in record.steps}
    rolled_back_by_finish = error is not None and error.type == "RestructureRolledBack"
    if record.status != SUCCEEDED and not rolled_back_by_finish:
        # only this execution's journal: another run's stays (it may be running)
        rolled_back = recover(path, owner=record.id) if apply else None
        if error is not None and error.type in ("RestructureError", "UsageError"):
            raise RestructureError(error.message)  # refused: nothing was written
        _print_summary(record)  # (a failed one goes to stderr)
        if rolled_back:
            say(f"everything was rolled back (execution {record.id})")
        return None
    if rolled_back_by_finish:  # validation failed: the report from the recorded steps
        plan_data, checked = steps["plan"].output, steps["validate"].output
        reason = failures(checked["checks"])
        finished: dict[str, Any] = {"ok": False, "branch": None, "commit": None}
        finished["rolled_back"] = reason
    else:
        plan_data = record.result["plan"]
        if apply:
            checked, finished = record.result["validation"], record.result["finish"]
    plan = ProjectPlan.from_data(plan_data)
    applied = None
    if apply:
        applied = Applied(
            ok=finished["ok"],
            validation=checked["checks"],
            branch=finished["branch"],
            commit=finished["commit"],
            rolled_back=finished["rolled_back"],
            architecture=checked["architecture"],
        )
    return plan, applied, record


def _cmd_vibe(args: argparse.Namespace) -> int:
    from corral.plugins.builtin.vibe.discover import discover
    from corral.plugins.builtin.vibe.handlers import ANALYSES, vibe_workflow
    from corral.plugins.builtin.vibe.plan import failed_conditions, parse_fail_on
    from corral.plugins.builtin.vibe.report import render

    only = [k.strip() for text in args.only for k in text.split(",") if k.strip()]
    unknown = [k for k in only if k not in ANALYSES]
    if unknown:
        raise UsageError(f"--only {unknown[0]!r}: expected one of {', '.join(ANALYSES)}")
    try:
        conditions = parse_fail_on(args.fail_on)
    except ValueError as exc:
        raise UsageError(f"--fail-on {exc}") from None
    fmt = args.format
    if fmt is None and args.out:
        fmt = _FORMATS_BY_SUFFIX.get(Path(args.out).suffix.lower(), "json")
    if fmt is None:
        fmt = "text" if sys.stdout.isatty() else "json"
    path = Path(args.path)
    if not path.is_dir():
        raise UsageError(f"{args.path}: no such directory")
    if args.out:
        out_dir = Path(args.out).resolve().parent
        if not out_dir.is_dir():
            raise UsageError(f"--out {args.out}: directory {out_dir} does not exist")
    found = discover(path)
    if not found["python"]:
        raise UsageError(
            f"{args.path}: no Python package found (a package is a folder with an __init__.py)"
        )
    wf = vibe_workflow(
        found, only=only or None, test_command=args.test_command, cache=not args.no_cache
    )
    show = args.progress == "always" or (args.progress == "auto" and sys.stderr.isatty())
    store = args.store or default_store_url()
    done = _vibe_plan(wf, store, show)
    if done is None:
        return EXIT_FAILED
    plan, sections = done
    fixed_ok = True
    if args.fix:
        fixed_ok = _vibe_fixes(args, plan, found, only, store, show)
    if fmt == "html":
        from corral.plugins.builtin.vibe.report_html import render_html

        text = render_html(plan, sections)
    else:
        text = render(plan, fmt)
    if args.out:
        try:
            Path(args.out).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"--out {args.out}: {exc.strerror or exc}") from None
        print(f"report written to {args.out} (score {plan['score']['value']}/100)", file=sys.stderr)
    else:
        sys.stdout.write(text)
    failures = failed_conditions(plan, conditions)
    for message in failures:
        print(f"corral: --fail-on: {message}", file=sys.stderr)
    return EXIT_FAILED if failures or not fixed_ok else EXIT_OK


def _compiled(wf: Any) -> Plan:
    """A built-in command's workflow (a ``corral.Workflow``), compiled
    against every registered handler."""
    from corral.core.model import Limits
    from corral.workflow.compiler import compile_spec

    return compile_spec(wf.build(), handlers=_registry(), pools=Limits().pool_sizes())


def _vibe_plan(
    wf: Any, store: str, show: bool
) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
    """Run the ``vibe`` workflow: its plan, each analysis without a result
    given the reason from its step's record, and the architecture sections
    (for the HTML report's graphs); ``None``: no plan at all."""
    record: ExecutionRecord = trio.run(_run, store, _compiled(wf), {}, show, "step", True)
    steps = {s.step_id: s for s in record.steps}
    plan_step = steps.get("plan")
    if plan_step is None or plan_step.status != SUCCEEDED or plan_step.output is None:
        _print_summary(record)
        return None
    plan: dict[str, Any] = plan_step.output
    for analysis in plan["analyses"]:  # why a step gave no result: its record says
        if analysis["status"] != "ok":
            step = steps.get(analysis["step"])
            if step is not None and step.error is not None:
                analysis["error"] = step.error.message
            elif step is not None:
                analysis["error"] = f"the step was {step.status}"
    sections = [
        steps[a["step"]].output
        for a in plan["analyses"]
        if a["analysis"] == "architecture" and a["status"] == "ok"
    ]
    return plan, sections


def _vibe_fixes(
    args: argparse.Namespace,
    plan: dict[str, Any],
    found: dict[str, Any],
    only: list[str],
    store: str,
    show: bool,
) -> bool:
    """``--fix``: the safe fixes, then with ``--fix=moves`` the moves, each
    validated on its branch; the analyses again when anything was kept.
    What happened goes into ``plan["fix"]``; False when something was
    rolled back."""
    from corral.plugins.builtin.vibe.fix import fix_workflow
    from corral.plugins.builtin.vibe.handlers import vibe_workflow

    path = Path(args.path)
    fixing = fix_workflow(
        str(path.resolve()), plan, test_command=args.test_command, allow_dirty=args.allow_dirty
    )
    if fixing is None:
        plan["fix"] = {"applied": False, "note": "nothing ruff can fix safely"}
    else:
        plan["fix"] = _vibe_fix(fixing, store, show, path)
    ok = fixing is None or bool(plan["fix"]["applied"])
    if ok and args.fix == "moves":
        plan["fix"]["moves"] = _vibe_moves(args, plan, store, show)
        ok = all(m["applied"] for m in plan["fix"]["moves"])
    kept = plan["fix"]["applied"] or any(m["applied"] for m in plan["fix"].get("moves", []))
    if kept:  # the analyses again (the unchanged subprojects from the cache)
        wf = vibe_workflow(
            found, only=only or None, test_command=args.test_command, cache=not args.no_cache
        )
        again = _vibe_plan(wf, store, show)
        if again is not None:
            plan["fix"]["after"] = {k: again[0][k] for k in ("score", "summary", "analyses")}
    return ok


def _vibe_moves(
    args: argparse.Namespace, plan: dict[str, Any], store: str, show: bool
) -> list[dict[str, Any]]:
    """``--fix=moves``: in each subproject whose architecture was analysed,
    the moves that break package cycles and resolve layer violations
    (``corral analyze --suggest-moves``), applied by the restructure
    workflow (validated, or rolled back)."""
    from corral.plugins.builtin.restructure.architecture import analysis
    from corral.plugins.builtin.restructure.suggest import suggest_moves

    root = Path(args.path).resolve()
    done: list[dict[str, Any]] = []
    for a in plan["analyses"]:
        if a["analysis"] != "architecture" or a["status"] != "ok":
            continue
        folder = root / a["subproject"]
        now = analysis(folder)
        moves = suggest_moves(now, now.kinds)
        if not moves:
            continue
        entry: dict[str, Any] = {"subproject": a["subproject"], "moves": [str(m) for m in moves]}
        result = _restructure(
            str(folder),
            moves,
            apply=True,
            test_command=args.test_command,
            keep_shims=False,
            allow_dirty=args.allow_dirty,
            store=store,
            show=show,
        )
        if result is None:
            entry.update(applied=False, rolled_back="the restructure workflow failed")
        else:
            applied = result[1]
            entry.update(
                applied=applied.ok,
                branch=applied.branch,
                commit=applied.commit,
                rolled_back=applied.rolled_back,
                checks=applied.validation,
                execution=result[2].id,
            )
        done.append(entry)
    return done


def _vibe_fix(wf: Any, store: str, show: bool, path: Path) -> dict[str, Any]:
    """Run the ``vibe.fix`` workflow: what it did, or why it was rolled back."""
    from corral.plugins.builtin.restructure.apply import failures, recover

    try:
        record: ExecutionRecord = trio.run(_run, store, _compiled(wf), {}, show, "step", True)
    except BaseException:
        if recover(path):  # Ctrl-C: the tree as it was
            print("corral vibe: stopped: the fixes were rolled back", file=sys.stderr)
        raise
    steps = {s.step_id: s for s in record.steps}
    error = record.error
    out: dict[str, Any] = {"execution": record.id, "applied": record.status == SUCCEEDED}
    checked = steps["validate"].output if "validate" in steps else None
    if checked is not None:
        out.update(
            checks=checked["checks"],
            diff=checked["diff"],
            fixable_after=checked["after"]["fixable"],
        )
    if record.status == SUCCEEDED:
        out.update(
            branch=record.result["finish"]["branch"], commit=record.result["finish"]["commit"]
        )
        written = steps["fix_write"].output
        out["files_changed"] = written["files_changed"] if written else None
        return out
    recover(path, owner=record.id)  # (this run's journal only)
    if error is not None and error.type in ("RestructureError", "UsageError"):
        raise UsageError(f"--fix: {error.message}")  # refused: nothing was written
    if error is not None and error.type == "RestructureRolledBack" and checked is not None:
        out["rolled_back"] = failures(checked["checks"])
    else:
        out["rolled_back"] = f"{error.type}: {error.message}" if error else record.status
    return out


def _cmd_serve(args: argparse.Namespace) -> int:
    try:
        import hypercorn  # noqa: F401
        import litestar  # noqa: F401
    except ImportError:
        raise UsageError(
            "corral serve needs its extra: pip install 'corral[serve]' (Litestar, Hypercorn)"
        ) from None
    from corral.server.auth import check_bind, load_tokens
    from corral.server.serve import serve

    port = _int_arg("--port", args.port)
    if not 0 <= port <= 65535:
        raise UsageError(f"--port {port}: expected 0 to 65535")
    grace = parse_duration(args.grace, "--grace")
    tokens = load_tokens(args.token_file)
    check_bind(args.host, tokens)
    store = open_store(args.store or default_store_url())
    if not args.run_here and isinstance(store, corral.storage.MemoryStore):
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
                ready=ready,
                say=lambda message: print(message, file=sys.stderr),
            )

    trio.run(main)
    return EXIT_OK


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
    if isinstance(store, corral.storage.MemoryStore):
        raise UsageError(
            "corral submit queues work in a shared store for `corral worker`; "
            "memory:// is gone with this process (use `corral run`, or --store URL)"
        )

    async def submit() -> ExecutionRecord | str:
        async with corral.open_engine(store, run_here=False) as client:
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
    if isinstance(done, str):
        print(done)
        return EXIT_OK
    if args.json:
        print(msgspec.json.format(msgspec.json.encode(done), indent=2).decode())
    else:
        _print_summary(done)
    return EXIT_OK if done.status == SUCCEEDED else EXIT_FAILED


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
    if isinstance(done, str):
        print(done)
        return EXIT_OK
    if args.json:
        print(msgspec.json.format(msgspec.json.encode(done), indent=2).decode())
    else:
        _print_summary(done)
    return EXIT_OK if done.status == SUCCEEDED else EXIT_FAILED


def _cmd_worker(args: argparse.Namespace) -> int:
    from corral.worker import serve

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


def _int_arg(name: str, text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise UsageError(f"{name} {text!r}: expected a whole number") from None


async def _wait(handle: corral.ExecutionHandle) -> ExecutionRecord:
    return await handle.wait()


async def _run(
    store: str | Store,
    plan: Plan,
    inputs: dict[str, Any],
    show: bool,
    durability: str = "step",
    to_stderr: bool = False,
    freeze_gc: bool = True,
    end: Callable[[corral.ExecutionHandle], Awaitable[T]] = _wait,  # type: ignore[assignment]
    say_orphans: bool = False,
    lease: float = 30.0,
) -> T:
    """Run one execution to its end; ``end`` says what to return of it
    (its stored record, by default). A one-shot command runs its own
    execution only: the engine adopts no orphans of the store (with
    ``say_orphans``, it says on stderr that there are some, and how to
    resume them)."""
    async with corral.open_engine(
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


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """``gc.disable()`` for the block, as it was after (reference counting
    still frees everything that is not in a cycle)."""
    import gc

    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


async def _result_or_record(handle: corral.ExecutionHandle) -> Any:
    """The result of a succeeded execution, taken as the engine hands it
    over (reading a large result back from the store costs more than the
    rest of a small run); the stored record of any other."""
    try:
        return await handle.result()
    except (corral.WorkflowFailed, corral.WorkflowCancelled):
        return await handle.wait()


async def _say_orphans(engine: corral.Engine) -> None:
    try:
        orphans = await engine.orphans()
    except corral.CorralError:  # a notice: never worth failing the run
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


_STATUS_STYLE = {
    PENDING: "dim",
    RUNNING: "cyan",
    SUCCEEDED: "green",
    CACHED: "green",
    FAILED: "red",
    TIMED_OUT: "red",
    CANCELLED: "yellow",
    SKIPPED: "dim",
}


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

    async def follow(self, events: corral.Subscription) -> None:
        async for event in events:
            self.apply(event)

    def stop(self) -> None:
        self.live.refresh()
        self.live.stop()


# ---------------------------------------------------------------- store commands

_STATUSES = EXECUTION_STATUSES
_FINISHED = tuple(s for s in EXECUTION_STATUSES if s in TERMINAL_EXECUTION)
_STATUS_HELP = ", ".join(_STATUSES)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")


def parse_duration(text: str, option: str = "--older-than", *, unit: bool = False) -> float:
    """``90s``, ``30m``, ``12h``, ``7d``, ``2w`` -> seconds; a bare number is
    seconds, unless ``unit`` (where a slip would delete data: ``prune``)."""
    m = _DURATION.match(text)
    if m is None:
        raise UsageError(f"{option} {text!r}: expected a duration such as 90s, 30m, 12h, 7d or 2w")
    if unit and not m.group(2):
        n = m.group(1)
        raise UsageError(
            f"{option} {text!r}: give a unit ({n}s, {n}m, {n}h, {n}d or {n}w); a bare number "
            "is refused here"
        )
    seconds = float(m.group(1)) * _UNITS[m.group(2) or "s"]
    if not seconds < 1000 * 365 * 86400:  # also refuses inf and nan
        raise UsageError(f"{option} {text!r}: a duration of at most 1000 years, please")
    return seconds


def _status(text: str | None, allowed: Sequence[str]) -> str | None:
    if text is not None and text not in allowed:
        raise UsageError(f"--status {text!r}: expected one of {', '.join(allowed)}")
    return text


def _progress_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--progress",
        choices=["auto", "always", "never"],
        default="auto",
        help="live progress on stderr (default: when stderr is a terminal)",
    )


def _grace_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--grace",
        default="30s",
        metavar="DURATION",
        help="on SIGTERM, how long running work may take to finish before it is released "
        "(default: 30s)",
    )


def _lease_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--lease",
        default="30s",
        metavar="DURATION",
        help="if this process dies, how soon its execution may be resumed elsewhere "
        "(`corral resume`); renewed every third of it (default: 30s)",
    )


def _lease(args: argparse.Namespace) -> float:
    lease = parse_duration(args.lease, "--lease")
    if lease < 0.1:
        raise UsageError(f"--lease {args.lease!r}: at least 0.1 s")
    return lease


def _selection_options(parser: argparse.ArgumentParser, status: str) -> None:
    """``--workflow``, ``--status``, ``--since``: the executions a bulk
    command acts on (instead of one id)."""
    parser.add_argument("--workflow", help="every execution of this workflow (by name)")
    parser.add_argument(
        "--status",
        action="extend",
        nargs="+",
        default=[],
        metavar="STATUS",
        help=f"with this status (default: {status}); repeatable, or comma-separated",
    )
    parser.add_argument(
        "--since",
        metavar="DURATION",
        help="created in the last DURATION (e.g. 30m, 1h, 7d)",
    )


def _guard_options(parser: argparse.ArgumentParser, why: str) -> None:
    parser.add_argument(
        "--dry-run", action="store_true", help="say what would be done, and change nothing"
    )
    parser.add_argument(
        "--yes", "-y", action="store_true", help=f"do not ask for confirmation ({why})"
    )


def _confirm(question: str, yes: bool) -> bool | None:
    """``True`` with ``--yes``; on a terminal, the answer to ``question``;
    elsewhere (a script) ``None``: the caller decides."""
    if yes:
        return True
    if not sys.stdin.isatty():
        return None
    try:
        answer = input(f"{question} [y/N] ")
    except EOFError:
        return False
    return answer.strip().lower() in ("y", "yes")


def _positive_int(option: str, text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= 1_000_000_000:
        raise UsageError(f"{option} {text!r}: expected a positive integer up to 1,000,000,000")
    return value


def _with_store(
    url: str | Store | None,
    work: Callable[[Store], Awaitable[T]],
    *,
    create: bool = False,
    readonly: bool = False,
) -> T:
    """Open the store, run ``work(store)`` and close it, all in one ``trio.run``.

    No writer task is started: a store without its writer runs each operation
    as its own transaction.
    """
    # Read and maintenance commands never migrate: an old schema is reported
    # ("run `corral migrate`") instead of being changed behind the user's back.
    store = open_store(url or default_store_url(), create=create, migrate=create, readonly=readonly)

    async def main() -> T:
        async with lifetime(store):
            return await opened()

    async def opened() -> T:
        try:
            await store.open()
        except StoreError as exc:
            path = getattr(store, "path", None)
            if not create and isinstance(path, Path) and not path.exists():
                raise StoreError(
                    f"{exc} (pass --store URL or set $CORRAL_STORE; `corral run` and "
                    "`corral migrate` create a database)"
                ) from None
            raise
        try:
            return await work(store)
        finally:
            with trio.CancelScope(shield=True):
                await store.close()

    return trio.run(main)


def _when(stamp: float | None) -> str:
    if stamp is None:
        return "-"
    return datetime.datetime.fromtimestamp(stamp).strftime("%Y-%m-%d %H:%M:%S")


def _size(n: float) -> str:
    """Bytes for people: 512 B, 1.5 KB, 12.3 MB, 2.0 GB."""
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"  # (unreachable: TB ends the loop)


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


def _span(seconds: float) -> str:
    """A short human duration: 7ms, 2.42s, 12.3s, 4m05s, 2h03m, 3d04h."""
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 10:
        return f"{seconds:.2f}s"
    if seconds < 60:
        return f"{seconds:.1f}s"
    whole = int(seconds)
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    if whole < 86400:
        return f"{whole // 3600}h{whole % 3600 // 60:02d}m"
    return f"{whole // 86400}d{whole % 86400 // 3600:02d}h"


def _took(started: float | None, finished: float | None, *, live: bool) -> str:
    if started is None:
        return "-"
    if finished is None:
        return f"{_span(max(0.0, time.time() - started))} so far" if live else "-"
    return _span(max(0.0, finished - started))


def _styled(status: str) -> str:
    style = _STATUS_STYLE.get(status)
    return f"[{style}]{status}[/]" if style else status


def _console() -> Any:
    from rich.console import Console

    return Console(width=max(120, Console().width), highlight=False)


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


#: The shortest prefix of an execution id that `show`, `cancel` and `resume` take.
_MIN_PREFIX = 4


async def _execution_id(store: Store, text: str) -> str:
    """``text`` as an execution id: the id itself, or a unique prefix of one
    (at least :data:`_MIN_PREFIX` characters), as git takes commits."""
    try:
        await store.get_execution(text)
        return text
    except ExecutionNotFound:
        if len(text) < _MIN_PREFIX:
            raise
    found = await store.find_ids(text, limit=6)
    if not found:
        raise ExecutionNotFound(text)
    if len(found) > 1:
        more = ", ..." if len(found) > 5 else ""
        raise UsageError(
            f"{text!r} is the start of several execution ids ({', '.join(found[:5])}{more}); "
            "give more of it"
        )
    return found[0]


#: How many of its retries `corral show` lists by id.
_SHOWN_RETRIES = 5


def _cmd_show(args: argparse.Namespace) -> int:
    async def work(store: Store) -> tuple[ExecutionRecord, dict[str, str], list[str]]:
        record = await store.get_execution(await _execution_id(store, args.id))
        children: dict[str, str] = {}
        for step in record.steps:
            if step.handler is not None and step.handler.startswith("workflow:"):
                child = await store.find_child(record.id, step.step_id)
                if child is not None:
                    children[step.step_id] = child.id
        retries = await store.list_executions(retry_of=record.id, limit=_SHOWN_RETRIES + 1)
        return record, children, [r.id for r in reversed(retries)]

    retries: list[str] = []
    if args.api:
        record = _record(_via_api(args.api, lambda c: c.get(args.id)))
        children: dict[str, str] = {}
    else:
        record, children, retries = _with_store(args.store, work, readonly=True)
    if args.json:
        print(_dump(record))
        return EXIT_OK
    from rich.markup import escape
    from rich.table import Table

    console = _console()
    r = record
    live = r.status in UNFINISHED
    lines = [
        f"execution  {r.id}",
        f"workflow   {escape(r.workflow)} (version {escape(str(r.version))})",
        f"status     {_styled(r.status)}"
        + (" (cancellation requested)" if r.cancel_requested and live else ""),
        f"created    {_when(r.created_at)}",
        f"started    {_when(r.started_at)}",
        f"finished   {_when(r.finished_at)}",
        f"duration   {_took(r.started_at, r.finished_at, live=r.status == 'running')}",
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
    for line in lines:
        console.print(line)
    if r.steps:
        table = Table(title="steps", title_justify="left")
        table.add_column("step", no_wrap=True)
        for col in ("handler", "status", "attempts", "duration", "note"):
            table.add_column(col)
        for s in r.steps:
            note = ""
            if s.error is not None:
                note = f"{s.error.type}: {s.error.message}"
            if s.step_id in children:
                note = f"child {children[s.step_id]}" + (f"; {note}" if note else "")
            if s.reused_from:
                note = f"reused from {s.reused_from}" + (f"; {note}" if note else "")
            table.add_row(
                escape(s.step_id),
                escape(s.handler or "-"),
                _styled(s.status),
                str(s.attempts),
                _took(s.started_at, s.finished_at, live=s.status == RUNNING),
                escape(note),
            )
        console.print(table)
        for s in r.steps:
            for warning in s.warnings:
                console.print(f"warning: step {escape(s.step_id)} {escape(warning)}")
        logged = sum(len(s.logs) for s in r.steps)
        if args.logs:
            for s in r.steps:
                for line in s.logs:
                    console.print(f"log {escape(s.step_id)}: {escape(line)}", highlight=False)
        elif logged:
            console.print(f"({logged} log line(s) kept: --logs shows them)")
    if (
        r.finished_at is not None
        and r.steps
        and all(s.status == PENDING and s.attempts == 0 for s in r.steps)
    ):
        console.print('(no step records were written: the engine ran with durability "none")')
    if r.status == SUCCEEDED:
        console.print("result:")
        print(_dump(r.result))
    elif r.error is not None:
        where = f" in step {r.error.step!r}" if r.error.step else ""
        console.print(f"error: {escape(r.error.type)}{escape(where)}: {escape(r.error.message)}")
    return EXIT_OK


def _cmd_resume(args: argparse.Namespace) -> int:
    if (args.id is None) == (not args.all):
        raise UsageError("give an execution id, or --all for every orphaned execution")
    store = open_store(args.store or default_store_url())

    async def main() -> list[ExecutionRecord]:
        async with corral.open_engine(store, adopt=False) as engine:
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

            async def one(handle: corral.ExecutionHandle) -> None:
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
        with trio.move_on_after(_CANCEL_WAIT):
            while after.status in UNFINISHED and after.owner is not None:
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
    engine: corral.Engine, execution_id: str, args: argparse.Namespace
) -> corral.RetryPreview:
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


def _say_retry(preview: corral.RetryPreview, file: Any) -> None:
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
        async with corral.open_engine(store, adopt=False, lease=lease) as engine:
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

    async def find(engine: corral.Engine) -> list[ExecutionRecord]:
        return await engine.select(status=statuses, workflow=args.workflow, since=since)

    async def plan_all() -> tuple[list[corral.RetryPreview], list[str]]:
        async with corral.open_engine(open_store(url), adopt=False) as engine:
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
        async with corral.open_engine(open_store(url), adopt=False, lease=_lease(args)) as engine:
            handles = [await engine.submit_retry(p) for p in previews]

            async def one(handle: corral.ExecutionHandle) -> None:
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
    target: int | None = None
    if args.to is not None:
        try:
            target = int(args.to)
        except ValueError:
            target = -1
        if not 0 <= target <= latest:
            raise UsageError(f"--to {args.to!r}: schema versions go from 0 to {latest}")
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
            verb = "roll back" if goal < version else "apply"
            steps = range(version, goal, -1) if goal < version else range(version + 1, goal + 1)
            names = [f"{'-' if goal < version else '+'}{n}" for n in steps]
            print(
                f"at schema version {version}; would {verb} "
                f"{', '.join(names) if names else 'nothing'} to reach {goal} (dry run)"
            )
            return EXIT_OK
        if goal < version:
            question = f"Roll the schema back from version {version} to {goal}? Tables " + (
                "and every execution in them are dropped." if goal == 0 else "may be dropped."
            )
            answer = _confirm(question, args.yes)
            if answer is None:
                raise UsageError(
                    f"--to {goal} rolls the schema back from {version} and drops data; "
                    "give --yes to do it without a terminal to confirm on"
                )
            if not answer:
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


_STORE_COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
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
