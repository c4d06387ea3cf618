"""Adapters that let old-style handlers run as corral steps unchanged.

Older code has handler objects with a ``handle(command)`` or
``execute(command)`` method, sync or async, taking a dict and returning a dict.
:func:`legacy_handler` wraps such an object in a :class:`Handler` class: the
step's params are the command dict, the returned dict is the step's output.
A sync method runs in a worker thread (kind ``blocking``) so it cannot freeze
the event loop.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

from corral.core.errors import HandlerError, PluginError
from corral.plugins import Handler, StepContext

__all__ = ["legacy_handler"]


def _method_of(obj: object) -> tuple[str, Any]:
    for attr in ("handle", "execute"):
        method = getattr(obj, attr, None)
        if callable(method):
            return attr, method
    raise PluginError(
        f"{obj!r} is not a legacy handler: it has neither handle(command) nor execute(command)"
    )


def _check_result(name: str, result: Any) -> dict[str, Any]:
    if result is None:
        return {}
    if not isinstance(result, Mapping):
        raise HandlerError(
            f"legacy handler {name!r} returned {type(result).__name__}; expected a dict"
        )
    return dict(result)


def legacy_handler(
    obj: object, *, name: str, version: str = "0", description: str | None = None
) -> type[Handler]:
    """Wrap a legacy handler object as a :class:`Handler` class named ``name``.

    ``obj`` is an instance with ``handle(command)`` or ``execute(command)``
    (``handle`` wins if it has both), or such a class, which is instantiated
    once with no arguments. The params of a step become ``command`` (a fresh
    dict per call); the returned dict becomes the step's output (``None`` gives
    ``{}``); anything else fails the step with :class:`corral.HandlerError`.
    ``description`` (what ``corral plugins`` shows): by default the first
    line of the legacy class's docstring, else what the adapter wraps.
    """
    if not isinstance(name, str) or not name:
        raise PluginError(f"legacy_handler({obj!r}): name must be a non-empty string")
    if isinstance(obj, type):
        legacy_cls = obj
        try:
            obj = legacy_cls()
        except Exception as exc:
            raise PluginError(
                f"legacy_handler: cannot instantiate {legacy_cls.__qualname__}() for handler "
                f"{name!r}: {type(exc).__name__}: {exc}; pass an instance instead"
            ) from exc
    attr, method = _method_of(obj)
    handler_name = name

    if inspect.iscoroutinefunction(method):

        class AsyncLegacy(Handler):
            async def run(self, ctx: StepContext, params: Any) -> Any:
                return _check_result(handler_name, await method(dict(params)))

        cls: type[Handler] = AsyncLegacy
        kind = "async"
    else:

        class BlockingLegacy(Handler):
            def run(self, ctx: StepContext, params: Any) -> Any:
                return _check_result(handler_name, method(dict(params)))

        cls = BlockingLegacy
        kind = "blocking"

    cls.name = name
    cls.version = version
    cls.kind = kind  # type: ignore[assignment]
    cls.Params = dict[str, Any]
    doc = inspect.getdoc(type(obj))
    own = doc.split("\n")[0] if doc and type(obj).__doc__ else ""
    cls.description = description or own or f"legacy {type(obj).__name__}.{attr}() adapter"
    cls.__qualname__ = cls.__name__ = f"Legacy[{name}]"
    return cls
