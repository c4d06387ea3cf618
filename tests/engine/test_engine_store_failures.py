"""A store that cannot be written (a full disk) does not leave work stuck: the
engine that gave an execution up resumes it itself once writes succeed again
(issue 11, point 4)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import trio

import corral
import corral.storage

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _faulty_store import FaultyStore  # noqa: E402


def _two_steps(seconds: float) -> corral.Workflow:
    wf = corral.Workflow("two")
    wf.step("a", "core.sleep", seconds=seconds)
    wf.step("b", "core.echo", needs=["a"], value="done")
    return wf


async def _finished(engine: corral.Engine, execution_id: str, within: float) -> Any:
    with trio.fail_after(within):
        while (record := await engine.get(execution_id)).status not in ("succeeded", "failed"):
            await trio.sleep(0.05)
    return record


async def test_an_execution_given_up_on_a_store_fault_is_resumed_by_its_engine() -> None:
    store = FaultyStore()
    limits = corral.Limits(status_write_timeout=0.3)
    async with corral.open_engine(store, entry_points=False, lease=1.0, limits=limits) as engine:
        handle = await engine.submit(_two_steps(0.2))
        await trio.sleep(0.05)
        store.fail_writes = True  # step a's end cannot be recorded: given up after 0.3 s
        with pytest.raises(corral.WorkflowCancelled):
            await handle.result()
        assert (await engine.get(handle.id)).status == "running"
        store.fail_writes = False
        # resumed by this same engine within a lease period, not stuck `running`
        record = await _finished(engine, handle.id, within=5.0)
        assert record.status == "succeeded" and record.result == {"b": "done"}
        assert engine.resumed == 1


@pytest.fixture
def small_disk(tmp_path: Path) -> Any:
    """A 2 MiB tmpfs (root only; skipped where mounting is not permitted)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"mounting a tmpfs is not permitted here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


async def test_a_disk_that_fills_up_mid_run_leaves_nothing_stuck(small_disk: Path) -> None:
    url = f"sqlite:///{small_disk / 'corral.db'}"
    limits = corral.Limits(status_write_timeout=0.5)
    filler = small_disk / "filler"
    async with corral.open_engine(url, entry_points=False, lease=1.0, limits=limits) as engine:
        handle = await engine.submit(_two_steps(0.3))
        await trio.sleep(0.1)
        with filler.open("wb", buffering=0) as fh:  # fill the disk while step a runs
            try:
                while True:
                    fh.write(b"\0" * 65536)
                    fh.flush()
            except OSError:
                pass
        with pytest.raises((corral.WorkflowCancelled, corral.WorkflowFailed)):
            await handle.result()
        filler.unlink()  # space again
        record = await _finished(engine, handle.id, within=10.0)
        assert record.status == "succeeded" and record.result == {"b": "done"}
