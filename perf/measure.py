"""The measurements, written once against the common system interface.

corral and the baselines expose the same five coroutines (``submit``,
``submit_blockers``, ``result``, ``cancel``, ``abort``), and every figure is
taken by the code below, with the same clocks at the same points, whichever
system is under test. That is what makes a ratio between them meaningful.
"""

from __future__ import annotations

import time
from typing import Any, Protocol

import trio

from perf.stats import current_rss_mb, percentile
from perf.workloads import BLOCKER, CLOCK, WORKLOADS, expected

__all__ = ["CheckFailed", "System", "cancel_case", "idle_case", "inflight_case", "throughput_case"]


class CheckFailed(AssertionError):
    """A workflow returned a wrong result: the run is invalid, not slow."""


class System(Protocol):
    async def submit(self, workload: str, i: int) -> Any: ...

    async def submit_blockers(self, width: int, i: int) -> Any: ...

    async def result(self, handle: Any) -> int: ...

    async def cancel(self, handle: Any) -> str: ...

    async def abort(self) -> None: ...

    def describe(self) -> dict[str, Any]: ...


async def _check(system: System, workload: str, i: int, handle: Any) -> None:
    got = await system.result(handle)
    want = expected(workload, i)
    if got != want:
        raise CheckFailed(f"{workload} workflow i={i}: result {got!r}, expected {want!r}")


def _ms(seconds: float) -> float:
    return round(seconds * 1000.0, 4)


async def _warm(system: System, workload: str, count: int) -> None:
    """Run a few workflows first so plan caches, imports and allocators are warm.

    Warm-up inputs are negative, so they never collide with measured ones.
    """
    handles = [(-1 - j, await system.submit(workload, -1 - j)) for j in range(count)]
    for i, handle in handles:
        await _check(system, workload, i, handle)
    CLOCK.clear()


async def throughput_case(system: System, workload: str, n: int, warmup: int) -> dict[str, Any]:
    """N workflows submitted back to back, then each awaited and checked.

    The clock runs from the first ``submit`` call to the last result checked.
    Start latency is, per workflow, from just before its ``submit`` call to
    its first step's handler starting.
    """
    await _warm(system, workload, warmup)
    submitted_at = [0.0] * n
    handles = []
    t0 = time.perf_counter()
    for i in range(n):
        submitted_at[i] = time.perf_counter()
        handles.append(await system.submit(workload, i))
    t_submitted = time.perf_counter()
    for i, handle in enumerate(handles):
        await _check(system, workload, i, handle)
    t1 = time.perf_counter()
    missing = [i for i in range(n) if i not in CLOCK.starts]
    if missing:
        raise CheckFailed(f"{len(missing)} workflows never stamped a start (e.g. i={missing[0]})")
    latencies = [CLOCK.starts[i] - submitted_at[i] for i in range(n)]
    elapsed = t1 - t0
    return {
        "workflows_per_s": n / elapsed,
        "steps_per_s": n * _steps(workload) / elapsed,
        "elapsed_s": elapsed,
        "submit_all_ms": _ms(t_submitted - t0),
        "start_p50_ms": _ms(percentile(latencies, 50)),
        "start_p99_ms": _ms(percentile(latencies, 99)),
        "checked": n,
    }


def _steps(workload: str) -> int:
    return len(WORKLOADS[workload].steps)


async def idle_case(system: System, count: int, warmup: int, gap: float) -> dict[str, Any]:
    """``count`` single workflows one at a time: submit, wait, pause ``gap`` s.

    The pause lets any write-behind work finish, so each submission meets an
    idle engine: this is the latency a lone request sees.
    """
    await _warm(system, "single", warmup)
    latencies = []
    for i in range(count):
        await trio.sleep(gap)
        t = time.perf_counter()
        handle = await system.submit("single", i)
        await _check(system, "single", i, handle)
        latencies.append(CLOCK.starts[i] - t)
    return {
        "idle_start_p50_ms": _ms(percentile(latencies, 50)),
        "idle_start_p99_ms": _ms(percentile(latencies, 99)),
        "idle_start_max_ms": _ms(max(latencies)),
        "checked": count,
    }


async def inflight_case(
    system: System, n: int, warmup: int, settle: float, rss_after_imports: float
) -> dict[str, Any]:
    """RSS with ``n`` single workflows whose step sleeps, all running at once.

    Sampled once every step is inside its sleep and again after ``settle``
    seconds (write-behind done); the larger is reported. The system is then
    aborted (everything cancelled).
    """
    await _warm(system, "single", warmup)
    rss_idle = current_rss_mb()
    BLOCKER.arm(n)
    t0 = time.perf_counter()
    for i in range(n):
        await system.submit_blockers(1, i)
    with trio.fail_after(max(60.0, n / 50)):
        await BLOCKER.all_running.wait()
    ramp = time.perf_counter() - t0
    rss_running = current_rss_mb()
    await trio.sleep(settle)
    rss_settled = current_rss_mb()
    if BLOCKER.running != n:
        raise CheckFailed(f"in flight: {BLOCKER.running} steps running, expected {n}")
    rss = max(rss_running, rss_settled)
    await system.abort()
    return {
        "inflight_rss_mb": rss,
        "inflight_delta_mb": rss - rss_idle,
        "inflight_kb_per_workflow": (rss - rss_idle) * 1024 / n,
        "idle_rss_mb": rss_idle,
        "rss_after_imports_mb": rss_after_imports,
        "ramp_s": ramp,
        "raw": {"rss_all_running_mb": rss_running, "rss_settled_mb": rss_settled},
        "checked": n,
    }


async def cancel_case(system: System, width: int, warmup_width: int) -> dict[str, Any]:
    """One workflow with ``width`` parallel sleeping steps; time ``cancel`` until
    the execution is terminal and every step has ended."""
    for attempt, w in (("warm-up", warmup_width), ("measured", width)):
        BLOCKER.arm(w)
        handle = await system.submit_blockers(w, 10**9 + w)
        with trio.fail_after(max(60.0, w / 20)):
            await BLOCKER.all_running.wait()
        t0 = time.perf_counter()
        status = await system.cancel(handle)
        elapsed = time.perf_counter() - t0
        if status != "cancelled" or BLOCKER.ended != w:
            raise CheckFailed(
                f"cancel ({attempt}): status {status!r}, {BLOCKER.ended} of {w} steps ended"
            )
    return {"cancel_ms": _ms(elapsed), "checked": width}
