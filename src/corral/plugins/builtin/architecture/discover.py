"""Discovery: the Python packages under a path, and what is not analysed.

A *top-level package* is a directory with an ``__init__.py`` whose parent has
none; its *source root* is that parent (so flat and src layouts, and several
packages or subprojects in one tree, are all found). Nothing is imported:
files are read and parsed with :mod:`ast` only.
"""

from __future__ import annotations

import ast
import fnmatch
import io
import os
import tokenize
from pathlib import Path
from typing import Any

SKIP_DIRS = frozenset(
    {
        "__pycache__",
        "node_modules",
        "site-packages",
        "build",
        "dist",
        "venv",
        "env",
    }
)
TEST_DIRS = frozenset({"tests", "test", "testing"})
DEFAULT_MAX_FILE_BYTES = 2_000_000


def is_test_path(rel: str) -> bool:
    """True for test files and anything under a tests directory."""
    parts = rel.replace(os.sep, "/").split("/")
    name = parts[-1]
    if any(p in TEST_DIRS for p in parts[:-1]):
        return True
    return name == "conftest.py" or name.startswith("test_") or name.endswith("_test.py")


def _excluded(rel: str, patterns: list[str]) -> bool:
    rel = rel.replace(os.sep, "/")
    name = rel.rsplit("/", 1)[-1]
    return any(fnmatch.fnmatch(rel, p) or fnmatch.fnmatch(name, p) for p in patterns)


def _skip_dir(name: str) -> bool:
    return name.startswith(".") or name in SKIP_DIRS or name.endswith(".egg-info")


def is_abstract_class(node: ast.ClassDef) -> bool:
    """ABC / Protocol subclass, ``metaclass=ABCMeta``, or any ``@abstractmethod``."""
    for base in node.bases:
        target = base.value if isinstance(base, ast.Subscript) else base
        name = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", "")
        if name in {"ABC", "Protocol"}:
            return True
    for kw in node.keywords:
        if kw.arg == "metaclass":
            value = kw.value
            name = value.attr if isinstance(value, ast.Attribute) else getattr(value, "id", "")
            if name == "ABCMeta":
                return True
    for item in node.body:
        if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for dec in item.decorator_list:
                name = dec.attr if isinstance(dec, ast.Attribute) else getattr(dec, "id", "")
                if name in {"abstractmethod", "abstractproperty"}:
                    return True
    return False


def count_loc(source: str) -> int:
    """Lines that are neither blank nor comment-only."""
    return sum(
        1 for line in source.splitlines() if line.strip() and not line.lstrip().startswith("#")
    )


def _analyse_file(path: Path, max_bytes: int) -> tuple[dict[str, Any] | None, str | None]:
    """(module facts, None) or (None, reason not analysed)."""
    try:
        size = path.stat().st_size
        if size > max_bytes:
            return None, f"too large ({size} bytes > {max_bytes})"
        data = path.read_bytes()
    except OSError as exc:
        return None, f"unreadable: {exc.strerror or exc}"
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
        source = data.decode(encoding)
    except (SyntaxError, UnicodeDecodeError, LookupError):
        return None, "unreadable: undecodable text (bad encoding)"
    try:
        tree = ast.parse(source, filename=str(path))
    except SyntaxError as exc:
        return None, f"syntax error: line {exc.lineno}: {exc.msg}"
    except ValueError as exc:  # e.g. null bytes
        return None, f"unreadable: {exc}"
    classes = [n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)]
    return {
        "loc": count_loc(source),
        "classes": len(classes),
        "abstract_classes": sum(1 for c in classes if is_abstract_class(c)),
    }, None


