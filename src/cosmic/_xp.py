"""Arithmetic that works on a Python float and on a NumPy column alike.

The simulator writes each formula once: the scalar path (`simulate`) passes floats, the batch path
(`simulate_columns`) passes arrays of one value per configuration. Plain operators already work on both; these
helpers cover the rest (max, min, choice) and stay on the fast float path when no argument is an array (the test
is one identity comparison of types, against a module-level name).
"""

from __future__ import annotations

from typing import Any

import numpy as np

Num = Any  # float | np.ndarray

_ARRAY = np.ndarray
_maximum, _minimum, _where = np.maximum, np.minimum, np.where


def is_column(v: Any) -> bool:
    """Whether `v` is a column (an array of one value per configuration) rather than one value."""
    return type(v) is _ARRAY


def vmax(a: Num, b: Num) -> Num:
    """Elementwise maximum."""
    if type(a) is _ARRAY or type(b) is _ARRAY:
        return _maximum(a, b)
    return a if a >= b else b


def vmin(a: Num, b: Num) -> Num:
    """Elementwise minimum."""
    if type(a) is _ARRAY or type(b) is _ARRAY:
        return _minimum(a, b)
    return a if a <= b else b


def where(cond: Any, a: Num, b: Num) -> Num:
    """`a` where `cond` holds, else `b` (both are evaluated)."""
    if type(cond) is _ARRAY:
        return _where(cond, a, b)
    return a if cond else b


def any_(cond: Any) -> bool:
    """Whether `cond` holds anywhere (for skipping work that no configuration of a batch needs)."""
    if type(cond) is _ARRAY:
        return bool(cond.any())
    return bool(cond)


def all_(cond: Any) -> bool:
    """Whether `cond` holds everywhere."""
    if type(cond) is _ARRAY:
        return bool(cond.all())
    return bool(cond)


def safe(den: Num) -> Num:
    """`den` with its zeros replaced by 1, for divisions whose result is masked where `den` is 0."""
    if type(den) is _ARRAY:
        return _where(den == 0, 1.0, den)
    return 1.0 if den == 0 else den


def take(obj: Any, idx: np.ndarray, n: int) -> Any:
    """`obj` with every column of length `n` (in frozen dataclasses, tuples and dicts, recursively) cut to the rows
    `idx`; constants stay as they are."""
    import dataclasses

    if type(obj) is _ARRAY:
        return obj[idx] if obj.ndim and obj.shape[0] == n else obj
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.replace(obj, **{f.name: take(getattr(obj, f.name), idx, n)
                                           for f in dataclasses.fields(obj) if f.init})
    if isinstance(obj, tuple):
        return tuple(take(v, idx, n) for v in obj)
    if isinstance(obj, dict):
        return {k: take(v, idx, n) for k, v in obj.items()}
    return obj
