"""Built-in plugins: ordinary pluggy plugins, registered before all others."""

from __future__ import annotations

from types import ModuleType

from corral.plugins.builtin import architecture, core
from corral.plugins.builtin.restructure import handlers as restructure
from corral.plugins.builtin.vibe import plugin as vibe

BUILTIN_PLUGINS: tuple[ModuleType, ...] = (core, architecture, restructure, vibe)
