"""Lower bounds on the step time of whole sub-boxes of a PSA space, provably valid for the simulator.

The bounds are computed with the simulator's own phases (`cosmic.sim.step`: `plan`, `layer_comm`, `stage_rows`,
`tails`, `compose`), never with a copy of its formulas. Why each one is a lower bound, from those formulas:

1. **Communication costs are non-negative and monotone in bandwidth and latency.** Every per-dimension phase of a
   collective is ``latency * a + bytes / bandwidth * b`` with ``a, b >= 0`` (`cosmic.collective.communicator`); a
   collective composes its phases as ``sum(busy) + (chunks - 1) * max(busy)`` and a send as ``max(busy)``, both
   non-decreasing in every phase. So with the topology, group layout, algorithms, chunks and multi-dimensional mode
   fixed, every collective is cheapest at the largest bandwidth and the smallest latency of a box, and costs zero on
   an infinitely fast network.
2. **A stage's time per micro-batch (`StageRow.x`) is non-decreasing in every collective's cost.** It is compute plus
   TP, SP and PP terms that are sums of costs and of ``overlap_cost_s(comm, compute, share) = max(comm - compute,
   share * comm)`` with a compute-only second argument, plus the ZeRO-3 term. That term overlaps gathers with a
   "stream" that itself contains TP/SP communication; ``overlap_cost_s(c, s) + s`` is non-decreasing in ``s``, and
   the TP and SP terms of the row equal exactly the communication in the two streams, so the row as a whole is
   non-decreasing.
3. **The pipeline time is non-decreasing in every row**: ``m * x_max + (sum_r count_r x_r - x_max) / v`` equals
   ``(m - 1/v) x_max + sum_r count_r x_r / v`` with ``m >= 1``, ``v >= 1``.
4. **The tail** (`tails`) of each stage run is ``exposed + gather + optimizer``, all non-negative; ``gather`` is
   non-decreasing in its collective (it overlaps compute only); the optimizer does not depend on the network. For
   the first stage run the slack is 0 and ``exposed >= f(t_dp, window) = max(0, t_dp - window) + share *
   min(t_dp, window)`` (without DP overlap: ``t_dp``), plus a non-negative FIFO penalty; the LIFO rule only
   shortens the window. ``f`` is non-decreasing in ``t_dp`` and non-increasing in ``window``, so ``f(t_dp at the
   cheapest corner, window at the dearest corner)`` bounds it. The window is ``bwd + rec + row.tp / 3``, largest at
   the dearest corner. Later runs' exposure is bounded by 0.
5. The step is ``pipeline + max over runs of the tail`` (`compose`), so the bound is `compose` over the rows of the
   cheapest corner and the tails of 4.

Points whose memory does not fit the device (when the PSA asks for memory fit; memory does not depend on the network
or the collectives: `plan`), and points the simulator refuses, can never be the optimum: their bound is ``inf``.
`tests/agents/test_bounds.py` checks every bound against `simulate` on random points of several presets.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from cosmic.collective.communicator import Priced
from cosmic.errors import ConfigError
from cosmic.psa.knobs import KNOBS
from cosmic.sim.batch import communicator_columns, priced_here, step_inputs_columns  # the batch path's own wiring
from cosmic.sim.columns import SCHEDULINGS
from cosmic.sim.engine import dp_shares_tp
from cosmic.sim.step import Tail, compose, layer_comm, plan, stage_rows, tails

LARGER_IS_FASTER = frozenset({"link_gibps", "link_gbps", "npu_bandwidth_gibps", "npu_bandwidth_gbps"})
"""Knobs every collective gets cheaper with (bandwidth; point 1 of the module docstring)."""
SMALLER_IS_FASTER = frozenset({"latency_ns"})
"""Knobs every collective gets cheaper as they shrink (latency)."""
COMPUTE_STACKS = frozenset({"workload", "compute"})


def coordinate_roles(space: Any) -> tuple[list[int], list[int], list[int], np.ndarray]:
    """Split the coordinates of `space` into workload/compute ones (W), monotone network ones (M: bandwidth,
    latency) and the other network/collective ones (R); for M also the index of the fastest value of each."""
    w, m, r, best = [], [], [], []
    for i, c in enumerate(space._coords):
        stacks = {KNOBS[k].stack for k in c.knobs}
        if stacks <= COMPUTE_STACKS:
            w.append(i)
        elif len(c.knobs) == 1 and c.ordered_numeric and c.knobs[0] in LARGER_IS_FASTER | SMALLER_IS_FASTER:
            m.append(i)
            best.append(c.card - 1 if c.knobs[0] in LARGER_IS_FASTER else 0)
        else:
            r.append(i)
    return w, m, r, np.asarray(best, dtype=np.int64)


def check_space(space: Any) -> None:
    """Refuse a space the bounds do not hold for (clear one-line errors)."""
    objs = [o.name for o in space.objectives]
    if objs != ["step_time"] or space.objectives[0].direction != "minimize":
        raise ConfigError(f"bnb bounds the step time only: the space {space.name!r} optimises {', '.join(objs)} "
                          "(use a PSA whose objectives are [step_time])")
    if space.base.collective.fidelity != "cosmic":
        raise ConfigError(f"bnb: the space {space.name!r} uses collective fidelity "
                          f"{space.base.collective.fidelity!r}; its bounds hold for cosmic's closed forms only")


class _Corner:
    """The columns of a set of corner points and what the batch path derives from them."""

    def __init__(self, space: Any, points: np.ndarray, *, free_network: bool = False) -> None:
        cols, ok = space.decode_columns(points)
        x, tr = step_inputs_columns(cols)
        comm = communicator_columns(cols)
        if free_network:  # an infinitely fast network: every phase coefficient is 0
            comm.lat = np.zeros_like(comm.lat)
            comm.bw = np.full_like(comm.bw, np.inf)
            failed = np.full_like(comm.failed, -1)
        else:
            failed = comm.failed
        big = cols.network.npus.max(axis=1) >= 1 << 20  # priced by the scalar path: no bound
        self.valid = ok & (priced_here(cols, x, tr, failed) | big)
        self.unbounded = big
        self.x, self.tr, self.comm = x, tr, comm
        self.lifo = cols.collective.scheduling == SCHEDULINGS.index("LIFO")
        self.chunks = cols.collective.chunks


def _bound(space: Any, fast: _Corner, slow: _Corner | None) -> np.ndarray:
    x, comm = fast.x, fast.comm
    p = plan(x)
    c = layer_comm(x, p, comm)
    rows = stage_rows(x, p, c, comm)
    tl = tails(x, p, c, rows, comm, fast.lifo, fast.chunks, dp_shares_tp(comm))
    if slow is not None:
        ps = plan(slow.x)
        rows_slow = stage_rows(slow.x, ps, layer_comm(slow.x, ps, slow.comm), slow.comm)
        r0 = rows_slow[0]
        assert r0 is not None
        window = np.where(x.dp_overlap, r0.bwd + r0.rec + r0.tp / 3.0, 0.0)
    else:
        window = np.where(x.dp_overlap, np.inf, 0.0)
    zero = Priced(np.zeros(len(fast.chunks)), (np.zeros(len(fast.chunks)),) * comm.n_dims)
    lower: list[Tail | None] = []
    for k, t in enumerate(tl):
        if t is None:
            lower.append(None)
            continue
        exposed = 0.0
        if k == 0:  # slack 0 (point 4 of the module docstring)
            t_dp = t.t_dp
            w = np.where(np.isinf(window), 0.0, window)
            exposed = np.where(np.isinf(window), x.share * t_dp,
                               np.maximum(0.0, t_dp - w) + x.share * np.minimum(t_dp, w))
        lower.append(Tail(exposed + t.gather_s + t.optimizer_s, 0.0, zero, 0.0, zero, 0.0, 0.0))
    lb = np.asarray(compose(x, p, c, rows, tuple(lower), comm.n_dims).step_s, dtype=float)
    lb = np.broadcast_to(lb, (len(fast.chunks),)).copy()
    if space.memory_fit:
        lb[p.memory.total_bytes > fast.tr["mem_bytes"]] = np.inf
    return lb


def box_bounds(space: Any, fast_points: np.ndarray, slow_points: np.ndarray | None = None, *,
               free_network: bool = False) -> np.ndarray:
    """A lower bound of the step time over each box, one row per box.

    A box is every point that equals ``fast_points[i]`` on the W and R coordinates (`coordinate_roles`) and lies, on
    each M coordinate, between ``slow_points[i]`` and ``fast_points[i]``; the fast corner has the largest bandwidth
    and smallest latency of the box. Without `slow_points` the bound holds for any slower M values.
    ``free_network=True`` bounds every network and collective choice at once (an infinitely fast network: the
    compute-only step), so it depends on the W coordinates only. ``inf`` marks boxes without a feasible point.
    """
    fast_points = np.asarray(fast_points, dtype=np.int64)
    n = len(fast_points)
    if n == 0:
        return np.zeros(0)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        fast = _Corner(space, fast_points, free_network=free_network)
        slow = None
        if slow_points is not None and not free_network:
            slow = _Corner(space, np.asarray(slow_points, dtype=np.int64))
        lb = _bound(space, fast, slow)
    lb = np.where(np.isnan(lb), 0.0, lb)
    lb[~fast.valid] = np.inf
    lb[fast.unbounded] = 0.0
    return lb
