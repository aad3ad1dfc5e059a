"""One lenient string enum for every user-facing choice (topology, algorithm, schedule, ...)."""

from __future__ import annotations

from enum import StrEnum


def _norm(text: str) -> str:
    return text.replace("_", "").replace("-", "").replace(" ", "").lower()


class LenientStrEnum(StrEnum):
    """A StrEnum that also accepts its values (or member names) in any case, with or without ``_``, ``-`` and
    spaces, plus the spellings returned by :meth:`_aliases` (normalised the same way)."""

    @classmethod
    def _aliases(cls) -> dict[str, str]:
        """Extra spellings: normalised alias -> member value."""
        return {}

    @classmethod
    def _missing_(cls, value: object) -> LenientStrEnum | None:
        if not isinstance(value, str):
            return None
        key = _norm(value)
        for member in cls:
            if _norm(member.value) == key or _norm(member.name) == key:
                return member
        target = cls._aliases().get(key)
        return cls(target) if target is not None else None
