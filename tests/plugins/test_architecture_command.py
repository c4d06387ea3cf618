"""``corral analyze``: formats, --fail-on, bad input (exit 2, no traceback)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from _tree import write_tree

from corral.cli import main
from corral.plugins.builtin.architecture.command import parse_fail_on

ROOT = Path(__file__).resolve().parents[2]

TREE = {
    "pyproject.toml": '[project]\nname = "demo"\n',
    "demo/__init__.py": "",
    "demo/api.py": "import demo.service\n",
    "demo/service.py": "import demo.repository\n",
    "demo/repository.py": "from demo import service  # a cycle back up\n",
}


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["analyze", *args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("missing", "no such directory"),
        ("f.py", "not a directory"),
        (".", "no Python package found"),
    ],
)
def test_bad_paths_are_usage_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], target: str, message: str
) -> None:
    (tmp_path / "f.py").write_text("X = 1\n")  # a file, and a tree without a package
    code, out, err = run_cli(capsys, str(tmp_path / target))
    assert code == 2
    assert message in err and "Traceback" not in err
    assert out == ""


def test_json_report_and_fail_on(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_tree(tmp_path, TREE)
    code, out, err = run_cli(capsys, str(tmp_path), "--format", "json")
    assert code == 0, err
    report = json.loads(out)
    assert report["summary"]["module_cycles"] == 1
    assert report["projects"][0]["name"] == "demo"

    code, out, err = run_cli(capsys, str(tmp_path), "--format", "json", "--fail-on", "cycles")
    assert code == 1
    assert "--fail-on: 1 module cycle(s)" in err
    assert json.loads(out)["summary"]["module_cycles"] == 1  # the report is still written

    # api > service > repository is detected from the names; repository -> service breaks it
    layers = report["projects"][0]["layers"]
    assert (layers["source"], layers["style"], layers["violations"]) == ("detected", "layered", 1)
    code, _, err = run_cli(capsys, str(tmp_path), "--format", "json", "--fail-on", "violations")
    assert code == 1 and "1 layer contract violation(s)" in err
    score = report["summary"]["score"]
    code, _, err = run_cli(capsys, str(tmp_path), "--fail-on", f"score<{score + 1}")
    assert code == 1 and f"score {score} < {score + 1}" in err
    code, _, _ = run_cli(capsys, str(tmp_path), "--fail-on", f"score<{score}")
    assert code == 0


def test_fail_on_parsing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert parse_fail_on(["cycles,score<70", " violations "]) == [
        ("cycles", 0),
        ("score", 70),
        ("violations", 0),
    ]
    write_tree(tmp_path, TREE)
    for bad in ("loops", "score>3", "score<101", "score<"):
        code, _, err = run_cli(capsys, str(tmp_path), "--fail-on", bad)
        assert code == 2 and "--fail-on" in err and "Traceback" not in err


def test_fail_on_from_pyproject(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files = dict(TREE)
    files["pyproject.toml"] = '[tool.corral.architecture]\nfail_on = ["cycles"]\n'
    write_tree(tmp_path, files)
    code, _, err = run_cli(capsys, str(tmp_path), "--format", "json")
    assert code == 1 and "module cycle" in err
    (tmp_path / "pyproject.toml").write_text('[tool.corral.architecture]\nfail_on = ["loops"]\n')
    code, _, err = run_cli(capsys, str(tmp_path))
    assert code == 2
    assert "pyproject.toml: tool.corral.architecture.fail_on 'loops'" in err


def test_a_source_folder_uses_its_projects_configuration(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``corral analyze src`` in a src layout checks the contracts and
    --fail-on of the pyproject.toml above src (as ruff and mypy find theirs),
    never one above the repository."""
    repo = tmp_path / "repo"
    write_tree(
        repo,
        {
            "pyproject.toml": (
                '[project]\nname = "demo"\n[tool.corral.architecture]\n'
                'containers = ["demo"]\nlayers = ["api", "service", "repository"]\n'
                'fail_on = ["violations"]\n'
            ),
            **{f"src/{name}": text for name, text in TREE.items() if name.startswith("demo/")},
        },
    )
    code, out, err = run_cli(capsys, str(repo / "src"), "--format", "json")
    report = json.loads(out)
    assert report["summary"]["violations"] == 1, report["summary"]
    assert code == 1 and "layer contract violation" in err
    layers = report["projects"][0]["layers"]
    assert layers["config_file"] == "../pyproject.toml" and layers["source"] == "corral"

    (repo / ".git").mkdir()  # the repository's top: nothing above it is read
    (repo / "pyproject.toml").rename(tmp_path / "pyproject.toml")
    code, out, err = run_cli(capsys, str(repo / "src"), "--format", "json")
    assert code == 0, err
    assert json.loads(out)["projects"][0]["layers"]["source"] == "detected"


