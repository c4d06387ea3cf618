"""Binding inputs to a workflow's declared inputs (``corral.workflow.plan.bind_inputs``)."""

from __future__ import annotations

from typing import Any

import pytest

from corral.core.errors import InputError, SpecError
from corral.core.model import InputSpec, StepSpec, WorkflowSpec
from corral.workflow.plan import bind_inputs, type_ok


def spec(**inputs: InputSpec) -> WorkflowSpec:
    return WorkflowSpec(name="wf", inputs=inputs, steps=[StepSpec(id="a", handler="core.noop")])


def test_defaults_are_filled_in() -> None:
    wf = spec(
        path=InputSpec(type="string"),
        strict=InputSpec(type="boolean", default=False),
        tags=InputSpec(type="array", default=["x"]),
    )
    assert bind_inputs(wf, {"path": "."}) == {"path": ".", "strict": False, "tags": ["x"]}
    assert bind_inputs(wf, {"path": ".", "strict": True}) == {
        "path": ".",
        "strict": True,
        "tags": ["x"],
    }


def test_defaults_are_copied() -> None:
    wf = spec(tags=InputSpec(type="array", default=["x"]))
    first = bind_inputs(wf, None)
    first["tags"].append("changed")
    assert bind_inputs(wf, None) == {"tags": ["x"]}
    assert wf.inputs["tags"].default == ["x"]


def test_no_inputs() -> None:
    assert bind_inputs(spec(), None) == {}
    assert bind_inputs(spec(), {}) == {}


def test_a_null_default_makes_an_input_optional() -> None:
    wf = spec(x=InputSpec(type="any", default=None))
    assert wf.inputs["x"].required is False
    assert bind_inputs(wf, {}) == {"x": None}


@pytest.mark.parametrize(
    ("type_name", "good", "bad"),
    [
        ("string", ["", "x"], [1, None, b"x", ["x"]]),
        ("integer", [0, -5, 2**80], [True, False, 1.0, "1", None]),
        ("number", [0, 1.5, -2, float("inf")], [True, "1.5", None]),
        ("boolean", [True, False], [0, 1, "true", None]),
        ("array", [[], [1, "a"], (1, 2)], ["abc", {}, None, {1}]),
        ("object", [{}, {"a": 1}], [[], "x", None]),
        ("any", [None, 1, "x", [], {}, True], []),
    ],
)
def test_types(type_name: str, good: list[Any], bad: list[Any]) -> None:
    wf = spec(v=InputSpec(type=type_name))  # type: ignore[arg-type]
    for value in good:
        assert type_ok(type_name, value), value
        assert bind_inputs(wf, {"v": value}) == {"v": value}
    for value in bad:
        assert not type_ok(type_name, value), value
        with pytest.raises(InputError) as info:
            bind_inputs(wf, {"v": value})
        assert info.value.path == "$.inputs.v"
        assert f"input 'v' must be of type {type_name}, got {type(value).__name__}" in str(
            info.value
        )


def test_bool_is_not_an_integer() -> None:
    wf = spec(n=InputSpec(type="integer"))
    with pytest.raises(InputError, match="must be of type integer, got bool True"):
        bind_inputs(wf, {"n": True})


def test_unknown_type_name_rejects_everything() -> None:
    assert not type_ok("float", 1.0)


def test_missing_required_input() -> None:
    wf = spec(path=InputSpec(type="string"), n=InputSpec(type="integer", default=1))
    with pytest.raises(InputError) as info:
        bind_inputs(wf, {"n": 2}, file="wf.yaml")
    err = info.value
    assert isinstance(err, SpecError)
    assert err.path == "$.inputs.path"
    assert err.message == "missing required input 'path' (string)"
    assert str(err) == "wf.yaml: $.inputs.path: missing required input 'path' (string)"


def test_unknown_input() -> None:
    wf = spec(path=InputSpec(type="string", default="."))
    with pytest.raises(InputError) as info:
        bind_inputs(wf, {"pth": "x", "zzz": 1})
    assert info.value.path == "$.inputs.pth"
    assert "unknown input 'pth' (declared inputs: path)" in info.value.message


def test_unknown_input_when_none_declared() -> None:
    with pytest.raises(InputError, match=r"declared inputs: none"):
        bind_inputs(spec(), {"x": 1})


def test_unknown_inputs_with_mixed_key_types() -> None:
    with pytest.raises(InputError):
        bind_inputs(spec(), {1: "a", "b": 2})  # type: ignore[dict-item]


def test_odd_input_names_are_quoted_in_paths() -> None:
    wf = spec(**{"my input": InputSpec(type="integer")})
    with pytest.raises(InputError) as info:
        bind_inputs(wf, {"my input": "x"})
    assert info.value.path == '$.inputs["my input"]'


@pytest.mark.parametrize("given", [[("a", 1)], "a=1", 5])
def test_inputs_must_be_a_mapping(given: Any) -> None:
    with pytest.raises(InputError, match="inputs must be a mapping") as info:
        bind_inputs(spec(), given)
    assert info.value.path == "$.inputs"
