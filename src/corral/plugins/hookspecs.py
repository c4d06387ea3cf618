"""The hook specification: the stable contract between corral and its plugins.

Hooks are synchronous (pluggy cannot await). They return things the engine
awaits later, inside the workflow's nursery. Like pytest's hooks, a hook
evolves by gaining optional arguments; nothing is removed without a
deprecation warning first. Each hook says the version it appeared in.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from corral.core.model import Event

PROJECT = "corral"
HOOKSPEC_VERSION = 2
"""Bumped when a hook is added; plugins may check it (2: ``corral_commands``)."""

hookspec = pluggy.HookspecMarker(PROJECT)


# ---------------------------------------------------------------- discovery


@hookspec
def corral_handlers() -> list[type[Any]]:
    """Return the handler classes this plugin provides.

    Each class subclasses :class:`corral.plugins.Handler` (or is an object
    wrapped with :func:`corral.plugins.compat.legacy_handler`) and has a
    unique dotted ``name`` such as ``myplugin.resize``. Called once when an
    engine opens.

    *Since corral 0.1 (hook spec version 1).*
    """
    raise AssertionError("hook specifications are never called")


@hookspec
def corral_commands() -> list[type[Any]]:
    """Return the command classes this plugin adds to the ``corral`` command
    line.

    Each class subclasses :class:`corral.plugins.commands.Command` and has a
    unique ``name`` (``corral NAME ...``), which may not be one of corral's
    own commands. Called when the command line needs the plugins' commands
    (``corral --help``, or a command that is not corral's own).

    *Since corral 0.1 (hook spec version 2).*
    """
    raise AssertionError("hook specifications are never called")


# ---------------------------------------------------------------- lifecycle


@hookspec
def corral_event(event: Event) -> None:
    """Observe a lifecycle event (workflow submitted/started/finished, step
    started/retrying/finished/progress).

    Called synchronously in the engine's event loop: return quickly and never
    block. An exception raised here is logged and ignored; it never affects the
    workflow. For slow consumers use ``engine.subscribe()`` instead.

    *Since corral 0.1 (hook spec version 1).*
    """
    raise AssertionError("hook specifications are never called")
