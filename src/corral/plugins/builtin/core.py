"""The ``core.*`` handlers: small building blocks for tests, demos and glue.

``core.shell`` runs an argument list (never a shell string, so there is no
quoting or injection to worry about), with a timeout and bounded capture.
"""

from __future__ import annotations

import math
import os
import subprocess
from typing import Annotated, Any

import msgspec
import trio
from msgspec import Meta

from corral.core.errors import CorralError, NonRetryable, StepFailure
from corral.plugins import Handler, StepContext, hookimpl

_SECONDS = Annotated[float, Meta(ge=0)]


class CommandFailed(CorralError):
    """``core.shell``: the command exited with a non-zero status (re-exported as
    ``corral.CommandFailed`` and ``corral.errors.CommandFailed``)."""

    def __init__(self, args: list[str], returncode: int, stderr_tail: str) -> None:
        self.args_ = args
        self.returncode = returncode
        self.stderr_tail = stderr_tail
        tail = f": {stderr_tail.strip()}" if stderr_tail.strip() else ""
        super().__init__(f"command {args[0]!r} exited with status {returncode}{tail}")


class Noop(Handler):
    """Do nothing; output null."""

    name = "core.noop"
    version = "1"

    async def run(self, ctx: StepContext, params: Any) -> Any:
        return None


class Echo(Handler):
    """Return ``value`` (references resolved) as the step's output."""

    name = "core.echo"
    version = "1"

    class Params(msgspec.Struct, forbid_unknown_fields=True):
        value: Annotated[Any, Meta(description="The output: any JSON value.")] = None

    async def run(self, ctx: StepContext, params: Params) -> Any:
        return params.value


class Sleep(Handler):
    """Sleep ``seconds`` (cancellable); output the seconds slept."""

    name = "core.sleep"
    version = "1"

    class Params(msgspec.Struct, forbid_unknown_fields=True):
        seconds: Annotated[_SECONDS, Meta(description="How long to sleep.")]

    async def run(self, ctx: StepContext, params: Params) -> Any:
        await trio.sleep(params.seconds)
        return params.seconds


class Fail(Handler):
    """Fail with ``message``; ``retryable: false`` fails without retries."""

    name = "core.fail"
    version = "1"

    class Params(msgspec.Struct, forbid_unknown_fields=True):
        message: Annotated[str, Meta(description="The error's message.")] = (
            "core.fail was asked to fail"
        )
        retryable: Annotated[
            bool, Meta(description="false: no retry, whatever the step's retry policy.")
        ] = True

    async def run(self, ctx: StepContext, params: Params) -> Any:
        if not params.retryable:
            raise NonRetryable(params.message)
        raise StepFailure(params.message)


class ShellParams(msgspec.Struct, forbid_unknown_fields=True):
    args: Annotated[
        list[str], Meta(min_length=1, description="The command and its arguments (no shell).")
    ]
    cwd: Annotated[str | None, Meta(description="Where it runs (default: here).")] = None
    env: Annotated[dict[str, str], Meta(description="Environment variables to set.")] = (
        msgspec.field(default_factory=dict)
    )
    inherit_env: Annotated[
        bool, Meta(description="false: the command sees only `env`, not this environment.")
    ] = True
    timeout: Annotated[
        Annotated[float, Meta(gt=0)] | None,
        Meta(description="Seconds before the command is killed."),
    ] = None
    max_output: Annotated[
        int, Meta(ge=0, description="Bytes of stdout and of stderr kept (head and tail).")
    ] = 1_000_000
    check: Annotated[bool, Meta(description="false: a non-zero exit does not fail the step.")] = (
        True
    )


class _Capture:
    """Keeps the first ``limit`` bytes of a stream and the last ``limit`` for the tail."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.head = bytearray()
        self.tail = bytearray()
        self.total = 0

    def feed(self, chunk: bytes | bytearray) -> None:
        self.total += len(chunk)
        room = self.limit - len(self.head)
        if room > 0:
            self.head += chunk[:room]
        self.tail += chunk
        if len(self.tail) > 4096:
            del self.tail[:-4096]

    @property
    def truncated(self) -> bool:
        return self.total > len(self.head)

    def text(self) -> str:
        return self.head.decode("utf-8", errors="replace")

    def tail_text(self, chars: int = 2000) -> str:
        return self.tail.decode("utf-8", errors="replace")[-chars:]


async def _drain(stream: trio.abc.ReceiveStream, capture: _Capture) -> None:
    while chunk := await stream.receive_some(65536):
        capture.feed(chunk)


class Shell(Handler):
    """Run a command (an argument list) and capture its output.

    Output: ``{returncode, stdout, stderr, stdout_truncated, stderr_truncated}``.
    A non-zero exit fails the step (unless ``check: false``) with the tail of
    stderr in the error. On timeout or cancellation the process is killed.
    """

    name = "core.shell"
    version = "1"
    Params = ShellParams

    async def run(self, ctx: StepContext, params: ShellParams) -> Any:
        env = dict(os.environ) if params.inherit_env else {}
        env.update(params.env)
        try:
            proc = await trio.lowlevel.open_process(
                params.args,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                cwd=params.cwd,
                env=env,
            )
        except OSError as exc:
            raise NonRetryable(f"cannot run {params.args[0]!r}: {exc.strerror or exc}") from exc
        out, err = _Capture(params.max_output), _Capture(params.max_output)
        timeout = params.timeout if params.timeout is not None else math.inf
        try:
            with trio.fail_after(timeout):
                async with trio.open_nursery() as nursery:
                    assert proc.stdout is not None and proc.stderr is not None
                    nursery.start_soon(_drain, proc.stdout, out)
                    nursery.start_soon(_drain, proc.stderr, err)
                    await proc.wait()
        except trio.TooSlowError:
            raise CommandFailed(
                params.args, -9, f"timed out after {params.timeout}s; {err.tail_text()}"
            ) from None
        finally:
            with trio.CancelScope(shield=True):
                if proc.returncode is None:
                    proc.kill()
                await proc.wait()
                for stream in (proc.stdout, proc.stderr):
                    if stream is not None:
                        await stream.aclose()
        returncode = proc.returncode
        assert returncode is not None
        if params.check and returncode != 0:
            raise CommandFailed(params.args, returncode, err.tail_text())
        return {
            "returncode": returncode,
            "stdout": out.text(),
            "stderr": err.text(),
            "stdout_truncated": out.truncated,
            "stderr_truncated": err.truncated,
        }


@hookimpl
def corral_handlers() -> list[type[Handler]]:
    return [Noop, Echo, Sleep, Fail, Shell]
