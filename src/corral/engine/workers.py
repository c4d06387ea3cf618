"""Worker processes for ``cpu`` handlers, started so that the current
directory is never importable while they boot.

Why: trio-parallel starts its workers with multiprocessing's *spawn* method,
``python -c 'from multiprocessing.spawn import spawn_main; ...'
--multiprocessing-fork``. ``-c`` puts the current directory first on
``sys.path``, and the child imports ``multiprocessing``, ``signal``,
``selectors``, ``threading``, ``types`` ... before
``multiprocessing.spawn.prepare()`` installs the parent's path. A package named
like a standard-library module in the working directory (a project that
``corral analyze .`` looks at, say) was therefore executed inside every worker
and broke it (issue 10). The resource tracker that multiprocessing starts with
the first worker is a ``-c`` child too, with the same exposure.

How: every ``-c`` command line of multiprocessing (``spawn.get_command_line``,
the resource tracker, the forkserver; Python 3.11 to 3.14) takes its
interpreter options from ``multiprocessing.util._args_from_interpreter_flags()``.
:func:`install` wraps that function once, so that it adds ``-P`` (safe path:
nothing is prepended to ``sys.path``) while :data:`_SAFE_PATH` is set, and
:func:`run_sync` sets it around corral's calls only. trio-parallel starts a
worker in the calling task, through ``trio.to_thread.run_sync(proc.start)``,
which runs in a copy of that task's context: the flag reaches the processes
started for corral, and no others (a script or a plain ``multiprocessing``
pool of the application keeps Python's usual command line).

Rejected: ``PYTHONSAFEPATH`` in ``os.environ`` would leak into every
subprocess (``core.shell`` running ``python script.py`` would lose its
script's directory); a multiprocessing context of our own means replacing
trio-parallel's ``SpawnProcWorker.mp_context``, a class attribute shared by
every user of trio-parallel, behind its fixed ``WorkerType`` enum; ``-I``
also ignores ``PYTHONPATH``, ``PYTHONHOME``, ``PYTHONUTF8`` ... and the user
site, which a worker must share with its parent.

``sys.path`` once booted is the parent's, set by ``prepare()``. An empty
entry (a parent started with ``-c``, the REPL, Jupyter: "the current
directory") is replaced there by the absolute directory the parent was in
when it imported multiprocessing (on importing corral: in practice, where it
started). That is multiprocessing's own rule, and we keep the entry rather
than drop it: a handler module the parent imported from there must import in
the worker too. The worker never gets the cwd-relative ``''`` back, so it
imports what the parent can, from the same directories, whichever directory
the engine is in when the worker starts.

Not covered: an empty or relative entry in ``PYTHONPATH`` is resolved against
the current directory by Python itself, ``-P`` or not; that is the user's
own setting, and it affects the parent the same way.
"""

from __future__ import annotations

import multiprocessing.util
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

import trio

__all__ = ["LazyWorkers", "install", "open_worker_context", "run_sync"]

T = TypeVar("T")

_SAFE_PATH: ContextVar[bool] = ContextVar("corral_worker_safe_path", default=False)
"""True in a task that is starting worker processes for corral."""

_MARK = "__corral_safe_path__"
_FLAGS = "_args_from_interpreter_flags"


def install() -> None:
    """Wrap ``multiprocessing.util._args_from_interpreter_flags`` (idempotent).

    Outside :func:`run_sync` the wrapper returns what the original returns.
    ``-P`` is added once: a parent already in safe-path mode (or isolated,
    ``-I``) passes its own flag on.
    """
    original: Callable[[], list[str]] | None = getattr(multiprocessing.util, _FLAGS, None)
    if original is None or getattr(original, _MARK, False):
        return  # a Python without it: nothing to wrap (tests/engine/test_workers.py fails)

    def interpreter_flags() -> list[str]:
        args = original()
        if _SAFE_PATH.get() and "-P" not in args and "-I" not in args:
            args = [*args, "-P"]
        return args

    setattr(interpreter_flags, _MARK, True)
    interpreter_flags.__wrapped__ = original  # type: ignore[attr-defined]
    setattr(multiprocessing.util, _FLAGS, interpreter_flags)


class LazyWorkers:
    """An engine's worker context, opened at its first call.

    Why: trio-parallel (with cloudpickle, tblib, tricycle) costs about 15 ms
    to import and most engines never run a ``cpu`` handler (a cold
    ``corral analyze`` pays it for nothing). The real context is opened by a
    task of the holder nursery, on the first :func:`run_sync`, and closed
    (its processes given their grace period) when the engine closes.
    """

    def __init__(self, holder: trio.Nursery, grace_period: float) -> None:
        self._holder = holder
        self._grace_period = grace_period
        self._context: Any = None
        self._lock = trio.Lock()
        self._closed = trio.Event()

    async def _hold(self, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        import trio_parallel  # type: ignore[import-untyped]

        async with trio_parallel.open_worker_context(grace_period=self._grace_period) as ctx:
            task_status.started(ctx)
            await self._closed.wait()

    async def context(self) -> Any:
        """The trio-parallel worker context, opened on the first call."""
        if self._context is None:
            async with self._lock:
                if self._context is None:
                    if self._closed.is_set():
                        raise trio.ClosedResourceError("the engine's worker context is closed")
                    self._context = await self._holder.start(self._hold)
        return self._context

    async def run_sync(self, fn: Callable[..., T], *args: Any, kill_on_cancel: bool = False) -> T:
        context = await self.context()
        result: T = await context.run_sync(fn, *args, kill_on_cancel=kill_on_cancel)
        return result


@asynccontextmanager
async def open_worker_context(*, grace_period: float) -> AsyncIterator[LazyWorkers]:
    """A worker context for an engine: its processes (started on the first
    ``cpu`` call) end with the engine. Run calls in it with :func:`run_sync`."""
    install()
    async with trio.open_nursery() as holder:
        workers = LazyWorkers(holder, grace_period)
        try:
            yield workers
        finally:
            workers._closed.set()


async def run_sync(
    workers: Any, fn: Callable[..., T], *args: Any, kill_on_cancel: bool = False
) -> T:
    """``workers.run_sync(fn, *args)``, where any worker process started for
    the call boots in safe-path mode. ``workers`` is a trio-parallel worker
    context, or ``None`` for trio-parallel's default one."""
    install()
    if workers is None:
        import trio_parallel

        runner: Any = trio_parallel
    else:
        runner = workers
    token = _SAFE_PATH.set(True)
    try:
        result: T = await runner.run_sync(fn, *args, kill_on_cancel=kill_on_cancel)
        return result
    finally:
        _SAFE_PATH.reset(token)
