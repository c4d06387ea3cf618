"""What corral's commands share: the usual options (``--store``,
``--progress``, ``--lease``, selections), parsing of inputs and durations,
one-line error messages, and the small formatters of tables and times."""

from __future__ import annotations

import argparse
import datetime
import functools
import json
import logging
import os
import re
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import msgspec
import trio

from corral.core.errors import (
    ExecutionNotFound,
    InputError,
    StoreError,
    UsageError,
)
from corral.core.model import (
    ExecutionRecord,
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
)
from corral.storage import Store, default_store_url, lifetime, open_store
from corral.workflow.loader import load_file
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
    from corral.server.client import Client

    async def main() -> T:
        async with Client(url, os.environ.get("CORRAL_API_TOKEN")) as client:
            return await work(client)

    return trio.run(main)


def _record(data: dict[str, Any]) -> ExecutionRecord:
    """An execution record as the API sends it."""
    data = {k: v for k, v in data.items() if k != "links"}
    return msgspec.convert(data, ExecutionRecord)


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


@functools.cache
def _registry() -> Any:
    """The installed handlers (a broken plugin is warned about on stderr,
    once): one registry per command, shared by its parser and its compiler."""
    from corral.plugins.manager import build_registry

    return build_registry()


def _load(path: str, registry: Any) -> Plan:
    from corral.core.model import Limits

    return load_file(Path(path), handlers=registry, pools=Limits().pool_sizes())


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


_FORMATS_BY_SUFFIX = {
    ".json": "json",
    ".md": "markdown",
    ".markdown": "markdown",
    ".html": "html",
    ".htm": "html",
    ".txt": "text",
}


def _compiled(wf: Any) -> Plan:
    """A built-in command's workflow (a ``Workflow``), compiled
    against every registered handler."""
    from corral.core.model import Limits
    from corral.workflow.compiler import compile_spec

    return compile_spec(wf.build(), handlers=_registry(), pools=Limits().pool_sizes())


def _int_arg(name: str, text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise UsageError(f"{name} {text!r}: expected a whole number") from None


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


_SIZE = re.compile(r"^\s*(\d+)\s*(|b|k|kb|kib|m|mb|mib)\s*$", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "b": 1, "k": 1024, "kb": 1024, "kib": 1024}
_SIZE_UNITS |= {"m": 1 << 20, "mb": 1 << 20, "mib": 1 << 20}


def parse_size(text: str, option: str) -> int:
    """``512``, ``64k``, ``1m`` (also ``KiB``, ``MiB``) -> bytes (binary units)."""
    m = _SIZE.match(text)
    if m is None:
        raise UsageError(f"{option} {text!r}: expected a size such as 65536, 64k or 1m")
    size = int(m.group(1)) * _SIZE_UNITS[m.group(2).lower()]
    if not 1 <= size <= 1 << 30:
        raise UsageError(f"{option} {text!r}: expected 1 byte to 1 GiB")
    return size


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
