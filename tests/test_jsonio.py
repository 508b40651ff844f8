"""Strict JSON: non-finite numbers as null, nothing non-standard written."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from neurodecode import jsonio


def test_non_finite_numbers_become_null_everywhere():
    value = {
        "pos": np.array([[0.1, np.nan, 0.0]]),
        "scalars": (np.float32("inf"), np.float64("-inf"), np.int64(3), math.nan, 1.5),
        1: {"path": Path("a/b"), "ok": True, "none": None},
    }
    text = jsonio.dumps(value, sort_keys=True)
    assert jsonio.is_strict(text)
    assert json.loads(text) == {
        "1": {"none": None, "ok": True, "path": "a/b"},
        "pos": [[0.1, None, 0.0]],
        "scalars": [None, None, 3, None, 1.5],
    }


def test_non_finite_number_from_a_default_hook_is_refused():
    class Odd:
        pass

    assert json.loads(jsonio.dumps({"x": Odd()}, default=lambda _: "odd")) == {"x": "odd"}
    with pytest.raises(ValueError, match="JSON compliant"):
        jsonio.dumps({"x": Odd()}, default=lambda _: math.nan)


def test_strictness_check_and_null_read_back_as_nan():
    assert not jsonio.is_strict('{"a": NaN}') and not jsonio.is_strict("[Infinity]")
    assert not jsonio.is_strict("{broken") and jsonio.is_strict('{"a": null, "b": "NaN"}')
    values = jsonio.nan_for_null([None, 1, 0.5])
    assert math.isnan(values[0]) and values[1:] == [1.0, 0.5]
