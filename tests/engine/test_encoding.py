"""Outputs as the store keeps them (corral/engine/encoding.py)."""

from __future__ import annotations

import math
import re

import msgspec
import pytest

from corral.engine.encoding import UnstorableOutput, encode_output, non_finite


class Point(msgspec.Struct):
    x: float
    y: float


def test_plain_values_encode_as_json() -> None:
    assert encode_output({"a": [1, 2.5, None, "null"], "p": Point(1, 2)}) == (
        b'{"a":[1,2.5,null,"null"],"p":{"x":1,"y":2}}'
    )


@pytest.mark.parametrize("number", [math.nan, math.inf, -math.inf])
def test_a_non_finite_float_is_refused_with_its_place(number: float) -> None:
    with pytest.raises(UnstorableOutput, match=r"\$\['p'\]\['y'\] is"):
        encode_output({"ok": None, "p": Point(1.0, number)})


def test_bytes_that_look_like_a_non_finite_float_are_not_one() -> None:
    # raw bytes holding the msgpack pattern of one, next to a null: the walk decides
    value = {"b": None, "raw": b"\xcb\x7f\xf8\x00", "n": 1.5}
    assert re.search(rb"\xcb[\x7f\xff][\xf0-\xff]", msgspec.msgpack.encode(value))
    assert msgspec.json.decode(encode_output(value))["n"] == 1.5
    assert non_finite(value) is None


def test_self_reference_and_depth_are_refused() -> None:
    loop: list[object] = []
    loop.append(loop)
    with pytest.raises(UnstorableOutput, match="contains itself"):
        encode_output(loop)
    with pytest.raises(UnstorableOutput, match="not a JSON|Encoding objects of type"):
        encode_output({1j})
