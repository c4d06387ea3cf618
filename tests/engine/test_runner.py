"""Execution semantics: nursery per workflow, failure policy, retries, timeouts,
venues, child workflows. Time-dependent tests use Trio's mock clock."""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio
import trio.testing

import corral
import corral.plugins

sys.path.insert(0, str(Path(__file__).parent))
from _handlers import Recorder  # noqa: E402


@pytest.fixture
def rec() -> Recorder:
    return Recorder()


@pytest.fixture
async def eng(rec: Recorder) -> AsyncIterator[corral.Engine]:
    async with corral.open_engine(entry_points=False, plugins=[rec]) as engine:
        yield engine


def _tasks() -> int:
    """Every task alive in this Trio run."""
    count = 0
    stack = [trio.lowlevel.current_root_task()]
    while stack:
        task = stack.pop()
        count += 1
        for nursery in task.child_nurseries:
            stack.extend(nursery.child_tasks)
    return count


async def _wait_for(predicate: object, timeout: float = 30) -> None:
    with trio.fail_after(timeout):
        while not predicate():  # type: ignore[operator]
            await trio.sleep(0.005)


# ---------------------------------------------------------------- data flow


async def test_fan_out_fan_in_passes_outputs(eng: corral.Engine) -> None:
    wf = corral.Workflow("fan", inputs={"n": "integer"})
    src = wf.step("src", "core.echo", value={"n": wf.input("n"), "items": [1, 2, 3]})
    branches = [
        wf.step(f"b{i}", "core.echo", needs=[src], value=f"branch {i} of ${{steps.src.output.n}}")
        for i in range(5)
    ]
    first = wf.step("first", "core.echo", needs=[src], value=src.output["items"][0])
    wf.step(
        "join",
        "core.echo",
        needs=[*branches, first],
        value={"branches": [b.output for b in branches], "first": first.output},
    )
    result = await eng.run(wf, {"n": 7})
    assert result == {
        "join": {"branches": [f"branch {i} of 7" for i in range(5)], "first": 1}
    }
    # A whole-string reference keeps the referenced type.
    assert isinstance(result["join"]["first"], int)


async def test_steps_start_eagerly(eng: corral.Engine, rec: Recorder, autojump_clock: object) -> None:
    # c needs only a (fast); it must not wait for b (slow).
    spec = corral.loads(
        """
name: eager
steps:
  - {id: a, handler: test.track, params: {seconds: 1}}
  - {id: b, handler: test.track, params: {seconds: 10}}
  - {id: c, handler: test.track, needs: [a], params: {seconds: 1}}
"""
    )
    await eng.run(spec)
    started = {step: t for step, _, t in rec.calls}
    assert started["c"] - started["a"] == pytest.approx(1)
    assert started["c"] < started["b"] + 10


async def test_workflow_output_and_default_result(eng: corral.Engine) -> None:
    spec = corral.loads(
        """
name: out
inputs: {x: {type: integer, default: 2}}
steps:
  - {id: a, handler: core.echo, params: {value: "${inputs.x}"}}
  - {id: b, handler: core.echo, needs: [a], params: {value: "a=${steps.a.output}"}}
output: {a: "${steps.a.output}", b: "${steps.b.output}", literal: 1}
"""
    )
    assert await eng.run(spec) == {"a": 2, "b": "a=2", "literal": 1}


# ---------------------------------------------------------------- cancellation


async def test_cancel_1000_running_sleep_steps(eng: corral.Engine) -> None:
    wf = corral.Workflow("many")
    for i in range(1000):
        wf.step(f"s{i}", "core.sleep", seconds=3600)
    await trio.testing.wait_all_tasks_blocked()  # the engine's own tasks have settled
    before = _tasks()
    handle = await eng.submit(wf)
    await _wait_for(lambda: eng.metrics().steps_started == 1000)
    assert _tasks() >= before + 1000  # the execution's task (running s0 itself) + 999
    record = await eng.cancel(handle.id)
    await trio.testing.wait_all_tasks_blocked()
    assert record.status == "cancelled"
    assert len(record.steps) == 1000
    assert {s.status for s in record.steps} == {"cancelled"}
    assert _tasks() == before  # no task of the workflow remains
    with pytest.raises(corral.WorkflowCancelled):
        await handle.result()
    assert eng.metrics().cancelled == 1


