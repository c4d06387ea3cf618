"""A lean HTTP/1.1 server for an ASGI app, on Trio, in the caller's Trio run.

Why not Hypercorn (which served ``corral serve`` before): measured on the
2-core machine with a load generator beside it, Hypercorn's Trio worker
answered 1,240 requests/s with an ASGI app that does nothing (a task, locks
and several sends per request, h11 in pure Python); the same app on this
module answers ~20,000/s, and corral's API behind it well over the 2,000
submissions/s issue 16 asks for. No other ASGI server runs on Trio. Parsing
is not hand-written: ``httptools`` (llhttp, the parser uvicorn and Node.js
use) reads requests, so a malformed or smuggling request is refused by a
well-kept parser; this module only moves bytes, applies limits and speaks
ASGI 3 (``http`` scopes; no lifespan, no websockets: corral's app needs
neither).

What a demanding client meets: keep-alive and pipelining (answered in
order), chunked request bodies, ``Expect: 100-continue`` (curl sends it for
bodies over 1 KiB), ``HEAD``, chunked responses when the app gives no length
(Server-Sent Events), ``http.disconnect`` when the client goes away. What a
hostile one meets: a head over :data:`MAX_HEAD_BYTES` is a 431, a malformed
request a 400, a client silent too long (head, body or between requests)
is disconnected, an app's error a 500 problem document, never a traceback.
On stop: no new connections, idle ones close, requests in flight get
``graceful`` seconds.
"""

from __future__ import annotations

import contextlib
import email.utils
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any
from urllib.parse import unquote

import httptools
import msgspec
import trio

__all__ = ["MAX_HEAD_BYTES", "ASGIApp", "Timeouts", "serve_http"]

log = logging.getLogger("corral.server")

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
# (scope, receive, send); loosely typed: Litestar's own message types are narrower
ASGIApp = Callable[..., Awaitable[None]]
_GONE = (trio.BrokenResourceError, trio.ClosedResourceError, ConnectionError)  # the client left

#: A request's line and headers together may not be larger (431 beyond).
MAX_HEAD_BYTES = 64 * 1024
_READ = 64 * 1024
_REASONS = {s.value: s.phrase.encode() for s in HTTPStatus}
_NO_BODY = frozenset({204, 304})


@dataclass(frozen=True)
class Timeouts:
    """How long a client may stay silent (seconds)."""

    keep_alive: float = 5.0  # between requests on a kept-alive connection
    head: float = 10.0  # from a request's first byte to its last header
    body: float = 30.0  # between two pieces of a request's body
    graceful: float = 3.0  # requests in flight when the server stops
    linger: float = 2.0  # reading (and dropping) an unread body before closing


class _Request:
    """One request as the parser read it; ``chunks`` wait for the app."""

    __slots__ = (
        "chunks",
        "complete",
        "expect_continue",
        "head",
        "keep_alive",
        "method",
        "url",
        "version",
    )

    def __init__(self) -> None:
        self.head: list[tuple[bytes, bytes]] = []
        self.url = b""
        self.chunks: list[bytes] = []
        self.complete = False
        self.keep_alive = True
        self.expect_continue = False
        self.method = b"GET"
        self.version = "1.1"


