"""Whether this engine may still believe it holds its executions.

An engine renews the leases of everything it runs every ``lease / 3``
seconds. A process that stalls (swapped out, a stopped VM, a blocking call)
misses renewals; once its leases have expired another engine may take its
executions over and run their steps. Its writes are then fenced off by the
store, but a step it *starts* would run twice. So before a step starts, the
runner asks :meth:`LeaseGuard.fresh`; when the last renewal is too old it
waits for the next one (which also abandons what was taken over). Pure
bookkeeping on Trio's clock: no I/O.
"""

from __future__ import annotations

import trio

__all__ = ["LeaseGuard"]


class LeaseGuard:
    """``renewed()`` after every successful renewal round; ``fresh()`` before a step."""

    def __init__(self, lease: float) -> None:
        # A step may start while less than two thirds of the lease have passed
        # since the last renewal: one renewal may be late, and the last third
        # is the margin for clock skew between engines.
        self.window = lease * 2 / 3
        self._renewed_at: float | None = None
        self._next = trio.Event()

    def renewed(self, at: float) -> None:
        """A renewal round that started at ``at`` (Trio's clock) succeeded."""
        self._renewed_at = at
        self._next.set()
        self._next = trio.Event()

    def fresh(self) -> bool:
        if self._renewed_at is None:  # before the first round: leases set at creation
            self._renewed_at = trio.current_time()
        return trio.current_time() - self._renewed_at < self.window

    async def wait_renewed(self) -> None:
        """Until the next successful renewal round."""
        await self._next.wait()
