"""docs/migration.md as a user reads it: every `python` block not marked
`# before:` runs as it is and prints what the page says; `corral convert`
turns the page's legacy file into exactly the file the page shows, which
runs; bad legacy files get errors with their line and path."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

PAGE = Path(__file__).resolve().parent.parent / "docs" / "migration.md"
BLOCK = re.compile(r"```(\w+)\n(.*?)```(?:\n\nprints `([^`]*)`)?", re.S)


def _blocks(lang: str) -> list[tuple[str, str | None]]:
    return [
        (m.group(2), m.group(3)) for m in BLOCK.finditer(PAGE.read_text()) if m.group(1) == lang
    ]


def _runnable() -> list[tuple[str, str | None]]:
    return [(code, out) for code, out in _blocks("python") if not code.startswith("# before:")]


def corral(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "corral", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
        env={**os.environ, "NO_COLOR": "1"},
    )


@pytest.mark.parametrize("index", range(3))
def test_the_python_examples_run(index: int, tmp_path: Path) -> None:
    runnable = _runnable()
    assert len(runnable) == 3
    code, expected = runnable[index]
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert expected is not None and done.stdout.strip() == expected


def test_convert_gives_the_page_s_file(tmp_path: Path) -> None:
    legacy, converted = (code for code, _ in _blocks("yaml"))
    (tmp_path / "nightly.yaml").write_text(legacy)
    done = corral("convert", "nightly.yaml", "--out", "nightly.corral.yaml", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "nightly.corral.yaml").read_text() == converted
    ran = corral(
        "run", "nightly.corral.yaml", "--store", f"sqlite:///{tmp_path / 's.db'}", cwd=tmp_path
    )
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout) == "done"
    shown = corral("validate", "nightly.corral.yaml", "--json", cwd=tmp_path)
    assert json.loads(shown.stdout)["steps"] == ["fetch_data", "step2"]


@pytest.mark.parametrize(
    ("text", "where", "message"),
    [
        ("- type: shell\n  options: [1]\n", ":2: $[0].options", "must be a mapping"),
        ("- type: echo\n- {type: echo, when: x}\n", ":2: $[1].when", "unknown key 'when'"),
        ("steps: []\n", ":1: $.steps", "a list of steps"),
        ("- type: echo\n  retries: -1\n", ":2: $[0].retries", "0 or more"),
        ("name: x\nsteps:\n  - {options: {}}\n", ":3: $.steps[0].type", "name the step's handler"),
    ],
)
def test_bad_legacy_files(tmp_path: Path, text: str, where: str, message: str) -> None:
    (tmp_path / "old.yaml").write_text(text)
    done = corral("convert", "old.yaml", cwd=tmp_path)
    assert done.returncode == 2 and done.stdout == ""
    assert f"corral: error: old.yaml{where}: " in done.stderr and message in done.stderr
    assert "Traceback" not in done.stderr


def test_unknown_handlers_are_named(tmp_path: Path) -> None:
    (tmp_path / "old.json").write_text('[{"type": "legacy.resize", "name": "resize 1"}]')
    done = corral("convert", "old.json", cwd=tmp_path)
    assert done.returncode == 0 and "id: resize_1" in done.stdout
    assert "'legacy.resize' is not installed" in done.stderr and "legacy_handler" in done.stderr


def test_a_legacy_dollar_brace_stays_text(tmp_path: Path) -> None:
    (tmp_path / "old.yaml").write_text(
        "- type: shell\n  options: {args: [sh, -c, 'echo ${HOME:-none}']}\n"
    )
    done = corral("convert", "old.yaml", "--out", "new.yaml", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "$${HOME:-none}" in (tmp_path / "new.yaml").read_text()
    ran = corral("run", "new.yaml", "--store", f"sqlite:///{tmp_path / 's.db'}", cwd=tmp_path)
    assert ran.returncode == 0 and json.loads(ran.stdout)["stdout"].strip() != ""
