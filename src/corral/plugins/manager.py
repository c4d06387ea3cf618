"""Builds the plugin manager and the handler registry.

Discovery order: built-in plugins, then installed distributions' entry points
in the group ``corral``, then plugins passed explicitly to ``open_engine``.
Every plugin goes through the same hook, ``corral_handlers``; two handlers with
one name are an error naming both plugins, never a silent override.
"""

from __future__ import annotations

import difflib
import functools
import importlib
import importlib.metadata
import inspect
import logging
import os
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, get_args

import msgspec
import msgspec.inspect
import pluggy

from corral.core.errors import PluginError
from corral.plugins import Handler, HandlerKind, hookspecs
from corral.plugins.commands import NAME, Command
from corral.plugins.hookspecs import PROJECT

log = logging.getLogger("corral.plugins")

_KINDS: tuple[str, ...] = get_args(HandlerKind)

#: The built-in plugins, registered before all others: label -> module. They
#: are named, not imported, here, and loaded as entry points are: the plugin
#: API and its manager sit below the plugins built on them.
BUILTIN_PLUGINS: dict[str, str] = {
    "core": "corral.plugins.builtin.core",
    "architecture": "corral.plugins.builtin.architecture.plugin",
    "restructure": "corral.plugins.builtin.restructure.plugin",
    "vibe": "corral.plugins.builtin.vibe.plugin",
}
_said: set[str] = set()  # broken plugins already warned about


@dataclass(frozen=True, slots=True)
class HandlerInfo:
    """A registered handler and where it came from."""

    name: str
    cls: type[Handler]
    plugin: str
    version: str
    kind: str
    description: str
    internal: bool = False


@dataclass(frozen=True, slots=True)
class BrokenPlugin:
    """An installed plugin left out: it failed to load, to register, or
    gave invalid handlers (``handlers``: the names it offered, if known)."""

    plugin: str
    reason: str
    handlers: tuple[str, ...] = ()


class HandlerRegistry(Mapping[str, type[Handler]]):
    """Handler name -> handler class, plus the plugin manager that produced it
    and the installed plugins that were left out as broken."""

    def __init__(
        self,
        pm: pluggy.PluginManager,
        infos: dict[str, HandlerInfo],
        broken: Sequence[BrokenPlugin] = (),
        dists: Mapping[int, str] | None = None,
    ) -> None:
        self.pm = pm
        self.broken = list(broken)
        self.dists = dict(dists or {})  # id(plugin) -> "distribution version"
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

    def broken_provider(self, name: str) -> BrokenPlugin | None:
        """The broken plugin that offered handler ``name``, if one did."""
        return next((b for b in self.broken if name in b.handlers), None)

    def suggest(self, name: str) -> list[str]:
        """Registered names close to ``name`` (for 'did you mean' messages)."""
        return difflib.get_close_matches(name, list(self._classes), n=3, cutoff=0.5)


def _plugin_label(pm: pluggy.PluginManager, plugin: object, dists: Mapping[int, str]) -> str:
    name = pm.get_name(plugin) or getattr(plugin, "__name__", None) or type(plugin).__name__
    dist = dists.get(id(plugin))
    return f"{name} ({dist})" if dist else str(name)


def _load_entry_points(pm: pluggy.PluginManager, broken: list[BrokenPlugin]) -> dict[int, str]:
    """Register every installed plugin of the group ``corral``.

    Like ``pm.load_setuptools_entrypoints`` (first distribution of a given
    entry-point name wins; blocked names are skipped), but a plugin that fails
    to import or to register is left out and added to ``broken``, naming its
    entry point and distribution: one broken package must not stop every
    command (only the workflows that use its handlers fail, naming it).
    Returns ``id(plugin) -> "distribution version"`` for labels.
    """
    dists: dict[int, str] = {}
    for ep, where in _corral_entry_points():
        if pm.get_plugin(ep.name) or pm.is_blocked(ep.name):
            continue
        try:
            plugin = ep.load()
            pm.register(plugin, name=ep.name)
        except Exception as exc:  # (pluggy.PluginValidationError too)
            if pm.has_plugin(ep.name):
                pm.unregister(name=ep.name)
            what = (
                "an invalid hook implementation"
                if isinstance(exc, pluggy.PluginValidationError)
                else f"{type(exc).__name__} on loading"
            )
            broken.append(BrokenPlugin(f"{ep.name} ({where})", f"{what}: {exc}"))
            continue
        dists[id(plugin)] = where
    return dists


