"""ProgressRelay: ``ctx.progress()`` from ``cpu`` handlers' worker processes.

A ``cpu`` handler runs in a trio-parallel worker process that corral did not
spawn for it and cannot hand a pipe to, so its context arrives as plain data.
The relay is one Unix socket per engine, opened on the first ``cpu`` step that
has someone listening for progress: the step's context carries the socket's
address and a token, the worker connects on its first ``progress()`` call
(never, if the handler reports nothing) and writes one JSON line per call;
the engine reads them and reports them as the step's own progress. Lines
that arrive after their step has ended are dropped. Without Unix sockets
(Windows) progress from worker processes stays silent, as before.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import os
import socket
import tempfile
from collections.abc import Callable
from typing import Any

import trio

__all__ = ["ProgressRelay", "send_progress"]

Report = Callable[[float, float | None, str | None, str | None], None]
log = logging.getLogger("corral.engine")
_OFF = "-"  # the relay could not start: progress from workers stays silent

_MAX_LINE = 64 * 1024
_DRAIN_TIMEOUT = 2.0


class ProgressRelay:
    def __init__(self, nursery: trio.Nursery) -> None:
        self._nursery = nursery
        self._tokens = itertools.count(1)
        self._reports: dict[int, Report] = {}
        self._received: dict[int, int] = {}
        self._waiting: dict[int, tuple[int, trio.Event]] = {}
        self._address: str | None = None
        self._starting: trio.Event | None = None

    async def register(self, report: Report) -> tuple[str, int] | None:
        """Start relaying for one step: ``(address, token)``, or ``None``
        where Unix sockets are unavailable."""
        if not hasattr(socket, "AF_UNIX"):
            return None
        if self._address is None:
            if self._starting is None:
                starting = self._starting = trio.Event()
                try:
                    self._address = await self._nursery.start(self._serve)
                except OSError as exc:  # e.g. a socket path too long for AF_UNIX
                    log.warning("progress from cpu handlers is off: %s", exc)
                    self._address = _OFF
                finally:
                    if self._address is None:  # cancelled while starting: try again later
                        self._starting = None
                    starting.set()
            else:
                await self._starting.wait()
            if self._address is None or self._address == _OFF:
                return None
        if self._address == _OFF:
            return None
        token = next(self._tokens)
        self._reports[token] = report
        return self._address, token

    async def unregister(self, token: int, sent: int = 0) -> None:
        """Stop relaying for a step, once the ``sent`` lines its worker wrote
        have been read (at most ``_DRAIN_TIMEOUT`` later): the worker's result
        and its progress lines travel on different channels."""
        try:
            if sent and self._received.get(token, 0) < sent:
                self._waiting[token] = (sent, trio.Event())
                with trio.move_on_after(_DRAIN_TIMEOUT):
                    await self._waiting[token][1].wait()
        finally:  # even when cancelled: nothing of the step is kept
            self._waiting.pop(token, None)
            self._received.pop(token, None)
            self._reports.pop(token, None)

    async def _serve(self, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        with tempfile.TemporaryDirectory(prefix="corral-relay-") as tmp:
            path = os.path.join(tmp, "progress.sock")
            listener = trio.socket.socket(trio.socket.AF_UNIX, trio.socket.SOCK_STREAM)
            with listener:
                await listener.bind(path)
                listener.listen(64)
                task_status.started(path)
                async with trio.open_nursery() as nursery:
                    while True:
                        try:
                            conn, _ = await listener.accept()
                        except OSError as exc:  # out of descriptors ...: progress goes silent
                            log.warning("progress relay stopped: %s", exc)
                            self._address = _OFF
                            return
                        nursery.start_soon(self._read, conn)

    async def _read(self, conn: trio.socket.SocketType) -> None:
        buffer = b""
        with conn:
            while True:
                try:
                    data = await conn.recv(65536)
                except OSError:
                    return  # the worker went away
                if not data:
                    return
                buffer += data
                *lines, buffer = buffer.split(b"\n")
                if len(buffer) > _MAX_LINE:
                    return  # not a progress writer: stop listening to it
                for line in lines:
                    self._deliver(line)

    def _deliver(self, line: bytes) -> None:
        try:
            token, done, total, message, *more = json.loads(line)
            token = int(token)
            report = self._reports.get(token)
            if report is None:
                return
            unit = more[0] if more else None
            report(
                float(done),
                None if total is None else float(total),
                None if message is None else str(message),
                None if unit is None else str(unit)[:40],
            )
        except Exception:
            # Whatever a worker sends (huge numbers, deep nesting, garbage) is
            # dropped: progress is best effort and must never reach the engine.
            return
        count = self._received[token] = self._received.get(token, 0) + 1
        waiting = self._waiting.get(token)
        if waiting is not None and count >= waiting[0]:
            waiting[1].set()


_connections: dict[str, socket.socket] = {}


def send_progress(
    address: tuple[str, int],
    done: float,
    total: float | None,
    message: str | None,
    unit: str | None = None,
) -> bool:
    """Worker side: send one progress line (best effort, never raises);
    True when it was sent.

    One connection per relay address is kept for the worker process's life,
    since trio-parallel reuses workers across steps.
    """
    path, token = address
    try:
        text = None if message is None else str(message)
        counted = None if total is None else float(total)
        line = json.dumps([token, float(done), counted, text, None if unit is None else str(unit)])
    except (TypeError, ValueError, OverflowError):
        return False
    data = line.encode() + b"\n"
    for _ in range(2):  # one reconnect if a cached connection went stale
        sock = _connections.get(path)
        try:
            if sock is None:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                sock.settimeout(1.0)
                sock.connect(path)
                _connections[path] = sock
            sock.sendall(data)
            return True
        except OSError:
            _connections.pop(path, None)
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.close()
    return False