def test_bad_configuration_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_tree(tmp_path, TREE)
    (tmp_path / "pyproject.toml").write_text("[tool.corral.architecture\n")
    code, out, err = run_cli(capsys, str(tmp_path))
    assert code == 2 and "pyproject.toml" in err and "invalid TOML" in err
    (tmp_path / "pyproject.toml").write_text("[tool.corral.architecture]\nlayers = 3\n")
    code, out, err = run_cli(capsys, str(tmp_path))
    assert code == 2 and "tool.corral.architecture.layers" in err and "Traceback" not in err


def test_formats_and_out(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tree = write_tree(tmp_path / "tree", TREE)
    code, out, _ = run_cli(capsys, str(tree), "--format", "text")
    assert code == 0 and out.startswith("corral architecture report:")
    assert "demo.repository -> demo.service" in out or "Break the import cycle" in out

    code, out, _ = run_cli(capsys, str(tree), "--format", "markdown")
    assert code == 0 and out.lstrip().startswith("#")

    # the format follows --out's extension
    target = tmp_path / "report.html"
    code, out, err = run_cli(capsys, str(tree), "--out", str(target))
    assert code == 0 and out == ""
    assert f"report written to {target}" in err
    html = target.read_text()
    assert html.lstrip().lower().startswith("<!doctype html>") and "<svg" in html
    HTMLParser().feed(html)  # well-formed enough to parse

    code, _, err = run_cli(capsys, str(tree), "--out", str(tmp_path / "nodir" / "r.json"))
    assert code == 2 and "--out" in err


def test_files_not_analysed_are_listed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_tree(tmp_path, TREE)
    outside = tmp_path.parent / f"{tmp_path.name}-outside.py"
    outside.write_text("")
    (tmp_path / "demo/linked.py").symlink_to(outside)
    (tmp_path / "demo/dangling.py").symlink_to(tmp_path / "gone.py")
    (tmp_path / "demo/broken.py").write_text("def (:\n")
    code, out, err = run_cli(capsys, str(tmp_path), "--format", "json")
    assert code == 0, err
    reasons = {f["path"]: f["reason"] for f in json.loads(out)["not_analysed"]}
    assert reasons == {
        "demo/broken.py": "syntax error: line 1: invalid syntax",
        "demo/dangling.py": "unreadable: broken link",
        "demo/linked.py": "outside the root (symlink)",
    }


def test_default_format_is_json_when_piped_and_a_module_run_works(tmp_path: Path) -> None:
    """``python -m corral analyze`` in a fresh process, stdout a pipe: JSON."""
    write_tree(tmp_path, TREE)
    env = {**os.environ, "CORRAL_STORE": f"sqlite:///{tmp_path / 'store.db'}"}
    proc = subprocess.run(
        [sys.executable, "-m", "corral", "analyze", str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["summary"]["modules"] == 4


def test_monorepo_root_configuration_is_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The root's table counts even when the root holds no package itself."""
    write_tree(
        tmp_path,
        {
            "pyproject.toml": '[tool.corral.architecture]\nfail_on = ["cycles"]\n',
            "libs/a/pyproject.toml": '[project]\nname = "a"\n',
            "libs/a/a/__init__.py": "import a.x\n",
            "libs/a/a/x.py": "import a\n",
        },
    )
    code, _, err = run_cli(capsys, str(tmp_path), "--format", "json")
    assert code == 1 and "module cycle" in err
    (tmp_path / "pyproject.toml").write_text("[tool.corral.architecture]\nexclude_tests = 'yes'\n")
    code, _, err = run_cli(capsys, str(tmp_path), "--format", "json")
    assert code == 2 and "tool.corral.architecture.exclude_tests" in err


def test_a_contract_matching_nothing_fails_violations(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = dict(TREE)
    files["pyproject.toml"] = (
        '[tool.corral.architecture]\ncontainers = ["nope"]\nlayers = ["api", "service"]\n'
    )
    write_tree(tmp_path, files)
    code, out, err = run_cli(capsys, str(tmp_path), "--format", "json", "--fail-on", "violations")
    assert code == 1 and "1 broken contract(s)" in err
    layers = json.loads(out)["projects"][0]["layers"]
    assert layers["problems"] and "nope" in layers["problems"][0]


def test_the_shop_example_reads_well(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shop = Path(__file__).resolve().parents[2] / "examples" / "shop"
    out_file = tmp_path / "shop.md"
    code, _, err = run_cli(
        capsys,
        str(shop),
        "--format",
        "markdown",
        "--out",
        str(out_file),
        "--store",
        f"sqlite:///{tmp_path / 's.db'}",
    )
    assert code == 0, err
    text = out_file.read_text()
    assert "1 violation." in text and "broken, 1 violation" in text and "1 violations" not in text
    # the package-level cut points where the import is, as the recommendation does
    assert "suggested cut: `shop.domain -> shop.services` at `shop/domain/pricing.py:9`" in text
    assert "broken_contracts" not in text
