"""``corral worker``: run queued executions from a shared store until told to stop.

A worker is an engine that claims (``open_engine(claim=True)``): it takes
queued executions as it has room, highest priority first, only those whose
handlers it has, and hears new work at once (PostgreSQL LISTEN/NOTIFY; a
changed SQLite file). On SIGTERM or Ctrl-C it stops claiming, gives what runs
``grace`` seconds to finish, then stops the rest without recording anything
and releases them: another worker claims them at once and resumes them
without re-running a step recorded ``succeeded``. A second signal stops at
once (the same release, no grace).
"""

from __future__ import annotations

import fnmatch
import logging
import signal
from collections.abc import Callable, Sequence

import trio

from corral.core.errors import ConfigError
from corral.core.model import Limits
from corral.engine.engine import Engine
from corral.engine.opening import open_engine
from corral.plugins.manager import HandlerRegistry, build_registry

__all__ = ["select_handlers", "serve"]

log = logging.getLogger("corral.server.worker")


def select_handlers(registry: HandlerRegistry, patterns: Sequence[str]) -> list[str]:
    """The installed handlers matching any of ``patterns`` (shell-style,
    ``vibe.*``; comma-separated lists accepted); all of them without patterns.
    A pattern that matches nothing is an error: a typo would otherwise make a
    worker that claims nothing."""
    names = sorted(registry)
    wanted = [p.strip() for item in patterns for p in item.split(",") if p.strip()]
    if not wanted:
        return names
    chosen: set[str] = set()
    for pattern in wanted:
        matched = fnmatch.filter(names, pattern)
        if not matched:
            raise ConfigError(
                f"--handlers {pattern!r} matches no installed handler "
                f"(installed: {', '.join(names)})"
            )
        chosen.update(matched)
    return sorted(chosen)


async def serve(
    store: str,
    *,
    concurrency: int,
    handlers: Sequence[str] = (),
    grace: float = 30.0,
    lease: float = 30.0,
    plugins: Sequence[object] = (),
    entry_points: bool = True,
    say: Callable[[str], None] = print,
    task_status: trio.TaskStatus[Engine] = trio.TASK_STATUS_IGNORED,
) -> list[str]:
    """Run a worker until SIGTERM/SIGINT (or until cancelled); return the ids
    it released when it stopped."""
    if concurrency < 1:
        raise ConfigError(f"--concurrency must be at least 1, got {concurrency}")
    if grace < 0:
        raise ConfigError(f"--grace must be 0 or more seconds, got {grace}")
    registry = build_registry(plugins, entry_points=entry_points)
    names = select_handlers(registry, handlers)
    limits = Limits(max_running_workflows=concurrency)
    async with open_engine(
        store,
        plugins=plugins,
        entry_points=entry_points,
        limits=limits,
        lease=lease,
        claim=True,
        handlers=names,
    ) as engine:
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            shown = ", ".join(names) if len(names) <= 8 else f"{len(names)} handlers"
            say(
                f"corral worker {engine.owner}: claiming up to {concurrency} execution(s) "
                f"from {engine.store.url} ({shown}); SIGTERM or Ctrl-C stops it"
            )
            task_status.started(engine)
            async for signum in signals:
                say(
                    f"corral worker: {signal.Signals(signum).name}: claiming nothing more; "
                    f"letting running work finish (up to {grace:g} s; again to stop now)"
                )
                break
            engine.stop_claiming()
            with trio.move_on_after(grace) as phase:
                async with trio.open_nursery() as nursery:

                    async def second_signal() -> None:
                        async for _ in signals:
                            phase.cancel()

                    nursery.start_soon(second_signal)
                    await engine.wait_idle()
                    nursery.cancel_scope.cancel()
            released = list(await engine.drain(0))
    say(
        f"corral worker: stopped; released {len(released)} unfinished execution(s) "
        "for other workers"
        if released
        else "corral worker: stopped"
    )
    return released