async def test_cancel_queued_execution(rec: Recorder) -> None:
    limits = corral.Limits(max_running_workflows=1)
    async with corral.open_engine(entry_points=False, plugins=[rec], limits=limits) as eng:
        wf = corral.Workflow("w")
        wf.step("s", "core.sleep", seconds=3600)
        first = await eng.submit(wf)
        second = await eng.submit(wf)
        record = await eng.cancel(second.id)
        assert record.status == "cancelled"
        assert record.steps[0].status == "cancelled"
        await eng.cancel(first.id)
        with pytest.raises(corral.WorkflowCancelled):
            await second.result()


async def test_cancel_unknown_and_finished(eng: corral.Engine) -> None:
    with pytest.raises(corral.ExecutionNotFound):
        await eng.cancel("nope")
    with pytest.raises(corral.ExecutionNotFound):
        await eng.get("nope")
    wf = corral.Workflow("w")
    wf.step("s", "core.noop")
    handle = await eng.submit(wf)
    await handle.result()
    assert (await eng.cancel(handle.id)).status == "succeeded"


async def test_leaving_engine_with_error_cancels_work(rec: Recorder) -> None:
    wf = corral.Workflow("w")
    wf.step("s", "core.sleep", seconds=3600)
    with pytest.raises(KeyError):
        async with corral.open_engine(entry_points=False) as eng:
            handle = await eng.submit(wf)
            await _wait_for(lambda: eng.metrics().steps_started == 1)
            raise KeyError("boom")
    record = await eng.store.get_execution(handle.id)
    assert record.status == "cancelled"
    assert record.steps[0].status == "cancelled"


async def test_leaving_engine_normally_waits_for_work(autojump_clock: object) -> None:
    wf = corral.Workflow("w")
    wf.step("s", "core.sleep", seconds=5)
    async with corral.open_engine(entry_points=False) as eng:
        handle = await eng.submit(wf)
    record = await eng.store.get_execution(handle.id)
    assert record.status == "succeeded"


# ---------------------------------------------------------------- failure policy


async def test_fail_fast_cancels_running_siblings(eng: corral.Engine) -> None:
    spec = corral.loads(
        """
name: ff
steps:
  - {id: slow, handler: core.sleep, params: {seconds: 3600}}
  - {id: wait, handler: core.sleep, params: {seconds: 0.01}}
  - {id: boom, handler: core.fail, needs: [wait], params: {message: kaput}}
  - {id: after, handler: core.noop, needs: [boom]}
"""
    )
    handle = await eng.submit(spec)
    with pytest.raises(corral.WorkflowFailed) as info:
        await handle.result()
    assert info.value.step == "boom"
    assert isinstance(info.value.cause, corral.StepFailure)
    assert "kaput" in str(info.value)
    record = await eng.get(handle.id)
    assert record.status == "failed"
    statuses = {s.step_id: s.status for s in record.steps}
    assert statuses == {
        "slow": "cancelled",
        "wait": "succeeded",
        "boom": "failed",
        "after": "cancelled",
    }
    assert record.error is not None and record.error.step == "boom"


async def test_continue_lets_independent_branch_finish(
    eng: corral.Engine, autojump_clock: object
) -> None:
    spec = corral.loads(
        """
name: cont
settings: {on_failure: continue}
steps:
  - {id: boom, handler: core.fail}
  - {id: child, handler: core.noop, needs: [boom]}
  - {id: grandchild, handler: core.noop, needs: [child]}
  - {id: other, handler: core.sleep, params: {seconds: 5}}
  - {id: other2, handler: core.echo, needs: [other], params: {value: done}}
"""
    )
    handle = await eng.submit(spec)
    with pytest.raises(corral.WorkflowFailed) as info:
        await handle.result()
    assert info.value.step == "boom"
    record = await eng.get(handle.id)
    statuses = {s.step_id: s.status for s in record.steps}
    assert statuses == {
        "boom": "failed",
        "child": "skipped",
        "grandchild": "skipped",
        "other": "succeeded",
        "other2": "succeeded",
    }
    assert record.step("other2").output == "done"


