"""Builds the plugin manager and the handler registry.

Discovery order: built-in plugins, then installed distributions' entry points
in the group ``corral``, then plugins passed explicitly to ``open_engine``.
Every plugin goes through the same hook, ``corral_handlers``; two handlers with
one name are an error naming both plugins, never a silent override.
"""

from __future__ import annotations

import difflib
import inspect
import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pluggy

from corral.errors import PluginError
from corral.plugins import Handler
from corral.plugins import hookspecs
from corral.plugins.hookspecs import PROJECT

log = logging.getLogger("corral.plugins")

_KINDS = ("async", "blocking", "cpu")


@dataclass(frozen=True, slots=True)
class HandlerInfo:
    """A registered handler and where it came from."""

    name: str
    cls: type[Handler]
    plugin: str
    version: str
    kind: str
    description: str


class HandlerRegistry(Mapping[str, type[Handler]]):
    """Handler name -> handler class, plus the plugin manager that produced it."""

    def __init__(self, pm: pluggy.PluginManager, infos: dict[str, HandlerInfo]) -> None:
        self.pm = pm
        self._infos = infos
        self._classes = {name: info.cls for name, info in infos.items()}

    def __getitem__(self, name: str) -> type[Handler]:
        return self._classes[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._classes)

    def __len__(self) -> int:
        return len(self._classes)

    def info(self, name: str) -> HandlerInfo:
        return self._infos[name]

    def infos(self) -> list[HandlerInfo]:
        return sorted(self._infos.values(), key=lambda i: i.name)

    def suggest(self, name: str) -> list[str]:
        """Registered names close to ``name`` (for 'did you mean' messages)."""
        return difflib.get_close_matches(name, list(self._classes), n=3, cutoff=0.5)


def _plugin_label(pm: pluggy.PluginManager, plugin: object) -> str:
    name = pm.get_name(plugin) or getattr(plugin, "__name__", None) or type(plugin).__name__
    for dist_plugin, dist in pm.list_plugin_distinfo():
        if dist_plugin is plugin:
            return f"{name} ({dist.project_name} {dist.version})"
    return str(name)


def check_handler(cls: Any, plugin: str) -> type[Handler]:
    """Validate one handler class returned by a plugin; raise ``PluginError``."""
    if not (inspect.isclass(cls) and issubclass(cls, Handler)):
        raise PluginError(
            f"plugin {plugin}: corral_handlers() returned {cls!r}, which is not a "
            "corral.plugins.Handler subclass (wrap old-style objects with "
            "corral.plugins.compat.legacy_handler)"
        )
    if not isinstance(cls.name, str) or not cls.name:
        raise PluginError(f"plugin {plugin}: handler {cls.__qualname__} has no name")
    if cls.kind not in _KINDS:
        raise PluginError(
            f"plugin {plugin}: handler {cls.name!r} has kind {cls.kind!r}; "
            f"expected one of {', '.join(_KINDS)}"
        )
    is_async = inspect.iscoroutinefunction(cls.run)
    if cls.kind == "async" and not is_async:
        raise PluginError(f"handler {cls.name!r} has kind 'async' but run() is not async def")
    if cls.kind != "async" and is_async:
        raise PluginError(
            f"handler {cls.name!r} has kind {cls.kind!r} but run() is async def; "
            "blocking and cpu handlers define a plain def run(ctx, params)"
        )
    if cls.run is Handler.run:
        raise PluginError(f"handler {cls.name!r} does not define run()")
    return cls


def build_registry(
    plugins: Sequence[object] = (),
    *,
    entry_points: bool = True,
    builtins: bool = True,
) -> HandlerRegistry:
    """Create the plugin manager and collect every handler it exposes."""
    pm = pluggy.PluginManager(PROJECT)
    pm.add_hookspecs(hookspecs)
    try:
        if builtins:
            from corral.plugins.builtin import BUILTIN_PLUGINS

            for module in BUILTIN_PLUGINS:
                pm.register(module, name=f"builtin:{module.__name__.rsplit('.', 1)[-1]}")
        if entry_points:
            pm.load_setuptools_entrypoints(PROJECT)
        for plugin in plugins:
            if pm.is_registered(plugin):
                continue
            pm.register(plugin)
    except pluggy.PluginValidationError as exc:
        raise PluginError(f"invalid plugin {exc.plugin!r}: {exc}") from exc
    except PluginError:
        raise
    except Exception as exc:  # a broken entry point must not be a traceback
        raise PluginError(f"loading plugins failed: {type(exc).__name__}: {exc}") from exc

    infos: dict[str, HandlerInfo] = {}
    for impl in pm.hook.corral_handlers.get_hookimpls():
        label = _plugin_label(pm, impl.plugin)
        try:
            returned = impl.function()
        except Exception as exc:
            raise PluginError(
                f"plugin {label}: corral_handlers() raised {type(exc).__name__}: {exc}"
            ) from exc
        for cls in _flatten(returned, label):
            checked = check_handler(cls, label)
            if checked.name in infos:
                other = infos[checked.name].plugin
                raise PluginError(
                    f"handler name {checked.name!r} is provided by two plugins: {other} and {label}"
                )
            infos[checked.name] = HandlerInfo(
                name=checked.name,
                cls=checked,
                plugin=label,
                version=str(checked.version),
                kind=checked.kind,
                description=checked.description or (inspect.getdoc(checked) or "").split("\n")[0],
            )
    return HandlerRegistry(pm, infos)


def _flatten(returned: Any, label: str) -> Iterable[Any]:
    if returned is None:
        return ()
    if isinstance(returned, (list, tuple)):
        return returned
    raise PluginError(f"plugin {label}: corral_handlers() must return a list of handler classes")
