"""Discovery: the Python packages under a path, and what is not analysed.

A *top-level package* is a directory with an ``__init__.py`` whose parent has
none; its *source root* is that parent (so flat and src layouts, and several
packages or subprojects in one tree, are all found). Inside a package, a
sub-folder without ``__init__.py`` is analysed as a namespace package.
Nothing is imported: :func:`scan` walks, reads and hashes the files (the
digests key the step cache) and sets aside those that are not Python source
text; :func:`add_facts` adds their facts (:mod:`.facts`) and :func:`merge`
joins them with the import graph (:mod:`.graph`), which decides what parses.
"""

from __future__ import annotations

import errno
import fnmatch
import hashlib
import io
import os
import re
import stat
import tokenize
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec

from corral.core.files import kind_of, read_capped
from corral.plugins.builtin.architecture.model import (
    Discovery,
    ImportGraph,
    NotAnalysed,
    SourceModule,
    SourcePackage,
)
from corral.plugins.builtin.architecture.settings import DEFAULT_MAX_FILE_BYTES

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


def file_digest(data: bytes) -> str:
    """A short content hash: what the step cache keys on."""
    return hashlib.blake2b(data, digest_size=12).hexdigest()


def source_problem(data: bytes, plain: bool = False) -> str | None:
    """Why ``data`` is not Python source text, or ``None``: binary (null
    bytes) or undecodable in its declared (PEP 263) or default encoding.
    ``plain``: :func:`plain_utf8` said so (the encoding is then known)."""
    if b"\0" in data:
        return "unreadable: contains null bytes (not Python source)"
    try:
        if plain:  # (most files: no need to look for the encoding again)
            data.decode("utf-8")
            return None
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
        data.decode(encoding)
    except (SyntaxError, UnicodeDecodeError, LookupError):
        return "unreadable: undecodable text (bad encoding)"
    return None


_COOKIE = re.compile(rb"^[ \t\f]*#.*?coding[:=][ \t]*([-\w.]+)", re.M)


def plain_utf8(data: bytes) -> bool:
    """Whether grimp may read the file itself: UTF-8 without a BOM and with
    no other encoding declared (it reads every file as UTF-8; any other is
    decoded as Python would and handed to it in memory, see :mod:`._child`)."""
    if data.startswith(b"\xef\xbb\xbf"):
        return False
    first_two = b"\n".join(data[:1024].split(b"\n", 2)[:2])
    cookie = _COOKIE.search(first_two)
    return cookie is None or cookie.group(1).lower().replace(b"_", b"-") in (b"utf-8", b"utf8")


def decode_source(data: bytes) -> str:
    """The text of a file that :func:`source_problem` accepted."""
    encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    return data.decode(encoding)


def is_module_file(name: str) -> bool:
    """Whether a ``.py`` file can be a module, by grimp's rule (and the import
    system's, through ``importlib.import_module``): not hidden, no other dot.
    ``0001_initial.py`` is one (frameworks load migrations so)."""
    return name.endswith(".py") and not name.startswith(".") and name.count(".") == 1


