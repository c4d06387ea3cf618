"""docs/tutorial.md, run as a new user would: in a fresh virtual
environment, every file the page shows written where it says, every shell
block run as it is (bash), in order, and what the page promises checked."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "tutorial.md"
BLOCK = re.compile(r"```(\w+)\n(.*?)```", re.S)
FILE_NAME = re.compile(r"`([\w./-]+\.(?:yaml|toml|py))`")


def _steps() -> list[tuple[str, str, str | None]]:
    """``(kind, text, file)``: each block of the page in order; a file block
    is named by the last file name before it."""
    text = PAGE.read_text()
    out: list[tuple[str, str, str | None]] = []
    pos = 0
    for m in BLOCK.finditer(text):
        before = text[pos : m.start()]
        pos = m.end()
        lang, body = m.group(1), m.group(2)
        names = FILE_NAME.findall(before)
        out.append((lang, body, None if lang == "sh" else names[-1]))
    return out


def test_the_tutorial_runs_as_written(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True)
    work = tmp_path / "work"
    work.mkdir()
    env = {
        **os.environ,
        "PATH": f"{venv / 'bin'}:{os.environ['PATH']}",
        "VIRTUAL_ENV": str(venv),
        "CORRAL_STORE": f"sqlite:///{tmp_path / 'store.db'}",
        "NO_COLOR": "1",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    }
    env.pop("PYTHONPATH", None)
    outputs: list[str] = []
    stdouts: list[str] = []
    steps = _steps()
    assert [kind for kind, _, _ in steps].count("sh") == 6
    for kind, body, name in steps:
        if kind != "sh":
            assert name is not None, body[:60]
            target = work / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(body)
            continue
        first = body.startswith("pip install -e .\n")  # step 1: from the checkout
        done = subprocess.run(
            ["bash", "-e", "-c", body],
            cwd=ROOT if first else work,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if "kill -9" in body:  # the killed run's own exit is the point, not an error
            assert done.returncode in (0, 137), done.stderr
        else:
            assert done.returncode == 0, f"{body}\n{done.stdout}\n{done.stderr}"
        outputs.append(done.stdout + done.stderr)
        stdouts.append(done.stdout)

    _, ran, plugins, loud, killed, resumed = outputs
    assert "hello.yaml: ok" in ran and re.search(r'"hello corral, on a [A-Z][a-z]+day"', ran)
    assert "greetings.shout" in plugins and "text" in plugins and "Say it louder." in plugins
    assert json.loads(stdouts[3]) == {"say": "HELLO!"} and "succeeded" in loud
    assert "succeeded" not in killed  # killed for good mid-way
    assert "slow" in resumed.split("resuming")[0]  # `corral list --status running` shows it
    assert "resuming 1 execution(s) here" in resumed and "(slow): succeeded" in resumed
    execution = re.search(r"\] (\w+) \(slow\)", resumed)
    assert execution is not None
    shown = subprocess.run(
        ["corral", "show", execution.group(1), "--json"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    steps_of = {s["step_id"]: s for s in json.loads(shown.stdout)["steps"]}
    assert steps_of["first"]["attempts"] == 1 and steps_of["second"]["status"] == "succeeded"


def test_the_readme_names_every_page() -> None:
    readme = (ROOT / "README.md").read_text()
    pages = sorted(p.name for p in (ROOT / "docs").glob("*.md"))
    assert [p for p in pages if f"(docs/{p})" not in readme] == []
