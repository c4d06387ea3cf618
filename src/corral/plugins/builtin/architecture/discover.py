"""Discovery: the Python packages under a path, and what is not analysed.

A *top-level package* is a directory with an ``__init__.py`` whose parent has
none; its *source root* is that parent (so flat and src layouts, and several
packages or subprojects in one tree, are all found). Inside a package, a
sub-folder without ``__init__.py`` is analysed as a namespace package.
Nothing is imported: :func:`scan` walks and hashes the files (the digests key
the step cache), :func:`parse` reads their facts with :mod:`ast`.
"""

from __future__ import annotations

import ast
import fnmatch
import hashlib
import io
import os
import tokenize
import zlib
from collections.abc import Callable
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


def skip_dir(name: str) -> bool:
    """Directories never analysed: hidden, caches, virtualenvs, build output."""
    return name.startswith(".") or name in SKIP_DIRS or name.endswith(".egg-info")


def is_excluded_dir(rel: str, patterns: list[str], exclude_tests: bool) -> bool:
    """True when a directory (relative to the root) is excluded by the options."""
    # "dir/" too: a pattern such as */generated/* names everything in a folder.
    return (
        _excluded(rel, patterns)
        or _excluded(rel + "/", patterns)
        or (exclude_tests and is_test_path(rel + "/x.py"))
    )


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


def file_digest(data: bytes) -> str:
    """A short content hash: what the step cache keys on."""
    return hashlib.blake2b(data, digest_size=12).hexdigest()


def parse_facts(data: bytes, filename: str) -> tuple[dict[str, Any] | None, str | None]:
    """(LOC and class facts, None) or (None, the reason the file is not analysed)."""
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
        source = data.decode(encoding)
    except (SyntaxError, UnicodeDecodeError, LookupError):
        return None, "unreadable: undecodable text (bad encoding)"
    try:
        tree = ast.parse(source, filename=filename)
    except SyntaxError as exc:
        if exc.lineno is None or "null bytes" in str(exc.msg):
            return None, "unreadable: contains null bytes (not Python source)"
        return None, f"syntax error: line {exc.lineno}: {exc.msg}"
    except ValueError:  # null bytes: a binary file, not Python source
        return None, "unreadable: contains null bytes (not Python source)"
    classes = [n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)]
    return {
        "loc": count_loc(source),
        "classes": len(classes),
        "abstract_classes": sum(1 for c in classes if is_abstract_class(c)),
    }, None