def discover(
    path: str | os.PathLike[str],
    *,
    exclude: list[str] | None = None,
    exclude_tests: bool = False,
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
) -> dict[str, Any]:
    """Find the packages under ``path``; see the module docstring.

    Returns ``{"root", "packages": [...], "not_analysed": [...]}``; each
    package has ``name``, ``source_root``, ``path``, ``modules`` (name, path
    relative to the root, is_package, loc, classes, abstract_classes) and
    ``namespace_dirs`` (sub-folders without ``__init__.py`` holding Python
    files, which the import graph does not cover).
    """
    root = Path(path).resolve()
    if not root.exists():
        raise FileNotFoundError(f"no such directory: {path}")
    if not root.is_dir():
        raise NotADirectoryError(f"not a directory: {path}")
    patterns = list(exclude or [])
    packages: list[dict[str, Any]] = []
    not_analysed: list[dict[str, str]] = []

    def rel(p: Path) -> str:
        return p.relative_to(root).as_posix() or "."

    def wanted(p: Path) -> bool:
        r = rel(p)
        return not (_excluded(r, patterns) or (exclude_tests and is_test_path(r)))

    def walk_package(pkg_dir: Path, package: dict[str, Any], prefix: str) -> None:
        # prefix: dotted module name of pkg_dir
        entries = sorted(pkg_dir.iterdir(), key=lambda p: p.name)
        for entry in entries:
            if entry.is_symlink() and not entry.resolve().is_relative_to(root):
                not_analysed.append({"path": rel(entry), "reason": "outside the root (symlink)"})
                continue
            if entry.is_dir():
                if _skip_dir(entry.name) or not wanted(entry):
                    continue
                if (entry / "__init__.py").is_file():
                    walk_package(entry, package, f"{prefix}.{entry.name}")
                elif entry.name.isidentifier() and any(entry.rglob("*.py")):
                    package["namespace_dirs"].append(rel(entry))
                    for py in sorted(entry.rglob("*.py")):
                        if wanted(py):
                            not_analysed.append(
                                {
                                    "path": rel(py),
                                    "reason": "in a namespace sub-folder (no __init__.py)",
                                }
                            )
                continue
            if entry.suffix != ".py" or not entry.is_file() or not wanted(entry):
                continue
            stem = entry.stem
            if stem == "__init__":
                name, is_pkg = prefix, True
            elif stem.isidentifier():
                name, is_pkg = f"{prefix}.{stem}", False
            else:
                not_analysed.append({"path": rel(entry), "reason": "not an importable module name"})
                continue
            facts, reason = _analyse_file(entry, max_file_bytes)
            if facts is None:
                not_analysed.append({"path": rel(entry), "reason": reason or "unknown"})
                continue
            package["modules"].append(
                {"name": name, "path": rel(entry), "is_package": is_pkg, **facts}
            )

    def scan(directory: Path) -> None:
        try:
            entries = sorted(directory.iterdir(), key=lambda p: p.name)
        except OSError as exc:
            not_analysed.append(
                {"path": rel(directory), "reason": f"unreadable: {exc.strerror or exc}"}
            )
            return
        for entry in entries:
            if not entry.is_dir() or _skip_dir(entry.name) or not wanted(entry):
                continue
            if entry.is_symlink() and not entry.resolve().is_relative_to(root):
                not_analysed.append({"path": rel(entry), "reason": "outside the root (symlink)"})
                continue
            if (entry / "__init__.py").is_file() and entry.name.isidentifier():
                package: dict[str, Any] = {
                    "name": entry.name,
                    "source_root": str(directory),
                    "path": rel(entry),
                    "modules": [],
                    "namespace_dirs": [],
                }
                walk_package(entry, package, entry.name)
                packages.append(package)
            else:
                scan(entry)

    if (root / "__init__.py").is_file() and root.name.isidentifier():
        # PATH is itself a package: its parent is the source root.
        package = {
            "name": root.name,
            "source_root": str(root.parent),
            "path": ".",
            "modules": [],
            "namespace_dirs": [],
        }
        walk_package(root, package, root.name)
        packages.append(package)
    else:
        scan(root)
    packages.sort(key=lambda p: (p["name"], p["path"]))
    not_analysed.sort(key=lambda f: f["path"])
    return {"root": str(root), "packages": packages, "not_analysed": not_analysed}
