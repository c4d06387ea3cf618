"""The analysers ``corral vibe`` runs, each a real tool at a pinned version
(the ``corral[vibe]`` extra), run as ``python -m TOOL`` in a subprocess, and
what their output becomes: findings of one shape.

A finding is ``{"tool", "kind", "rule", "severity", "file", "line",
"message", "fix"}``: ``kind`` is the analysis (``lint``, ``complexity``,
``security``, ``dependencies``, ``deadcode``, ``architecture``, ``tests``),
``severity`` one of ``high``, ``medium``, ``low``, ``file`` relative to the
analysed root (POSIX), ``line`` 1-based or ``None`` for a whole file or
project. The parsers are pure (tool output in, findings out); :func:`run_tool`
is the one place a process starts.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from corral.core.errors import CorralError

__all__ = [
    "ToolFailed",
    "bandit_findings",
    "deptry_findings",
    "radon_cc_findings",
    "radon_mi_findings",
    "ruff_findings",
    "run_tool",
    "run_tool_on_parts",
    "tool_version",
    "vulture_findings",
]

Finding = dict[str, Any]

#: Seconds an analyser may take on one subproject.
TOOL_TIMEOUT = 600.0


class ToolFailed(CorralError):
    """An analyser is missing, crashed, or ran out of time (the message says which)."""


def run_tool(
    module: str,
    args: list[str],
    cwd: Path,
    *,
    ok_codes: tuple[int, ...] = (0,),
    timeout: float = TOOL_TIMEOUT,
) -> str:
    """``python -m MODULE ARGS`` in ``cwd``; its stdout, or :class:`ToolFailed`."""
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "NO_COLOR": "1"}
    try:
        done = subprocess.run(
            [sys.executable, "-m", module, *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout,
            env=env,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        raise ToolFailed(f"{module} timed out after {timeout:.0f} s") from None
    if "No module named" in done.stderr and done.returncode != 0:
        raise ToolFailed(
            f"{module} is not installed (pip install 'corral[vibe]' installs every analyser)"
        )
    if done.returncode not in ok_codes:
        tail = " | ".join(done.stderr.strip().splitlines()[-3:]) or f"exit {done.returncode}"
        raise ToolFailed(f"{module} failed (exit {done.returncode}): {tail}")
    return done.stdout


def run_tool_on_parts(
    module: str,
    args: list[str],
    files: list[str],
    cwd: Path,
    *,
    ok_codes: tuple[int, ...] = (0,),
    parts: int | None = None,
) -> list[str]:
    """``python -m MODULE ARGS FILES...`` with the files split into ``parts``
    processes run at once (one per core by default): the stdout of each.

    For analysers whose result for a file depends on that file alone (radon,
    bandit): on a large tree the slowest analyser bounds the whole run
    (radon's maintainability index takes two minutes on sympy in one
    process), so it gets every core while it runs; the other steps share
    them with it."""
    from concurrent.futures import ThreadPoolExecutor

    n = max(1, min(parts or os.cpu_count() or 1, len(files) // 50 or 1))
    chunks = [files[i::n] for i in range(n)]
    if n == 1:
        return [run_tool(module, [*args, *files], cwd, ok_codes=ok_codes)]
    with ThreadPoolExecutor(n) as pool:
        return list(
            pool.map(
                lambda chunk: run_tool(module, [*args, *chunk], cwd, ok_codes=ok_codes), chunks
            )
        )


def tool_version(module: str) -> str:
    """The installed version of an analyser's distribution, or ``"missing"``."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(module)
    except PackageNotFoundError:
        return "missing"


def _rel(path: str, root: Path) -> str:
    p = Path(path)
    if p.is_absolute():
        try:
            return p.relative_to(root).as_posix()
        except ValueError:
            return p.as_posix()
    return p.as_posix().removeprefix("./")


# -------------------------------------------------------------------- ruff

#: When a project configures no ruff rules: ruff's defaults (E4, E7, E9, F)
#: and flake8-bugbear (B), likely bugs rather than style.
RUFF_DEFAULT_EXTRA = ["--extend-select", "B"]
#: Rules whose findings are likely errors (high), or likely bugs (medium:
#: flake8-bugbear); the rest are low.
_RUFF_HIGH = re.compile(r"^(F821|F822|F823|E9\d\d|F63\d|F7\d\d)$")
_RUFF_MEDIUM = re.compile(r"^B\d{3}$")


def ruff_findings(output: str, root: Path) -> list[Finding]:
    """Findings from ``ruff check --output-format json``."""
    out = []
    for item in json.loads(output or "[]"):
        code = item.get("code") or "syntax"
        fixable = bool(item.get("fix")) and (item["fix"].get("applicability") == "safe")
        out.append(
            {
                "tool": "ruff",
                "kind": "lint",
                "rule": code,
                "severity": "high"
                if code == "syntax" or _RUFF_HIGH.match(code)
                else "medium"
                if _RUFF_MEDIUM.match(code)
                else "low",
                "file": _rel(item["filename"], root),
                "line": item.get("location", {}).get("row"),
                "message": item.get("message", ""),
                "fix": "ruff can fix it safely (ruff check --fix)"
                if fixable
                else f"see https://docs.astral.sh/ruff/rules/ ({code})",
                "fixable": fixable,
            }
        )
    return out


