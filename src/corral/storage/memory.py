"""The in-memory store: for tests and ephemeral runs. Nothing survives the process."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import msgspec

from corral.errors import ExecutionNotFound
from corral.model import ErrorInfo, ExecutionRecord, ExecutionStatus, StepRecord
from corral.storage.base import CacheEntry

__all__ = ["MemoryStore"]


class MemoryStore:
    """Implements :class:`corral.storage.base.Store` with dicts.

    ``max_cache_entries`` bounds the result cache (least recently used out).
    """

    def __init__(self, url: str = "memory://", *, max_cache_entries: int = 10_000) -> None:
        self.url = url
        self._executions: dict[str, ExecutionRecord] = {}
        self._steps: dict[str, dict[str, StepRecord]] = {}
        self._keys: dict[str, str] = {}
        self._cache: OrderedDict[str, CacheEntry] = OrderedDict()
        self._max_cache = max_cache_entries

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def create_execution(self, record: ExecutionRecord) -> tuple[ExecutionRecord, bool]:
        if record.key is not None and record.key in self._keys:
            return await self.get_execution(self._keys[record.key]), False
        stored = msgspec.structs.replace(record, steps=[])
        self._executions[record.id] = stored
        self._steps[record.id] = {s.step_id: msgspec.structs.replace(s) for s in record.steps}
        if record.key is not None:
            self._keys[record.key] = record.id
        return record, True

    def _get(self, execution_id: str) -> ExecutionRecord:
        try:
            return self._executions[execution_id]
        except KeyError:
            raise ExecutionNotFound(execution_id) from None

    async def start_execution(self, execution_id: str, owner: str, started_at: float) -> None:
        rec = self._get(execution_id)
        rec.status = "running"
        rec.owner = owner
        rec.started_at = started_at

    async def record_step(self, execution_id: str, step: StepRecord) -> None:
        self._get(execution_id)
        self._steps[execution_id][step.step_id] = msgspec.structs.replace(step)

    async def finish_execution(
        self,
        execution_id: str,
        status: ExecutionStatus,
        *,
        result: Any,
        error: ErrorInfo | None,
        finished_at: float,
    ) -> None:
        rec = self._get(execution_id)
        rec.status = status
        rec.result = result
        rec.error = error
        rec.finished_at = finished_at

    async def get_execution(self, execution_id: str) -> ExecutionRecord:
        rec = self._get(execution_id)
        steps = [msgspec.structs.replace(s) for s in self._steps[execution_id].values()]
        return msgspec.structs.replace(rec, steps=steps)

    async def find_by_key(self, key: str) -> ExecutionRecord | None:
        execution_id = self._keys.get(key)
        return None if execution_id is None else await self.get_execution(execution_id)

    async def list_executions(
        self,
        *,
        status: str | None = None,
        workflow: str | None = None,
        limit: int = 100,
    ) -> list[ExecutionRecord]:
        out: list[ExecutionRecord] = []
        for rec in reversed(self._executions.values()):
            if status is not None and rec.status != status:
                continue
            if workflow is not None and rec.workflow != workflow:
                continue
            out.append(msgspec.structs.replace(rec))
            if len(out) >= limit:
                break
        return out

    async def get_cache(self, key: str, now: float) -> CacheEntry | None:
        entry = self._cache.get(key)
        if entry is None:
            return None
        if entry.expires_at is not None and entry.expires_at <= now:
            del self._cache[key]
            return None
        self._cache.move_to_end(key)
        return entry

    async def put_cache(self, entry: CacheEntry) -> None:
        self._cache[entry.key] = entry
        self._cache.move_to_end(entry.key)
        while len(self._cache) > self._max_cache:
            self._cache.popitem(last=False)
