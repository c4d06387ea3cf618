"""Work on analysed files in a throwaway process, one bad file at a time.

Parsers written in native code can take their process down on a
pathological file (a stack overflow in grimp's or libcst's parser is a
segmentation fault, not an exception), or run for minutes. Such work runs in
:mod:`._child`, started here as ``python -I <script>`` in an empty temporary
directory, on chunks of files. The child announces each chunk before working
on it; when it dies or overruns a chunk's time, the chunk that was running
is split in two and the work goes on in a new child, until the file that
causes it stands alone and gets an error result. Every other file keeps its
result, so a report never fails because of one file.
"""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec

__all__ = ["ChildFailed", "discard_spare", "prestart", "run_isolated"]

CHILD = Path(__file__).with_name("_child.py")

#: Restarts allowed per file in the job before giving up (a child that cannot
#: start at all, e.g. grimp missing, fails on the first try).
_RESTARTS_PER_ITEM = 2


class ChildFailed(RuntimeError):
    """The isolated child could not do its work at all (not one bad file)."""


def _reader(stream: Any, lines: queue.Queue[bytes | None]) -> None:
    for line in stream:
        lines.put(line)
    lines.put(None)


class _Child:
    """A started child and the file its stderr goes to."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.err = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the child
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
        # -I: neither the working directory nor the script's folder is on
        # sys.path, so where it runs does not matter; a neutral one anyway.
        self.proc = subprocess.Popen(
            [sys.executable, "-I", str(CHILD), mode],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.err,
            cwd=tempfile.gettempdir(),
            env=env,
        )


_TAKEN: dict[str, Any] = {}  # a result handed to on_result (not kept)

_spare: _Child | None = None
_spare_lock = threading.Lock()


def prestart(mode: str) -> None:
    """Start a child for ``mode`` now, so that its interpreter start-up and
    imports (~0.1 s) overlap other work; the next :func:`run_isolated` in
    that mode takes it. A spare nobody takes exits by itself: when this
    process ends (its stdin closes) or after a minute idle."""
    global _spare
    with _spare_lock:
        if _spare is None or _spare.proc.poll() is not None:
            _spare = _Child(mode)


def discard_spare() -> None:
    """End a spare child that nobody took (its work came from the cache): it
    would only hold memory until this process ends."""
    global _spare
    with _spare_lock:
        spare, _spare = _spare, None
    if spare is not None:
        spare.proc.kill()
        spare.proc.wait()
        spare.err.close()


def _child(mode: str) -> _Child:
    global _spare
    with _spare_lock:
        spare, _spare = _spare, None
    if spare is not None and spare.mode == mode and spare.proc.poll() is None:
        return spare
    if spare is not None:  # another mode, or it timed out: not used
        spare.proc.kill()
        spare.proc.wait()
        spare.err.close()
    return _Child(mode)


def _run_child(
    mode: str,
    shared: dict[str, Any],
    chunks: list[list[Any]],
    chunk_timeout: float,
    on_chunk: Callable[[int, list[Any]], None],
) -> tuple[int | None, str, bool]:
    """Run one child over ``chunks``; ``on_chunk(k, results)`` for each chunk
    done. Returns (the chunk that was running when the child died or ran out
    of time, or ``None`` when all were done; the tail of its stderr; whether
    it ran out of time)."""
    child = _child(mode)
    proc, err = child.proc, child.err
    with err:
        lines: queue.Queue[bytes | None] = queue.Queue()
        reader = threading.Thread(target=_reader, args=(proc.stdout, lines), daemon=True)
        reader.start()
        running: int | None = None
        finished = overran = False
        try:
            assert proc.stdin is not None
            try:
                proc.stdin.write(
                    msgspec.json.encode({"mode": mode, "shared": shared, "chunks": chunks})
                )
                proc.stdin.close()
            except BrokenPipeError:
                pass
            deadline = time.monotonic() + chunk_timeout * 2  # start-up included
            while True:
                try:
                    line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    overran = True  # the running chunk is to blame
                    break
                if line is None:
                    break  # the child exited
                try:
                    message = msgspec.json.decode(line)
                except msgspec.DecodeError:  # cut short by the child's death
                    break
                if "begin" in message:
                    running = int(message["begin"])
                    deadline = time.monotonic() + chunk_timeout
                elif "done" in message:
                    on_chunk(int(message["done"]), message["results"])
                    running = None
                elif message.get("end"):
                    finished = True  # all done: its exit (interpreter teardown) is not awaited
                    break
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            reader.join(timeout=5)
            err.seek(0)
            tail = err.read()[-4000:].decode("utf-8", "replace").strip()
        if finished:
            return None, tail, False
        if running is None:
            raise ChildFailed(tail.splitlines()[-1] if tail else f"exit status {proc.returncode}")
        return running, tail, overran


def run_isolated(
    mode: str,
    shared: dict[str, Any],
    items: list[Any],
    *,
    chunk_size: int = 64,
    chunk_timeout: float = 60.0,
    on_progress: Callable[[int, int], None] | None = None,
    on_result: Callable[[int, dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """One result per item (in order), computed by :mod:`._child` in ``mode``.
    With ``on_result``, each is handed to ``on_result(index, result)`` as it
    arrives instead (the caller's work on it overlaps the child's on the next
    chunk, and no result is held here: the list returned is empty).

    An item whose chunk crashed the child, or overran ``chunk_timeout``
    seconds, alone gets ``{"error": "crash" | "timeout", "message": ...}``.
    Raises :class:`ChildFailed` when the child fails outside any chunk (it
    could not start, or its job was malformed).
    """
    results: list[dict[str, Any] | None] = [None] * len(items)
    todo: list[list[int]] = [
        list(range(i, min(i + chunk_size, len(items)))) for i in range(0, len(items), chunk_size)
    ]
    budget = _RESTARTS_PER_ITEM * max(8, len(items).bit_length() * 8)
    done = 0
    while todo:
        batch = todo

        def record(k: int, chunk_results: list[Any], batch: list[list[int]] = batch) -> None:
            nonlocal done
            for index, result in zip(batch[k], chunk_results, strict=True):
                if on_result is None:
                    results[index] = result
                else:
                    results[index] = _TAKEN
                    on_result(index, result)
            done += len(batch[k])
            if on_progress is not None:
                on_progress(done, len(items))

        running, tail, overran = _run_child(
            mode, shared, [[items[i] for i in chunk] for chunk in batch], chunk_timeout, record
        )
        if running is None:
            break
        budget -= 1
        if budget < 0:
            raise ChildFailed(f"the analysis child kept failing: {tail[-300:]}")
        bad = batch[running]
        if len(bad) == 1:
            kind = "timeout" if overran else "crash"
            last = tail.splitlines()[-1] if tail else ""
            lost: dict[str, Any] = {"error": kind, "message": last}
            results[bad[0]] = lost if on_result is None else _TAKEN
            if on_result is not None:
                on_result(bad[0], lost)
            done += 1
            todo = batch[running + 1 :]
        else:
            half = len(bad) // 2
            todo = [bad[:half], bad[half:], *batch[running + 1 :]]
    for index, result in enumerate(results):
        if result is None:
            missing: dict[str, Any] = {"error": "crash", "message": "no result"}
            results[index] = missing
            if on_result is not None:
                on_result(index, missing)
    return [] if on_result is not None else [r for r in results if r is not None]
