"""ExecutionMetrics: snapshot counters, gauges, histograms, Prometheus text."""

from __future__ import annotations

import math

import msgspec
import pytest
import trio
import trio.testing
from prometheus_client.parser import text_string_to_metric_families

import corral
from corral.engine.metrics import BUCKETS, ExecutionMetrics, Histogram


def wf_of(name: str, handler: str, **kw: object) -> corral.Workflow:
    wf = corral.Workflow(name)
    wf.step("s", handler, **kw)  # type: ignore[arg-type]
    return wf


def families(text: str) -> dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]]:
    out: dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]] = {}
    for fam in text_string_to_metric_families(text):
        samples = out.setdefault(fam.name, {})
        for sample in fam.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


async def test_counters_after_a_mix_of_outcomes(
    autojump_clock: trio.testing.MockClock,
) -> None:
    limits = corral.Limits(max_running_workflows=1, max_queued=1)
    async with corral.open_engine(entry_points=False, limits=limits) as engine:
        m0 = engine.metrics()
        assert (m0.submitted, m0.started, m0.running, m0.queued) == (0, 0, 0, 0)

        assert await engine.run(wf_of("ok", "core.echo", value=1)) == {"s": 1}
        with pytest.raises(corral.WorkflowFailed):
            await engine.run(
                wf_of("bad", "core.fail", retry={"attempts": 3, "backoff": 1, "jitter": 0})
            )
        cached = wf_of("cached", "core.echo", value=2, cache=True)
        await engine.run(cached)
        await engine.run(cached)

        long = await engine.submit(wf_of("long", "core.sleep", seconds=50))
        await trio.sleep(1)
        queued = await engine.submit(wf_of("queued", "core.sleep", seconds=1))
        with pytest.raises(corral.Overloaded):
            await engine.submit(wf_of("refused", "core.noop"))
        m = engine.metrics()
        assert (m.running, m.queued) == (1, 1)
        await trio.sleep(2)
        await engine.cancel(long.id)
        await queued.result()

        m = engine.metrics()
    assert m.submitted == 6
    assert m.started == 6
    assert m.succeeded == 4
    assert m.failed == 1
    assert m.cancelled == 1
    assert m.timed_out == 0
    assert m.retried == 2
    assert m.rejected == 1
    assert m.cache_hits == 1
    assert m.steps_started == 1 + 3 + 1 + 1 + 1  # the cache hit starts no attempt
    assert m.steps_finished == {"succeeded": 3, "failed": 1, "cached": 1, "cancelled": 1}
    assert (m.running, m.queued, m.events_dropped) == (0, 0, 0)
    assert m.workflow_duration.count == 6
    assert m.queue_wait.count == 6
    assert m.start_latency.count == 5  # the all-cached run never starts a step
    assert m.step_duration.count >= 5
    # The queued workflow waited 2 s for the long one (mock clock: exact).
    assert m.queue_wait.sum == pytest.approx(2.0)
    # A snapshot is plain data.
    assert msgspec.json.decode(msgspec.json.encode(m), type=corral.MetricsSnapshot) == m


async def test_timed_out_counter(autojump_clock: trio.testing.MockClock) -> None:
    async with corral.open_engine(entry_points=False) as engine:
        with pytest.raises(corral.WorkflowTimedOut):
            await engine.run(wf_of("slow", "core.sleep", seconds=10, timeout=1))
        m = engine.metrics()
    assert m.timed_out == 1
    assert m.steps_finished == {"timed_out": 1}


async def test_prometheus_text_parses(autojump_clock: trio.testing.MockClock) -> None:
    async with corral.open_engine(entry_points=False) as engine:
        await engine.run(wf_of("ok", "core.sleep", seconds=2))
        with pytest.raises(corral.WorkflowFailed):
            await engine.run(wf_of("bad", "core.fail"))
        text = engine.prometheus_metrics()
    fams = families(text)
    assert fams["corral_submitted"][("corral_submitted_total", ())] == 2
    assert fams["corral_succeeded"][("corral_succeeded_total", ())] == 1
    assert fams["corral_failed"][("corral_failed_total", ())] == 1
    assert fams["corral_rejected"][("corral_rejected_total", ())] == 0
    assert fams["corral_cache_hits"][("corral_cache_hits_total", ())] == 0
    steps = fams["corral_steps_finished"]
    assert steps[("corral_steps_finished_total", (("status", "succeeded"),))] == 1
    assert steps[("corral_steps_finished_total", (("status", "failed"),))] == 1
    assert fams["corral_running"][("corral_running", ())] == 0
    assert fams["corral_queued"][("corral_queued", ())] == 0
    assert fams["corral_events_dropped"][("corral_events_dropped_total", ())] == 0
    wd = fams["corral_workflow_duration_seconds"]
    assert wd[("corral_workflow_duration_seconds_count", ())] == 2
    assert wd[("corral_workflow_duration_seconds_bucket", (("le", "+Inf"),))] == 2
    assert wd[("corral_workflow_duration_seconds_sum", ())] == pytest.approx(2.0)
    # Buckets are cumulative and monotonic.
    bounds = sorted(
        (float(dict(labels)["le"]), v)
        for (name, labels), v in wd.items()
        if name.endswith("_bucket")
    )
    assert [b for b, _ in bounds] == [*BUCKETS, math.inf]
    values = [v for _, v in bounds]
    assert values == sorted(values)
    assert dict(bounds)[2.5] == 2 and dict(bounds)[1.0] == 1
    for name in ("queue_wait", "start_latency", "step_duration"):
        assert f"corral_{name}_seconds" in fams


def test_histogram() -> None:
    h = Histogram()
    snap = h.snapshot()
    assert (snap.count, snap.sum, snap.p50, snap.p99) == (0, 0.0, None, None)
    for v in [0.001] * 90 + [2.0] * 9 + [5000.0]:
        h.observe(v)
    snap = h.snapshot()
    assert snap.count == 100
    assert snap.sum == pytest.approx(0.09 + 18 + 5000)
    assert snap.p50 == 0.001  # a value on a bound falls in that bucket
    assert snap.p99 == 2.5
    assert h.quantile(1.0) == math.inf
    assert snap.buckets["0.001"] == 90
    assert snap.buckets["2.5"] == 9
    assert snap.buckets["+Inf"] == 1
    assert sum(snap.buckets.values()) == 100


def test_metrics_gauges_come_from_callbacks() -> None:
    m = ExecutionMetrics(running=lambda: 3, queued=lambda: 7, dropped=lambda: 11)
    m.workflow_finished("succeeded", 0.5)
    m.workflow_finished("weird", 0.5)  # unknown statuses count only in the histogram
    m.step_finished("cached", None)
    snap = m.snapshot()
    assert (snap.running, snap.queued, snap.events_dropped) == (3, 7, 11)
    assert (snap.succeeded, snap.cache_hits, snap.workflow_duration.count) == (1, 1, 2)
    assert snap.step_duration.count == 0
    fams = families(m.prometheus())
    assert fams["corral_running"][("corral_running", ())] == 3
    assert fams["corral_events_dropped"][("corral_events_dropped_total", ())] == 11
