"""References: parsed once, resolved without eval (pure logic)."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corral.workflow.references import (
    Ref,
    RefError,
    Template,
    compile_value,
    is_dynamic,
    iter_refs,
    key_path,
    parse_ref,
    resolve,
)

INPUTS = {"n": 7, "name": "world", "flag": True, "xs": [10, 20, 30], "cfg": {"a b": 1}}
OUTPUTS = {
    "scan": {"files": [{"name": "a.py", "size": 3}, {"name": "b.py", "size": 4}], "count": 2},
    "none": None,
    "text": "hello",
}


def render(value: Any, inputs: Any = INPUTS, outputs: Any = OUTPUTS) -> Any:
    return resolve(compile_value(value), inputs, outputs)


# ---------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    ("text", "root", "step", "path"),
    [
        ("inputs.n", "inputs", None, ("n",)),
        (" inputs.n ", "inputs", None, ("n",)),
        ("inputs.xs[0]", "inputs", None, ("xs", 0)),
        ("inputs.xs[-1]", "inputs", None, ("xs", -1)),
        ('inputs.cfg["a b"]', "inputs", None, ("cfg", "a b")),
        ("inputs.cfg['a b']", "inputs", None, ("cfg", "a b")),
        ("steps.scan.output", "steps", "scan", ()),
        ("steps.scan.output.files[1].name", "steps", "scan", ("files", 1, "name")),
        ("steps.my-step_2.output", "steps", "my-step_2", ()),
    ],
)
def test_parse_ref(text: str, root: str, step: str | None, path: tuple[Any, ...]) -> None:
    ref = parse_ref(text)
    assert (ref.root, ref.step, ref.path) == (root, step, path)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "starts with 'inputs.' or 'steps.'"),
        ("foo.bar", "starts with 'inputs.' or 'steps.'"),
        ("inputs", "name an input"),
        ("inputs[0]", "name an input"),
        ("steps.a", "${steps.<id>.output}"),
        ("steps.a.result", "${steps.<id>.output}"),
        ("steps[0].output", "${steps.<id>.output}"),
        (".inputs.x", "unexpected '.'"),
        ("inputs.x[0]y", "expected '.'"),
        ("inputs..x", "cannot parse"),
        ("inputs.x +1", "cannot parse"),
        ("inputs.x[", "cannot parse"),
        ("inputs.x()", "cannot parse"),
    ],
)
def test_malformed_refs(text: str, fragment: str) -> None:
    with pytest.raises(RefError) as info:
        parse_ref(text)
    assert fragment in str(info.value)


# ---------------------------------------------------------------- compiling and resolving


def test_whole_reference_keeps_its_type() -> None:
    assert render("${inputs.n}") == 7
    assert render("${inputs.flag}") is True
    assert render("${inputs.xs}") == [10, 20, 30]
    assert render("${steps.scan.output}") == OUTPUTS["scan"]
    assert render("${steps.none.output}") is None
    assert render(" ${inputs.n}") == " 7"  # not whole: interpolated


def test_interpolation_uses_json_for_non_strings() -> None:
    assert render("hello ${inputs.name}!") == "hello world!"
    assert render("n=${inputs.n}") == "n=7"
    assert render("${inputs.flag}/${steps.none.output}") == "true/null"
    assert render("xs=${inputs.xs}") == "xs=[10,20,30]"
    assert render("${inputs.n}${inputs.n}") == "77"
    assert render("f=${steps.scan.output.files[0]}") == 'f={"name":"a.py","size":3}'


def test_index_paths() -> None:
    assert render("${inputs.xs[0]}") == 10
    assert render("${inputs.xs[-1]}") == 30
    assert render("${steps.scan.output.files[1].name}") == "b.py"
    assert render('${inputs.cfg["a b"]}') == 1


def test_escape() -> None:
    assert render("$${inputs.n}") == "${inputs.n}"
    assert render("cost $$5 and $${x}") == "cost $$5 and ${x}"
    assert render("$${inputs.n} is ${inputs.n}") == "${inputs.n} is 7"
    # Escapes are applied even where nothing is dynamic, inside containers too.
    compiled = compile_value({"a": ["$${x}", 1], "b": "plain"})
    assert not is_dynamic(compiled)
    assert compiled == {"a": ["${x}", 1], "b": "plain"}


def test_unterminated_reference() -> None:
    with pytest.raises(RefError, match="unterminated"):
        compile_value("${inputs.n")
    with pytest.raises(RefError, match="unterminated"):
        compile_value("ok ${inputs.n} then ${oops")


def test_values_without_references_come_back_unchanged() -> None:
    value = {"a": [1, 2, {"b": "text"}], "c": None}
    assert compile_value(value) is value
    assert not is_dynamic(compile_value(value))
    assert resolve(value, {}, {}) is value


def test_nested_containers_resolve() -> None:
    value = {"a": ["${inputs.n}", {"b": "x${inputs.name}"}], "c": 3, "d": ["${inputs.xs[1]}"]}
    compiled = compile_value(value)
    assert is_dynamic(compiled)
    assert resolve(compiled, INPUTS, OUTPUTS) == {
        "a": [7, {"b": "xworld"}],
        "c": 3,
        "d": [20],
    }


def test_iter_refs_reports_paths() -> None:
    compiled = compile_value(
        {
            "a": ["${inputs.n}", {"b": "${steps.scan.output}-${inputs.name}"}],
            "odd key": "${inputs.n}",
        },
        "$.params",
    )
    found = [(path, ref.text) for path, ref in iter_refs(compiled, "$.params")]
    assert found == [
        ("$.params.a[0]", "inputs.n"),
        ("$.params.a[1].b", "steps.scan.output"),
        ("$.params.a[1].b", "inputs.name"),
        ('$.params["odd key"]', "inputs.n"),
    ]


def test_compile_errors_carry_the_path() -> None:
    with pytest.raises(RefError) as info:
        compile_value({"a": [1, {"b": "${foo}"}]}, "$.steps[0].params")
    assert info.value.path == "$.steps[0].params.a[1].b"


@pytest.mark.parametrize(
    ("template", "fragment"),
    [
        ("${inputs.missing}", "'missing' not found in inputs"),
        ("${inputs.xs[3]}", "'xs[3]' not found in inputs"),
        ("${inputs.xs[-4]}", "'xs[-4]' not found in inputs"),
        ("${inputs.n.x}", "'n.x' not found"),
        ("${inputs.name[0]}", "'name[0]' not found"),  # strings are not indexed
        ("${inputs.xs.a}", "'xs.a' not found"),
        ("${steps.scan.output.files[0].nope}", "'files[0].nope' not found in the output of 'scan'"),
        ("${steps.gone.output}", "step 'gone' has no output"),
        ("x ${steps.none.output.a}", "'a' not found"),
    ],
)
def test_resolution_errors(template: str, fragment: str) -> None:
    with pytest.raises(RefError) as info:
        render(template)
    assert fragment in str(info.value)


def test_interpolating_an_unencodable_value_is_a_ref_error() -> None:
    with pytest.raises(RefError, match="cannot be put into a string"):
        render("x=${inputs.obj}", {"obj": object()}, {})


def test_struct_outputs_can_be_navigated() -> None:
    class Out(msgspec.Struct):
        files: list[str]

    assert render("${steps.s.output.files[1]}", {}, {"s": Out(["a", "b"])}) == "b"


def test_template_whole() -> None:
    compiled = compile_value("${inputs.n}")
    assert isinstance(compiled, Template)
    assert isinstance(compiled.whole, Ref)
    partial = compile_value("n ${inputs.n}")
    assert isinstance(partial, Template)
    assert partial.whole is None


@pytest.mark.parametrize(
    ("key", "expected"),
    [("a", "$.a"), ("a-b_1", "$.a-b_1"), ("a b", '$["a b"]'), ("a.b", '$["a.b"]'), ("", '$[""]')],
)
def test_key_path(key: str, expected: str) -> None:
    assert key_path("$", key) == expected


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40))
def test_compiling_any_string_gives_a_value_or_a_ref_error(text: str) -> None:
    try:
        compiled = compile_value(text)
    except RefError:
        return
    if "${" not in text:
        assert compiled == text


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_characters="$"), max_size=30))
def test_strings_without_dollars_are_literal(text: str) -> None:
    assert compile_value(text) == text
    assert compile_value("$${" + text) == "${" + text
