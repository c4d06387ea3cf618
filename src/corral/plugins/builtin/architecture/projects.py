"""Subprojects of a repository, and their ``[tool.corral.architecture]`` options.

A *project* is a directory holding ``pyproject.toml``, ``setup.py`` or
``setup.cfg``. The analysed root is always a project; nested projects (a
monorepo's ``libs/a``, ``services/b``) get their own report section and are
analysed in parallel. Each Python package belongs to the nearest project
above it. Finding projects walks directories only (no file is read but the
project files), so it is cheap enough to run before the workflow is built.
"""

from __future__ import annotations

import configparser
import functools
import os
import tomllib
from pathlib import Path
from typing import Any

from corral.core.files import read_capped, toml_position
from corral.plugins.builtin.architecture.discover import is_excluded_dir, skip_dir
from corral.plugins.builtin.architecture.errors import ArchitectureConfigError

PROJECT_FILES = ("pyproject.toml", "setup.cfg", "setup.py")
#: Keys of ``[tool.corral.architecture]`` read here; layers.py reads the rest.
OPTION_KEYS: dict[str, type] = {
    "exclude": list,
    "exclude_tests": bool,
    "exclude_type_checking": bool,
    "fail_on": list,
}


def _has_project_file(directory: Path) -> bool:
    return any((directory / name).is_file() for name in PROJECT_FILES)


def find_projects(
    path: str | os.PathLike[str],
    *,
    exclude: list[str] | None = None,
    exclude_tests: bool = False,
) -> list[dict[str, Any]]:
    """Every project under ``path`` that holds at least one Python package.

    Each is ``{"name", "path" (relative to the root, "." for the root),
    "config_file" (relative, or None), "subprojects" (relative paths of the
    projects nested in it, which its scan must skip)}``, sorted by path.
    """
    root = Path(path).resolve()
    found: list[tuple[Path, bool]] = []  # (project dir, holds a package)

    def walk(directory: Path, owner: int) -> None:
        try:
            entries = sorted(directory.iterdir(), key=lambda p: p.name)
        except OSError:
            return  # reported by the scan as unreadable
        for entry in entries:
            if not entry.is_dir() or skip_dir(entry.name):
                continue
            if is_excluded_dir(entry.relative_to(root).as_posix(), exclude or [], exclude_tests):
                continue
            if entry.is_symlink() and not entry.resolve().is_relative_to(root):
                continue
            if (entry / "__init__.py").is_file():
                if entry.name.isidentifier():
                    found[owner] = (found[owner][0], True)
                continue  # a package: projects do not nest inside packages
            if _has_project_file(entry):
                found.append((entry, False))
                walk(entry, len(found) - 1)
            else:
                walk(entry, owner)

    found.append((root, (root / "__init__.py").is_file() and root.name.isidentifier()))
    if not found[0][1]:
        walk(root, 0)
    dirs = [d for d, _ in found]
    projects = []
    for directory, has_package in found:
        if not has_package:
            continue
        rel = directory.relative_to(root).as_posix() or "."
        nested = [
            d.relative_to(root).as_posix()
            for d in dirs
            if d != directory and d.is_relative_to(directory)
        ]
        projects.append(
            {
                "name": project_name(directory),
                "path": rel,
                "config_file": _config_file(directory, root),
                "subprojects": sorted(nested),
            }
        )
    return sorted(projects, key=lambda p: p["path"])


def _config_file(directory: Path, root: Path) -> str | None:
    for name in PROJECT_FILES:
        if (directory / name).is_file():
            return (directory / name).relative_to(root).as_posix()
    return None


def _shown(file: Path, root: Path) -> str:
    """``file`` as messages name it: relative to the analysed folder (``../``
    for a configuration found above it)."""
    return Path(os.path.relpath(file, root)).as_posix()


def config_home(directory: Path) -> Path:
    """The folder whose configuration applies to the analysed ``directory``:
    itself when it is a project, else the nearest folder above it (inside
    the same repository) with a ``pyproject.toml``, ``setup.cfg`` or
    ``.importlinter``, as ruff and mypy find theirs: ``corral analyze src``
    checks the contracts of the project that holds ``src``."""
    if any((directory / name).is_file() for name in PROJECT_FILES):
        return directory
    for parent in directory.parents:
        if any((parent / name).is_file() for name in (*PROJECT_FILES, ".importlinter")):
            return parent
        if (parent / ".git").exists():  # the top of the repository: no further
            break
    return directory


def read_toml(file: Path, shown: str | None = None) -> dict[str, Any]:
    """A project's TOML file (``pyproject.toml``), parsed once per process
    while it is unchanged: finding projects, their options and their
    contracts all read it. Never change what it returns. ``shown``: the
    file as messages name it."""
    try:
        info = file.stat()
        return _parsed(str(file), info.st_mtime_ns, info.st_size)
    except tomllib.TOMLDecodeError as exc:
        message, line, column = toml_position(str(exc))
        where = f" at line {line}, column {column}" if line is not None else ""
        raise ArchitectureConfigError(
            f"invalid TOML{where}: {message}", file=shown or str(file)
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ArchitectureConfigError(
            f"cannot read: {why or exc}", file=shown or str(file)
        ) from None


@functools.lru_cache(maxsize=64)
def _parsed(path: str, mtime_ns: int, size: int) -> dict[str, Any]:
    return tomllib.loads(read_capped(Path(path)).decode("utf-8"))


def project_name(directory: Path) -> str:
    """``[project].name`` / poetry name / setup.cfg name, else the directory's name."""
    pyproject = directory / "pyproject.toml"
    if pyproject.is_file():
        try:
            data = read_toml(pyproject)
        except ArchitectureConfigError:
            data = {}
        name = data.get("project", {}).get("name") or (
            data.get("tool", {}).get("poetry", {}).get("name")
        )
        if isinstance(name, str) and name:
            return name
    setup_cfg = directory / "setup.cfg"
    if setup_cfg.is_file():
        parser = configparser.ConfigParser()
        try:
            parser.read(setup_cfg, encoding="utf-8")
            name = parser.get("metadata", "name", fallback="")
        except (configparser.Error, UnicodeDecodeError):
            name = ""
        if name:
            return str(name)
    return directory.name


def read_options(directory: Path, root: Path) -> dict[str, Any]:
    """The options in the project's ``[tool.corral.architecture]`` table.

    Only ``exclude``, ``exclude_tests``, ``exclude_type_checking`` and
    ``fail_on``; wrong types raise :class:`ArchitectureConfigError`.
    """
    pyproject = directory / "pyproject.toml"
    if not pyproject.is_file():
        return {}
    data = read_toml(pyproject, _shown(pyproject, root))
    table = data.get("tool", {}).get("corral", {}).get("architecture", {})
    if not isinstance(table, dict):
        raise ArchitectureConfigError(
            "must be a table",
            file=_shown(pyproject, root),
            key="tool.corral.architecture",
        )
    options: dict[str, Any] = {}
    for key, kind in OPTION_KEYS.items():
        if key not in table:
            continue
        value = table[key]
        ok = isinstance(value, kind) and (
            not isinstance(value, list) or all(isinstance(v, str) for v in value)
        )
        if not ok:
            want = "a list of strings" if kind is list else "true or false"
            raise ArchitectureConfigError(
                f"must be {want}, not {value!r}",
                file=_shown(pyproject, root),
                key=f"tool.corral.architecture.{key}",
            )
        options[key] = value
    return options
