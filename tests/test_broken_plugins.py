"""One broken installed plugin must not stop everything: it is reported
once, left out, and only workflows that use its handlers fail, naming it.
The plugins are real installed distributions (a ``.dist-info`` with
``entry_points.txt`` on ``PYTHONPATH``), run through the real CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _dists import install as _install  # noqa: E402

GOOD_WF = "name: ok\nsteps:\n  - {id: a, handler: core.echo, params: {value: 7}}\n"
USES_BROKEN = "name: uses\nsteps:\n  - {id: a, handler: badplug.thing}\n"

# A plugin whose handler is invalid (kind 'async' with a plain def run).
BAD_HANDLER = """
from corral.plugins import hookimpl
from corral.plugins import Handler


class Thing(Handler):
    name = "badplug.thing"
    kind = "async"

    def run(self, ctx, params):
        return 1


@hookimpl
def corral_handlers():
    return [Thing]
"""


def corral(site: Path, cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "PYTHONPATH": str(site), "NO_COLOR": "1", **env}
    return subprocess.run(
        [sys.executable, "-m", "corral", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=environ,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("dist", "module", "source", "reason"),
    [
        ("badplug", "badplug", BAD_HANDLER, "has kind 'async' but run() is not"),
        ("crashplug", "crashplug", "raise RuntimeError('boom at import')\n", "boom at import"),
        (
            "typoplug",
            "typoplug",
            "from corral.plugins import hookimpl\n@hookimpl\ndef corral_handler():\n    return []\n",
            "unknown hook",
        ),
    ],
    ids=["invalid-handler", "import-error", "unknown-hook"],
)
def test_a_broken_plugin_is_left_out(
    tmp_path: Path, dist: str, module: str, source: str, reason: str
) -> None:
    site = tmp_path / "site"
    site.mkdir()
    _install(site, dist, module, source)
    (tmp_path / "ok.yaml").write_text(GOOD_WF)
    (tmp_path / "uses.yaml").write_text(USES_BROKEN)
    store = f"sqlite:///{tmp_path / 's.db'}"

    ran = corral(site, tmp_path, "run", "ok.yaml", "--store", store)
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout) == {"a": 7}
    assert ran.stderr.count(f"plugin {module} ({dist} 1.0) is broken and left out") == 1
    assert reason in ran.stderr and "Traceback" not in ran.stderr

    listed = corral(site, tmp_path, "plugins")
    assert listed.returncode == 0 and "core.echo" in listed.stdout
    assert f"broken: {module} ({dist} 1.0)" in listed.stdout

    assert corral(site, tmp_path, "validate", "ok.yaml").returncode == 0
    uses = corral(site, tmp_path, "validate", "uses.yaml")
    assert uses.returncode == 2 and "badplug.thing" in uses.stderr
    if dist == "badplug":  # its handler's name is known: the error names the plugin
        assert "its plugin badplug (badplug 1.0) is broken" in uses.stderr
    else:
        assert "installed plugin(s) could not be loaded" in uses.stderr

    for quiet in (
        corral(site, tmp_path, "--no-plugins", "plugins"),
        corral(site, tmp_path, "plugins", CORRAL_NO_PLUGINS="1"),
    ):
        assert quiet.returncode == 0 and "broken" not in quiet.stdout + quiet.stderr


CHATTY = '''
import msgspec
from corral.plugins import Handler, hookimpl


class Chatty(Handler):
    """Logs as it works."""

    name = "chatty.talk"

    async def run(self, ctx, params):
        ctx.log.info("counting the %s", "beans")
        ctx.log.debug("a detail")
        return 3


@hookimpl
def corral_handlers():
    return [Chatty]
'''


def test_handler_logs_show_with_log_level(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    _install(site, "chatty", "chatty", CHATTY)
    (tmp_path / "talk.yaml").write_text("name: talk\nsteps:\n  - {id: a, handler: chatty.talk}\n")
    store = f"sqlite:///{tmp_path / 's.db'}"
    quiet = corral(site, tmp_path, "run", "talk.yaml", "--store", store)
    assert quiet.returncode == 0 and "beans" not in quiet.stderr
    told = corral(site, tmp_path, "run", "talk.yaml", "--store", store, "--log-level", "info")
    assert told.returncode == 0 and json.loads(told.stdout) == {"a": 3}
    assert "info talk/a: counting the beans" in told.stderr and "a detail" not in told.stderr
    debug = corral(site, tmp_path, "--log-level", "debug", "run", "talk.yaml", "--store", store)
    assert "debug talk/a: a detail" in debug.stderr
    # kept with the step's record (info and up), whatever was shown
    execution = quiet.stderr.split("(execution ")[1].split(")")[0]
    shown = corral(site, tmp_path, "show", execution, "--store", store)
    assert "1 log line(s) kept: --logs shows them" in shown.stdout
    logs = corral(site, tmp_path, "show", execution, "--logs", "--store", store)
    assert "log a: info counting the beans" in logs.stdout and "a detail" not in logs.stdout
