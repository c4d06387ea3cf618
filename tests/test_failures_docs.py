"""docs/failures.md as a user reads it: the page's workflow file is saved,
every ``console`` block's commands run in order in one directory and one
store, and each output line the page shows appears in what they print
(ids, durations and dates stand for any); the Python example prints what
the page says."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

PAGE = Path(__file__).resolve().parent.parent / "docs" / "failures.md"
BLOCK = re.compile(r"```(\w+)\n(.*?)```(?:\n\nprints `([^`]*)`)?", re.S)
_ID = re.compile(r"\b[0-9a-f]{24}\b")
_DATE = re.compile(r"\b\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\b")
_SPAN = re.compile(r"\b\d+(?:\.\d+)?(?:ms|s)\b")


def _blocks(lang: str) -> list[tuple[str, str | None]]:
    return [(m.group(2), m.group(3)) for m in BLOCK.finditer(PAGE.read_text()) if m.group(1) == lang]


def _normal(text: str) -> str:
    text = _ID.sub("ID", text)
    text = _DATE.sub("DATE", text)
    return _SPAN.sub("SPAN", text)


def test_the_console_sessions_print_what_the_page_shows(tmp_path: Path) -> None:
    (workflow,) = (code for code, _ in _blocks("yaml"))
    (tmp_path / "nightly.yaml").write_text(workflow)
    env = {**os.environ, "NO_COLOR": "1", "CORRAL_STORE": f"sqlite:///{tmp_path / 'c.db'}"}
    sessions = [code for code, _ in _blocks("console")]
    assert len(sessions) == 5
    for session in sessions:
        output: list[str] = []
        expected: list[str] = []
        for line in session.splitlines():
            if line.startswith("$ "):
                command = line[2:].replace("corral ", f"{sys.executable} -m corral ", 1)
                done = subprocess.run(
                    command, shell=True, capture_output=True, text=True, cwd=tmp_path, env=env,
                    timeout=120,
                )
                assert "Traceback" not in done.stderr, done.stderr
                output.append(done.stdout + done.stderr)
            elif line.strip():
                expected.append(_normal(line.strip()))
        printed = _normal("\n".join(output))
        for line in expected:
            assert line in printed, f"{line!r} not in:\n{printed}"


def test_the_python_example_prints_what_the_page_says(tmp_path: Path) -> None:
    ((code, expected),) = _blocks("python")
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert expected is not None
    assert " | ".join(done.stdout.strip().splitlines()) == expected


def test_the_readme_and_the_api_page_point_here() -> None:
    root = PAGE.parent.parent
    assert "docs/failures.md" in (root / "README.md").read_text()
    api = (root / "docs" / "api.md").read_text()
    assert "/retry" in api and "/v1/pauses" in api and "/v1/bulk/cancel" in api
