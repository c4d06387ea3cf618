"""A cpu handler that reports how its worker process was started, and a tree
whose packages shadow the standard library (tests/engine/test_workers.py).

A plain module, so that worker processes can import it."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import msgspec

from corral.plugins import Handler, StepContext, hookimpl

# Modules a spawned child imports while it boots (signal, selectors, threading,
# types ...), others imported early by Python or later by corral and its
# dependencies: none of them may ever come from the current directory.
SHADOWING = (
    "textwrap",
    "signal",
    "threading",
    "types",
    "selectors",
    "json",
    "os",
    "trio",
    "corral",
    "grimp",
)

# Builtins only: the package may be called os, sys is always the real one.
_MARKER = """\
import sys
with open({marker!r}, "a") as _f:
    _f.write(__name__ + " " + repr(sys.argv[:2]) + "\\n")
"""


def shadowing_tree(root: Path, marker: Path) -> Path:
    """Fill ``root`` with packages named like :data:`SHADOWING`, each of which
    appends its name (and the importing process's ``argv``) to ``marker``,
    and with a small project ``demo`` for ``corral analyze``."""
    root.mkdir(parents=True, exist_ok=True)
    for name in SHADOWING:
        (root / name).mkdir()
        (root / name / "__init__.py").write_text(_MARKER.format(marker=str(marker)))
    (root / "pyproject.toml").write_text('[project]\nname = "demo"\n')
    (root / "demo").mkdir()
    (root / "demo" / "__init__.py").write_text("import demo.api\n")
    (root / "demo" / "api.py").write_text("import json\nimport textwrap\n")
    return root


def imported(marker: Path) -> list[str]:
    """The lines the shadowing packages wrote: empty when none was imported."""
    return marker.read_text().splitlines() if marker.exists() else []


class WorkerFacts(Handler):
    """cpu: how this worker process was started and where it imports from."""

    name = "test.worker_facts"
    kind = "cpu"

    def run(self, ctx: StepContext, params: Any) -> Any:
        return {
            "pid": os.getpid(),
            "safe_path": bool(sys.flags.safe_path),
            "sys_path": list(sys.path),
            "cwd": os.getcwd(),
        }


@hookimpl
def corral_handlers() -> list[type[Handler]]:
    return [WorkerFacts]


class _Kind(msgspec.Struct):
    kind: str


class Escapes(Handler):
    """Raises what ``params.kind`` names, from any venue (async, a thread, a
    worker process): what a misbehaving handler may do."""

    name = "test.escapes"
    Params = _Kind

    def run(self, ctx: StepContext, params: Any) -> Any:
        raise make_escape(params.kind)


class EscapesBlocking(Escapes):
    name = "test.escapes_blocking"
    kind = "blocking"


class EscapesCpu(Escapes):
    name = "test.escapes_cpu"
    kind = "cpu"


class EscapesAsync(Handler):
    name = "test.escapes_async"
    Params = _Kind

    async def run(self, ctx: StepContext, params: Any) -> Any:
        raise make_escape(params.kind)


class Custom(BaseException):
    """A BaseException subclass of the handler's own."""


def make_escape(kind: str) -> BaseException:
    if kind == "group":
        return BaseExceptionGroup("several", [SystemExit(4), ValueError("v")])
    return {
        "SystemExit": SystemExit(3),
        "KeyboardInterrupt": KeyboardInterrupt("from the handler"),
        "BaseException": BaseException("bare"),
        "GeneratorExit": GeneratorExit("closed"),
        "Custom": Custom("its own"),
    }[kind]


@hookimpl(specname="corral_handlers")
def escaping_handlers() -> list[type[Handler]]:
    return [EscapesBlocking, EscapesCpu, EscapesAsync]


def bad_output(kind: str) -> Any:
    if kind == "nan":
        return {"ok": [1.0, 2.5], "score": float("nan")}
    if kind == "inf":
        return [float("-inf")]
    if kind == "self":
        loop: list[Any] = []
        loop.append(loop)
        return loop
    deep: list[Any] = []
    inner = deep
    for _ in range(100_000):
        inner.append([])
        inner = inner[0]
    return deep


class ReturnsBad(Handler):
    """Returns a value JSON cannot hold (``params.kind``)."""

    name = "test.returns_bad"
    Params = _Kind

    async def run(self, ctx: StepContext, params: Any) -> Any:
        return bad_output(params.kind)


class ReturnsBadCpu(Handler):
    name = "test.returns_bad_cpu"
    kind = "cpu"
    Params = _Kind

    def run(self, ctx: StepContext, params: Any) -> Any:
        return bad_output(params.kind)


@hookimpl(specname="corral_handlers")
def bad_output_handlers() -> list[type[Handler]]:
    return [ReturnsBad, ReturnsBadCpu]


class _Seconds(msgspec.Struct):
    seconds: float


class BlocksTheLoop(Handler):
    """An async handler that blocks: what the plugin guide says never to do."""

    name = "test.blocks_the_loop"
    Params = _Seconds

    async def run(self, ctx: StepContext, params: Any) -> Any:
        import time

        time.sleep(params.seconds)  # noqa: ASYNC251 - on purpose
        return "done"


@hookimpl(specname="corral_handlers")
def blocking_by_mistake() -> list[type[Handler]]:
    return [BlocksTheLoop]