class _Refused(Exception):
    """The request cannot be read: answer ``status`` and close."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


class _Date:
    """The ``date`` header, made once a second (formatting costs ~5 µs)."""

    def __init__(self) -> None:
        self._second = -1
        self._value = b""

    def __call__(self) -> bytes:
        now = int(time.time())
        if now != self._second:
            self._second = now
            self._value = email.utils.formatdate(now, usegmt=True).encode()
        return self._value


_date = _Date()


def _problem(status: int, detail: str) -> bytes:
    """A whole response with a problem document, for what the server refuses
    itself (the app's own errors are its own problem documents)."""
    body = msgspec.json.encode(
        {
            "type": "about:blank",
            "title": _REASONS.get(status, b"Error").decode(),
            "status": status,
            "detail": detail,
        }
    )
    return (
        b"HTTP/1.1 %d %s\r\ncontent-type: application/problem+json\r\ncontent-length: %d\r\n"
        b"date: %s\r\nconnection: close\r\n\r\n%s"
        % (status, _REASONS.get(status, b"Error"), len(body), _date(), body)
    )


class _Server:
    """What the connections share: the app, the limits, and whether to stop."""

    def __init__(self, app: ASGIApp, timeouts: Timeouts, server: tuple[str, int]) -> None:
        self.app = app
        self.timeouts = timeouts
        self.server = server
        self.stopping = False
        self.connections: set[_Connection] = set()
        self.all_closed = trio.Event()

    async def handle(self, stream: trio.SocketStream) -> None:
        connection = _Connection(self, stream)
        self.connections.add(connection)
        try:
            await connection.run()
        finally:
            self.connections.discard(connection)
            if self.stopping and not self.connections:
                self.all_closed.set()

    def stop(self) -> None:
        """Idle connections close now; busy ones after their answer."""
        self.stopping = True
        for connection in self.connections:
            if connection.idle and connection.building is None:
                connection.idle_scope.cancel()
        if not self.connections:
            self.all_closed.set()


class _Connection:
    """One client connection: read requests, run the app on each in turn."""

    def __init__(self, server: _Server, stream: trio.SocketStream) -> None:
        self.server = server
        self.stream = stream
        self.parser = httptools.HttpRequestParser(self)
        self.requests: deque[_Request] = deque()
        self.building: _Request | None = None  # its head being read
        self.reading = _Request()  # its body being read
        self.url = b""
        self.head_bytes = 0
        self.oversized = False
        self.eof = False
        self.broken: _Refused | None = None  # the parser refused what followed
        self.idle = False  # waiting for a next request
        self.idle_scope = trio.CancelScope()
        try:
            peer = stream.socket.getpeername()
            self.client: tuple[str, int] | None = (str(peer[0]), int(peer[1]))
        except (OSError, IndexError, TypeError):
            self.client = None

    # -- the parser's callbacks ------------------------------------------------
    def on_message_begin(self) -> None:
        self.building = _Request()
        self.url = b""
        self.head_bytes = 0

    def on_url(self, url: bytes) -> None:
        self.url += url
        self.head_bytes += len(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        assert self.building is not None
        self.head_bytes += len(name) + len(value) + 4
        name = name.lower()
        self.building.head.append((name, value))
        if name == b"expect" and value.lower() == b"100-continue":
            self.building.expect_continue = True

    def on_headers_complete(self) -> None:
        request = self.building
        assert request is not None
        request.method = self.parser.get_method()
        request.version = self.parser.get_http_version()
        request.keep_alive = self.parser.should_keep_alive()
        request.url = self.url
        self.building = None
        if self.head_bytes > MAX_HEAD_BYTES:
            self.oversized = True  # (never answered: refused, and nothing more is read)
            self.reading = _Request()  # (what its body would be is dropped)
            return
        self.requests.append(request)
        self.reading = request

    def on_body(self, body: bytes) -> None:
        self.reading.chunks.append(body)

    def on_message_complete(self) -> None:
        self.reading.complete = True

    # -- reading ---------------------------------------------------------------
    def _feed(self, data: bytes) -> None:
        """Parse ``data``. What cannot be read is kept in ``broken``: it is
        answered (and the connection closed) once the requests read before
        it are answered; nothing is read after it."""
        if self.broken is not None:
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            # no protocol switching here: the request is answered, then closed
            self.reading.complete = True
            self.reading.keep_alive = False
        except httptools.HttpParserError as exc:
            self.broken = _Refused(400, f"malformed HTTP request: {exc}")
        self.oversized |= self.building is not None and self.head_bytes > MAX_HEAD_BYTES
        if self.oversized and self.broken is None:
            limit = MAX_HEAD_BYTES
            self.broken = _Refused(431, f"the request's line and headers exceed {limit} bytes")

    async def read(self) -> None:
        try:
            data = await self.stream.receive_some(_READ)
        except _GONE:
            data = b""  # (a reset is as gone as a close)
        if data:
            self._feed(data)
        else:
            self.eof = True

    async def _next_request(self) -> _Request | None:
        """The next request whose head is read; None when the client left,
        stayed silent too long, or the server stops."""
        timeouts = self.server.timeouts
        deadline = trio.current_time() + timeouts.keep_alive
        started = False
        self.idle = True
        with self.idle_scope:  # (cancelled by a stop while no request began)
            while not self.requests:
                if self.broken is not None:
                    raise self.broken
                if self.eof or self.server.stopping:
                    break
                if self.building is not None and not started:
                    started = True  # a request began: its head has its own time
                    deadline = trio.current_time() + timeouts.head
                with trio.move_on_at(deadline) as silent:
                    await self.read()
                if silent.cancelled_caught:
                    break
        self.idle = False
        return self.requests[0] if self.requests else None

    # -- one exchange ----------------------------------------------------------
    async def run(self) -> None:
        try:
            while (request := await self._next_request()) is not None:
                if not await self._exchange(request):
                    break
                self.requests.popleft()
                self.idle_scope = trio.CancelScope()
        except _Refused as refused:
            await self.send_quietly(_problem(refused.status, refused.detail))
        except _GONE:
            pass  # the client went away
        finally:
            with trio.CancelScope(shield=True):
                await self.stream.aclose()

    async def send_quietly(self, data: bytes) -> None:
        with trio.move_on_after(self.server.timeouts.linger):
            with contextlib.suppress(*_GONE):
                await self.stream.send_all(data)

    async def _exchange(self, request: _Request) -> bool:
        """Run the app on ``request``; whether the connection stays open."""
        exchange = _Exchange(self, request)
        try:
            await self.server.app(exchange.scope(), exchange.receive, exchange.send)
        except _Refused:
            raise
        except Exception:
            log.exception("the HTTP app failed on %s", request.method.decode(errors="replace"))
            if not exchange.started:
                await self.send_quietly(_problem(500, "the server failed to answer this request"))
            return False
        if not exchange.started:
            log.error("the HTTP app returned without an answer")
            await self.send_quietly(_problem(500, "the server failed to answer this request"))
            return False
        if exchange.abandoned or not exchange.finished:
            return False
        if not request.complete:
            await self._linger()
            return False
        return exchange.keep_alive and not self.server.stopping

    async def _linger(self) -> None:
        """The app answered without reading the whole body (a 413): say so
        to the client before closing, and read what it still sends for a
        moment, so that closing does not reset the connection before the
        client reads the answer."""
        try:
            await self.stream.send_eof()
            with trio.move_on_after(self.server.timeouts.linger):
                while await self.stream.receive_some(_READ):
                    pass
        except _GONE:
            pass


class _Exchange:
    """One request's ASGI ``receive`` and ``send``."""

    __slots__ = (
        "abandoned",
        "chunked",
        "connection",
        "delivered",
        "finished",
        "head",
        "keep_alive",
        "request",
        "started",
        "waiting",
    )

    def __init__(self, connection: _Connection, request: _Request) -> None:
        self.connection = connection
        self.request = request
        self.abandoned = False  # the client left or was refused: the app's answer is dropped
        self.started = False
        self.waiting: trio.CancelScope | None = None  # a receive waiting for the end
        self.finished = False
        self.delivered = False  # the whole body given to the app
        self.chunked = False
        self.keep_alive = request.keep_alive
        self.head = b""

    def scope(self) -> dict[str, Any]:
        request = self.request
        raw_path, _, query = request.url.partition(b"?")
        try:
            path = raw_path.decode("ascii")
        except UnicodeDecodeError:
            raise _Refused(400, "the request's target is not ASCII") from None
        connection = self.connection
        return {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": request.version,
            "method": request.method.decode("ascii"),
            "scheme": "http",
            "path": unquote(path) if "%" in path else path,
            "raw_path": raw_path,
            "query_string": query,
            "root_path": "",
            "headers": request.head,
            "client": connection.client,
            "server": connection.server.server,
            "state": {},
        }

    async def receive(self) -> Message:
        request = self.request
        connection = self.connection
        if self.delivered or self.finished or self.abandoned:
            await self._wait_disconnect()
            return {"type": "http.disconnect"}
        try:
            if request.expect_continue and not request.chunks and not request.complete:
                request.expect_continue = False
                if not self.started:
                    await connection.stream.send_all(b"HTTP/1.1 100 Continue\r\n\r\n")
            while not request.chunks and not request.complete:
                if connection.broken is not None:
                    raise connection.broken
                if connection.eof:
                    return await self._abandon()
                with trio.move_on_after(connection.server.timeouts.body) as silent:
                    await connection.read()
                if silent.cancelled_caught:
                    raise _Refused(408, "the request's body stopped arriving")
        except _Refused as refused:
            return await self._abandon(_problem(refused.status, refused.detail))
        except _GONE:
            return await self._abandon()
        body = b"".join(request.chunks)
        request.chunks.clear()
        self.delivered = request.complete
        return {"type": "http.request", "body": body, "more_body": not request.complete}

    async def _abandon(self, answer: bytes = b"") -> Message:
        """Give up on this exchange (the client left, or its body cannot be
        read: ``answer`` is what it is told): the app hears a disconnect and
        what it answers is dropped."""
        if answer and not self.started:
            await self.connection.send_quietly(answer)
        self.abandoned = True
        self.started = True
        return {"type": "http.disconnect"}

    async def _wait_disconnect(self) -> None:
        """Return once the response is finished or the client closes the
        connection (ASGI's ``http.disconnect``: a streaming response waits
        for it). What the client sends meanwhile (a pipelined request) is
        read and kept for later; once a next request waits, reading stops."""
        connection = self.connection
        with trio.CancelScope() as self.waiting:
            while (
                not self.finished
                and not connection.eof
                and len(connection.requests) < 2
                and connection.broken is None
            ):
                await connection.read()
            if not connection.eof and not self.finished:
                await trio.sleep_forever()
        self.waiting = None

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if self.abandoned:
            return
        if kind == "http.response.start":
            if self.started:
                raise RuntimeError("the response has already started")
            self._start(int(message["status"]), message.get("headers", ()))
            self.started = True
            if self.chunked:  # a stream (events): its head now, not with its first event
                await self._write(b"")

        elif kind == "http.response.body":
            if not self.started or self.finished:
                raise RuntimeError("a body sent outside a response")
            body = bytes(message.get("body", b""))
            more = bool(message.get("more_body", False))
            if self.request.method == b"HEAD":
                body = b""
            if self.chunked:
                data = b"%x\r\n%s\r\n" % (len(body), body) if body else b""
                if not more:
                    data += b"0\r\n\r\n"
            else:
                data = body
            self.finished = not more
            if self.finished and self.waiting is not None:
                self.waiting.cancel()
            await self._write(data)
        else:
            raise RuntimeError(f"unexpected ASGI message {kind!r}")

    async def _write(self, data: bytes) -> None:
        """Send ``data`` after the head if it still waits (one send for a
        whole small response)."""
        data, self.head = self.head + data, b""
        if data:
            try:
                await self.connection.stream.send_all(data)
            except _GONE:
                self.abandoned = True  # the client left: as other servers, no error for the app

    def _start(self, status: int, headers: Any) -> None:
        request = self.request
        lines = [b"HTTP/1.1 %d %s\r\n" % (status, _REASONS.get(status, b"Unknown"))]
        length = False
        for name, value in headers:
            lowered = bytes(name).lower()
            if lowered == b"content-length":
                length = True
            elif lowered == b"connection":
                if bytes(value).lower() == b"close":
                    self.keep_alive = False
                continue  # (written below, once)
            elif lowered == b"transfer-encoding":
                continue  # (the server frames the body itself)
            if b"\n" in value or b"\r" in value:  # (a header must not make more headers)
                raise RuntimeError(f"a line break in the answer's header {lowered!r}")
            lines.append(b"%s: %s\r\n" % (name, value))
        bodiless = request.method == b"HEAD" or status in _NO_BODY or status < 200
        if not length and not bodiless:
            if request.version == "1.1":
                self.chunked = True
                lines.append(b"transfer-encoding: chunked\r\n")
            else:
                self.keep_alive = False  # HTTP/1.0: the end of the body is the close
        if not request.complete or self.connection.server.stopping:
            self.keep_alive = False
        if not self.keep_alive:
            lines.append(b"connection: close\r\n")
        elif request.version == "1.0":
            lines.append(b"connection: keep-alive\r\n")
        lines.append(b"date: %s\r\n\r\n" % _date())
        self.head = b"".join(lines)


async def serve_http(
    app: ASGIApp,
    host: str,
    port: int,
    stop: trio.Event,
    *,
    timeouts: Timeouts = Timeouts(),
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``app`` on ``host:port`` (0: a free port) until ``stop`` is
    set, then close gracefully (see the module's docstring). Reports the
    URLs it listens on through ``task_status``."""
    listeners = await trio.open_tcp_listeners(port, host=host)
    bound = listeners[0].socket.getsockname()
    server = _Server(app, timeouts, (str(bound[0]), int(bound[1])))
    urls = []
    for listener in listeners:
        address = listener.socket.getsockname()
        name = f"[{address[0]}]" if ":" in str(address[0]) else str(address[0])
        urls.append(f"http://{name}:{address[1]}")
    async with trio.open_nursery() as connections:
        accepting = trio.CancelScope()

        async def accept() -> None:
            with accepting:
                await trio.serve_listeners(server.handle, listeners, handler_nursery=connections)

        connections.start_soon(accept)
        task_status.started(urls)
        await stop.wait()
        accepting.cancel()
        server.stop()
        with trio.move_on_after(timeouts.graceful):
            if server.connections:
                await server.all_closed.wait()
        connections.cancel_scope.cancel()
