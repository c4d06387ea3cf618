"""engine.retry: what reruns, what is reused, and what is refused (issue 18)."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

import msgspec
import pytest
import trio

import corral
from corral.core.errors import InputError, RetryRefused, UsageError
from corral.core.status import CANCELLED, FAILED, PENDING, SKIPPED, SUCCEEDED
from corral.plugins import Handler, StepContext, hookimpl


class Counting:
    """``t.count`` returns its ``value`` and counts its calls per step;
    steps named in ``failing`` fail. ``version`` is the handler's version."""

    def __init__(self, version: str = "1") -> None:
        self.calls: Counter[str] = Counter()
        self.failing: set[str] = set()
        self.version = version

    @hookimpl
    def corral_handlers(self) -> list[type[Handler]]:
        plugin = self

        class Count(Handler):
            name = "t.count"
            version = plugin.version

            class Params(msgspec.Struct):
                value: Any = None

            async def run(self, ctx: StepContext, params: Any) -> Any:
                plugin.calls[ctx.step_id] += 1
                if ctx.step_id in plugin.failing:
                    raise RuntimeError(f"{ctx.step_id} broke")
                return {"step": ctx.step_id, "value": params.value}

        return [Count]


def diamond() -> dict[str, Any]:
    """s1 -> (s2, s3) -> s4 -> s5, and s6 after s3 (a branch beside s4)."""
    return {
        "name": "diamond",
        "inputs": {"a": {"type": "integer", "default": 1}, "b": {"type": "integer", "default": 2}},
        "settings": {"on_failure": "continue"},
        "steps": [
            {"id": "s1", "handler": "t.count", "params": {"value": "start"}},
            {"id": "s2", "handler": "t.count", "needs": ["s1"], "params": {"value": "${inputs.a}"}},
            {"id": "s3", "handler": "t.count", "needs": ["s1"], "params": {"value": "${inputs.b}"}},
            {
                "id": "s4",
                "handler": "t.count",
                "needs": ["s2", "s3"],
                "params": {"value": ["${steps.s2.output.value}", "${steps.s3.output.value}"]},
            },
            {"id": "s5", "handler": "t.count", "needs": ["s4"], "params": {"value": "end"}},
            {"id": "s6", "handler": "t.count", "needs": ["s3"], "params": {"value": "side"}},
        ],
        "output": {"four": "${steps.s4.output.value}", "six": "${steps.s6.output.value}"},
    }


def spec() -> corral.WorkflowSpec:
    return msgspec.convert(diamond(), corral.WorkflowSpec)


def calls(plugin: Counting) -> dict[str, int]:
    return dict(sorted(plugin.calls.items()))


async def failed_at_s4(engine: corral.Engine, plugin: Counting) -> corral.ExecutionRecord:
    plugin.failing = {"s4"}
    handle = await engine.submit(spec())
    record = await handle.wait()
    assert record.status == FAILED
    assert {s.step_id: s.status for s in record.steps}["s5"] == SKIPPED
    plugin.failing = set()
    return record


async def test_retry_reruns_the_failed_step_and_what_follows_it(tmp_path: Path) -> None:
    plugin = Counting()
    url = f"sqlite:///{tmp_path / 'x.db'}"
    async with corral.open_engine(url, plugins=[plugin], entry_points=False) as engine:
        original = await failed_at_s4(engine, plugin)
        assert calls(plugin) == {"s1": 1, "s2": 1, "s3": 1, "s4": 1, "s6": 1}

        preview = await engine.plan_retry(original.id)
        assert list(preview.rerun) == ["s4", "s5"]
        assert preview.rerun["s4"] == "it failed"
        assert preview.rerun["s5"] == "it was skipped"
        assert preview.reused == ["s1", "s2", "s3", "s6"]

        handle = await engine.retry(original.id)
        retried = await handle.wait()
        assert retried.status == SUCCEEDED, retried.error
        assert retried.result == {"four": [1, 2], "six": "side"}
        assert calls(plugin) == {"s1": 1, "s2": 1, "s3": 1, "s4": 2, "s5": 1, "s6": 1}

    # What the store keeps: the link, and which steps were reused from where.
    async with corral.open_engine(url, plugins=[plugin], entry_points=False) as engine:
        stored = await engine.get(retried.id)
        assert stored.retry_of == original.id
        reused = {s.step_id: s.reused_from for s in stored.steps if s.reused_from}
        assert reused == dict.fromkeys(["s1", "s2", "s3", "s6"], original.id)
        assert stored.step("s1").output == {"step": "s1", "value": "start"}
        assert stored.step("s1").handler_version == "1"
        assert [r.id for r in await engine.store.list_executions(retry_of=original.id)] == [
            retried.id
        ]
        # The original is unchanged: history is never rewritten.
        assert (await engine.get(original.id)).status == FAILED


