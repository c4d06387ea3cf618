"""A one-shot flag that makes its ``trio.Event`` only when someone waits.

Every execution in flight has two "it is done" events (its run's and its
handle's); most are set long before anyone waits on them, or never waited
on at all (a server submits and moves on). A ``trio.Event`` with its set of
waiting tasks costs ~0.4 KB; this costs ~50 bytes until a task waits.
"""

from __future__ import annotations

import trio

__all__ = ["Flag"]


class Flag:
    """``set()``, ``is_set()`` and ``await wait()``, as ``trio.Event``'s."""

    __slots__ = ("_event", "_set")

    def __init__(self) -> None:
        self._set = False
        self._event: trio.Event | None = None

    def set(self) -> None:
        self._set = True
        if self._event is not None:
            self._event.set()

    def is_set(self) -> bool:
        return self._set

    async def wait(self) -> None:
        if self._set:
            await trio.lowlevel.checkpoint()  # (what a set trio.Event's wait does)
            return
        if self._event is None:
            self._event = trio.Event()
        await self._event.wait()
