"""``corral vibe`` end to end on a generated project with planted problems:
each found exactly once at its file:line, a failing analyser reported while
the rest finish, discovery of subprojects and their stack, bad input."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

import corral.cli
from corral.plugins.builtin.vibe import tools
from corral.plugins.builtin.vibe.discover import discover

sys.path.insert(0, str(Path(__file__).parent))
from _tree import write_tree  # noqa: E402

BRANCHES = "".join(f"    if x == {i}:\n        r += {i}\n" for i in range(24))
CORE = (
    "import os\n"  # 1: unused import
    "import subprocess\n"
    "import not_installed_anywhere\n"  # 3: missing dependency
    "\n"
    "from shop.web.views import render\n"  # 5: a layer violation (core -> web)
    "\n\n"
    "def run(cmd):\n"
    "    return subprocess.call(cmd, shell=True)\n"  # 9: shell=True
    "\n\n"
    "def branchy(x):\n"  # 12: complexity 25
    "    r = 0\n" + BRANCHES + "    return r + render()\n"
    "\n\n"
    "def dead():\n"
    "    return not_installed_anywhere.x\n"
    "    print('never')\n"  # unreachable
)
PLANTED = {
    "pyproject.toml": """\
        [project]
        name = "shop"
        version = "0.1"
        dependencies = ["msgspec"]

        [tool.corral.architecture]
        containers = ["shop"]
        layers = ["web", "core"]
        """,
    "src/shop/__init__.py": "",
    "src/shop/core/__init__.py": "",
    "src/shop/core/logic.py": CORE,
    # an import cycle a <-> b
    "src/shop/core/a.py": "from shop.core import b\n\n\ndef f():\n    return b\n",
    "src/shop/core/b.py": "from shop.core import a\n\n\ndef g():\n    return a\n",
    "src/shop/web/__init__.py": "",
    "src/shop/web/views.py": "def render():\n    return ''\n",
    "tests/test_logic.py": "from shop.core.logic import branchy, run\n\n\ndef test():\n"
    "    assert branchy(1) and run\n",
}


def line_of(text: str, needle: str) -> int:
    return text.splitlines().index(needle) + 1


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tree(tmp_path_factory.mktemp("vibe") / "shop", PLANTED)


def vibe(path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "corral", "vibe", str(path), "--format", "json", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def plan(planted: Path) -> dict[str, Any]:
    done = vibe(planted)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def found(plan: dict[str, Any], rule: str) -> list[tuple[str, int | None]]:
    return [(f["file"], f["line"]) for f in plan["findings"] if f["rule"] == rule]


def test_each_planted_problem_is_found_once_at_its_line(plan: dict[str, Any]) -> None:
    logic = "src/shop/core/logic.py"
    assert found(plan, "F401") == [(logic, 1)]  # ruff and vulture: one finding
    (unused,) = [f for f in plan["findings"] if f["rule"] == "F401"]
    assert unused["tools"] == ["ruff", "vulture"] and unused["fixable"] is True
    assert found(plan, "DEP001") == [(logic, 3)]
    assert found(plan, "DEP002") == [("pyproject.toml", None)]
    assert found(plan, "B602") == [(logic, 9)]
    assert found(plan, "CC-D") == [(logic, 12)]
    assert found(plan, "unreachable-code-after") == [(logic, line_of(CORE, "    print('never')"))]
    assert found(plan, "layer-violation") == [(logic, 5)]
    cycles = [f for f in plan["findings"] if f["rule"] == "import-cycle"]
    assert len(cycles) == 1 and "shop.core.a <-> shop.core.b" in cycles[0]["message"]


def test_the_plan_is_ranked_and_scored(plan: dict[str, Any]) -> None:
    ranks = [f["rank"] for f in plan["findings"]]
    assert ranks == sorted(ranks, reverse=True)
    assert plan["findings"][0]["severity"] == "high"
    assert plan["version"] == 1
    names = {c["name"] for c in plan["score"]["components"]}
    assert names == {"architecture", "lint", "complexity", "security", "dependencies",
                     "deadcode", "tests"}
    assert 0 <= plan["score"]["value"] <= 100
    assert all(a["status"] == "ok" for a in plan["analyses"])
    (section,) = plan["sections"]  # one subproject: its section is the whole
    assert section["subproject"] == "." and section["score"] == plan["score"]
    assert section["summary"]["findings"] == len(plan["findings"])
    (project,) = plan["subprojects"]
    assert (project["source_roots"], project["test_roots"]) == (["src"], ["tests"])
    assert project["stack"]["frameworks"] == ["msgspec"]  # declared (and imported by none)
    tools_used = {a["analysis"]: a["tool"] for a in plan["analyses"]}
    assert tools_used["lint"] == "ruff" and tools_used["dependencies"] == "deptry"


def test_a_failing_analyser_is_reported_and_the_rest_finish(
    planted: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    real = tools.run_tool

    def bandit_missing(module: str, args: list[str], cwd: Path, **kw: Any) -> str:
        # a module that is not installed, run for real: the missing-tool path
        return real("bandit_is_not_installed" if module == "bandit" else module, args, cwd, **kw)

    monkeypatch.setattr(tools, "run_tool", bandit_missing)
    # (--no-cache: bandit's results of the other tests' runs are not used)
    argv = ["vibe", str(planted), "--format", "json", "--store", "memory://", "--no-cache"]
    code = corral.cli.main(argv)
    assert code == 0
    plan = json.loads(capsys.readouterr().out)
    by = {a["analysis"]: a for a in plan["analyses"]}
    assert by["security"]["status"] == "no result"
    assert "bandit_is_not_installed is not installed" in by["security"]["error"]
    assert all(a["status"] == "ok" for k, a in by.items() if k != "security")
    assert found(plan, "F401") and not found(plan, "B602")
    assert plan["summary"]["analyses_without_result"] == 1
    assert "security" not in {c["name"] for c in plan["score"]["components"]}
    code = corral.cli.main(
        [*argv, "--only", "security,lint", "--fail-on", "incomplete"]
    )
    assert code == 1
    assert "1 analysis/analyses gave no result" in capsys.readouterr().err


def test_fail_on_and_only(planted: Path) -> None:
    done = vibe(planted, "--only", "security", "--fail-on", "high")
    assert done.returncode == 1
    assert "high-severity finding" in done.stderr
    assert {a["analysis"] for a in json.loads(done.stdout)["analyses"]} == {"security"}
    assert vibe(planted, "--only", "deadcode", "--fail-on", "score<0").returncode == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--only", "style"], "--only 'style': expected one of architecture, lint"),
        (["--fail-on", "score<101"], "--fail-on 'score<101': expected score<N"),
        (["--fail-on", "loud"], "--fail-on 'loud'"),
    ],
)
def test_bad_input_is_one_clear_line(planted: Path, args: list[str], message: str) -> None:
    done = vibe(planted, *args)
    assert done.returncode == 2
    assert message in done.stderr and "Traceback" not in done.stderr


def test_a_folder_without_python_packages(tmp_path: Path) -> None:
    done = vibe(tmp_path)
    assert done.returncode == 2 and "no Python package found" in done.stderr


def test_discovery_of_subprojects_and_their_stack(tmp_path: Path) -> None:
    root = write_tree(
        tmp_path,
        {
            "services/api/pyproject.toml": """\
                [project]
                name = "api"
                requires-python = ">=3.12"
                dependencies = ["litestar>=2", "msgspec"]
                [project.optional-dependencies]
                test = ["pytest>=8"]
                [tool.ruff]
                line-length = 100
                [tool.mypy]
                strict = true
                """,
            "services/api/src/api/__init__.py": "",
            "libs/core/setup.cfg": textwrap.dedent(
                """\
                [options]
                python_requires = >=3.11
                install_requires =
                    trio
                [flake8]
                max-line-length = 100
                """
            ),
            "libs/core/core/__init__.py": "",
            "web/package.json": '{"name": "web", "dependencies": {"react": "18"}, '
            '"devDependencies": {"vitest": "1", "eslint": "9"}}',

            "web/node_modules/x/package.json": "{}",
            ".github/workflows/ci.yml": "on: push\n",
        },
    )
    found_ = discover(root)
    by = {p["path"]: p["stack"] for p in found_["python"]}
    assert set(by) == {"libs/core", "services/api"}
    api = by["services/api"]
    assert api["python"] == ">=3.12"
    assert api["dependencies"] == ["litestar", "msgspec"]
    assert api["dev_dependencies"] == ["pytest"]
    assert api["frameworks"] == ["Litestar", "msgspec", "pytest"]
    assert api["test_runner"] == "pytest"
    assert api["linters"] == ["mypy", "ruff"]
    assert api["ci"] == ["GitHub Actions"]
    roots = {p["path"]: (p["source_roots"], p["test_roots"]) for p in found_["python"]}
    assert roots == {"services/api": (["src"], []), "libs/core": (["."], [])}
    core = by["libs/core"]
    assert (core["python"], core["dependencies"], core["linters"]) == (">=3.11", ["trio"], ["flake8"])
    (web,) = found_["other"]
    assert web["path"] == "web" and web["note"] == "only Python is analysed"
    assert web["stack"]["frameworks"] == ["React"]
    assert (web["stack"]["test_runner"], web["stack"]["linters"]) == ("vitest", ["eslint"])


def test_a_second_run_reruns_only_the_subproject_that_changed(tmp_path: Path) -> None:
    root = write_tree(
        tmp_path / "mono",
        {
            "one/pyproject.toml": '[project]\nname = "one"\nversion = "0"\n',
            "one/one/__init__.py": "import os\n",
            "two/pyproject.toml": '[project]\nname = "two"\nversion = "0"\n',
            "two/two/__init__.py": "X = 1\n",
        },
    )
    store = f"sqlite:///{tmp_path / 'store.db'}"

    def statuses() -> dict[str, str]:
        assert vibe(root, "--store", store).returncode == 0
        listed = subprocess.run(
            [sys.executable, "-m", "corral", "list", "--json", "--store", store, "--limit", "1"],
            capture_output=True, text=True, check=True,
        )
        (latest,) = json.loads(listed.stdout)
        shown = subprocess.run(
            [sys.executable, "-m", "corral", "show", latest["id"], "--json", "--store", store],
            capture_output=True, text=True, check=True,
        )
        return {s["step_id"]: s["status"] for s in json.loads(shown.stdout)["steps"]}

    first = statuses()
    assert {first[f"lint_{i}"] for i in (0, 1)} == {"succeeded"}
    (root / "two/two/__init__.py").write_text("import sys\nX = 1\n")
    second = statuses()
    for kind in ("lint", "complexity", "security", "deadcode", "dependencies"):
        # subprojects in path order: _0 is one (unchanged), _1 is two (edited)
        assert (second[f"{kind}_0"], second[f"{kind}_1"]) == ("cached", "succeeded"), kind


def git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(root), *args], capture_output=True, text=True, check=True
    ).stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = write_tree(
        tmp_path / "repo",
        {
            "pyproject.toml": '[project]\nname = "fixme"\nversion = "0"\n',
            "fixme/__init__.py": "",
            "fixme/core.py": "import os\nimport sys\n\n\ndef argv():\n    return sys.argv\n",
            "tests/test_core.py": "from fixme.core import argv\n\n\ndef test():\n"
            "    assert argv()\n",
        },
    )
    git(root, "init", "-q", "-b", "main")
    git(root, "-c", "user.email=t@t", "-c", "user.name=t", "add", "-A")
    git(root, "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "init")
    return root


needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")


@needs_git
def test_fix_applies_safe_fixes_on_a_branch_validated(repo: Path, tmp_path: Path) -> None:
    check = f"{sys.executable} -m pytest -q -p no:cacheprovider tests"
    done = vibe(repo, "--fix", "--test-command", check, "--store", f"sqlite:///{tmp_path}/s.db")
    assert done.returncode == 0, done.stderr
    plan = json.loads(done.stdout)
    fix = plan["fix"]
    assert fix["applied"] is True and fix["files_changed"] == 1
    assert fix["branch"].startswith("corral/vibe-fix-")
    assert [c["ok"] for c in fix["checks"]] == [True, True, True]
    assert "-import os\n" in fix["diff"]
    assert (repo / "fixme/core.py").read_text().startswith("import sys\n")
    assert git(repo, "log", "-1", "--format=%s").strip() == "corral vibe --fix"
    assert git(repo, "status", "--porcelain") == ""
    before = sum(f["fixable"] for f in plan["findings"])
    assert fix["after"]["summary"]["fixable"] < before


@needs_git
def test_fix_with_a_failing_test_command_is_rolled_back(repo: Path) -> None:
    before = {p: p.read_bytes() for p in repo.rglob("*") if p.is_file() and ".git" not in p.parts}
    done = vibe(repo, "--fix", "--test-command", "false", "--store", "memory://")
    assert done.returncode == 1, done.stderr
    fix = json.loads(done.stdout)["fix"]
    assert fix["applied"] is False and "test command `false`" in fix["rolled_back"]
    after = {p: p.read_bytes() for p in repo.rglob("*") if p.is_file() and ".git" not in p.parts}
    assert after == before
    assert git(repo, "branch", "--show-current").strip() == "main"
    assert "corral/vibe-fix" not in git(repo, "branch", "--list")


@needs_git
def test_fix_refuses_a_dirty_tree(repo: Path) -> None:
    (repo / "fixme/__init__.py").write_text("X = 1\n")
    done = vibe(repo, "--fix", "--store", "memory://")
    assert done.returncode == 2
    assert "uncommitted changes" in done.stderr and "--allow-dirty" in done.stderr
    assert (repo / "fixme/core.py").read_text().startswith("import os\n")


def test_after_one_file_is_edited_only_that_file_is_analysed_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = write_tree(tmp_path / "copy", PLANTED)
    monkeypatch.setenv("CORRAL_CACHE_DIR", str(tmp_path / "cache"))
    seen: list[tuple[str, list[str]]] = []
    real = tools.run_tool

    def recording(module: str, args: list[str], cwd: Path, **kw: Any) -> str:
        seen.append((module, [a for a in args if a.endswith(".py")]))
        return real(module, args, cwd, **kw)

    monkeypatch.setattr(tools, "run_tool", recording)
    argv = ["vibe", str(root), "--format", "json", "--store", "memory://", "--only",
            "complexity,security,lint"]
    assert corral.cli.main(argv) == 0
    first = {m: files for m, files in seen}
    assert "src/shop/core/logic.py" in first["bandit"]
    seen.clear()
    (root / "src/shop/web/views.py").write_text("def render():\n    return 'x'\n")
    assert corral.cli.main(argv) == 0
    again: dict[str, list[str]] = {}
    for module, files in seen:
        again.setdefault(module, []).extend(files)
    assert again == {
        "radon": ["src/shop/web/views.py", "src/shop/web/views.py"],  # cc and mi
        "bandit": ["src/shop/web/views.py"],
        "ruff": ["src/shop/web/views.py"],
    }


def test_the_html_report_is_one_offline_page(planted: Path, plan: dict[str, Any]) -> None:
    done = vibe(planted, "--format", "html")
    assert done.returncode == 0, done.stderr
    page = done.stdout
    assert page.startswith("<!DOCTYPE html>")
    assert "Content-Security-Policy" in page and "default-src 'none'" in page
    assert " src=" not in page and "<link" not in page  # nothing fetched
    assert page.count('<tr data-sev="') >= 2 * len(plan["findings"])  # all, and per analysis
    for kind in ("architecture", "lint", "complexity", "security", "dependencies", "deadcode"):
        assert f'id="tab-{kind}"' in page
    assert 'id="tab-graph"' in page and "Package dependency graph" in page
    assert "shop.core.a &lt;-&gt; shop.core.b" in page  # escaped, never markup


def test_frameworks_imported_but_not_declared_join_the_stack() -> None:
    from corral.plugins.builtin.vibe.plan import make_plan

    discovery = {
        "root": "/x",
        "other": [],
        "python": [{"path": ".", "name": "x", "subprojects": [], "source_roots": ["."],
                    "test_roots": [], "stack": {"frameworks": ["Click"]}}],
    }
    section = {
        "path": ".",
        "external": [{"name": "flask", "distribution": "Flask"}, {"name": "os", "stdlib": True}],
        "score": {"value": 90},
        "summary": {"loc": 100},
    }
    plan = make_plan(
        discovery,
        [{"subproject": ".", "analysis": "architecture", "step": "section_0", "output": section}],
    )
    assert plan["subprojects"][0]["stack"]["frameworks"] == ["Click", "Flask"]
    assert plan["score"]["value"] == 90


@needs_git
def test_fix_moves_breaks_a_package_cycle_validated(tmp_path: Path) -> None:
    root = write_tree(
        tmp_path / "cyc",
        {
            "pyproject.toml": '[project]\nname = "app"\nversion = "0"\n',
            "app/__init__.py": "",
            "app/domain/__init__.py": "",
            "app/domain/models.py": "class Order: ...\n",
            "app/domain/pricing.py": "from app.domain.models import Order\n"
            "from app.services.rates import TAX\n\n\ndef price(o: Order) -> float:\n"
            "    return TAX\n",
            "app/services/__init__.py": "",
            "app/services/rates.py": "TAX = 0.2\n",
            "app/services/orders.py": "from app.domain.pricing import price\n\n\n"
            "def total() -> float:\n    return price(None)\n",
        },
    )
    git(root, "init", "-q", "-b", "main")
    git(root, "-c", "user.email=t@t", "-c", "user.name=t", "add", "-A")
    git(root, "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "init")
    # whichever module moves, the code still works (a test that names a
    # module by its old name would fail, and the move would be rolled back)
    check = f"{sys.executable} -c 'import app.domain.models, app.services.rates'"
    done = vibe(root, "--fix=moves", "--test-command", check, "--store", "memory://")
    assert done.returncode == 0, done.stderr
    fix = json.loads(done.stdout)["fix"]
    (moved,) = fix["moves"]
    assert moved["moves"] in (
        ["app.domain.pricing=app.services.pricing"],
        ["app.services.orders=app.domain.orders"],
    )
    assert moved["applied"] is True and moved["branch"].startswith("corral/restructure-")
    new = moved["moves"][0].split("=")[1]
    assert (root / (new.replace(".", "/") + ".py")).is_file()
    after = {a["analysis"]: a["findings"] for a in fix["after"]["analyses"]}
    assert after["architecture"] == 0  # the cycle is gone