async def test_a_done_trigger_join_runs_after_failed_and_skipped_needs(
    eng: corral.Engine, autojump_clock: object
) -> None:
    spec = corral.loads(
        """
name: join
settings: {on_failure: continue}
steps:
  - {id: boom, handler: core.fail}
  - {id: after_boom, handler: core.noop, needs: [boom]}
  - {id: ok, handler: core.echo, params: {value: 1}}
  - {id: never, handler: core.echo, when: "false", params: {value: 2}}
  - id: join
    handler: core.echo
    needs: [boom, after_boom, ok, never]
    trigger: done
    params: {value: ["${steps.boom.output}", "${steps.ok.output}", "${steps.never.output}"]}
  - {id: below, handler: core.echo, needs: [join], params: {value: "${steps.join.output}"}}
"""
    )
    handle = await eng.submit(spec)
    with pytest.raises(corral.WorkflowFailed):  # the workflow still failed: boom did
        await handle.result()
    record = await eng.get(handle.id)
    statuses = {s.step_id: s.status for s in record.steps}
    assert statuses == {
        "boom": "failed",
        "after_boom": "skipped",
        "ok": "succeeded",
        "never": "skipped",
        "join": "succeeded",
        "below": "succeeded",
    }
    assert record.step("join").output == [None, 1, None]
    assert record.step("below").output == [None, 1, None]


async def test_a_done_trigger_step_does_not_run_under_fail_fast(
    eng: corral.Engine, autojump_clock: object
) -> None:
    spec = corral.loads(
        """
name: join-ff
steps:
  - {id: boom, handler: core.fail}
  - {id: join, handler: core.noop, needs: [boom], trigger: done}
"""
    )
    handle = await eng.submit(spec)
    with pytest.raises(corral.WorkflowFailed):
        await handle.result()
    record = await eng.get(handle.id)
    assert record.step("join").status in ("cancelled", "skipped")


async def test_a_trigger_that_is_not_known_is_a_spec_error() -> None:
    with pytest.raises(corral.SpecError, match="trigger"):
        corral.loads("name: x\nsteps:\n  - {id: a, handler: core.noop, trigger: always}\n")


# ---------------------------------------------------------------- retries


async def test_retries_follow_backoff_schedule(
    eng: corral.Engine, rec: Recorder, autojump_clock: object
) -> None:
    spec = corral.loads(
        """
name: retry
steps:
  - id: s
    handler: test.flaky
    params: {fail: 3}
    retry: {attempts: 5, backoff: 1, multiplier: 2, jitter: 0}
"""
    )
    assert await eng.run(spec) == {"s": 4}
    times = [t for _, _, t in rec.calls]
    gaps = [round(b - a, 6) for a, b in zip(times, times[1:], strict=False)]
    assert gaps == [1, 2, 4]
    record = (await eng.list())[0]
    full = await eng.get(record.id)
    assert full.steps[0].attempts == 4
    assert eng.metrics().retried == 3


async def test_retry_jitter_stays_in_bounds(
    eng: corral.Engine, rec: Recorder, autojump_clock: object
) -> None:
    spec = corral.loads(
        """
name: jitter
steps:
  - id: s
    handler: test.flaky
    params: {fail: 4}
    retry: {attempts: 5, backoff: 2, multiplier: 3, max_backoff: 10, jitter: 0.5}
"""
    )
    await eng.run(spec)
    times = [t for _, _, t in rec.calls]
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    for gap, base in zip(gaps, [2, 6, 10, 10], strict=True):
        assert base * 0.5 <= gap <= base * 1.5


async def test_non_retryable_is_not_retried(eng: corral.Engine, rec: Recorder) -> None:
    spec = corral.loads(
        """
name: nr
steps:
  - id: s
    handler: test.flaky
    params: {fail: 1, non_retryable: true}
    retry: {attempts: 5, backoff: 0}
"""
    )
    with pytest.raises(corral.WorkflowFailed) as info:
        await eng.run(spec)
    assert isinstance(info.value.cause, corral.NonRetryable)
    assert len(rec.calls) == 1


async def test_retry_on_restricts_errors(eng: corral.Engine, rec: Recorder) -> None:
    spec = corral.loads(
        """
name: ro
steps:
  - id: s
    handler: test.flaky
    params: {fail: 1}
    retry: {attempts: 3, backoff: 0, retry_on: [ConnectionError]}
"""
    )
    with pytest.raises(corral.WorkflowFailed):
        await eng.run(spec)
    assert len(rec.calls) == 1  # RuntimeError is not a ConnectionError


# ---------------------------------------------------------------- timeouts


