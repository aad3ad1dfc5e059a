"""Evidence beside every prediction: how wrong cosmic was on the published runs of the prediction's regime.

The table is package data (``cosmic/catalog/evidence.json``), built once from the validation files by
``python -m cosmic.validate.evidence build``; nothing is computed from the network or the validation files at run
time. Sign convention (docs/validation.md, Evidence): a run's signed error is ``(predicted - measured) / measured``
of the step time, so a model that is too fast (optimistic) has a negative error. ``p50_error_pct`` is the median
signed error of the regime's runs; ``p90_error_pct`` is the 90% pessimistic bound: 90% of the runs erred at or
above it (the 10th percentile of the signed errors), so ``predicted / (1 + p90)`` is the step time that 90% of the
regime's runs would not have exceeded.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np

from cosmic import catalog
from cosmic.caches import BoundedMemo, register
from cosmic.sim.regime import LEVELS, Regime, classify, level_key

MIN_RUNS = 10
"""The fewest published runs a regime needs for its own p50/p90; a finer regime with fewer falls back to the next
coarser one (`cosmic.sim.regime.LEVELS`). With n runs the 10th percentile lies 0.1 (n - 1) runs above the most
optimistic one: below 10 runs it is interpolated inside the single most optimistic run's gap, i.e. it is that run,
not a 90% bound."""

RISKS = ("p50", "p90")
"""The estimates `pessimistic_factor` knows: the median-corrected and the 90%-pessimistic step time."""


@dataclass(frozen=True, slots=True)
class Evidence:
    """The published runs behind one prediction.

    ``regime`` is the regime the runs were counted in (the configuration's own at the finest level that has
    `MIN_RUNS` runs; see `cosmic.sim.regime.LEVELS`); ``config_regime`` the configuration's full description.
    ``runs`` is 0 and the errors ``None`` when no published run lies in any regime of the configuration.
    """

    regime: str
    config_regime: str
    runs: int
    p50_error_pct: float | None
    p90_error_pct: float | None

    @property
    def validated(self) -> bool:
        """Whether any published run lies in a regime of this configuration."""
        return self.runs > 0

    def to_dict(self) -> dict[str, Any]:
        return {"regime": self.regime, "runs": self.runs, "p50_error_pct": self.p50_error_pct,
                "p90_error_pct": self.p90_error_pct, "config_regime": self.config_regime}

    def to_record(self) -> dict[str, Any]:
        """`to_dict` without ``config_regime`` when it is the ``regime`` (what a stored trial keeps)."""
        d = self.to_dict()
        if self.config_regime == self.regime:
            del d["config_regime"]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Evidence:
        """The evidence of `to_dict` or `to_record`."""
        return cls(regime=str(d["regime"]), config_regime=str(d.get("config_regime", d["regime"])),
                   runs=int(d["runs"]), p50_error_pct=d.get("p50_error_pct"), p90_error_pct=d.get("p90_error_pct"))

    def line(self) -> str:
        """What `cosmic simulate` prints, e.g. ``typical error in this regime: -12%, p90 -20%, from 103 published
        runs (pytorch-fsdp · ampere · 16-bit · zero-3/fsdp)``."""
        if not self.validated or self.p50_error_pct is None or self.p90_error_pct is None:
            return f"no published run in this regime ({self.config_regime})"
        runs = f"{self.runs} published run" + ("s" if self.runs != 1 else "")
        thin = f", fewer than {MIN_RUNS}" if self.runs < MIN_RUNS else ""
        return (f"typical error in this regime: {self.p50_error_pct:+.0f}%, p90 {self.p90_error_pct:+.0f}%, "
                f"from {runs}{thin} ({self.regime})")


@cache
def _levels() -> tuple[dict[str, tuple[int, float, float]], ...]:
    """The shipped table per level: key -> (runs, p50, p90)."""
    table = catalog.evidence_table()
    levels = table.get("levels") or []
    out = []
    for i in range(len(LEVELS)):
        entries = levels[i]["regimes"] if i < len(levels) else {}
        out.append({k: (int(v["runs"]), float(v["p50_error_pct"]), float(v["p90_error_pct"]))
                    for k, v in entries.items()})
    return tuple(out)


register(_levels)


def lookup(regime: Regime) -> Evidence:
    """The evidence of `regime`: the finest level whose regime has `MIN_RUNS` published runs; when none has, the
    level with the most runs (its count says how few); none at all: no published run."""
    best: tuple[str, tuple[int, float, float]] | None = None
    for i, table in enumerate(_levels()):
        key = level_key(regime, i)
        entry = table.get(key) if key is not None else None
        if entry is None:
            continue
        if entry[0] >= MIN_RUNS:
            return Evidence(key, regime.label, *entry)  # type: ignore[arg-type]
        if best is None or entry[0] > best[1][0]:
            best = (key, entry)  # type: ignore[assignment]
    if best is not None:
        return Evidence(best[0], regime.label, *best[1])
    return Evidence(regime.label, regime.label, 0, None, None)


_EVIDENCE = register(BoundedMemo(1 << 12))


def evidence_of(accelerator: Any, training: Any, zero: int, tp: int, pp: int, cp: int,
                sequence_parallel: bool) -> Evidence:
    """The evidence of one configuration's parts (see `cosmic.sim.regime.classify`)."""
    regime = classify(accelerator, training, zero, tp, pp, cp, sequence_parallel)
    hit = _EVIDENCE.get(regime)
    return hit if hit is not None else _EVIDENCE.put(regime, lookup(regime))


