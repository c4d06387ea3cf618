"""ExecutionMetrics: counters, gauges and histograms of the engine.

The hot path only bumps plain ints and one bucket counter per observation; a
prometheus-client collector reads them at scrape time. So metrics cost a few
hundred nanoseconds per event, and an engine that is never scraped pays nothing
more.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from typing import Any

import msgspec

from corral.core.status import CACHED, CANCELLED, FAILED, SUCCEEDED, TIMED_OUT

__all__ = ["ExecutionMetrics", "HistogramSnapshot", "MetricsSnapshot"]

# Seconds: 100 µs .. 1 h, roughly x2.5 apart.
BUCKETS: tuple[float, ...] = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
    0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0,
)  # fmt: skip


class HistogramSnapshot(msgspec.Struct):
    count: int
    sum: float
    p50: float | None
    p99: float | None
    buckets: dict[str, int]


class Histogram:
    __slots__ = ("count", "counts", "sum")

    def __init__(self) -> None:
        self.counts = [0] * (len(BUCKETS) + 1)
        self.count = 0
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(BUCKETS, value)] += 1
        self.count += 1
        self.sum += value

    def quantile(self, q: float) -> float | None:
        """Upper bound of the bucket holding quantile ``q`` (``inf`` past the last)."""
        if not self.count:
            return None
        rank = q * self.count
        seen = 0
        for i, n in enumerate(self.counts):
            seen += n
            if seen >= rank and n:
                return BUCKETS[i] if i < len(BUCKETS) else float("inf")
        return float("inf")

    def snapshot(self) -> HistogramSnapshot:
        labels = [*(str(b) for b in BUCKETS), "+Inf"]
        return HistogramSnapshot(
            count=self.count,
            sum=self.sum,
            p50=self.quantile(0.5),
            p99=self.quantile(0.99),
            buckets=dict(zip(labels, self.counts, strict=True)),
        )


class MetricsSnapshot(msgspec.Struct):
    """A point-in-time copy of every metric (``engine.metrics()``)."""

    submitted: int
    started: int
    succeeded: int
    failed: int
    cancelled: int
    timed_out: int
    retried: int
    rejected: int
    cache_hits: int
    steps_started: int
    cache_errors: int
    loop_stalls: int
    steps_finished: dict[str, int]
    running: int
    queued: int
    events_dropped: int
    queue_wait: HistogramSnapshot
    start_latency: HistogramSnapshot
    step_duration: HistogramSnapshot
    workflow_duration: HistogramSnapshot


class ExecutionMetrics:
    """The engine's metrics. Gauges are read through callbacks."""

    COUNTERS = (
        "submitted", "started", SUCCEEDED, FAILED, CANCELLED, TIMED_OUT,
        "retried", "rejected", "cache_hits", "steps_started", "cache_errors", "loop_stalls",
    )  # fmt: skip
    BUCKETS = BUCKETS  # the histograms' upper bounds, for exporters

    def __init__(
        self,
        running: Callable[[], int] = lambda: 0,
        queued: Callable[[], int] = lambda: 0,
        dropped: Callable[[], int] = lambda: 0,
    ) -> None:
        self.submitted = self.started = self.succeeded = self.failed = 0
        self.cancelled = self.timed_out = self.retried = self.rejected = 0
        self.cache_hits = self.steps_started = self.cache_errors = self.loop_stalls = 0
        self.steps_finished: dict[str, int] = {}
        self.queue_wait = Histogram()
        self.start_latency = Histogram()
        self.step_duration = Histogram()
        self.workflow_duration = Histogram()
        self._running = running
        self._queued = queued
        self._dropped = dropped
        self._registry: Any = None  # the Prometheus registry, made on first use

    def workflow_finished(self, status: str, duration: float) -> None:
        if status == SUCCEEDED:
            self.succeeded += 1
        elif status == FAILED:
            self.failed += 1
        elif status == CANCELLED:
            self.cancelled += 1
        elif status == TIMED_OUT:
            self.timed_out += 1
        self.workflow_duration.observe(duration)

    def step_finished(self, status: str, duration: float | None) -> None:
        self.steps_finished[status] = self.steps_finished.get(status, 0) + 1
        if status == CACHED:
            self.cache_hits += 1
        if duration is not None:
            self.step_duration.observe(duration)

    def snapshot(self) -> MetricsSnapshot:
        return MetricsSnapshot(
            **{name: getattr(self, name) for name in self.COUNTERS},
            steps_finished=dict(self.steps_finished),
            running=self._running(),
            queued=self._queued(),
            events_dropped=self._dropped(),
            queue_wait=self.queue_wait.snapshot(),
            start_latency=self.start_latency.snapshot(),
            step_duration=self.step_duration.snapshot(),
            workflow_duration=self.workflow_duration.snapshot(),
        )

    def prometheus(self) -> str:
        """The metrics in Prometheus text exposition format.

        prometheus-client is imported here, not with the engine: ~25 ms of
        start-up that a command which never exports metrics should not pay.
        """
        from corral.engine.prometheus import exposition

        if self._registry is None:
            from corral.engine.prometheus import registry_for

            self._registry = registry_for(self)
        return exposition(self._registry)