def _corral_entry_points() -> list[tuple[importlib.metadata.EntryPoint, str]]:
    """The entry points of the group ``corral`` and their distributions'
    ``"name version"``, in discovery order. Reading every installed
    distribution's metadata costs milliseconds, and a command opens several
    registries (its parser, its compiler, its engine): the answer is kept
    while no folder on ``sys.path`` changed (an install changes its folder)."""
    key = tuple((entry, _mtime(entry)) for entry in sys.path)
    cached = _found.get(key)
    if cached is None:
        cached = [
            (ep, f"{dist.metadata['name']} {dist.version}")
            for dist in importlib.metadata.distributions()
            for ep in dist.entry_points
            if ep.group == PROJECT
        ]
        _found.clear()
        _found[key] = cached
    return cached


_found: dict[tuple[tuple[str, int], ...], list[tuple[importlib.metadata.EntryPoint, str]]] = {}


def _mtime(folder: str) -> int:
    try:
        return os.stat(folder or ".").st_mtime_ns
    except OSError:
        return -1


@functools.lru_cache(maxsize=4096)
def _params_problem(params: Any) -> str | None:
    """Why msgspec cannot validate a handler's ``Params`` (``None``: it can),
    worked out once per type: every registry checks every handler."""
    try:
        msgspec.inspect.type_info(params)
    except Exception as exc:
        return str(exc)
    return None


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
    if not isinstance(cls.kind, str) or cls.kind not in _KINDS:
        raise PluginError(
            f"plugin {plugin}: handler {cls.name!r} has kind {cls.kind!r}; "
            f"expected one of {', '.join(_KINDS)}"
        )
    if cls.run is Handler.run:
        raise PluginError(f"plugin {plugin}: handler {cls.name!r} does not define run()")
    is_async = inspect.iscoroutinefunction(cls.run)
    if cls.kind == "async" and not is_async:
        raise PluginError(
            f"plugin {plugin}: handler {cls.name!r} has kind 'async' but run() is not "
            "async def; declare kind = 'blocking' to run a plain def in a thread"
        )
    if cls.kind != "async" and is_async:
        raise PluginError(
            f"plugin {plugin}: handler {cls.name!r} has kind {cls.kind!r} but run() is "
            "async def; blocking and cpu handlers define a plain def run(ctx, params)"
        )
    try:
        problem = _params_problem(cls.Params)
    except TypeError:  # an unhashable Params: checked each time
        problem = _params_problem.__wrapped__(cls.Params)
    if problem is not None:
        raise PluginError(
            f"plugin {plugin}: handler {cls.name!r} has Params {cls.Params!r}, which is not "
            f"a type msgspec can validate ({problem})"
        )
    return cls


def _own_doc(cls: type) -> str:
    """First line of a class's own docstring (not one inherited from Handler)."""
    doc = cls.__dict__.get("__doc__")
    return inspect.cleandoc(doc).split("\n")[0] if isinstance(doc, str) and doc.strip() else ""


def _explicit_name(pm: pluggy.PluginManager, plugin: object) -> str:
    """A readable, unique registration name for a plugin passed to ``open_engine``.

    pluggy names an object without ``__name__`` by its ``id()``, which tells a
    reader nothing in an error message; use its class's dotted name instead.
    """
    base = getattr(plugin, "__name__", None)
    if not isinstance(base, str) or not base:
        cls = type(plugin)
        base = f"{cls.__module__}.{cls.__qualname__}"
    name, n = base, 1
    while pm.has_plugin(name):
        n += 1
        name = f"{base}#{n}"
    return name