def scan(
    path: str | os.PathLike[str],
    *,
    exclude: list[str] | None = None,
    exclude_tests: bool = False,
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
    skip: list[str] | None = None,
    root: str | os.PathLike[str] | None = None,
    on_file: Callable[[int], None] | None = None,
) -> Discovery:
    """Walk ``path`` and find its packages and modules, reading and hashing
    every file (only regular files, up to ``max_file_bytes``).

    Nothing is parsed here (see :func:`add_facts` and :mod:`.graph`); a file
    that is not Python source text (null bytes, undecodable) is listed and
    kept as a placeholder. ``root`` is what reported
    paths are relative to (default: ``path``); ``skip`` lists directories,
    relative to the root, that belong to nested projects. ``on_file(n)`` is
    called as files are found (progress).

    Sub-folders of a package without an ``__init__.py`` are analysed as
    namespace packages (``namespace`` true, ``path`` the folder, no digest);
    a file not in plain UTF-8 has ``plain`` false (see :func:`plain_utf8`).
    """
    top = Path(path).resolve()
    base = Path(root).resolve() if root is not None else top
    if not top.exists():
        raise FileNotFoundError(f"no such directory: {path}")
    if not top.is_dir():
        raise NotADirectoryError(f"not a directory: {path}")
    patterns = list(exclude or [])
    skipped = {base / s for s in (skip or [])}
    packages: list[SourcePackage] = []
    not_analysed: list[NotAnalysed] = []
    seen = 0

    base_text = str(base)
    cut = len(base_text) + (0 if base_text.endswith(os.sep) else 1)

    def rel(p: Path) -> str:
        # Every path here is built by joining names onto ``base`` (or is a
        # folder under it), so its relative form is a slice of its text:
        # ``Path.relative_to`` on each of thousands of files costs a tenth
        # of the walk.
        text = str(p)
        if not text.startswith(base_text):
            return p.relative_to(base).as_posix() or "."
        return text[cut:].replace(os.sep, "/") or "."

    def wanted(p: Path) -> bool:
        r = rel(p)
        return not (_excluded(r, patterns) or (exclude_tests and is_test_path(r)))

    def skip_out(p: Path) -> None:
        not_analysed.append(NotAnalysed(rel(p), "outside the root (symlink)"))

    def outside(p: Path, is_link: bool | None = None) -> bool:
        if not (p.is_symlink() if is_link is None else is_link):
            return False
        try:
            return not p.resolve().is_relative_to(base)
        except (OSError, RuntimeError):  # a link loop (3.11 raises RuntimeError)
            return False

    def placeholder(p: Path, package: SourcePackage) -> None:
        # A file of the package that is not analysed keeps its place in the
        # module set (without imports): imports of it are then dropped,
        # instead of grimp turning them into imports of the package above it.
        package.placeholders.append(rel(p))

    def add_file(p: Path, name: str, is_pkg: bool, package: SourcePackage) -> None:
        nonlocal seen
        data: bytes | None = None
        plain = False
        try:
            # Opened without blocking and checked by fstat (a FIFO is never
            # read), at most max_file_bytes read, unbuffered.
            data = read_capped(p, max_file_bytes)
        except OSError as exc:
            if exc.errno in (errno.EINVAL, errno.EISDIR, errno.EFBIG) and exc.strerror:
                reason = exc.strerror  # "not a regular file (a FIFO)", "too large (...)"
            else:
                reason = f"unreadable: {_os_reason(exc)}"
        else:
            plain = plain_utf8(data)
            reason = source_problem(data, plain) or ""
            if reason:
                data = None
        if data is None:
            not_analysed.append(NotAnalysed(rel(p), reason))
            if is_pkg:  # the package stays a package, without its own imports
                package.modules.append(_empty_package(name, rel(p.parent)))
            else:
                placeholder(p, package)
            return
        package.modules.append(
            SourceModule(name, rel(p), is_package=is_pkg, digest=file_digest(data), plain=plain)
        )
        seen += 1
        if on_file is not None and seen % 100 == 0:
            on_file(seen)

    def walk_package(pkg_dir: Path, package: SourcePackage, prefix: str) -> None:
        try:
            # scandir: the entry types come with the listing (no stat per file)
            with os.scandir(pkg_dir) as listing:
                entries = sorted(listing, key=lambda e: e.name)
        except OSError as exc:
            not_analysed.append(NotAnalysed(rel(pkg_dir), f"unreadable: {exc.strerror}"))
            return
        for found in entries:
            entry = pkg_dir / found.name
            if _is_dir(found):
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
                        reason = "symbolic link to a folder (not followed)"
                        not_analysed.append(NotAnalysed(rel(entry), reason))
                    continue
                if is_excluded_dir(rel(entry), patterns, exclude_tests):
                    for py in sorted(entry.rglob("*.py")):
                        placeholder(py, package)
                    continue
                if not entry.name.isidentifier():
                    for py in sorted(entry.rglob("*.py")):
                        if wanted(py):
                            reason = "folder is not an importable name"
                            not_analysed.append(NotAnalysed(rel(py), reason))
                    continue
                if (entry / "__init__.py").is_file():
                    walk_package(entry, package, f"{prefix}.{entry.name}")
                elif any(entry.rglob("*.py")):
                    package.namespace_dirs.append(rel(entry))
                    package.modules.append(_empty_package(f"{prefix}.{entry.name}", rel(entry)))
                    walk_package(entry, package, f"{prefix}.{entry.name}")
                continue
            if not found.name.endswith(".py") or found.name == ".py":  # Path.suffix's rule
                continue
            if not is_module_file(entry.name):
                if wanted(entry):
                    reason = "not an importable module name (a dot in the name)"
                    not_analysed.append(NotAnalysed(rel(entry), reason))
                continue
            if not wanted(entry):
                if entry.stem == "__init__":
                    package.modules.append(_empty_package(prefix, rel(pkg_dir)))
                else:
                    placeholder(entry, package)
                continue
            is_link = found.is_symlink()
            if outside(entry, is_link):
                skip_out(entry)
                continue
            regular = not is_link and found.is_file(follow_symlinks=False)
            problem = None if regular else _link_problem(entry)
            if problem is not None:
                not_analysed.append(NotAnalysed(rel(entry), problem))
                if entry.stem == "__init__":
                    package.modules.append(_empty_package(prefix, rel(pkg_dir)))
                else:
                    placeholder(entry, package)
                continue
            stem = entry.stem
            if stem == "__init__":
                add_file(entry, prefix, True, package)
            else:
                add_file(entry, f"{prefix}.{stem}", False, package)

    def loose_files(directory: Path, entries: list[Path]) -> None:
        for entry in entries:
            if entry.suffix == ".py" and not entry.is_dir() and wanted(entry):
                problem = _link_problem(entry)
                reason = "not in a package (no __init__.py)"
                if problem is not None:
                    reason = f"{problem}; {reason}"
                not_analysed.append(NotAnalysed(rel(entry), reason))

    def new_package(pkg_dir: Path, source_root: Path) -> SourcePackage:
        return SourcePackage(pkg_dir.name, str(source_root), rel(pkg_dir))

    visited: set[Path] = set()

    def walk_dirs(directory: Path) -> None:
        try:
            real = directory.resolve()
        except (OSError, RuntimeError):  # a link loop
            return
        if real in visited:  # a symbolic link loop, or a second way to one folder
            return
        visited.add(real)
        try:
            entries = sorted(directory.iterdir(), key=lambda p: p.name)
        except OSError as exc:
            reason = f"unreadable: {exc.strerror or exc}"
            not_analysed.append(NotAnalysed(rel(directory), reason))
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
            package.path = "."
        walk_package(top, package, top.name)
        packages.append(package)
    else:
        walk_dirs(top)
        if (top / "__init__.py").is_file():  # a package folder with an unusable name
            for item in not_analysed:
                if item.path == "__init__.py" or "/" not in item.path:
                    item.reason = f"folder {top.name!r} is not an importable name"
    packages.sort(key=lambda p: (p.name, p.path))
    # One name, one package: a second package of the same name (another source
    # root of the project) cannot be told apart in imports; it is listed.
    first: dict[str, str] = {}
    unique = []
    for package in packages:
        if package.name in first:
            reason = (
                f"duplicate package name {package.name!r} "
                f"(the one at {first[package.name]} is analysed)"
            )
            for module in package.modules:
                if not module.namespace:
                    not_analysed.append(NotAnalysed(module.path, reason))
            continue
        first[package.name] = package.path
        unique.append(package)
    not_analysed.sort(key=lambda f: f.path)
    return Discovery(str(base), unique, not_analysed)


