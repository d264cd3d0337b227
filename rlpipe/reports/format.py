"""Number formatting shared by the reports and the terminal table, and JSON-safe values."""

from __future__ import annotations

import math
from typing import Any


def pct(x: float | None, signed: bool = True) -> str:
    """A fraction as a percentage, signed unless told (a drawdown is a size); n/a for a missing or
    non-finite value."""
    if x is None or not math.isfinite(x):
        return "n/a"
    return f"{100 * x:+.2f}%" if signed else f"{100 * x:.2f}%"


def num(x: float | None, digits: int = 2) -> str:
    """A number with `digits` decimals; n/a for a missing or non-finite value."""
    return "n/a" if x is None or not math.isfinite(x) else f"{x:.{digits}f}"


def json_safe(value: Any) -> Any:
    """Replace non-finite floats by None (JSON has no NaN/inf) recursively."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value
