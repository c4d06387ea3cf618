"""Legacy handler adapters (corral.plugins.compat.legacy_handler)."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import trio
import trio.lowlevel

import corral
from corral.plugins import Handler, hookimpl
from corral.plugins.compat import legacy_handler
from corral.plugins.manager import build_registry


class SyncHandle:
    def __init__(self) -> None:
        self.commands: list[dict[str, Any]] = []
        self.threads: list[int] = []

    def handle(self, command: dict[str, Any]) -> dict[str, Any]:
        self.commands.append(command)
        self.threads.append(threading.get_ident())
        return {"total": command["a"] + command["b"]}


class AsyncHandle:
    async def handle(self, command: dict[str, Any]) -> dict[str, Any]:
        await trio.lowlevel.checkpoint()
        return {"echo": command, "async": True}


class SyncExecute:
    def execute(self, command: dict[str, Any]) -> dict[str, Any]:
        return {"executed": command.get("what")}


class AsyncExecute:
    async def execute(self, command: dict[str, Any]) -> dict[str, Any]:
        return {"executed_async": command.get("what")}


class ReturnsNone:
    def handle(self, command: dict[str, Any]) -> None:
        return None


class ReturnsList:
    def handle(self, command: dict[str, Any]) -> list[int]:
        return [1, 2, 3]


class AsyncReturnsString:
    async def execute(self, command: dict[str, Any]) -> str:
        return "ok"


class Mutates:
    def handle(self, command: dict[str, Any]) -> dict[str, Any]:
        command["added"] = True
        return command


class Plugin:
    def __init__(self, *handlers: type[Handler]) -> None:
        self.handlers = list(handlers)

    @hookimpl
    def corral_handlers(self) -> list[type[Handler]]:
        return self.handlers


def test_adapter_shapes() -> None:
    sync = legacy_handler(SyncHandle(), name="legacy.sync", version="7")
    assert issubclass(sync, Handler)
    assert sync.name == "legacy.sync"
    assert sync.version == "7"
    assert sync.kind == "blocking"
    assert "SyncHandle.handle" in sync.description
    a = legacy_handler(AsyncExecute(), name="legacy.async")
    assert a.kind == "async"
    assert "AsyncExecute.execute" in a.description
    # Both pass the registry's checks.
    reg = build_registry([Plugin(sync, a)], entry_points=False)
    assert reg["legacy.sync"] is sync and reg["legacy.async"] is a


def test_adapter_descriptions() -> None:
    class Resize:
        """Resize an image to the given width.

        (The rest of the docstring is not the description.)"""

        def handle(self, command: dict[str, Any]) -> dict[str, Any]:
            return command

    assert legacy_handler(Resize(), name="img.resize").description == (
        "Resize an image to the given width."
    )
    told = legacy_handler(Resize(), name="img.r2", description="Resizes images")
    assert told.description == "Resizes images"
    assert "SyncHandle.handle" in legacy_handler(SyncHandle, name="s.h").description


def test_not_a_legacy_handler() -> None:
    with pytest.raises(corral.PluginError, match="neither handle"):
        legacy_handler(object(), name="x.y")
    with pytest.raises(corral.PluginError, match="name"):
        legacy_handler(SyncHandle(), name="")


def test_class_is_instantiated_once() -> None:
    cls = legacy_handler(SyncExecute, name="legacy.cls")
    assert cls.kind == "blocking"

    class NeedsArgs:
        def __init__(self, x: int) -> None:
            self.x = x

        def handle(self, command: dict[str, Any]) -> dict[str, Any]:
            return {}

    with pytest.raises(corral.PluginError, match="pass an instance"):
        legacy_handler(NeedsArgs, name="legacy.args")


async def test_all_four_shapes_run_as_steps_unchanged() -> None:
    sync_obj = SyncHandle()
    handlers = [
        legacy_handler(sync_obj, name="legacy.sync_handle"),
        legacy_handler(AsyncHandle(), name="legacy.async_handle"),
        legacy_handler(SyncExecute(), name="legacy.sync_execute"),
        legacy_handler(AsyncExecute(), name="legacy.async_execute"),
        legacy_handler(ReturnsNone(), name="legacy.none"),
    ]
    spec = corral.loads(
        """
name: legacy
inputs:
  b: {type: integer}
steps:
  - id: add
    handler: legacy.sync_handle
    params: {a: 1, b: "${inputs.b}"}
  - id: ahandle
    handler: legacy.async_handle
    needs: [add]
    params: {total: "${steps.add.output.total}", nested: {k: [1, 2]}}
  - id: sexec
    handler: legacy.sync_execute
    params: {what: sync}
  - id: aexec
    handler: legacy.async_execute
    params: {what: async}
  - id: none
    handler: legacy.none
"""
    )
    async with corral.open_engine(entry_points=False, plugins=[Plugin(*handlers)]) as engine:
        result = await engine.run(spec, {"b": 41})
    assert result == {
        "ahandle": {"echo": {"total": 42, "nested": {"k": [1, 2]}}, "async": True},
        "sexec": {"executed": "sync"},
        "aexec": {"executed_async": "async"},
        "none": {},
    }
    assert sync_obj.commands == [{"a": 1, "b": 41}]
    assert type(sync_obj.commands[0]) is dict
    # A sync legacy method runs in a worker thread, never in the event loop's.
    assert sync_obj.threads[0] != threading.get_ident()


async def test_each_call_gets_a_fresh_command_dict() -> None:
    handler = legacy_handler(Mutates(), name="legacy.mutates")
    wf = corral.Workflow("mut")
    wf.step("one", "legacy.mutates", x=1)
    wf.step("two", "legacy.mutates", needs=["one"], x=2)
    async with corral.open_engine(entry_points=False, plugins=[Plugin(handler)]) as engine:
        assert await engine.run(wf) == {"two": {"x": 2, "added": True}}
        assert await engine.run(wf) == {"two": {"x": 2, "added": True}}


@pytest.mark.parametrize(
    ("obj", "returned"),
    [
        (ReturnsList(), "list"),
        (AsyncReturnsString(), "str"),
    ],
)
async def test_non_dict_return_fails_the_step_with_handler_error(obj: Any, returned: str) -> None:
    handler = legacy_handler(obj, name="legacy.bad")
    wf = corral.Workflow("bad")
    wf.step("s", "legacy.bad", anything=1)
    async with corral.open_engine(entry_points=False, plugins=[Plugin(handler)]) as engine:
        handle = await engine.submit(wf)
        with pytest.raises(corral.WorkflowFailed) as info:
            await handle.result()
        assert info.value.step == "s"
        assert isinstance(info.value.cause, corral.HandlerError)
        assert f"returned {returned}" in str(info.value.cause)
        record = await engine.get(handle.id)
    step = record.step("s")
    assert step.status == "failed"
    assert step.error is not None and step.error.type == "HandlerError"
    assert "legacy.bad" in step.error.message