def _is_dir(entry: os.DirEntry[str]) -> bool:
    """``Path.is_dir`` of a listed entry: follows a link; a link loop or a
    broken link is no folder (``DirEntry.is_dir`` raises on a loop)."""
    try:
        return entry.is_dir()
    except OSError:
        return False


def _os_reason(exc: OSError) -> str:
    return str(exc.strerror or exc)


def _link_problem(entry: Path) -> str | None:
    """Why a directory entry named ``*.py`` cannot be read as a file: a
    broken link, a link loop, or not a regular file (FIFO, socket, device)."""
    try:
        info = entry.stat()
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "unreadable: symbolic link loop"
        if entry.is_symlink():
            return "unreadable: broken link"
        return f"unreadable: {_os_reason(exc)}"
    if not stat.S_ISREG(info.st_mode):
        return f"not a regular file ({kind_of(info.st_mode)})"
    return None


def _empty_package(name: str, folder: str) -> SourceModule:
    """A package module without a usable ``__init__.py`` (namespace folder, or
    one excluded, unreadable or broken): it has no imports of its own."""
    return SourceModule(name, folder, is_package=True, namespace=True)


def read_text(root: Path, path: str) -> str | None:
    """The decoded text of a scanned file, or ``None`` when it is gone or
    changed into something that is not Python source text."""
    try:
        return decode_source((root / path).read_bytes())
    except (OSError, SyntaxError, UnicodeDecodeError, LookupError):
        return None


