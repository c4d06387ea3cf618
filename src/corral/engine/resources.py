"""ResourceManager: named pools, keyed limits, the workflow cap, the memory guard.

Every limit is a ``trio.CapacityLimiter`` (or built from them), so waiting is
fair (FIFO), cancellable, and visible through ``.statistics()``. A step asks
for units of several pools; pools are always acquired in sorted name order so
two steps can never hold one pool each while waiting for the other's.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import psutil
import trio

from corral.core.errors import CorralError, Overloaded

__all__ = ["KeyedLimiter", "MemoryGuard", "Pool", "ResourceManager"]

log = logging.getLogger("corral.resources")


@dataclass(frozen=True, slots=True)
class PoolStatistics:
    name: str
    total: int
    borrowed: int
    waiting: int


class Pool:
    """A named pool of ``size`` units. A step may take several units at once.

    A ``CapacityLimiter`` lends one token per borrower, so a request for ``n``
    units borrows ``n`` tokens on behalf of ``n`` distinct borrower objects.
    Multi-unit requests are serialised by a lock so that two of them can never
    each hold part of what they need and wait for each other forever.
    """

    def __init__(self, name: str, size: int) -> None:
        self.name = name
        self.limiter = trio.CapacityLimiter(size)
        self._multi = trio.Lock()

    @property
    def size(self) -> int:
        return int(self.limiter.total_tokens)

    async def acquire(self, n: int) -> list[object]:
        if n > self.size:
            raise CorralError(f"asked for {n} units of pool {self.name!r}, which has {self.size}")
        borrowers = [object() for _ in range(n)]
        if n == 1:
            await self.limiter.acquire_on_behalf_of(borrowers[0])
            return borrowers
        taken: list[object] = []
        try:
            async with self._multi:
                for b in borrowers:
                    await self.limiter.acquire_on_behalf_of(b)
                    taken.append(b)
        except BaseException:
            self.release(taken)
            raise
        return borrowers

    def release(self, borrowers: list[object]) -> None:
        for b in borrowers:
            self.limiter.release_on_behalf_of(b)

    def statistics(self) -> PoolStatistics:
        s = self.limiter.statistics()
        return PoolStatistics(self.name, int(s.total_tokens), s.borrowed_tokens, s.tasks_waiting)


@dataclass(frozen=True, slots=True)
class KeyedStatistics:
    name: str
    limit: int
    keys: int
    borrowed: int
    waiting: int


class KeyedLimiter:
    """At most ``limit`` holders per key (e.g. one restructure per project path).

    One ``CapacityLimiter`` per key that is in use, dropped when its last
    holder or waiter leaves, so memory stays bounded by the keys in use.
    """

    def __init__(self, name: str, limit: int) -> None:
        self.name = name
        self.limit = limit
        self._limiters: dict[Any, tuple[trio.CapacityLimiter, list[int]]] = {}

    @asynccontextmanager
    async def hold(self, key: Any) -> AsyncIterator[None]:
        entry = self._limiters.get(key)
        if entry is None:
            entry = (trio.CapacityLimiter(self.limit), [0])
            self._limiters[key] = entry
        limiter, users = entry
        users[0] += 1
        try:
            async with limiter:
                yield
        finally:
            users[0] -= 1
            if users[0] == 0:
                del self._limiters[key]

    def statistics(self) -> KeyedStatistics:
        borrowed = waiting = 0
        for limiter, _ in self._limiters.values():
            s = limiter.statistics()
            borrowed += s.borrowed_tokens
            waiting += s.tasks_waiting
        return KeyedStatistics(self.name, self.limit, len(self._limiters), borrowed, waiting)


@dataclass(frozen=True, slots=True)
class MemoryStatistics:
    rss_mb: float
    soft_mb: float | None
    hard_mb: float | None
    paused: bool
    refusing: bool
    samples: int
    errors: int = 0


def _process_rss() -> int:
    return int(psutil.Process().memory_info().rss)


class MemoryGuard:
    """Samples process RSS periodically; above ``soft_mb`` admission pauses
    (queued work waits), above ``hard_mb`` new submissions are refused with
    :class:`Overloaded`. ``reader`` returns RSS in bytes (injectable for tests)."""

    def __init__(
        self,
        soft_mb: float | None,
        hard_mb: float | None,
        interval: float,
        reader: Callable[[], int] | None = None,
    ) -> None:
        self.soft_mb = soft_mb
        self.hard_mb = hard_mb
        self.interval = interval
        self._reader = reader or _process_rss
        self.rss_mb = 0.0
        self.samples = 0
        self.errors = 0
        self._resumed = trio.Event()
        self._resumed.set()

    @property
    def enabled(self) -> bool:
        return self.soft_mb is not None or self.hard_mb is not None

    @property
    def paused(self) -> bool:
        return self.soft_mb is not None and self.rss_mb >= self.soft_mb

    @property
    def refusing(self) -> bool:
        return self.hard_mb is not None and self.rss_mb >= self.hard_mb

    def sample(self) -> float:
        """Read RSS now and update the marks; returns RSS in MB.

        A reader that fails (psutil can be denied access in some containers)
        must not bring the engine down: the last reading is kept, the failure
        is logged once and counted in ``statistics().errors``.
        """
        try:
            self.rss_mb = self._reader() / 1_048_576
        except Exception as exc:
            if not self.errors:
                log.warning("memory guard: reading RSS failed (%r); keeping the last value", exc)
            self.errors += 1
            return self.rss_mb
        self.samples += 1
        if self.paused:
            if self._resumed.is_set():
                self._resumed = trio.Event()
        else:
            self._resumed.set()
        return self.rss_mb

    def check_admission(self) -> None:
        """Raise :class:`Overloaded` if memory is above the hard mark."""
        if self.refusing:
            raise Overloaded(
                f"memory guard: process RSS {self.rss_mb:.0f} MB is above the hard mark "
                f"{self.hard_mb:.0f} MB; new work is refused until it drops"
            )

    async def wait_until_admitting(self) -> None:
        while self.paused:
            await self._resumed.wait()

    async def run(self) -> None:
        if not self.enabled:
            return
        while True:
            self.sample()
            await trio.sleep(self.interval)

    def statistics(self) -> MemoryStatistics:
        return MemoryStatistics(
            self.rss_mb,
            self.soft_mb,
            self.hard_mb,
            self.paused,
            self.refusing,
            self.samples,
            self.errors,
        )


class ResourceManager:
    """All of an engine's limits in one place."""

    def __init__(
        self,
        pools: Mapping[str, int],
        *,
        memory: MemoryGuard,
    ) -> None:
        self.pools = {name: Pool(name, size) for name, size in pools.items()}
        self._sizes = dict(pools)
        self.memory = memory
        self._keyed: dict[str, KeyedLimiter] = {}

    def pool_sizes(self) -> dict[str, int]:
        """Pool name -> size (fixed when the engine opens)."""
        return self._sizes

    def keyed(self, name: str, limit: int) -> KeyedLimiter:
        """The keyed limiter shared by every step using ``name``.

        A name's limit is set by the first step that uses it; the engine
        refuses (at submit) a spec that declares another limit for that name.
        """
        limiter = self._keyed.get(name)
        if limiter is None:
            limiter = self._keyed[name] = KeyedLimiter(name, limit)
        return limiter

    def check_keyed(self, name: str, limit: int) -> int | None:
        """The limit already fixed for ``name`` if it differs from ``limit``."""
        limiter = self._keyed.get(name)
        if limiter is None or limiter.limit == limit:
            return None
        return limiter.limit

    @asynccontextmanager
    async def hold(
        self,
        requests: Mapping[str, int],
        keyed: tuple[KeyedLimiter, Any] | None = None,
    ) -> AsyncIterator[None]:
        """Hold the keyed slot (first), then pool units in sorted pool order."""
        held: list[tuple[Pool, list[object]]] = []
        async with _maybe_keyed(keyed):
            try:
                for name in sorted(requests):
                    pool = self.pools[name]
                    held.append((pool, await pool.acquire(requests[name])))
                yield
            finally:
                for pool, borrowers in reversed(held):
                    pool.release(borrowers)

    def statistics(self) -> dict[str, Any]:
        return {
            "pools": {name: pool.statistics() for name, pool in self.pools.items()},
            "keyed": [k.statistics() for k in self._keyed.values()],
            "memory": self.memory.statistics(),
        }


@asynccontextmanager
async def _maybe_keyed(keyed: tuple[KeyedLimiter, Any] | None) -> AsyncIterator[None]:
    if keyed is None:
        yield
        return
    limiter, key = keyed
    async with limiter.hold(key):
        yield
