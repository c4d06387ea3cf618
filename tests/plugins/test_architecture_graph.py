"""The import graph on code this interpreter cannot parse, on broken and odd
files, and on imports of modules that are not in the tree."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import msgspec
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from _tree import edge_set, write_tree

from corral.plugins.builtin.architecture import discover as _discover
from corral.plugins.builtin.architecture.graph import absolute_name


def analyse(*args: Any, **kw: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """(discovery, import graph) as JSON data: what the steps' Structs
    encode to, and what an embedder may hand the analysis functions."""
    found, graph = _discover.analyse(*args, **kw)
    return msgspec.to_builtins(found), msgspec.to_builtins(graph)


def grimp_edges(root: Path, package: str) -> set[tuple[str, str]]:
    """grimp's own internal edges, built in a fresh interpreter."""
    code = (
        "import json, sys\n"
        "sys.path.insert(0, sys.argv[1])\n"
        "import grimp\n"
        "g = grimp.build_graph(sys.argv[2], cache_dir=None)\n"
        "print(json.dumps(sorted([a, b] for a in g.modules"
        " for b in g.find_modules_directly_imported_by(a) if a != b)))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-I", "-c", code, str(root), package],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return {(a, b) for a, b in json.loads(proc.stdout)}


NEW_SYNTAX = {
    "modern/__init__.py": "from modern import aliases\n",
    "modern/aliases.py": """\
        from modern.base import Base
        type Pair[T] = tuple[T, T]
        type Table = dict[str, "Pair[int]"]

        def first[T](items: list[T]) -> T:
            from modern import util
            return items[0]

        class Box[T: (int, str)](Base):
            def get[U](self, other: U) -> U:
                return other
        """,
    "modern/base.py": """\
        import abc

        class Base(abc.ABC):
            @abc.abstractmethod
            def get(self, other): ...
        """,
    "modern/util.py": """\
        import modern.matching

        def describe(value):
            match value:
                case {"kind": kind, **rest}:
                    return f"{rest["name"]} is {kind!r}"   # 3.12: quotes reused
                case [first, *_]:
                    return f"{'nested ' + f"{first}"}"
                case _:
                    return t"template {value}"            # 3.14: t-string
        """,
    "modern/matching.py": """\
        def safe(fn):
            try:
                return fn()
            except ValueError, TypeError:                 # 3.14: PEP 758
                return None
        """,
}


def test_newer_syntax_than_the_interpreter_gives_grimps_edges(tmp_path: Path) -> None:
    write_tree(tmp_path, NEW_SYNTAX)
    found, graph = analyse(tmp_path)
    assert found["not_analysed"] == []
    assert (
        edge_set(graph)
        == grimp_edges(tmp_path, "modern")
        == {
            ("modern", "modern.aliases"),
            ("modern.aliases", "modern.base"),
            ("modern.aliases", "modern.util"),
            ("modern.util", "modern.matching"),
        }
    )
    facts = {m["name"]: m for p in found["packages"] for m in p["modules"]}
    # Box[T](Base) is no abstract class by the rule; Base is (ABC and @abstractmethod)
    assert (facts["modern.aliases"]["classes"], facts["modern.aliases"]["abstract_classes"]) == (
        1,
        0,
    )
    assert (facts["modern.base"]["classes"], facts["modern.base"]["abstract_classes"]) == (1, 1)
    assert facts["modern.util"]["loc"] == 9


def test_an_import_of_a_missing_module_is_unresolved_not_an_edge(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            "app/__init__.py": "",
            "app/core.py": "X = 1\n",
            "app/use.py": """\
                import app.generated
                from app.compiled import fast
                from app import core, not_a_module_but_a_name
                import app.core, app.gone as gone  # one line, one good, one missing
                from .also_missing import y
                """,
        },
    )
    _, graph = analyse(tmp_path)
    # `from app import name` is an import of app (grimp's rule); the missing
    # modules make no edge to app (what grimp alone would draw for them)
    assert edge_set(graph) == {("app.use", "app.core"), ("app.use", "app")}
    assert graph["unresolved"] == [
        {"importer": "app.use", "path": "app/use.py", "line": 1, "name": "app.generated"},
        {"importer": "app.use", "path": "app/use.py", "line": 2, "name": "app.compiled"},
        {"importer": "app.use", "path": "app/use.py", "line": 4, "name": "app.gone"},
        {"importer": "app.use", "path": "app/use.py", "line": 5, "name": "app.also_missing"},
    ]
    lines = {(e["importer"], e["imported"]): e["lines"] for e in graph["edges"]}
    assert lines == {("app.use", "app.core"): [3, 4], ("app.use", "app"): [3]}


