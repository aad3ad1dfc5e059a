"""Evaluating points of a PSA: decode, simulate, compute the objectives, and say plainly when a point is infeasible."""

from __future__ import annotations

import gc
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from cosmic.errors import CosmicError
from cosmic.psa.objectives import ResultColumns
from cosmic.sim import BREAKDOWN_KEYS, simulate
from cosmic.sim.batch import simulate_columns
from cosmic.sim.engine import simulate_if_fits
from cosmic.sim.evidence import pessimistic_factor_columns
from cosmic.sim.result import Memory, Result

FEATURE_NAMES: tuple[str, ...] = tuple(f"{k.removesuffix('_s')}_share" for k in BREAKDOWN_KEYS)
"""The observation features an evaluation gives the RL env: each breakdown component's share of the step time."""

_NO_FEATURES = np.zeros(len(BREAKDOWN_KEYS))
_NO_FEATURES.flags.writeable = False  # shared by every evaluation that has no breakdown


@dataclass(slots=True)
class Evaluation:
    """The outcome of one point.

    ``status`` is ``"ok"``, ``"memory"`` (simulated, but the footprint exceeds device memory and the PSA asks for
    memory fit) or ``"rejected"`` (decode or the simulator raised an error: the configuration cannot run).
    ``values`` is ``None`` unless ``status == "ok"``. ``violation`` is 0 when ok, the fraction by which memory is
    exceeded for ``"memory"``, ``inf`` for ``"rejected"``.
    """

    point: np.ndarray
    status: str
    values: tuple[float, ...] | None
    violation: float
    reason: str | None = None
    config: Any = None
    result: Any = None
    raw: tuple[float, ...] | None = None
    """Objective values, also for memory-infeasible points (``None`` when rejected)."""

    @property
    def features(self) -> np.ndarray:
        """Each breakdown component's share of the step time (`FEATURE_NAMES`; zeros without a result)."""
        r = self.result
        if r is None:
            return _NO_FEATURES
        step = r.step_time_s or 1.0
        return np.array([r.breakdown[k] / step for k in BREAKDOWN_KEYS], dtype=np.float64)


def memory_reason(memory_bytes: float, capacity_bytes: float, *, timed: bool) -> str:
    """Why a configuration is memory-infeasible, as a trial records it.

    Example:
        >>> memory_reason(90e9, 80e9, timed=False)
        'memory: 90.0 GB per device exceeds 80.0 GB (not timed)'
    """
    return (f"memory: {memory_bytes / 1e9:,.1f} GB per device exceeds {capacity_bytes / 1e9:,.1f} GB"
            + ("" if timed else " (not timed)"))


