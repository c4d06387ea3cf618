"""The command line: examples run, exit codes, errors without tracebacks."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from corral.cli import main

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


# ---------------------------------------------------------------- examples


def test_example_fanout(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(
        capsys, "run", str(EXAMPLES / "fanout.yaml"), "--input", f"path={EXAMPLES}", "--json"
    )
    assert code == 0, err
    record = json.loads(out)
    assert record["status"] == "succeeded"
    assert "fanout.yaml" in record["result"]["entries"]
    assert record["result"]["path"] == str(EXAMPLES)
    assert {s["status"] for s in record["steps"]} == {"succeeded"}


def test_example_retries(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "run", str(EXAMPLES / "retries.yaml"), "--json")
    assert code == 0, err
    record = json.loads(out)
    assert record["result"] == "second try works\n"
    flaky = next(s for s in record["steps"] if s["step_id"] == "flaky")
    assert flaky["attempts"] == 2


def test_example_conditions(capsys: pytest.CaptureFixture[str]) -> None:
    path = str(EXAMPLES / "conditions.yaml")
    code, out, _ = run_cli(capsys, "run", path, "--json")
    assert code == 0
    record = json.loads(out)
    assert record["result"] == {"many": "more than 3 items", "lenient": "lenient mode"}
    statuses = {s["step_id"]: s["status"] for s in record["steps"]}
    assert statuses["strict-check"] == "skipped"

    code, out, _ = run_cli(capsys, "run", path, "--input", "strict=true", "-i", "threshold=9")
    assert code == 0
    assert "strict mode checked" in out and "lenient mode" not in out


def test_example_child(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(
        capsys, "run", str(EXAMPLES / "child.yaml"), "--input", 'team=["ann", "bob"]'
    )
    assert code == 0, err
    assert "hello, ann!" in out and "HELLO, BOB?" in out


@pytest.mark.parametrize("name", ["fanout", "retries", "conditions", "child"])
def test_examples_validate(capsys: pytest.CaptureFixture[str], name: str) -> None:
    code, out, _ = run_cli(capsys, "validate", str(EXAMPLES / f"{name}.yaml"), "--json")
    assert code == 0
    assert json.loads(out)["valid"] is True


def test_console_script_runs_an_example(tmp_path: Path) -> None:
    exe = shutil.which("corral") or ""
    cmd = [exe] if exe else [sys.executable, "-m", "corral"]
    proc = subprocess.run(
        [*cmd, "run", str(EXAMPLES / "conditions.yaml")],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={**os.environ, "NO_COLOR": "1"},
    )
    assert proc.returncode == 0, proc.stderr
    assert "succeeded" in proc.stderr  # how it ended: stderr; stdout: the result only
    assert json.loads(proc.stdout) == {"many": "more than 3 items", "lenient": "lenient mode"}


# ---------------------------------------------------------------- exit codes


def test_failed_workflow_exits_1(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    wf = tmp_path / "fail.yaml"
    wf.write_text("name: f\nsteps:\n  - {id: boom, handler: core.fail, params: {message: nope}}\n")
    code, _, err = run_cli(capsys, "run", str(wf))
    assert code == 1
    assert "failed" in err and "boom" in err and "nope" in err
    assert "Traceback" not in err


def test_timed_out_workflow_exits_1(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    wf = tmp_path / "slow.toml"
    wf.write_text(
        'name = "slow"\n[[steps]]\nid = "s"\nhandler = "core.sleep"\n'
        "timeout = 0.05\nparams = {seconds = 30}\n"
    )
    code, _, _ = run_cli(capsys, "run", str(wf), "--json")
    assert code == 1


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("name: x\nsteps:\n  - {id: a, handler: core.nope}\n", "unknown handler 'core.nope'"),
        ("name: x\nsteps: [\n", "invalid YAML"),
        ("name: x\nsteps:\n  - {id: a, handler: core.echo, bogus: 1}\n", "bogus"),
    ],
)
def test_bad_spec_exits_2_without_traceback(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, content: str, needle: str
) -> None:
    wf = tmp_path / "bad.yaml"
    wf.write_text(content)
    for command in ("run", "validate"):
        code, _, err = run_cli(capsys, command, str(wf))
        assert code == 2
        assert needle in err and "bad.yaml" in err
        assert "Traceback" not in err


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["run", "missing.yaml"], "no such file"),
        (["run", "wf.txt"], "cannot tell the format"),
        (["run", "{examples}/conditions.yaml", "--input", "threshold=abc"], "must be an integer"),
        (["run", "{examples}/conditions.yaml", "--input", "strict=maybe"], "boolean"),
        (["run", "{examples}/conditions.yaml", "--input", "nope=1"], "unknown input 'nope'"),
        (["run", "{examples}/conditions.yaml", "--input", "novalue"], "NAME=VALUE"),
        (["run", "{examples}/child.yaml", "--input", "team={}"], "JSON array"),
        (["run", "{examples}/conditions.yaml", "--store", "bogus://x"], "unknown store scheme"),
        (["frobnicate"], "invalid choice"),
        (["run"], "required"),
        (["serve", "--max-body", "12x"], "expected a size such as 65536, 64k or 1m"),
        (["serve", "--max-body", "0"], "expected 1 byte to 1 GiB"),
    ],
)
def test_usage_errors_exit_2(
    capsys: pytest.CaptureFixture[str], args: list[str], needle: str, tmp_path: Path
) -> None:
    (tmp_path / "wf.txt").write_text("name: x")
    args = [a.replace("{examples}", str(EXAMPLES)) for a in args]
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        try:
            code, _, err = run_cli(capsys, *args)
        except SystemExit as exc:  # argparse's own usage errors
            code = int(exc.code or 0)
            err = capsys.readouterr().err
    finally:
        os.chdir(cwd)
    assert code == 2
    assert needle in err
    assert "Traceback" not in err


def test_serve_on_a_port_in_use_says_so(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        store = f"sqlite:///{tmp_path / 's.db'}"
        code, _, err = run_cli(capsys, "serve", "--port", port, "--store", store)
    assert code == 2 and f"cannot listen on 127.0.0.1:{port}" in err and "in use" in err
    assert "Traceback" not in err


def test_plugins_lists_core_handlers(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "plugins", "--json")
    assert code == 0
    handlers = {h["name"]: h for h in json.loads(out)}
    assert {"core.noop", "core.echo", "core.sleep", "core.fail", "core.shell"} <= set(handlers)
    assert handlers["core.shell"]["kind"] == "async"
    assert handlers["core.echo"]["plugin"] == "builtin:core"
    code, out, _ = run_cli(capsys, "plugins")
    assert code == 0 and "core.shell" in out


def test_plugins_reads_at_80_columns(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    code, out, _ = run_cli(capsys, "plugins")
    assert code == 0 and "builtin:core" in out and "core.echo" in out
    assert max(len(line.rstrip()) for line in out.splitlines()) <= 80
    assert "``" not in out and ":mod:" not in out
    assert "architecture.scan" not in out and "internal steps" in out  # hidden ...
    code, out, _ = run_cli(capsys, "plugins", "--all")
    assert "architecture.scan" in out and ":mod:" not in out  # ... unless --all
    assert max(len(line.rstrip()) for line in out.splitlines()) <= 80
    listed = json.loads(run_cli(capsys, "plugins", "--json")[1])
    assert not any(h["internal"] for h in listed)


def test_plugins_name_shows_its_params(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "plugins", "core.shell")
    assert code == 0 and "builtin:core" in out and "kind     async" in out
    assert "list[string]" in out and "required" in out and "max_output" in out
    detail = json.loads(run_cli(capsys, "plugins", "core.sleep", "--json")[1])
    assert [p["name"] for p in detail["params"]] == ["seconds"]
    code, _, err = run_cli(capsys, "plugins", "core.shel")
    assert code == 2 and "did you mean core.shell" in err


def test_progress_display_renders(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "run", str(EXAMPLES / "retries.yaml"), "--progress", "always")
    assert code == 0
    assert "flaky" in err and "succeeded" in err  # the display is on stderr
    assert "flaky" not in out and json.loads(out) is not None


def test_ctrl_c_cancels_the_workflow_without_traceback(tmp_path: Path) -> None:
    import signal
    import time

    marker = tmp_path / "started"
    wf = tmp_path / "long.yaml"
    wf.write_text(
        "name: long\nsteps:\n"
        f"  - {{id: mark, handler: core.shell, params: {{args: [touch, '{marker}']}}}}\n"
        "  - {id: nap, handler: core.sleep, needs: [mark], params: {seconds: 600}}\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "corral", "run", str(wf)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the workflow never started"
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1
    assert "interrupted" in err and "cancelled" in err
    assert "Traceback" not in err


def test_bench_is_the_perf_suite(capsys: pytest.CaptureFixture[str]) -> None:
    """`corral bench ARGS` runs perf.main(ARGS): same parser, same cases."""
    code = main(["bench", "--list"])
    out, _ = capsys.readouterr()
    assert code == 0
    assert "throughput/single/corral-sqlite" in out.split()
    assert main(["bench", "--no-such-option"]) == 2
    assert "corral bench" in capsys.readouterr().err


def test_broken_pipe_is_quiet() -> None:
    """`corral plugins | head -1`: no traceback when the reader leaves."""
    proc = subprocess.run(
        f"{shutil.which('corral') or sys.executable + ' -m corral'} bench --list | head -1",
        shell=True,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.stdout.count("\n") == 1
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr


def test_every_error_is_one_line_and_verbose_adds_the_caret(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "name: x\ninputs: {x: {}}\nsteps:\n  - {id: a, handler: core.noop, when: 'inputs.x =='}\n"
    )
    code, _, err = run_cli(capsys, "validate", str(bad))
    assert code == 2 and err.count("\n") == 1 and err.startswith("corral: error: ")
    assert "invalid condition" in err and "^" not in err
    code, _, err = run_cli(capsys, "validate", str(bad), "--verbose")
    assert code == 2 and err.splitlines()[0].startswith("corral: error: ") and "^" in err


def test_line_separators_in_a_message_are_escaped() -> None:
    from corral.cli import one_line

    assert one_line("step a\u2028b\rc\u2029d failed") == "step a\\u2028b\\u000dc\\u2029d failed"
    assert one_line("first\n  second\n  ^^^\n") == "first | second"


# ---------------------------------------------------------------- validate

BAD = """name: bad
inputs:
  n: {type: integer, default: 1}
