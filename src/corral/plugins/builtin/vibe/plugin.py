"""The built-in ``vibe`` plugin: its handlers, registered with corral
(``builtin:vibe``): the analyses and the join (:mod:`.handlers`), and the
steps of ``--fix`` (:mod:`.fix`)."""

from __future__ import annotations

from typing import Any

from corral.plugins import Handler, hookimpl
from corral.plugins.builtin.vibe.fix import FixPlan, FixValidate, FixWrite
from corral.plugins.builtin.vibe.handlers import (
    Complexity,
    DeadCode,
    Dependencies,
    Lint,
    Plan,
    Security,
    Tests,
)


@hookimpl
def corral_handlers() -> list[type[Handler]]:
    return [
        Lint,
        Complexity,
        Security,
        Dependencies,
        DeadCode,
        Tests,
        Plan,
        FixPlan,
        FixWrite,
        FixValidate,
    ]


@hookimpl
def corral_commands() -> list[type[Any]]:
    from corral.plugins.builtin.vibe.command import Vibe

    return [Vibe]
