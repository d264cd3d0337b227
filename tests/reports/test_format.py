"""Number formatting of the reports and the terminal table, and JSON-safe values."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from rlpipe.reports.format import json_safe, num, pct


@pytest.mark.parametrize(
    ("x", "text"),
    [
        (0.1234, "+12.34%"),
        (-0.0421, "-4.21%"),
        (0.0, "+0.00%"),
        (1.5, "+150.00%"),
        (0.00004, "+0.00%"),  # rounds to two decimals of a percent
        (0.00005001, "+0.01%"),
        (np.float64(0.25), "+25.00%"),
    ],
)
def test_pct_is_a_signed_percentage_with_two_decimals(x: float, text: str) -> None:
    assert pct(x) == text


@pytest.mark.parametrize("x", [None, math.nan, math.inf, -math.inf, np.nan])
def test_pct_and_num_of_a_missing_or_non_finite_value_are_n_a(x: float | None) -> None:
    assert pct(x) == "n/a"
    assert num(x) == "n/a"
    assert num(x, digits=0) == "n/a"


@pytest.mark.parametrize(
    ("x", "digits", "text"),
    [
        (1.23456, 2, "1.23"),
        (-1.2351, 2, "-1.24"),
        (2.0, 2, "2.00"),
        (0.5, 0, "0"),  # round half to even
        (1.5, 0, "2"),
        (3.0, 0, "3"),
        (0.123456, 4, "0.1235"),
        (1234567.891, 1, "1234567.9"),  # no thousands separator
    ],
)
def test_num_has_the_given_digits_and_no_plus_sign(x: float, digits: int, text: str) -> None:
    assert num(x, digits) == text


def test_num_defaults_to_two_digits() -> None:
    assert num(math.pi) == "3.14"


def test_json_safe_replaces_non_finite_floats_by_none_at_any_depth() -> None:
    value = {
        "a": math.nan,
        "b": [1.0, math.inf, {"c": -math.inf, "d": [math.nan, 2]}],
        "e": (3, math.nan),
        "f": "nan",
        "g": None,
        "h": True,
        "i": 0.5,
    }
    assert json_safe(value) == {
        "a": None,
        "b": [1.0, None, {"c": None, "d": [None, 2]}],
        "e": [3, None],  # tuples become lists, as JSON has them
        "f": "nan",  # strings are left alone
        "g": None,
        "h": True,
        "i": 0.5,
    }
    json.dumps(json_safe(value), allow_nan=False)


def test_json_safe_keeps_finite_values_and_does_not_change_its_input() -> None:
    value = {"x": [1, 2.5, -0.0], "y": {"z": 1e300}}
    out = json_safe(value)
    assert out == value
    assert out is not value and out["x"] is not value["x"]
    nan_in = {"m": [math.nan]}
    json_safe(nan_in)
    assert math.isnan(nan_in["m"][0])


@pytest.mark.parametrize("x", [math.nan, math.inf, -math.inf])
def test_json_safe_of_a_bare_non_finite_float_is_none(x: float) -> None:
    assert json_safe(x) is None
    assert json_safe(1.5) == 1.5
    assert json_safe("text") == "text"
