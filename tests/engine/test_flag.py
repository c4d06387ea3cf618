"""engine/flag.py: a trio.Event made only when someone waits."""

from __future__ import annotations

import trio
import trio.testing

from corral.engine.flag import Flag


async def test_a_flag_set_before_anyone_waits_never_makes_an_event() -> None:
    flag = Flag()
    assert not flag.is_set()
    flag.set()
    assert flag.is_set()
    with trio.testing.assert_checkpoints():  # (as a set trio.Event's wait)
        await flag.wait()
    assert flag._event is None


async def test_waiters_wake_when_it_is_set(autojump_clock: trio.testing.MockClock) -> None:
    flag = Flag()
    woken: list[int] = []

    async def waiter(n: int) -> None:
        await flag.wait()
        woken.append(n)

    async with trio.open_nursery() as nursery:
        for n in range(3):
            nursery.start_soon(waiter, n)
        await trio.sleep(1)
        assert woken == [] and flag._event is not None
        flag.set()
    assert sorted(woken) == [0, 1, 2]
