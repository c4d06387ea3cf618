"""CEL conditions and keys: compiled once, names checked, booleans enforced."""

from __future__ import annotations

from typing import Any

import pytest

from corral.workflow import conditions
from corral.workflow.conditions import MAX_LENGTH, Condition, ConditionError

NAMES = ("inputs", "steps")


def test_compiles_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real = conditions._cel().compile

    def counting(source: str) -> Any:
        calls.append(source)
        return real(source)

    monkeypatch.setattr(conditions._cel(), "compile", counting)
    cond = Condition("inputs.n > 2", NAMES)
    for n in range(10):
        assert cond.test({"inputs": {"n": n}, "steps": {}}) is (n > 2)
    assert calls == ["inputs.n > 2"]


def test_variables() -> None:
    assert Condition("inputs.a && steps.b.status == 'succeeded'", NAMES).variables == {
        "inputs",
        "steps",
    }
    assert Condition("true", NAMES).variables == frozenset()


@pytest.mark.parametrize(
    ("source", "context", "expected"),
    [
        ("inputs.strict", {"inputs": {"strict": True}}, True),
        ("!inputs.strict", {"inputs": {"strict": True}}, False),
        ("inputs.n >= 3 && inputs.name == 'x'", {"inputs": {"n": 3, "name": "x"}}, True),
        ("'a' in inputs.tags", {"inputs": {"tags": ["b"]}}, False),
        ("size(inputs.tags) == 1", {"inputs": {"tags": ["b"]}}, True),
        (
            "steps.scan.output.count > 1",
            {"inputs": {}, "steps": {"scan": {"output": {"count": 2}}}},
            True,
        ),
    ],
)
def test_conditions(source: str, context: dict[str, Any], expected: bool) -> None:
    assert Condition(source, NAMES).test(context) is expected


@pytest.mark.parametrize(
    ("source", "fragment"),
    [
        ("", "empty expression"),
        ("   ", "empty expression"),
        ("inputs.x ==", "Syntax error"),
        ("(inputs.x", "Syntax error"),
        ("input.x", "unknown name 'input' in 'input.x'; available: inputs, steps"),
        ("inputs.x && os.system", "unknown name 'os'"),
        ("__import__('os')", "unknown function '__import__'"),
        (
            "inputs.s.startswith('a')",
            "unknown function 'startswith' in \"inputs.s.startswith('a')\" "
            "(did you mean 'startsWith'?)",
        ),
        ("inputs.xs.all(x, x > 0) && y", "unknown name 'y'"),
        ("true || " * 200 + "true", "too long"),
    ],
)
def test_bad_expressions(source: str, fragment: str) -> None:
    with pytest.raises(ConditionError) as info:
        Condition(source, NAMES)
    assert fragment in str(info.value)


def test_macro_variables_are_not_unknown_names() -> None:
    cond = Condition(
        "inputs.xs.all(x, x > 0) && inputs.xs.exists(y, y == 2) && "
        "size(inputs.xs.filter(z, z > 1)) == 1 && inputs.xs.map(w, w * 2)[1] == 4 && "
        "inputs.xs.exists_one(v, v == 1) && has(inputs.xs)",
        NAMES,
    )
    assert cond.variables == {"inputs"}
    assert cond.test({"inputs": {"xs": [1, 2]}}) is True


def test_builtin_functions_are_accepted() -> None:
    cond = Condition(
        "size(inputs.s) == 3 && inputs.s.startsWith('a') && inputs.s.endsWith('c') && "
        "inputs.s.contains('b') && inputs.s.matches('^a.c$') && int('1') == 1 && "
        "string(1) == '1' && double(1) == 1.0 && type(1) == int && "
        "timestamp('2020-01-01T00:00:00Z').getFullYear() == 2020 && "
        "duration('1s') == duration('1000ms') && optional.of(1).hasValue()",
        NAMES,
    )
    assert cond.test({"inputs": {"s": "abc"}}) is True


def test_length_limit_is_inclusive() -> None:
    source = "true" + " " * (MAX_LENGTH - 4)
    assert len(source) == MAX_LENGTH
    assert Condition(source, NAMES).test({}) is True


def test_non_string_source() -> None:
    with pytest.raises(ConditionError):
        Condition(5, NAMES)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("source", "context", "result"),
    [
        ("inputs.n", {"inputs": {"n": 1}}, "int 1"),
        ("inputs.name", {"inputs": {"name": "yes"}}, "str 'yes'"),
        ("1 + 2", {}, "int 3"),
        ("inputs.maybe", {"inputs": {"maybe": None}}, "NoneType None"),
    ],
)
def test_non_boolean_result_raises(source: str, context: dict[str, Any], result: str) -> None:
    cond = Condition(source, NAMES)
    with pytest.raises(ConditionError) as info:
        cond.test(context)
    assert f"gave {result}, not a boolean" in str(info.value)
    # evaluate() is for keys: any value is fine.
    cond.evaluate(context)


@pytest.mark.parametrize(
    ("source", "context"),
    [
        ("inputs.missing", {"inputs": {}}),
        ("1 / inputs.zero == 1", {"inputs": {"zero": 0}}),
        ("inputs.s + 1 == 2", {"inputs": {"s": "x"}}),
        ("inputs.x", {}),
    ],
)
def test_evaluation_errors_are_condition_errors(source: str, context: dict[str, Any]) -> None:
    with pytest.raises(ConditionError) as info:
        Condition(source, NAMES).test(context)
    assert repr(source) in str(info.value)


def test_long_sources_are_shortened_in_messages() -> None:
    source = "inputs.value == '" + "x" * 300 + "'"
    with pytest.raises(ConditionError) as info:
        Condition(source, NAMES).test({"inputs": {}})
    assert len(str(info.value)) < 400
    assert "..." in str(info.value)


def test_keys_evaluate_to_any_value() -> None:
    key = Condition("inputs.path + '/' + params.name", ("inputs", "params"))
    assert key.evaluate({"inputs": {"path": "a"}, "params": {"name": "b"}}) == "a/b"
    assert repr(key) == "Condition(\"inputs.path + '/' + params.name\")"
