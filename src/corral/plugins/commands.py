"""Commands a plugin adds to the ``corral`` command line (hook spec version 2).

A command is a class::

    class Hello(Command):
        name = "hello"
        help = "say hello"

        def configure(self, parser, terminal):
            parser.add_argument("who")

        def run(self, args, terminal):
            print(f"hello {args.who}")
            return EXIT_OK

and a plugin exposes commands with one hook, as it exposes handlers::

    @hookimpl
    def corral_commands():
        return [Hello]

``corral --help`` lists it; ``corral hello world`` runs it. The built-in
``analyze``, ``restructure`` and ``vibe`` come the same way from their
plugins. A command talks to the command line only through the
:class:`Terminal` it is given (the shared ``--store`` / ``--progress``
options, running a workflow with live progress, writing a report), so a
plugin never imports ``corral.cli``. A :class:`~corral.errors.CorralError`
raised by ``run`` is printed as one line (exit 2; ``WorkflowFailed``: exit
1), never as a traceback.
"""

from __future__ import annotations

import abc
import argparse
import re
from typing import Any, ClassVar, Protocol

__all__ = ["EXIT_FAILED", "EXIT_OK", "EXIT_USAGE", "NAME", "Command", "Terminal"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
"""Exit codes: done; the work failed (or a ``--fail-on`` held); bad usage."""

NAME = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
"""What a command's name looks like: ``analyze``, ``my-report``."""


class Terminal(Protocol):
    """What the command line gives a plugin's command."""

    def add_store_option(self, parser: argparse.ArgumentParser) -> None:
        """``--store URL`` (default: ``$CORRAL_STORE`` or the per-user SQLite file)."""

    def add_progress_option(self, parser: argparse.ArgumentParser) -> None:
        """``--progress auto|always|never``: live progress on stderr."""

    def run_workflow(
        self,
        workflow: Any,
        args: argparse.Namespace,
        *,
        durability: str = "step",
        result: bool = False,
        pause_gc: bool = False,
    ) -> Any:
        """Compile ``workflow`` (a :class:`corral.Workflow`) against every
        registered handler and run it to its end on ``args.store`` with live
        progress as ``args.progress`` asks (both options added by this
        terminal). Returns the execution's record; with ``result``, the
        result of a succeeded execution and the record of any other.
        ``pause_gc``: a workflow of a few long steps over a large acyclic
        data set, run with the cycle collector paused (it would only walk
        the data again and again)."""

    def print_summary(self, record: Any) -> None:
        """The execution's outcome as ``corral run`` prints it (a failed one
        on stderr, with its steps' errors)."""

    def output_format(self, args: argparse.Namespace) -> str:
        """``args.format`` when given, else from ``args.out``'s suffix
        (``.json``, ``.md``, ``.html`` ...), else ``text`` on a terminal and
        ``json`` otherwise."""

    def check_out(self, out: str | None) -> None:
        """A ``--out`` whose folder is missing or not writable is a usage
        error before any work, not after it."""

    def write(self, text: str, out: str | None, note: str = "") -> None:
        """``text`` to stdout, or into ``out`` (then ``note`` on stderr:
        ``report written to OUT (note)``)."""


class Command(abc.ABC):
    """Base class of commands contributed by plugins.

    Class attributes: ``name`` (the subcommand, lowercase, words joined by
    ``-``), ``help`` (one line in ``corral --help``) and optionally
    ``description`` (the command's own ``--help``).
    """

    name: ClassVar[str] = ""
    help: ClassVar[str] = ""
    description: ClassVar[str | None] = None

    def configure(  # noqa: B027 (optional: a command may take no arguments)
        self, parser: argparse.ArgumentParser, terminal: Terminal
    ) -> None:
        """Add the command's arguments to its parser (none by default)."""

    @abc.abstractmethod
    def run(self, args: argparse.Namespace, terminal: Terminal) -> int | None:
        """Do the work; return the exit code (``None`` counts as ``EXIT_OK``).
        A command class without ``run`` is refused when its plugin loads."""
