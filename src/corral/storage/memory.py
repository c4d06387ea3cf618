"""The in-memory store: for tests and ephemeral runs. Nothing survives the process."""

from __future__ import annotations

from typing import Any

import msgspec
import trio

from corral.core.errors import ExecutionNotFound, LeaseLost
from corral.core.model import (
    TERMINAL_EXECUTION,
    TERMINAL_STEP,
    ErrorInfo,
    ExecutionRecord,
    ExecutionStatus,
    StepRecord,
)
from corral.core.status import CANCELLED, PENDING, RUNNING, UNFINISHED
from corral.storage import rules
from corral.storage.base import CacheEntry, DefinitionRecord

__all__ = ["MemoryStore"]


def _copy(record: Any) -> Any:
    """A deep copy (records hold outputs, which callers may mutate)."""
    return msgspec.json.decode(msgspec.json.encode(record), type=type(record))


class MemoryStore:
    """Implements :class:`corral.storage.base.Store` with dicts.

    Records are deep-copied in and out, so a caller can never change what
    is stored by mutating an object, as with a real database.
    """

    def __init__(self, url: str = "memory://", *, durability: str = "step") -> None:
        self.url = url
        self.durability = durability  # "none": step records are not kept, as in SQLite
        self._executions: dict[str, ExecutionRecord] = {}
        self._steps: dict[str, dict[str, StepRecord]] = {}
        self._keys: dict[str, str] = {}
        self._cache: dict[str, CacheEntry] = {}
        self._definitions: dict[tuple[str, str], DefinitionRecord] = {}
        self._by_digest: dict[str, DefinitionRecord] = {}
        self._changed: trio.Event | None = None
        self._paused: dict[str, float] = {}

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def run(self) -> None:
        return None

    # ------------------------------------------------------------ definitions

    async def put_definition(
        self, definition: DefinitionRecord, *, register: bool = False
    ) -> DefinitionRecord:
        stored = self._by_digest.setdefault(definition.digest, definition)
        if not register:
            return stored
        key = (definition.name, definition.version)
        existing = self._definitions.get(key)
        if existing is not None:
            return existing
        # Registered now: its age is the registration's (what "newest" means).
        stored = msgspec.structs.replace(stored, created_at=definition.created_at)
        self._by_digest[definition.digest] = self._definitions[key] = stored
        return stored

    async def get_definition(
        self, name: str, version: str | None = None
    ) -> DefinitionRecord | None:
        if version is not None:
            return self._definitions.get((name, version))
        return rules.newest(d for (n, _), d in self._definitions.items() if n == name)

    async def get_definition_by_digest(self, digest: str) -> DefinitionRecord | None:
        return self._by_digest.get(digest)

    async def list_definitions(self, name: str | None = None) -> list[DefinitionRecord]:
        found = [d for (n, _), d in self._definitions.items() if name is None or n == name]
        return sorted(found, key=lambda d: (d.name, -d.created_at))

    # ------------------------------------------------------------ executions

    async def create_execution(
        self, record: ExecutionRecord, *, wait: bool = True
    ) -> tuple[ExecutionRecord, bool]:
        if record.key is not None and record.key in self._keys:
            return await self.get_execution(self._keys[record.key]), False
        stored = _copy(record)
        self._steps[record.id] = {s.step_id: s for s in stored.steps}
        stored.steps = []
        self._executions[record.id] = stored
        if record.key is not None:
            self._keys[record.key] = record.id
        if record.owner is None and record.parent_id is None:
            self._signal()  # queued for whichever engine claims it
        return record, True

    def _get(self, execution_id: str) -> ExecutionRecord:
        try:
            return self._executions[execution_id]
        except (KeyError, TypeError):
            raise ExecutionNotFound(str(execution_id)) from None

    async def wait_created(self, execution_id: str) -> None:
        return  # inserts are immediate here

    async def start_execution(
        self,
        execution_id: str,
        owner: str,
        started_at: float,
        *,
        claim: bool = False,
        wait: bool = True,
    ) -> None:
        rec = self._get(execution_id)
        if rec.finished_at is not None or (not claim and rec.owner not in (None, owner)):
            raise LeaseLost(f"execution {execution_id} is owned by {rec.owner} or finished")
        rec.status = RUNNING
        rec.owner = owner
        rec.started_at = started_at

    async def record_step(
        self,
        execution_id: str,
        step: StepRecord,
        *,
        owner: str | None = None,
        wait: bool = True,
    ) -> None:
        rec = self._get(execution_id)
        if owner is not None and rec.owner != owner:
            if step.status in TERMINAL_STEP:
                raise LeaseLost(f"execution {execution_id} is now owned by {rec.owner}")
            return
        steps = self._steps[execution_id]
        if self.durability == "none" or step.step_id not in steps:
            return  # as SQLite: nothing kept without durability; no such step row
        steps[step.step_id] = _copy(step)

    async def finish_execution(
        self,
        execution_id: str,
        status: ExecutionStatus,
        *,
        result: Any,
        error: ErrorInfo | None,
        finished_at: float,
        owner: str | None = None,
    ) -> None:
        rec = self._get(execution_id)
        if owner is not None and rec.owner != owner:
            raise LeaseLost(f"execution {execution_id} is now owned by {rec.owner}")
        rec.status = status
        rec.result = msgspec.json.decode(msgspec.json.encode(result))
        rec.error = error
        rec.finished_at = finished_at
        rec.lease_expires_at = None

    async def cancel_execution(
        self, execution_id: str, reason: str, now: float, *, owner: str | None = None
    ) -> bool:
        error = ErrorInfo("WorkflowCancelled", reason)
        return bool(await self._cancel([execution_id], error, now, owner))

    async def cancel_unstarted(
        self, execution_ids: list[str], owner: str, error: ErrorInfo, now: float
    ) -> list[str]:
        return await self._cancel(execution_ids, error, now, owner)

    async def _cancel(
        self, execution_ids: list[str], error: ErrorInfo, now: float, owner: str | None
    ) -> list[str]:
        """What "cancelled" means (as SQLite's ``_cancel``): the unfinished
        executions among ``execution_ids`` (held by ``owner``, if given),
        their unfinished steps and their descendants."""
        done: list[str] = []
        for execution_id in execution_ids:
            rec = self._executions.get(execution_id)
            if rec is None or rec.finished_at is not None:
                continue
            if owner is not None and rec.owner != owner:
                continue
            rec.status = CANCELLED
            rec.error = error
            rec.finished_at = now
            rec.lease_expires_at = None
            rec.cancel_requested = True
            self._cancel_steps(execution_id, now)
            await self.cancel_descendants(execution_id, now)
            done.append(execution_id)
        return done

    async def get_execution(self, execution_id: str) -> ExecutionRecord:
        rec = self._get(execution_id)
        out: ExecutionRecord = _copy(rec)
        out.steps = [_copy(s) for s in self._steps[execution_id].values()]
        return out

    async def get_executions(self, execution_ids: list[str]) -> list[ExecutionRecord]:
        return [await self.get_execution(i) for i in execution_ids if i in self._executions]

    async def find_ids(self, prefix: str, limit: int = 10) -> list[str]:
        return sorted(i for i in self._executions if i.startswith(prefix))[:limit]

    async def find_by_key(self, key: str) -> ExecutionRecord | None:
        execution_id = self._keys.get(key)
        return None if execution_id is None else await self.get_execution(execution_id)

    async def find_child(self, parent_id: str, parent_step: str) -> ExecutionRecord | None:
        """The newest attempt (created last) of the child run by that step."""
        newest: ExecutionRecord | None = None
        for rec in self._executions.values():  # in creation order: a tie goes to the later
            if (rec.parent_id, rec.parent_step) == (parent_id, parent_step) and (
                newest is None or rec.created_at >= newest.created_at
            ):
                newest = rec
        return None if newest is None else await self.get_execution(newest.id)

    async def list_executions(
        self,
        *,
        status: str | None = None,
        workflow: str | None = None,
        limit: int = 100,
        before: tuple[float, str] | None = None,
        top_level: bool = False,
        since: float | None = None,
        retry_of: str | None = None,
    ) -> list[ExecutionRecord]:
        found = [
            rec
            for rec in self._executions.values()
            if (status is None or rec.status == status)
            and (workflow is None or rec.workflow == workflow)
            and (before is None or (rec.created_at, rec.id) < before)
            and not (top_level and rec.parent_id is not None)
            and (since is None or rec.created_at >= since)
            and (retry_of is None or rec.retry_of == retry_of)
        ]
        found.sort(key=lambda rec: (rec.created_at, rec.id), reverse=True)
        return [_copy(rec) for rec in found[:limit]]

    # ------------------------------------------------------------ ownership

    async def renew_leases(self, owner: str, until: float) -> list[str]:
        cancel: list[str] = []
        for rec in self._executions.values():
            if rec.owner == owner and rules.unfinished(rec):
                rec.lease_expires_at = until
                if rec.cancel_requested:
                    cancel.append(rec.id)
        return cancel

    async def lost(self, owner: str, execution_ids: list[str]) -> list[str]:
        return [
            i
            for i in execution_ids
            if i in self._executions and rules.not_owned(self._executions[i], owner)
        ]

    async def claim_expired(
        self,
        owner: str,
        now: float,
        until: float,
        *,
        limit: int | None = None,
        handlers: list[str] | None = None,
        queued: bool = True,
        start: float | None = None,
    ) -> list[str]:
        found = sorted(
            (
                rec
                for rec in self._executions.values()
                if rules.claimable(rec, owner, now, self._paused)
                and rules.runnable_with(rec, handlers)
                and (queued or rec.owner is not None)
            ),
            key=rules.claim_order,
        )
        claimed: list[str] = []
        for rec in found[:limit]:
            rec.owner = owner
            rec.lease_expires_at = until
            if start is not None and rec.status == PENDING:
                rec.status = RUNNING
                rec.started_at = start
            claimed.append(rec.id)
        return sorted(claimed)

    async def claim_records(
        self,
        owner: str,
        now: float,
        until: float,
        *,
        limit: int | None = None,
        handlers: list[str] | None = None,
        queued: bool = True,
        start: float | None = None,
    ) -> list[ExecutionRecord]:
        claimed = await self.claim_expired(
            owner, now, until, limit=limit, handlers=handlers, queued=queued, start=start
        )
        return await self.get_executions(claimed)

    async def claim_one(self, execution_id: str, owner: str, now: float, until: float) -> bool:
        rec = self._executions.get(execution_id)
        if rec is None or rec.owner is None or not rules.claimable(rec, owner, now, self._paused):
            return False
        rec.owner = owner
        rec.lease_expires_at = until
        return True

    async def cancel_requests(self, owner: str) -> list[str]:
        return sorted(
            rec.id
            for rec in self._executions.values()
            if rec.owner == owner and rec.cancel_requested and rules.unfinished(rec)
        )

    async def release(self, owner: str) -> list[str]:
        released: list[str] = []
        for rec in self._executions.values():
            if rec.owner == owner and rules.unfinished(rec):
                rec.owner = None
                rec.lease_expires_at = None
                released.append(rec.id)
        if released:
            self._signal()
        return sorted(released)

    def _signal(self) -> None:
        if self._changed is not None:
            self._changed.set()
            self._changed = None

    async def wait_signal(self) -> None:
        # One process: an in-process event (work queued without an owner, a
        # cancel request) stands in for another process's notification.
        if self._changed is None:
            self._changed = trio.Event()
        await self._changed.wait()

    async def request_cancel(self, execution_id: str, now: float) -> ExecutionRecord:
        rec = self._get(execution_id)
        if rules.unfinished(rec):
            rec.cancel_requested = True
            self._signal()
            if not rules.lease_held(rec, now):
                error = ErrorInfo("WorkflowCancelled", "cancelled while no engine ran it")
                await self._cancel([execution_id], error, now, None)
        return await self.get_execution(execution_id)

    async def request_cancel_many(self, execution_ids: list[str], now: float) -> list[str]:
        changed: list[str] = []
        for execution_id in execution_ids:
            rec = self._executions.get(execution_id)
            if rec is not None and rules.unfinished(rec):
                await self.request_cancel(execution_id, now)
                changed.append(execution_id)
        return sorted(changed)

    async def pause(self, workflow: str, now: float) -> bool:
        if workflow in self._paused:
            return False
        self._paused[workflow] = now
        self._signal()
        return True

    async def unpause(self, workflow: str) -> bool:
        if self._paused.pop(workflow, None) is None:
            return False
        self._signal()
        return True

    async def paused(self) -> dict[str, float]:
        return dict(sorted(self._paused.items()))

    async def cancel_descendants(self, execution_id: str, now: float) -> int:
        done = 0
        parents = {execution_id}
        while parents:
            children = [
                r
                for r in self._executions.values()
                if r.parent_id in parents and r.status not in TERMINAL_EXECUTION
            ]
            for child in children:
                child.status = CANCELLED
                child.error = ErrorInfo("WorkflowCancelled", "its parent was cancelled")
                child.finished_at = now
                child.lease_expires_at = None
                self._cancel_steps(child.id, now)
            done += len(children)
            parents = {c.id for c in children}
        return done

    def _cancel_steps(self, execution_id: str, now: float) -> None:
        for step in self._steps[execution_id].values():
            if step.status in UNFINISHED:
                step.status = CANCELLED
                step.finished_at = now

    # ------------------------------------------------------------ cache

    async def get_cache(self, key: str, now: float) -> CacheEntry | None:
        entry = self._cache.get(key)
        if entry is None:
            return None
        if entry.expires_at is not None and entry.expires_at <= now:
            return None  # ignored here, deleted by prune_cache
        return entry

    async def put_cache(self, entry: CacheEntry) -> None:
        self._cache[entry.key] = entry

    async def prune_cache(self, now: float, max_entries: int, max_bytes: int) -> int:
        expired = [
            k for k, e in self._cache.items() if e.expires_at is not None and e.expires_at <= now
        ]
        for k in expired:
            del self._cache[k]
        total, dropped = 0, len(expired)
        newest_first = sorted(self._cache.values(), key=lambda e: e.created_at, reverse=True)
        for kept, entry in enumerate(newest_first, start=1):
            total += len(entry.value)
            if kept > max_entries or total > max_bytes:  # the oldest go first
                del self._cache[entry.key]
                dropped += 1
        return dropped

    # ------------------------------------------------------------ retention

    async def count_prunable(self, before: float, *, statuses: tuple[str, ...] = ()) -> int:
        return sum(
            1
            for rec in self._executions.values()
            if rec.finished_at is not None
            and rec.finished_at < before
            and (not statuses or rec.status in statuses)
        )

    async def prune(
        self, before: float, *, statuses: tuple[str, ...] = (), batch: int = 500
    ) -> int:
        doomed = [
            rec.id
            for rec in self._executions.values()
            if rec.status in TERMINAL_EXECUTION
            and rec.finished_at is not None
            and rec.finished_at < before
            and (not statuses or rec.status in statuses)
        ]
        for execution_id in doomed:
            rec = self._executions.pop(execution_id)
            del self._steps[execution_id]
            if rec.key is not None:
                self._keys.pop(rec.key, None)
        return len(doomed)