steps:
  - {id: a, handler: core.echo, params: {value: 1}, when: "inputs.m > 2"}
  - {id: b, handler: core.nope}
  - {id: c, handler: core.echo, params: {value: "${steps.zz.output}"}}
"""


def test_validate_reports_every_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    wf = tmp_path / "bad.yaml"
    wf.write_text(BAD)
    code, out, err = run_cli(capsys, "validate", str(wf))
    assert code == 2 and out == ""
    lines = err.splitlines()
    assert all(line.startswith("corral: error: ") for line in lines[:3])
    assert lines[0].endswith(
        ":5: $.steps[0].when: the condition reads input 'm', which the workflow does not "
        "declare; declared: n"
    )
    assert ":6: $.steps[1].handler: unknown handler 'core.nope'" in lines[1]
    assert ":7: $.steps[2].params.value:" in lines[2] and "'zz'" in lines[2]
    assert lines[-1].endswith("3 errors")

    code, out, _ = run_cli(capsys, "validate", str(wf), "--json")
    doc = json.loads(out)
    assert code == 2 and doc["valid"] is False
    assert [(e["line"], e["path"]) for e in doc["errors"]] == [
        (5, "$.steps[0].when"),
        (6, "$.steps[1].handler"),
        (7, "$.steps[2].params.value"),
    ]

    code, _, err = run_cli(capsys, "run", str(wf))  # other commands: the first, and a count
    assert code == 2 and "and 2 more error(s)" in err and "corral validate" in err


def test_a_condition_on_an_undeclared_input_fails_validation(tmp_path: Path) -> None:
    import corral

    spec = "name: w\nsteps:\n  - {id: a, handler: core.noop, when: \"inputs.size > 2 && 'inputs.x' != ''\"}\n"
    wf = tmp_path / "w.yaml"
    wf.write_text(spec)
    with pytest.raises(corral.SpecError, match="reads input 'size'") as caught:
        corral.load_file(wf)
    assert caught.value.path == "$.steps[0].when" and caught.value.more == []


def test_every_help_reads_at_80_columns(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import contextlib
    import re

    from corral.cli.app import _parser, _plugin_commands

    monkeypatch.setenv("COLUMNS", "80")
    commands = [""] + [
        name
        for action in _parser(_plugin_commands())._subparsers._group_actions  # type: ignore[union-attr]
        for name in action.choices
    ]
    assert {"run", "resume", "plugins", "serve", "vibe"} <= set(commands)
    for command in commands:
        argv = [command, "--help"] if command else ["--help"]
        with contextlib.suppress(SystemExit):  # (bench's parser returns instead)
            main(argv)
        out = capsys.readouterr().out
        assert out, command
        assert max(len(line) for line in out.splitlines()) <= 80, command
        assert not re.search(r"\bissue \d", out), command


def test_an_output_field_named_inputs_is_no_input(tmp_path: Path) -> None:
    import corral

    spec = (
        "name: w\nsteps:\n  - {id: a, handler: core.echo, params: {value: {inputs: {n: 3}}}}\n"
        "  - {id: b, handler: core.noop, needs: [a], when: 'steps.a.output.inputs.n > 2'}\n"
    )
    wf = tmp_path / "w.yaml"
    wf.write_text(spec)
    corral.load_file(wf)  # (was refused: "reads input 'n'")


@pytest.mark.parametrize("exits_after", [False, True])
def test_the_paused_collector_is_resumed_and_a_one_shot_freezes_first(
    monkeypatch: pytest.MonkeyPatch, exits_after: bool
) -> None:
    import gc

    from corral.cli import running

    monkeypatch.setattr(running, "EXITS_AFTER_COMMAND", exits_after)
    assert gc.isenabled()
    before = gc.get_freeze_count()
    try:
        with running._collector_paused():
            assert not gc.isenabled()
            made = [[i] for i in range(1000)]  # tracked objects the block allocated
        assert gc.isenabled()
        frozen = gc.get_freeze_count() - before
        # a one-shot command ends right after: no collection walks what it made
        assert (frozen >= len(made)) if exits_after else frozen == 0
    finally:
        gc.unfreeze()
