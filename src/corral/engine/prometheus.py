"""The engine's metrics as a prometheus-client collector (imported on first use)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from corral.core.status import CANCELLED, FAILED, SUCCEEDED, TIMED_OUT

# The collector reads an ExecutionMetrics duck-typed: importing corral.engine.metrics
# here would make the two modules import each other (that one imports this on
# first export).

__all__ = ["exposition", "registry_for"]


def registry_for(metrics: Any) -> Any:
    """A registry whose one collector reads ``metrics`` at scrape time."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector(metrics))
    return registry


def exposition(registry: Any) -> str:
    """The text exposition format of everything in ``registry``."""
    return generate_latest(registry).decode()


_HELP = {
    "submitted": "Executions submitted and admitted",
    "started": "Executions started",
    SUCCEEDED: "Executions that succeeded",
    FAILED: "Executions that failed",
    CANCELLED: "Executions cancelled",
    TIMED_OUT: "Executions that timed out",
    "retried": "Step attempts retried",
    "rejected": "Submissions refused with Overloaded",
    "cache_hits": "Steps served from the result cache",
    "steps_started": "Step attempts started",
    "cache_errors": "Result cache reads and writes the store failed (a miss, a skipped write)",
    "loop_stalls": "Times a handler held the event loop past the stall threshold",
}


class _Collector(Collector):
    def __init__(self, metrics: Any) -> None:
        self.m = metrics

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily | HistogramMetricFamily]:
        m = self.m
        for name in m.COUNTERS:
            yield CounterMetricFamily(f"corral_{name}", _HELP[name], value=getattr(m, name))
        steps = CounterMetricFamily(
            "corral_steps_finished", "Steps finished, by status", labels=["status"]
        )
        for status, n in sorted(m.steps_finished.items()):
            steps.add_metric([status], n)
        yield steps
        yield GaugeMetricFamily("corral_running", "Executions running", value=m._running())
        yield GaugeMetricFamily("corral_queued", "Executions waiting", value=m._queued())
        yield CounterMetricFamily(
            "corral_events_dropped", "Events dropped by slow subscribers", value=m._dropped()
        )
        for name, hist, help_ in (
            ("queue_wait_seconds", m.queue_wait, "Submit to start of the workflow"),
            ("start_latency_seconds", m.start_latency, "Submit to first step running"),
            ("step_duration_seconds", m.step_duration, "Step run time"),
            ("workflow_duration_seconds", m.workflow_duration, "Workflow run time"),
        ):
            family = HistogramMetricFamily(f"corral_{name}", help_)
            cumulative = 0
            buckets: list[tuple[str, float]] = []
            for bound, n in zip([*m.BUCKETS, float("inf")], hist.counts, strict=True):
                cumulative += n
                buckets.append(("+Inf" if bound == float("inf") else str(bound), cumulative))
            family.add_metric([], buckets=buckets, sum_value=hist.sum)
            yield family