async def test_retry_from_a_step_reruns_it_and_its_descendants() -> None:
    plugin = Counting()
    async with corral.open_engine(plugins=[plugin], entry_points=False) as engine:
        first = await (await engine.submit(spec())).wait()
        assert first.status == SUCCEEDED
        plugin.calls.clear()
        again = await (await engine.retry(first.id, from_steps=["s2"])).wait()
        assert again.status == SUCCEEDED
        assert calls(plugin) == {"s2": 1, "s4": 1, "s5": 1}
        assert again.result == first.result


async def test_new_inputs_rerun_only_the_steps_they_change() -> None:
    plugin = Counting()
    async with corral.open_engine(plugins=[plugin], entry_points=False) as engine:
        first = await (await engine.submit(spec())).wait()
        plugin.calls.clear()
        preview = await engine.plan_retry(first.id, inputs={"b": 5})
        assert preview.rerun["s3"] == "its params change with the new inputs"
        assert preview.rerun["s6"] == "it needs s3, which runs again"
        again = await (await engine.retry(first.id, inputs={"b": 5})).wait()
        assert again.status == SUCCEEDED
        assert calls(plugin) == {"s3": 1, "s4": 1, "s5": 1, "s6": 1}
        assert again.inputs == {"a": 1, "b": 5}
        assert again.result == {"four": [1, 5], "six": "side"}
        # The same value as before changes nothing: nothing runs.
        plugin.calls.clear()
        same = await (await engine.retry(again.id, inputs={"b": 5})).wait()
        assert same.status == SUCCEEDED and calls(plugin) == {}
        with pytest.raises(InputError, match="'b'"):
            await engine.retry(first.id, inputs={"b": "five"})