def add_facts(
    scanned: Discovery,
    memo: dict[str, Any] | None = None,
    on_file: Callable[[int, int], None] | None = None,
) -> dict[str, list[int]]:
    """Facts (``[loc, classes, abstract classes]``) of every scanned file,
    keyed by content digest (see :mod:`.facts`).

    Files only a newer parser can read are parsed by libcst in an isolated
    process; one that crashes it keeps the facts known without a parser.
    ``memo`` (digest -> facts of earlier runs) is read and updated.
    """
    # (imported here: walking a tree, as corral vibe does, needs no parser)
    from corral.plugins.builtin.architecture import facts as _facts

    root = Path(scanned.root)
    modules = [(m.digest, m.path) for m in scanned.modules() if not m.namespace]
    found, deferred = _facts.collect(modules, lambda path: read_text(root, path), memo, on_file)
    if deferred:
        from corral.plugins.builtin.architecture.isolation import run_isolated

        results = run_isolated(
            "facts", {}, [str(root / path) for _, path in deferred], chunk_size=8, chunk_timeout=30
        )
        for (digest, path), result in zip(deferred, results, strict=True):
            facts = result.get("facts")
            if facts is None:
                text = read_text(root, path)
                if text is None:
                    continue
                facts = list(_facts.tokens_only_facts(text))
            found[digest] = (int(facts[0]), int(facts[1]), int(facts[2]))
            if memo is not None:
                memo[digest] = list(found[digest])
    return {digest: list(f) for digest, f in found.items()}


def merge(scanned: Discovery, facts: dict[str, list[int]], graph: ImportGraph) -> Discovery:
    """The discovery: the scan, each module with its facts, less the files the
    import graph builder could not read (listed as not analysed; a package
    whose ``__init__.py`` is among them stays a package, without facts)."""
    failed = {f.path: f.reason for f in graph.not_analysed}
    not_analysed = [*scanned.not_analysed, *graph.not_analysed]
    packages = []
    for package in scanned.packages:
        modules = []
        placeholders = list(package.placeholders)
        for module in package.modules:
            if module.namespace:
                modules.append(module)
                continue
            if module.path in failed:
                if module.is_package:
                    modules.append(
                        _empty_package(module.name, module.path.rpartition("/")[0] or ".")
                    )
                else:
                    placeholders.append(module.path)
                continue
            loc, classes, abstract = facts.get(module.digest, (0, 0, 0))
            modules.append(
                msgspec.structs.replace(module, loc=loc, classes=classes, abstract_classes=abstract)
            )
        packages.append(
            msgspec.structs.replace(package, modules=modules, placeholders=placeholders)
        )
    not_analysed.sort(key=lambda f: f.path)
    return Discovery(scanned.root, packages, not_analysed)


def discover(
    path: str | os.PathLike[str],
    *,
    exclude: list[str] | None = None,
    exclude_tests: bool = False,
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
) -> Discovery:
    """:func:`scan` then :func:`add_facts`: the packages under ``path`` with
    their facts (before the import graph says which files parse; see
    :func:`analyse` for both)."""
    scanned = scan(
        path, exclude=exclude, exclude_tests=exclude_tests, max_file_bytes=max_file_bytes
    )
    return merge(scanned, add_facts(scanned), ImportGraph())


def analyse(
    path: str | os.PathLike[str],
    *,
    exclude: list[str] | None = None,
    exclude_tests: bool = False,
    exclude_type_checking: bool = False,
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
) -> tuple[Discovery, ImportGraph]:
    """(discovery, import graph) of the packages under ``path``, in this
    process's thread: what the workflow's steps compute, for tests and tools."""
    from corral.plugins.builtin.architecture.graph import build_import_graph

    scanned = scan(
        path, exclude=exclude, exclude_tests=exclude_tests, max_file_bytes=max_file_bytes
    )
    graph = build_import_graph(scanned, exclude_type_checking=exclude_type_checking)
    return merge(scanned, add_facts(scanned), graph), graph