def test_module_files_named_like_migrations_are_modules(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            "site/__init__.py": "",
            "site/models.py": "",
            "site/migrations/__init__.py": "",
            "site/migrations/0001_initial.py": "from site import models\n",
            "site/migrations/0002-auto.py": "import site.models\n",
            "site/odd.name.py": "",
        },
    )
    found, graph = analyse(tmp_path)
    assert {
        ("site.migrations.0001_initial", "site.models"),
        ("site.migrations.0002-auto", "site.models"),
    } <= edge_set(graph)
    reasons = {f["path"]: f["reason"] for f in found["not_analysed"]}
    assert reasons == {"site/odd.name.py": "not an importable module name (a dot in the name)"}


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX special files")
def test_links_fifos_sockets_and_devices_are_listed_never_read(tmp_path: Path) -> None:
    write_tree(tmp_path, {"pkg/__init__.py": "", "pkg/ok.py": "import pkg.loop\n", "x.py": ""})
    (tmp_path / "pkg/loop.py").symlink_to("loop.py")  # a link to itself
    (tmp_path / "pkg/a.py").symlink_to("b.py")
    (tmp_path / "pkg/b.py").symlink_to("a.py")  # a loop of two
    os.mkfifo(tmp_path / "pkg/pipe.py")  # reading it would block forever
    os.mkfifo(tmp_path / "loose.py")
    (tmp_path / "pkg/zero.py").symlink_to("/dev/zero")  # reading it never ends
    expected_device = {}
    try:  # a device node inside the tree (root only)
        os.mknod(tmp_path / "pkg/dev.py", stat.S_IFCHR | 0o600, os.makedev(1, 3))
        expected_device = {"pkg/dev.py": "not a regular file (a device file)"}
    except (PermissionError, AttributeError):
        pass
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(str(tmp_path / "pkg/sock.py"))
        found, graph = analyse(tmp_path)
    finally:
        sock.close()
    reasons = {f["path"]: f["reason"] for f in found["not_analysed"]}
    assert reasons == {
        "loose.py": "not a regular file (a FIFO); not in a package (no __init__.py)",
        "pkg/a.py": "unreadable: symbolic link loop",
        "pkg/b.py": "unreadable: symbolic link loop",
        "pkg/loop.py": "unreadable: symbolic link loop",
        "pkg/pipe.py": "not a regular file (a FIFO)",
        "pkg/sock.py": "not a regular file (a socket)",
        "pkg/zero.py": "outside the root (symlink)",
        "x.py": "not in a package (no __init__.py)",
        **expected_device,
    }
    # imports of them are dropped, not drawn to the package above
    assert edge_set(graph) == set()
    assert graph["unresolved"] == []


BROKEN = {
    "deep/__init__.py": "from deep import good\n",
    "deep/good.py": "import deep.other\n",
    "deep/other.py": "X = 1\n",
    "deep/sub/__init__.py": "",
    # climbs two levels above the top package: grimp panics on it
    "deep/sub/climb.py": "import deep.other\nfrom .... import x\n",
    "deep/sub/fine.py": "from .. import other\n",
    "deep/syntax.py": "import deep.other\ndef (:\n",
}


def test_one_bad_file_never_fails_the_graph(tmp_path: Path) -> None:
    write_tree(tmp_path, BROKEN)
    # 300,000 terms: grimp's parser overflows its stack on this (a crash of
    # its process, not an error), and Python's own parser runs out of recursion.
    (tmp_path / "deep/huge.py").write_text("import deep.other\nX = 1" + " + 1" * 300_000 + "\n")
    found, graph = analyse(tmp_path)
    reasons = {f["path"]: f["reason"] for f in found["not_analysed"]}
    assert set(reasons) == {"deep/huge.py", "deep/sub/climb.py", "deep/syntax.py"}
    assert reasons["deep/huge.py"].startswith("the import parser crashed on this file")
    assert reasons["deep/sub/climb.py"].startswith("the import parser failed on this file")
    assert reasons["deep/syntax.py"] == "syntax error: line 2: invalid syntax"
    assert edge_set(graph) == {
        ("deep", "deep.good"),
        ("deep.good", "deep.other"),
        ("deep.sub.fine", "deep.other"),
    }
    modules = {m["name"] for p in found["packages"] for m in p["modules"]}
    assert "deep.huge" not in modules and "deep.sub.fine" in modules


def test_absolute_name_follows_grimp() -> None:
    assert absolute_name("a.b", "p.m", False) == "a.b"
    assert absolute_name(".x", "p.m", False) == "p.x"
    assert absolute_name(".", "p.m", False) == "p"
    assert absolute_name(".x", "p.sub", True) == "p.sub.x"
    assert absolute_name("..x", "p.sub", True) == "p.x"
    assert absolute_name("..x", "p.m", False) is None  # above the top package
    assert absolute_name("...x", "p.sub", True) is None


def test_a_spare_child_is_taken_once_and_never_left_behind(tmp_path: Path) -> None:
    from corral.plugins.builtin.architecture import isolation

    isolation.prestart("imports")
    spare = isolation._spare
    assert spare is not None and spare.proc.poll() is None
    write_tree(tmp_path, {"p/__init__.py": "import p.q\n", "p/q.py": ""})
    _, graph = analyse(tmp_path)  # takes the spare, and ends it once its work is read
    assert isolation._spare is None and spare.proc.poll() is not None
    assert edge_set(graph) == {("p", "p.q")}

    isolation.prestart("imports")
    unused = isolation._spare
    assert unused is not None
    isolation.discard_spare()  # its work came from the cache: ended, not leaked
    assert isolation._spare is None and unused.proc.wait(timeout=30) is not None

    isolation.prestart("imports")
    orphan = isolation._spare
    assert orphan is not None and orphan.proc.stdin is not None
    orphan.proc.stdin.close()  # what the child sees when this process ends
    assert orphan.proc.wait(timeout=30) == 0
    isolation.discard_spare()
