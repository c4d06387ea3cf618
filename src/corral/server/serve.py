"""The server's lifetime: open the engine, serve the API
(:mod:`.httpserver`) in the same Trio run, and on SIGTERM or SIGINT drain as a
worker does: stop listening (requests in flight get a few seconds), let the
running executions finish for up to ``grace`` seconds (a second signal cuts
that short), then stop the rest without recording anything; once their lease
expires the next engine on the store resumes them where they stopped."""

from __future__ import annotations

import signal
from collections.abc import Callable
from typing import Any

import trio

from corral.core.errors import ConfigError
from corral.core.model import Limits
from corral.engine.opening import open_engine
from corral.server.auth import Tokens, check_bind
from corral.server.httpserver import serve_http
from corral.server.lane import MAX_BODY_BYTES, SubmitLane

__all__ = ["serve"]


async def serve(
    store: Any,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    tokens: Tokens,
    run_here: bool = True,
    grace: float = 30.0,
    max_body: int = MAX_BODY_BYTES,
    limits: Limits | None = None,
    ready: Callable[[str], None] | None = None,
    say: Callable[[str], None] | None = None,
    stop: trio.Event | None = None,
) -> list[str]:
    """Serve until SIGTERM/SIGINT (or ``stop`` is set), then drain; the ids
    of the executions released unfinished. ``ready(url)`` is called once the
    port listens; ``say`` hears what the drain does; ``limits``: the
    engine's (a full admission queue answers 503 with ``Retry-After``); a request
    body over ``max_body`` bytes is refused (413). With ``run_here=False``
    the server only enqueues executions: ``corral worker`` processes on the
    same store run them (their events are not seen by this server's streams)."""
    from corral.server.app import make_app
    from corral.server.events import EventHub

    if grace < 0:
        raise ConfigError(f"--grace must be 0 or more seconds, got {grace}")
    check_bind(host, tokens)
    say = say or (lambda _message: None)
    stop = stop if stop is not None else trio.Event()
    hurry = trio.Event()
    async with (
        open_engine(store, run_here=run_here, limits=limits) as engine,
        trio.open_nursery() as nursery,
    ):
        hub = EventHub()
        nursery.start_soon(hub.run, engine)
        routes = make_app(engine, tokens, hub, max_body=max_body)
        app = SubmitLane(routes, engine, tokens, routes.state.plans, max_body=max_body)

        async def signals() -> None:
            with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as received:
                async for signum in received:
                    if stop.is_set():
                        hurry.set()
                        return
                    say(
                        f"corral serve: {signal.Signals(signum).name}: taking no more requests; "
                        f"letting running work finish (up to {grace:g} s; again to stop now)"
                    )
                    stop.set()

        nursery.start_soon(signals)
        try:
            binds = await nursery.start(serve_http, app, host, port, stop)
        except OSError as exc:  # (a port in use, an unknown host: the user's to fix)
            why = exc.strerror or str(exc)
            raise ConfigError(f"cannot listen on {host}:{port}: {why}") from None
        if ready is not None:
            ready(binds[0] if binds else f"http://{host}:{port}")
        await stop.wait()
        engine.stop_claiming()
        with trio.move_on_after(grace) as phase:
            async with trio.open_nursery() as waiting:

                async def cut_short() -> None:
                    await hurry.wait()
                    phase.cancel()

                waiting.start_soon(cut_short)
                await engine.wait_idle()
                waiting.cancel_scope.cancel()
        # Not released (a client's queue): kept until the leases expire, so the
        # next engine on the store adopts them, workers or not.
        released = list(await engine.drain(0, release=False))
        nursery.cancel_scope.cancel()
    say(
        f"corral serve: stopped; released {len(released)} unfinished execution(s): the next "
        "engine on this store (corral serve, a worker, `corral resume --all`) resumes them "
        "once their lease expires"
        if released
        else "corral serve: stopped"
    )
    return released
