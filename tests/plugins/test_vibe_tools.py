"""The analysers ``corral vibe`` runs, run for real on a project with planted
problems: each planted problem comes out as a finding with its file:line."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from corral.plugins.builtin.vibe.tools import (
    RUFF_DEFAULT_EXTRA,
    ToolFailed,
    bandit_findings,
    deptry_findings,
    radon_cc_findings,
    radon_mi_findings,
    ruff_findings,
    run_tool,
    tool_version,
    vulture_findings,
)

BRANCHES = "".join(f"    if x == {i}:\n        r += {i}\n" for i in range(25))
FILES = {
    "pyproject.toml": textwrap.dedent(
        """\
        [project]
        name = "planted"
        version = "0.1"
        dependencies = ["msgspec"]
        """
    ),
    "src/planted/__init__.py": "",
    "src/planted/core.py": (
        "import os\n"  # line 1: an unused import
        "import subprocess\n"
        "import not_installed_anywhere\n"  # line 3: a missing dependency
        "\n\n"
        "def run(cmd):\n"
        "    return subprocess.call(cmd, shell=True)\n"  # line 7: shell=True
        "\n\n"
        "def branchy(x):\n"  # line 10: complexity 26
        "    r = 0\n" + BRANCHES + "    return r\n"
        "\n\n"
        "def dead():\n"
        "    return not_installed_anywhere.x\n"
        "    print('never')\n"  # unreachable
    ),
}


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("planted")
    for rel, text in FILES.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def at(findings: list[dict[str, object]]) -> set[tuple[object, object, object]]:
    return {(f["rule"], f["file"], f["line"]) for f in findings}


def test_ruff_finds_the_unused_import(project: Path) -> None:
    out = run_tool(
        "ruff",
        ["check", "--output-format", "json", "--exit-zero", "--no-cache", "--isolated",
         *RUFF_DEFAULT_EXTRA, "src"],
        project,
    )
    found = ruff_findings(out, project)
    assert ("F401", "src/planted/core.py", 1) in at(found)
    (unused,) = [f for f in found if f["rule"] == "F401"]
    assert unused["fixable"] is True and unused["kind"] == "lint"


def test_radon_finds_the_complex_function(project: Path) -> None:
    found = radon_cc_findings(run_tool("radon", ["cc", "-j", "-n", "C", "src"], project), project)
    assert at(found) == {("CC-D", "src/planted/core.py", 10)}
    assert found[0]["value"] == 26 and found[0]["severity"] == "high"
    findings, index = radon_mi_findings(run_tool("radon", ["mi", "-j", "src"], project), project)
    assert set(index) == {"src/planted/__init__.py", "src/planted/core.py"}
    assert findings == []  # nothing planted below the threshold


def test_bandit_finds_the_shell_call(project: Path) -> None:
    out = run_tool("bandit", ["-r", "-f", "json", "-q", "src"], project, ok_codes=(0, 1))
    found = bandit_findings(out, project)
    assert ("B602", "src/planted/core.py", 7) in at(found)
    (shell,) = [f for f in found if f["rule"] == "B602"]
    assert shell["severity"] == "high" and shell["confidence"] == "high"


def test_deptry_finds_the_missing_and_the_unused_dependency(project: Path, tmp_path: Path) -> None:
    report = tmp_path / "deptry.json"
    run_tool("deptry", [".", "--json-output", str(report)], project, ok_codes=(0, 1))
    found = deptry_findings(json.loads(report.read_text()), project)
    assert ("DEP001", "src/planted/core.py", 3) in at(found)
    assert ("DEP002", "pyproject.toml", None) in at(found)


def test_vulture_finds_the_dead_code(project: Path) -> None:
    out = run_tool("vulture", ["src", "--min-confidence", "80"], project, ok_codes=(0, 1, 2, 3))
    found = vulture_findings(out, project)
    rules = at(found)
    assert ("unused-import", "src/planted/core.py", 1) in rules
    source = FILES["src/planted/core.py"].splitlines()
    unreachable = source.index("    print('never')") + 1
    assert ("unreachable-code-after", "src/planted/core.py", unreachable) in rules


def test_a_missing_tool_is_a_clear_error(project: Path) -> None:
    with pytest.raises(ToolFailed, match="not installed"):
        run_tool("no_such_analyser_xyz", [], project)
    assert tool_version("no-such-analyser-xyz") == "missing"
    assert tool_version("radon") == "6.0.1"


def test_a_crashing_tool_is_a_clear_error(project: Path) -> None:
    with pytest.raises(ToolFailed, match=r"radon failed \(exit 2\)"):
        run_tool("radon", ["--no-such-option"], project)
