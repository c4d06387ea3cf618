"""What ``submit`` hands back: :class:`ExecutionHandle` (wait for one
execution, its result, cancel it) and :class:`RetryPreview` (what a retry
would rerun and reuse, before it is submitted)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import trio

from corral.core.model import (
    TERMINAL_EXECUTION,
    ErrorInfo,
    ExecutionRecord,
)
from corral.core.status import (
    CANCELLED,
    SUCCEEDED,
    failure_for,
)
from corral.engine.flag import Flag
from corral.engine.reruns import RetryChoice
from corral.engine.runner import Outcome, WorkflowRun
from corral.workflow.plan import Plan


class Executions(Protocol):
    """What a handle needs of its engine: an execution's record, and
    cancelling it."""

    async def get(self, execution_id: str) -> ExecutionRecord: ...

    async def cancel(self, execution_id: str) -> ExecutionRecord: ...

    def running_here(self, execution_id: str) -> _Completion | None:
        """Its completion, while this engine runs it (or has it queued)."""
        ...


__all__ = ["ExecutionHandle", "RetryPreview"]


class _Completion:
    __slots__ = ("done", "outcome", "run")

    def __init__(self, run: WorkflowRun) -> None:
        self.done = Flag()
        self.outcome: Outcome | None = None
        self.run = run


class ExecutionHandle:
    """A submitted execution: ``.id`` and ``await .result()``."""

    __slots__ = ("_completion", "_engine", "id")  # (one per submission kept by its caller)

    def __init__(
        self, engine: Executions, execution_id: str, completion: _Completion | None
    ) -> None:
        self._engine = engine
        self.id = execution_id
        self._completion = completion

    async def wait(self) -> ExecutionRecord:
        """Wait until the execution ends; return its record."""
        if self._completion is not None:
            await self._completion.done.wait()
            return await self._engine.get(self.id)
        # Queued in the store (for workers, or past an admission queue with
        # queue_in_store), or run by another engine (an idempotency hit):
        # follow the store, until this engine claims it.
        while True:
            record = await self._engine.get(self.id)
            if record.status in TERMINAL_EXECUTION:
                return record
            completion = self._engine.running_here(self.id)
            if completion is not None:
                self._completion = completion
                await completion.done.wait()
                return await self._engine.get(self.id)
            await trio.sleep(0.05)

    async def result(self) -> Any:
        """The workflow's result; raises ``WorkflowFailed`` / ``WorkflowCancelled`` /
        ``WorkflowTimedOut`` if it did not succeed."""
        if self._completion is None:
            self._completion = self._engine.running_here(self.id)
        if self._completion is not None:
            await self._completion.done.wait()
            outcome = self._completion.outcome
            if outcome is not None:
                if outcome.status == SUCCEEDED:
                    return outcome.result
                if outcome.exception is not None:
                    raise outcome.exception
        return _result_of(await self.wait())

    async def cancel(self) -> ExecutionRecord:
        return await self._engine.cancel(self.id)

    def __repr__(self) -> str:
        return f"<ExecutionHandle {self.id}>"


def _result_of(record: ExecutionRecord) -> Any:
    if record.status == SUCCEEDED:
        return record.result
    err = record.error or ErrorInfo("Unknown", record.status)
    raise failure_for(
        record.status,
        execution_id=record.id,
        message=(
            err.message
            if record.status == CANCELLED
            else f"workflow {record.workflow!r} {record.status}: {err.type}: {err.message}"
        ),
        step=err.step,
        error_type=err.type,
    )


@dataclass
class RetryPreview:
    """What :meth:`Engine.retry` would do (``Engine.plan_retry``,
    ``corral retry --dry-run``): the execution it retries, the plan and
    inputs it runs, and which steps run again (with why) or are reused."""

    original: ExecutionRecord
    plan: Plan
    inputs: dict[str, Any]
    choice: RetryChoice

    @property
    def rerun(self) -> dict[str, str]:
        return self.choice.rerun

    @property
    def reused(self) -> list[str]:
        return self.choice.reused
