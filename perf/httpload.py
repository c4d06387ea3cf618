"""A small HTTP/1.1 load generator for the ``serve`` case: ``clients``
connections kept alive, each sending one request, reading its answer, and
sending the next, for ``seconds``. Raw Trio sockets, no HTTP library: on a
2-core machine the generator shares the CPU with the server it loads, so
it must cost as little as possible per request.

``python -m perf.httpload HOST PORT PATH BODY CLIENTS SECONDS [RATE]`` prints one
JSON object: ``{"count", "statuses": {code: n}, "errors", "reconnects",
"latencies_ms": [sorted], "seconds"}``.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import trio

__all__ = ["load"]


async def _exchange(stream: trio.SocketStream, request: bytes, buf: bytes) -> tuple[int, bytes]:
    """Send one request, read its answer: (status, what was read beyond it)."""
    await stream.send_all(request)
    while b"\r\n\r\n" not in buf:
        chunk = await stream.receive_some(65536)
        if not chunk:
            raise EOFError
        buf += chunk
    head, _, buf = buf.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(buf) < length:
        chunk = await stream.receive_some(65536)
        if not chunk:
            raise EOFError
        buf += chunk
    return status, buf[length:]


async def _client(
    host: str,
    port: int,
    request: bytes,
    until: float,
    out: dict[str, Any],
    gap: float,
    offset: float,
) -> None:
    stream: trio.SocketStream | None = None
    due = time.perf_counter() + offset  # (clients staggered: no bursts)
    buf = b""
    try:
        while time.perf_counter() < until:
            if gap:  # paced: one request every `gap` seconds (at once when behind)
                await trio.sleep(max(0.0, due - time.perf_counter()))
                due += gap
            if stream is None:
                stream = await trio.open_tcp_stream(host, port)
                buf = b""
            t0 = time.perf_counter()
            try:
                status, buf = await _exchange(stream, request, buf)
            except (EOFError, trio.BrokenResourceError):
                # the server closed a kept-alive connection (servers may, e.g.
                # after N requests or an idle time): open another, as a browser would
                out["reconnects"] += 1
                await stream.aclose()
                stream = None
                continue
            out["latencies"].append(time.perf_counter() - t0)
            out["statuses"][status] = out["statuses"].get(status, 0) + 1
    except (OSError, ValueError, IndexError):
        out["errors"] += 1
    finally:
        if stream is not None:
            await stream.aclose()


async def load(
    host: str, port: int, path: str, body: bytes, clients: int, seconds: float, rate: float = 0
) -> dict[str, Any]:
    """``rate`` > 0: requests per second in all (paced, below the server's
    capacity: the latency of a server that is not overloaded); 0: as fast as
    answers come (its capacity)."""
    request = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    out: dict[str, Any] = {"statuses": {}, "errors": 0, "reconnects": 0, "latencies": []}
    t0 = time.perf_counter()
    until = t0 + seconds
    async with trio.open_nursery() as nursery:
        gap = clients / rate if rate else 0.0
        for i in range(clients):
            nursery.start_soon(_client, host, port, request, until, out, gap, gap * i / clients)

    elapsed = time.perf_counter() - t0
    latencies = sorted(out["latencies"])
    return {
        "count": len(latencies),
        "statuses": out["statuses"],
        "errors": out["errors"],
        "reconnects": out["reconnects"],
        "seconds": elapsed,
        "latencies_ms": [x * 1000 for x in latencies],
    }


def main() -> None:
    host, port, path, body, clients, seconds = sys.argv[1:7]
    rate = float(sys.argv[7]) if len(sys.argv) > 7 else 0.0
    result = trio.run(
        load, host, int(port), path, body.encode(), int(clients), float(seconds), rate
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
