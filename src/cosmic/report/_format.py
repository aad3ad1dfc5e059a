"""Numbers as people read them: values with their units, floats rounded for display (stored data keeps every
digit)."""

from __future__ import annotations

import enum
import math
from collections.abc import Sequence
from typing import Any

from cosmic.psa.objectives import objective_unit

DISPLAY_DIGITS = 6
"""Significant digits of a float shown in tables and reports."""


def fmt_value(v: Any) -> str:
    """A knob or figure for display: floats to six significant digits, lists and tuples element-wise.

    Example:
        >>> fmt_value([166.66666666666666, 50.0, 2])
        '[166.667, 50, 2]'
    """
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, float):
        return f"{v:.{DISPLAY_DIGITS}g}" if math.isfinite(v) else str(v)
    if isinstance(v, enum.Enum):
        return str(v.value)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(fmt_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}: {fmt_value(x)}" for k, x in v.items()) + "}"
    return str(v)


def fmt_objective(name: str, value: float) -> str:
    """An objective's value with its unit.

    Example:
        >>> fmt_objective("step_time", 508.45123)
        '508.451 s'
        >>> fmt_objective("step_time*network_cost", 5.0012e8)
        '5.0012e+08 s·USD'
    """
    unit = objective_unit(name)
    return f"{value:.{DISPLAY_DIGITS}g}" + (f" {unit}" if unit else "")


def fmt_objectives(objectives: Sequence[tuple[str, str]], values: Sequence[float]) -> str:
    """`name = value unit` for each objective, comma-separated."""
    return ", ".join(f"{n} = {fmt_objective(n, v)}" for (n, _), v in zip(objectives, values, strict=False))


def axis_title(name: str) -> str:
    """An axis title: the objective and its unit."""
    unit = objective_unit(name)
    return f"{name} ({unit})" if unit else name
