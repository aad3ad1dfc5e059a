"""One registry of every memo the simulator keeps, so that :func:`clear_caches` empties them all.

A cache registers itself where it is made (``cached = register(functools.lru_cache(...)(fn))`` or
``register(BoundedMemo(n))``); anything with a ``cache_clear()`` or ``clear()`` method can be registered.
"""

from __future__ import annotations

from typing import Any, TypeVar

import numpy as np

T = TypeVar("T")

_REGISTRY: list[Any] = []


class BoundedMemo(dict[Any, Any]):
    """A dict that empties itself instead of growing past `limit` entries.

    Keys built from object ids must have their objects held in the value, so an id cannot be reused by another
    object while it is remembered.
    """

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit

    def put(self, key: Any, value: Any) -> Any:
        """Remember `value` under `key` and return it."""
        if len(self) >= self.limit:
            self.clear()
        self[key] = value
        return value


class RowTable:
    """Rows of figures keyed by packed int64 keys, kept across batches: keys sorted for a binary search, rows only
    appended (so a row number stays valid); `rows(keys, compute)` calls `compute(new_keys)` for unseen keys."""

    def __init__(self, width: int) -> None:
        self.width = width
        self.clear()

    def clear(self) -> None:
        self.keys = np.zeros(0, dtype=np.int64)
        self.index = np.zeros(0, dtype=np.int64)
        self.values = np.zeros((0, self.width))

    def rows(self, keys: np.ndarray, compute: Any) -> np.ndarray:
        """The row of figures of each key."""
        ids = self.row_ids(keys, compute)  # may append rows: read `values` after it
        return self.values[ids]

    def row_ids(self, keys: np.ndarray, compute: Any) -> np.ndarray:
        """The row number of each key in `values` (stable: rows are only appended)."""
        pos = np.searchsorted(self.keys, keys)
        if len(self.keys):
            found = self.keys[np.minimum(pos, len(self.keys) - 1)] == keys
        else:
            found = np.zeros(len(keys), dtype=bool)
        if not found.all():
            new = np.unique(keys[~found])
            vals = compute(new)
            k = np.concatenate([self.keys, new])
            idx = np.concatenate([self.index, np.arange(len(self.values), len(self.values) + len(new))])
            order = np.argsort(k, kind="stable")
            self.keys, self.index = k[order], idx[order]
            self.values = np.concatenate([self.values, vals])
            pos = np.searchsorted(self.keys, keys)
        return self.index[pos]


def register(cache: T) -> T:
    """Add `cache` to the registry and return it (usable as a decorator above ``@lru_cache``)."""
    _REGISTRY.append(cache)
    return cache


def registered() -> tuple[Any, ...]:
    """Every registered cache, in registration order."""
    return tuple(_REGISTRY)


def clear_caches() -> None:
    """Empty every registered cache (for benchmarks, tests and memory)."""
    for c in _REGISTRY:
        if hasattr(c, "cache_clear"):
            c.cache_clear()
        else:
            c.clear()
