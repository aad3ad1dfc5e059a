"""One registry of every memo the simulator keeps, so that :func:`clear_caches` empties them all.

A cache registers itself where it is made (``cached = register(functools.lru_cache(...)(fn))`` or
``register(BoundedMemo(n))``); anything with a ``cache_clear()`` or ``clear()`` method can be registered.
"""

from __future__ import annotations

from typing import Any, TypeVar

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
