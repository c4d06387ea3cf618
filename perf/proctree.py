"""Run a command and measure its wall time and the peak RSS of its process tree.

``corral analyze`` is not one process: the CLI starts worker processes and a
grimp interpreter of its own, so its memory is that of a process tree, and
the figure set beside grimp's must cover the whole tree. Three peaks are kept:

- ``main_mb``: the command's own process, from ``VmHWM`` in ``/proc/<pid>/status``
  (the kernel's high-water mark, exact however seldom it is read, as long as it
  is read before the process exits: polled every 20 ms);
- ``max_mb``: the largest single process of the tree. GNU ``time`` reports
  ``ru_maxrss`` of its child, which the kernel folds every reaped descendant
  into, so it is exact even for a worker that lived 5 ms;
- ``sum_mb``: the most RSS the tree held at once, the sum of ``VmRSS`` over its
  live processes, sampled every 20 ms (never below ``max_mb``). Pages shared
  between processes (the interpreter's own mappings) count once per process.

Why ``/usr/bin/time`` and not ``wait4()`` from this process: on Linux a
child's ``ru_maxrss`` includes the memory of the process it was forked from,
up to its ``exec`` (the kernel keeps the old mm's high-water mark across
``exec``), so every child of a 40 MB perf process would report at least 40 MB.
GNU ``time`` is a few hundred KB, so the figure it reports is the command's.
Without it the peaks come from the polling alone (``method`` says which).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Measured", "run_measured"]

INTERVAL_S = 0.02
# Listing a tree costs psutil a scan of every process on the machine (~1.5 ms
# here); reading a known process's status costs ~30 us. So the tree is listed
# every 5th sample and the known processes are read at every one: the
# sampler then takes ~2% of a core instead of ~12%, on a 2-core machine where
# that is stolen from the measured command. A process that lives less than
# 100 ms may be missed by the sum; its peak is still in GNU time's figure.
DISCOVER_EVERY = 5
_TIME = shutil.which("time", path="/usr/bin:/bin")


@dataclass(frozen=True)
class Measured:
    """One command's exit status, wall time, output and memory peaks (MB)."""

    returncode: int
    wall_s: float
    stdout: str
    stderr: str
    main_mb: float
    max_mb: float
    sum_mb: float
    processes: int  # distinct processes seen in the tree, the command's included
    method: str  # "gnu-time+poll" or "poll"
    timed_out: bool


def _status_kb(pid: int) -> tuple[int, int] | None:
    """(VmRSS, VmHWM) in KiB, or None once the process is gone."""
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            text = f.read()
    except OSError:
        return None
    rss = hwm = 0
    for line in text.splitlines():
        if line.startswith(b"VmRSS:"):
            rss = int(line.split()[1])
        elif line.startswith(b"VmHWM:"):
            hwm = int(line.split()[1])
    return rss, max(hwm, rss)


class _Sampler(threading.Thread):
    """Polls the tree under ``root_pid`` (the ``time`` wrapper or the command)."""

    def __init__(self, root_pid: int, *, wrapped: bool) -> None:
        super().__init__(name="perf-rss-sampler", daemon=True)
        self.root_pid = root_pid
        self.wrapped = wrapped
        self.stop = threading.Event()
        self.main_pid: int | None = None if wrapped else root_pid
        self.peaks: dict[int, int] = {}  # pid -> KiB
        self.sum_kb = 0
        self.known: set[int] = set()
        self.ticks = 0

    def _tree(self) -> list[int]:
        import psutil

        try:
            root = psutil.Process(self.root_pid)
            children = [p.pid for p in root.children(recursive=True)]
        except psutil.Error:
            return []
        if not self.wrapped:
            return [self.root_pid, *children]
        if self.main_pid is None and children:
            # The wrapper's only child is the command; everything below is its tree.
            direct = [p.pid for p in root.children(recursive=False)]
            self.main_pid = direct[0] if direct else None
        return children

    def sample(self) -> None:
        import psutil

        if self.ticks % DISCOVER_EVERY == 0 or self.main_pid is None:
            self.known |= set(self._tree())
        self.ticks += 1
        total = 0
        for pid in sorted(self.known):
            status = _status_kb(pid)
            if status is None:
                try:
                    rss = int(psutil.Process(pid).memory_info().rss) // 1024
                except psutil.Error:
                    self.known.discard(pid)  # gone
                    continue
                status = (rss, rss)
            rss, hwm = status
            total += rss
            if hwm > self.peaks.get(pid, 0):
                self.peaks[pid] = hwm
        self.sum_kb = max(self.sum_kb, total)

    def run(self) -> None:
        self.sample()
        while not self.stop.wait(INTERVAL_S):
            self.sample()


def _gnu_time_kb(path: Path) -> int | None:
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").split()
    except OSError:
        return None
    for word in reversed(lines):
        if word.isdigit():
            return int(word)
    return None


def run_measured(
    cmd: Sequence[str],
    *,
    work: Path,
    label: str,
    timeout: float,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> Measured:
    """Run ``cmd`` to completion (killed after ``timeout``), timing it exactly.

    The wall time runs from just before the spawn to the blocking ``waitpid``
    returning, with no polling in between; the sampler is a separate thread.
    Output goes to files in ``work`` (``<label>.out`` / ``.err``) so that a
    chatty command can never fill a pipe.
    """
    out_path, err_path = work / f"{label}.out", work / f"{label}.err"
    rss_path = work / f"{label}.maxrss"
    full = [*cmd]
    if _TIME is not None:
        full = [_TIME, "-f", "%M", "-o", str(rss_path), *cmd]
    timed_out = threading.Event()
    with out_path.open("wb") as out, err_path.open("wb") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            full, stdout=out, stderr=err, env=env, cwd=cwd, start_new_session=True
        )
        sampler = _Sampler(proc.pid, wrapped=_TIME is not None)
        sampler.start()

        def kill() -> None:
            timed_out.set()
            with contextlib.suppress(OSError):  # the session we started, nothing else
                os.killpg(proc.pid, signal.SIGKILL)

        timer = threading.Timer(timeout, kill)
        timer.start()
        try:
            returncode = proc.wait()
            wall = time.perf_counter() - t0
        finally:
            timer.cancel()
            sampler.stop.set()
            sampler.join()
    kib = 1024.0
    main_kb = sampler.peaks.get(sampler.main_pid or -1, 0)
    exact = _gnu_time_kb(rss_path) if _TIME is not None else None
    max_kb = max([*sampler.peaks.values(), exact or 0, main_kb])
    if exact is not None and len(sampler.peaks) <= 1:
        main_kb = exact  # a lone process: time's figure is its own, exactly
    return Measured(
        returncode=returncode,
        wall_s=wall,
        stdout=out_path.read_text(encoding="utf-8", errors="replace"),
        stderr=err_path.read_text(encoding="utf-8", errors="replace"),
        main_mb=main_kb / kib,
        max_mb=max_kb / kib,
        sum_mb=max(sampler.sum_kb, max_kb) / kib,
        processes=max(1, len(sampler.peaks)),
        method="gnu-time+poll" if exact is not None else "poll",
        timed_out=timed_out.is_set(),
    )
