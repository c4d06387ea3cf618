"""Loading workflow files: every bad spec is a SpecError with the exact path and line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import tomli_w
import yaml

import corral
from corral.core.errors import InputError, SpecError
from corral.core.model import InputSpec, StepSpec, WorkflowSpec
from corral.plugins.manager import HandlerRegistry
from corral.workflow.loader import compile_spec, load_file, loads

POOLS = {"cpu": 2, "io": 64}


def doc(*lines: str) -> str:
    """A YAML document, one argument per line (so line numbers are easy to read)."""
    return "\n".join(lines) + "\n"


NOOP = ("  - id: a", "    handler: core.noop")


def one_step(*extra: str, handler: str = "core.noop", head: tuple[str, ...] = ()) -> str:
    """``name: x`` + optional header lines + one step ``a`` (on lines 3+len(head)...)."""
    return doc("name: x", *head, "steps:", "  - id: a", f"    handler: {handler}", *extra)


# (id, format, text, expected path, expected line, fragment of the message)
BAD: list[tuple[str, str, str, str, int | None, str]] = [
    # ------------------------------------------------------------ the document itself
    ("empty-doc", "yaml", "", "$", 1, "empty document"),
    ("comments-only", "yaml", "# nothing here\n", "$", 1, "empty document"),
    ("top-level-list", "yaml", "- a\n- b\n", "$", 1, "got a list"),
    ("top-level-scalar", "yaml", "hello\n", "$", 1, "got a string"),
    (
        "yaml-syntax",
        "yaml",
        doc("name: x", "steps:", "  - id: a", "   handler: core.noop"),
        "$",
        4,
        "invalid YAML",
    ),
    ("yaml-tab", "yaml", doc("name: x", "steps:", "\t- id: a"), "$", 3, "invalid YAML"),
    (
        "yaml-unsafe-tag",
        "yaml",
        doc("name: !!python/object:os.system x", "steps: []"),
        "$",
        1,
        "invalid YAML",
    ),
    (
        "yaml-duplicate-key",
        "yaml",
        doc("name: x", "steps:", *NOOP, "    handler: core.echo"),
        "$.steps[0].handler",
        5,
        "duplicate key 'handler' (first at line 4)",
    ),
    (
        "key-not-a-string",
        "yaml",
        one_step("    params: {1: one}", handler="core.echo"),
        "$.steps[0].params",
        5,
        "keys must be strings, got number 1",
    ),
    (
        "unquoted-date",
        "yaml",
        doc("name: x", "version: 2024-01-31", "steps:", *NOOP),
        "$.version",
        2,
        "date/time",
    ),
    # ------------------------------------------------------------ fields and types
    (
        "unknown-top-level-field",
        "yaml",
        doc("name: x", "stepz: []", "steps:", *NOOP),
        "$.stepz",
        2,
        "unknown field 'stepz' (did you mean 'steps'?)",
    ),
    (
        "unknown-step-field",
        "yaml",
        doc("name: x", "steps:", *NOOP, "  - id: b", "    handler: core.noop", "    need: [a]"),
        "$.steps[1].need",
        7,
        "unknown field 'need' (did you mean 'needs'?)",
    ),
    (
        "timeout-is-a-string",
        "yaml",
        one_step('    timeout: "5"'),
        "$.steps[0].timeout",
        5,
        "got `str`",
    ),
    (
        "needs-is-a-string",
        "yaml",
        doc("name: x", "steps:", *NOOP, "  - id: b", "    handler: core.noop", "    needs: a"),
        "$.steps[1].needs",
        7,
        "Expected `array`, got `str`",
    ),
    (
        "bool-is-not-an-int",
        "yaml",
        one_step("    retry: {attempts: true}"),
        "$.steps[0].retry.attempts",
        5,
        "got `bool`",
    ),
    ("missing-name", "yaml", doc("steps:", *NOOP), "$", 1, "missing required field 'name'"),
    ("missing-steps", "yaml", doc("name: x"), "$", 1, "missing required field 'steps'"),
    ("empty-name", "yaml", doc('name: ""', "steps:", *NOOP), "$.name", 1, "length >= 1"),
    ("empty-steps", "yaml", doc("name: x", "steps: []"), "$.steps", 2, "at least one step"),
    ("steps-not-a-list", "yaml", doc("name: x", "steps: {a: 1}"), "$.steps", 2, "`array`"),
    (
        "step-missing-id",
        "yaml",
        doc("name: x", "steps:", "  - handler: core.noop"),
        "$.steps[0]",
        3,
        "missing required field 'id'",
    ),
    (
        "bad-step-id",
        "yaml",
        doc("name: x", "steps:", "  - id: 9lives", "    handler: core.noop"),
        "$.steps[0].id",
        3,
        "matching regex",
    ),
    (
        "step-id-with-space",
        "yaml",
        doc("name: x", "steps:", *NOOP, '  - id: "b c"', "    handler: core.noop"),
        "$.steps[1].id",
        5,
        "matching regex",
    ),
    (
        "duplicate-step-id",
        "yaml",
        doc(
            "name: x",
            "steps:",
            *NOOP,
            "  - id: b",
            "    handler: core.noop",
            "  - id: a",
            "    handler: core.noop",
        ),
        "$.steps[2].id",
        7,
        "duplicate step id 'a' (first used at $.steps[0])",
    ),
    # ------------------------------------------------------------ the graph
    (
        "unknown-need",
        "yaml",
        doc(
            "name: x",
            "steps:",
            "  - id: build",
            "    handler: core.noop",
            "  - id: test",
            "    handler: core.noop",
            "  - id: ship",
            "    handler: core.noop",
            "    needs: [biuld, test]",
        ),
        "$.steps[2].needs[0]",
        9,
        "unknown step 'biuld' in needs (did you mean 'build'?)",
    ),
    (
        "second-need-unknown",
        "yaml",
        doc(
            "name: x",
            "steps:",
            *NOOP,
            "  - id: b",
            "    handler: core.noop",
            "    needs:",
            "      - a",
            "      - nope",
        ),
        "$.steps[1].needs[1]",
        9,
        "unknown step 'nope'",
    ),
    (
        "self-need",
        "yaml",
        one_step("    needs: [a]"),
        "$.steps[0].needs[0]",
        5,
        "step 'a' needs itself",
    ),
    (
        "two-step-cycle",
        "yaml",
        doc(
            "name: x",
            "steps:",
            "  - id: a",
            "    handler: core.noop",
            "    needs: [b]",
            "  - id: b",
            "    handler: core.noop",
            "    needs: [a]",
        ),
        "$.steps[0].needs[0]",
        5,
        "steps form a cycle: a -> b -> a",
    ),
    (
        "three-step-cycle",
        "yaml",
        doc(
            "name: x",
            "steps:",
            "  - id: start",
            "    handler: core.noop",
            "  - id: a",
            "    handler: core.noop",
            "    needs: [start, b]",
            "  - id: b",
            "    handler: core.noop",
            "    needs: [c]",
            "  - id: c",
            "    handler: core.noop",
            "    needs: [a]",
        ),
        "$.steps[1].needs[1]",
        7,
        "a -> b -> c -> a",
    ),
    # ------------------------------------------------------------ handlers and params
    (
        "unknown-handler",
        "yaml",
        one_step(handler="core.ech"),
        "$.steps[0].handler",
        4,
        "unknown handler 'core.ech' (did you mean 'core.echo'",
    ),
    (
        "unknown-handler-no-close-name",
        "yaml",
        one_step(handler="zzz.qqq"),
        "$.steps[0].handler",
        4,
        "(known handlers: architecture.* (5), core.* (5), restructure.* (6), vibe.* (10); "
        "`corral plugins` lists them)",
    ),
    (
        "handler-and-workflow",
        "yaml",
        one_step("    workflow: child.yaml"),
        "$.steps[0]",
        3,
        "either a 'handler' or a child 'workflow', not both",
    ),
    (
        "neither-handler-nor-workflow",
        "yaml",
        doc("name: x", "steps:", "  - id: a", "    needs: []"),
        "$.steps[0]",
        3,
        "needs a 'handler' or a child 'workflow'",
    ),
    (
        "unknown-param",
        "yaml",
        one_step("    params:", "      valu: 1", handler="core.echo"),
        "$.steps[0].params.valu",
        6,
        "core.echo has no param 'valu' (did you mean 'value'?)",
    ),
    (
        "missing-required-param",
        "yaml",
        one_step(handler="core.sleep"),
        "$.steps[0].params",
        3,
        "core.sleep: missing required param 'seconds'",
    ),
    (
        "param-wrong-type",
        "yaml",
        one_step("    params: {seconds: soon}", handler="core.sleep"),
        "$.steps[0].params.seconds",
        5,
        "core.sleep: Expected `float`, got `str`",
    ),
    (
        "param-out-of-range",
        "yaml",
        one_step("    params: {seconds: -1}", handler="core.sleep"),
        "$.steps[0].params.seconds",
        5,
        ">= 0",
    ),
    (
        "param-list-item-wrong-type",
        "yaml",
        one_step("    params:", "      args: [ls, 5]", handler="core.shell"),
        "$.steps[0].params.args[1]",
        6,
        "core.shell: Expected `str`, got `int`",
    ),
    (
        "param-mapping-value-wrong-type",
        "yaml",
        one_step(
            "    params:",
            "      args: [env]",
            "      env:",
            "        A: ok",
            "        B: 2",
            handler="core.shell",
        ),
        "$.steps[0].params.env.B",
        9,
        "Expected `str`, got `int`",
    ),
    (
        "literal-param-wrong-type-beside-a-reference",
        "yaml",
        one_step(
            '    params: {args: ["${inputs.cmd}"], timeout: soon}',
            handler="core.shell",
            head=("inputs: {cmd: {type: string}}",),
        ),
        "$.steps[0].params.timeout",
        6,
        "core.shell: Expected `float | null`, got `str`",
    ),
    (
        "missing-param-beside-a-reference",
        "yaml",
        one_step(
            '    params: {cwd: "${inputs.dir}"}',
            handler="core.shell",
            head=("inputs: {dir: {type: string}}",),
        ),
        "$.steps[0].params",
        6,
        "core.shell: missing required param 'args'",
    ),
    # ------------------------------------------------------------ references
    (
        "undeclared-input",
        "yaml",
        one_step(
            '    params: {value: "${inputs.nope}"}',
            handler="core.echo",
            head=("inputs: {path: {type: string}}",),
        ),
        "$.steps[0].params.value",
        6,
        "refers to undeclared input 'nope' (declared: path)",
    ),
    (
        "reference-to-unknown-step",
        "yaml",
        doc(
            "name: x",
            "steps:",
            "  - id: scan",
            "    handler: core.noop",
            "  - id: b",
            "    handler: core.echo",
            "    needs: [scan]",
            '    params: {value: "${steps.scna.output}"}',
        ),
        "$.steps[1].params.value",
        8,
        "unknown step 'scna' (did you mean 'scan'?)",
    ),
    (
        "reference-to-step-not-upstream",
        "yaml",
        doc(
            "name: x",
            "steps:",
            "  - id: a",
            "    handler: core.noop",
            "  - id: b",
            "    handler: core.echo",
            "    params:",
            "      value: [1, {k: '${steps.a.output.files[0]}'}]",
        ),
        "$.steps[1].params.value[1].k",
        8,
        "refers to step 'a', which is not upstream of 'b'; add it to needs",
    ),
    (
        "reference-to-own-output",
        "yaml",
        one_step('    params: {value: "${steps.a.output}"}', handler="core.echo"),
        "$.steps[0].params.value",
        5,
        "cannot use its own output",
    ),
    (
        "malformed-reference-root",
        "yaml",
        one_step('    params: {value: "x=${foo.bar}"}', handler="core.echo"),
        "$.steps[0].params.value",
        5,
        "${foo.bar}: a reference starts with 'inputs.' or 'steps.'",
    ),
    (
        "step-reference-without-output",
        "yaml",
        doc(
            "name: x",
            "steps:",
            *NOOP,
            "  - id: b",
            "    handler: core.echo",
            "    needs: [a]",
            '    params: {value: "${steps.a}"}',
        ),
        "$.steps[1].params.value",
        8,
        "${steps.a}: step references look like ${steps.<id>.output}",
    ),
    (
        "unterminated-reference",
        "yaml",
        one_step(
            '    params: {value: "${inputs.n"}',
            handler="core.echo",
            head=("inputs: {n: {}}",),
        ),
        "$.steps[0].params.value",
        6,
        "unterminated reference",
    ),
    (
        "bad-reference-in-output",
        "yaml",
        doc("name: x", "steps:", *NOOP, "output:", '  total: "${steps.b.output}"'),
        "$.output.total",
        6,
        "refers to unknown step 'b'",
    ),
    (
        "reference-index-of-4301-digits",
        "yaml",
        doc(
            "name: x",
            "steps:",
            *NOOP,
            "  - id: b",
            "    handler: core.echo",
            "    needs: [a]",
            '    params: {value: "${steps.a.output[' + "9" * 4301 + ']}"}',
        ),
        "$.steps[1].params.value",
        8,
        "is too large (at most 18 digits)",
    ),
    # ------------------------------------------------------------ conditions and keys
    (
        "when-syntax-error",
        "yaml",
        one_step('    when: "inputs.x =="', head=("inputs: {x: {}}",)),
        "$.steps[0].when",
        6,
        "invalid condition",
    ),
    (
        "when-unknown-name",
        "yaml",
        one_step('    when: "input.strict"'),
        "$.steps[0].when",
        5,
        "unknown name 'input'",
    ),
    (
        "when-constant-not-boolean",
        "yaml",
        one_step('    when: "1 + 2"'),
        "$.steps[0].when",
        5,
        "gave int 3, not a boolean",
    ),
    (
        "when-too-long",
        "yaml",
        one_step(f'    when: "{" || ".join(["true"] * 300)}"'),
        "$.steps[0].when",
        5,
        "too long",
    ),
    (
        "concurrency-key-unknown-name",
        "yaml",
        one_step("    concurrency:", "      key: steps.a.output"),
        "$.steps[0].concurrency.key",
        6,
        "invalid key expression: unknown name 'steps'",
    ),
    (
        "concurrency-key-syntax-error",
        "yaml",
        one_step("    concurrency: {key: 'params.x +', limit: 2}"),
        "$.steps[0].concurrency.key",
        5,
        "invalid key expression",
    ),
    (
        "concurrency-limit-zero",
        "yaml",
        one_step("    concurrency: {key: inputs.x, limit: 0}"),
        "$.steps[0].concurrency.limit",
        5,
        ">= 1",
    ),
    # ------------------------------------------------------------ retry, timeout, resources
    (
        "retry-zero-attempts",
        "yaml",
        one_step("    retry:", "      attempts: 0"),
        "$.steps[0].retry.attempts",
        6,
        "Expected `int` >= 1",
    ),
    (
        "retry-unknown-field",
        "yaml",
        one_step("    retry: {attempts: 2, backof: 1}"),
        "$.steps[0].retry.backof",
        5,
        "did you mean 'backoff'",
    ),
    (
        "negative-timeout",
        "yaml",
        one_step("    timeout: -1"),
        "$.steps[0].timeout",
        5,
        "> 0",
    ),
    (
        "unknown-resource-pool",
        "yaml",
        one_step("    resources:", "      cpu: 1", "      gpu: 1"),
        "$.steps[0].resources.gpu",
        7,
        "unknown resource pool 'gpu'",
    ),
    (
        "too-many-units",
        "yaml",
        one_step("    resources: {cpu: 3}"),
        "$.steps[0].resources.cpu",
        5,
        "asks for 3 of pool 'cpu', which has only 2",
    ),
    (
        "zero-units",
        "yaml",
        one_step("    resources:", "      cpu: 1", "      io: 0"),
        "$.steps[0].resources.io",
        7,
        ">= 1",
    ),
    # ------------------------------------------------------------ settings and inputs
    (
        "on-failure-bad-literal",
        "yaml",
        doc("name: x", "settings:", "  on_failure: explode", "steps:", *NOOP),
        "$.settings.on_failure",
        3,
        "invalid value 'explode'; expected one of: 'fail_fast', 'continue'",
    ),
    (
        "max-parallel-zero",
        "yaml",
        doc("name: x", "settings: {max_parallel_steps: 0}", "steps:", *NOOP),
        "$.settings.max_parallel_steps",
        2,
        ">= 1",
    ),
    (
        "bad-input-type-literal",
        "yaml",
        doc(
            "name: x",
            "inputs:",
            "  path: {type: string}",
            "  n:",
            "    type: int",
            "steps:",
            *NOOP,
        ),
        "$.inputs.n.type",
        5,
        "invalid value 'int'; expected one of: 'string', 'integer'",
    ),
    (
        "input-unknown-field",
        "yaml",
        doc("name: x", "inputs:", "  n:", "    typ: integer", "steps:", *NOOP),
        "$.inputs.n.typ",
        4,
        "did you mean 'type'",
    ),
    (
        "input-default-wrong-type",
        "yaml",
        doc(
            "name: x", "inputs:", "  n:", "    type: integer", "    default: many", "steps:", *NOOP
        ),
        "$.inputs.n.default",
        5,
        "the default of input 'n' is not of its type integer",
    ),
    (
        "input-default-bool-is-not-integer",
        "yaml",
        doc("name: x", "inputs:", "  n: {type: integer, default: true}", "steps:", *NOOP),
        "$.inputs.n.default",
        3,
        "not of its type integer",
    ),
    # ------------------------------------------------------------ child workflows
    (
        "child-workflow-file-missing",
        "yaml",
        doc("name: x", "steps:", "  - id: a", "    workflow: no-such-child.yaml"),
        "$.steps[0].workflow",
        4,
        "child workflow file 'no-such-child.yaml' not found",
    ),
    (
        "inline-child-error",
        "yaml",
        doc(
            "name: x",
            "steps:",
            "  - id: a",
            "    workflow:",
            "      name: inner",
            "      steps:",
            "        - id: z",
            "          handler: core.ech",
        ),
        "$.steps[0].workflow.steps[0].handler",
        8,
        "unknown handler 'core.ech'",
    ),
    (
        "inline-child-unknown-input",
        "yaml",
        doc(
            "name: x",
            "steps:",
            "  - id: a",
            "    workflow:",
            "      name: inner",
            "      inputs: {n: {type: integer}}",
            "      steps: [{id: z, handler: core.noop}]",
            "    params:",
            "      n: 1",
            "      m: 2",
        ),
        "$.steps[0].params.m",
        10,
        "child workflow 'inner' has no input 'm'",
    ),
    (
        "inline-child-input-wrong-type",
        "yaml",
        doc(
            "name: x",
            "steps:",
            "  - id: a",
            "    workflow: {name: inner, inputs: {n: {type: integer}},",
            "               steps: [{id: z, handler: core.noop}]}",
            "    params: {n: '7'}",
        ),
        "$.steps[0].params.n",
        6,
        "input 'n' must be of type integer, got str '7'",
    ),
    (
        "inline-child-bad-input-type",
        "yaml",
        doc(
            "name: x",
            "steps:",
            "  - id: a",
            "    workflow:",
            "      name: inner",
            "      inputs:",
            "        m: {type: string}",
            "        n: {type: float}",
            "      steps: [{id: z, handler: core.noop}]",
        ),
        "$.steps[0].workflow.inputs.n.type",
        8,
        "invalid value 'float'",
    ),
    (
        "cached-child",
        "yaml",
        doc(
            "name: x",
            "steps:",
            "  - id: a",
            "    workflow: {name: inner, steps: [{id: z, handler: core.noop}]}",
            "    cache: true",
        ),
        "$.steps[0].cache",
        5,
        "cannot be cached",
    ),
    # ------------------------------------------------------------ TOML
    (
        "toml-syntax",
        "toml",
        'name = "x"\n[[steps]]\nid = "a"\nhandler =\n',
        "$",
        4,
        "invalid TOML",
    ),
    (
        "toml-duplicate-key",
        "toml",
        'name = "x"\nname = "y"\n',
        "$",
        2,
        "invalid TOML",
    ),
    (
        "toml-timeout-is-a-string",
        "toml",
        'name = "x"\n[[steps]]\nid = "a"\nhandler = "core.noop"\ntimeout = "5"\n',
        "$.steps[0].timeout",
        None,
        "got `str`",
    ),
    (
        "toml-unknown-field",
        "toml",
        'name = "x"\ncolour = "red"\n[[steps]]\nid = "a"\nhandler = "core.noop"\n',
        "$.colour",
        None,
        "unknown field 'colour'",
    ),
    (
        "toml-cycle",
        "toml",
        'name = "x"\n'
        '[[steps]]\nid = "a"\nhandler = "core.noop"\nneeds = ["b"]\n'
        '[[steps]]\nid = "b"\nhandler = "core.noop"\nneeds = ["a"]\n',
        "$.steps[0].needs[0]",
        None,
        "a -> b -> a",
    ),
    (
        "toml-date",
        "toml",
        'name = "x"\n[[steps]]\nid = "a"\nhandler = "core.echo"\nparams = {value = 1979-05-27}\n',
        "$.steps[0].params.value",
        None,
        "date/time",
    ),
    (
        "toml-missing-required-param",
        "toml",
        'name = "x"\n[[steps]]\nid = "a"\nhandler = "core.sleep"\n',
        "$.steps[0].params",
        None,
        "missing required param 'seconds'",
    ),
    # ------------------------------------------------------------ JSON
    ("json-syntax", "json", '{"name": "x",\n "steps": [\n}', "$", 3, "invalid JSON"),
    ("json-top-level-list", "json", "[1, 2]", "$", None, "got a list"),
    (
        "json-duplicate-key",
        "json",
        '{"name": "x", "name": "y", "steps": []}',
        "$",
        None,
        "duplicate key 'name'",
    ),
    (
        "json-needs-is-a-string",
        "json",
        json.dumps(
            {
                "name": "x",
                "steps": [
                    {"id": "a", "handler": "core.noop"},
                    {"id": "b", "handler": "core.noop", "needs": "a"},
                ],
            }
        ),
        "$.steps[1].needs",
        None,
        "got `str`",
    ),
    (
        "json-unknown-handler",
        "json",
        json.dumps({"name": "x", "steps": [{"id": "a", "handler": "core.slep"}]}),
        "$.steps[0].handler",
        None,
        "did you mean 'core.sleep'",
    ),
    (
        "json-too-deep",
        "json",
        '{"name": "x", "steps": [{"id": "a", "handler": "core.echo", "params": {"value": '
        + "[" * 5000
        + "]" * 5000
        + "}}]}",
        "$",
        None,
        "nested too deeply",
    ),
]


def _load_bad(text: str, fmt: str, registry: HandlerRegistry) -> SpecError:
    with pytest.raises(SpecError) as info:
        loads(text, fmt=fmt, file=f"wf.{fmt}", handlers=registry, pools=POOLS)
    return info.value


@pytest.mark.parametrize(
    ("fmt", "text", "path", "line", "fragment"),
    [case[1:] for case in BAD],
    ids=[case[0] for case in BAD],
)
def test_bad_spec(
    registry: HandlerRegistry, fmt: str, text: str, path: str, line: int | None, fragment: str
) -> None:
    err = _load_bad(text, fmt, registry)
    assert err.path == path, str(err)
    assert err.line == line, str(err)
    assert fragment in err.message, str(err)
    assert err.file == f"wf.{fmt}"
    rendered = str(err)
    assert rendered.startswith(f"wf.{fmt}"), rendered
    assert f": {path}: " in rendered
    if line is not None:
        assert rendered.startswith(f"wf.{fmt}:{line}: ")


def test_there_are_at_least_30_distinct_bad_cases() -> None:
    ids = [case[0] for case in BAD]
    assert len(ids) == len(set(ids)) >= 30
    assert len({case[2] for case in BAD}) == len(BAD), "two cases share one document"


def test_bad_utf8_is_a_spec_error(registry: HandlerRegistry) -> None:
    err = _load_bad(b"name: \xff\xfe\n", "yaml", registry)  # type: ignore[arg-type]
    assert "not UTF-8" in err.message


def test_unknown_format(registry: HandlerRegistry) -> None:
    err = _load_bad("name: x", "xml", registry)
    assert "unknown format 'xml'" in err.message


def test_recursive_yaml_alias_is_a_spec_error(registry: HandlerRegistry) -> None:
    text = doc(
        "name: x",
        "steps: &s",
        "  - id: a",
        "    handler: core.echo",
        "    params: {value: *s}",
    )
    err = _load_bad(text, "yaml", registry)
    assert "nested too deeply" in err.message
    assert err.path.startswith("$.steps[0].params.value[0].params.value")


def test_billion_laughs_is_refused_quickly(registry: HandlerRegistry) -> None:
    lines = ["name: x", "steps:", *NOOP, "description: &a0 lol"]
    for i in range(1, 10):
        prev = f"*a{i - 1}"
        lines.append(f"x{i}: &a{i} [{', '.join([prev] * 10)}]")
    err = _load_bad(doc(*lines), "yaml", registry)
    # Either the unknown field or the size guard; never a hang or MemoryError.
    assert err.path in ("$.x1",) or "too large" in err.message


def test_billion_laughs_inside_params(registry: HandlerRegistry) -> None:
    lines = ["name: x", "steps:", "  - id: a", "    handler: core.echo", "    params:"]
    lines.append("      value:")
    lines.append("        a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]")
    for i in range(1, 9):
        lines.append(f"        a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]")
    err = _load_bad(doc(*lines), "yaml", registry)
    assert "too large" in err.message


def test_many_bad_things_report_the_first_in_document_order(registry: HandlerRegistry) -> None:
    text = doc(
        "name: x",
        "steps:",
        "  - id: a",
        "    handler: core.noop",
        "    timeout: -1",
        "  - id: b",
        "    handler: core.noop",
        "    timeout: -2",
    )
    err = _load_bad(text, "yaml", registry)
    assert err.path == "$.steps[0].timeout"


def test_bad_entry_in_a_large_mapping_is_found(registry: HandlerRegistry) -> None:
    inputs = {f"i{k}": {"type": "string"} for k in range(20_000)}
    inputs["i19999"] = {"type": "text"}
    text = json.dumps(
        {"name": "x", "inputs": inputs, "steps": [{"id": "a", "handler": "core.noop"}]}
    )
    err = _load_bad(text, "json", registry)
    assert err.path == "$.inputs.i19999.type"


def test_odd_keys_are_quoted_in_paths(registry: HandlerRegistry) -> None:
    text = doc("name: x", "steps:", *NOOP, "    resources:", '      "my pool": 1')
    err = _load_bad(text, "yaml", registry)
    assert err.path == '$.steps[0].resources["my pool"]'
    assert err.line == 6


# ---------------------------------------------------------------- inputs at bind time

INPUTS_DOC = doc(
    "name: x",
    "inputs:",
    "  n: {type: integer}",
    "  ratio: {type: number, default: 0.5}",
    "  strict: {type: boolean, default: false}",
    "steps:",
    "  - id: a",
    "    handler: core.echo",
    '    params: {value: "${inputs.n}"}',
)


@pytest.mark.parametrize(
    ("given", "path", "fragment"),
    [
        ({"n": "7"}, "$.inputs.n", "input 'n' must be of type integer, got str '7'"),
        ({"n": True}, "$.inputs.n", "must be of type integer, got bool True"),
        ({"n": 1.5}, "$.inputs.n", "must be of type integer"),
        ({"n": 1, "ratio": "half"}, "$.inputs.ratio", "must be of type number"),
        ({"n": 1, "strict": 1}, "$.inputs.strict", "must be of type boolean"),
        ({"n": 1, "extra": 2}, "$.inputs.extra", "unknown input 'extra'"),
        ({}, "$.inputs.n", "missing required input 'n' (integer)"),
        (None, "$.inputs.n", "missing required input 'n'"),
    ],
)
def test_bind_time_input_errors(
    registry: HandlerRegistry, given: dict[str, Any] | None, path: str, fragment: str
) -> None:
    plan = loads(INPUTS_DOC, file="wf.yaml", handlers=registry, pools=POOLS)
    with pytest.raises(InputError) as info:
        plan.bind_inputs(given)
    err = info.value
    assert isinstance(err, SpecError)
    assert err.path == path
    assert fragment in err.message
    assert str(err).startswith("wf.yaml")
    assert path in str(err)


def test_bind_inputs_fills_defaults(registry: HandlerRegistry) -> None:
    plan = loads(INPUTS_DOC, file="wf.yaml", handlers=registry, pools=POOLS)
    assert plan.bind_inputs({"n": 3}) == {"n": 3, "ratio": 0.5, "strict": False}


# ---------------------------------------------------------------- files


def test_load_file_child_workflows(tmp_path: Path, registry: HandlerRegistry) -> None:
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "child.yaml").write_text(
        doc(
            "name: child",
            "inputs: {n: {type: integer}}",
            "steps:",
            "  - id: c",
            "    handler: core.echo",
            '    params: {value: "${inputs.n}"}',
        )
    )
    (tmp_path / "main.yaml").write_text(
        doc(
            "name: parent",
            "steps:",
            "  - id: p",
            "    workflow: lib/child.yaml",
            "    params: {n: 1}",
        )
    )
    plan = load_file(tmp_path / "main.yaml", handlers=registry, pools=POOLS)
    child = plan.steps[0].child
    assert child is not None and child.name == "child"


def test_load_file_child_with_an_error(tmp_path: Path, registry: HandlerRegistry) -> None:
    (tmp_path / "child.yaml").write_text(doc("name: child", "steps:", "  - id: c"))
    main = tmp_path / "main.yaml"
    main.write_text(doc("name: parent", "steps:", "  - id: p", "    workflow: child.yaml"))
    with pytest.raises(SpecError) as info:
        load_file(main, handlers=registry, pools=POOLS)
    err = info.value
    assert err.path == "$.steps[0].workflow"
    assert err.line == 4
    assert str(main) in str(err)
    assert "child.yaml:3: $.steps[0]: a step needs a 'handler'" in err.message


def test_load_file_child_missing_says_where_it_looked(
    tmp_path: Path, registry: HandlerRegistry
) -> None:
    main = tmp_path / "main.yaml"
    main.write_text(doc("name: parent", "steps:", "  - id: p", "    workflow: gone.yaml"))
    with pytest.raises(SpecError) as info:
        load_file(main, handlers=registry, pools=POOLS)
    assert info.value.path == "$.steps[0].workflow"
    assert str(tmp_path) in info.value.message


def test_load_file_children_including_each_other(tmp_path: Path, registry: HandlerRegistry) -> None:
    for me, other in (("a", "b"), ("b", "a")):
        (tmp_path / f"{me}.yaml").write_text(
            doc(f"name: {me}", "steps:", "  - id: s", f"    workflow: {other}.yaml")
        )
    with pytest.raises(SpecError) as info:
        load_file(tmp_path / "a.yaml", handlers=registry, pools=POOLS)
    assert "include each other" in str(info.value)


@pytest.mark.parametrize(
    ("name", "content", "fragment"),
    [
        ("missing.yaml", None, "no such file"),
        ("wf.txt", "name: x", "cannot tell the format"),
        ("binary.yaml", b"\x00\xff\xfe", "not UTF-8"),
        ("dir.yaml", "DIR", "directory"),
    ],
)
def test_load_file_bad_files(
    tmp_path: Path, registry: HandlerRegistry, name: str, content: Any, fragment: str
) -> None:
    path = tmp_path / name
    if content == "DIR":
        path.mkdir()
    elif isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    with pytest.raises(SpecError) as info:
        load_file(path, handlers=registry, pools=POOLS)
    assert fragment in info.value.message
    assert str(path) in str(info.value)


def test_load_file_reports_yaml_lines(tmp_path: Path, registry: HandlerRegistry) -> None:
    path = tmp_path / "wf.yml"
    path.write_text(doc("name: x", "steps:", *NOOP, "  - id: b", "    handler: core.ech"))
    with pytest.raises(SpecError) as info:
        load_file(path, handlers=registry, pools=POOLS)
    assert (info.value.path, info.value.line) == ("$.steps[1].handler", 6)
    assert str(info.value).startswith(f"{path}:6: $.steps[1].handler: ")


# ---------------------------------------------------------------- valid specs

DESIGN_YAML = """\
name: release-check
version: 1
inputs:
  path: {type: string}
  strict: {type: boolean, default: false}
