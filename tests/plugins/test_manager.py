"""Plugin discovery and the handler registry (corral.plugins.manager)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import types
from pathlib import Path
from typing import Any

import msgspec
import pluggy
import pytest

import corral
from corral.core.errors import PluginError
from corral.plugins import Handler, StepContext, hookimpl
from corral.plugins.manager import HandlerRegistry, build_registry, check_handler

# ---------------------------------------------------------------- helpers


class Shout(Handler):
    """Upper-case a word."""

    name = "test.shout"
    version = "2"

    class Params(msgspec.Struct, forbid_unknown_fields=True):
        word: str

    async def run(self, ctx: StepContext, params: Any) -> Any:
        return params.word.upper()


class BlockingAdd(Handler):
    name = "test.add"
    kind = "blocking"

    class Params(msgspec.Struct):
        a: int
        b: int

    def run(self, ctx: StepContext, params: Any) -> Any:  # type: ignore[override]
        return params.a + params.b


class ObjPlugin:
    """A plugin that is an object whose hook is a method."""

    def __init__(self, *handlers: Any) -> None:
        self.handlers = list(handlers)

    @hookimpl
    def corral_handlers(self) -> list[Any]:
        return self.handlers


def module_plugin(name: str, *handlers: Any) -> types.ModuleType:
    """A plugin that is a module with a plain hook function."""
    mod = types.ModuleType(name)

    @hookimpl
    def corral_handlers() -> list[Any]:
        return list(handlers)

    mod.corral_handlers = corral_handlers  # type: ignore[attr-defined]
    return mod


# ---------------------------------------------------------------- built-ins


def test_builtins_are_registered_as_an_ordinary_plugin() -> None:
    reg = build_registry(entry_points=False)
    assert {"core.noop", "core.echo", "core.sleep", "core.fail", "core.shell"} <= set(reg)
    info = reg.info("core.echo")
    assert info.plugin == "builtin:core"
    assert info.kind == "async"
    assert info.description  # taken from the docstring
    assert [i.name for i in reg.infos()] == sorted(reg)
    assert len(reg) == len(list(reg))
    assert isinstance(reg.pm, pluggy.PluginManager)


def test_no_builtins() -> None:
    reg = build_registry([ObjPlugin(Shout)], entry_points=False, builtins=False)
    assert list(reg) == ["test.shout"]


def test_suggest() -> None:
    reg = build_registry(entry_points=False)
    assert reg.suggest("core.ecoh")[0] == "core.echo"
    assert "core.shell" in reg.suggest("core.shel")
    assert reg.suggest("zzzzzzzz") == []


# ---------------------------------------------------------------- explicit plugins


def test_explicit_object_and_module_plugins() -> None:
    reg = build_registry(
        [ObjPlugin(Shout), module_plugin("my_plugins.add", BlockingAdd)], entry_points=False
    )
    assert reg["test.shout"] is Shout
    assert reg["test.add"] is BlockingAdd
    assert reg.info("test.add").plugin == "my_plugins.add"
    # An object plugin is named after its class, not after its id().
    assert "ObjPlugin" in reg.info("test.shout").plugin
    assert reg.info("test.shout").version == "2"
    assert reg.info("test.shout").description == "Upper-case a word."


def test_same_plugin_twice_is_registered_once() -> None:
    plugin = ObjPlugin(Shout)
    reg = build_registry([plugin, plugin], entry_points=False)
    assert reg["test.shout"] is Shout


def test_two_instances_of_one_plugin_class_get_distinct_names() -> None:
    class Other(Handler):
        name = "test.other"

        async def run(self, ctx: StepContext, params: Any) -> Any:
            return None

    reg = build_registry([ObjPlugin(Shout), ObjPlugin(Other)], entry_points=False)
    assert reg.info("test.shout").plugin != reg.info("test.other").plugin


async def test_explicit_plugin_runs_through_the_engine() -> None:
    wf = corral.Workflow("explicit")
    wf.step("s", "test.shout", word="hi")
    wf.step("a", "test.add", a=2, b=3)
    async with corral.open_engine(entry_points=False, plugins=[ObjPlugin(Shout, BlockingAdd)]) as e:
        assert await e.run(wf) == {"s": "HI", "a": 5}


def test_hook_returning_none_or_tuple() -> None:
    class NonePlugin:
        @hookimpl
        def corral_handlers(self) -> None:
            return None

    class TuplePlugin:
        @hookimpl
        def corral_handlers(self) -> tuple[Any, ...]:
            return (Shout,)

    reg = build_registry([NonePlugin(), TuplePlugin()], entry_points=False, builtins=False)
    assert list(reg) == ["test.shout"]


# ---------------------------------------------------------------- errors


def test_duplicate_name_with_builtin_names_both_plugins() -> None:
    class FakeEcho(Handler):
        name = "core.echo"

        async def run(self, ctx: StepContext, params: Any) -> Any:
            return None

    with pytest.raises(corral.PluginError) as info:
        build_registry([module_plugin("evil_plugin", FakeEcho)], entry_points=False)
    msg = str(info.value)
    assert "'core.echo'" in msg
    assert "builtin:core" in msg
    assert "evil_plugin" in msg


def test_duplicate_name_between_two_explicit_plugins() -> None:
    with pytest.raises(corral.PluginError) as info:
        build_registry(
            [module_plugin("first_plugin", Shout), module_plugin("second_plugin", Shout)],
            entry_points=False,
        )
    msg = str(info.value)
    assert "first_plugin" in msg and "second_plugin" in msg and "test.shout" in msg


async def test_open_engine_raises_plugin_error() -> None:
    class FakeEcho(Handler):
        name = "core.echo"

        async def run(self, ctx: StepContext, params: Any) -> Any:
            return None

    with pytest.raises(corral.PluginError, match=r"core\.echo"):
        async with corral.open_engine(entry_points=False, plugins=[ObjPlugin(FakeEcho)]):
            pass  # pragma: no cover


class _NotAHandler:
    name = "x.not"

    async def run(self, ctx: Any, params: Any) -> Any:
        return None


def _handler(**attrs: Any) -> type[Handler]:
    return type("H", (Handler,), attrs)


async def _async_run(self: Any, ctx: Any, params: Any) -> Any:
    return None


def _sync_run(self: Any, ctx: Any, params: Any) -> Any:
    return None


@pytest.mark.parametrize(
    ("returned", "match"),
    [
        (_NotAHandler, "not a corral.plugins.Handler subclass"),
        (_NotAHandler(), "not a corral.plugins.Handler subclass"),
        (lambda: None, "not a corral.plugins.Handler subclass"),
        (_handler(name="", run=_async_run), "has no name"),
        (_handler(name="x.kind", kind="gpu", run=_async_run), "kind 'gpu'"),
        (_handler(name="x.kind2", kind=["async"], run=_async_run), "expected one of"),
        (_handler(name="x.sync", kind="async", run=_sync_run), "run\\(\\) is not async def"),
        (_handler(name="x.async", kind="blocking", run=_async_run), "run\\(\\) is async def"),
        (_handler(name="x.cpu", kind="cpu", run=_async_run), "run\\(\\) is async def"),
        (_handler(name="x.norun", kind="blocking"), "does not define run"),
        (_handler(name="x.params", run=_async_run, Params=42), "Params"),
    ],
)
def test_bad_handlers_are_plugin_errors(returned: Any, match: str) -> None:
    with pytest.raises(corral.PluginError, match=match) as info:
        build_registry([module_plugin("bad_plugin", returned)], entry_points=False)
    assert "bad_plugin" in str(info.value)


def test_check_handler_accepts_good_classes() -> None:
    assert check_handler(Shout, "p") is Shout
    assert check_handler(BlockingAdd, "p") is BlockingAdd


def test_hook_must_return_a_list() -> None:
    class Single:
        @hookimpl
        def corral_handlers(self) -> Any:
            return Shout

    with pytest.raises(corral.PluginError, match="must return a list"):
        build_registry([Single()], entry_points=False)


def test_hook_that_raises() -> None:
    class Broken:
        @hookimpl
        def corral_handlers(self) -> Any:
            raise RuntimeError("boom")

    with pytest.raises(corral.PluginError, match="RuntimeError: boom"):
        build_registry([Broken()], entry_points=False)


def test_hookimpl_with_unknown_argument_is_plugin_error() -> None:
    class Wrong:
        @hookimpl
        def corral_handlers(self, nonsense: Any) -> Any:
            return []

    with pytest.raises(corral.PluginError, match="nonsense"):
        build_registry([Wrong()], entry_points=False)


def test_registry_is_a_mapping() -> None:
    reg = build_registry([ObjPlugin(Shout)], entry_points=False)
    assert isinstance(reg, HandlerRegistry)
    assert "test.shout" in reg
    with pytest.raises(KeyError):
        reg["nope.nope"]


# ---------------------------------------------------------------- entry points

PLUGIN_SOURCE = '''
import msgspec
from corral.plugins import Handler, hookimpl


class Greet(Handler):
    """Greets someone."""

    name = "demo.greet"
    version = "3"

    class Params(msgspec.Struct):
        who: str

    async def run(self, ctx, params):
        return f"hello {params.who}"


@hookimpl
def corral_handlers():
    return [Greet]
'''

PYPROJECT = """
[build-system]
requires = ["setuptools"]
build-backend = "setuptools.build_meta"

