"""The ``architecture.analyze`` workflow: subprojects, caching by content,
configuration, and corral's own source."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from _tree import write_tree

import corral
from corral.plugins.builtin import architecture
from corral.plugins.builtin.architecture import memo
from corral.plugins.builtin.architecture.projects import find_projects

ROOT = Path(__file__).resolve().parents[2]

MONOREPO = {
    "pyproject.toml": '[project]\nname = "mono"\n',
    "app/__init__.py": "import liba\n",
    "app/main.py": "from app import helpers\n",
    "app/helpers.py": "",
    "libs/a/pyproject.toml": '[project]\nname = "lib-a"\n',
    "libs/a/src/liba/__init__.py": "from liba import core\n",
    "libs/a/src/liba/core.py": "import yaml\nimport liba.util\n",
    "libs/a/src/liba/util.py": "# helpers\nimport liba.core\n",
    "services/b/setup.cfg": "[metadata]\nname = svc-b\n",
    "services/b/svcb/__init__.py": "",
    "services/b/svcb/api.py": "import svcb.domain\n",
    "services/b/svcb/domain.py": "import os\n",
    "docs/conf.py": "project = 'x'\n",
}


async def analyse(
    path: Path, store: str = "memory://", **options: Any
) -> tuple[dict[str, Any], dict[str, str]]:
    """(report, step id -> status) of one run in a fresh engine."""
    wf = architecture.analysis_workflow(path, **options)
    async with corral.open_engine(store, entry_points=False, plugins=[architecture]) as engine:
        handle = await engine.submit(wf)
        record = await handle.wait()
    assert record.status == "succeeded", record.error
    return record.result["report"], {s.step_id: s.status for s in record.steps}


def test_find_projects(tmp_path: Path) -> None:
    write_tree(tmp_path, MONOREPO)
    projects = find_projects(tmp_path)
    assert [(p["name"], p["path"], p["config_file"]) for p in projects] == [
        ("mono", ".", "pyproject.toml"),
        ("lib-a", "libs/a", "libs/a/pyproject.toml"),
        ("svc-b", "services/b", "services/b/setup.cfg"),
    ]
    assert projects[0]["subprojects"] == ["libs/a", "services/b"]
    # a tree without any package has no project; excluded folders are not looked at
    assert find_projects(tmp_path / "docs") == []
    assert [p["path"] for p in find_projects(tmp_path, exclude=["libs"])] == [".", "services/b"]


async def test_subprojects_get_their_own_sections(tmp_path: Path) -> None:
    write_tree(tmp_path, MONOREPO)
    report, steps = await analyse(tmp_path)
    assert [(s["name"], s["path"]) for s in report["projects"]] == [
        ("mono", "."),
        ("lib-a", "libs/a"),
        ("svc-b", "services/b"),
    ]
    mono, liba, svcb = report["projects"]
    # each package is analysed once, in its own project
    assert [p["name"] for p in mono["packages"]] == ["app"]
    assert [p["name"] for p in liba["packages"]] == ["liba"]
    assert [p["source_root"] for p in liba["packages"]] == [str(tmp_path / "libs/a/src")]
    assert {(e["importer"], e["imported"]) for e in liba["edges"]} == {
        ("liba", "liba.core"),
        ("liba.core", "liba.util"),
        ("liba.util", "liba.core"),
    }
    assert liba["cycles"]["modules"][0]["members"] == ["liba.core", "liba.util"]
    assert liba["summary"]["module_cycles"] == 1 and svcb["summary"]["module_cycles"] == 0
    # externals by distribution: liba is not installed, yaml comes from PyYAML
    assert {e["name"]: e["distribution"] for e in mono["external"]} == {"liba": None}
    assert {e["name"]: e["distribution"] for e in liba["external"]} == {"yaml": "PyYAML"}
    assert svcb["external"] == [
        {"name": "os", "distribution": None, "stdlib": True, "importers": 1}
    ]
    # the top level sums the sections up
    assert report["summary"]["projects"] == 3
    assert report["summary"]["modules"] == 3 + 3 + 3
    assert report["summary"]["module_cycles"] == 1
    assert report["not_analysed"] == [
        {"path": "docs/conf.py", "reason": "not in a package (no __init__.py)"}
    ]
    assert report["recommendations"][0]["kind"] == "cycle"
    assert report["recommendations"][0]["title"].startswith("[lib-a] Break the import cycle")
    # one chain of steps per project, then the report
    assert set(steps) == {
        f"{kind}_{i}"
        for kind in ("scan", "facts", "graph", "section")
        for i in range(3)
    } | {"report"}


async def test_cache_by_content(tmp_path: Path) -> None:
    tree = write_tree(tmp_path / "tree", MONOREPO)
    store = f"sqlite:///{tmp_path / 'store.db'}"
    cold, steps = await analyse(tree, store)
    assert set(steps.values()) == {"succeeded"}

    # unchanged tree: everything but the walk and the final assembly is served from cache
    warm, steps = await analyse(tree, store)
    assert warm == cold
    assert {s for s, status in steps.items() if status != "cached"} == {
        "scan_0",
        "scan_1",
        "scan_2",
        "report",
    }

    # a body edited in lib-a: its facts, graph and section rerun; the other
    # projects are not touched
    util = tree / "libs/a/src/liba/util.py"
    util.write_text("# helpers, documented\nimport liba.core\n\nX = 2\n")
    edited, steps = await analyse(tree, store)
    recomputed = {s for s, status in steps.items() if status == "succeeded"}
    assert recomputed == {
        "scan_0",
        "scan_1",
        "scan_2",
        "facts_1",
        "graph_1",
        "section_1",
        "report",
    }
    fresh, _ = await analyse(tree, cache=False)
    assert edited == fresh  # identical to a cold run's report
    # ... but only the edited file was read again: the others came from the memo
    memo_file = Path(memo.memo_path(tree, "libs/a"))
    assert len(json.loads(memo_file.read_text())["facts"]) == 3

    # a corrupt memo costs time, not correctness
    memo_file.write_text("{not json")
    util.write_text("# helpers\nimport liba.core\n\nX = 3\n")
    again, _ = await analyse(tree, store)
    assert again == (await analyse(tree, cache=False))[0]

    # an import added: the cycle goes away only in a recomputed report
    util.write_text("X = 1\n")
    edited, steps = await analyse(tree, store)
    assert steps["section_1"] == "succeeded"
    assert edited["summary"]["module_cycles"] == 0
    assert edited == (await analyse(tree, cache=False))[0]


async def test_options_from_pyproject(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            "pyproject.toml": textwrap.dedent(
                """\
                [tool.corral.architecture]
                exclude = ["*/generated/*"]
                exclude_tests = true
                exclude_type_checking = true
                """
            ),
            "p/__init__.py": "",
            "p/a.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import p.b\n",
            "p/b.py": "",
            "p/generated/__init__.py": "",
            "p/generated/big.py": "",
            "p/tests/__init__.py": "",
            "p/tests/test_a.py": "import p.a\n",
        },
    )
    report, _ = await analyse(tmp_path)
    section = report["projects"][0]
    assert sorted(section["metrics"]["modules"]) == ["p", "p.a", "p.b"]
    assert section["edges"] == []  # the TYPE_CHECKING import is excluded


async def test_bad_configuration_fails_with_file_and_key(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            "pyproject.toml": "[tool.corral.architecture]\nexclude_tests = 'yes'\n",
            "p/__init__.py": "",
        },
    )
    wf = architecture.analysis_workflow(tmp_path)
    async with corral.open_engine(entry_points=False, plugins=[architecture]) as engine:
        with pytest.raises(corral.WorkflowFailed) as info:
            await engine.run(wf)
    assert info.value.step == "scan_0"
    assert "pyproject.toml: tool.corral.architecture.exclude_tests: must be true or false" in str(
        info.value
    )


async def test_not_a_directory_or_no_package(tmp_path: Path) -> None:
    with pytest.raises(corral.UsageError, match="no such directory"):
        architecture.analysis_workflow(tmp_path / "nope")
    (tmp_path / "file.py").write_text("")
    with pytest.raises(corral.UsageError, match="not a directory"):
        architecture.analysis_workflow(tmp_path / "file.py")
    with pytest.raises(corral.UsageError, match="no Python package found"):
        architecture.analysis_workflow(tmp_path)


async def test_corral_analyses_its_own_source() -> None:
    report, _ = await analyse(ROOT / "src")
    section = report["projects"][0]
    assert [p["name"] for p in section["packages"]] == ["corral"]
    modules = section["metrics"]["modules"]
    assert "corral.plugins.builtin.architecture.report" in modules
    assert modules["corral.core.errors"]["ca"] > 10  # everything raises corral errors
    assert 0 <= report["summary"]["score"] <= 100
    assert report["not_analysed"] == []
