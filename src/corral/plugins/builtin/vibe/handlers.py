"""``corral vibe`` as a workflow: for every Python subproject, one step per
analysis (lint, complexity, security, dependencies, dead code, tests, and
the architecture analysis's own steps), all in parallel under the ``cpu``
pool, joined by a ``plan`` step that ranks what they found.

The workflow runs with ``on_failure: continue`` and the join has
``trigger: done``: an analyser that is missing, crashes or times out fails
its own step (:class:`~.tools.ToolFailed`, the reason in the step's record)
and the plan is made of the others, saying which did not finish.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import subprocess
import tempfile
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec

from corral.plugins import Handler, StepContext
from corral.plugins.builtin.architecture.discover import is_test_path, skip_dir
from corral.plugins.builtin.vibe import tools
from corral.plugins.builtin.vibe.tools import Finding, ToolFailed

__all__ = ["ANALYSES", "analyse", "python_files", "ruff_rules", "test_folders", "vibe_workflow"]

VERSION = "1"

#: Every analysis, in report order (``--only`` takes these names).
ANALYSES = ("architecture", "lint", "complexity", "security", "dependencies", "deadcode", "tests")

_Data = dict[str, Any]

#: The analyses from the costliest (measured on twisted and sympy) to the cheapest.
_COST_ORDER = (
    "complexity",
    "security",
    "deadcode",
    "lint",
    "dependencies",
    "architecture",
    "tests",
)


def python_files(folder: Path, skip: list[str]) -> list[str]:
    """The ``.py`` files of a subproject (relative to it, sorted), without the
    folders never analysed and the nested subprojects in ``skip``."""
    out: list[str] = []
    skipped = {folder / s for s in skip}
    for here, dirs, files in os.walk(folder):
        base = Path(here)
        dirs[:] = sorted(d for d in dirs if not skip_dir(d) and base / d not in skipped)
        rel = base.relative_to(folder)
        out += [(rel / f).as_posix() for f in sorted(files) if f.endswith(".py")]
    return out


class _Params(msgspec.Struct, forbid_unknown_fields=True):
    root: str
    project: str  # the subproject's folder, relative to the root ("." for the root)
    skip: list[str] = msgspec.field(default_factory=list)  # nested subprojects
    # What the step cache keys on besides the above: the content of the
    # subproject's files and the analyser's version (see content_digest).
    digest: str = ""
    tool_version: str = ""
    memo: bool = True  # per-file results kept between runs (see _Analysis.memoized)


#: Files besides ``.py`` whose content an analysis reads (configuration).
CONFIG_FILES = (
    "pyproject.toml",
    "setup.cfg",
    "setup.py",
    "ruff.toml",
    ".ruff.toml",
    "tox.ini",
    # deptry's declared dependencies, when a project keeps them there
    "requirements.txt",
    "requirements-dev.txt",
    "dev-requirements.txt",
)


def _config_digest(folder: Path) -> str:
    h = hashlib.sha256()
    for name in CONFIG_FILES:
        with contextlib.suppress(OSError):
            h.update(name.encode() + b"\0" + (folder / name).read_bytes())
    return h.hexdigest()[:16]


def _by_file(findings: list[Finding]) -> dict[str, _Data]:
    out: dict[str, _Data] = {}
    for f in findings:
        out.setdefault(f["file"], {"findings": []})["findings"].append(f)
    return out


def _flat(results: dict[str, _Data]) -> list[Finding]:
    return [f for rel in sorted(results) for f in results[rel]["findings"]]


def content_digest(folder: Path, nested: list[str]) -> str:
    """A digest of every file the analyses of a subproject read: its Python
    files and its configuration. An analysis step is cached on it (and its
    tool's version), so a run after an edit reruns the analyses of the
    subproject that changed, and only those."""
    h = hashlib.sha256()
    for rel in [*python_files(folder, nested), *CONFIG_FILES]:
        try:
            data = (folder / rel).read_bytes()
        except OSError:
            continue
        h.update(rel.encode() + b"\0" + hashlib.sha256(data).digest())
    return h.hexdigest()


class _Analysis(Handler, ABC):
    """One analyser on one subproject: its findings (paths relative to the
    root) and metrics."""

    internal = True

    kind = "blocking"
    version = VERSION
    analysis = ""
    tool = ""
    Params = _Params

    def run(self, ctx: StepContext, params: _Params) -> _Data:  # type: ignore[override]
        ctx.progress(0, None, f"{self.tool}")
        findings, metrics, files = self.on_subproject(params)
        return {
            "analysis": self.analysis,
            "tool": self.tool,
            "version": tools.tool_version(self.tool),
            "files": len(files),
            "findings": findings,
            "metrics": metrics,
        }

    def on_subproject(self, params: _Params) -> tuple[list[Finding], _Data, list[str]]:
        """(findings with paths relative to the root, metrics, the files read)."""
        root = Path(params.root)
        folder = root / params.project
        nested = [os.path.relpath(root / s, folder) for s in params.skip]
        files = python_files(folder, nested)
        findings, metrics = self.analyse(folder, files, params, nested)
        prefix = "" if params.project == "." else params.project + "/"
        for finding in findings:
            finding["file"] = prefix + finding["file"]
            finding["subproject"] = params.project
        return findings, metrics, files

    def memoized(
        self,
        params: _Params,
        folder: Path,
        files: list[str],
        run: Callable[[list[str]], dict[str, _Data]],
    ) -> dict[str, _Data]:
        """Per-file results (``{"findings": [...], ...}``, paths relative to
        ``folder``) of an analyser whose result for a file depends only on
        that file and the configuration: ``run(files)`` is called on the
        files whose content the memo of earlier runs does not know, so after
        one file is edited only that file is analysed again. The memo is
        tagged with the tool's version and the configuration's digest."""
        from corral.plugins.builtin.architecture import memo

        if not params.memo:
            return run(files) if files else {}
        path = memo.memo_path(params.root, params.project, f"vibe-{self.analysis}")
        tag = f"{VERSION}:{self.tool}:{tools.tool_version(self.tool)}:{_config_digest(folder)}"
        known = memo.load(path, tag)
        digests = {}
        for rel in files:
            with contextlib.suppress(OSError):
                digests[rel] = hashlib.sha256((folder / rel).read_bytes()).hexdigest()
        todo = [rel for rel, d in digests.items() if d not in known]
        fresh = run(todo) if todo else {}
        out: dict[str, _Data] = {}
        kept: dict[str, _Data] = {}
        for rel, digest in digests.items():
            entry = fresh.get(rel, {"findings": []}) if rel in todo else known[digest]
            kept[digest] = {**entry, "findings": [{**f, "file": ""} for f in entry["findings"]]}
            out[rel] = {**entry, "findings": [{**f, "file": rel} for f in entry["findings"]]}
        memo.save(path, tag, kept)
        return out

    @abstractmethod
    def analyse(
        self, folder: Path, files: list[str], params: Any, nested: list[str]
    ) -> tuple[list[Finding], _Data]:
        """(findings with paths relative to ``folder``, metrics)."""


class Lint(_Analysis):
    """ruff, with the project's rules, else ruff's defaults and flake8-bugbear."""

    name = "vibe.lint"
    analysis = "lint"
    tool = "ruff"

    def analyse(
        self, folder: Path, files: list[str], params: Any, nested: list[str]
    ) -> tuple[list[Finding], _Data]:
        extra = ruff_rules(folder)
        args = ["check", "--output-format", "json", "--exit-zero", "--no-cache", *extra]

        def run(todo: list[str]) -> dict[str, _Data]:
            out = tools.run_tool("ruff", [*args, *todo], folder)
            return _by_file(tools.ruff_findings(out, folder))

        findings = _flat(self.memoized(params, folder, files, run))
        rules = "ruff's defaults + B" if extra else "the project's"
        return findings, {"rules": rules, "fixable": sum(f["fixable"] for f in findings)}


def ruff_rules(folder: Path) -> list[str]:
    """ruff's options for a subproject's rules: none when it configures ruff
    (ruff finds its configuration), else ruff's defaults plus bugbear, with
    any configuration around it ignored."""
    configured = (folder / "ruff.toml").is_file() or (folder / ".ruff.toml").is_file()
    pyproject = folder / "pyproject.toml"
    if pyproject.is_file():
        configured = configured or "[tool.ruff" in pyproject.read_text(errors="replace")
    return [] if configured else ["--isolated", *tools.RUFF_DEFAULT_EXTRA]


class Complexity(_Analysis):
    """radon: cyclomatic complexity per function, maintainability per module
    (code only, not tests)."""

    name = "vibe.complexity"
    analysis = "complexity"
    tool = "radon"

    def analyse(
        self, folder: Path, files: list[str], params: Any, nested: list[str]
    ) -> tuple[list[Finding], _Data]:
        code = [f for f in files if not is_test_path(f)]
        if not code:
            return [], {"functions_over_threshold": 0, "maintainability": {}}

        def run(todo: list[str]) -> dict[str, _Data]:
            found = []
            for out in tools.run_tool_on_parts("radon", ["cc", "-j"], todo, folder):
                found += tools.radon_cc_findings(out, folder)
            mi_findings, mi = [], {}
            for out in tools.run_tool_on_parts("radon", ["mi", "-j"], todo, folder):
                part_findings, part = tools.radon_mi_findings(out, folder)
                mi_findings += part_findings
                mi.update(part)
            results = _by_file(found + mi_findings)
            for rel, value in mi.items():
                results.setdefault(rel, {"findings": []})["mi"] = value
            return results

        results = self.memoized(params, folder, code, run)
        findings = _flat(results)
        cc = [f for f in findings if f["rule"].startswith("CC-")]
        index = {rel: r["mi"] for rel, r in results.items() if r.get("mi") is not None}
        worst = sorted(index.items(), key=lambda kv: kv[1])[:5]
        metrics = {
            "functions_over_threshold": len(cc),
            "threshold": tools.COMPLEXITY_FROM,
            "maintainability_mean": round(sum(index.values()) / len(index), 1) if index else None,
            "least_maintainable": [{"file": f, "mi": mi} for f, mi in worst],
        }
        return findings, metrics


class Security(_Analysis):
    """bandit on the code (tests left out: their asserts are the point)."""

    name = "vibe.security"
    analysis = "security"
    tool = "bandit"

    def analyse(
        self, folder: Path, files: list[str], params: Any, nested: list[str]
    ) -> tuple[list[Finding], _Data]:
        code = [f for f in files if not is_test_path(f)]
        if not code:
            return [], {}

        def run(todo: list[str]) -> dict[str, _Data]:
            outs = tools.run_tool_on_parts(
                "bandit", ["-f", "json", "-q"], todo, folder, ok_codes=(0, 1)
            )
            return _by_file([f for out in outs for f in tools.bandit_findings(out, folder)])

        findings = _flat(self.memoized(params, folder, code, run))
        return findings, {
            s: sum(f["severity"] == s for f in findings) for s in ("high", "medium", "low")
        }


class Dependencies(_Analysis):
    """deptry: missing, unused, transitive and misplaced development dependencies."""

    name = "vibe.dependencies"
    analysis = "dependencies"
    tool = "deptry"

    def analyse(
        self, folder: Path, files: list[str], params: Any, nested: list[str]
    ) -> tuple[list[Finding], _Data]:
        if not any((folder / f).is_file() for f in ("pyproject.toml", "setup.py", "setup.cfg")):
            return [], {"note": "no project file: nothing declared to check"}
        # the project's own packages, wherever they are (a src layout too):
        # imports of them are not dependencies
        own = sorted(_top_packages(folder, files))
        first_party = ["--known-first-party", ",".join(own)] if own else []
        with tempfile.TemporaryDirectory(prefix="corral-deptry-") as tmp:
            report = Path(tmp) / "deptry.json"
            args = [".", "--json-output", str(report), *first_party]
            # nested subprojects have their own dependencies (and their own
            # step); documentation builds import their own tools
            for skipped in [*nested, "docs", "doc"]:
                args += ["--extend-exclude", re.escape(skipped)]
            tools.run_tool("deptry", args, folder, ok_codes=(0, 1))
            try:
                data = json.loads(report.read_text())
            except (OSError, ValueError) as exc:
                raise ToolFailed(f"deptry wrote no readable report: {exc}") from None
        findings = tools.deptry_findings(data, folder)
        counts: _Data = {}
        for f in findings:
            counts[f["rule"]] = counts.get(f["rule"], 0) + 1
        return findings, counts


def _top_packages(folder: Path, files: list[str]) -> set[str]:
    """Names of the top-level packages among ``files`` (a folder with an
    ``__init__.py`` whose parent has none)."""
    tops: set[str] = set()
    for rel in files:
        parts = rel.split("/")[:-1]
        for i in range(len(parts)):
            if (folder.joinpath(*parts[: i + 1]) / "__init__.py").is_file():
                tops.add(parts[i])
                break
    return tops


class DeadCode(_Analysis):
    """vulture (tests read, so code they use is not dead; their own findings dropped)."""

    name = "vibe.deadcode"
    analysis = "deadcode"
    tool = "vulture"

    def analyse(
        self, folder: Path, files: list[str], params: Any, nested: list[str]
    ) -> tuple[list[Finding], _Data]:
        if not files:
            return [], {}
        args = [*files, "--min-confidence", str(tools.VULTURE_MIN_CONFIDENCE)]
        out = tools.run_tool("vulture", args, folder, ok_codes=(0, 1, 2, 3))
        findings = [f for f in tools.vulture_findings(out, folder) if not is_test_path(f["file"])]
        return findings, {"min_confidence": tools.VULTURE_MIN_CONFIDENCE}


class Tests(_Analysis):
    """Test files, test-to-code ratio (lines of code), and the test command's
    result and duration when one is given."""

    name = "vibe.tests"
    analysis = "tests"
    tool = "corral"

    class Params(_Params, forbid_unknown_fields=True):
        test_command: str | None = None
        timeout: float = 3600.0

    def analyse(
        self, folder: Path, files: list[str], params: Any, nested: list[str]
    ) -> tuple[list[Finding], _Data]:
        from corral.plugins.builtin.architecture.facts import count_loc

        code_loc = test_loc = test_files = 0
        for rel in files:
            try:
                loc = count_loc((folder / rel).read_text(encoding="utf-8", errors="replace"))
            except OSError:
                continue
            if is_test_path(rel):
                test_files += 1
                test_loc += loc
            else:
                code_loc += loc
        metrics: _Data = {
            "test_files": test_files,
            "code_files": len(files) - test_files,
            "code_loc": code_loc,
            "test_loc": test_loc,
            "ratio": round(test_loc / code_loc, 2) if code_loc else None,
        }
        findings: list[Finding] = []
        if code_loc and not test_files:
            findings.append(
                _finding(
                    "no-tests",
                    "high",
                    ".",
                    "no test files found",
                    "add tests (a tests/ folder with test_*.py files)",
                )
            )
        command, timeout = params.test_command, params.timeout
        if command:
            metrics["command"] = command
            start = time.monotonic()
            try:
                done = subprocess.run(
                    command,
                    shell=True,
                    cwd=folder,
                    capture_output=True,
                    text=True,
                    errors="replace",
                    timeout=timeout,
                    env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
                )
            except subprocess.TimeoutExpired:
                raise ToolFailed(f"the test command timed out after {timeout:.0f} s") from None
            metrics["seconds"] = round(time.monotonic() - start, 2)
            metrics["exit"] = done.returncode
            metrics["passed"] = done.returncode == 0
            if done.returncode != 0:
                tail = " | ".join((done.stdout + done.stderr).strip().splitlines()[-3:])
                findings.append(
                    _finding(
                        "tests-fail",
                        "high",
                        ".",
                        f"`{command}` exits {done.returncode}: {tail}",
                        "make the test suite pass before anything else",
                    )
                )
        return findings, metrics


def _finding(rule: str, severity: str, file: str, message: str, fix: str) -> Finding:
    return {
        "tool": "corral",
        "kind": "tests",
        "rule": rule,
        "severity": severity,
        "file": file,
        "line": None,
        "message": message,
        "fix": fix,
        "fixable": False,
    }


class Plan(Handler):
    """The join: every analysis's findings and the architecture sections,
    ranked into one plan with a health score (:mod:`.plan`)."""

    internal = True

    name = "vibe.plan"
    version = VERSION
    kind = "blocking"

    class Params(msgspec.Struct, forbid_unknown_fields=True):
        discovery: _Data
        analyses: list[_Data]  # {"subproject", "analysis", "step", "output": ... | None}

    def run(self, ctx: StepContext, params: Params) -> _Data:  # type: ignore[override]
        from corral.plugins.builtin.vibe.plan import make_plan

        return make_plan(params.discovery, params.analyses)


_STEPS: dict[str, type[_Analysis]] = {
    h.analysis: h for h in (Lint, Complexity, Security, Dependencies, DeadCode, Tests)
}


def analyse(analysis: str, root: Path, project: dict[str, Any]) -> list[Finding]:
    """One analysis of one subproject (a discovered project) run here, as
    its step would: its findings, paths relative to ``root``."""
    handler = _STEPS[analysis]
    params = handler.Params(root=str(root), project=project["path"], skip=project["subprojects"])
    return handler().on_subproject(params)[0]


def test_folders(discovery: dict[str, Any]) -> list[str]:
    """Where the test command runs: at the root when the root is a
    subproject (its nested ones, examples and the like, are tested by it),
    else in each subproject (a monorepo)."""
    paths = [p["path"] for p in discovery["python"]]
    return ["."] if "." in paths else paths


def vibe_workflow(
    discovery: dict[str, Any],
    *,
    only: list[str] | None = None,
    test_command: str | None = None,
    cache: bool = True,
) -> Any:
    """The ``vibe`` workflow (a ``corral.Workflow``) over the subprojects of
    ``discovery`` (:func:`.discover.discover`); its result is the plan."""
    from corral.plugins.builtin.architecture import add_project_steps
    from corral.workflow.builder import Workflow  # (the builder alone: not corral's __init__)

    wanted = list(only or ANALYSES)
    test_dirs = test_folders(discovery)
    root = Path(discovery["root"])
    # an analyser that fails fails its own step; the others still run
    wf = Workflow("vibe", on_failure="continue")
    joined: list[dict[str, Any]] = []
    steps = []
    for i, project in enumerate(discovery["python"]):
        base: dict[str, Any] = {
            "root": str(root),
            "project": project["path"],
            "skip": project["subprojects"],
        }
        base["memo"] = cache
        if cache:
            folder = root / project["path"]
            nested = [os.path.relpath(root / s, folder) for s in project["subprojects"]]
            base["digest"] = content_digest(folder, nested)
        # The costly analysers are added (so started, and given the cpu pool's
        # slots) first: the slowest one bounds the run (radon's maintainability
        # index on a large tree), so it must not wait behind the quick ones.
        for analysis in sorted(wanted, key=_COST_ORDER.index):
            if analysis == "architecture":
                options = {"exclude": [], "exclude_tests": False, "exclude_type_checking": False}
                step = add_project_steps(wf, root, project, i, options, cache=cache)
            else:
                handler = _STEPS[analysis]
                params: dict[str, Any] = {**base, "tool_version": tools.tool_version(handler.tool)}
                if analysis == "tests" and project["path"] in test_dirs:
                    params["test_command"] = test_command
                step = wf.step(
                    f"{analysis}_{i}",
                    handler.name,
                    resources={"cpu": 1} if analysis != "tests" else None,
                    # a test command's result is not a function of the files
                    cache=cache and not (analysis == "tests" and test_command),
                    params=params,
                )
            steps.append(step)
            joined.append(
                {
                    "subproject": project["path"],
                    "analysis": analysis,
                    "step": step.id,
                    "output": step.output,
                }
            )
    joined.sort(key=lambda j: ANALYSES.index(j["analysis"]))  # (report order, per subproject)
    joined.sort(key=lambda j: [p["path"] for p in discovery["python"]].index(j["subproject"]))
    wf.step("plan", "vibe.plan", needs=steps, trigger="done", discovery=discovery, analyses=joined)
    return wf
