"""The ``corral`` command line: a thin layer over the engine's public API.

Exit codes: 0 the workflow succeeded (or the command did its job), 1 the
workflow failed, timed out or was cancelled, 2 a usage, spec, input, plugin or
store error (a one-line message, never a traceback).

The package holds corral's own commands; plugins add theirs through the
``corral_commands`` hook (:mod:`corral.plugins.commands`), the built-in
``analyze``, ``restructure`` and ``vibe`` among them:

- :mod:`.app`: the parser, assembled from corral's commands and the
  plugins', and :func:`main` / :func:`run` (the ``corral`` entry point);
- :mod:`.definitions`: run, validate, submit, schema, convert, plugins;
- :mod:`.executions`: list, show, resume;
- :mod:`.control`: cancel, retry, pause, unpause;
- :mod:`.operate`: serve, worker, migrate, prune;
- :mod:`.running`: running one execution with live progress, and the
  :class:`~corral.plugins.commands.Terminal` plugins' commands are given;
- :mod:`.common`: options, parsing and formatting shared by the commands.

Commands that work on tracked executions take ``--store URL``; the default
is ``$CORRAL_STORE`` or the per-user SQLite file. Only ``run`` and
``migrate`` create a missing database file: the others say that there is
none.
"""

from corral.cli.app import main, run
from corral.cli.common import one_line, parse_duration
from corral.cli.running import progress_note

__all__ = ["main", "one_line", "parse_duration", "progress_note", "run"]
