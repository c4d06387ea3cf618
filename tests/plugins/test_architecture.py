"""The ``architecture.*`` plugin: discovery, import graph, metrics, cycles, report."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).parent))
from _tree import edge_set, write_tree

from corral.plugins.builtin.architecture.cycles import (
    feedback_edges,
    find_cycles,
    shortest_cycle,
    strongly_connected_components,
)
from corral.plugins.builtin.architecture import discover as _discover
from corral.plugins.builtin.architecture import graph as _graph
from corral.plugins.builtin.architecture.layers import check_architecture
from corral.plugins.builtin.architecture.metrics import compute_metrics
from corral.plugins.builtin.architecture.report import build_section, combine, summary_text


def analyse(*args: Any, **kw: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """(discovery, import graph) as JSON data: what the steps' Structs
    encode to, and what an embedder may hand the analysis functions."""
    found, graph = _discover.analyse(*args, **kw)
    return msgspec.to_builtins(found), msgspec.to_builtins(graph)


def discover(*args: Any, **kw: Any) -> dict[str, Any]:
    """The discovery (scan and facts) as JSON data."""
    return msgspec.to_builtins(_discover.discover(*args, **kw))


def build_import_graph(*args: Any, **kw: Any) -> dict[str, Any]:
    return msgspec.to_builtins(_graph.build_import_graph(*args, **kw))


EDGE_RULES = {
    "pkg/__init__.py": "",
    "pkg/a/__init__.py": "",
    "pkg/a/b/__init__.py": "",
    "pkg/a/b/c.py": "X = 1\n",
    "pkg/sub.py": "",
    "pkg/plain.py": """\
        import pkg.a.b.c
        from pkg import sub
        import pkg.plain
        import os, json
        """,
    "pkg/lazy.py": """\
        def f():
            import pkg.sub

        try:
            from pkg.a import b
        except ImportError:
            pass
        """,
    "pkg/rel.py": """\
        from . import sub
        from .a.b.c import X
        from .a.b import *
        """,
    "pkg/typed.py": """\
        from typing import TYPE_CHECKING
        if TYPE_CHECKING:
            import pkg.sub
        """,
    # a namespace sub-folder (no __init__.py): analysed as a package
    "pkg/ns/inner.py": """\
        from .. import sub
        from pkg.ns import deeper
        """,
    "pkg/ns/deeper.py": "import pkg.ns.inner\n",
    # a syntax error: not analysed, and the graph is still built
    "pkg/broken.py": "import pkg.sub\ndef (:\n",
    "pkg/uses_broken.py": "import pkg.broken\n",
}


def test_edge_rules(tmp_path: Path) -> None:
    write_tree(tmp_path, EDGE_RULES)
    found, graph = analyse(tmp_path)
    assert edge_set(graph) == {
        ("pkg.plain", "pkg.a.b.c"),  # import a.b.c -> a.b.c only
        ("pkg.plain", "pkg.sub"),  # from pkg import sub -> pkg.sub
        ("pkg.lazy", "pkg.sub"),  # inside a function
        ("pkg.lazy", "pkg.a.b"),  # inside try
        ("pkg.rel", "pkg.sub"),
        ("pkg.rel", "pkg.a.b.c"),
        ("pkg.rel", "pkg.a.b"),
        ("pkg.typed", "pkg.sub"),  # TYPE_CHECKING counted by default
        ("pkg.ns.inner", "pkg.sub"),  # relative import out of a namespace folder
        ("pkg.ns.inner", "pkg.ns.deeper"),
        ("pkg.ns.deeper", "pkg.ns.inner"),
    }  # pkg.plain -> pkg.plain (self-import) is not an edge; pkg.broken is not
    # analysed (syntax error), so pkg.uses_broken -> pkg.broken is no edge, and not
    # an edge to pkg either (what grimp makes of an import of a missing module)
    lines = {(e["importer"], e["imported"]): e["lines"] for e in graph["edges"]}
    assert lines[("pkg.plain", "pkg.a.b.c")] == [1]
    assert lines[("pkg.lazy", "pkg.a.b")] == [5]
    assert {e["imported"] for e in graph["external"]} == {"os", "json", "typing"}
    assert "pkg.a.b.c" in graph["modules"]

    no_tc = build_import_graph(discover(tmp_path), exclude_type_checking=True)
    assert edge_set(no_tc) == edge_set(graph) - {("pkg.typed", "pkg.sub")}

    assert found["not_analysed"] == [
        {"path": "pkg/broken.py", "reason": "syntax error: line 2: invalid syntax"}
    ]
    assert found["packages"][0]["namespace_dirs"] == ["pkg/ns"]
    assert set(graph["modules"]) == {
        "pkg",
        "pkg.a",
        "pkg.a.b",
        "pkg.a.b.c",
        "pkg.sub",
        "pkg.plain",
        "pkg.lazy",
        "pkg.rel",
        "pkg.typed",
        "pkg.ns",
        "pkg.ns.inner",
        "pkg.ns.deeper",
        "pkg.uses_broken",
    }
    metrics = compute_metrics(found, graph)
    # pkg.sub: imported by plain, lazy, rel, typed, ns.inner
    assert (metrics["modules"]["pkg.sub"]["ca"], metrics["modules"]["pkg.sub"]["ce"]) == (5, 0)
    assert metrics["modules"]["pkg.rel"]["ce"] == 3
    assert metrics["modules"]["pkg.rel"]["instability"] == 1.0
    # packages: pkg.ns imports pkg (pkg.sub) and nothing imports pkg.ns; pkg.a.b is
    # imported from pkg only (plain, lazy, rel); no package cycle (pkg never imports pkg.ns)
    assert metrics["packages"]["pkg.ns"]["ce"] == 1 and metrics["packages"]["pkg.ns"]["ca"] == 0
    assert metrics["packages"]["pkg.a.b"]["ca"] == 1
    cycles = find_cycles(graph, found)
    assert [c["members"] for c in cycles["modules"]] == [["pkg.ns.deeper", "pkg.ns.inner"]]
    assert cycles["packages"] == []


def test_discovery_layouts_and_not_analysed(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            "src/alpha/__init__.py": "import beta\n",
            "src/alpha/bad.py": "def (:\n",
            "src/alpha/big.py": "X = 1\n" * 100,
            "src/alpha/nsdir/mod.py": "",
            "src/beta/__init__.py": "",
            "tools/gamma/__init__.py": "",
            "tools/gamma/tests/__init__.py": "",
            "tools/gamma/tests/test_x.py": "",
            "tools/gamma/skipme.py": "",
            "scripts/loose.py": "",
            ".venv/lib/junk/__init__.py": "",
        },
    )
    (tmp_path / "src/alpha/latin1.py").write_bytes(b"# -*- coding: latin-1 -*-\nX = '\xe9'\n")
    (tmp_path / "src/alpha/garbled.py").write_bytes(b"X = '\xe9\xff'\n")
    outside = tmp_path.parent / f"{tmp_path.name}-outside.py"
    outside.write_text("")
    (tmp_path / "src/alpha/linked.py").symlink_to(outside)
    found, graph = analyse(tmp_path, exclude=["skip*.py"], max_file_bytes=500)
    assert [(p["name"], p["path"]) for p in found["packages"]] == [
        ("alpha", "src/alpha"),
        ("beta", "src/beta"),
        ("gamma", "tools/gamma"),
    ]
    alpha = found["packages"][0]
    assert alpha["source_root"] == str(tmp_path / "src")
    assert alpha["namespace_dirs"] == ["src/alpha/nsdir"]
    reasons = {f["path"]: f["reason"] for f in found["not_analysed"]}
    assert reasons["src/alpha/bad.py"].startswith("syntax error: line 1")
    assert reasons["src/alpha/big.py"].startswith("too large")
    assert "src/alpha/nsdir/mod.py" not in reasons  # analysed as a namespace package
    assert {"alpha.nsdir", "alpha.nsdir.mod"} <= {m["name"] for m in alpha["modules"]}
    assert reasons["scripts/loose.py"] == "not in a package (no __init__.py)"
    assert reasons["src/alpha/garbled.py"].startswith("unreadable")
    assert reasons["src/alpha/linked.py"] == "outside the root (symlink)"
    assert "alpha.latin1" in {m["name"] for m in alpha["modules"]}
    gamma = {m["name"] for m in found["packages"][2]["modules"]}
    assert gamma == {"gamma", "gamma.tests", "gamma.tests.test_x"}
    no_tests = discover(tmp_path, exclude_tests=True)
    assert {m["name"] for m in no_tests["packages"][2]["modules"]} == {"gamma", "gamma.skipme"}

    # The syntax error does not break the graph; packages of one root share it.
    assert ("alpha", "beta") in edge_set(graph)
    assert "alpha.bad" not in graph["modules"]


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permissions")
def test_unreadable_file(tmp_path: Path) -> None:
    """An unreadable file is listed, the rest analysed. As root (CI), the
    check runs in a child that gives up the capabilities that bypass file
    permissions (setpriv), so it is not skipped there."""
    import json
    import os
    import shutil
    import subprocess

    write_tree(tmp_path, {"p/__init__.py": "", "p/secret.py": ""})
    (tmp_path / "p/secret.py").chmod(0)
    if os.geteuid() != 0:
        reasons = {f["path"]: f["reason"] for f in discover(tmp_path)["not_analysed"]}
        assert reasons["p/secret.py"].startswith("unreadable")
        return
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("root reads everything, and setpriv is not installed")
    code = (
        "import json, sys\n"
        "from corral.plugins.builtin.architecture.discover import discover\n"
        "import msgspec\n"
        "print(json.dumps(msgspec.to_builtins(discover(sys.argv[1]).not_analysed)))\n"
    )
    proc = subprocess.run(
        [setpriv, "--bounding-set=-dac_override,-dac_read_search", "--inh-caps=-all"]
        + [sys.executable, "-c", code, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if proc.returncode != 0 and "setpriv" in proc.stderr:
        pytest.skip(f"setpriv cannot drop capabilities here: {proc.stderr.strip()}")
    assert proc.returncode == 0, proc.stderr
    reasons = {f["path"]: f["reason"] for f in json.loads(proc.stdout)}
    assert reasons == {"p/secret.py": "unreadable: Permission denied"}


def test_isolation_from_installed_package(tmp_path: Path) -> None:
    """A fake ``trio`` (imported by corral itself) is analysed from the tree."""
    import trio

    assert "trio" in sys.modules
    write_tree(
        tmp_path,
        {
            "trio/__init__.py": "from trio import fake_one\n",
            "trio/fake_one.py": "import trio.fake_two\n",
            "trio/fake_two.py": "raise SystemExit('never executed')\n",
        },
    )
    graph = build_import_graph(discover(tmp_path))
    assert graph["modules"] == ["trio", "trio.fake_one", "trio.fake_two"]
    assert edge_set(graph) == {("trio", "trio.fake_one"), ("trio.fake_one", "trio.fake_two")}
    assert trio.__file__ is not None and str(tmp_path) not in trio.__file__


def test_scc_and_cycles(tmp_path: Path) -> None:
    g = {"a": ["b"], "b": ["c"], "c": ["a", "d"], "d": ["e"], "e": ["d"], "f": []}
    assert strongly_connected_components(g) == [["a", "b", "c"], ["d", "e"], ["f"]]
    assert shortest_cycle(g, ["a", "b", "c"]) == ["a", "b", "c", "a"]
    # Deep chains do not hit the recursion limit.
    chain = {str(i): [str(i + 1)] for i in range(20_000)}
    chain["20000"] = ["0"]
    assert len(strongly_connected_components(chain)) == 1

    write_tree(
        tmp_path,
        {
            "cyc/__init__.py": "",
            "cyc/one.py": "from cyc import two\n",
            "cyc/two.py": "from cyc import three\n",
            "cyc/three.py": "import cyc.one\n",
            "cyc/sub/__init__.py": "",
            "cyc/sub/x.py": "import cyc.one\n",
            "cyc/acyclic.py": "import cyc.sub.x\n",
        },
    )
    found, graph = analyse(tmp_path)
    cycles = find_cycles(graph, found)
    assert cycles["modules"] == [
        {
            "members": ["cyc.one", "cyc.three", "cyc.two"],
            "size": 3,
            "example": ["cyc.one", "cyc.two", "cyc.three", "cyc.one"],
            "cut": [
                {
                    "importer": "cyc.three",
                    "imported": "cyc.one",
                    "lines": [1],
                    "path": "cyc/three.py",
                }
            ],
        }
    ]
    # cyc.acyclic (in cyc) -> cyc.sub.x -> cyc.one (in cyc): a package cycle.
    assert cycles["packages"] == [
        {
            "members": ["cyc", "cyc.sub"],
            "size": 2,
            "example": ["cyc", "cyc.sub", "cyc"],
            "cut": [
                {
                    "importer": "cyc.sub",
                    "imported": "cyc",
                    # where to cut: the first import behind the package edge
                    "lines": [1],
                    "path": "cyc/sub/x.py",
                    "via": [
                        {
                            "importer": "cyc.sub.x",
                            "imported": "cyc.one",
                            "lines": [1],
                            "path": "cyc/sub/x.py",
                        }
                    ],
                }
            ],
        }
    ]


def test_feedback_edges_cut_light_edges_and_stay_minimal() -> None:
    # a <-> b with a->b heavy (5 import lines) and b->a light: cut b->a.
    g = {"a": {"b"}, "b": {"a", "c"}, "c": {"a"}}
    w = {("a", "b"): 5, ("b", "a"): 1, ("b", "c"): 1, ("c", "a"): 1}
    cut = feedback_edges(g, ["a", "b", "c"], lambda x, y: w[x, y])
    assert ("a", "b") not in cut
    rest = {a: {b for b in g[a] if (a, b) not in cut} for a in g}
    assert all(len(c) == 1 for c in strongly_connected_components(rest))
    # minimal: putting any cut edge back closes a cycle again
    for a, b in cut:
        back = {x: set(v) for x, v in rest.items()}
        back[a].add(b)
        assert any(len(c) > 1 for c in strongly_connected_components(back))
    # a complete 6-node tangle is broken with a minimal cut too
    nodes = list("uvwxyz")
    full = {n: {m for m in nodes if m != n} for n in nodes}
    cut = feedback_edges(full, nodes, lambda x, y: 1)
    rest = {a: {b for b in full[a] if (a, b) not in cut} for a in full}
    assert all(len(c) == 1 for c in strongly_connected_components(rest))
    assert len(cut) == 15  # a tournament needs n(n-1)/2 cut edges


@settings(max_examples=200, deadline=None)
@given(
    st.integers(2, 12).flatmap(
        lambda n: st.lists(
            st.tuples(st.integers(0, n - 1), st.integers(0, n - 1), st.integers(1, 4)),
            min_size=1,
            max_size=4 * n,
        )
    )
)
def test_feedback_edges_break_every_cycle_and_are_minimal(
    edges: list[tuple[int, int, int]],
) -> None:
    g: dict[str, set[str]] = {}
    w: dict[tuple[str, str], int] = {}
    for a, b, weight in edges:
        g.setdefault(f"m{a}", set()).add(f"m{b}")
        g.setdefault(f"m{b}", set())
        w[f"m{a}", f"m{b}"] = weight
    for comp in strongly_connected_components(g):
        if len(comp) < 2:
            continue
        cut = feedback_edges(g, comp, lambda x, y: w[x, y])
        rest = {a: {b for b in g[a] if (a, b) not in cut} for a in g}
        inside = set(comp)
        assert all(len(c) == 1 or not set(c) <= inside for c in strongly_connected_components(rest))
        for a, b in cut:  # minimal: any cut edge put back closes a cycle again
            back = {x: set(v) for x, v in rest.items()}
            back[a].add(b)
            assert any(a in c and b in c for c in strongly_connected_components(back))


TINY = {
    "t/__init__.py": "",
    "t/base.py": """\
        import abc
        from typing import Protocol

        class Port(Protocol):
            def go(self) -> None: ...

        class Base(abc.ABC):
            pass

        class Impl:
            @abc.abstractmethod
            def f(self): ...

        class Concrete:
            pass
        """,
    "t/svc.py": "import t.base\n",
    "t/app.py": "import t.svc\nimport t.base\n\n# comment\n",
}


def test_metrics_by_hand(tmp_path: Path) -> None:
    write_tree(tmp_path, TINY)
    found, graph = analyse(tmp_path)
    assert edge_set(graph) == {("t.svc", "t.base"), ("t.app", "t.svc"), ("t.app", "t.base")}
    m = compute_metrics(found, graph)["modules"]
    # base: Ca=2 Ce=0 I=0; 3 of 4 classes abstract: A=0.75; D=|0.75+0-1|=0.25
    assert m["t.base"] == {
        "path": "t/base.py",
        "package": "t",
        "is_package": False,
        "ca": 2,
        "ce": 0,
        "instability": 0.0,
        "abstractness": 0.75,
        "distance": 0.25,
        "loc": 11,
        "classes": 4,
        "abstract_classes": 3,
    }
    # svc: Ca=1 Ce=1 I=0.5, A=0, D=0.5
    assert (m["t.svc"]["ca"], m["t.svc"]["ce"], m["t.svc"]["instability"]) == (1, 1, 0.5)
    assert m["t.svc"]["distance"] == 0.5
    # app: Ca=0 Ce=2 I=1, A=0, D=0; two lines of code (comment and blank skipped)
    assert (m["t.app"]["instability"], m["t.app"]["distance"], m["t.app"]["loc"]) == (1.0, 0.0, 2)
    pkg = compute_metrics(found, graph)["packages"]["t"]
    assert (pkg["path"], pkg["modules"]) == ("t", 4)
    assert (pkg["ca"], pkg["ce"], pkg["loc"], pkg["classes"], pkg["abstract_classes"]) == (
        0,
        0,
        11 + 1 + 2,  # base + svc + app (__init__ is empty)
        4,
        3,
    )


def test_package_level_cycle(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            "p/__init__.py": "",
            "p/x/__init__.py": "",
            "p/x/m.py": "import p.y.n\n",
            "p/y/__init__.py": "",
            "p/y/n.py": "import p.x\n",
        },
    )
    found, graph = analyse(tmp_path)
    cycles = find_cycles(graph, found)
    assert cycles["modules"] == []
    assert [c["members"] for c in cycles["packages"]] == [["p.x", "p.y"]]
    pk = compute_metrics(found, graph)["packages"]
    assert (pk["p.x"]["ca"], pk["p.x"]["ce"]) == (1, 1)


def test_report_sections_and_summary(tmp_path: Path) -> None:
    write_tree(
        tmp_path, {**TINY, "t/cyc_a.py": "import t.cyc_b\n", "t/cyc_b.py": "import t.cyc_a\n"}
    )
    (tmp_path / "t/broken.py").write_text("class (\n")
    found, graph = analyse(tmp_path)
    project = {"name": "tiny", "path": ".", "config_file": None}
    section = build_section(
        project,
        found,
        graph,
        compute_metrics(found, graph),
        find_cycles(graph),
        check_architecture(None, graph, {}),
    )
    report = combine(str(tmp_path), {"exclude": []}, [section], "0.0")
    assert report["version"] == 2
    assert report["summary"]["modules"] == 6
    assert report["summary"]["module_cycles"] == 1
    assert section["cycles"]["modules"][0]["members"] == ["t.cyc_a", "t.cyc_b"]
    assert report["not_analysed"] == [
        {"path": "t/broken.py", "reason": "syntax error: line 1: invalid syntax"}
    ]
    assert section["metrics"]["modules"]["t.base"]["abstractness"] == 0.75
    assert section["package_edges"] == []  # every module is in package t
    # the score: 2 of 6 modules in a cycle -> 70 * 2/6 = 23.33 off
    cycles = report["score"]["components"][0]
    assert (cycles["name"], cycles["penalty"]) == ("cycles", 23.33)
    recs = report["recommendations"]
    assert recs[0]["kind"] == "cycle" and recs[0]["priority"] == 1
    assert recs[0]["locations"][0]["path"] in {"t/cyc_a.py", "t/cyc_b.py"}
    assert recs[-1] == {
        "priority": len(recs),
        "kind": "not_analysed",
        "title": "Fix t/broken.py so it can be analysed",
        "detail": "syntax error: line 1: invalid syntax; its imports are missing from this report.",
        "locations": [{"path": "t/broken.py", "line": None, "module": None}],
    }
    text = summary_text(report)
    assert "1 between modules" in text and "t/broken.py" in text and "score" in text


def _naive_sccs(succ: dict[str, set[str]]) -> list[list[str]]:
    """Independent SCCs: mutual reachability by DFS from every node."""
    reach: dict[str, set[str]] = {}
    for start in succ:
        seen, todo = set(), [start]
        while todo:
            for nxt in succ.get(todo.pop(), ()):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        reach[start] = seen
    comps = {frozenset({a} | {b for b in reach[a] if a in reach[b]}) for a in succ}
    return sorted(sorted(c) for c in comps)


@pytest.mark.parametrize("name", ["trio", "rich", "pluggy"])
def test_copy_of_installed_package_matches_grimp(tmp_path: Path, name: str) -> None:
    """Our edges on a copy of an installed package equal grimp's on the
    installed package (namespace sub-folders aside: grimp skips them, we
    analyse them); cycles equal an independent SCC computation."""
    import importlib
    import shutil

    import grimp

    shutil.copytree(
        Path(importlib.import_module(name).__file__ or "").parent,
        tmp_path / name,
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    found, graph = analyse(tmp_path)
    ref = grimp.build_graph(name, cache_dir=None)
    ref_edges = {
        (a, b) for a in ref.modules for b in ref.find_modules_directly_imported_by(a) if a != b
    }
    namespace = {m["name"] for p in found["packages"] for m in p["modules"] if m["namespace"]}
    extra = set(graph["modules"]) - set(ref.modules)
    assert {
        m for m in extra if not any(m == n or m.startswith(n + ".") for n in namespace)
    } == set()
    unimportable = {  # e.g. rich._unicode_data.unicode8-0-0: listed as not analysed
        f["path"].removesuffix(".py").replace("/", ".")
        for f in found["not_analysed"]
        if f["reason"] == "not an importable module name"
    }
    assert set(ref.modules) - unimportable <= set(graph["modules"])
    ref_edges = {(a, b) for a, b in ref_edges if a not in unimportable}
    ours = {(a, b) for a, b in edge_set(graph) if a in ref.modules and b in ref.modules}
    assert ours == ref_edges
    succ: dict[str, set[str]] = {m: set() for m in graph["modules"]}
    for a, b in edge_set(graph):
        succ[a].add(b)
    expected = [c for c in _naive_sccs(succ) if len(c) > 1]
    assert [c["members"] for c in find_cycles(graph, found)["modules"]] == expected


def test_facts_memo_skips_known_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from corral.plugins.builtin.architecture import discover as disc
    from corral.plugins.builtin.architecture import facts as fx

    write_tree(tmp_path, TINY)
    scanned = disc.scan(tmp_path)
    memo: dict[str, Any] = {}
    first = disc.add_facts(scanned, memo=memo)
    assert len(memo) == 4  # one entry per file, keyed by content digest
    read: list[str] = []
    real = fx.file_facts

    def spy(text: str) -> Any:
        read.append(text)
        return real(text)

    monkeypatch.setattr(fx, "file_facts", spy)
    (tmp_path / "t/app.py").write_text("import t.svc\n")
    (tmp_path / "t/old.py").write_text("OLD = 1\n")
    again = disc.add_facts(disc.scan(tmp_path), memo=memo)
    assert sorted(read) == ["OLD = 1\n", "import t.svc\n"]  # only new or changed content
    assert len(memo) == 5
    assert again != first
    assert again == disc.add_facts(disc.scan(tmp_path))


@pytest.mark.parametrize("name", ["textwrap", "json", "grimp"])
def test_analysed_code_never_runs_whatever_its_name(tmp_path: Path, name: str) -> None:
    """A package named like a module the graph builder itself uses (the
    standard library, grimp) is read as data from the tree, never imported."""
    marker = tmp_path / "RAN"
    body = f"open({str(marker)!r}, 'w').write('x')\nfrom {name} import inner\n"
    write_tree(tmp_path / "tree", {f"{name}/__init__.py": body, f"{name}/inner.py": "X = 1\n"})
    graph = build_import_graph(discover(tmp_path / "tree"))
    assert not marker.exists()
    assert edge_set(graph) == {(name, f"{name}.inner")}


def test_excluded_and_broken_modules_make_no_phantom_edges(tmp_path: Path) -> None:
    """Imports of modules left out (syntax error, too large, excluded) are
    dropped, not turned into imports of the package above them."""
    write_tree(
        tmp_path,
        {
            "pkg/__init__.py": "from pkg.a import f\n",
            "pkg/a.py": "import pkg.broken\nimport pkg.big\nimport pkg.gen.x\ndef f(): pass\n",
            "pkg/broken.py": "def (:\n",
            "pkg/big.py": "X = 1\n" * 200,
            "pkg/gen/__init__.py": "",
            "pkg/gen/x.py": "",
            # a package whose __init__ is broken stays a package
            "pkg/sub/__init__.py": "class (:\n",
            "pkg/sub/m.py": "import pkg.a\n",
        },
    )
    found, graph = analyse(tmp_path, exclude=["*/gen/*"], max_file_bytes=500)
    assert edge_set(graph) == {("pkg", "pkg.a"), ("pkg.sub.m", "pkg.a")}
    assert "pkg.sub" in graph["packages"]
    assert find_cycles(graph, found)["modules"] == []
    reasons = {f["path"]: f["reason"] for f in found["not_analysed"]}
    assert set(reasons) == {"pkg/broken.py", "pkg/big.py", "pkg/sub/__init__.py"}


def test_sub_packages_named_like_skipped_folders_are_analysed(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/build/__init__.py": "from pkg.env import x\n",
            "pkg/env/__init__.py": "x = 1\n",
            "build/junk/__init__.py": "",  # outside a package: still skipped
        },
    )
    graph = build_import_graph(discover(tmp_path))
    assert edge_set(graph) == {("pkg.build", "pkg.env")}


def test_symlink_loops_do_not_blow_up(tmp_path: Path) -> None:
    write_tree(tmp_path, {"pkg/__init__.py": "", "pkg/sub/__init__.py": "", "other/x.py": ""})
    (tmp_path / "pkg/sub/up").symlink_to("..")
    (tmp_path / "pkg/alias").symlink_to("sub")
    (tmp_path / "other/back").symlink_to("..")
    found = discover(tmp_path)
    assert sorted(m["name"] for p in found["packages"] for m in p["modules"]) == [
        "pkg",
        "pkg.sub",
    ]
    reasons = {f["path"]: f["reason"] for f in found["not_analysed"]}
    assert reasons["pkg/alias"] == "symbolic link to a folder (not followed)"
    assert reasons["pkg/sub/up"] == "symbolic link to a folder (not followed)"


def test_packages_in_several_source_roots_share_one_graph(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            "src/app/__init__.py": "import lib.util\n",
            "libs/lib/__init__.py": "",
            "libs/lib/util.py": "",
            "zz/app/__init__.py": "",  # the same name again: listed, not merged
        },
    )
    found, graph = analyse(tmp_path)
    assert ("app", "lib.util") in edge_set(graph)
    reasons = {f["path"]: f["reason"] for f in found["not_analysed"]}
    assert reasons["zz/app/__init__.py"].startswith("duplicate package name 'app'")


def test_null_bytes_and_unusable_package_folder_names(tmp_path: Path) -> None:
    write_tree(tmp_path, {"pkg/__init__.py": ""})
    (tmp_path / "pkg/bin.py").write_bytes(b"X = 1\x00\n")
    found = discover(tmp_path)
    assert found["not_analysed"] == [
        {"path": "pkg/bin.py", "reason": "unreadable: contains null bytes (not Python source)"}
    ]
    write_tree(tmp_path / "my-pkg", {"__init__.py": "", "mod.py": ""})
    odd = discover(tmp_path / "my-pkg")
    assert odd["packages"] == []
    assert {f["reason"] for f in odd["not_analysed"]} == {
        "folder 'my-pkg' is not an importable name"
    }


def _row(**kw: Any) -> dict[str, Any]:
    base = {"ca": 0, "ce": 0, "instability": 0.0, "abstractness": 0.0, "distance": 0.0}
    return {"path": None, "loc": 10, "classes": 0, "abstract_classes": 0, **base, **kw}


def test_score_rules() -> None:
    from corral.plugins.builtin.architecture.score import compute_score, recommend

    no_cycles = {"modules": [], "packages": []}
    metrics = {"modules": {"a": _row(), "b": _row()}, "packages": {}}
    detected = {"source": "detected", "checked_edges": 4, "conformance": 0.0}
    declared = {**detected, "source": "corral"}
    assert compute_score(metrics, no_cycles, detected)["value"] == 90  # a guess weighs 10
    assert compute_score(metrics, no_cycles, declared)["value"] == 75
    # nothing analysed: 0, not a free 100
    assert compute_score({"modules": {}, "packages": {}}, no_cycles, {})["value"] == 0
    # an empty package does not hide a zone-of-pain package behind it
    packages = {
        "app": _row(loc=0, distance=1.0),
        "app.core": _row(path="app/core", ca=6, distance=1.0, instability=0.0),
    }
    recs = recommend({"modules": {}, "packages": packages}, no_cycles, {}, [])
    assert [(r["kind"], r["locations"][0]["module"]) for r in recs] == [("distance", "app.core")]
