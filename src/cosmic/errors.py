"""Errors a user can cause. The CLI prints them as one line and exits with code 2."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any


def _rebuild(cls: type[CosmicError], args: tuple[Any, ...], state: dict[str, Any]) -> CosmicError:
    """Unpickle a :class:`CosmicError` without calling its ``__init__`` (whose signature is the subclass's own)."""
    err = cls.__new__(cls, *args)
    err.args = args
    err.__dict__.update(state)
    return err


class CosmicError(Exception):
    """Base class of every error cosmic raises on bad input. Its text is always one line: line breaks that came in
    with a user's value are shown escaped.

    Every subclass pickles (a worker process or a Ray task can raise it and the parent rebuilds it): ``__reduce__``
    restores ``args`` and the instance attributes without calling the subclass's ``__init__``, whose signature
    (``UnknownNameError(kind, name, known)``) differs from the message alone that ``Exception`` would pass back.
    """

    def __str__(self) -> str:
        return super().__str__().replace("\r", "\\r").replace("\n", "\\n")

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self.args, dict(self.__dict__)))


class ConfigError(CosmicError):
    """A configuration file or value is malformed: names the file, the key path and what is allowed."""

    def __init__(self, message: str, *, file: str | None = None, key: str | None = None) -> None:
        self.file = file
        self.key = key
        self.detail = message
        prefix = ""
        if file:
            prefix += f"{file}: "
        if key:
            prefix += f"{key}: "
        super().__init__(prefix + message)


def close_match(name: str, known: Iterable[str]) -> str | None:
    """The known name closest to `name` (difflib's ratio of at least 0.6), or None.

    Example:
        >>> close_match("micro_bach", ["global_batch", "micro_batch", "schedule"])
        'micro_batch'
    """
    known = [str(k) for k in known]
    # difflib is quadratic in the name's length: a name far longer than any known one has no close match
    longest = max((len(k) for k in known), default=0)
    if len(name) > 2 * longest + 8:
        return None
    hint = difflib.get_close_matches(name, known, n=1)
    return hint[0] if hint else None


class UnknownNameError(ConfigError):
    """A catalog entry, agent, preset or env id that does not exist (with a suggestion)."""

    def __init__(
        self, kind: str, name: str, known: Iterable[str], *, file: str | None = None, key: str | None = None
    ) -> None:
        known = sorted(known)
        hint = close_match(name, known)
        if len(name) > 200:
            name = name[:200] + "..."
        msg = f"unknown {kind} {name!r}"
        if hint:
            msg += f" (did you mean {hint!r}?)"
        shown = ", ".join(known[:12]) + (", ..." if len(known) > 12 else "")
        msg += f"; known: {shown}"
        super().__init__(msg, file=file, key=key)


class KeyedValueError(ValueError):
    """A validation failure that knows which key (relative to the model validated) it concerns."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.key, str(self)))


class InfeasibleError(CosmicError):
    """A well-formed configuration that cannot run (e.g. TP does not divide the heads)."""


class StudyError(CosmicError):
    """A study that is missing, duplicated or whose storage cannot be reached."""


def extra_keys(mapping: Iterable[Any], allowed: Iterable[Any]) -> list[Any]:
    """Keys of `mapping` not in `allowed`, sorted by their text (YAML keys may mix strings and numbers).

    Example:
        >>> extra_keys({"rule": 1, 3: 2, "x": 0}, {"rule"})
        [3, 'x']
    """
    return sorted(set(mapping) - set(allowed), key=str)
