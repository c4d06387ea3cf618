"""A plan over a whole (generated) project: which files move, which are
rewritten and how, and that planning writes nothing; the CLI's dry run."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from corral.errors import RestructureError
from corral.plugins.builtin.restructure.moves import parse_move
from corral.plugins.builtin.restructure.project import plan_project

FILES = {
    "pyproject.toml": (
        '[project.scripts]\nshout = "app.util.text:main"\n'
        '[tool.corral.architecture]\nlayers = ["app.web", "app.util"]\n'
    ),
    "app/__init__.py": "",
    "app/util/__init__.py": '"""Utilities."""\nfrom .text import shout\n__all__ = ["shout"]\n',
    "app/util/text.py": "import string\n\ndef shout(s):\n    return s.upper()\n",
    "app/web/__init__.py": "",
    "app/web/views.py": (
        "from ..util import text\nfrom ..util.text import shout\nimport app.util.text\n"
        "def view():\n    return app.util.text.shout('x') + text.shout(shout('y'))\n"
    ),
    "app/web/broken_but_unrelated.py": "def (:\n",
    "tests/test_text.py": (
        "from unittest import mock\nfrom app.util.text import shout\n"
        "@mock.patch('app.util.text.shout')\ndef test(m):\n    pass\n"
    ),
    "scripts/run.py": "# runs app.util.text from the command line\nimport app.util.text as t\n",
}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    for rel, text in FILES.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


def tree_digest(root: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        h.update(str(path.relative_to(root)).encode())
        if path.is_file():
            h.update(path.read_bytes())
    return h.hexdigest()


def test_a_package_move_across_the_project(project: Path) -> None:
    before = tree_digest(project)
    plan = plan_project(project, [parse_move("app.util=app.core.util")])
    assert tree_digest(project) == before  # planning writes nothing
    data = plan.as_dict()
    assert data["files_moved"] == [
        {"from": "app/util/__init__.py", "to": "app/core/util/__init__.py"},
        {"from": "app/util/text.py", "to": "app/core/util/text.py"},
    ]
    assert data["new_packages"] == ["app/core"]
    after = {c.path: c.after for c in plan.changes}
    views = after["app/web/views.py"]
    assert "from ..core.util import text\n" in views
    assert "from ..core.util.text import shout\n" in views
    assert "import app.core.util.text\n" in views
    assert "return app.core.util.text.shout('x')" in views
    assert after["tests/test_text.py"] == (
        "from unittest import mock\nfrom app.core.util.text import shout\n"
        "@mock.patch('app.core.util.text.shout')\ndef test(m):\n    pass\n"
    )
    assert after["scripts/run.py"] == (
        "# runs app.core.util.text from the command line\nimport app.core.util.text as t\n"
    )
    assert after["pyproject.toml"] == (
        '[project.scripts]\nshout = "app.core.util.text:main"\n'
        '[tool.corral.architecture]\nlayers = ["app.web", "app.core.util"]\n'
    )
    # the moved package's own relative import still points at its sibling
    assert after["app/util/__init__.py"] == FILES["app/util/__init__.py"]
    assert "app/web/broken_but_unrelated.py" not in after  # never parsed: cannot change
    assert plan.counts()["relative"] == 2


def test_a_module_that_must_be_rewritten_and_does_not_parse(project: Path) -> None:
    (project / "app/web/bad.py").write_text("from app.util import text\ndef (:\n")
    before = tree_digest(project)
    with pytest.raises(RestructureError, match=r"app/web/bad.py:2: cannot be rewritten"):
        plan_project(project, [parse_move("app.util=app.core.util")])
    assert tree_digest(project) == before


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "corral", "restructure", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_dry_run_text_and_json(project: Path) -> None:
    before = tree_digest(project)
    done = _cli(str(project), "--move", "app.util.text=app.util.strings")
    assert done.returncode == 0, done.stderr
    assert "dry run: nothing was written" in done.stdout
    assert "app/util/text.py -> app/util/strings.py" in done.stdout
    assert "+from ..util.strings import shout" in done.stdout
    done = _cli(str(project), "--move", "app.util.text=app.util.strings", "--format", "json")
    data = json.loads(done.stdout)
    assert data["modules"] == {"app.util.text": "app.util.strings"}
    assert tree_digest(project) == before


def test_cli_plan_file_and_bad_input(project: Path, tmp_path: Path) -> None:
    plan = tmp_path / "plan.toml"
    plan.write_text('[[move]]\nfrom = "app.util.text"\nto = "app.text"\n')
    done = _cli(str(project), "--plan", str(plan), "--format", "json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["moves"] == [{"from": "app.util.text", "to": "app.text"}]
    for args, message in [
        (["--move", "app.nope=app.x"], "no module or package 'app.nope'"),
        (["--move", "app.web=app.util"], "'app.util' exists already"),
        (["--move", "app.util=app.util.inner"], "cannot move into itself"),
        (["--move", "app.web.views=app.a", "--move", "app.util=app.a"], "two moves to one"),
        (["--move", "app.web=app.1web"], "is not an identifier"),
        (["--move", "app.web=app.ui"], "broken_but_unrelated.py:1: cannot be rewritten"),
        (["--move", "a=b", "--plan", str(plan)], "not both"),
        (["--plan", str(tmp_path / "none.toml")], "No such file"),
    ]:
        before = tree_digest(project)
        done = _cli(str(project), *args)
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        assert message in done.stderr and "Traceback" not in done.stderr, (args, done.stderr)
        assert tree_digest(project) == before


def test_a_move_that_creates_a_package_cycle_is_reported(project: Path) -> None:
    (project / "app/lib").mkdir()
    (project / "app/lib/__init__.py").write_text("")
    (project / "app/lib/check.py").write_text("import app.web.views\n")
    plan = plan_project(project, [parse_move("app.lib.check=app.util.check")])
    before = plan.before.summary if plan.before else {}
    assert before["package_cycles"] == []
    assert plan.predicted["new_package_cycles"] == [["app.util", "app.web"]]
    assert plan.predicted["new_module_cycles"] == []  # moves never change the module graph
    done = _cli(str(project), "--move", "app.lib.check=app.util.check")
    assert "NEW package cycle(s) the plan creates: app.util <-> app.web" in done.stdout
    assert "score today" in done.stdout


def test_a_tangle_split_in_two_has_no_new_cycle(tmp_path: Path) -> None:
    """Moving the bottom modules out of a package caught in one big cycle
    leaves smaller cycles that were part of it: none of them is new, even
    one through the package the plan creates."""
    root = tmp_path / "t"
    files = {
        "top/__init__.py": "from top.a.x import f\nfrom top.b.y import g\n",
        "top/errors.py": "class E(Exception): ...\n",
        "top/a/__init__.py": "",
        "top/a/x.py": "import top.errors\nimport top.b.y\ndef f(): ...\n",
        "top/b/__init__.py": "",
        "top/b/y.py": "import top.errors\nimport top.a.x\nimport top.c.z\ndef g(): ...\n",
        "top/c/__init__.py": "",
        "top/c/z.py": "import top.b.y\n",
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    plan = plan_project(root, [parse_move("top.errors=top.base.errors")])
    before = plan.before.summary if plan.before else {}
    assert before["package_cycles"] == [["top", "top.a", "top.b", "top.c"]]
    assert plan.predicted["package_cycles"] == [["top.a", "top.b", "top.c"]]
    assert plan.predicted["new_package_cycles"] == []
    # a package the plan creates stands for the one its modules left
    plan = plan_project(root, [parse_move("top.a.x=top.d.x")])
    assert plan.predicted["package_cycles"] == [["top", "top.b", "top.c", "top.d"]]
    assert plan.predicted["new_package_cycles"] == []


def test_many_files_are_rewritten_in_parallel_with_the_same_result(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from corral.plugins.builtin.restructure import project as module

    for i in range(80):
        (project / f"app/web/v{i}.py").write_text(f"from app.util.text import shout as s{i}\n")
    move = [parse_move("app.util.text=app.lib.strings")]
    parallel = plan_project(project, move).as_dict()
    monkeypatch.setattr(module, "PARALLEL_FROM", 10**9)
    sequential = plan_project(project, move).as_dict()
    assert parallel == sequential and len(parallel["files_changed"]) > 80
    monkeypatch.undo()
    (project / "app/web/v7.py").write_text("from app.util.text import shout\ndef (:\n")
    with pytest.raises(RestructureError, match=r"app/web/v7.py:2: cannot be rewritten"):
        plan_project(project, move)


def test_a_package_whose_all_names_a_moving_submodule_is_rewritten(project: Path) -> None:
    # no import of the submodule in the file: only its __all__ names it
    (project / "app/web/__init__.py").write_text('__all__ = ["views"]\n')
    plan = plan_project(project, [parse_move("app.web.views=app.ui.views")])
    changed = {c.path: c for c in plan.changes}
    assert changed["app/web/__init__.py"].after == "__all__ = []\n"
    assert ("app/web/__init__.py", 1) in {(p, n) for p, n, _ in plan.warnings}


def test_windows_line_ends_are_kept(project: Path) -> None:
    views = project / "app/web/views.py"
    views.write_bytes(views.read_bytes().replace(b"\n", b"\r\n"))
    plan = plan_project(project, [parse_move("app.util.text=app.lib.strings")])
    (change,) = [c for c in plan.changes if c.path == "app/web/views.py"]
    assert change.after.count("\r\n") == change.before.count("\r\n") > 0
    assert "\n" not in change.after.replace("\r\n", "")
