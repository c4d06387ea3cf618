"""A worker process for the chaos test (tests/test_worker_chaos.py)::

    python _chaos_worker.py URL SIDE_FILE

It runs ``corral.server.worker.serve`` (what ``corral worker`` runs) with one more
handler, ``chaos.step``, which appends ``execution:step:pid:start`` to the
side file on every invocation (one ``write`` on an O_APPEND descriptor) and
sleeps a little, so that a SIGKILL finds steps half done.
"""

# ruff: noqa: ASYNC230 (one tiny append per step)
from __future__ import annotations

import os
import random
import sys
import time
from typing import Any

import trio

from corral.plugins import Handler, StepContext, hookimpl
from corral.server.worker import serve


class ChaosPlugin:
    def __init__(self, side: str) -> None:
        self.side = side

    @hookimpl
    def corral_handlers(self) -> list[type[Handler]]:
        side = self.side

        class Step(Handler):
            name = "chaos.step"

            async def run(self, ctx: StepContext, params: Any) -> Any:
                line = f"{ctx.execution_id}:{ctx.step_id}:{os.getpid()}:{time.time()!r}\n"
                fd = os.open(side, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
                try:
                    os.write(fd, line.encode())
                finally:
                    os.close(fd)
                await trio.sleep(random.uniform(0, 0.004))
                return ctx.step_id

        return [Step]


def main() -> None:
    url, side = sys.argv[1], sys.argv[2]
    trio.run(
        lambda: serve(
            url,
            concurrency=32,
            lease=1.0,
            grace=0,
            plugins=[ChaosPlugin(side)],
            entry_points=False,
            say=lambda line: print(line, file=sys.stderr, flush=True),
        )
    )


if __name__ == "__main__":
    main()