async def test_step_timeout_gives_timed_out(eng: corral.Engine, autojump_clock: object) -> None:
    spec = corral.loads(
        """
name: st
steps:
  - {id: s, handler: core.sleep, params: {seconds: 100}, timeout: 5}
"""
    )
    handle = await eng.submit(spec)
    start = trio.current_time()
    with pytest.raises(corral.WorkflowTimedOut) as info:
        await handle.result()
    assert trio.current_time() - start == pytest.approx(5)
    assert info.value.step == "s"
    record = await eng.get(handle.id)
    assert record.status == "timed_out"
    assert record.steps[0].status == "timed_out"
    assert record.steps[0].error is not None
    assert record.steps[0].error.type == "StepTimedOut"


async def test_step_timeout_is_per_attempt_and_retried(
    eng: corral.Engine, autojump_clock: object
) -> None:
    spec = corral.loads(
        """
name: st2
steps:
  - {id: s, handler: core.sleep, params: {seconds: 100}, timeout: 5,
     retry: {attempts: 3, backoff: 1, jitter: 0}}
"""
    )
    start = trio.current_time()
    handle = await eng.submit(spec)
    with pytest.raises(corral.WorkflowTimedOut):
        await handle.result()
    # 3 attempts of 5 s with 1 s and 2 s between them.
    assert trio.current_time() - start == pytest.approx(18)
    assert (await eng.get(handle.id)).steps[0].attempts == 3


async def test_workflow_timeout_gives_timed_out(eng: corral.Engine, autojump_clock: object) -> None:
    spec = corral.loads(
        """
name: wt
settings: {timeout: 10}
steps:
  - {id: a, handler: core.sleep, params: {seconds: 4}}
  - {id: b, handler: core.sleep, needs: [a], params: {seconds: 100}, timeout: 50}
  - {id: c, handler: core.noop, needs: [b]}
"""
    )
    handle = await eng.submit(spec)
    start = trio.current_time()
    with pytest.raises(corral.WorkflowTimedOut):
        await handle.result()
    assert trio.current_time() - start == pytest.approx(10)
    record = await eng.get(handle.id)
    assert record.status == "timed_out"
    assert [s.status for s in record.steps] == ["succeeded", "cancelled", "cancelled"]


# ---------------------------------------------------------------- venues


async def test_blocking_handler_does_not_freeze_the_loop(
    eng: corral.Engine, rec: Recorder
) -> None:
    # The blocking step waits in its thread for a gate that an async step opens:
    # if the blocking step ran in the event loop, the gate could never open.
    spec = corral.loads(
        """
name: venues
steps:
  - {id: blocker, handler: test.wait_gate}
  - {id: opener, handler: test.open_gate}
"""
    )
    result = await eng.run(spec)
    assert result["blocker"]["opened"] is True
    assert result["blocker"]["thread"] != "MainThread"


async def test_blocking_handler_is_told_to_stop_on_cancel(
    eng: corral.Engine, rec: Recorder
) -> None:
    spec = corral.loads("name: coop\nsteps:\n  - {id: s, handler: test.cooperative}\n")
    handle = await eng.submit(spec)
    await trio.to_thread.run_sync(rec.gate.wait, 30)
    record = await eng.cancel(handle.id)
    assert record.status == "cancelled"


async def test_cpu_handler_runs_in_another_process(eng: corral.Engine) -> None:
    spec = corral.loads("name: cpu\nsteps:\n  - {id: s, handler: test.cpu_pid}\n")
    result = await eng.run(spec)
    assert result["s"]["pid"] != os.getpid()
    assert result["s"]["step"] == "s"


