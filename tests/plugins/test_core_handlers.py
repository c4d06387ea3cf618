"""The built-in ``core.*`` handlers."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import psutil
import pytest
import trio

import corral
from corral.errors import CommandFailed, NonRetryable
from corral.plugins import StepContext
from corral.plugins.builtin.core import Shell, ShellParams

PY = sys.executable


def one_step(handler: str, *, retry: dict[str, Any] | None = None, **params: Any) -> Any:
    wf = corral.Workflow(f"one-{handler}")
    wf.step("s", handler, retry=retry, **params)
    return wf


async def failed_step(engine: corral.Engine, wf: Any) -> tuple[corral.WorkflowFailed, Any]:
    handle = await engine.submit(wf)
    with pytest.raises(corral.WorkflowFailed) as info:
        await handle.result()
    record = await engine.get(handle.id)
    return info.value, record.step("s")


def ctx() -> StepContext:
    return StepContext(execution_id="x", workflow="w", step_id="s", inputs={}, upstream={})


def pid_if_written(path: Path) -> int | None:
    """The pid the script wrote (atomically, by rename), or None if not yet."""
    return int(path.read_text()) if path.exists() else None


def same_dir(a: str | Path, b: str | Path) -> bool:
    return Path(a).resolve() == Path(b).resolve()


async def wait_for_pid(path: Path) -> int:
    with trio.fail_after(60):  # generous: a slow machine, never a timing assertion
        while (pid := pid_if_written(path)) is None:  # noqa: ASYNC110 (another process)
            await trio.sleep(0.01)
    return pid


# ---------------------------------------------------------------- simple ones


async def test_noop_echo(engine: corral.Engine) -> None:
    assert await engine.run(one_step("core.noop")) == {"s": None}
    assert await engine.run(one_step("core.echo", value={"a": [1, 2.5, None]})) == {
        "s": {"a": [1, 2.5, None]}
    }
    assert await engine.run(one_step("core.echo")) == {"s": None}


async def test_echo_rejects_unknown_params(engine: corral.Engine) -> None:
    with pytest.raises(corral.SpecError, match="vlaue"):
        await engine.run(one_step("core.echo", vlaue=1))


async def test_sleep(autojump_clock: trio.testing.MockClock, engine: corral.Engine) -> None:
    t0 = trio.current_time()
    assert await engine.run(one_step("core.sleep", seconds=30)) == {"s": 30}
    assert trio.current_time() - t0 >= 30


async def test_sleep_rejects_negative(engine: corral.Engine) -> None:
    with pytest.raises(corral.SpecError):
        await engine.run(one_step("core.sleep", seconds=-1))


async def test_fail_is_retried(
    autojump_clock: trio.testing.MockClock, engine: corral.Engine
) -> None:
    exc, step = await failed_step(
        engine, one_step("core.fail", message="nope", retry={"attempts": 3, "backoff": 1})
    )
    assert step.status == "failed"
    assert step.attempts == 3
    assert step.error.type == "StepFailure"
    assert step.error.message == "nope"
    assert exc.step == "s"


async def test_fail_not_retryable(engine: corral.Engine) -> None:
    _, step = await failed_step(
        engine, one_step("core.fail", retryable=False, retry={"attempts": 3, "backoff": 0})
    )
    assert step.attempts == 1
    assert step.error.type == "NonRetryable"
    assert step.error.message == "core.fail was asked to fail"


# ---------------------------------------------------------------- core.shell


async def test_shell_runs_an_argument_list_never_a_shell(engine: corral.Engine) -> None:
    out = await engine.run(one_step("core.shell", args=["echo", "$HOME; echo injected", "*"]))
    assert out["s"] == {
        "returncode": 0,
        "stdout": "$HOME; echo injected *\n",
        "stderr": "",
        "stdout_truncated": False,
        "stderr_truncated": False,
    }


async def test_shell_captures_stdout_and_stderr(engine: corral.Engine) -> None:
    code = "import sys; print('to out'); print('to err', file=sys.stderr)"
    out = (await engine.run(one_step("core.shell", args=[PY, "-c", code])))["s"]
    assert out["stdout"] == "to out\n"
    assert out["stderr"] == "to err\n"


async def test_shell_cwd_and_env(engine: corral.Engine, tmp_path: Path) -> None:
    code = "import os; print(os.getcwd()); print(os.environ['CORRAL_T'])"
    out = await engine.run(
        one_step("core.shell", args=[PY, "-c", code], cwd=str(tmp_path), env={"CORRAL_T": "yes"})
    )
    cwd, value = out["s"]["stdout"].splitlines()
    assert same_dir(cwd, tmp_path)
    assert value == "yes"


async def test_shell_without_inherited_env(engine: corral.Engine) -> None:
    code = "import os; print(sorted(k for k in os.environ if k.startswith('CORRAL_')))"
    os.environ["CORRAL_LEAK"] = "1"
    try:
        out = await engine.run(
            one_step(
                "core.shell",
                args=[PY, "-c", code],
                inherit_env=False,
                env={"CORRAL_ONLY": "1"},
            )
        )
    finally:
        del os.environ["CORRAL_LEAK"]
    assert out["s"]["stdout"].strip() == "['CORRAL_ONLY']"


async def test_shell_output_is_bounded(engine: corral.Engine) -> None:
    code = "import sys; sys.stdout.write('x' * 200000); sys.stderr.write('e' * 10)"
    out = (await engine.run(one_step("core.shell", args=[PY, "-c", code], max_output=100)))["s"]
    assert out["stdout"] == "x" * 100
    assert out["stdout_truncated"] is True
    assert out["stderr"] == "e" * 10
    assert out["stderr_truncated"] is False

    out = (await engine.run(one_step("core.shell", args=[PY, "-c", code], max_output=0)))["s"]
    assert out["stdout"] == "" and out["stdout_truncated"] is True
    assert out["stderr"] == "" and out["stderr_truncated"] is True


async def test_shell_nonzero_exit_fails_with_stderr_tail(engine: corral.Engine) -> None:
    code = (
        "import sys; sys.stderr.write('noise\\n' * 5000); "
        "sys.stderr.write('the real reason\\n'); sys.exit(3)"
    )
    exc, step = await failed_step(engine, one_step("core.shell", args=[PY, "-c", code]))
    assert isinstance(exc.cause, CommandFailed)
    assert exc.cause.returncode == 3
    assert "the real reason" in exc.cause.stderr_tail
    assert step.status == "failed"
    assert step.error.type == "CommandFailed"
    assert "exited with status 3" in step.error.message
    assert step.error.message.rstrip().endswith("the real reason")
    assert len(step.error.message) < 4000  # a tail, not the whole stream


async def test_shell_nonzero_exit_with_check_false(engine: corral.Engine) -> None:
    out = await engine.run(
        one_step("core.shell", args=[PY, "-c", "import sys; sys.exit(5)"], check=False)
    )
    assert out["s"]["returncode"] == 5


async def test_shell_missing_executable_is_non_retryable(engine: corral.Engine) -> None:
    exc, step = await failed_step(
        engine,
        one_step(
            "core.shell",
            args=["corral-no-such-program-xyz", "a"],
            retry={"attempts": 5, "backoff": 0},
        ),
    )
    assert step.attempts == 1
    assert step.error.type == "NonRetryable"
    assert "corral-no-such-program-xyz" in step.error.message
    assert isinstance(exc.cause, NonRetryable)


async def test_shell_timeout_kills_the_process(engine: corral.Engine, tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    script = f"echo $$ > {pidfile}.tmp && mv {pidfile}.tmp {pidfile}; exec sleep 600"
    wf = one_step(
        "core.shell", args=["sh", "-c", script], params={"timeout": 2}, retry={"attempts": 1}
    )
    exc, step = await failed_step(engine, wf)
    assert step.error.type == "CommandFailed"
    assert "timed out after 2.0s" in step.error.message
    assert isinstance(exc.cause, CommandFailed) and exc.cause.returncode == -9
    pid = pid_if_written(pidfile)
    # (If the machine was so slow that sh never wrote its pid, it was killed anyway.)
    if pid is not None:
        assert not psutil.pid_exists(pid)  # killed and reaped: no zombie


async def test_step_timeout_kills_the_process(engine: corral.Engine, tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    script = f"echo $$ > {pidfile}.tmp && mv {pidfile}.tmp {pidfile}; exec sleep 600"
    exc, step = await failed_step(
        engine, one_step("core.shell", args=["sh", "-c", script], timeout=2)
    )
    assert step.status == "timed_out"
    assert step.error.type == "StepTimedOut"
    assert isinstance(exc, corral.WorkflowTimedOut)
    pid = pid_if_written(pidfile)
    if pid is not None:
        assert not psutil.pid_exists(pid)


async def test_cancelling_the_workflow_kills_the_process(
    engine: corral.Engine, tmp_path: Path
) -> None:
    pidfile = tmp_path / "pid"
    script = f"echo $$ > {pidfile}.tmp && mv {pidfile}.tmp {pidfile}; exec sleep 600"
    handle = await engine.submit(one_step("core.shell", args=["sh", "-c", script]))
    pid = await wait_for_pid(pidfile)
    assert psutil.pid_exists(pid)
    record = await engine.cancel(handle.id)
    assert record.status == "cancelled"
    assert record.step("s").status == "cancelled"
    assert not psutil.pid_exists(pid)  # killed and reaped before cancel() returned
    with pytest.raises(corral.WorkflowCancelled):
        await handle.result()


async def test_shell_handler_directly_cancelled(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    script = f"echo $$ > {pidfile}.tmp && mv {pidfile}.tmp {pidfile}; exec sleep 600"
    params = ShellParams(args=["sh", "-c", script])
    async with trio.open_nursery() as nursery:
        nursery.start_soon(Shell().run, ctx(), params)
        pid = await wait_for_pid(pidfile)
        nursery.cancel_scope.cancel()
    assert not psutil.pid_exists(pid)


async def test_shell_params_validation(engine: corral.Engine) -> None:
    with pytest.raises(corral.SpecError):
        await engine.run(one_step("core.shell", args=[]))
    with pytest.raises(corral.SpecError):
        await engine.run(one_step("core.shell", args="echo hi"))
    with pytest.raises(corral.SpecError):
        await engine.run(one_step("core.shell", args=["true"], timeout=0))