def evidence_of_config(config: Any) -> Evidence:
    """The evidence of a `SystemConfig`."""
    p = config.parallel
    return evidence_of(config.accelerator, config.training, p.zero, p.tp, p.pp, p.sp, p.sequence_parallel)


@cache
def worst_bound_pct(risk: str) -> float:
    """The most optimistic `risk` error of any regime with `MIN_RUNS` runs (0 without a table): what a
    configuration outside every validated regime is assumed to err by."""
    col = 1 if risk == "p50" else 2
    vals = [e[col] for t in _levels() for e in t.values() if e[0] >= MIN_RUNS]
    return min(vals) if vals else 0.0


register(worst_bound_pct)


def pessimistic_factor(evidence: Evidence, risk: str) -> float:
    """The factor that turns a predicted step time into the `risk` estimate (``p50`` or ``p90``):
    ``1 / (1 + error / 100)``, the measured time of a run that erred by that much. Outside every validated regime
    the most optimistic bound of any regime (`worst_bound_pct`) is assumed.

    Example:
        >>> pessimistic_factor(Evidence("r", "r", 20, -12.0, -20.0), "p90")
        1.25
    """
    if risk not in RISKS:
        raise ValueError(f"risk must be one of {', '.join(RISKS)}, got {risk!r}")
    err = evidence.p50_error_pct if risk == "p50" else evidence.p90_error_pct
    if not evidence.validated or err is None or not math.isfinite(err):
        err = worst_bound_pct(risk)
    return 1.0 / (1.0 + err / 100.0)


def evidence_columns(columns: Any) -> dict[str, np.ndarray]:
    """Each row's evidence of a `StepColumns`: ``runs``, ``p50_error_pct``, ``p90_error_pct`` (NaN without runs)
    and ``regime_index`` into ``regimes`` (an object array of the distinct `Evidence`)."""
    c = columns
    seqpar = c.sequence_parallel & (c.tp > 1)
    parts = np.stack([c.accelerator, c.training, c.zero, c.tp > 1, c.pp > 1, c.sp > 1, seqpar], axis=1)
    parts = parts.astype(np.int64)
    uniq, inverse = np.unique(parts, axis=0, return_inverse=True)
    found = [evidence_of(c.accelerators[a], c.trainings[t], z, 1 + tp, 1 + pp, 1 + cp, bool(sq))
             for a, t, z, tp, pp, cp, sq in uniq.tolist()]
    inverse = inverse.reshape(-1)
    runs = np.array([e.runs for e in found], dtype=np.int64)
    p50 = np.array([math.nan if e.p50_error_pct is None else e.p50_error_pct for e in found])
    p90 = np.array([math.nan if e.p90_error_pct is None else e.p90_error_pct for e in found])
    regimes = np.empty(len(found), dtype=object)
    regimes[:] = found
    return {"runs": runs[inverse], "p50_error_pct": p50[inverse], "p90_error_pct": p90[inverse],
            "regime_index": inverse, "regimes": regimes}


def pessimistic_factor_columns(columns: Any, risk: str) -> np.ndarray:
    """`pessimistic_factor` of every row of a `StepColumns`."""
    ev = evidence_columns(columns)
    per = np.array([pessimistic_factor(e, risk) for e in ev["regimes"]])
    return per[ev["regime_index"]]


__all__ = ["MIN_RUNS", "RISKS", "Evidence", "evidence_columns", "evidence_of", "evidence_of_config", "lookup",
           "pessimistic_factor", "pessimistic_factor_columns", "worst_bound_pct"]
