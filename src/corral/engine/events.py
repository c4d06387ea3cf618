"""Lifecycle events: delivered to the ``corral_event`` hook and to subscribers.

Delivery never blocks the engine. Each subscription has a bounded buffer; when
it is full the event is dropped for that subscriber and counted
(``Subscription.dropped``, ``metrics().events_dropped``). Producers check
``EventBus.active`` first, so an engine nobody listens to builds no events.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Any

import trio

from corral.core.model import Event

__all__ = ["EventBus", "Subscription"]

log = logging.getLogger("corral.events")


class Subscription:
    """An async iterator of events with a bounded buffer.

    Use as ``with engine.subscribe() as events: async for event in events: ...``.
    Iteration ends when the subscription is closed or the engine closes.
    """

    def __init__(self, bus: EventBus, buffer: int) -> None:
        self._bus = bus
        self._send, self._receive = trio.open_memory_channel[Event](buffer)
        self.dropped = 0
        self.delivered = 0

    def _offer(self, event: Event) -> None:
        try:
            self._send.send_nowait(event)
            self.delivered += 1
        except trio.WouldBlock:
            self.dropped += 1
            self._bus.dropped += 1
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            pass

    def __aiter__(self) -> AsyncIterator[Event]:
        return self

    async def __anext__(self) -> Event:
        try:
            return await self._receive.receive()
        except (trio.EndOfChannel, trio.ClosedResourceError):
            raise StopAsyncIteration from None

    def close(self) -> None:
        """Stop receiving; buffered events can still be read, then iteration ends."""
        self._bus._remove(self)
        self._send.close()

    def __enter__(self) -> Subscription:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
        self._receive.close()


class EventBus:
    """Fans events out to ``corral_event`` hookimpls and to subscriptions.

    Each hookimpl is called on its own: one that raises is logged and the
    others still receive the event (a plain pluggy call would stop at the first
    exception). Hook wrappers, if any plugin declares one, get the ordinary
    pluggy call so they keep their semantics.
    """

    def __init__(self, hook: Any, buffer: int) -> None:
        self._hook = hook
        impls = list(hook.corral_event.get_hookimpls())
        self._has_hooks = bool(impls)
        wrapped = any(impl.hookwrapper or impl.wrapper for impl in impls)
        # pluggy calls the last registered first; keep that order.
        self._impls: list[Any] | None = None if wrapped else impls[::-1]
        self._subs: list[Subscription] = []
        self._buffer = buffer
        self.dropped = 0
        self.hook_errors = 0
        self.active = self._has_hooks

    def subscribe(self, buffer: int | None = None) -> Subscription:
        sub = Subscription(self, buffer if buffer is not None else self._buffer)
        self._subs.append(sub)
        self.active = True
        return sub

    def _remove(self, sub: Subscription) -> None:
        if sub in self._subs:
            self._subs.remove(sub)
        self.active = self._has_hooks or bool(self._subs)

    def emit(self, event: Event) -> None:
        if self._has_hooks:
            self._call_hooks(event)
        for sub in list(self._subs):
            sub._offer(event)

    def _call_hooks(self, event: Event) -> None:
        if self._impls is None:
            try:
                self._hook.corral_event(event=event)
            except Exception:
                self.hook_errors += 1
                log.exception("a corral_event hook raised; the event is otherwise delivered")
            return
        kwargs = {"event": event}
        for impl in self._impls:
            try:
                impl.function(*[kwargs[name] for name in impl.argnames])
            except Exception:
                self.hook_errors += 1
                log.exception("corral_event hook of plugin %r raised; ignored", impl.plugin_name)

    def close(self) -> None:
        for sub in list(self._subs):
            sub.close()