# -------------------------------------------------------------------- radon

#: Cyclomatic complexity from which a function is a finding (radon's rank C).
COMPLEXITY_FROM = 11
#: Maintainability index below which a module is a finding (radon's rank C).
MAINTAINABILITY_BELOW = 10.0


def radon_cc_findings(output: str, root: Path) -> list[Finding]:
    """Functions of complexity >= :data:`COMPLEXITY_FROM` from ``radon cc -j``."""
    out = []
    for path, blocks in json.loads(output or "{}").items():
        if not isinstance(blocks, list):  # {"error": ...} for a file radon cannot read
            continue
        for block in blocks:
            cc = int(block.get("complexity", 0))
            if cc < COMPLEXITY_FROM:
                continue
            name = block.get("name", "?")
            if block.get("classname"):
                name = f"{block['classname']}.{name}"
            out.append(
                {
                    "tool": "radon",
                    "kind": "complexity",
                    "rule": f"CC-{block.get('rank', '?')}",
                    "severity": "high" if cc > 20 else "medium",
                    "file": _rel(path, root),
                    "line": block.get("lineno"),
                    "message": f"{name} has cyclomatic complexity {cc}",
                    "fix": "split it into smaller functions (each branch a reason to change)",
                    "fixable": False,
                    "value": cc,
                }
            )
    return out


def radon_mi_findings(output: str, root: Path) -> tuple[list[Finding], dict[str, float]]:
    """Modules hard to maintain from ``radon mi -j``, and every module's index."""
    out, index = [], {}
    for path, item in json.loads(output or "{}").items():
        if not isinstance(item, dict) or "mi" not in item:
            continue
        rel = _rel(path, root)
        mi = round(float(item["mi"]), 1)
        index[rel] = mi
        if mi < MAINTAINABILITY_BELOW:
            out.append(
                {
                    "tool": "radon",
                    "kind": "complexity",
                    "rule": "MI-C",
                    "severity": "medium",
                    "file": rel,
                    "line": None,
                    "message": f"maintainability index {mi} (below {MAINTAINABILITY_BELOW:g})",
                    "fix": "shorten and simplify the module: long, branchy code is hard to change",
                    "fixable": False,
                }
            )
    return out, index


# -------------------------------------------------------------------- bandit

_SEVERITY = {"HIGH": "high", "MEDIUM": "medium", "LOW": "low"}


def bandit_findings(output: str, root: Path) -> list[Finding]:
    """Findings from ``bandit -f json``, confidence kept."""
    out = []
    for item in json.loads(output or "{}").get("results", []):
        out.append(
            {
                "tool": "bandit",
                "kind": "security",
                "rule": item.get("test_id", "?"),
                "severity": _SEVERITY.get(item.get("issue_severity", ""), "low"),
                "confidence": str(item.get("issue_confidence", "")).lower(),
                "file": _rel(item["filename"], root),
                "line": item.get("line_number"),
                "message": item.get("issue_text", ""),
                "fix": item.get("more_info") or "",
                "fixable": False,
            }
        )
    return out


# -------------------------------------------------------------------- deptry

_DEPTRY = {
    "DEP001": ("high", "imported but not declared: declare it in the project's dependencies"),
    "DEP002": ("low", "declared but never imported: remove it from the dependencies"),
    "DEP003": ("medium", "imported but only installed as a dependency of another: declare it"),
    "DEP004": ("medium", "a development dependency imported by the code: make it a dependency"),
    "DEP005": ("low", "a standard library module declared as a dependency: remove it"),
}


def deptry_findings(data: list[dict[str, Any]], root: Path) -> list[Finding]:
    """Findings from deptry's ``--json-output`` file."""
    out = []
    for item in data:
        code = item.get("error", {}).get("code", "?")
        severity, fix = _DEPTRY.get(code, ("low", ""))
        location = item.get("location", {})
        out.append(
            {
                "tool": "deptry",
                "kind": "dependencies",
                "rule": code,
                "severity": severity,
                "file": _rel(location.get("file") or "pyproject.toml", root),
                "line": location.get("line"),
                "message": item.get("error", {}).get("message", ""),
                "fix": fix,
                "fixable": False,
                "module": item.get("module"),
            }
        )
    return out


# -------------------------------------------------------------------- vulture

_VULTURE = re.compile(r"^(?P<file>.+?):(?P<line>\d+): (?P<message>.+) \((?P<conf>\d+)% confidence")
#: The confidence from which vulture's report is a finding.
VULTURE_MIN_CONFIDENCE = 80


def vulture_findings(output: str, root: Path) -> list[Finding]:
    """Findings from vulture's text report (one line each)."""
    out = []
    for line in output.splitlines():
        m = _VULTURE.match(line.strip())
        if m is None:
            continue
        confidence = int(m["conf"])
        out.append(
            {
                "tool": "vulture",
                "kind": "deadcode",
                "rule": m["message"].split(" '")[0].replace(" ", "-"),
                "severity": "medium" if confidence == 100 else "low",
                "confidence": f"{confidence}%",
                "file": _rel(m["file"], root),
                "line": int(m["line"]),
                "message": m["message"],
                "fix": "remove it, or use it",
                "fixable": False,
            }
        )
    return out
