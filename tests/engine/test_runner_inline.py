"""A task that has finished its step runs the next ready step itself (runner.py,
``_step_task``). What a task per step gave must still hold: a schedule point
between steps (other tasks run; a cancel or the deadline takes effect), and a
child workflow's handlers do not change the parent step's context."""

from __future__ import annotations

import contextvars
from typing import Any

import msgspec
import trio
import trio.lowlevel

import corral
from corral.plugins import Handler, StepContext, hookimpl

VAR: contextvars.ContextVar[str | None] = contextvars.ContextVar("corral_test_var", default=None)
RAN: list[str] = []


class Jump(Handler):
    """Moves the (mock) clock on without pausing: a step that never yields."""

    name = "t.jump"

    class Params(msgspec.Struct):
        seconds: float = 0.0

    async def run(self, ctx: StepContext, params: Params) -> str:
        RAN.append(ctx.step_id)
        if params.seconds:
            clock = trio.lowlevel.current_clock()
            assert isinstance(clock, trio.testing.MockClock)
            clock.jump(params.seconds)
        return ctx.step_id


class SetVar(Handler):
    name = "t.setvar"

    async def run(self, ctx: StepContext, params: Any) -> None:
        VAR.set(f"set by {ctx.workflow}.{ctx.step_id}")


class GetVar(Handler):
    name = "t.getvar"

    async def run(self, ctx: StepContext, params: Any) -> str | None:
        return VAR.get()


class Plugin:
    @hookimpl
    def corral_handlers(self) -> list[type[Handler]]:
        return [Jump, SetVar, GetVar]


def chain(n: int, timeout: float | None = None, **params: Any) -> corral.Workflow:
    wf = corral.Workflow(f"chain{n}", timeout=timeout)
    previous = None
    for i in range(n):
        previous = wf.step(f"s{i}", "t.jump", needs=[previous] if previous else [], **params)
    return wf


async def test_other_tasks_run_between_the_steps_of_a_chain() -> None:
    passes = 0
    done = False

    async def other() -> None:
        nonlocal passes
        while not done:
            passes += 1
            await trio.lowlevel.checkpoint()

    async with corral.open_engine(entry_points=False, plugins=[Plugin()]) as engine:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(other)
            await engine.run(chain(200))
            done = True
    assert passes >= 150  # one schedule point per step at least, not one per chain


async def test_cancel_takes_effect_between_steps_that_never_pause() -> None:
    RAN.clear()
    async with corral.open_engine(entry_points=False, plugins=[Plugin()]) as engine:
        handle = await engine.submit(chain(2000))
        while not RAN:
            await trio.lowlevel.checkpoint()
        record = await engine.cancel(handle.id)
    assert record.status == "cancelled"
    statuses = [s.status for s in record.steps]
    assert statuses.count("succeeded") < 10, statuses[:20]
    assert set(statuses) == {"succeeded", "cancelled"}


async def test_a_deadline_passed_by_steps_that_never_pause_is_a_timeout(
    autojump_clock: trio.testing.MockClock,
) -> None:
    wf = chain(5, timeout=1.0, seconds=2.0)
    RAN.clear()
    async with corral.open_engine(entry_points=False, plugins=[Plugin()]) as engine:
        handle = await engine.submit(wf)
        record = await handle.wait()
    assert record.status == "timed_out", record
    assert RAN == ["s0"]
    assert [s.status for s in record.steps] == ["succeeded"] + ["cancelled"] * 4


async def test_a_child_workflow_does_not_change_its_parent_steps_context() -> None:
    child = corral.Workflow("child")
    child.step("cset", "t.setvar")
    parent = corral.Workflow("parent")
    kid = parent.step("kid", workflow=child)
    parent.step("after", "t.getvar", needs=[kid])
    async with corral.open_engine(entry_points=False, plugins=[Plugin()]) as engine:
        result = await engine.run(parent)
    assert result == {"after": None}
