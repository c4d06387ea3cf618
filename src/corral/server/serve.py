"""The server's lifetime: open the engine, serve the API with Hypercorn's
Trio worker in the same Trio run, and on SIGTERM or SIGINT stop taking
requests and let the running work finish (the engine closes gracefully)."""

from __future__ import annotations

import signal
from collections.abc import Callable
from typing import Any

import trio

import corral
from corral.server.auth import Tokens, check_bind

__all__ = ["serve"]


async def serve(
    store: Any,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    tokens: Tokens,
    run_here: bool = True,
    ready: Callable[[str], None] | None = None,
    stop: trio.Event | None = None,
) -> None:
    """Serve until SIGTERM/SIGINT (or ``stop`` is set); ``ready(url)`` is
    called once the port listens. With ``run_here=False`` the server only
    enqueues executions: ``corral worker`` processes on the same store run
    them (their events are not seen by this server's streams)."""
    import hypercorn.config
    import hypercorn.trio

    from corral.server.app import make_app
    from corral.server.events import EventHub

    check_bind(host, tokens)
    stop = stop if stop is not None else trio.Event()
    config = hypercorn.config.Config()
    config.bind = [f"{host}:{port}"]
    config.accesslog = None
    config.errorlog = None
    async with (
        corral.open_engine(store, run_here=run_here) as engine,
        trio.open_nursery() as nursery,
    ):
        hub = EventHub()
        nursery.start_soon(hub.run, engine)
        app = make_app(engine, tokens, hub)

        async def signals() -> None:
            with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as received:
                async for _ in received:
                    stop.set()
                    return

        nursery.start_soon(signals)
        binds = await nursery.start(_serve_app, app, config, stop)
        if ready is not None:
            ready(binds[0] if binds else f"http://{host}:{port}")
        await stop.wait()
        nursery.cancel_scope.cancel()


async def _serve_app(
    app: Any, config: Any, stop: trio.Event, *, task_status: Any = trio.TASK_STATUS_IGNORED
) -> None:
    import hypercorn.trio

    await hypercorn.trio.serve(app, config, shutdown_trigger=stop.wait, task_status=task_status)
