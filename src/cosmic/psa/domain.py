"""Knob domains and dimension modes as written in a PSA file.

A domain is one of::

    {values: [a, b, c]}                  # a finite list, kept in the written order
    {range: [lo, hi], step: s}           # integers lo, lo+s, ... <= hi (step defaults to 1)
    {pow2: [lo, hi]}                     # powers of two between the bounds
    {float_range: [lo, hi], step: s}     # lo, lo+s, ... <= hi (or `num: n` evenly spaced points)

A bare list is shorthand for ``values``. The dimension mode (``mode:``) is ``scalar`` (one value), ``per_dim`` (one
independent value per network dimension) or ``shared`` (one value used for every dimension).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from cosmic._enums import LenientStrEnum
from cosmic.errors import ConfigError, extra_keys
from cosmic.psa.knobs import KnobDef

_MAX_DOMAIN = 1_000_000


class DimMode(LenientStrEnum):
    SCALAR = "scalar"
    PER_DIM = "per_dim"
    SHARED = "shared"

    @classmethod
    def _aliases(cls) -> dict[str, str]:
        return {"perdimension": "per_dim", "broadcast": "shared"}


@dataclass(frozen=True)
class Domain:
    """The finite, ordered set of values of one knob and how it was declared (for `psa show`)."""

    values: tuple[Any, ...]
    spec: str

    def __len__(self) -> int:
        return len(self.values)


@dataclass(frozen=True)
class Knob:
    """A searched knob: its definition, domain and dimension mode."""

    defn: KnobDef
    domain: Domain
    mode: DimMode

    @property
    def name(self) -> str:
        return self.defn.name

    def n_raw_points(self, n_dims: int) -> int:
        """Number of raw values of this knob (before constraints): |domain| or |domain|^n_dims."""
        return len(self.domain) ** n_dims if self.mode is DimMode.PER_DIM else len(self.domain)


def _num(v: Any, what: str, file: str | None, key: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise ConfigError(f"{what} must be a finite number, got {v!r}", file=file, key=key)
    return v


def _float_items(raw: dict[str, Any], lo: float, hi: float, file: str | None, key: str, dkey: str,
                 ) -> tuple[list[Any], str]:
    """The values and description of a float_range domain (by `num` points or by `step`)."""
    if "step" in raw and "num" in raw:
        raise ConfigError("give step or num, not both", file=file, key=key)
    if "num" in raw:
        num = raw["num"]
        if isinstance(num, bool) or not isinstance(num, int) or num < 1 or num > _MAX_DOMAIN:
            raise ConfigError(f"num must be an integer in 1..{_MAX_DOMAIN}, got {num!r}", file=file,
                              key=f"{key}.num")
        items = [lo] if num == 1 else [lo + (hi - lo) * i / (num - 1) for i in range(num)] if hi >= lo else []
        spec = f"{num} points in [{lo:g}, {hi:g}]"
    else:
        step = _num(raw["step"], "step", file, f"{key}.step") if "step" in raw else None
        if step is None or step <= 0:
            raise ConfigError("float_range needs a positive step or num", file=file, key=key)
        n = int(math.floor((hi - lo) / step + 1e-9)) + 1 if hi >= lo else 0
        if n > _MAX_DOMAIN:
            raise ConfigError(f"domain of {n:,} values is too large", file=file, key=dkey)
        items = [round(lo + i * step, 12) for i in range(n)]
        spec = f"{lo:g}..{hi:g} step {step:g}"
    return items, spec


def parse_domain(raw: Any, defn: KnobDef, *, file: str | None, key: str) -> tuple[Domain, Any]:
    """Parse a knob entry; returns the domain and the raw `mode` value (or None)."""
    mode = None
    if isinstance(raw, list):
        raw = {"values": raw}
    if not isinstance(raw, dict):
        raise ConfigError(
            "a knob needs a domain: values: [...], range: [lo, hi], pow2: [lo, hi] or float_range: [lo, hi]",
            file=file, key=key,
        )
    raw = dict(raw)
    mode = raw.pop("mode", None)
    kinds = [k for k in ("values", "range", "pow2", "float_range") if k in raw]
    if len(kinds) != 1:
        raise ConfigError(
            "give exactly one of values, range, pow2, float_range" + (f" (got {', '.join(kinds)})" if kinds else ""),
            file=file, key=key,
        )
    kind = kinds[0]
    allowed = {"values": set(), "range": {"step"}, "pow2": set(), "float_range": {"step", "num"}}[kind]
    extra = extra_keys(raw, {kind} | allowed)
    if extra:
        raise ConfigError(f"unknown key {extra[0]!r} in a {kind} domain", file=file, key=f"{key}.{extra[0]}")
    body = raw[kind]
    dkey = f"{key}.{kind}"
    if kind == "values":
        if not isinstance(body, list):
            raise ConfigError("values must be a list", file=file, key=dkey)
        items = body
        spec = "{" + ", ".join(str(x) for x in body) + "}"
    else:
        if not isinstance(body, list) or len(body) != 2:
            raise ConfigError(f"{kind} must be [lo, hi]", file=file, key=dkey)
        lo, hi = (_num(x, "a bound", file, dkey) for x in body)
        if kind == "range":
            step = raw.get("step", 1)
            if isinstance(step, bool) or not isinstance(step, int) or step < 1:
                raise ConfigError(f"step must be a positive integer, got {step!r}", file=file, key=f"{key}.step")
            if int(lo) != lo or int(hi) != hi:
                raise ConfigError("range bounds must be integers (use float_range for reals)", file=file, key=dkey)
            n = max(0, (int(hi) - int(lo)) // step + 1)
            if n > _MAX_DOMAIN:
                raise ConfigError(f"domain of {n:,} values is too large (at most {_MAX_DOMAIN:,})", file=file, key=dkey)
            items = list(range(int(lo), int(hi) + 1, step))
            spec = f"{int(lo)}..{int(hi)} step {step}"
        elif kind == "pow2":
            items = []
            p = 1
            while p <= hi:
                if p >= lo:
                    items.append(p)
                p *= 2
            spec = f"powers of two in [{lo:g}, {hi:g}]"
        else:
            items, spec = _float_items(raw, lo, hi, file, key, dkey)
    if not items:
        raise ConfigError("empty domain (no value satisfies it)", file=file, key=dkey)
    return Domain(_parsed(items, defn, kind, file, dkey), spec), mode


def _parsed(items: list[Any], defn: KnobDef, kind: str, file: str | None, dkey: str) -> tuple[Any, ...]:
    """The canonical values of a domain's raw items (ConfigError on a bad or duplicate value)."""
    values: list[Any] = []
    seen: set[Any] = set()  # parsed values are hashable; a set keeps a 10^6-value domain linear, not quadratic
    for i, x in enumerate(items):
        try:
            val = defn.parse(x)
        except ValueError as exc:
            raise ConfigError(str(exc), file=file, key=f"{dkey}[{i}]" if kind == "values" else dkey) from None
        if val in seen:
            raise ConfigError(f"duplicate value {x!r}", file=file, key=f"{dkey}[{i}]")
        seen.add(val)
        values.append(val)
    return tuple(values)
