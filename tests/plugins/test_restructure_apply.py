"""Applying a plan: kept only when validated, otherwise (a failing test
command, Ctrl-C, a SIGKILL and the next run) the tree comes back byte for
byte; in git, on a branch of its own with a commit."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from _tree import tree_bytes, write_tree  # noqa: E402

FILES = {
    "app/__init__.py": "",
    "app/util/__init__.py": "from .text import shout\n",
    "app/util/text.py": "def shout(s):\n    return s.upper()\n",
    "app/web/__init__.py": "",
    "app/web/views.py": "from app.util.text import shout\n\n\ndef view():\n    return shout('x')\n",
    "app/web/data.txt": "not python\n",
}
MOVE = ["--move", "app.util.text=app.lib.strings"]
CORRAL_SRC = str(Path(__import__("corral").__file__).resolve().parents[1])
CHECK = "python -c 'import app.web.views as v; assert v.view() == \"X\"'"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return write_tree(tmp_path / "proj", FILES)


snapshot = tree_bytes


def run(
    root: Path, *args: str, env: dict[str, str] | None = None, **kw: object
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "corral", "restructure", str(root), *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=root,
        env={**(env or os.environ), "PYTHONPATH": str(root)},
        **kw,  # type: ignore[arg-type]
    )


def test_applied_and_validated(project: Path) -> None:
    done = run(project, *MOVE, "--apply", "--test-command", CHECK)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "applied and validated" in done.stdout
    after = snapshot(project)
    assert "app/util/text.py" not in after
    assert after["app/lib/strings.py"] == FILES["app/util/text.py"].encode()
    assert after["app/lib/__init__.py"] == b""
    assert after["app/util/__init__.py"] == b"from ..lib.strings import shout\n"
    assert after["app/web/views.py"].startswith(b"from app.lib.strings import shout\n")
    assert not (project / ".corral-restructure").exists()


def test_a_failing_test_command_rolls_everything_back(project: Path) -> None:
    before = snapshot(project)
    done = run(project, *MOVE, "--apply", "--test-command", "false")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "everything was rolled back" in done.stdout
    assert snapshot(project) == before
    assert not (project / "app/lib").exists()


def test_a_dry_run_writes_nothing(project: Path) -> None:
    before = snapshot(project)
    assert run(project, *MOVE).returncode == 0
    assert snapshot(project) == before


def test_a_kill_during_apply_is_rolled_back_by_the_next_run(project: Path) -> None:
    before = snapshot(project)
    marker = project.parent / "stall"
    marker.write_text("")
    command = f"test ! -f {marker} || sleep 60"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "corral",
            "restructure",
            str(project),
            *MOVE,
            "--apply",
            "--test-command",
            command,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not (project / "app/lib/strings.py").exists():  # moved: validation next
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.02)
        time.sleep(0.2)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the process and its test command
        proc.wait(10)
    assert (project / ".corral-restructure").exists()  # half done, journal left
    marker.unlink()
    done = run(project, *MOVE, "--apply", "--test-command", command)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "left half done by a stopped run was rolled back" in done.stderr
    after = snapshot(project)
    assert after["app/lib/strings.py"] == before["app/util/text.py"]
    assert "app/util/text.py" not in after


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_in_git_a_branch_and_a_commit_and_dirty_trees_refused(project: Path) -> None:
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(project), *args], capture_output=True, text=True, check=True
        ).stdout.strip()

    git("init", "-q", "-b", "main")
    git("-c", "user.email=t@example.org", "-c", "user.name=t", "add", "-A")
    git("-c", "user.email=t@example.org", "-c", "user.name=t", "commit", "-q", "-m", "start")
    before = snapshot(project)
    (project / "app/web/views.py").write_text("x = 1\n")  # uncommitted
    done = run(project, *MOVE, "--apply")
    assert done.returncode == 2 and "uncommitted changes" in done.stderr
    git("checkout", "-q", "--", ".")

    done = run(project, *MOVE, "--apply", "--test-command", "false")
    assert done.returncode == 1
    assert snapshot(project) == before
    assert git("symbolic-ref", "--short", "HEAD") == "main"
    assert git("status", "--porcelain") == ""
    assert git("branch", "--list", "corral/*") == ""

    env = {
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.org",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.org",
    }
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "corral",
            "restructure",
            str(project),
            *MOVE,
            "--apply",
            "--test-command",
            CHECK,
        ],
        capture_output=True,
        text=True,
        cwd=project,
        env={**os.environ, **env, "PYTHONPATH": str(project)},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    branch = git("symbolic-ref", "--short", "HEAD")
    assert branch.startswith("corral/restructure-")
    assert "app.util.text -> app.lib.strings" in git("log", "-1", "--format=%B")
    assert git("status", "--porcelain") == ""
    # history follows the file
    assert "start" in git("log", "--follow", "--format=%s", "--", "app/lib/strings.py")


def test_a_detached_head_gets_a_branch_and_a_rollback_detaches_again(project: Path) -> None:
    """A worktree or a CI checkout is often on a detached HEAD: the result is
    still committed on a branch of its own, and a rollback leaves HEAD
    detached where it was."""
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.org",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.org",
    }

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(project), *args], capture_output=True, text=True, check=True, env=env
        ).stdout.strip()

    git("init", "-q", "-b", "main")
    git("add", "-A")
    git("commit", "-q", "-m", "start")
    start = git("rev-parse", "HEAD")
    git("switch", "-q", "--detach", "HEAD")

    done = run(project, *MOVE, "--apply", "--test-command", "false", env=env)
    assert done.returncode == 1, done.stdout + done.stderr
    assert subprocess.run(["git", "-C", str(project), "symbolic-ref", "-q", "HEAD"]).returncode
    assert git("rev-parse", "HEAD") == start
    assert git("status", "--porcelain") == ""
    assert git("branch", "--list", "corral/*") == ""

    done = run(project, *MOVE, "--apply", "--test-command", CHECK, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert git("symbolic-ref", "--short", "HEAD").startswith("corral/restructure-")
    assert git("rev-parse", "HEAD~1") == start
    assert git("status", "--porcelain") == ""


def test_the_import_graph_is_checked_against_the_plan(project: Path) -> None:
    """A file that imports a moved module in a way no rewrite can see (built
    at run time) keeps the old edge: the graph check catches what compiling
    does not."""
    (project / "app/web/late.py").write_text(
        "import importlib\nname = 'app.util' + '.text'\nmod = importlib.import_module(name)\n"
        "from app.util import text\n"
    )
    done = run(project, *MOVE, "--apply", "--format", "json")
    assert done.returncode == 0, done.stdout + done.stderr
    import json

    data = json.loads(done.stdout)
    checks = {c["what"]: c for c in data["result"]["validation"]}
    graph = checks["the import graph is the plan's (today's, names renamed)"]
    assert graph["ok"], graph
    assert any("dynamic import" in w["message"] for w in data["warnings"])


def test_the_graph_check_names_what_differs(project: Path) -> None:
    from corral.plugins.builtin.restructure.apply import _graph_check
    from corral.plugins.builtin.restructure.architecture import analysis

    now = analysis(project)
    modules, edges = now.modules, now.edges
    assert ("app.web.views", "app.util.text") in edges
    wrong = (modules | {"app.ghost"}, (edges - {("app.web.views", "app.util.text")}))
    check = _graph_check(now, wrong)
    assert not check["ok"]
    assert "modules missing: app.ghost" in check["detail"]
    assert "unexpected imports: app.web.views -> app.util.text" in check["detail"]


def test_shims_keep_the_old_names_working_with_a_warning(project: Path) -> None:
    done = run(
        project,
        "--move",
        "app.util=app.lib.util",
        "--apply",
        "--keep-shims",
        "--test-command",
        CHECK,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert (project / "app/lib/util/text.py").is_file()
    assert "moved to app.lib.util.text" in (project / "app/util/text.py").read_text()
    probe = subprocess.run(
        [
            sys.executable,
            "-W",
            "always::DeprecationWarning",
            "-c",
            "import app.util.text as old, app.lib.util.text as new\n"
            "from app.util import shout\n"
            "assert old is new and shout('a') == 'A'\n",
        ],
        capture_output=True,
        text=True,
        cwd=project,
        env={**os.environ, "PYTHONPATH": str(project)},
    )
    assert probe.returncode == 0, probe.stderr
    assert "app.util.text moved to app.lib.util.text" in probe.stderr
    assert "app.util moved to app.lib.util" in probe.stderr


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_allow_dirty_commits_only_what_the_plan_touched(project: Path) -> None:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.org",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.org",
        "PYTHONPATH": str(project),
    }

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(project), *args],
            capture_output=True,
            text=True,
            check=True,
            env=env,
        ).stdout.strip()

    git("init", "-q", "-b", "main")
    git("add", "-A")
    git("commit", "-q", "-m", "start")
    (project / "notes.txt").write_text("mine, not committed\n")
    (project / "app/web/data.txt").write_text("changed by hand\n")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "corral",
            "restructure",
            str(project),
            *MOVE,
            "--apply",
            "--allow-dirty",
        ],
        capture_output=True,
        text=True,
        cwd=project,
        env=env,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    committed = git("show", "--name-only", "--format=", "HEAD").splitlines()
    assert "notes.txt" not in committed and "app/web/data.txt" not in committed
    assert "app/lib/strings.py" in committed
    status = git("status", "--porcelain")
    assert "?? notes.txt" in status and "M app/web/data.txt" in status
    assert git("diff", "--cached", "--name-only") == ""  # left unstaged, as it was


def test_a_package_moves_with_its_data_files(project: Path) -> None:
    (project / "app/web/templates").mkdir()
    (project / "app/web/templates/page.html").write_bytes(b"<p>\xe2\x9c\x93</p>\n")
    before = snapshot(project)
    done = run(project, "--move", "app.web=app.ui", "--apply", "--test-command", "false")
    assert done.returncode == 1 and snapshot(project) == before  # rolled back, data too
    done = run(project, "--move", "app.web=app.ui", "--apply")
    assert done.returncode == 0, done.stdout + done.stderr
    after = snapshot(project)
    assert after["app/ui/templates/page.html"] == before["app/web/templates/page.html"]
    assert after["app/ui/data.txt"] == before["app/web/data.txt"]
    assert not (project / "app/web").exists()


def test_the_test_command_imports_the_restructured_tree(tmp_path: Path) -> None:
    # The project is also importable from elsewhere (an editable install of
    # another checkout, here a stale copy first on PYTHONPATH): the test
    # command must still test the tree that was restructured, not that copy.
    # (Found restructuring corral itself from a second work tree.)
    src_files = {f"src/{path}": text for path, text in FILES.items()}
    root = write_tree(tmp_path / "proj", src_files)
    stale = write_tree(tmp_path / "installed", FILES)
    check = "python -c 'import app.lib.strings, app.web.views as v; assert v.view() == \"X\"'"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "corral",
            "restructure",
            str(root),
            *MOVE,
            "--apply",
            "--test-command",
            check,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=root,
        # (corral itself from where this test imports it)
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(stale), CORRAL_SRC])},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "applied and validated" in done.stdout
    assert (root / "src/app/lib/strings.py").exists()


@pytest.mark.skipif(shutil.which("ruff") is None, reason="ruff is not installed")
def test_imports_are_sorted_the_projects_way_when_it_sorts_them_with_ruff(tmp_path: Path) -> None:
    """A rewritten import keeps its place, which may break the project's
    isort order; a project whose ruff selects the I rules gets its import
    blocks sorted again (ruff, the project's configuration), and its lint
    passes after the move. A project that does not sort is left alone."""
    files = {
        "pyproject.toml": '[tool.ruff.lint]\nselect = ["I"]\n',
        "app/__init__.py": "",
        "app/alpha.py": "A = 1\n",
        "app/util/__init__.py": "",
        "app/util/text.py": "T = 2\n",
        "app/web/__init__.py": "",
        "app/web/views.py": (
            "from app.alpha import A\nfrom app.util.text import T\n\nVALUE = A + T\n"
        ),
    }
    for with_ruff in (True, False):
        root = write_tree(tmp_path / f"p{with_ruff}", files)
        if not with_ruff:
            (root / "pyproject.toml").write_text("[project]\nname = 'p'\n")
        done = run(root, "--move", "app.util.text=app.aaa.text", "--apply")
        assert done.returncode == 0, done.stdout + done.stderr
        views = (root / "app/web/views.py").read_text()
        lint = subprocess.run(
            ["ruff", "check", "--select", "I", "--quiet", "--", "app/web/views.py"],
            cwd=root,
            capture_output=True,
            text=True,
        )
        if with_ruff:
            assert views.startswith("from app.aaa.text import T\nfrom app.alpha import A\n")
            assert lint.returncode == 0, lint.stdout
        else:  # rewritten in place, out of isort's order: nobody asked for that order
            assert views.startswith("from app.alpha import A\nfrom app.aaa.text import T\n")
