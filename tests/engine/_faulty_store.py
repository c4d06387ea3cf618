"""A real memory store with injected store faults, for the tests of what the
engine does when its store fails (a full disk, a database locked a moment)."""

from __future__ import annotations

from typing import Any

import corral
import corral.storage


class FaultyStore(corral.storage.MemoryStore):
    """Step and finish writes fail while ``fail_writes``; a read of an
    execution in ``fail_get_once`` fails once."""

    def __init__(self, message: str = "database or disk is full") -> None:
        super().__init__()
        self.message = message
        self.fail_writes = False
        self.fail_get_once: set[str] = set()

    async def record_step(self, *args: Any, **kwargs: Any) -> None:
        if self.fail_writes:
            raise corral.StoreError(self.message)
        await super().record_step(*args, **kwargs)

    async def finish_execution(self, *args: Any, **kwargs: Any) -> None:
        if self.fail_writes:
            raise corral.StoreError(self.message)
        await super().finish_execution(*args, **kwargs)

    async def get_execution(self, execution_id: str) -> Any:
        if execution_id in self.fail_get_once:
            self.fail_get_once.discard(execution_id)
            raise corral.StoreError("database is locked")
        return await super().get_execution(execution_id)
