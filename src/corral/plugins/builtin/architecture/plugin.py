"""The built-in ``architecture`` plugin (``builtin:architecture``): the
analysis handlers (:mod:`corral.plugins.builtin.architecture`) and the
``corral analyze`` command (:mod:`.command`)."""

from __future__ import annotations

from typing import Any

from corral.plugins import Handler, hookimpl
from corral.plugins.builtin.architecture import Facts, Graph, Report, Scan, Section


@hookimpl
def corral_handlers() -> list[type[Handler]]:
    return [Scan, Facts, Graph, Section, Report]


@hookimpl
def corral_commands() -> list[type[Any]]:
    from corral.plugins.builtin.architecture.command import Analyze

    return [Analyze]
