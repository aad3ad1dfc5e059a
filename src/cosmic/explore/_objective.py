"""Evaluating points of a PSA: decode, simulate, compute the objectives, and say plainly when a point is infeasible."""

from __future__ import annotations

import gc
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from cosmic.errors import CosmicError
from cosmic.sim import BREAKDOWN_KEYS, simulate
from cosmic.sim.engine import simulate_if_fits
from cosmic.sim.result import Memory

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
        try:
            cfg = self.space.decode(p)
            if self.time_unfit:
                result = simulate(cfg)
            else:
                result = simulate_if_fits(cfg)
                if isinstance(result, Memory):
                    cap = cfg.accelerator.mem_bytes
                    self.counts["memory"] += 1
                    return Evaluation(
                        p, "memory", None, max(result.total_bytes / cap - 1.0, 1e-12) if cap > 0 else math.inf,
                        reason=f"memory: {result.total_bytes / 1e9:,.1f} GB per device exceeds {cap / 1e9:,.1f} GB "
                        "(not timed)",
                        config=cfg,
                    )
        except CosmicError as exc:
            self.counts["rejected"] += 1
            return Evaluation(p, "rejected", None, math.inf, reason=f"{exc.__class__.__name__}: {exc}")
        raw = tuple([float(o.value(result, cfg)) for o in self.objectives])
        if self.memory_fit and not result.fits_memory:
            cap = result.memory_capacity_bytes
            over = result.memory.total_bytes / cap - 1.0 if cap > 0 else math.inf
            self.counts["memory"] += 1
            ev = Evaluation(
                p, "memory", None, max(over, 1e-12),
                reason=f"memory: {result.memory_per_device_gb:,.1f} GB per device exceeds {cap / 1e9:,.1f} GB",
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
        """Evaluate a batch with the cyclic garbage collector paused (decode and simulate create no reference
        cycles; the collector would only rescan the simulator's caches, about a third of the time)."""
        enabled = gc.isenabled()
        gc.disable()
        try:
            return [self.evaluate_one(p) for p in np.asarray(points, dtype=np.int64).reshape(len(points), -1)]
        finally:
            if enabled:
                gc.enable()


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
