"""A step's output as the store keeps it: JSON, with nothing lost on the way.

msgspec writes ``nan`` and ``±inf`` as ``null`` (JSON has no such numbers),
so a handler returning them would find ``None`` stored in their place. They
are refused instead, as other values JSON cannot hold are, naming where the
first one is. Pure logic: no I/O.
"""

from __future__ import annotations

import math
import re
from typing import Any

import msgspec

__all__ = ["UnstorableOutput", "encode_output"]

_encoder = msgspec.json.Encoder()
# msgpack keeps every float as 8 bytes (0xcb, then big-endian): an exponent of
# all ones (nan, inf) starts 0x7ff / 0xfff. A string holding these bytes may
# match too; the walk below then decides.
_NON_FINITE = re.compile(rb"\xcb[\x7f\xff][\xf0-\xff]")


class UnstorableOutput(ValueError):
    """The value cannot be stored as JSON (the message says why and where)."""


def encode_output(value: Any) -> bytes:
    """``value`` as JSON bytes; raises :class:`UnstorableOutput` for a value
    JSON cannot hold: an unknown type, a non-finite float, a structure that
    refers to itself or is nested too deeply."""
    try:
        blob = _encoder.encode(value)
    except RecursionError:
        raise UnstorableOutput(
            "nested too deeply, or it contains itself (a list or dict inside itself)"
        ) from None
    except (TypeError, ValueError, OverflowError) as exc:
        raise UnstorableOutput(str(exc)) from None
    if b"null" in blob and _NON_FINITE.search(msgspec.msgpack.encode(value)):
        where = non_finite(value)
        if where is not None:
            path, number = where
            raise UnstorableOutput(
                f"{path} is {number!r}: JSON has no NaN or infinity "
                "(return None, a string, or a finite number)"
            )
    return blob


def non_finite(value: Any) -> tuple[str, float] | None:
    """(JSON path, number) of the first non-finite float in ``value``."""
    todo: list[tuple[str, Any]] = [("$", msgspec.to_builtins(value))]
    while todo:
        path, item = todo.pop()
        if isinstance(item, float):
            if not math.isfinite(item):
                return path, item
        elif isinstance(item, dict):
            todo.extend((f"{path}[{key!r}]", v) for key, v in reversed(item.items()))
        elif isinstance(item, (list, tuple)):
            todo.extend((f"{path}[{i}]", v) for i, v in reversed(list(enumerate(item))))
    return None
