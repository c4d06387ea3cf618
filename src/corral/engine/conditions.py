"""CEL expressions for ``when:`` conditions and concurrency keys, compiled once.

CEL (via ``common-expression-language``) is side-effect free and cannot reach
Python objects, so expressions from workflow files are safe to evaluate.
Expressions are limited in length: the underlying parser recurses on long
operator chains and crashes the process on very long ones.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

import cel

__all__ = ["MAX_LENGTH", "Condition", "ConditionError"]

MAX_LENGTH = 1000
"""Longest accepted expression, in characters."""


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
            program = cel.compile(source)
            variables = frozenset(program.variables())
        except BaseException as exc:
            _reraise_if_fatal(exc)
            raise ConditionError(_first_lines(str(exc))) from None
        unknown = sorted(variables - set(allowed))
        if unknown:
            raise ConditionError(
                f"unknown name {unknown[0]!r} in {_short(source)}; "
                f"available: {', '.join(sorted(allowed))}"
            )
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
