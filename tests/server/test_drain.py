"""``corral serve`` drains on SIGTERM as a worker does: no more requests,
running work finishes within ``--grace``, what is left is released for the
next engine (not cancelled, not failed)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import trio

import corral

SLEEP = "name: nap\nsteps:\n  - {{id: s, handler: core.sleep, params: {{seconds: {}}}}}\n"


async def _start(db: Path, grace: str) -> tuple[trio.Process, str, list[bytes]]:
    proc = await trio.lowlevel.open_process(
        [
            sys.executable,
            "-m",
            "corral",
            "serve",
            "--port",
            "0",
            "--grace",
            grace,
            "--store",
            f"sqlite:///{db}",
        ],
        stderr=subprocess.PIPE,
    )
    assert proc.stderr is not None
    seen: list[bytes] = []
    with trio.fail_after(60):
        while b"listening on " not in b"".join(seen):
            chunk = await proc.stderr.receive_some()
            assert chunk, b"".join(seen).decode()
            seen.append(chunk)
    text = b"".join(seen).decode()
    url = text.split("listening on ", 1)[1].split()[0]
    return proc, url, seen


async def _run(url: str, seconds: float) -> str:
    async with httpx.AsyncClient() as client:
        r = await client.post(
            f"{url}/v1/workflows",
            content=SLEEP.format(seconds),
            headers={"content-type": "application/yaml"},
        )
        assert r.status_code == 201, r.text
        sub = (await client.post(f"{url}/v1/executions", json={"workflow": "nap"})).json()
        with trio.fail_after(30):
            while (await client.get(f"{url}/v1/executions/{sub['id']}")).json()["status"] != (
                corral.core.status.RUNNING
            ):
                await trio.sleep(0.02)
    return str(sub["id"])


async def _stop(proc: trio.Process, seen: list[bytes]) -> str:
    proc.send_signal(signal.SIGTERM)
    assert proc.stderr is not None
    with trio.fail_after(60):
        async for chunk in proc.stderr:
            seen.append(chunk)
        assert await proc.wait() == 0
    return b"".join(seen).decode()


async def _record(db: Path, execution: str) -> corral.ExecutionRecord:
    async with corral.open_engine(f"sqlite:///{db}", run_here=False) as engine:
        return await engine.get(execution)


async def test_sigterm_lets_running_work_finish(tmp_path: Path) -> None:
    proc, url, seen = await _start(tmp_path / "s.db", "30s")
    execution = await _run(url, 1.0)
    said = await _stop(proc, seen)
    assert "SIGTERM: taking no more requests" in said and "corral serve: stopped" in said
    assert "Traceback" not in said
    assert (await _record(tmp_path / "s.db", execution)).status == corral.core.status.SUCCEEDED


async def test_what_outlasts_the_grace_is_released_not_lost(tmp_path: Path) -> None:
    proc, url, seen = await _start(tmp_path / "s.db", "0.2s")
    execution = await _run(url, 60)
    said = await _stop(proc, seen)
    assert "released 1 unfinished execution(s)" in said
    record = await _record(tmp_path / "s.db", execution)
    assert record.status in corral.core.status.UNFINISHED and record.lease_expires_at is not None
    # once its lease has expired (the clock moved past it), the next engine
    # on the store takes it over, with no worker anywhere
    later = time.time() + 120
    async with corral.open_engine(f"sqlite:///{tmp_path / 's.db'}", clock=lambda: later) as engine:
        assert engine.resumed == 1
        await engine.cancel(execution)
