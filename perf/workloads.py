"""The three workloads, described once and run by corral and by the baselines.

A workload is a small DAG of :class:`StepDef`. corral gets it as a
``corral.Workflow`` whose params are ``${...}`` references; the raw-Trio
baselines resolve the very same argument descriptions by hand. Both sides call
the same trivial step functions (:data:`FUNCTIONS`) and every workflow's result
is compared with a closed-form :func:`expected` value computed independently of
either, so a mode that skipped work or wired a dependency wrongly fails the run
instead of looking fast.

The step functions are async and do no I/O, so what a workload measures is the
engine's own overhead per workflow and per step.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import trio

__all__ = [
    "FULL_N",
    "FUNCTIONS",
    "QUICK_N",
    "WORKLOADS",
    "Arg",
    "StartClock",
    "StepDef",
    "Workload",
    "expected",
]

# N per workload, from issue 5.
FULL_N: dict[str, int] = {"single": 2000, "fanout": 500, "chain": 500}
# Small enough for the test suite, large enough that every code path runs.
QUICK_N: dict[str, int] = {"single": 200, "fanout": 40, "chain": 40}

FANOUT_WIDTH = 10
CHAIN_LENGTH = 10


# An argument is a literal int, ("input", name), ("step", step_id) or a list of those.
Arg = int | tuple[str, str] | list[Any]


@dataclass(frozen=True)
class StepDef:
    """One step: which function, its arguments (by description) and what it needs."""

    id: str
    fn: str
    args: Mapping[str, Arg]
    needs: tuple[str, ...] = ()


@dataclass(frozen=True)
class Workload:
    """A named DAG of steps; ``output`` is the step whose output is the result."""

    name: str
    steps: tuple[StepDef, ...]
    output: str
    description: str = ""


def _single() -> Workload:
    return Workload(
        "single",
        (StepDef("s", "inc", {"value": ("input", "i")}),),
        output="s",
        description="1 step returning i+1",
    )


def _fanout() -> Workload:
    steps = [StepDef("root", "inc", {"value": ("input", "i")})]
    for k in range(FANOUT_WIDTH):
        steps.append(StepDef(f"p{k}", "add", {"a": ("step", "root"), "b": k}, needs=("root",)))
    parts = tuple(f"p{k}" for k in range(FANOUT_WIDTH))
    steps.append(StepDef("join", "sum", {"values": [("step", p) for p in parts]}, needs=parts))
    return Workload(
        "fanout",
        tuple(steps),
        output="join",
        description=f"root i+1, {FANOUT_WIDTH} parallel root+k, join = sum",
    )


def _chain() -> Workload:
    steps = [StepDef("c0", "inc", {"value": ("input", "i")})]
    for k in range(1, CHAIN_LENGTH):
        steps.append(
            StepDef(f"c{k}", "inc", {"value": ("step", f"c{k - 1}")}, needs=(f"c{k - 1}",))
        )
    return Workload(
        "chain",
        tuple(steps),
        output=f"c{CHAIN_LENGTH - 1}",
        description=f"{CHAIN_LENGTH} sequential steps, each input+1, from i",
    )


WORKLOADS: dict[str, Workload] = {w.name: w for w in (_single(), _fanout(), _chain())}


def expected(workload: str, i: int) -> int:
    """The right result for input ``i``, in closed form (not by running the DAG)."""
    if workload == "single":
        return i + 1
    if workload == "fanout":
        return FANOUT_WIDTH * (i + 1) + sum(range(FANOUT_WIDTH))
    if workload == "chain":
        return i + CHAIN_LENGTH
    raise KeyError(workload)


class StartClock:
    """When each workflow's first step started running, keyed by its input ``i``.

    Steps stamp it themselves (first stamp wins), so "start latency" ends at the
    moment user code runs, the same instant for corral and for the baselines.
    """

    def __init__(self) -> None:
        self.starts: dict[int, float] = {}

    def stamp(self, i: int) -> None:
        if i not in self.starts:
            self.starts[i] = time.perf_counter()

    def clear(self) -> None:
        self.starts.clear()


CLOCK = StartClock()


async def inc(value: int) -> int:
    return value + 1


async def add(a: int, b: int) -> int:
    return a + b


async def total(values: list[int]) -> int:
    return sum(values)


FUNCTIONS: dict[str, Callable[..., Awaitable[int]]] = {"inc": inc, "add": add, "sum": total}


class Blocker:
    """Steps that sleep until cancelled, counting how many run and how many ended.

    ``all_running`` fires when ``target`` steps are inside their sleep, which is
    when the in-flight RSS is sampled and the cancel clock starts.
    """

    def __init__(self) -> None:
        self.running = 0
        self.ended = 0
        self.target = 0
        self.all_running = trio.Event()

    def arm(self, target: int) -> None:
        self.running = 0
        self.ended = 0
        self.target = target
        self.all_running = trio.Event()

    async def block(self) -> None:
        self.running += 1
        if self.running == self.target:
            self.all_running.set()
        try:
            await trio.sleep_forever()
        finally:
            self.ended += 1


BLOCKER = Blocker()
