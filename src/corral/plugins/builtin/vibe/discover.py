"""What ``corral vibe`` analyses: the subprojects under a path and the stack
of each, read from their files (nothing is imported or run).

A Python subproject is a folder with ``pyproject.toml``, ``setup.cfg`` or
``setup.py`` that holds a package (the architecture analysis's projects,
:func:`~corral.plugins.builtin.architecture.projects.find_projects`); a
``package.json`` folder (outside ``node_modules``) is listed as a
non-Python subproject, not analysed.
"""

from __future__ import annotations

import configparser
import contextlib
import os
import re
import tomllib
from pathlib import Path
from typing import Any

from corral.plugins.builtin.architecture.discover import TEST_DIRS, skip_dir
from corral.plugins.builtin.architecture.projects import find_projects

__all__ = ["discover", "requirement_name"]

#: Distributions that name a framework or a notable library (declared or imported).
FRAMEWORKS = {
    "django": "Django",
    "flask": "Flask",
    "fastapi": "FastAPI",
    "litestar": "Litestar",
    "starlette": "Starlette",
    "aiohttp": "aiohttp",
    "tornado": "Tornado",
    "trio": "Trio",
    "anyio": "AnyIO",
    "celery": "Celery",
    "sqlalchemy": "SQLAlchemy",
    "pydantic": "pydantic",
    "msgspec": "msgspec",
    "numpy": "NumPy",
    "pandas": "pandas",
    "click": "Click",
    "typer": "Typer",
    "pytest": "pytest",
}
_LINTERS = {
    "ruff": ("tool.ruff", "ruff.toml", ".ruff.toml"),
    "flake8": ("flake8", ".flake8"),
    "mypy": ("tool.mypy", "mypy.ini", ".mypy.ini", "mypy"),
    "black": ("tool.black",),
    "pylint": ("tool.pylint", ".pylintrc", "pylintrc"),
    "isort": ("tool.isort", ".isort.cfg"),
}
_CI = {
    "GitHub Actions": ".github/workflows",
    "GitLab CI": ".gitlab-ci.yml",
    "CircleCI": ".circleci",
    "Travis CI": ".travis.yml",
    "Azure Pipelines": "azure-pipelines.yml",
    "Jenkins": "Jenkinsfile",
    "tox": "tox.ini",
    "nox": "noxfile.py",
}
_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def requirement_name(requirement: str) -> str | None:
    """The normalised distribution name of a PEP 508 requirement."""
    m = _NAME.match(requirement)
    return re.sub(r"[-_.]+", "-", m.group(1)).lower() if m else None


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return {}


