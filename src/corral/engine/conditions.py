"""CEL expressions for ``when:`` conditions and concurrency keys, compiled once.

CEL (via ``common-expression-language``) is side-effect free and cannot reach
Python objects, so expressions from workflow files are safe to evaluate.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

import cel

__all__ = ["Condition", "ConditionError"]


class ConditionError(ValueError):
    """An expression does not compile, uses unknown names, or fails to evaluate."""


class Condition:
    """A compiled CEL expression over a fixed set of top-level names."""

    __slots__ = ("_program", "source")

    def __init__(self, source: str, allowed: Collection[str]) -> None:
        if not isinstance(source, str) or not source.strip():
            raise ConditionError("empty expression")
        try:
            program = cel.compile(source)
        except (ValueError, RuntimeError) as exc:
            raise ConditionError(_first_lines(str(exc))) from None
        unknown = sorted(set(program.variables()) - set(allowed))
        if unknown:
            raise ConditionError(
                f"unknown name {unknown[0]!r} in {source!r}; "
                f"available: {', '.join(sorted(allowed))}"
            )
        self.source = source
        self._program = program

    def evaluate(self, context: Mapping[str, Any]) -> Any:
        try:
            return self._program.execute(dict(context))
        except Exception as exc:  # CEL raises RuntimeError/TypeError/ValueError
            raise ConditionError(f"{self.source!r}: {_first_lines(str(exc))}") from None

    def test(self, context: Mapping[str, Any]) -> bool:
        """Evaluate as a condition: the result must be a boolean."""
        result = self.evaluate(context)
        if not isinstance(result, bool):
            raise ConditionError(
                f"{self.source!r} gave {type(result).__name__} {result!r}, not a boolean"
            )
        return result

    def __repr__(self) -> str:
        return f"Condition({self.source!r})"


def _first_lines(text: str, n: int = 3) -> str:
    return "\n".join(text.splitlines()[:n])
