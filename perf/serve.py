"""The ``serve`` case (``python -m perf --serve``): ``corral serve`` under
load, against the floor of its own HTTP stack, measured in the same run.

``clients`` connections (200) kept alive submit a stored single-step
workflow (``POST /v1/executions {"workflow": "one"}``) as fast as they get
answers, for ``seconds`` (30; 5 at ``--quick``), from a load generator in its
own process (:mod:`perf.httpload`: raw Trio sockets, so that it takes as
little of the 2 cores as it can). Two servers, one after the other:

- **floor**: a bare Litestar app on corral's HTTP server
  (:mod:`corral.server.httpserver`) whose handler
  decodes the same body into a msgspec Struct and answers 202: what the HTTP
  stack alone costs;
- **corral**: ``corral serve`` on a SQLite store: each answer is an admitted,
  durable execution, run in the same process.

Figures per server (``floor_*``, ``corral_*``): ``rps`` (answers per second),
``p50_ms`` / ``p99_ms`` (request latency), ``errors`` (answers other than
202 and the documented 429/503, and broken connections), ``overloaded``
(429/503 answers), ``rss_mb`` (the server's peak RSS). For corral also
``e2e_rps``: executions *finished* per second, from the first request to
the last execution ending (the queue drained), and ``corral_over_floor``;
then the same clients paced at half corral's capacity (``paced_rate``), so
the latency of a server that is not overloaded: ``paced_p50_ms``,
``paced_p99_ms``, ``paced_errors``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

__all__ = ["CLIENTS", "run_serve_repeat"]

CLIENTS = 200
_BODY = '{"workflow": "one"}'

_FLOOR = r"""
import sys, msgspec, trio
from litestar import Litestar, post
from corral.server.httpserver import serve_http

class Submission(msgspec.Struct, forbid_unknown_fields=True):
    workflow: str

@post("/v1/executions", status_code=202)
async def submit(data: Submission) -> dict[str, str]:
    return {"id": "0", "status": "pending"}

async def main():
    async with trio.open_nursery() as nursery:
        urls = await nursery.start(serve_http, Litestar([submit], debug=False), "127.0.0.1", 0, trio.Event())
        print(f"listening on {urls[0]}", file=sys.stderr, flush=True)

