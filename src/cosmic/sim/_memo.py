"""A bounded memo for the simulator's sub-configuration caches."""

from __future__ import annotations

from typing import Any


class BoundedMemo(dict):  # type: ignore[type-arg]
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