async def test_cpu_handler_is_killed_when_cancelled(eng: corral.Engine, tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    wf = corral.Workflow("cpu-kill")
    wf.step("spin", "test.cpu_pid", pidfile=str(pidfile), seconds=600)
    handle = await eng.submit(wf)
    await _wait_for(lambda: pidfile.exists() and pidfile.read_text().strip() != "", 60)
    pid = int(pidfile.read_text())
    assert pid != os.getpid()
    record = await eng.cancel(handle.id)
    assert record.status == "cancelled"

    def gone() -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        # A killed child not yet reaped shows as a zombie.
        try:
            with open(f"/proc/{pid}/stat") as f:
                return f.read().split(")")[-1].split()[0] == "Z"
        except FileNotFoundError:
            return True

    await _wait_for(gone, 30)


# ---------------------------------------------------------------- children


async def test_child_workflow_runs_inside_parent(eng: corral.Engine) -> None:
    child = corral.Workflow("child", inputs={"x": "integer"})
    child.step("double", "core.echo", value=["${inputs.x}", "${inputs.x}"])
    child.output("${steps.double.output}")
    parent = corral.Workflow("parent")
    a = parent.step("a", "core.echo", value=21)
    parent.step("kid", workflow=child, needs=[a], params={"x": a.output})
    result = await eng.run(parent)
    assert result == {"kid": [21, 21]}
    children = [r for r in await eng.list() if r.parent_id is not None]
    assert len(children) == 1 and children[0].status == "succeeded"
    # the step's record says what kind of step it is: a child workflow, no handler
    record = await eng.get(children[0].parent_id or "")
    assert record.step("kid").workflow == "child" and record.step("kid").handler is None
    assert record.step("a").handler == "core.echo" and record.step("a").workflow is None


async def test_cancelling_parent_cancels_child(eng: corral.Engine) -> None:
    child = corral.Workflow("child")
    child.step("nap", "core.sleep", seconds=3600)
    parent = corral.Workflow("parent")
    parent.step("kid", workflow=child)
    handle = await eng.submit(parent)
    await _wait_for(lambda: eng.metrics().steps_started == 2)
    await eng.cancel(handle.id)
    records = await eng.list()
    assert {r.status for r in records} == {"cancelled"}
    kid = next(r for r in records if r.parent_id == handle.id)
    assert (await eng.get(kid.id)).steps[0].status == "cancelled"


async def test_failing_child_fails_parent_step(eng: corral.Engine) -> None:
    child = corral.Workflow("child")
    child.step("bad", "core.fail", message="inner")
    parent = corral.Workflow("parent")
    parent.step("kid", workflow=child)
    with pytest.raises(corral.WorkflowFailed) as info:
        await eng.run(parent)
    assert info.value.step == "kid"
    assert isinstance(info.value.cause, corral.WorkflowFailed)
    assert info.value.cause.step == "bad"


# ---------------------------------------------------------------- conditions


async def test_when_false_skips_step_and_dependents(eng: corral.Engine) -> None:
    spec = corral.loads(
        """
name: cond
inputs: {go: {type: boolean}}
steps:
  - {id: a, handler: core.echo, params: {value: 3}}
  - {id: b, handler: core.echo, needs: [a], when: "inputs.go && steps.a.output > 2",
     params: {value: ok}}
  - {id: c, handler: core.echo, needs: [b], params: {value: "${steps.b.output}"}}
"""
    )
    assert await eng.run(spec, {"go": True}) == {"c": "ok"}
    handle = await eng.submit(spec, {"go": False})
    assert await handle.result() == {}
    record = await eng.get(handle.id)
    assert [s.status for s in record.steps] == ["succeeded", "skipped", "skipped"]


# ---------------------------------------------------------------- admission


async def test_idempotency_key_returns_existing_execution(eng: corral.Engine) -> None:
    wf = corral.Workflow("idem")
    wf.step("s", "core.echo", value=1)
    h1 = await eng.submit(wf, key="k1")
    h2 = await eng.submit(wf, key="k1")
    assert h1.id == h2.id
    assert await h2.result() == {"s": 1}
    h3 = await eng.submit(wf, key="k1")  # after it finished
    assert h3.id == h1.id and await h3.result() == {"s": 1}
    assert eng.metrics().submitted == 1


async def test_priority_orders_the_queue(rec: Recorder, autojump_clock: object) -> None:
    limits = corral.Limits(max_running_workflows=1)
    async with corral.open_engine(entry_points=False, plugins=[rec], limits=limits) as eng:
        def wf(name: str) -> corral.Workflow:
            w = corral.Workflow(name)
            w.step(name, "test.track", seconds=1)
            return w

        handles = [await eng.submit(wf("first"))]
        await _wait_for(lambda: eng.metrics().started == 1)
        handles.append(await eng.submit(wf("low"), priority=-1))
        handles.append(await eng.submit(wf("mid")))
        handles.append(await eng.submit(wf("high"), priority=5))
        for h in handles:
            await h.result()
        order = [step for step, _, _ in rec.calls]
        assert order == ["first", "high", "mid", "low"]


async def test_max_parallel_steps_and_critical_path_first(
    eng: corral.Engine, rec: Recorder, autojump_clock: object
) -> None:
    # With one slot, the head of the longer chain (long1 -> long2 -> long3)
    # starts before the declared-earlier single step.
    spec = corral.loads(
        """
name: cp
settings: {max_parallel_steps: 1}
steps:
  - {id: single, handler: test.track, params: {seconds: 1}}
  - {id: long1, handler: test.track, params: {seconds: 1}}
  - {id: long2, handler: test.track, needs: [long1], params: {seconds: 1}}
  - {id: long3, handler: test.track, needs: [long2], params: {seconds: 1}}
"""
    )
    await eng.run(spec)
    assert rec.max_running == 1
    assert [step for step, _, _ in rec.calls][0] == "long1"


async def test_bad_spec_and_inputs_raise_before_anything_runs(eng: corral.Engine) -> None:
    wf = corral.Workflow("bad")
    wf.step("s", "core.nope")
    with pytest.raises(corral.SpecError, match="core.noop"):
        await eng.submit(wf)
    ok = corral.Workflow("ok", inputs={"n": "integer"})
    ok.step("s", "core.echo", value=ok.input("n"))
    with pytest.raises(corral.InputError, match="'n'"):
        await eng.submit(ok, {"n": "seven"})
    with pytest.raises(corral.InputError, match="missing"):
        await eng.submit(ok)
    assert eng.metrics().submitted == 0


async def test_cached_step_is_not_rerun(eng: corral.Engine, rec: Recorder) -> None:
    spec = corral.loads(
        """
name: cache
steps:
  - {id: s, handler: test.track, cache: true}
"""
    )
    await eng.run(spec)
    handle = await eng.submit(spec)
    assert await handle.result() == {"s": "s"}
    assert len(rec.calls) == 1
    assert (await eng.get(handle.id)).steps[0].status == "cached"
    assert eng.metrics().cache_hits == 1


async def test_a_cached_result_is_keyed_by_what_the_step_can_see(
    eng: corral.Engine, rec: Recorder
) -> None:
    # The key holds the params as written, the inputs they refer to and a
    # digest of each upstream output: a change to any of them is a miss.
    spec = corral.loads(
        """
name: keyed
inputs: {x: {type: integer}, t: {type: number}}
steps:
  - {id: up, handler: core.echo, params: {value: "${inputs.x}"}}
  - {id: s, handler: test.track, needs: [up], cache: true, params: {seconds: "${inputs.t}"}}
"""
    )
    assert await eng.run(spec, {"x": 1, "t": 0}) == {"s": "s"}
    assert await eng.run(spec, {"x": 1, "t": 0}) == {"s": "s"}
    assert len(rec.calls) == 1  # the same: cached
    await eng.run(spec, {"x": 2, "t": 0})
    assert len(rec.calls) == 2  # the upstream output changed
    await eng.run(spec, {"x": 2, "t": 0.001})
    assert len(rec.calls) == 3  # an input the params refer to changed
    await eng.run(spec, {"x": 2, "t": 0.001})
    assert len(rec.calls) == 3
    assert eng.metrics().cache_hits == 2


async def test_step_records_have_timings_and_errors(eng: corral.Engine) -> None:
    spec = corral.loads(
        """
name: rec
settings: {on_failure: continue}
steps:
  - {id: ok, handler: core.echo, params: {value: 1}}
  - {id: bad, handler: core.fail, params: {message: nope}}
"""
    )
    handle = await eng.submit(spec)
    with pytest.raises(corral.WorkflowFailed):
        await handle.result()
    record = await eng.get(handle.id)
    ok, bad = record.steps
    assert ok.status == "succeeded" and ok.attempts == 1 and ok.output == 1
    assert ok.duration is not None and ok.duration >= 0
    assert bad.error is not None and bad.error.message == "nope" and bad.error.type == "StepFailure"
    assert record.started_at is not None and record.finished_at is not None


async def test_blocking_handler_errors_are_not_wrapped(eng: corral.Engine) -> None:
    class Refuses(corral.plugins.Handler):
        name = "test.refuses"
        kind = "blocking"

        def run(self, ctx: object, params: object) -> object:  # type: ignore[override]
            raise corral.NonRetryable("no")

    class Plugin:
        @corral.plugins.hookimpl
        def corral_handlers(self) -> list[type[corral.plugins.Handler]]:
            return [Refuses]

    async with corral.open_engine(entry_points=False, plugins=[Plugin()]) as engine:
        wf = corral.Workflow("refuse")
        wf.step("s", "test.refuses", retry={"attempts": 3, "backoff": 0})
        handle = await engine.submit(wf)
        with pytest.raises(corral.WorkflowFailed) as info:
            await handle.result()
        assert isinstance(info.value.cause, corral.NonRetryable)
        record = await engine.get(handle.id)
        assert record.steps[0].attempts == 1
        assert record.steps[0].error is not None
        assert record.steps[0].error.type == "NonRetryable"


async def test_mutating_a_builder_after_a_run_is_seen(eng: corral.Engine) -> None:
    wf = corral.Workflow("grow")
    wf.step("a", "core.echo", value=1)
    assert await eng.run(wf) == {"a": 1}
    wf.step("b", "core.echo", needs=["a"], value=2)
    assert await eng.run(wf) == {"b": 2}


async def test_conditions_read_upstream_steps_by_any_syntax(eng: corral.Engine) -> None:
    spec = corral.loads(
        """
name: cond-names
steps:
  - {id: first-step, handler: core.echo, params: {value: 2}}
  - {id: b, handler: core.echo, needs: [first-step], params: {value: 1}}
  - {id: c, handler: core.echo, needs: [b], when: 'steps["first-step"].output == 2',
     params: {value: bracket}}
  - {id: d, handler: core.echo, needs: [b], when: 'steps.b.status == "succeeded"',
     params: {value: dotted}}
"""
    )
    assert await eng.run(spec) == {"c": "bracket", "d": "dotted"}


def test_condition_on_a_step_that_is_not_upstream_is_a_spec_error() -> None:
    with pytest.raises(corral.SpecError, match="not upstream") as info:
        corral.loads(
            "name: x\nsteps:\n  - {id: a, handler: core.noop}\n"
            "  - {id: b, handler: core.noop, when: 'steps.a.output == null'}\n"
        )
    assert info.value.path == "$.steps[1].when"


async def test_long_chain_with_references(eng: corral.Engine) -> None:
    wf = corral.Workflow("chain")
    prev = wf.step("s0", "core.echo", value=0)
    for i in range(1, 2000):
        prev = wf.step(f"s{i}", "core.echo", needs=[prev], value=prev.output)
    assert await eng.run(wf) == {"s1999": 0}


async def test_a_concurrency_name_has_one_limit(eng: corral.Engine) -> None:
    one = corral.Workflow("one")
    one.step("s", "core.noop", concurrency={"key": "'k'", "name": "shared", "limit": 1})
    two = corral.Workflow("two")
    two.step("s", "core.noop", concurrency={"key": "'k'", "name": "shared", "limit": 3})
    await eng.run(one)
    with pytest.raises(corral.SpecError, match="already has limit 1") as info:
        await eng.submit(two)
    assert info.value.path == "$.steps[0].concurrency.limit"


async def test_plan_from_another_registry_is_recompiled(eng: corral.Engine, rec: Recorder) -> None:
    from corral.plugins.manager import build_registry

    class Echo(corral.plugins.Handler):
        name = "core.echo"

        class Params(corral.plugins.NoParams):
            pass

        async def run(self, ctx: object, params: object) -> str:  # type: ignore[override]
            return "impostor"

    class Plugin:
        @corral.plugins.hookimpl
        def corral_handlers(self) -> list[type[corral.plugins.Handler]]:
            return [Echo]

    other = build_registry([Plugin()], builtins=False, entry_points=False)
    plan = corral.loads(
        "name: p\nsteps:\n  - {id: a, handler: core.echo}\n",
        handlers=other,
        pools=eng.resources.pool_sizes(),
    )
    assert await eng.run(plan) == {"a": None}  # this engine's core.echo, not the impostor


async def test_cpu_workers_end_with_the_engine(rec: Recorder) -> None:
    import psutil

    spec = corral.loads("name: cpu\nsteps:\n  - {id: s, handler: test.cpu_pid}\n")
    async with corral.open_engine(entry_points=False, plugins=[rec]) as engine:
        pid = (await engine.run(spec))["s"]["pid"]
        assert psutil.pid_exists(pid)

    def gone() -> bool:
        try:
            return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return True

    await _wait_for(gone, 30)
