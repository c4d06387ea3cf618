"""corral's HTTP/1.1 server (corral.server.httpserver) on a real socket,
spoken to byte for byte: keep-alive, pipelining, chunked bodies both ways,
100-continue, HEAD, the limits and time-outs, an app's failure, the
disconnect an app waits for, and a graceful stop."""

from __future__ import annotations

import json
from functools import partial
from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio

from corral.server.httpserver import MAX_HEAD_BYTES, Timeouts, serve_http

QUICK = Timeouts(keep_alive=0.5, head=0.5, body=0.5, graceful=2.0, linger=0.5)


class App:
    """An ASGI app whose answer the path chooses."""

    def __init__(self) -> None:
        self.disconnected = trio.Event()
        self.release = trio.Event()
        self.scopes: list[dict[str, Any]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.scopes.append(scope)
        path = scope["path"]
        if path == "/fail":
            raise RuntimeError("the app broke")
        if path == "/silent":
            return
        if path == "/stream":  # events: a head at once, pieces later, then the end
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await self.release.wait()
            await send({"type": "http.response.body", "body": b"one", "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            # (as Litestar's streams do: wait for the disconnect after the end)
            assert (await receive())["type"] == "http.disconnect"
            return
        if path == "/forever":  # a stream until the client leaves
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"x", "more_body": True})
            if scope["query_string"] == b"unread":  # one more, which the client never reads
                await trio.sleep(0.1)
                await send({"type": "http.response.body", "body": b"y", "more_body": True})
            message = await receive()
            while message["type"] != "http.disconnect":
                message = await receive()
            self.disconnected.set()
            return
        if path == "/injected":
            await send({"type": "http.response.start", "status": 200, "headers": [(b"x", b"a\r\nb: c")]})
            return
        if path == "/early":  # answers without reading the body (a 413)
            await _reply(send, 413, b"too large")
            return
        if path == "/slow":
            await self.release.wait()
        body = b""
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                self.disconnected.set()
                return
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        answer = {"method": scope["method"], "path": path, "query": scope["query_string"].decode()}
        answer["body"] = body.decode()
        await _reply(send, 200, json.dumps(answer).encode())


async def _reply(send: Any, status: int, body: bytes) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class Reader:
    """Responses read off a raw connection."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.buf = b""

    async def _more(self) -> None:
        chunk = await self.stream.receive_some(65536)
        if not chunk:
            raise EOFError
        self.buf += chunk

    async def head(self) -> tuple[int, dict[str, str]]:
        while b"\r\n\r\n" not in self.buf:
            await self._more()
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        return int(lines[0].split()[1]), headers

    async def line(self) -> bytes:
        while b"\r\n" not in self.buf:
            await self._more()
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line

    async def exactly(self, n: int) -> bytes:
        while len(self.buf) < n:
            await self._more()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    async def response(self, head_only: bool = False) -> tuple[int, dict[str, str], bytes]:
        status, headers = await self.head()
        if head_only:
            return status, headers, b""
        if headers.get("transfer-encoding") == "chunked":
            body = b""
            while size := int(await self.line(), 16):
                body += await self.exactly(size)
                await self.line()
            await self.line()
            return status, headers, body
        return status, headers, await self.exactly(int(headers.get("content-length", "0")))

    async def closed(self) -> bool:
        with trio.fail_after(5):
            try:
                while True:
                    await self._more()
            except (EOFError, trio.BrokenResourceError):
                return True


@pytest.fixture
async def served() -> AsyncIterator[tuple[App, int, trio.Event]]:
    app, stop = App(), trio.Event()
    async with trio.open_nursery() as nursery:
        urls = await nursery.start(partial(serve_http, timeouts=QUICK), app, "127.0.0.1", 0, stop)
        yield app, int(urls[0].rsplit(":", 1)[1]), stop
        stop.set()
        app.release.set()


async def _connect(port: int) -> tuple[trio.SocketStream, Reader]:
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    return stream, Reader(stream)


def _post(path: str, body: bytes, extra: str = "") -> bytes:
    head = f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n{extra}\r\n"
    return head.encode() + body


async def test_keep_alive_and_pipelining(served: Any) -> None:
    app, port, _ = served
    stream, reader = await _connect(port)
    await stream.send_all(_post("/a?x=1", b"first"))
    status, headers, body = await reader.response()
    assert status == 200 and json.loads(body) == {
        "method": "POST",
        "path": "/a",
        "query": "x=1",
        "body": "first",
    }
    assert "connection" not in headers and "date" in headers
    # two requests in one write: both answered, in order, on the same connection
    await stream.send_all(_post("/b", b"2") + b"GET /c%20d HTTP/1.1\r\nHost: x\r\n\r\n")
    assert json.loads((await reader.response())[2])["body"] == "2"
    assert json.loads((await reader.response())[2])["path"] == "/c d"
    assert app.scopes[-1]["raw_path"] == b"/c%20d" and app.scopes[-1]["http_version"] == "1.1"
    assert app.scopes[-1]["client"][0] == "127.0.0.1"
    await stream.aclose()


async def test_chunked_request_body_and_100_continue(served: Any) -> None:
    _, port, _ = served
    stream, reader = await _connect(port)
    head = "POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    await stream.send_all(head.encode() + b"3\r\nabc\r\n")
    await trio.sleep(0.05)
    await stream.send_all(b"2\r\nde\r\n0\r\n\r\n")
    assert json.loads((await reader.response())[2])["body"] == "abcde"
    # Expect: 100-continue (curl sends it for bodies over 1 KiB)
    await stream.send_all(
        b"POST /e HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n"
    )
    status, _ = await reader.head()
    assert status == 100
    await stream.send_all(b"body")
    assert json.loads((await reader.response())[2])["body"] == "body"
    await stream.aclose()


async def test_head_http10_and_a_streamed_answer(served: Any) -> None:
    app, port, _ = served
    stream, reader = await _connect(port)
    await stream.send_all(b"HEAD /h HTTP/1.1\r\nHost: x\r\n\r\n")
    status, headers, _ = await reader.response(head_only=True)
    assert status == 200 and int(headers["content-length"]) > 0
    # no body followed the head: the next answer is the next request's
    await stream.send_all(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
    status, headers = await reader.head()  # the head comes before any event
    assert status == 200 and headers["transfer-encoding"] == "chunked"
    app.release.set()
    assert await reader.line() == b"3" and await reader.exactly(5) == b"one\r\n"
    assert await reader.line() == b"0" and await reader.line() == b""
    await stream.send_all(b"GET /after HTTP/1.1\r\nHost: x\r\n\r\n")  # still kept alive
    assert (await reader.response())[0] == 200
    await stream.aclose()
    # HTTP/1.0: answered, then closed
    stream, reader = await _connect(port)
    await stream.send_all(b"GET /old HTTP/1.0\r\n\r\n")
    status, headers, _ = await reader.response()
    assert status == 200 and headers["connection"] == "close"
    assert await reader.closed()


@pytest.mark.parametrize("query", ["", "?unread"])
async def test_a_client_leaving_is_a_disconnect(
    served: Any, query: str, caplog: pytest.LogCaptureFixture
) -> None:
    app, port, _ = served
    stream, reader = await _connect(port)
    await stream.send_all(f"GET /forever{query} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    await reader.head()
    if query:  # it leaves with data unread: its close is a reset, not an end
        await trio.sleep(0.3)
    await stream.aclose()
    with trio.fail_after(5):
        await app.disconnected.wait()
    assert "failed" not in caplog.text


async def test_refusals_are_problem_documents(served: Any) -> None:
    _, port, _ = served
    cases = [
        (b"NOT HTTP AT ALL\r\n\r\n", 400),
        (b"GET /x HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * MAX_HEAD_BYTES + b"\r\n\r\n", 431),
        (b"POST /x HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
        # a request after a good one, its head too large, its body along
        (
            b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nPOST /x HTTP/1.1\r\nContent-Length: 3\r\n"
            + b"X-Big: " + b"a" * MAX_HEAD_BYTES + b"\r\n\r\nabc",
            431,
        ),
        # an upgrade is not made: answered, then closed
        (b"GET /u HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: h2c\r\n\r\n", 200),
    ]
    for request, expected in cases:
        stream, reader = await _connect(port)
        await stream.send_all(request)
        status, headers, body = await reader.response()
        if request.startswith(b"GET /a "):  # (the good one first)
            assert status == 200 and "connection" not in headers
            status, headers, body = await reader.response()
        assert status == expected, request[:40]
        assert headers["connection"] == "close"
        if expected != 200:
            assert headers["content-type"] == "application/problem+json"
            assert json.loads(body)["status"] == expected
        assert await reader.closed()


async def test_an_app_failing_is_a_500_and_a_silent_one_too(served: Any) -> None:
    _, port, _ = served
    for path in ("/fail", "/silent", "/injected"):
        stream, reader = await _connect(port)
        await stream.send_all(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        status, headers, body = await reader.response()
        assert status == 500 and "traceback" not in body.decode().lower()
        assert json.loads(body)["detail"] == "the server failed to answer this request"
        assert await reader.closed()


async def test_garbage_after_a_request_is_answered_after_it(served: Any) -> None:
    _, port, _ = served
    stream, reader = await _connect(port)
    await stream.send_all(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nNOT HTTP\r\n\r\n")
    assert (await reader.response())[0] == 200
    status, headers, _ = await reader.response()
    assert status == 400 and headers["connection"] == "close"
    assert await reader.closed()


async def test_an_answer_before_the_body_is_read(served: Any) -> None:
    _, port, _ = served
    stream, reader = await _connect(port)
    # a large body the app never reads: the answer still reaches the client
    await stream.send_all(_post("/early", b"x" * 100_000))
    status, headers, body = await reader.response()
    assert (status, body, headers["connection"]) == (413, b"too large", "close")
    assert await reader.closed()


async def test_silent_clients_are_let_go(served: Any) -> None:
    app, port, _ = served
    # idle between requests
    stream, reader = await _connect(port)
    await stream.send_all(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
    await reader.response()
    assert await reader.closed()
    # a head that never ends
    stream, reader = await _connect(port)
    await stream.send_all(b"GET /a HTTP/1.1\r\nHost: x\r\n")
    assert await reader.closed()
    # a body that stops arriving: 408, and the app hears a disconnect
    stream, reader = await _connect(port)
    await stream.send_all(b"POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
    status, _, body = await reader.response()
    assert status == 408 and json.loads(body)["status"] == 408
    with trio.fail_after(5):
        await app.disconnected.wait()


async def test_a_stop_lets_requests_in_flight_finish(served: Any) -> None:
    app, port, stop = served
    idle, idle_reader = await _connect(port)
    await idle.send_all(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
    await idle_reader.response()
    busy, busy_reader = await _connect(port)
    await busy.send_all(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
    await trio.sleep(0.05)
    stop.set()
    assert await idle_reader.closed()  # the idle connection: at once
    with pytest.raises(OSError):
        await trio.open_tcp_stream("127.0.0.1", port)  # no new connection
    app.release.set()
    status, headers, _ = await busy_reader.response()  # the busy one: answered, then closed
    assert status == 200 and headers["connection"] == "close"
    assert await busy_reader.closed()
