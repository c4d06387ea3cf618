"""The built-in ``restructure`` plugin (``builtin:restructure``): the
steps of a restructuring (:mod:`.handlers`) and the ``corral restructure``
command (:mod:`.command`)."""

from __future__ import annotations

from typing import Any

from corral.plugins import Handler, hookimpl
from corral.plugins.builtin.restructure.handlers import (
    Finish,
    PlanStep,
    Snapshot,
    Suggest,
    Validate,
    Write,
)


@hookimpl
def corral_handlers() -> list[type[Handler]]:
    return [PlanStep, Snapshot, Write, Validate, Finish, Suggest]


@hookimpl
def corral_commands() -> list[type[Any]]:
    from corral.plugins.builtin.restructure.command import Restructure

    return [Restructure]
