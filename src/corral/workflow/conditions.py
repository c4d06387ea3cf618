"""CEL expressions for ``when:`` conditions and concurrency keys, compiled once.

CEL (via ``common-expression-language``) is side-effect free and cannot reach
Python objects, so expressions from workflow files are safe to evaluate.
Expressions are limited in length: the underlying parser recurses on long
operator chains and crashes the process on very long ones.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Collection, Mapping
from types import ModuleType
from typing import Any

__all__ = ["FUNCTIONS", "MAX_LENGTH", "Condition", "ConditionError"]

MAX_LENGTH = 1000
"""Longest accepted expression, in characters."""

FUNCTIONS: frozenset[str] = frozenset(
    {
        "size", "contains", "startsWith", "endsWith", "matches",
        "int", "uint", "double", "string", "bytes", "dyn", "type",
        "timestamp", "duration",
        "getFullYear", "getMonth", "getDate", "getDayOfMonth", "getDayOfWeek", "getDayOfYear",
        "getHours", "getMinutes", "getSeconds", "getMilliseconds",
        "of", "ofNonZeroValue", "none", "or", "orValue", "hasValue", "value",
    }
)  # fmt: skip
"""Functions the CEL evaluator provides (operators, such as ``_+_``, aside).
Macros (``has``, ``all``, ``exists``, ``exists_one``, ``map``, ``filter``) are
expanded by the parser and never appear as functions."""

_BUILTIN_NAMES = frozenset(
    {
        "optional",
        "int",
        "uint",
        "double",
        "bool",
        "string",
        "bytes",
        "list",
        "map",
        "null_type",
        "type",
    }
)
"""Top-level names CEL itself provides: type names (``type(x) == int``) and
``optional`` (``optional.of(x)``)."""

_MACRO_VARIABLE = re.compile(
    r"\.\s*(?:all|exists|exists_one|map|filter)\s*\(\s*([A-Za-z_][A-Za-z0-9_]*)\s*,"
)
"""The variable a comprehension macro binds: ``xs.all(x, x > 0)`` binds ``x``
(the CEL library lists it among the expression's variables)."""


def _is_operator(name: str) -> bool:
    """``_+_``, ``!_``, ``@in``, ``_[_]``... as opposed to ``size`` or ``__import__``."""
    return name.startswith("@") or not name.replace("_", "a").isidentifier()


_CEL: ModuleType | None = None


def _cel() -> ModuleType:
    """The CEL library, imported on first use: its package pulls in a command
    line toolkit (prompt_toolkit, typer: ~15 MB and ~80 ms) that workflows
    without conditions or keys never need."""
    global _CEL
    if _CEL is None:
        import cel

        _CEL = cel
    return _CEL


class ConditionError(ValueError):
    """An expression does not compile, uses unknown names, or fails to evaluate."""


class Condition:
    """A compiled CEL expression over a fixed set of top-level names.

    ``variables`` are the top-level names the expression uses (a subset of
    ``allowed``); an expression without any is constant.
    """

    __slots__ = ("_program", "source", "variables")

    def __init__(self, source: str, allowed: Collection[str]) -> None:
        if not isinstance(source, str) or not source.strip():
            raise ConditionError("empty expression")
        if len(source) > MAX_LENGTH:
            raise ConditionError(
                f"expression is too long ({len(source)} characters; the limit is {MAX_LENGTH})"
            )
        try:
            program = _cel().compile(source)
            bound = set(_MACRO_VARIABLE.findall(source)) - set(allowed)
            variables = frozenset(program.variables()) - bound - _BUILTIN_NAMES
        except BaseException as exc:
            _reraise_if_fatal(exc)
            raise ConditionError(_first_lines(str(exc))) from None
        unknown = sorted(variables - set(allowed))
        if unknown:
            raise ConditionError(
                f"unknown name {unknown[0]!r} in {_short(source)}; "
                f"available: {', '.join(sorted(allowed))}"
            )
        functions = getattr(program, "functions", None)
        if functions is not None:
            unknown = sorted(f for f in functions() if f not in FUNCTIONS and not _is_operator(f))
            if unknown:
                close = difflib.get_close_matches(unknown[0], FUNCTIONS, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise ConditionError(f"unknown function {unknown[0]!r} in {_short(source)}{hint}")
        self.source = source
        self.variables = variables
        self._program = program

    def evaluate(self, context: Mapping[str, Any]) -> Any:
        try:
            return self._program.execute(dict(context))
        except BaseException as exc:  # CEL raises RuntimeError/TypeError/ValueError, or panics
            _reraise_if_fatal(exc)
            raise ConditionError(f"{_short(self.source)}: {_first_lines(str(exc))}") from None

    def test(self, context: Mapping[str, Any]) -> bool:
        """Evaluate as a condition: the result must be a boolean."""
        result = self.evaluate(context)
        if not isinstance(result, bool):
            raise ConditionError(
                f"{_short(self.source)} gave {type(result).__name__} {result!r}, not a boolean"
            )
        return result

    def __repr__(self) -> str:
        return f"Condition({self.source!r})"


def _reraise_if_fatal(exc: BaseException) -> None:
    """Let everything through except ordinary errors and a Rust panic (a
    ``BaseException`` subclass named ``PanicException``)."""
    if not isinstance(exc, Exception) and type(exc).__name__ != "PanicException":
        raise exc


def _short(source: str, limit: int = 80) -> str:
    return repr(source if len(source) <= limit else source[: limit - 3] + "...")


def _first_lines(text: str, n: int = 3) -> str:
    lines = text.splitlines()[:n]
    return "\n".join(line if len(line) <= 200 else line[:197] + "..." for line in lines)
