"""Soak (issue 20): steady load for minutes; does the engine's RSS grow?

One fresh process (``python -m perf.soak SECONDS DIR TIMEOUT``), a SQLite
store in a temporary directory, the engine with ``retention=60`` (as a
long-lived deployment prunes finished executions; without it the database
grows by design, and that is the store's size, not a leak). A pacer submits
single-step workflows (``core.sleep`` of 0.5 s) at a steady ``RATE`` per
second, so about ``RATE / 2`` are in flight at any moment, for ``SECONDS``.
RSS is sampled every second.

Figures: ``rss_start_mb`` (at the end of the first tenth, the warm-up),
``rss_end_mb``, ``rss_max_mb``, ``slope_mb_per_min`` (least squares over
the samples after the warm-up: what the target is about),
``slope_late_mb_per_min`` (the second half alone: settling or growing),
``sqlite_*`` (``sqlite3_memory_used()``: SQLite's own share), ``submitted``,
``behind_s`` (how far the pacer fell behind its schedule at the end: the
load was what it says only when this is small), ``checked`` (every
submission seen finished ``succeeded``, counted by the engine's metrics).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import trio

from perf._case import print_result, run_in_child

RATE = 1000  # submissions per second
NAP = 0.5  # each workflow's one step, seconds


def _rss_mb() -> float:
    import psutil

    return float(psutil.Process().memory_info().rss) / 2**20


def _sqlite_reader() -> Any:
    """``sqlite3_memory_used()`` of the SQLite library this Python uses (page
    caches, statements, schema): what of the RSS is SQLite's. ``None`` where
    the library's symbols cannot be reached."""
    try:
        import _sqlite3
        import ctypes

        used = ctypes.CDLL(_sqlite3.__file__).sqlite3_memory_used
        used.restype = ctypes.c_int64
        used()
    except (ImportError, OSError, AttributeError):
        return None
    return lambda: float(used()) / 2**20


def slope_per_minute(samples: list[tuple[float, float]]) -> float:
    """Least-squares slope of ``(seconds, MB)`` samples, in MB per minute."""
    n = len(samples)
    if n < 2:
        return 0.0
    mt = sum(t for t, _ in samples) / n
    mv = sum(v for _, v in samples) / n
    var = sum((t - mt) ** 2 for t, _ in samples)
    if not var:
        return 0.0
    cov = sum((t - mt) * (v - mv) for t, v in samples)
    return cov / var * 60.0


async def _measure(seconds: float, tmp: Path) -> dict[str, Any]:
    import corral

    wf = corral.Workflow("soak")
    wf.step("s", "core.sleep", seconds=NAP)
    url = f"sqlite:///{tmp / 'soak.db'}"
    samples: list[tuple[float, float]] = []
    sqlite_mb = _sqlite_reader()
    sqlite_samples: list[tuple[float, float]] = []
    submitted = 0
    async with corral.open_engine(url, entry_points=False, retention=60.0) as engine:
        t0 = trio.current_time()

        async def sample() -> None:
            while True:
                samples.append((trio.current_time() - t0, _rss_mb()))
                if sqlite_mb is not None:
                    sqlite_samples.append((trio.current_time() - t0, sqlite_mb()))
                await trio.sleep(1.0)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(sample)
            tick = 0.01  # a batch every 10 ms
            per_tick = max(1, round(RATE * tick))
            deadline = t0 + seconds
            next_at = t0
            while next_at < deadline:
                for _ in range(per_tick):
                    await engine.submit(wf)
                submitted += per_tick
                next_at += tick
                await trio.sleep_until(next_at)
            behind = trio.current_time() - next_at
            nursery.cancel_scope.cancel()
        with trio.fail_after(60):
            while engine.metrics().succeeded < submitted:  # noqa: ASYNC110 - a counter, no event
                await trio.sleep(0.1)
    warm = seconds / 10
    steady = [(t, v) for t, v in samples if t >= warm]
    late = [(t, v) for t, v in samples if t >= seconds / 2]
    sqlite_steady = [(t, v) for t, v in sqlite_samples if t >= warm]
    extra: dict[str, Any] = {}
    if sqlite_steady:  # what SQLite itself holds (page caches fill up to their bound)
        extra = {
            "sqlite_start_mb": sqlite_steady[0][1],
            "sqlite_end_mb": sqlite_steady[-1][1],
            "sqlite_slope_mb_per_min": slope_per_minute(sqlite_steady),
        }
    return {
        **extra,
        "slope_late_mb_per_min": slope_per_minute(late),
        "seconds": seconds,
        "rate": RATE,
        "submitted": submitted,
        "checked": engine.metrics().succeeded,
        "behind_s": max(0.0, behind),
        "rss_start_mb": steady[0][1] if steady else None,
        "rss_end_mb": steady[-1][1] if steady else None,
        "rss_max_mb": max(v for _, v in samples) if samples else None,
        "slope_mb_per_min": slope_per_minute(steady),
        "samples": len(samples),
    }


def run_soak_repeat(seconds: float, timeout: float) -> dict[str, Any]:
    """One run in a fresh process (its own store in a temp dir)."""
    return run_in_child("perf.soak", str(seconds), timeout)


def main(argv: list[str]) -> int:
    seconds, tmp = float(argv[0]), Path(argv[1])
    t0 = time.perf_counter()
    figures = trio.run(_measure, seconds, tmp)
    figures["case_wall_s"] = time.perf_counter() - t0
    print_result(figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