def _dig(data: dict[str, Any], dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(data, dict):
            return None
        data = data.get(part)  # type: ignore[assignment]
    return data


def _stack(folder: Path, root: Path) -> dict[str, Any]:
    """A Python subproject's stack, from its configuration files."""
    pyproject = _read_toml(folder / "pyproject.toml")
    setup_cfg = configparser.ConfigParser()
    with contextlib.suppress(configparser.Error, UnicodeDecodeError):  # (a broken one: none)
        setup_cfg.read(folder / "setup.cfg", encoding="utf-8")
    project = pyproject.get("project") or {}
    deps = [str(d) for d in project.get("dependencies") or []]
    dev: list[str] = []
    for extra in (project.get("optional-dependencies") or {}).values():
        dev += [str(d) for d in extra]
    for group in (pyproject.get("dependency-groups") or {}).values():
        dev += [str(d) for d in group if isinstance(d, str)]
    python = project.get("requires-python")
    if setup_cfg.has_section("options"):
        deps += [d for d in setup_cfg.get("options", "install_requires", fallback="").split("\n")]
        python = python or setup_cfg.get("options", "python_requires", fallback=None)
    declared = sorted({n for n in map(requirement_name, deps) if n})
    dev_declared = sorted({n for n in map(requirement_name, dev) if n} - set(declared))
    names = set(declared) | set(dev_declared)
    frameworks = sorted(label for dist, label in FRAMEWORKS.items() if dist in names)

    def configured(keys: tuple[str, ...]) -> bool:
        for key in keys:
            if key.startswith("tool.") and _dig(pyproject, key) is not None:
                return True
            if setup_cfg.has_section(key) or setup_cfg.has_section(f"tool:{key}"):
                return True
            if (folder / key).exists():
                return True
        return False

    linters = sorted(name for name, keys in _LINTERS.items() if configured(keys))
    pytest_configured = (
        _dig(pyproject, "tool.pytest") is not None
        or (folder / "pytest.ini").is_file()
        or (folder / "conftest.py").is_file()
        or setup_cfg.has_section("tool:pytest")
        or "pytest" in names
    )
    ci = sorted(
        name for name, rel in _CI.items() if (folder / rel).exists() or (root / rel).exists()
    )
    return {
        "python": python,
        "dependencies": declared,
        "dev_dependencies": dev_declared,
        "frameworks": frameworks,
        "test_runner": "pytest" if pytest_configured else "unittest",
        "linters": linters,
        "ci": ci,
    }


def _roots(folder: Path, nested: set[Path]) -> tuple[list[str], list[str]]:
    """(source roots, test roots) of a subproject, relative to it: the folders
    that hold its top-level packages, and its test folders (``tests``,
    ``test``, ``testing``) outside any package."""
    sources: set[str] = set()
    tests: set[str] = set()
    for here, dirs, _files in os.walk(folder):
        base = Path(here)
        dirs[:] = sorted(d for d in dirs if not skip_dir(d) and base / d not in nested)
        if (base / "__init__.py").is_file():
            if not (base.parent / "__init__.py").is_file():
                sources.add(base.parent.relative_to(folder).as_posix())
            dirs[:] = []  # inside a package: its sub-folders are its own
        elif base.name in TEST_DIRS:
            tests.add(base.relative_to(folder).as_posix())
            dirs[:] = []
    return sorted(sources), sorted(tests)


#: In a ``package.json``: frameworks, test runners and linters by package name.
_NODE_FRAMEWORKS = {
    "react": "React",
    "vue": "Vue",
    "next": "Next.js",
    "@angular/core": "Angular",
    "svelte": "Svelte",
    "express": "Express",
    "fastify": "Fastify",
    "nuxt": "Nuxt",
}
_NODE_TESTS = ("vitest", "jest", "mocha", "ava", "playwright", "@playwright/test", "cypress")
_NODE_LINTERS = ("eslint", "prettier", "typescript", "stylelint", "biome", "@biomejs/biome")


def _node_stack(path: Path) -> dict[str, Any]:
    """A ``package.json``'s stack: its name, dependencies, frameworks, test
    runner and linters (an unreadable file gives what could be read)."""
    import json

    try:
        data = json.loads((path / "package.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        data = {}
    if not isinstance(data, dict):
        data = {}

    def names(key: str) -> list[str]:
        value = data.get(key)
        return sorted(value) if isinstance(value, dict) else []

    deps, dev = names("dependencies"), names("devDependencies")
    every = set(deps) | set(dev)
    return {
        "package": data.get("name") if isinstance(data.get("name"), str) else None,
        "dependencies": deps,
        "dev_dependencies": dev,
        "frameworks": sorted(label for n, label in _NODE_FRAMEWORKS.items() if n in every),
        "test_runner": next((t for t in _NODE_TESTS if t in every), None),
        "linters": sorted(n for n in _NODE_LINTERS if n in every),
    }


def _node_projects(root: Path) -> list[dict[str, Any]]:
    found = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d != "node_modules" and not skip_dir(d))
        if "package.json" in files:
            path = Path(folder)
            found.append(
                {
                    "name": path.name,
                    "path": path.relative_to(root).as_posix(),
                    "language": "javascript",
                    "stack": _node_stack(path),
                    "note": "only Python is analysed",
                }
            )
    return found


def discover(root: str | os.PathLike[str], *, exclude: list[str] | None = None) -> dict[str, Any]:
    """``{"root", "python": [project + "stack"], "other": [...]}`` under ``root``."""
    top = Path(root).resolve()
    python = []
    for project in find_projects(top, exclude=exclude or []):
        folder = top / project["path"]
        sources, tests = _roots(folder, {top / s for s in project["subprojects"]})
        python.append(
            {**project, "source_roots": sources, "test_roots": tests, "stack": _stack(folder, top)}
        )
    return {"root": str(top), "python": python, "other": _node_projects(top)}
