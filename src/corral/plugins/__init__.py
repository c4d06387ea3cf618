"""The plugin author's API: everything needed to write and ship a handler.

A handler is a class::

    class Resize(Handler):
        name = "images.resize"
        version = "1.0"
        kind = "cpu"

        class Params(msgspec.Struct):
            path: str
            width: int

        def run(self, ctx, params):          # sync: kind "blocking" or "cpu"
            ...

and a plugin exposes handlers with one hook::

    @hookimpl
    def corral_handlers():
        return [Resize]

Plugins import only this module (and ``corral.errors`` / ``corral.model``),
never engine internals; the engine reaches a handler's context only through
the :class:`StepLink` it passes in.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, ClassVar, Literal, Protocol

import msgspec
import pluggy

from corral.core.errors import HandlerError
from corral.plugins.hookspecs import PROJECT

__all__ = [
    "MAX_LOG_LINES",
    "Handler",
    "HandlerKind",
    "NoParams",
    "StepContext",
    "StepLink",
    "hookimpl",
]

hookimpl = pluggy.HookimplMarker(PROJECT)
"""Decorator marking a function of a plugin as a corral hook implementation."""

HandlerKind = Literal["async", "blocking", "cpu"]


class NoParams(msgspec.Struct, forbid_unknown_fields=True):
    """Params of a handler that takes none."""


class Handler:
    """Base class of step handlers.

    Class attributes:

    - ``name``: unique dotted name used in specs (``handler: core.echo``).
    - ``version``: bumped when results change; part of the cache key.
    - ``kind``: ``"async"`` (``async def run``, runs in the event loop),
      ``"blocking"`` (``def run``, runs in a worker thread) or ``"cpu"``
      (``def run``, runs in a worker process; the class must be importable at
      module level and params/results must pickle).
    - ``Params``: a msgspec Struct (or any msgspec-convertible type) the step's
      ``params`` are validated against, at load time and again once references
      are resolved.

    ``run(ctx, params)`` returns the step's output (any msgspec-encodable
    value) or raises. Raise :class:`corral.NonRetryable` to fail without retry.
    """

    name: ClassVar[str] = ""
    version: ClassVar[str] = "0"
    kind: ClassVar[HandlerKind] = "async"
    Params: ClassVar[Any] = NoParams
    description: ClassVar[str] = ""
    internal: ClassVar[bool] = False
    """A step of a plugin's own workflows rather than one for workflow files
    (the analysis steps of ``corral analyze``): ``corral plugins`` lists it
    only with ``--all``. Since corral 0.1."""

    async def run(self, ctx: StepContext, params: Any) -> Any:
        raise HandlerError(
            f"handler {self.name!r} ({type(self).__qualname__}) does not define run()"
        )


_STEP_LOGGER = logging.getLogger("corral.step")
#: A step's record keeps at most this many of its ``ctx.log`` lines (info and
#: above), each cut at :data:`MAX_LOG_LINE` characters.
MAX_LOG_LINES = 200
MAX_LOG_LINE = 1000


class _StepLog(logging.LoggerAdapter):  # type: ignore[type-arg]
    """``ctx.log``: the shared ``corral.step`` logger, and a copy of each line
    from info up kept for the step's record (whatever the logger's level)."""

    def __init__(
        self, extra: Mapping[str, object], sink: dict[str, list[str]] | None, key: str
    ) -> None:
        super().__init__(_STEP_LOGGER, extra)
        self._sink = sink
        self._key = key

    def log(self, level: int, msg: object, *args: Any, **kwargs: Any) -> None:
        if self._sink is not None and level >= logging.INFO:
            try:
                text = str(msg) % args if args else str(msg)
            except (TypeError, ValueError):
                text = f"{msg} {args!r}"
            lines = self._sink.setdefault(self._key, [])
            if len(lines) < MAX_LOG_LINES:
                lines.append(f"{logging.getLevelName(level).lower()} {text[:MAX_LOG_LINE]}")
            elif len(lines) == MAX_LOG_LINES:
                lines.append(f"... (more lines not kept: the first {MAX_LOG_LINES} are)")
        super().log(level, msg, *args, **kwargs)


class StepLink(Protocol):
    """How a :class:`StepContext` reaches the engine that runs its step.

    The engine passes one in; a handler never sees it. It is the only way
    from the plugin API to the engine, so neither imports the other's
    internals: in the engine's process the link calls back into the event
    loop (from a worker thread too), in a ``cpu`` worker process it writes
    to the engine's progress relay. A context built without one (a test
    calling a handler directly) reports nothing and is never cancelled.
    """

    def progress(
        self, done: float, total: float | None, message: str | None, unit: str | None
    ) -> None: ...

    def cancel_requested(self) -> bool: ...


class StepContext:
    """What a handler knows about the step it runs.

    ``inputs`` are the workflow's inputs, ``upstream`` maps each step this one
    ``needs`` to its output. ``log`` is a logger named after the step.
    ``progress(done, total, message)`` reports progress (shown by the CLI and
    emitted as a ``step.progress`` event); it may be called from a blocking
    handler's thread and from a cpu handler's worker process. A blocking
    handler that runs long should poll ``cancel_requested()`` and return
    early: corral never abandons a thread, so a cancelled workflow waits for
    its threads to finish.
    """

    __slots__ = (
        "_link",
        "_log",
        "_log_sink",
        "attempt",
        "execution_id",
        "inputs",
        "step_id",
        "upstream",
        "workflow",
    )

    def __init__(
        self,
        *,
        execution_id: str,
        workflow: str,
        step_id: str,
        inputs: Mapping[str, Any],
        upstream: Mapping[str, Any],
        attempt: int = 1,
        link: StepLink | None = None,
        log_sink: dict[str, list[str]] | None = None,
    ) -> None:
        self.execution_id = execution_id
        self.workflow = workflow
        self.step_id = step_id
        self.inputs = inputs
        self.upstream = upstream
        self.attempt = attempt
        self._log: logging.LoggerAdapter[logging.Logger] | None = None
        self._log_sink = log_sink  # step id -> the lines its record keeps
        self._link = link

    @property
    def log(self) -> logging.LoggerAdapter[logging.Logger]:
        """A logger for this step: records carry ``workflow``, ``step`` and
        ``execution_id`` (one shared ``corral.step`` logger, not one per step)."""
        if self._log is None:
            self._log = _StepLog(
                {
                    "workflow": self.workflow,
                    "step": self.step_id,
                    "execution_id": self.execution_id,
                },
                self._log_sink,
                self.step_id,
            )
        return self._log

    def progress(
        self,
        done: float,
        total: float | None = None,
        message: str | None = None,
        unit: str | None = None,
    ) -> None:
        """Report progress: ``done`` out of ``total`` (if known), counting
        ``unit`` (``"bytes"`` is shown as KB, MB ...; since corral 0.1)."""
        if self._link is not None:
            self._link.progress(done, total, message, unit)

    def cancel_requested(self) -> bool:
        """True once the step has been cancelled (for blocking handlers to poll)."""
        return self._link is not None and self._link.cancel_requested()

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        # Pickled (by a handler that sends its context somewhere): the data
        # travels, the link to this engine does not.
        return (
            _rebuild_context,
            (
                self.execution_id,
                self.workflow,
                self.step_id,
                dict(self.inputs),
                dict(self.upstream),
                self.attempt,
            ),
        )

    def __repr__(self) -> str:
        return f"<StepContext {self.workflow}/{self.step_id} of {self.execution_id}>"


def _rebuild_context(
    execution_id: str,
    workflow: str,
    step_id: str,
    inputs: dict[str, Any],
    upstream: dict[str, Any],
    attempt: int,
) -> StepContext:
    return StepContext(
        execution_id=execution_id,
        workflow=workflow,
        step_id=step_id,
        inputs=inputs,
        upstream=upstream,
        attempt=attempt,
    )
