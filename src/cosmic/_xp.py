"""Arithmetic that works on a Python float and on a NumPy column alike.

The simulator writes each formula once: the scalar path (`simulate`) passes floats, the batch path
(`simulate_columns`) passes arrays of one value per configuration. Plain operators already work on both; these
helpers cover the rest (max, min, choice) and stay on the fast float path when no argument is an array.
"""

from __future__ import annotations

from typing import Any

import numpy as np

Num = Any  # float | np.ndarray


def vmax(a: Num, b: Num) -> Num:
    """Elementwise maximum."""
    if type(a) is np.ndarray or type(b) is np.ndarray:
        return np.maximum(a, b)
    return a if a >= b else b


def vmin(a: Num, b: Num) -> Num:
    """Elementwise minimum."""
    if type(a) is np.ndarray or type(b) is np.ndarray:
        return np.minimum(a, b)
    return a if a <= b else b


def where(cond: Any, a: Num, b: Num) -> Num:
    """`a` where `cond` holds, else `b` (both are evaluated)."""
    if type(cond) is np.ndarray:
        return np.where(cond, a, b)
    return a if cond else b


def any_(cond: Any) -> bool:
    """Whether `cond` holds anywhere (for skipping work that no configuration of a batch needs)."""
    if type(cond) is np.ndarray:
        return bool(cond.any())
    return bool(cond)


def all_(cond: Any) -> bool:
    """Whether `cond` holds everywhere."""
    if type(cond) is np.ndarray:
        return bool(cond.all())
    return bool(cond)


def safe(den: Num) -> Num:
    """`den` with its zeros replaced by 1, for divisions whose result is masked where `den` is 0."""
    return where(den == 0, 1.0, den)