trio.run(main)
"""

def _start(cmd: list[str], cwd: Path) -> tuple[subprocess.Popen[bytes], str]:
    """Start a server; its URL. Its stderr goes to a file (a pipe nobody
    reads would fill and stop the server mid-run)."""
    log = cwd / f"server-{time.monotonic_ns()}.err"
    with log.open("wb") as err:
        proc = subprocess.Popen(cmd, stderr=err, stdout=subprocess.DEVNULL, cwd=cwd)
    deadline = time.monotonic() + 60
    while b"listening on " not in (seen := log.read_bytes()):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"the server did not start: {seen.decode(errors='replace')[-600:]}")
        time.sleep(0.05)
    url = seen.decode().split("listening on ", 1)[1].split()[0]
    return proc, url


class _Peak:
    """The peak RSS of a process, sampled every 0.2 s in a thread."""

    def __init__(self, pid: int) -> None:
        import threading

        import psutil

        self._proc = psutil.Process(pid)
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            try:
                self.peak = max(self.peak, self._proc.memory_info().rss)
            except Exception:  # the process ended
                return

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.peak / 2**20


def _load(url: str, seconds: float, clients: int, cwd: Path, rate: float = 0) -> dict[str, Any]:
    host, _, port = url.removeprefix("http://").partition(":")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "perf.httpload",
            host,
            port,
            "/v1/executions",
            _BODY,
            str(clients),
            str(seconds),
            str(rate),
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 120,
        cwd=Path(__file__).resolve().parent.parent,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the load generator failed: {done.stderr[-600:]}")
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def _figures(prefix: str, got: dict[str, Any]) -> dict[str, float]:
    latencies = got["latencies_ms"]
    statuses = {int(k): v for k, v in got["statuses"].items()}
    overloaded = statuses.get(429, 0) + statuses.get(503, 0)
    wrong = sum(v for k, v in statuses.items() if k not in (202, 429, 503))
    pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))]  # noqa: E731
    return {
        f"{prefix}_rps": got["count"] / got["seconds"],
        f"{prefix}_p50_ms": pick(0.50) if latencies else float("nan"),
        f"{prefix}_p99_ms": pick(0.99) if latencies else float("nan"),
        f"{prefix}_errors": float(wrong + got["errors"]),
        f"{prefix}_overloaded": float(overloaded),
        f"{prefix}_requests": float(got["count"]),
    }


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def run_serve_repeat(seconds: float, timeout: float, clients: int = CLIENTS) -> dict[str, Any]:
    import httpx

    figures: dict[str, Any] = {"clients": clients, "seconds": seconds}
    with tempfile.TemporaryDirectory(prefix="corral-perf-serve-") as tmp:
        work = Path(tmp)
        proc, url = _start([sys.executable, "-c", _FLOOR], work)
        try:
            peak = _Peak(proc.pid)
            _load(url, min(2.0, seconds), clients, work)  # warm up
            figures.update(_figures("floor", _load(url, seconds, clients, work)))
            figures["floor_rss_mb"] = peak.stop()
        finally:
            _stop(proc)

        env_store = f"sqlite:///{work / 'serve.db'}"
        proc, url = _start(
            [sys.executable, "-m", "corral", "serve", "--port", "0", "--store", env_store],
            work,
        )
        try:
            spec = {"name": "one", "steps": [{"id": "a", "handler": "core.noop"}]}
            with httpx.Client(base_url=url, timeout=60) as client:
                client.post("/v1/workflows", json=spec).raise_for_status()
                peak = _Peak(proc.pid)
                _load(url, min(2.0, seconds), clients, work)  # warm up
                _drained(client, time.monotonic() + timeout)
                before = _succeeded(client)
                t0 = time.perf_counter()
                got = _load(url, seconds, clients, work)
                _drained(client, time.monotonic() + timeout)
                elapsed = time.perf_counter() - t0
                figures.update(_figures("corral", got))
                finished = _succeeded(client) - before
                figures["corral_e2e_rps"] = finished / elapsed
                figures["corral_drain_s"] = elapsed - got["seconds"]
                figures["corral_rss_mb"] = peak.stop()
                # below overload: half the capacity just measured, paced
                rate = round(figures["corral_rps"] / 2)
                paced = _figures("paced", _load(url, seconds, clients, work, rate))
                _drained(client, time.monotonic() + timeout)
                figures["paced_rate"] = rate
                figures.update({k: v for k, v in paced.items() if "_p" in k or "errors" in k})
        finally:
            _stop(proc)
    figures["corral_over_floor"] = figures["corral_rps"] / figures["floor_rps"]
    return figures


def _succeeded(client: Any) -> int:
    """Succeeded executions in the store (counted through the API's pages)."""
    from corral.core.status import SUCCEEDED

    count, cursor = 0, None
    while True:
        params: dict[str, Any] = {"status": SUCCEEDED, "limit": 1000}
        if cursor:
            params["cursor"] = cursor
        page = client.get("/v1/executions", params=params).json()
        count += len(page["executions"])
        cursor = page["next"]
        if not cursor:
            return count


def _drained(client: Any, deadline: float) -> None:
    """Wait until nothing is pending or running."""
    from corral.core.status import UNFINISHED

    while time.monotonic() < deadline:
        left = sum(
            len(client.get("/v1/executions", params={"status": s, "limit": 1}).json()["executions"])
            for s in UNFINISHED
        )
        if not left:
            return
        time.sleep(0.05)
    raise RuntimeError("executions were still unfinished at the case's timeout")


if __name__ == "__main__":  # a quick look: python -m perf.serve [SECONDS]
    print(json.dumps(run_serve_repeat(float(sys.argv[1]) if len(sys.argv) > 1 else 5, 600)))
