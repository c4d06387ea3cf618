"""Every error corral raises, in one place.

All of them derive from :class:`CorralError`, so embedding code can catch the
whole family with one ``except``. Errors caused by user input (a spec, an
input value, a command-line argument, a store URL) carry enough context to fix
the input without reading a traceback: the CLI prints ``str(error)`` and exits
with status 2.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ApiError",
    "ConfigError",
    "CorralError",
    "EngineClosed",
    "ExecutionNotFound",
    "HandlerError",
    "InputError",
    "LeaseLost",
    "NonRetryable",
    "Overloaded",
    "PluginError",
    "RetryRefused",
    "SpecError",
    "StepFailure",
    "StepTimedOut",
    "StoreError",
    "UsageError",
    "WorkflowCancelled",
    "WorkflowFailed",
    "WorkflowTimedOut",
]


class CorralError(Exception):
    """Base class of every error raised by corral."""


class SpecError(CorralError):
    """A workflow spec is invalid.

    ``file`` is the file it came from (``None`` for specs built in Python),
    ``path`` the JSON path of the offending value (``$.steps[2].needs[0]``) and
    ``line`` the 1-based line in the file when the format allows it (YAML).
    ``more``: the other errors found in the same check (a compiler reports
    every step's errors, not only the first); ``errors`` is all of them.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        path: str = "$",
        line: int | None = None,
        more: list[SpecError] | None = None,
    ) -> None:
        self.message = message
        self.file = file
        self.path = path
        self.line = line
        self.more = list(more or [])
        super().__init__(self._render())

    @property
    def errors(self) -> list[SpecError]:
        return [self, *self.more]

    def _render(self) -> str:
        where = self.file or "<spec>"
        if self.line is not None:
            where += f":{self.line}"
        extra = ""
        if self.more:
            extra = f" (and {len(self.more)} more error(s): `corral validate` lists them all)"
        return f"{where}: {self.path}: {self.message}{extra}"

    def located(self, *, file: str | None = None, line: int | None = None) -> SpecError:
        """Return a copy of this error with a file and/or line filled in."""
        return type(self)(
            self.message,
            file=file if file is not None else self.file,
            path=self.path,
            line=line if line is not None else self.line,
            more=[e.located(file=file) for e in self.more],
        )


class InputError(SpecError):
    """The inputs given to a workflow do not match its declared ``inputs``."""


class ConfigError(CorralError):
    """Engine settings (``corral.Limits``, ``open_engine`` arguments) are invalid."""


class PluginError(CorralError):
    """A plugin or handler is malformed, or two plugins claim one handler name."""


class StoreError(CorralError):
    """A store URL is invalid or the store cannot be used."""


class LeaseLost(StoreError):
    """This engine no longer owns the execution: another engine took it over
    after this one's lease expired (a stalled process). The stale run stops
    without writing anything more."""


class ExecutionNotFound(CorralError):
    """No execution with the given id exists in the store."""

    def __init__(self, execution_id: str) -> None:
        self.execution_id = execution_id
        super().__init__(f"no execution with id {execution_id!r}")


class Overloaded(CorralError):
    """The engine refuses new work: its admission queue is full or memory is too high.

    Raised by ``Engine.submit`` at once, without waiting, so callers can shed
    load or retry later.
    """


class EngineClosed(CorralError):
    """The engine is shutting down or closed and accepts no more work."""


class NonRetryable(CorralError):
    """Raise this (or a subclass) from a handler to fail a step without retrying it."""


class StepTimedOut(CorralError):
    """A step attempt ran past its ``timeout``."""


class StepFailure(CorralError):
    """The failure a handler reports on purpose (``core.fail``)."""


class HandlerError(CorralError):
    """A handler broke its contract (bad params at run time, a wrong return type)."""


class WorkflowFailed(CorralError):
    """A workflow ended in failure.

    ``step`` names the step that failed first and ``cause`` is the exception
    that step raised (also chained as ``__cause__``). ``execution_id`` names
    the execution so it can be inspected with ``engine.get``.
    """

    def __init__(
        self,
        message: str,
        *,
        execution_id: str,
        step: str | None = None,
        cause: BaseException | None = None,
        error_type: str | None = None,
    ) -> None:
        self.execution_id = execution_id
        self.step = step
        self.cause = cause
        self.error_type = error_type or (type(cause).__name__ if cause is not None else None)
        super().__init__(message)
        if cause is not None:
            self.__cause__ = cause


class WorkflowTimedOut(WorkflowFailed):
    """A workflow (or one of its steps) ran past its deadline: status ``timed_out``."""


class WorkflowCancelled(CorralError):
    """A workflow was cancelled (``Engine.cancel`` or engine shutdown)."""

    def __init__(self, execution_id: str, reason: str = "cancelled") -> None:
        self.execution_id = execution_id
        self.reason = reason
        super().__init__(f"execution {execution_id} was {reason}")


class UsageError(CorralError):
    """An API call or a command-line invocation is wrong (bad argument, missing file)."""


class RetryRefused(UsageError):
    """A retry would reuse the recorded output of steps whose handler, handler
    version or params changed since they ran (``steps``: step id -> what
    changed); retry with ``rerun_changed=True`` (``--rerun-changed``) to run
    them again instead."""

    def __init__(self, message: str, steps: dict[str, str]) -> None:
        super().__init__(message)
        self.steps = steps


class ApiError(CorralError):
    """The HTTP API answered with an error (``corral.server.client``): its status,
    the problem document's ``detail``, and the JSON ``path`` of a bad field."""

    def __init__(self, status: int, detail: str, path: str | None = None) -> None:
        self.status = status
        self.detail = detail
        self.path = path
        super().__init__(f"HTTP {status}: " + (f"{path}: " if path else "") + detail)


def describe(exc: BaseException) -> dict[str, Any]:
    """A JSON-friendly summary of an exception, for records and events."""
    return {"type": type(exc).__name__, "message": str(exc)}