class Evaluator:
    """``evaluate(points)`` for a space: one `Evaluation` per point, with counts of each status.

    Args:
        space: the PSA.
        time_unfit: simulate the step of configurations that do not fit in memory too (default), so their
            unconstrained objective values and breakdown are kept. With ``False`` (exhaustive search, which only
            needs the feasible optimum) the memory footprint is computed first and a configuration that cannot fit
            is recorded as ``"memory"`` without being timed: its ``raw`` values and ``result`` are ``None``.
    """

    def __init__(self, space: Any, *, time_unfit: bool = True) -> None:
        self.space = space
        self.objectives = list(space.objectives)
        self.memory_fit = bool(getattr(space, "memory_fit", True))
        self.time_unfit = bool(time_unfit) or not self.memory_fit
        self.counts = {"ok": 0, "memory": 0, "rejected": 0}

    def evaluate_one(self, point: np.ndarray) -> Evaluation:
        p = np.asarray(point, dtype=np.int64)
        run = getattr(self.space, "simulate", simulate)  # a serving space runs the serving simulation
        try:
            cfg = self.space.decode(p)
            result: Result | Memory
            if self.time_unfit or run is not simulate:
                result = run(cfg)
            else:
                result = simulate_if_fits(cfg)
                if isinstance(result, Memory):
                    cap = cfg.accelerator.mem_bytes
                    self.counts["memory"] += 1
                    return Evaluation(
                        p, "memory", None, max(result.total_bytes / cap - 1.0, 1e-12) if cap > 0 else math.inf,
                        reason=memory_reason(result.total_bytes, cap, timed=False),
                        config=cfg,
                    )
        except CosmicError as exc:
            self.counts["rejected"] += 1
            return Evaluation(p, "rejected", None, math.inf, reason=f"{exc.__class__.__name__}: {exc}")
        raw = tuple([float(o.value(result, cfg)) for o in self.objectives])
        if self.memory_fit and not result.fits_memory:
            cap = result.memory_capacity_bytes
            used = result.memory_bytes if hasattr(result, "memory_bytes") else result.memory.total_bytes
            over = used / cap - 1.0 if cap > 0 else math.inf
            self.counts["memory"] += 1
            ev = Evaluation(
                p, "memory", None, max(over, 1e-12),
                reason=memory_reason(used, cap, timed=True),
                config=cfg, result=result,
            )
        elif not all(math.isfinite(v) for v in raw):
            self.counts["rejected"] += 1
            ev = Evaluation(p, "rejected", None, math.inf, reason=f"objective not finite: {raw}",
                            config=cfg, result=result)
        else:
            self.counts["ok"] += 1
            ev = Evaluation(p, "ok", raw, 0.0, config=cfg, result=result)
        ev.raw = raw
        return ev

    def evaluate(self, points: np.ndarray) -> list[Evaluation]:
        """One `Evaluation` per point (the batch path, materialised; see `evaluate_batch`)."""
        eb = self.evaluate_batch(points)
        return [eb.evaluation(i) for i in range(len(eb))]

    def evaluate_batch(self, points: np.ndarray) -> EvalBatch:
        """Evaluate a point matrix as columns: decode to `StepColumns`, `simulate_columns`, objectives on columns.

        Points the batch path does not price (decode refuses them, the simulator's checks fail, ASTRA-sim fidelity)
        are evaluated one at a time by `evaluate_one`, which gives the same statuses, values and reasons. The
        cyclic garbage collector is paused meanwhile (nothing here creates reference cycles).
        """
        pts = np.asarray(points, dtype=np.int64).reshape(len(points), -1)
        enabled = gc.isenabled()
        gc.disable()
        try:
            return self._batch(pts)
        finally:
            if enabled:
                gc.enable()

    def _batch(self, pts: np.ndarray) -> EvalBatch:
        n, k = len(pts), len(self.objectives)
        eb = EvalBatch(self, pts, np.full(n, REJECTED, dtype=np.int8), np.full((n, k), np.nan),
                       np.full((n, k), np.nan), np.full(n, math.inf))
        if n == 0:
            return eb
        decode_columns = getattr(self.space, "decode_columns", None)
        if decode_columns is None:  # a space without a column decode: one point at a time
            for i in range(n):
                eb.set_one(i, self.evaluate_one(pts[i]))
            return eb
        cols, decoded = decode_columns(pts)
        b = simulate_columns(cols, time_unfit=self.time_unfit)
        eb.batch = b
        here = decoded & b.ok
        f = b.figures
        acc_cost = np.array([a.cost_usd or 0.0 for a in cols.accelerators])[cols.accelerator]
        fc = {risk: ResultColumns(f, None if risk is None else pessimistic_factor_columns(cols, risk))
              for risk in {o.risk for o in self.objectives}}
        with np.errstate(invalid="ignore", over="ignore"):
            raw = np.stack([np.asarray(o.values(fc[o.risk], acc_cost), dtype=np.float64) + np.zeros(n)
                            for o in self.objectives], axis=1)
        timed = b.timed if b.timed is not None else np.ones(n, dtype=bool)
        fits = np.asarray(f["fits_memory"], dtype=bool)
        cap = np.asarray(f["memory_capacity_bytes"], dtype=np.float64)
        memory = here & ~fits if self.memory_fit else np.zeros(n, dtype=bool)
        finite = np.isfinite(raw).all(axis=1)
        ok = here & ~memory & finite & timed
        bad = here & ~memory & ~(finite & timed)  # not finite: rejected with its values as reason
        eb.status[ok] = OK
        eb.status[memory] = MEMORY
        eb.values[ok] = raw[ok]
        eb.raw[here & timed] = raw[here & timed]
        eb.violation[ok] = 0.0
        with np.errstate(divide="ignore", invalid="ignore"):
            over = np.where(cap > 0, f["memory_bytes"] / np.where(cap > 0, cap, 1.0) - 1.0, math.inf)
        eb.violation[memory] = np.maximum(over[memory], 1e-12)
        eb.violation[bad] = math.inf
        for i in np.flatnonzero(~here).tolist():
            eb.set_one(i, self.evaluate_one(pts[i]))
        self.counts["ok"] += int(ok.sum())
        self.counts["memory"] += int(memory.sum())
        self.counts["rejected"] += int(bad.sum())
        return eb