def build_registry(
    plugins: Sequence[object] = (),
    *,
    entry_points: bool = True,
    builtins: bool = True,
) -> HandlerRegistry:
    """Create the plugin manager and collect every handler it exposes."""
    pm = pluggy.PluginManager(PROJECT)
    pm.add_hookspecs(hookspecs)
    dists: dict[int, str] = {}
    broken: list[BrokenPlugin] = []
    if os.environ.get("CORRAL_NO_PLUGINS", "").strip().lower() in ("1", "true", "yes"):
        entry_points = False  # (the CLI's --no-plugins sets it, for its engines too)
    try:
        if builtins:
            for label, module in BUILTIN_PLUGINS.items():  # builtin:core, builtin:vibe, ...
                pm.register(importlib.import_module(module), name=f"builtin:{label}")
        if entry_points:
            dists = _load_entry_points(pm, broken)
        for plugin in plugins:
            if pm.is_registered(plugin):
                continue
            pm.register(plugin, name=_explicit_name(pm, plugin))
        # A hookimpl whose name matches no hook (a typo such as corral_handler)
        # would otherwise be silently ignored. An installed plugin with one is
        # left out as broken; one passed explicitly is an error.
        _check_pending(pm, dists, broken)
    except pluggy.PluginValidationError as exc:
        raise PluginError(f"invalid plugin {exc.plugin!r}: {exc}") from exc
    except PluginError:
        raise
    except Exception as exc:  # a broken entry point must not be a traceback
        raise PluginError(f"loading plugins failed: {type(exc).__name__}: {exc}") from exc

    infos: dict[str, HandlerInfo] = {}
    # Built-in and explicit plugins first: an installed plugin that clashes
    # with them is the one left out.
    impls = sorted(pm.hook.corral_handlers.get_hookimpls(), key=lambda i: id(i.plugin) in dists)
    for impl in impls:
        label = _plugin_label(pm, impl.plugin, dists)
        found, problem, offered = _handlers_of(impl, label, infos)
        if problem is not None:
            if id(impl.plugin) not in dists:
                raise PluginError(problem)
            broken.append(BrokenPlugin(label, problem, tuple(offered)))
            pm.unregister(impl.plugin)  # left out whole: its other hooks too
            continue
        infos.update(found)
    for b in broken:
        if b.plugin not in _said:  # once per process, however many engines it opens
            _said.add(b.plugin)
            log.warning(
                "plugin %s is broken and left out: %s (`corral plugins` lists it; "
                "CORRAL_NO_PLUGINS=1 or --no-plugins loads no installed plugin)",
                b.plugin,
                b.reason,
            )
    return HandlerRegistry(pm, infos, broken, dists)


def _check_pending(
    pm: pluggy.PluginManager, dists: Mapping[int, str], broken: list[BrokenPlugin]
) -> None:
    while True:
        try:
            pm.check_pending()
            return
        except pluggy.PluginValidationError as exc:
            if id(exc.plugin) not in dists:
                raise
            label = _plugin_label(pm, exc.plugin, dists)
            pm.unregister(exc.plugin)
            broken.append(BrokenPlugin(label, f"an unknown hook: {exc}"))


def _handlers_of(
    impl: Any, label: str, infos: Mapping[str, HandlerInfo]
) -> tuple[dict[str, HandlerInfo], str | None, list[str]]:
    """The handlers one plugin gives, checked: ``(handlers, problem, names
    offered)``; with a problem the plugin is left out whole."""
    try:
        returned = impl.function()
        classes = list(_flatten(returned, label))
    except PluginError as exc:
        return {}, str(exc), []
    except Exception as exc:
        return {}, f"plugin {label}: corral_handlers() raised {type(exc).__name__}: {exc}", []
    offered = [c.name for c in classes if isinstance(getattr(c, "name", None), str)]
    found: dict[str, HandlerInfo] = {}
    for cls in classes:
        try:
            checked = check_handler(cls, label)
        except PluginError as exc:
            return {}, str(exc), offered
        if checked.name in infos or checked.name in found:
            other = infos[checked.name].plugin if checked.name in infos else label
            problem = (
                f"handler name {checked.name!r} is provided by two plugins: {other} and {label}"
            )
            return {}, problem, offered
        found[checked.name] = HandlerInfo(
            name=checked.name,
            cls=checked,
            plugin=label,
            version=str(checked.version),
            kind=checked.kind,
            description=checked.description or _own_doc(checked),
            internal=bool(getattr(checked, "internal", False)),
        )
    return found, None, offered


