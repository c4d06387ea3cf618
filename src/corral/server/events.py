"""Server-Sent Events of the engine's lifecycle events, with resume.

One task (:meth:`EventHub.run`) subscribes to the engine for the server's
lifetime, numbers every event (the SSE ``id``) and keeps the last
:data:`KEEP` of them; each client stream gets its own bounded channel. A
client that reconnects with ``Last-Event-ID`` gets every kept event after
that id first, then the live ones; when its id is older than the oldest
kept event, the stream starts with a ``gap`` event saying events were
missed (the events themselves are kept in memory, not in the store). A
client too slow to keep up loses events (counted, and told with a ``gap``
event) rather than slowing the engine down.

One execution's stream is also served from the store where memory cannot:
after a ``gap`` (an old id, or a restarted server) it gets a ``snapshot``
event, the execution as the store has it now (what ``GET
/v1/executions/{id}`` returns), and a stream opened on an execution that has
already finished (its ``workflow.finished`` no longer kept) gets the
``snapshot`` and ends, instead of waiting for an event that will not come.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import msgspec
import trio

__all__ = ["KEEP", "EventHub", "Snapshot"]

#: The execution as the store has it now: ``(finished, its view as JSON data)``.
Snapshot = Callable[[], Awaitable[tuple[bool, dict[str, Any]]]]

#: Events kept for clients that reconnect with ``Last-Event-ID``.
KEEP = 10_000
#: Events a client stream may fall behind before it loses some.
_CLIENT_BUFFER = 1_000


class _Client:
    def __init__(self, execution_id: str | None) -> None:
        self.execution_id = execution_id
        self.send, self.receive = trio.open_memory_channel[tuple[int, dict[str, Any]]](
            _CLIENT_BUFFER
        )
        self.lost = 0


class EventHub:
    """Numbered engine events for any number of SSE streams."""

    def __init__(self) -> None:
        # Ids go on growing across restarts (they start at the clock, in µs):
        # an id a client got from an earlier server is older than any of this
        # one's, and its resume starts with a gap, never skips new events.
        self._next = time.time_ns() // 1000
        self._kept: deque[tuple[int, dict[str, Any]]] = deque(maxlen=KEEP)
        self._clients: set[_Client] = set()

    async def run(self, engine: Any) -> None:
        """Take the engine's events until cancelled."""
        with engine.subscribe(buffer=_CLIENT_BUFFER * 10) as events:
            async for event in events:
                self.publish(msgspec.to_builtins(event))

    @property
    def last_id(self) -> int:
        """The id of the newest event (0: none yet): a page rendered now
        resumes its stream from here and misses nothing."""
        return self._next - 1

    def publish(self, event: dict[str, Any]) -> None:
        item = (self._next, event)
        self._next += 1
        self._kept.append(item)
        for client in list(self._clients):
            if client.execution_id is not None and event.get("execution_id") != client.execution_id:
                continue
            try:
                client.send.send_nowait(item)
            except trio.WouldBlock:
                client.lost += 1

    async def stream(
        self, execution_id: str | None, last_id: int | None, snapshot: Snapshot | None = None
    ) -> AsyncIterator[tuple[int | None, str, dict[str, Any]]]:
        """``(id, event name, data)`` for one client: the kept events after
        ``last_id`` (when given), then the live ones, each once, until the
        client goes. ``snapshot`` (one execution's stream) reads the
        execution from the store: after a gap, and to end the stream of one
        that finished before it was opened."""
        client = _Client(execution_id)
        self._clients.add(client)  # first: nothing published from now on is missed
        sent = 0
        try:
            gap = False
            finished = False
            if last_id is not None:
                oldest = self._kept[0][0] if self._kept else self._next
                if last_id + 1 < oldest or last_id >= self._next:  # (or not one of ours)
                    gap = True
                    yield None, "gap", {"missed_from": last_id + 1, "resumed_at": oldest}
                for number, event in list(self._kept):
                    if number > last_id and self._wanted(client, event):
                        sent = number
                        finished = finished or event.get("event") == "workflow.finished"
                        yield number, str(event.get("event")), event
            if snapshot is not None and not finished:
                # Read after the client was added: an end published from now
                # on reaches it live; one published before is in the record.
                done, view = await snapshot()
                if gap or done:
                    yield None, "snapshot", view
                if done:
                    return
            async with client.receive:
                async for number, event in client.receive:
                    if number <= sent:
                        continue  # (already sent from the kept events)
                    if client.lost:
                        yield None, "gap", {"lost": client.lost}
                        client.lost = 0
                    yield number, str(event.get("event")), event
        finally:
            self._clients.discard(client)

    @staticmethod
    def _wanted(client: _Client, event: dict[str, Any]) -> bool:
        return client.execution_id is None or event.get("execution_id") == client.execution_id