[project]
name = "corral-demo-plugin"
version = "1.2.3"

[project.entry-points.corral]
demo = "corral_demo_plugin"

[tool.setuptools]
py-modules = ["corral_demo_plugin"]
"""

CHECK_SCRIPT = """
import json, trio, corral
from corral.plugins.manager import build_registry

reg = build_registry()
info = reg.info("demo.greet")
without = build_registry(entry_points=False)

async def main():
    wf = corral.Workflow("greeting")
    wf.step("g", "demo.greet", who="world")
    async with corral.open_engine() as engine:
        return await engine.run(wf)

print(json.dumps({
    "names": sorted(reg),
    "plugin": info.plugin,
    "version": info.version,
    "description": info.description,
    "without_entry_points": "demo.greet" in without,
    "result": trio.run(main),
}))
"""


def pip_install(tmp_path: Path, name: str, module: str, source: str) -> Path:
    """Build and install a tiny plugin distribution into its own target dir."""
    project = tmp_path / f"project-{name}"
    project.mkdir()
    pyproject = PYPROJECT.replace("corral-demo-plugin", name).replace("corral_demo_plugin", module)
    (project / "pyproject.toml").write_text(textwrap.dedent(pyproject))
    (project / f"{module}.py").write_text(textwrap.dedent(source))
    site = tmp_path / f"site-{name}"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-build-isolation",
            "--no-index",
            "--no-deps",
            "--target",
            str(site),
            str(project),
        ],
        check=True,
        env=clean_env(),
        cwd=tmp_path,
        capture_output=True,
        timeout=600,
    )
    assert any(p.name.startswith(module) for p in site.iterdir())
    return site


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PIP_TARGET")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env.update(extra)
    return env


def test_installed_distribution_is_discovered_by_entry_point(tmp_path: Path) -> None:
    site = pip_install(tmp_path, "corral-demo-plugin", "corral_demo_plugin", PLUGIN_SOURCE)
    env = clean_env()
    env["PYTHONPATH"] = str(site)
    proc = subprocess.run(
        [sys.executable, "-c", CHECK_SCRIPT],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert "demo.greet" in out["names"] and "core.echo" in out["names"]
    assert out["plugin"] == "demo (corral-demo-plugin 1.2.3)"
    assert out["version"] == "3"
    assert out["description"] == "Greets someone."
    assert out["without_entry_points"] is False
    assert out["result"] == {"g": "hello world"}

    # The test process itself was not touched.
    assert "corral_demo_plugin" not in sys.modules
    assert "demo.greet" not in build_registry(entry_points=False)


def test_hookspecs_are_documented_and_prefixed() -> None:
    from corral.plugins import hookspecs

    assert hookspecs.PROJECT == "corral"
    assert hookspecs.HOOKSPEC_VERSION >= 1
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    names = [name for name in dir(pm.hook) if not name.startswith("_")]
    assert set(names) >= {"corral_handlers", "corral_event"}
    for name in names:
        assert name.startswith("corral_")
        doc = getattr(hookspecs, name).__doc__
        assert doc and "Since corral" in doc


def test_broken_entry_point_is_left_out_not_a_traceback(tmp_path: Path) -> None:
    source = "raise ImportError('needs libfoo, which is not installed')\n"
    site = pip_install(tmp_path, "corral-broken-plugin", "corral_broken_plugin", source)
    script = (
        "from corral.plugins.manager import build_registry\n"
        "registry = build_registry()\n"
        "print('broken:', registry.broken[0].plugin, registry.broken[0].reason)\n"
        "print('ok' if 'core.echo' in registry else 'missing')\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script],
        env=clean_env(PYTHONPATH=str(site)),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    first, second = proc.stdout.strip().splitlines()
    assert first.startswith("broken: demo (corral-broken-plugin 1.2.3)")
    assert "ImportError on loading: needs libfoo" in first
    assert second == "ok"
    # warned once, on stderr, with what to do
    assert proc.stderr.count("is broken and left out") == 1 and "corral plugins" in proc.stderr


def test_misspelled_hook_is_an_error() -> None:
    class Typo:
        @hookimpl
        def corral_handler(self) -> list[type[Handler]]:  # missing the final "s"
            return []

    with pytest.raises(PluginError, match="corral_handler"):
        build_registry([Typo()], entry_points=False)


def test_description_is_not_inherited_from_handler() -> None:
    class Bare(Handler):
        name = "test.bare"

        async def run(self, ctx: object, params: object) -> None:  # type: ignore[override]
            return None

    class Plugin:
        @hookimpl
        def corral_handlers(self) -> list[type[Handler]]:
            return [Bare]

    registry = build_registry([Plugin()], entry_points=False)
    assert registry.info("test.bare").description == ""


def test_a_plugin_installed_while_the_process_runs_is_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Installed distributions are read once and kept while no folder on
    sys.path changed: installing one changes its folder, and the next
    registry has its handlers."""
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parent.parent))
    from _dists import install

    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    before = build_registry()
    assert "late.echo" not in before
    install(
        site,
        "corral-late",
        "lateplug",
        "from corral.plugins import Handler, hookimpl\n"
        "class Echo(Handler):\n"
        "    name = 'late.echo'\n"
        "    async def run(self, ctx, params):\n"
        "        return 1\n"
        "@hookimpl\n"
        "def corral_handlers():\n"
        "    return [Echo]\n",
    )
    after = build_registry()
    assert "late.echo" in after
    assert after.info("late.echo").plugin == "lateplug (corral-late 1.0)"


def test_a_command_without_run_is_refused_naming_it() -> None:
    from corral.plugins.commands import Command
    from corral.plugins.manager import plugin_commands

    class Half(Command):
        name = "half"
        help = "defines no run()"

    class Plugin:
        @hookimpl
        def corral_commands(self) -> list[type[Command]]:
            return [Half]

    registry = build_registry([Plugin()], entry_points=False, builtins=False)
    with pytest.raises(PluginError, match="command 'half' does not define run"):
        plugin_commands(registry)
