"""A handler's BaseException is its step's failure, not the engine's end
(issue 11, point 1); a real Ctrl-C still stops the engine."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import trio

import corral

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import _worker_handlers  # noqa: E402

KINDS = ["SystemExit", "KeyboardInterrupt", "BaseException", "GeneratorExit", "Custom", "group"]
TYPES = {
    "SystemExit": "SystemExit",
    "KeyboardInterrupt": "KeyboardInterrupt",
    "BaseException": "BaseException",
    "GeneratorExit": "GeneratorExit",
    "Custom": "Custom",
    "group": "BaseExceptionGroup",
}


def _failing(handler: str, kind: str) -> corral.Workflow:
    wf = corral.Workflow(f"bad-{kind}")
    wf.step("bad", handler, retry={"attempts": 3, "backoff": 0}, kind=kind)
    return wf


def _slow() -> corral.Workflow:
    wf = corral.Workflow("unrelated")
    wf.step("wait", "core.sleep", seconds=0.2)
    wf.step("after", "core.echo", needs=["wait"], value="done")
    return wf


@pytest.mark.parametrize("venue", ["test.escapes_async", "test.escapes_blocking"])
@pytest.mark.parametrize("kind", KINDS)
async def test_a_handler_base_exception_fails_only_its_step(
    tmp_path: Path, venue: str, kind: str
) -> None:
    async with corral.open_engine(
        f"sqlite:///{tmp_path / 's.db'}", plugins=[_worker_handlers]
    ) as engine:
        other = await engine.submit(_slow())
        bad = await engine.submit(_failing(venue, kind))
        with pytest.raises(corral.WorkflowFailed):
            await bad.result()
        assert await other.result() == {"after": "done"}  # the other workflow went on
        record = await engine.get(bad.id)
        step = record.steps[0]
        assert record.status == "failed" and step.status == "failed"
        assert step.attempts == 1  # never retried
        assert step.error is not None and step.error.type == TYPES[kind]
        # and the engine takes new work
        assert await engine.run(_slow()) == {"after": "done"}


async def test_a_worker_process_handler_base_exception_fails_only_its_step(
    tmp_path: Path,
) -> None:
    async with corral.open_engine(
        f"sqlite:///{tmp_path / 's.db'}", plugins=[_worker_handlers]
    ) as engine:
        bad = await engine.submit(_failing("test.escapes_cpu", "SystemExit"))
        with pytest.raises(corral.WorkflowFailed):
            await bad.result()
        record = await engine.get(bad.id)
        assert record.steps[0].status == "failed" and record.steps[0].attempts == 1
        assert await engine.run(_slow()) == {"after": "done"}


async def test_a_cancel_still_goes_through_a_handler() -> None:
    async with corral.open_engine(plugins=[_worker_handlers]) as engine:
        handle = await engine.submit(_slow())
        await trio.sleep(0.05)
        record = await handle.cancel()
        assert record.status == "cancelled"


def _run(code: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(code))
    return subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        # (the default store in tmp_path, never the user's own database)
        env={"PYTHONPATH": str(HERE), "PATH": "/usr/bin:/bin", "XDG_DATA_HOME": str(tmp_path)},
    )


def test_a_real_ctrl_c_still_stops_the_engine(tmp_path: Path) -> None:
    # A SIGINT arrives while a handler runs: Trio raises KeyboardInterrupt in
    # the handler's code, and it stops the engine, as before. A handler that
    # raises KeyboardInterrupt itself only fails its step.
    proc = _run(
        """
        import os, signal, trio, corral
        from corral.plugins import Handler, hookimpl

        class Own(Handler):
            name = "t.own"
            async def run(self, ctx, params):
                raise KeyboardInterrupt("mine")

        class Real(Handler):
            name = "t.real"
            async def run(self, ctx, params):
                os.kill(os.getpid(), signal.SIGINT)
                await trio.sleep(5)

        class Plugin:
            @hookimpl
            def corral_handlers(self):
                return [Own, Real]

        async def main():
            async with corral.open_engine(entry_points=False, plugins=[Plugin()]) as engine:
                own = corral.Workflow("own")
                own.step("s", "t.own")
                try:
                    await engine.run(own)
                except corral.WorkflowFailed:
                    print("own: contained", flush=True)
                real = corral.Workflow("real")
                real.step("s", "t.real")
                await engine.run(real)
                print("real: not stopped", flush=True)

        try:
            trio.run(main)
        except KeyboardInterrupt:
            print("real: stopped", flush=True)
        """,
        tmp_path,
    )
    assert proc.stdout.splitlines() == ["own: contained", "real: stopped"], proc.stderr


@pytest.mark.parametrize(
    ("venue", "kind", "says"),
    [
        ("test.returns_bad", "nan", "$['score'] is nan"),
        ("test.returns_bad", "inf", "$[0] is -inf"),
        ("test.returns_bad", "self", "contains itself"),
        ("test.returns_bad", "deep", "nested too deeply"),
        ("test.returns_bad_cpu", "nan", "$['score'] is nan"),
        ("test.returns_bad_cpu", "deep", "nested too deeply"),
    ],
)
async def test_an_output_json_cannot_hold_is_refused_not_retried(
    venue: str, kind: str, says: str
) -> None:
    # nan/inf were stored as null; a self-recursive or very deep output was a
    # RecursionError, retried.
    async with corral.open_engine(plugins=[_worker_handlers]) as engine:
        wf = corral.Workflow(f"out-{kind}")
        wf.step("s", venue, retry={"attempts": 3, "backoff": 0}, kind=kind)
        handle = await engine.submit(wf)
        with pytest.raises(corral.WorkflowFailed):
            await handle.result()
        step = (await engine.get(handle.id)).steps[0]
        assert step.status == "failed" and step.attempts == 1
        assert step.error is not None and step.error.type == "NonRetryable"
        assert "cannot be stored" in step.error.message and says in step.error.message
