"""Commands from plugins (hook spec 2, ``corral_commands``): an installed
distribution's command is listed by ``corral --help``, has its own
``--help``, runs (a workflow through the Terminal it is given too), and a
bad one is left out without stopping the rest. The plugins are real
installed distributions (a ``.dist-info`` with ``entry_points.txt`` on
``PYTHONPATH``), run through the real CLI in another process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from _dists import install as _install  # noqa: E402

from corral.plugins.hookspecs import HOOKSPEC_VERSION

GREET = '''
import pathlib, sys

from corral.errors import UsageError
from corral.plugins import hookimpl
from corral.plugins.commands import EXIT_FAILED, EXIT_OK, Command
from corral.workflow.builder import Workflow

pathlib.Path("greet-imported").touch()  # (shows when the plugin was loaded)


class Greet(Command):
    name = "greet"
    help = "say hello through a workflow"
    description = "Greets WHO by running a one-step workflow."

    def configure(self, parser, terminal):
        parser.add_argument("who")
        parser.add_argument("--shout", action="store_true", help="in capitals")
        terminal.add_store_option(parser)
        terminal.add_progress_option(parser)

    def run(self, args, terminal):
        if args.who == "nobody":
            raise UsageError("greet: nobody to greet")
        text = f"hello {args.who}"
        wf = Workflow("greet")
        wf.step("say", "core.echo", value=text.upper() if args.shout else text)
        result = terminal.run_workflow(wf, args, durability="none", result=True)
        terminal.write(result["say"] + "\\n", None)
        return EXIT_OK if args.who != "failure" else EXIT_FAILED


@hookimpl
def corral_commands():
    return [Greet]
'''

CLASH = '''
from corral.plugins import hookimpl
from corral.plugins.commands import Command


class Run(Command):
    name = "run"
    help = "not corral's run"


class Fine(Command):
    name = "fine"
    help = "never listed: its plugin gave a bad command too"

    def run(self, args, terminal):
        return 0


@hookimpl
def corral_commands():
    return [Fine, Run]
'''


@pytest.fixture
def site(tmp_path: Path) -> Path:
    site = tmp_path / "site"
    site.mkdir()
    _install(site, "corral-greet", "greetplug", GREET)
    return site


def corral(site: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(site), "NO_COLOR": "1", "COLUMNS": "100"}
    env.pop("CORRAL_NO_PLUGINS", None)
    return subprocess.run(
        [sys.executable, "-m", "corral", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=120,
    )


def test_the_hook_spec_is_version_2() -> None:
    assert HOOKSPEC_VERSION == 2


def test_an_installed_plugins_command_is_listed_and_runs(site: Path, tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'c.db'}"
    listed = corral(site, tmp_path, "--help")
    assert listed.returncode == 0, listed.stderr
    assert "greet" in listed.stdout and "say hello through a workflow" in listed.stdout
    # the built-in plugins' commands come the same way
    for name in ("analyze", "restructure", "vibe"):
        assert name in listed.stdout

    own = corral(site, tmp_path, "greet", "--help")
    assert own.returncode == 0 and "Greets WHO" in own.stdout and "--shout" in own.stdout

    ran = corral(site, tmp_path, "greet", "world", "--shout", "--store", db)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout == "HELLO WORLD\n"
    assert corral(site, tmp_path, "greet", "failure", "--store", db).returncode == 1

    refused = corral(site, tmp_path, "greet", "nobody")
    assert refused.returncode == 2
    assert refused.stderr.strip() == "corral: error: greet: nobody to greet"
    missing = corral(site, tmp_path, "greet")
    assert missing.returncode == 2 and "the following arguments are required: who" in missing.stderr


def test_corral_own_commands_do_not_load_plugins(site: Path, tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'c.db'}"
    assert corral(site, tmp_path, "migrate", "--store", db).returncode == 0
    done = corral(site, tmp_path, "list", "--store", db)
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / "greet-imported").exists()
    assert corral(site, tmp_path, "--help").returncode == 0
    assert (tmp_path / "greet-imported").exists()


def test_no_plugins_leaves_installed_commands_out(site: Path, tmp_path: Path) -> None:
    listed = corral(site, tmp_path, "--no-plugins", "--help")
    assert listed.returncode == 0
    assert "greet" not in listed.stdout and "analyze" in listed.stdout
    done = corral(site, tmp_path, "--no-plugins", "greet", "x")
    assert done.returncode == 2 and "invalid choice: 'greet'" in done.stderr


def test_a_plugin_with_a_bad_command_is_left_out_and_the_rest_works(
    site: Path, tmp_path: Path
) -> None:
    _install(site, "corral-clash", "clashplug", CLASH)
    listed = corral(site, tmp_path, "--help")
    assert listed.returncode == 0, listed.stderr
    assert "greet" in listed.stdout and "fine" not in listed.stdout
    assert "clashplug" in listed.stderr and "one of corral's own commands" in listed.stderr
    assert "Traceback" not in listed.stderr
    ran = corral(site, tmp_path, "greet", "you", "--store", f"sqlite:///{tmp_path / 'c.db'}")
    assert ran.returncode == 0 and ran.stdout == "hello you\n"


BAD_ARGS = """
from corral.plugins import hookimpl
from corral.plugins.commands import Command


class Broken(Command):
    name = "broken"
    help = "its options clash"

    def configure(self, parser, terminal):
        parser.add_argument("--x")
        parser.add_argument("--x")

    def run(self, args, terminal):
        return 0


@hookimpl
def corral_commands():
    return [Broken]
"""


def test_a_command_whose_options_fail_is_left_out_without_a_traceback(
    site: Path, tmp_path: Path
) -> None:
    _install(site, "corral-badargs", "badargsplug", BAD_ARGS)
    listed = corral(site, tmp_path, "--help")
    assert listed.returncode == 0, listed.stderr
    assert "greet" in listed.stdout and "broken" not in listed.stdout
    assert "command 'broken' left out" in listed.stderr and "Traceback" not in listed.stderr