async def test_a_changed_handler_version_is_refused_unless_told(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    old = Counting(version="1")
    async with corral.open_engine(url, plugins=[old], entry_points=False) as engine:
        original = await failed_at_s4(engine, old)
    new = Counting(version="2")  # the plugin was upgraded in between
    async with corral.open_engine(url, plugins=[new], entry_points=False) as engine:
        with pytest.raises(RetryRefused) as refused:
            await engine.retry(original.id)
        assert set(refused.value.steps) == {"s1", "s2", "s3", "s6"}
        assert "handler t.count changed version (1 -> 2)" in str(refused.value)
        assert "--rerun-changed" in str(refused.value)
        again = await (await engine.retry(original.id, rerun_changed=True)).wait()
        assert again.status == SUCCEEDED
        assert calls(new) == dict.fromkeys(["s1", "s2", "s3", "s4", "s5", "s6"], 1)


async def test_a_new_definition_with_changed_params_is_refused_and_named(tmp_path: Path) -> None:
    plugin = Counting()
    async with corral.open_engine(plugins=[plugin], entry_points=False) as engine:
        original = await failed_at_s4(engine, plugin)
        changed = diamond()
        changed["version"] = 2
        changed["steps"][5]["params"] = {"value": "other side"}
        with pytest.raises(RetryRefused, match="s6: its params changed in the new definition"):
            await engine.retry(original.id, spec=msgspec.convert(changed, corral.WorkflowSpec))
        plugin.calls.clear()
        handle = await engine.retry(
            original.id, spec=msgspec.convert(changed, corral.WorkflowSpec), rerun_changed=True
        )
        again = await handle.wait()
        assert again.status == SUCCEEDED and again.version == 2
        assert calls(plugin) == {"s4": 1, "s5": 1, "s6": 1}
        assert again.result == {"four": [1, 2], "six": "other side"}
        other = dict(changed, name="elsewhere")
        with pytest.raises(UsageError, match="is of workflow 'diamond'"):
            await engine.retry(original.id, spec=msgspec.convert(other, corral.WorkflowSpec))


async def test_what_cannot_be_retried_says_why() -> None:
    plugin = Counting()
    async with corral.open_engine(plugins=[plugin], entry_points=False) as engine:
        first = await (await engine.submit(spec())).wait()
        with pytest.raises(UsageError, match=r"'s9': workflow 'diamond' has no such step"):
            await engine.retry(first.id, from_steps=["s9"])
        with pytest.raises(corral.ExecutionNotFound):
            await engine.retry("nope")
        slow = {
            "name": "slow",
            "steps": [{"id": "wait", "handler": "core.sleep", "params": {"seconds": 60}}],
        }
        handle = await engine.submit(msgspec.convert(slow, corral.WorkflowSpec))
        with pytest.raises(UsageError, match="only a finished execution can be retried"):
            await engine.retry(handle.id)
        record = await handle.cancel()
        assert record.status == CANCELLED
        again = await engine.plan_retry(record.id)
        assert again.rerun == {"wait": "it was cancelled"}


# ---------------------------------------------------------------- pauses

QUICK = {"name": "quick", "steps": [{"id": "only", "handler": "t.count", "params": {"value": 1}}]}
OTHER = {"name": "other", "steps": [{"id": "only", "handler": "t.count", "params": {"value": 2}}]}


def wf(raw: dict[str, Any]) -> corral.WorkflowSpec:
    return msgspec.convert(raw, corral.WorkflowSpec)


async def wait_status(engine: corral.Engine, execution_id: str, status: str) -> None:
    with trio.fail_after(20):
        while (await engine.get(execution_id)).status != status:
            await trio.sleep(0.02)


async def test_a_pause_holds_queued_work_across_two_engines(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    plugin = Counting()
    async with (
        corral.open_engine(url, plugins=[plugin], entry_points=False) as a,
        corral.open_engine(url, plugins=[plugin], entry_points=False) as b,
    ):
        assert await a.pause("quick") is True
        assert await a.pause("quick") is False  # (already)
        assert await b.paused() == {"quick": pytest.approx(time.time(), abs=60)}
        held = await b.submit(wf(QUICK))
        free = await b.submit(wf(OTHER))
        assert (await free.wait()).status == SUCCEEDED  # another workflow runs on
        await trio.sleep(0.3)
        assert (await b.get(held.id)).status == PENDING
        assert plugin.calls["only"] == 1
        assert await a.unpause("quick") is True  # b hears it through the store
        assert (await held.wait()).status == SUCCEEDED
        assert plugin.calls["only"] == 2
        assert await a.unpause("quick") is False


async def test_pausing_everything_holds_what_workers_would_claim(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    plugin = Counting()
    async with corral.open_engine(url, plugins=[plugin], entry_points=False, run_here=False) as c:
        await c.pause()  # "*": every workflow
        queued = await c.submit(wf(QUICK))
        async with corral.open_engine(
            url, plugins=[plugin], entry_points=False, claim=True, poll=0.1
        ) as worker:
            await trio.sleep(0.5)
            assert (await c.get(queued.id)).status == PENDING
            assert plugin.calls == {}
            await c.unpause()
            await wait_status(worker, queued.id, SUCCEEDED)


async def test_retry_and_pause_on_postgresql(postgres_url: str) -> None:
    plugin = Counting()
    async with corral.open_engine(postgres_url, plugins=[plugin], entry_points=False) as engine:
        original = await failed_at_s4(engine, plugin)
    # Another engine (as another process would): everything comes from the store.
    async with corral.open_engine(postgres_url, plugins=[plugin], entry_points=False) as engine:
        retried = await (await engine.retry(original.id)).wait()
        assert retried.status == SUCCEEDED
        assert calls(plugin) == {"s1": 1, "s2": 1, "s3": 1, "s4": 2, "s5": 1, "s6": 1}
        stored = await engine.get(retried.id)
        assert stored.retry_of == original.id
        assert {s.step_id for s in stored.steps if s.reused_from} == {"s1", "s2", "s3", "s6"}
        await engine.pause("quick")
        held = await engine.submit(wf(QUICK))
        await trio.sleep(0.3)
        assert (await engine.get(held.id)).status == PENDING
        await engine.unpause("quick")
        assert (await held.wait()).status == SUCCEEDED


# ---------------------------------------------------------------- many at once

SLOW = {"name": "slow", "steps": [
    {"id": "first", "handler": "core.echo", "params": {"value": 1}},
    {"id": "nap", "handler": "core.sleep", "needs": ["first"], "params": {"seconds": 60}},
    {"id": "after", "handler": "core.echo", "needs": ["nap"], "params": {"value": 2}},
]}


async def test_cancel_many_stops_them_together_and_records_each(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    async with corral.open_engine(url, entry_points=False) as engine:
        with engine.subscribe() as events:
            handles = [await engine.submit(wf(SLOW)) for _ in range(5)]
            for h in handles:
                await wait_status(engine, h.id, "running")
            with trio.fail_after(20):
                while True:  # every one asleep in its second step
                    records = [await engine.get(h.id) for h in handles]
                    if all(r.step("nap").status == "running" for r in records):
                        break
                    await trio.sleep(0.02)
            found = await engine.select(status="running", workflow="slow")
            assert sorted(r.id for r in found) == sorted(h.id for h in handles)
            touched = await engine.cancel_many([r.id for r in found] + ["unknown"])
            assert touched == sorted(h.id for h in handles)
            for h in handles:
                record = await h.wait()
                assert record.status == CANCELLED
                assert [s.status for s in record.steps] == [SUCCEEDED, CANCELLED, CANCELLED]
                assert record.error is not None and record.error.type == "WorkflowCancelled"
                with pytest.raises(corral.WorkflowCancelled):
                    await h.result()
            finished = []
            with trio.move_on_after(1):
                async for event in events:
                    if event.__class__.__name__ == "WorkflowFinished":
                        finished.append(event.execution_id)
                    if len(finished) == 5:
                        break
            assert sorted(finished) == sorted(h.id for h in handles)
        assert await engine.cancel_many([h.id for h in handles]) == []  # finished: left alone