OK, MEMORY, REJECTED = 0, 1, 2
STATUS_NAMES = ("ok", "memory", "rejected")


class EvalBatch:
    """The outcomes of a batch of points as columns (see `Evaluation` for each field's meaning).

    ``status`` holds codes into `STATUS_NAMES`; ``values``/``raw`` are NaN where an `Evaluation` has ``None``.
    `evaluation(i)` materialises one row (its configuration is rebuilt by the space's decode, its `Result` from
    the batch), so only the rows that are stored or shown become Python objects.
    """

    def __init__(self, evaluator: Evaluator, points: np.ndarray, status: np.ndarray, values: np.ndarray,
                 raw: np.ndarray, violation: np.ndarray) -> None:
        self.evaluator, self.points, self.status = evaluator, points, status
        self.values, self.raw, self.violation = values, raw, violation
        self.batch: Any = None
        self.one: dict[int, Evaluation] = {}  # rows evaluated one at a time

    def __len__(self) -> int:
        return len(self.points)

    def set_one(self, i: int, ev: Evaluation) -> None:
        self.one[i] = ev
        self.status[i] = STATUS_NAMES.index(ev.status)
        self.values[i] = ev.values if ev.values is not None else np.nan
        self.raw[i] = ev.raw if ev.raw is not None else np.nan
        self.violation[i] = ev.violation

    def values_list(self) -> list[tuple[float, ...] | None]:
        """Each row's objective values, ``None`` unless ok (what agents are told)."""
        ok = self.status == OK
        if self.values.shape[1] == 1:  # one objective: 1-tuples straight from the column
            return [(r,) if o else None for r, o in zip(self.values[:, 0].tolist(), ok.tolist(), strict=True)]
        rows = self.values.tolist()
        return [tuple(r) if o else None for r, o in zip(rows, ok.tolist(), strict=True)]

    def features(self) -> np.ndarray:
        """Each row's breakdown shares of the step time (`FEATURE_NAMES`; zeros without a timed result)."""
        out = np.zeros((len(self), len(BREAKDOWN_KEYS)))
        b = self.batch
        if b is not None:
            step = b.figures["step_time_s"]
            good = np.isfinite(step) & (step > 0)
            for j, key in enumerate(BREAKDOWN_KEYS):
                out[good, j] = b.breakdown[key][good] / step[good]
        for i, ev in self.one.items():
            out[i] = ev.features
        return out

    def evaluation(self, i: int, *, config: bool = True) -> Evaluation:
        """Row `i` as an `Evaluation` (the same one `Evaluator.evaluate_one` gives); with ``config=False`` its
        configuration is left out (``None``; what a stored trial needs, which rebuilds it from the point)."""
        ev = self.one.get(i)
        if ev is not None:
            return ev
        space, b = self.evaluator.space, self.batch
        p = self.points[i]
        cfg = space.decode(p) if config else None
        status = STATUS_NAMES[int(self.status[i])]
        timed = b.timed is None or bool(b.timed[i])
        result = b.result(i) if timed else None
        raw = tuple(float(v) for v in self.raw[i]) if timed else None
        values = tuple(float(v) for v in self.values[i]) if status == "ok" else None
        reason = None
        if status == "memory":
            cap = float(b.figures["memory_capacity_bytes"][i])
            reason = memory_reason(float(b.figures["memory_bytes"][i]), cap, timed=timed)
        elif status == "rejected":
            reason = f"objective not finite: {raw}"
        return Evaluation(p, status, values, float(self.violation[i]), reason=reason, config=cfg, result=result,
                          raw=raw)


def with_risk(space: Any, risk: str | None) -> Any:
    """A view of `space` whose objectives that read the step time are pessimistic under `risk` (``p50``/``p90``:
    the step time corrected by that signed error of each configuration's validated regime; see
    `cosmic.sim.evidence`); ``None`` gives `space` itself."""
    import copy

    if risk is None:
        return space
    view = copy.copy(space)
    view.objectives = tuple(o.with_risk(risk) for o in space.objectives)
    return view


def with_objectives(space: Any, specs: list[Any]) -> Any:
    """A view of `space` whose objectives are `specs` (names such as ``step_time*network_cost`` or
    ``{name: ..., direction: ...}``); every other property is the space's own."""
    import copy

    from cosmic.psa import Objective

    if not specs:
        return space
    view = copy.copy(space)
    view.objectives = tuple(Objective.from_spec(s, key="--objective") for s in specs)
    return view