def scan(
    path: str | os.PathLike[str],
    *,
    exclude: list[str] | None = None,
    exclude_tests: bool = False,
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
    skip: list[str] | None = None,
    root: str | os.PathLike[str] | None = None,
    on_file: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Walk ``path`` and find its packages and modules, hashing every file.

    Nothing is parsed here (see :func:`parse`). ``root`` is what reported
    paths are relative to (default: ``path``); ``skip`` lists directories,
    relative to the root, that belong to nested projects. ``on_file(n)`` is
    called as files are found (progress).

    Returns ``{"root", "packages": [...], "not_analysed": [...]}``; each
    package has ``name``, ``source_root``, ``path``, ``namespace_dirs`` and
    ``modules`` (``name``, ``path`` relative to the root, ``is_package``,
    ``namespace``, ``digest``). Sub-folders of a package without an
    ``__init__.py`` are analysed as namespace packages (``namespace`` true,
    ``path`` the folder, no digest).
    """
    top = Path(path).resolve()
    base = Path(root).resolve() if root is not None else top
    if not top.exists():
        raise FileNotFoundError(f"no such directory: {path}")
    if not top.is_dir():
        raise NotADirectoryError(f"not a directory: {path}")
    patterns = list(exclude or [])
    skipped = {base / s for s in (skip or [])}
    packages: list[dict[str, Any]] = []
    not_analysed: list[dict[str, str]] = []
    seen = 0

    def rel(p: Path) -> str:
        return p.relative_to(base).as_posix() or "."

    def wanted(p: Path) -> bool:
        r = rel(p)
        return not (_excluded(r, patterns) or (exclude_tests and is_test_path(r)))

    def skip_out(p: Path) -> None:
        not_analysed.append({"path": rel(p), "reason": "outside the root (symlink)"})

    def outside(p: Path) -> bool:
        return p.is_symlink() and not p.resolve().is_relative_to(base)

    def placeholder(p: Path, package: dict[str, Any]) -> None:
        # A file of the package that is not analysed keeps its place in the
        # mirror as an empty module: imports of it are then dropped, instead
        # of grimp turning them into imports of the package above it.
        package["placeholders"].append(rel(p))

    def add_file(p: Path, name: str, is_pkg: bool, package: dict[str, Any]) -> None:
        nonlocal seen
        try:
            size = p.stat().st_size
            if size > max_file_bytes:
                reason = f"too large ({size} bytes > {max_file_bytes})"
                data = None
            else:
                data = p.read_bytes()
        except OSError as exc:
            reason, data = f"unreadable: {exc.strerror or exc}", None
        if data is None:
            not_analysed.append({"path": rel(p), "reason": reason})
            if is_pkg:  # the package stays a package, without its own imports
                package["modules"].append(_empty_package(name, rel(p.parent)))
            else:
                placeholder(p, package)
            return
        package["modules"].append(
            {
                "name": name,
                "path": rel(p),
                "is_package": is_pkg,
                "namespace": False,
                "digest": file_digest(data),
            }
        )
        seen += 1
        if on_file is not None and seen % 100 == 0:
            on_file(seen)

    def walk_package(pkg_dir: Path, package: dict[str, Any], prefix: str) -> None:
        try:
            entries = sorted(pkg_dir.iterdir(), key=lambda p: p.name)
        except OSError as exc:
            not_analysed.append({"path": rel(pkg_dir), "reason": f"unreadable: {exc.strerror}"})
            return
        for entry in entries:
            if entry.is_dir():
                # Inside a package only hidden folders and caches are skipped:
                # a sub-package may well be called `build` or `env`.
                if entry.name.startswith(".") or entry.name == "__pycache__":
                    continue
                if entry in skipped:
                    continue
                if entry.is_symlink():  # not followed, as grimp does not
                    if outside(entry):
                        skip_out(entry)
                    else:
                        not_analysed.append(
                            {
                                "path": rel(entry),
                                "reason": "symbolic link to a folder (not followed)",
                            }
                        )
                    continue
                if is_excluded_dir(rel(entry), patterns, exclude_tests):
                    for py in sorted(entry.rglob("*.py")):
                        placeholder(py, package)
                    continue
                if not entry.name.isidentifier():
                    for py in sorted(entry.rglob("*.py")):
                        if wanted(py):
                            not_analysed.append(
                                {"path": rel(py), "reason": "folder is not an importable name"}
                            )
                    continue
                if (entry / "__init__.py").is_file():
                    walk_package(entry, package, f"{prefix}.{entry.name}")
                elif any(entry.rglob("*.py")):
                    package["namespace_dirs"].append(rel(entry))
                    package["modules"].append(_empty_package(f"{prefix}.{entry.name}", rel(entry)))
                    walk_package(entry, package, f"{prefix}.{entry.name}")
                continue
            if entry.suffix != ".py":
                continue
            if not wanted(entry):
                if entry.stem == "__init__":
                    package["modules"].append(_empty_package(prefix, rel(pkg_dir)))
                else:
                    placeholder(entry, package)
                continue
            if outside(entry):
                skip_out(entry)
                continue
            if not entry.is_file():
                if entry.is_symlink():  # dangling
                    not_analysed.append({"path": rel(entry), "reason": "unreadable: broken link"})
                continue
            stem = entry.stem
            if stem == "__init__":
                add_file(entry, prefix, True, package)
            elif stem.isidentifier():
                add_file(entry, f"{prefix}.{stem}", False, package)
            else:
                not_analysed.append({"path": rel(entry), "reason": "not an importable module name"})

    def loose_files(directory: Path, entries: list[Path]) -> None:
        for entry in entries:
            if entry.suffix == ".py" and entry.is_file() and wanted(entry):
                not_analysed.append(
                    {"path": rel(entry), "reason": "not in a package (no __init__.py)"}
                )

    def new_package(pkg_dir: Path, source_root: Path) -> dict[str, Any]:
        return {
            "name": pkg_dir.name,
            "source_root": str(source_root),
            "path": rel(pkg_dir),
            "modules": [],
            "namespace_dirs": [],
            "placeholders": [],
        }

    visited: set[Path] = set()

    def walk_dirs(directory: Path) -> None:
        real = directory.resolve()
        if real in visited:  # a symbolic link loop, or a second way to one folder
            return
        visited.add(real)
        try:
            entries = sorted(directory.iterdir(), key=lambda p: p.name)
        except OSError as exc:
            not_analysed.append(
                {"path": rel(directory), "reason": f"unreadable: {exc.strerror or exc}"}
            )
            return
        loose_files(directory, entries)
        for entry in entries:
            if not entry.is_dir() or skip_dir(entry.name) or not wanted(entry):
                continue
            if entry in skipped:
                continue
            if outside(entry):
                skip_out(entry)
                continue
            if (entry / "__init__.py").is_file() and entry.name.isidentifier():
                package = new_package(entry, directory)
                walk_package(entry, package, entry.name)
                packages.append(package)
            else:
                walk_dirs(entry)

    if (top / "__init__.py").is_file() and top.name.isidentifier():
        # PATH is itself a package: its parent is the source root.
        package = new_package(top, top.parent)
        if top == base:
            package["path"] = "."
        walk_package(top, package, top.name)
        packages.append(package)
    else:
        walk_dirs(top)
        if (top / "__init__.py").is_file():  # a package folder with an unusable name
            for item in not_analysed:
                if item["path"] == "__init__.py" or "/" not in item["path"]:
                    item["reason"] = f"folder {top.name!r} is not an importable name"
    packages.sort(key=lambda p: (p["name"], p["path"]))
    # One name, one package: a second package of the same name (another source
    # root of the project) cannot be told apart in imports; it is listed.
    first: dict[str, str] = {}
    unique = []
    for package in packages:
        if package["name"] in first:
            for module in package["modules"]:
                if not module["namespace"]:
                    not_analysed.append(
                        {
                            "path": module["path"],
                            "reason": f"duplicate package name {package['name']!r} "
                            f"(the one at {first[package['name']]} is analysed)",
                        }
                    )
            continue
        first[package["name"]] = package["path"]
        unique.append(package)
    packages = unique
    not_analysed.sort(key=lambda f: f["path"])
    return {"root": str(base), "packages": packages, "not_analysed": not_analysed}


_NO_FACTS = {"loc": 0, "classes": 0, "abstract_classes": 0}


def _empty_package(name: str, folder: str) -> dict[str, Any]:
    """A package module without a usable ``__init__.py`` (namespace folder, or
    one excluded, unreadable or broken): it is mirrored with an empty one."""
    return {"name": name, "path": folder, "is_package": True, "namespace": True, "digest": ""}


def parse(
    scanned: dict[str, Any],
    on_file: Callable[[int, int], None] | None = None,
    memo: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Add LOC and class facts to every scanned module, with :mod:`ast`.

    Files that fail to parse (syntax error, bad encoding) move to
    ``not_analysed``; a file changed since the scan is read as it is now
    (its digest is refreshed). ``on_file(done, total)`` reports progress.
    ``memo`` maps content digests to ``[facts, reason]`` from earlier runs:
    a file found there is not parsed again. On return it holds exactly the
    entries of the files seen, so saving it keeps it bounded.
    """
    known = dict(memo) if memo is not None else {}
    if memo is not None:
        memo.clear()
    root = Path(scanned["root"])
    not_analysed = list(scanned["not_analysed"])
    packages = []
    total = sum(len(p["modules"]) for p in scanned["packages"])
    done = 0
    for package in scanned["packages"]:
        modules = []
        placeholders = list(package.get("placeholders", []))
        for module in package["modules"]:
            done += 1
            if on_file is not None and done % 100 == 0:
                on_file(done, total)
            if module["namespace"]:
                modules.append({**module, **_NO_FACTS})
                continue
            file = root / module["path"]
            try:
                data = file.read_bytes()
            except OSError as exc:
                reason = f"unreadable: {exc.strerror or exc}"
                not_analysed.append({"path": module["path"], "reason": reason})
                continue
            digest = file_digest(data)
            hit = known.get(digest)
            if hit is not None:
                facts, why = hit
            else:
                facts, why = parse_facts(data, str(file))
            if memo is not None:
                memo[digest] = [facts, why]
            if facts is None:
                not_analysed.append({"path": module["path"], "reason": why or "unknown"})
                if module["is_package"]:  # still a package, without its own imports
                    folder = module["path"].rpartition("/")[0] or "."
                    modules.append({**_empty_package(module["name"], folder), **_NO_FACTS})
                else:
                    placeholders.append(module["path"])
                continue
            modules.append({**module, "digest": digest, **facts})
        packages.append({**package, "modules": modules, "placeholders": placeholders})
    not_analysed.sort(key=lambda f: f["path"])
    return {**scanned, "packages": packages, "not_analysed": not_analysed}


def discover(
    path: str | os.PathLike[str],
    *,
    exclude: list[str] | None = None,
    exclude_tests: bool = False,
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
) -> dict[str, Any]:
    """:func:`scan` then :func:`parse`: the packages under ``path`` with their facts."""
    return parse(
        scan(path, exclude=exclude, exclude_tests=exclude_tests, max_file_bytes=max_file_bytes)
    )


def chunk_of(scanned: dict[str, Any], chunk: int, chunks: int) -> dict[str, Any]:
    """The part of a scan that parse step ``chunk`` of ``chunks`` handles.

    A file always falls in the same chunk (by a hash of its path), so each
    chunk's parse memo stays valid from run to run; namespace packages, the
    placeholders and the files not analysed go with chunk 0.
    """
    if chunks <= 1:
        return scanned

    def mine(module: dict[str, Any]) -> bool:
        if module["namespace"]:
            return chunk == 0
        return zlib.crc32(module["path"].encode()) % chunks == chunk

    packages = [
        {
            **package,
            "modules": [m for m in package["modules"] if mine(m)],
            "placeholders": package.get("placeholders", []) if chunk == 0 else [],
        }
        for package in scanned["packages"]
    ]
    not_analysed = scanned["not_analysed"] if chunk == 0 else []
    return {**scanned, "packages": packages, "not_analysed": not_analysed}


def merge_parts(scanned: dict[str, Any], parts: list[dict[str, Any]]) -> dict[str, Any]:
    """Put parsed chunks back together, in the scan's order: the result is
    what :func:`parse` of the whole scan gives."""
    if len(parts) == 1:
        return parts[0]
    packages = []
    for i, package in enumerate(scanned["packages"]):
        order = {m["name"]: n for n, m in enumerate(package["modules"])}
        modules = sorted(
            (m for part in parts for m in part["packages"][i]["modules"]),
            key=lambda m: order.get(m["name"], len(order)),
        )
        placeholders: list[str] = []
        for part in parts:
            placeholders += part["packages"][i].get("placeholders", [])
        packages.append({**package, "modules": modules, "placeholders": placeholders})
    not_analysed = sorted(
        (item for part in parts for item in part["not_analysed"]), key=lambda f: f["path"]
    )
    return {**scanned, "packages": packages, "not_analysed": not_analysed}
