"""Admission: a bounded priority queue in front of a cap on running workflows.

Queued work is a small ticket, not a task (an idle task costs ~2-3 KB; a
ticket a few hundred bytes). One dispatcher task starts tickets, highest
priority first then oldest, whenever a running slot is free and the memory
guard is not pausing admission. Past ``max_queued`` waiting tickets,
``offer`` raises :class:`Overloaded` at once.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import trio

from corral.core.errors import Overloaded
from corral.engine.resources import MemoryGuard

__all__ = ["Dispatcher", "Ticket"]


@dataclass(slots=True, eq=False)
class Ticket:
    execution_id: str
    priority: int
    submitted_at: float
    payload: Any = None
    withdrawn: bool = False
    seq: int = field(default=0)


@dataclass(frozen=True, slots=True)
class DispatcherStatistics:
    running: int
    max_running: int
    queued: int
    max_queued: int
    paused_by_memory: bool


class Dispatcher:
    def __init__(self, max_running: int, max_queued: int, memory: MemoryGuard) -> None:
        self.max_running = max_running
        self.max_queued = max_queued
        self.memory = memory
        self.running = 0
        self._heap: list[tuple[int, int, Ticket]] = []
        self._queued = 0
        self._seq = itertools.count()
        self._wake = trio.Event()
        self._by_id: dict[str, Ticket] = {}
        self._withdrawn = 0

    @property
    def queued(self) -> int:
        return self._queued

    def offer(self, ticket: Ticket, *, check: bool = True) -> None:
        """Queue a ticket or raise :class:`Overloaded` without waiting.

        ``check=False`` skips the bounds: for executions already accepted once
        (resumed after a crash), which must not be lost to a full queue.
        """
        if check:
            self.check(ticket.priority)
        ticket.seq = next(self._seq)
        heapq.heappush(self._heap, (-ticket.priority, ticket.seq, ticket))
        self._queued += 1
        self._by_id[ticket.execution_id] = ticket
        self._wake.set()

    def starts_at_once(self) -> bool:
        """Would a ticket offered now start at the next round (a free slot for
        it after everything already queued)?"""
        return self.running + self._queued < self.max_running and not self.memory.paused

    def _full(self) -> bool:
        # Free running slots take work at once; beyond them, max_queued may wait.
        return self._queued >= self.max_queued + max(0, self.max_running - self.running)

    def has_room(self) -> bool:
        """Would a ticket offered now wait in memory (not past ``max_queued``,
        admission not paused by the memory guard)?"""
        return not self._full() and not self.memory.paused

    def check(self, priority: int = 0) -> None:
        self.memory.check_admission()
        if self._full():
            raise Overloaded(
                f"admission queue is full ({self._queued} waiting, {self.running} running; "
                f"limits max_queued={self.max_queued}, "
                f"max_running_workflows={self.max_running})"
            )

    def withdraw(self, execution_id: str) -> Ticket | None:
        """Remove a queued ticket (for cancel); ``None`` if it is not queued."""
        ticket = self._by_id.pop(execution_id, None)
        if ticket is None:
            return None
        ticket.withdrawn = True
        self._queued -= 1
        self._withdrawn += 1
        if self._withdrawn > 64 and self._withdrawn * 2 > len(self._heap):
            # Withdrawn tickets are skipped lazily; drop them before they pile up.
            self._heap = [entry for entry in self._heap if not entry[2].withdrawn]
            heapq.heapify(self._heap)
            self._withdrawn = 0
        return ticket

    def is_queued(self, execution_id: str) -> bool:
        return execution_id in self._by_id

    def release(self) -> None:
        """A running workflow finished: free its slot."""
        self.running -= 1
        self._wake.set()

    async def run(self, nursery: trio.Nursery, start: Callable[[Ticket], Awaitable[None]]) -> None:
        """Start tickets forever. ``start`` runs one workflow; it must call ``release``."""
        while True:
            while not (self._queued and self.running < self.max_running):
                await self._wake.wait()
                self._wake = trio.Event()
            if self.memory.paused:
                await self.memory.wait_until_admitting()
                continue
            while self._heap and self.running < self.max_running:
                _, _, ticket = heapq.heappop(self._heap)
                if ticket.withdrawn:
                    self._withdrawn -= 1
                    continue
                del self._by_id[ticket.execution_id]
                self._queued -= 1
                self.running += 1
                nursery.start_soon(start, ticket)
            await trio.lowlevel.checkpoint()

    def statistics(self) -> DispatcherStatistics:
        return DispatcherStatistics(
            self.running, self.max_running, self._queued, self.max_queued, self.memory.paused
        )