settings: {on_failure: fail_fast, timeout: 600, max_parallel_steps: 8}
steps:
  - id: scan
    handler: core.shell
    params: {args: [git, -C, "${inputs.path}", ls-files]}
  - id: count
    handler: core.echo
    needs: [scan]
    params: {value: "${steps.scan.output.stdout}"}
    retry: {attempts: 3, backoff: 0.5}
    timeout: 30
    resources: {cpu: 1}
  - id: report
    handler: core.echo
    needs: [count]
    when: "inputs.strict"
    params: {value: ["${steps.count.output}", "done"]}
"""

DESIGN_TOML = """\
name = "release-check"
version = 1

[inputs.path]
type = "string"

[inputs.strict]
type = "boolean"
default = false

[settings]
on_failure = "fail_fast"
timeout = 600
max_parallel_steps = 8

[[steps]]
id = "scan"
handler = "core.shell"
params = { args = ["git", "-C", "${inputs.path}", "ls-files"] }

[[steps]]
id = "count"
handler = "core.echo"
needs = ["scan"]
params = { value = "${steps.scan.output.stdout}" }
retry = { attempts = 3, backoff = 0.5 }
timeout = 30
resources = { cpu = 1 }

[[steps]]
id = "report"
handler = "core.echo"
needs = ["count"]
when = "inputs.strict"
params = { value = ["${steps.count.output}", "done"] }
"""


def test_design_example_loads_the_same_from_yaml_toml_and_json(
    registry: HandlerRegistry,
) -> None:
    as_json = json.dumps(yaml.safe_load(DESIGN_YAML), indent=2)
    plans = [
        loads(DESIGN_YAML, "yaml", file="wf.yaml", handlers=registry, pools=POOLS),
        loads(DESIGN_TOML, "toml", file="wf.toml", handlers=registry, pools=POOLS),
        loads(as_json, "json", file="wf.json", handlers=registry, pools=POOLS),
    ]
    specs = [p.spec for p in plans]
    assert specs[0] == specs[1] == specs[2]
    assert len({p.digest for p in plans}) == 1
    plan = plans[0]
    assert isinstance(plan, corral.Plan)
    assert plan.bound
    assert [s.id for s in plan.steps] == ["scan", "count", "report"]
    assert plan.order == [0, 1, 2]
    assert plan.sinks == (2,)
    assert plan.steps[2].ancestors == frozenset({0, 1})
    assert plan.steps[1].retry.attempts == 3
    assert plan.steps[2].when is not None
    assert plan.bind_inputs({"path": "."}) == {"path": ".", "strict": False}


@pytest.mark.parametrize("fmt", ["yaml", "json", "toml"])
def test_dumped_spec_round_trips(registry: HandlerRegistry, fmt: str) -> None:
    raw = yaml.safe_load(DESIGN_YAML)
    text = {"yaml": yaml.safe_dump, "json": json.dumps, "toml": tomli_w.dumps}[fmt](raw)
    plan = loads(text, fmt, handlers=registry, pools=POOLS)
    assert plan.spec == loads(DESIGN_YAML, handlers=registry).spec


def test_load_file_formats_agree(tmp_path: Path, registry: HandlerRegistry) -> None:
    (tmp_path / "wf.yaml").write_text(DESIGN_YAML)
    (tmp_path / "wf.toml").write_text(DESIGN_TOML)
    (tmp_path / "wf.json").write_text(json.dumps(yaml.safe_load(DESIGN_YAML)))
    specs = [
        load_file(tmp_path / n, handlers=registry).spec for n in ("wf.yaml", "wf.toml", "wf.json")
    ]
    assert specs[0] == specs[1] == specs[2]


def test_static_params_are_converted_once_and_escapes_applied(registry: HandlerRegistry) -> None:
    text = one_step(
        "    params:", "      value: ['$${not a ref}', 'cost: $$5']", handler="core.echo"
    )
    plan = loads(text, handlers=registry)
    step = plan.steps[0]
    assert step.static_params.value == ["${not a ref}", "cost: $$5"]
    assert step.params == {"value": ["${not a ref}", "cost: $$5"]}


def test_params_with_references_are_converted_at_run_time(registry: HandlerRegistry) -> None:
    plan = loads(INPUTS_DOC, handlers=registry)
    assert plan.steps[0].static_params is __import__("msgspec").UNSET


def test_without_registry_only_structure_is_checked() -> None:
    plan = loads(one_step(handler="made.up"))
    assert not plan.bound
    assert plan.steps[0].handler is None


def test_yaml_merge_keys_are_not_duplicates(registry: HandlerRegistry) -> None:
    text = doc(
        "name: x",
        "steps:",
        "  - &base {id: a, handler: core.echo, params: {value: 1}}",
        "  - <<: *base",
        "    id: b",
    )
    plan = loads(text, handlers=registry)
    assert [s.id for s in plan.steps] == ["a", "b"]


def test_long_chain_loads(registry: HandlerRegistry) -> None:
    steps = [{"id": "s0", "handler": "core.noop"}]
    steps += [
        {"id": f"s{i}", "handler": "core.noop", "needs": [f"s{i - 1}"]} for i in range(1, 3000)
    ]
    plan = loads(json.dumps({"name": "chain", "steps": steps}), "json", handlers=registry)
    assert len(plan.steps[-1].ancestors) == 2999
    assert plan.order == list(range(3000))


def test_long_cycle_is_named(registry: HandlerRegistry) -> None:
    n = 2000
    steps = [
        {"id": f"s{i}", "handler": "core.noop", "needs": [f"s{(i + 1) % n}"]} for i in range(n)
    ]
    with pytest.raises(SpecError) as info:
        loads(json.dumps({"name": "ring", "steps": steps}), "json", handlers=registry)
    assert info.value.path == "$.steps[0].needs[0]"
    assert info.value.message.startswith("steps form a cycle: s0 -> s1 -> s2")


# ---------------------------------------------------------------- specs built in Python


def test_python_built_specs_are_validated_too(registry: HandlerRegistry) -> None:
    bad_id = WorkflowSpec(name="x", steps=[StepSpec(id="not valid!", handler="core.noop")])
    with pytest.raises(SpecError) as info:
        compile_spec(bad_id, handlers=registry)
    assert info.value.path == "$.steps[0].id"

    negative = WorkflowSpec(name="x", steps=[StepSpec(id="a", handler="core.noop", timeout=-1)])
    with pytest.raises(SpecError) as info:
        compile_spec(negative, handlers=registry)
    assert info.value.path == "$.steps[0].timeout"

    weird = WorkflowSpec(
        name="x", steps=[StepSpec(id="a", handler="core.echo", params={"value": object()})]
    )
    with pytest.raises(SpecError):
        compile_spec(weird, handlers=registry)

    ok = WorkflowSpec(
        name="x",
        inputs={"n": InputSpec(type="integer", default=1)},
        steps=[StepSpec(id="a", handler="core.echo", params={"value": "${inputs.n}"})],
    )
    assert compile_spec(ok, handlers=registry).steps[0].id == "a"


def test_compile_spec_rejects_other_objects() -> None:
    with pytest.raises(SpecError):
        compile_spec({"name": "x"})  # type: ignore[arg-type]


# ---------------------------------------------------------------- fuzzing: SpecError or success

from hypothesis import HealthCheck, Phase, assume, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

FUZZ = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
)

# Text biased towards the syntax of the three formats and of references/conditions.
SYNTAX = [*"{}[]:,-#&*!|>'\"=.\n\t $\\", "${", "$${", "steps", "inputs", "output", "- id: "]
fuzz_text = st.one_of(
    st.text(max_size=300),
    st.lists(st.sampled_from(SYNTAX) | st.text(max_size=5), max_size=60).map("".join),
)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True),
    st.text(max_size=20),
    st.sampled_from(
        ["core.echo", "core.sleep", "a", "b", "${inputs.x}", "${steps.a.output}", "${", "true"]
    ),
)
keys = st.one_of(
    st.text(max_size=10),
    st.sampled_from(
        [
            "name",
            "steps",
            "id",
            "handler",
            "params",
            "needs",
            "when",
            "retry",
            "timeout",
            "resources",
            "inputs",
            "settings",
            "output",
            "workflow",
            "cache",
            "concurrency",
            "value",
            "seconds",
            "type",
            "default",
            "attempts",
            "cpu",
            "key",
        ]
    ),
)
json_like = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=5),
    max_leaves=25,
)


def _dump(value: Any, fmt: str) -> str:
    if fmt == "yaml":
        return yaml.safe_dump(value, allow_unicode=True)
    if fmt == "json":
        return json.dumps(value)
    return tomli_w.dumps(value)


def _must_be_spec_error_or_plan(text: str | bytes, fmt: str, registry: HandlerRegistry) -> None:
    try:
        plan = loads(text, fmt=fmt, file=f"fuzz.{fmt}", handlers=registry, pools=POOLS)
    except SpecError as err:
        assert err.path.startswith("$")
        assert str(err).startswith(f"fuzz.{fmt}")
        assert err.line is None or err.line >= 1
    else:
        assert isinstance(plan, corral.Plan)


@FUZZ
@given(text=fuzz_text, fmt=st.sampled_from(["yaml", "toml", "json"]))
def test_fuzz_random_text(registry: HandlerRegistry, text: str, fmt: str) -> None:
    _must_be_spec_error_or_plan(text, fmt, registry)


@FUZZ
@given(data=st.binary(max_size=200), fmt=st.sampled_from(["yaml", "toml", "json"]))
def test_fuzz_random_bytes(registry: HandlerRegistry, data: bytes, fmt: str) -> None:
    _must_be_spec_error_or_plan(data, fmt, registry)


@FUZZ
@given(value=json_like, fmt=st.sampled_from(["yaml", "toml", "json"]))
def test_fuzz_random_structures(registry: HandlerRegistry, value: Any, fmt: str) -> None:
    try:
        text = _dump(value, fmt)
    except Exception:  # the dumper refuses it (TOML: no null, a table at the top)
        assume(False)
    _must_be_spec_error_or_plan(text, fmt, registry)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, (*prefix, i))
    return out


def _get(value: Any, path: tuple[Any, ...]) -> Any:
    for p in path:
        value = value[p]
    return value


@st.composite
def mutated_specs(draw: st.DrawFn) -> Any:
    spec = yaml.safe_load(DESIGN_YAML)
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        paths = _paths(spec)
        path = draw(st.sampled_from(paths))
        op = draw(st.sampled_from(["replace", "delete", "insert", "duplicate", "stringify"]))
        if not path:
            if op == "replace":
                spec = draw(json_like)
            continue
        parent = _get(spec, path[:-1])
        last = path[-1]
        if op == "replace":
            parent[last] = draw(json_like)
        elif op == "delete":
            del parent[last]
        elif op == "insert":
            target = parent[last]
            if isinstance(target, dict):
                target[draw(keys)] = draw(json_like)
            elif isinstance(target, list):
                target.insert(draw(st.integers(0, len(target))), draw(json_like))
            else:
                parent[last] = [target, draw(json_like)]
        elif op == "duplicate":
            if isinstance(parent, list):
                parent.append(json.loads(json.dumps(parent[last])))
            else:
                parent[draw(keys)] = json.loads(json.dumps(parent[last]))
        else:
            parent[last] = json.dumps(parent[last]) if not isinstance(parent[last], str) else 5
    return spec


@FUZZ
@given(spec=mutated_specs(), fmt=st.sampled_from(["yaml", "json", "toml"]))
def test_fuzz_mutated_valid_spec(registry: HandlerRegistry, spec: Any, fmt: str) -> None:
    try:
        text = _dump(spec, fmt)
    except Exception:  # the dumper refuses it (TOML: no null, a table at the top)
        assume(False)
    _must_be_spec_error_or_plan(text, fmt, registry)


@FUZZ
@given(spec=mutated_specs())
def test_fuzz_mutated_spec_given_as_python_data(registry: HandlerRegistry, spec: Any) -> None:
    """``parse_spec`` + ``compile_spec`` straight from data, as embedding code would."""
    from corral.workflow.loader import parse_spec

    try:
        compile_spec(parse_spec(spec), handlers=registry, pools=POOLS)
    except SpecError as err:
        assert err.path.startswith("$")


def test_plan_records_the_pools_it_was_checked_against(registry: HandlerRegistry) -> None:
    plan = loads(one_step("    resources: {cpu: 2}"), handlers=registry, pools=POOLS)
    assert plan.pools == frozenset({("cpu", 2), ("io", 64)})
    assert loads(one_step(), handlers=registry).pools == frozenset()


def test_a_step_name_inside_a_string_of_a_condition_is_text(registry: HandlerRegistry) -> None:
    # only names outside string literals (and steps["a-b"]) refer to steps
    plan = loads(
        doc(
            "name: x",
            "inputs: {s: {}}",
            "steps:",
            *NOOP,
            "  - id: b",
            "    handler: core.noop",
            "    needs: [a]",
            """    when: 'inputs.s != "see steps.zzz" && steps["a"].status == "succeeded"'""",
        ),
        handlers=registry,
    )
    assert plan.steps[1].when_refs == (0,)


@pytest.mark.parametrize("target", ["fifo", "zero", "dir"])
def test_a_workflow_path_that_is_no_regular_file_is_refused_at_once(
    tmp_path: Path, registry: HandlerRegistry, target: str
) -> None:
    import os

    path = tmp_path / "x.yaml"
    if target == "fifo":
        os.mkfifo(path)  # open() would wait for a writer forever
        expected = "not a regular file (a FIFO)"
    elif target == "zero":
        path.symlink_to("/dev/zero")  # stat says 0 bytes; reading never ends
        expected = "not a regular file (a device file)"
    else:
        path.mkdir()
        expected = "is a directory"
    with pytest.raises(SpecError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        load_file(path, handlers=registry)


def test_a_workflow_file_past_the_limit_is_refused(
    tmp_path: Path, registry: HandlerRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    from corral.workflow import reading

    path = tmp_path / "big.yaml"
    path.write_text("name: x\nsteps: []\n" + "#" * 200 + "\n")
    monkeypatch.setattr(reading, "MAX_FILE_BYTES", 100)
    with pytest.raises(SpecError, match="file is too large"):
        load_file(path, handlers=registry)


def _chain(n: int, needs_back: int = 1) -> str:
    steps = []
    for i in range(n):
        step: dict[str, Any] = {"id": f"s{i}", "handler": "core.noop"}
        if i:
            step["needs"] = [f"s{j}" for j in range(max(0, i - needs_back), i)]
        steps.append(step)
    return json.dumps({"name": "big", "steps": steps})


def test_a_workflow_of_the_largest_allowed_size_loads(registry: HandlerRegistry) -> None:
    from corral.workflow.compiler import MAX_STEPS

    plan = loads(_chain(MAX_STEPS, needs_back=10), "json", handlers=registry)
    assert len(plan.steps) == MAX_STEPS


def test_past_the_step_and_needs_limits_a_spec_is_refused(registry: HandlerRegistry) -> None:
    from corral.workflow.compiler import MAX_NEEDS, MAX_STEPS

    with pytest.raises(SpecError, match=f"limit is {MAX_STEPS:,} per workflow") as info:
        loads(_chain(MAX_STEPS + 1), "json", handlers=registry)
    assert info.value.path == "$.steps"
    with pytest.raises(SpecError, match=f"limit is {MAX_NEEDS:,} per workflow"):
        loads(_chain(2_000, needs_back=60), "json", handlers=registry)  # ~118,000 needs
    # the same limits for a workflow built in Python
    wf = corral.Workflow("big")
    for i in range(MAX_STEPS + 1):
        wf.step(f"s{i}", "core.noop")
    with pytest.raises(SpecError, match="per workflow"):
        compile_spec(wf.build(), handlers=registry)