def _flatten(
    returned: Any, label: str, hook: str = "corral_handlers", what: str = "handler"
) -> Iterable[Any]:
    if returned is None:
        return ()
    if isinstance(returned, (list, tuple)):
        return returned
    raise PluginError(f"plugin {label}: {hook}() must return a list of {what} classes")


@dataclass(frozen=True, slots=True)
class CommandInfo:
    """A command a plugin adds to the command line, and where it came from."""

    name: str
    cls: type[Command]
    plugin: str


def plugin_commands(
    registry: HandlerRegistry, reserved: Iterable[str] = ()
) -> tuple[dict[str, CommandInfo], list[BrokenPlugin]]:
    """The commands the registry's plugins add (``corral_commands``), by
    name, and the plugins whose commands were left out.

    A class that is not a :class:`~corral.plugins.commands.Command`, a bad
    name, a ``reserved`` name (corral's own commands) or a name two plugins
    give: an installed plugin's commands are left out whole (listed, and
    warned about once, like a broken handler plugin); a built-in or explicit
    plugin's are a :class:`PluginError`.
    """
    taken = set(reserved)
    found: dict[str, CommandInfo] = {}
    broken: list[BrokenPlugin] = []
    pm, dists = registry.pm, registry.dists
    impls = sorted(pm.hook.corral_commands.get_hookimpls(), key=lambda i: id(i.plugin) in dists)
    for impl in impls:
        label = _plugin_label(pm, impl.plugin, dists)
        try:
            mine = _commands_of(impl, label, taken, found)
        except PluginError as exc:
            if id(impl.plugin) not in dists:
                raise
            broken.append(BrokenPlugin(label, str(exc)))
            continue
        found.update(mine)
    for b in broken:
        if b.plugin not in _said:
            _said.add(b.plugin)
            log.warning("plugin %s: its commands are left out: %s", b.plugin, b.reason)
    return found, broken


def _commands_of(
    impl: Any, label: str, taken: set[str], found: Mapping[str, CommandInfo]
) -> dict[str, CommandInfo]:
    try:
        returned = impl.function()
    except Exception as exc:
        raise PluginError(
            f"plugin {label}: corral_commands() raised {type(exc).__name__}: {exc}"
        ) from None
    classes = list(_flatten(returned, label, "corral_commands", "command"))
    mine: dict[str, CommandInfo] = {}
    for cls in classes:
        if not (inspect.isclass(cls) and issubclass(cls, Command)):
            raise PluginError(
                f"plugin {label}: corral_commands() returned {cls!r}, which is not a "
                "corral.plugins.commands.Command subclass"
            )
        name = cls.name
        if not isinstance(name, str) or not NAME.match(name):
            raise PluginError(
                f"plugin {label}: command {cls.__qualname__} has name {name!r}; expected "
                "lowercase words joined by '-' (e.g. 'my-report')"
            )
        if name in taken:
            raise PluginError(f"plugin {label}: command {name!r} is one of corral's own commands")
        if name in found or name in mine:
            other = found[name].plugin if name in found else label
            raise PluginError(f"command {name!r} is provided by two plugins: {other} and {label}")
        if inspect.isabstract(cls):
            raise PluginError(f"plugin {label}: command {name!r} does not define run()")
        mine[name] = CommandInfo(name, cls, label)
    return mine
