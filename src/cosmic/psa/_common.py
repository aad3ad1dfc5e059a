"""Small pieces shared by the modules of a compiled PSA: value labels and keys, errors, constraint and coordinate
records."""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cosmic.errors import ConfigError

STRUCTURAL = ("dp", "tp", "pp", "sp", "ep", "etp", "shard_group", "micro_batch", "schedule")
DEGREES = ("dp", "tp", "pp", "sp")
BW = ("link_gibps", "link_gbps", "npu_bandwidth_gibps", "npu_bandwidth_gbps")

Deps = frozenset[int]


@dataclass(frozen=True)
class Constraint:
    """A static constraint: `fn(values) -> bool` over the coordinates `coords`."""

    name: str
    text: str
    fn: Callable[[dict[str, Any]], bool] = field(compare=False, repr=False)
    coords: Deps = frozenset()
    builtin: bool = False


@dataclass
class Coord:
    name: str
    knobs: tuple[str, ...]
    labels: list[str]
    assign: list[tuple[tuple[str, int | None, Any], ...]]
    ordered_numeric: bool = False

    @property
    def card(self) -> int:
        return len(self.assign)


_PRIMITIVE = frozenset({int, float, bool, type(None)})


def plain(v: Any) -> Any:
    t = type(v)
    if t in _PRIMITIVE or t is str:  # the common case, answered before the isinstance chain (same result)
        return v
    if isinstance(v, (tuple, list)):
        return [plain(x) for x in v]
    if isinstance(v, str):  # StrEnum too
        return str(v.value) if hasattr(v, "value") else v
    return v


def label(v: Any) -> str:
    p = plain(v)
    if isinstance(p, list):
        return ",".join(str(x) for x in p)
    if isinstance(p, float):
        return f"{p:g}"
    return str(p)


def value_key(v: Any) -> Any:
    """Hashable, float-tolerant key of a value (for encode)."""
    if isinstance(v, (tuple, list)):
        return tuple(value_key(x) for x in v)
    if isinstance(v, float):
        return round(v, 6)
    return v


def tuple_getter(keys: tuple[str, ...]) -> Callable[[dict[str, Any]], tuple[Any, ...]]:
    """``f(d) == tuple(d[k] for k in keys)``, computed in C (operator.itemgetter returns a bare value for one key)."""
    if len(keys) == 0:
        return lambda d: ()
    if len(keys) == 1:
        (k,) = keys
        return lambda d: (d[k],)
    return operator.itemgetter(*keys)


def fmt_err(file: str | None, key: str, msg: str) -> ConfigError:
    return ConfigError(msg, file=file, key=key)


def conflict_phrase(names: list[str]) -> str:
    if len(names) == 1:
        return f"constraint {names[0]!r} cannot be satisfied"
    quoted = [repr(n) for n in names]
    return "constraints " + ", ".join(quoted[:-1]) + f" and {quoted[-1]} conflict (no point satisfies all of them)"
