"""What would make a configuration fit in memory: each single change re-simulated, not estimated.

`cosmic simulate` prints this when a configuration does not fit. The candidates are the usual memory levers of
Korthikanti et al. 2022 and ZeRO (Rajbhandari et al. 2020): Megatron sequence parallelism, a higher ZeRO stage,
selective or full activation recompute, a smaller micro-batch, and twice the TP or PP degree taken from DP (the
number of NPUs stays the same). Each candidate is validated and simulated like any configuration; candidates the
configuration checks refuse (a TP degree that does not divide the heads, layers that do not split into the stages)
are left out.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from cosmic.errors import CosmicError

_RECOMPUTE_ORDER = ("none", "selective", "full")


@dataclass(frozen=True)
class FitChange:
    """One single change to a configuration and what the simulator says of it."""

    change: str  # e.g. "zero 1 -> 2"
    memory_bytes: float
    capacity_bytes: float
    step_time_s: float
    fits: bool

    def to_dict(self) -> dict[str, Any]:
        return {"change": self.change, "memory_per_device_gb": self.memory_bytes / 1e9,
                "memory_capacity_gb": self.capacity_bytes / 1e9, "step_time_s": self.step_time_s,
                "fits_memory": self.fits}


def _candidates(d: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(description, modified configuration dict) for every single change worth trying."""
    par = dict(d.get("parallel") or {})
    tr = dict(d.get("training") or {})

    def with_(section: str, **kw: Any) -> dict[str, Any]:
        new = {**d, section: {**(par if section == "parallel" else tr), **kw}}
        return new

    if par.get("tp", 1) > 1 and not par.get("sequence_parallel", False):
        yield "sequence_parallel false -> true", with_("parallel", sequence_parallel=True)
    zero = int(par.get("zero", 0))
    for z in range(zero + 1, 4):
        yield f"zero {zero} -> {z}", with_("parallel", zero=z)
    rec = str(tr.get("recompute", "none"))
    if rec in _RECOMPUTE_ORDER:
        for r in _RECOMPUTE_ORDER[_RECOMPUTE_ORDER.index(rec) + 1:]:
            yield f"recompute {rec} -> {r}", with_("training", recompute=r)
    mb = int(tr.get("micro_batch", 1))
    if mb > 1:
        yield f"micro_batch {mb} -> 1", with_("training", micro_batch=1)
    dp = int(par.get("dp", 1))
    if dp % 2 == 0:
        for k in ("tp", "pp"):
            v = int(par.get(k, 1))
            yield f"{k} {v} -> {2 * v} (dp {dp} -> {dp // 2})", with_("parallel", **{k: 2 * v, "dp": dp // 2})


def fit_changes(config: Any) -> list[FitChange]:
    """Every single change of `config` (a SystemConfig) that the simulator accepts, simulated; the ones that fit
    first, fastest first, then the others by their memory."""
    from cosmic.sim import config_from_dict, simulate

    base = config.to_yaml_dict()
    found: list[FitChange] = []
    for change, d in _candidates(base):
        try:
            r = simulate(config_from_dict(d))
        except CosmicError:
            continue  # this change makes a configuration the checks refuse
        found.append(FitChange(change, r.memory.total_bytes, r.memory_capacity_bytes, r.step_time_s,
                               bool(r.fits_memory)))
    return sorted(found, key=lambda c: (not c.fits, c.step_time_s if c.fits else c.memory_bytes))
