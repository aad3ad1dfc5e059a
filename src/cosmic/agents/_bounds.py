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
6. **Relaxed boxes: the topology and the algorithms of a dimension free** (`relaxed_bounds`). Some network and
   collective knobs reach the step only through the phase coefficients ``a, b`` of their own dimension (the
   topology, the collective algorithms, the link latency and bandwidth: `COEFFICIENT_KNOBS`, read through the PSA's
   own dependency analysis, which also names the coordinates each dimension's knobs depend on). With the group
   layout (the NPUs per dimension and the degrees), the chunks and the multi-dimensional mode fixed, every
   collective is non-decreasing in every ``a[d]`` and ``b[d]`` (point 1: busy times ``a + b x`` with ``x >= 0``
   composed by sums and maxima; the hierarchical/flat choice of an all-reduce reads the layout and the mode only;
   a send takes the largest ``a + b x``). So a communicator whose coefficients on each dimension are the smallest
   over every value those coordinates can take (each decoded at the box's fastest M corner) prices every
   collective at most as dear as any point of the box, and points 2 to 5 give a bound of the whole box. The window
   of point 4 is taken with the largest coefficients at the slowest M corner. Nothing else in the step reads them:
   `cosmic.sim.step` sees the network only through the communicator's collectives, sends and group shapes, and
   which rows the batch path prices (`priced_here`) does not depend on them.

Points whose memory does not fit the device (when the PSA asks for memory fit; memory does not depend on the network
or the collectives: `plan`), and points the simulator refuses, can never be the optimum: their bound is ``inf``.
`tests/agents/test_bounds.py` checks every bound against `simulate` on random points of several presets.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from cosmic.collective.columns import STRUCTURES, ColumnCommunicator
from cosmic.collective.communicator import P2P, Coefficients, Priced
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
        self.decoded = ok
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


COEFFICIENT_KNOBS = frozenset({"topology", "all_reduce", "all_gather", "reduce_scatter", "all_to_all", "latency_ns"}) \
    | LARGER_IS_FASTER
"""Knobs that reach the step only through the phase coefficients of their network dimension (point 6 of the module
docstring): the topology, the collective algorithms, the link latency and bandwidth (and the per-NPU bandwidth,
a view of the link bandwidth)."""


def relaxable_coordinates(space: Any, r: list[int]) -> tuple[list[int], list[list[int]]]:
    """Q, the coordinates of `r` that change coefficient knobs only (`COEFFICIENT_KNOBS`, by the PSA's own
    dependency analysis `cosmic.psa.encoding.dependencies`), and per network dimension the coordinates of Q that
    the coefficient knobs of that dimension depend on."""
    from cosmic.psa.encoding import dependencies

    deps = dependencies(space)
    reaches: dict[int, set[str]] = {}
    for name, dd in deps.items():
        for ss in dd if isinstance(dd, tuple) else (dd,):
            for ci in ss:
                reaches.setdefault(ci, set()).add(name)
    q = [i for i in r if reaches.get(i) and reaches[i] <= COEFFICIENT_KNOBS]
    per_dim: list[list[int]] = []
    for d in range(space.n_dims):
        on_d: set[int] = set()
        for k in COEFFICIENT_KNOBS:
            dd = deps.get(k)
            if isinstance(dd, tuple):
                on_d |= dd[d]
        per_dim.append(sorted(set(q) & on_d))
    return q, per_dim


class _RelaxedCommunicator(ColumnCommunicator):
    """A communicator whose phase coefficients on each dimension are the smallest over candidate (topology,
    algorithms, bandwidth, latency) tuples of that dimension (point 6): it prices every collective at most as
    dear as any of the configurations the candidates stand for."""

    candidates: list[list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]]
    pick: Any = np.minimum  # np.maximum: the dearest coefficients (the slow corner's window of point 4)

    def coefficients(self, group: str, kind: int) -> Coefficients:
        key = (group, kind)
        c = self._coef.get(key)
        if c is None:
            a_out, b_out = [], []
            start = np.inf if self.pick is np.minimum else -np.inf
            for d in range(self.n_dims):
                a_min = np.full(len(self.chunks), start)
                b_min = np.full(len(self.chunks), start)
                for topo, algos, bw, lat in self.candidates[d]:
                    ids = STRUCTURES.ids(topo, self.members[group][d], self.strides[group][d], self.npus[:, d])
                    algo = algos[:, kind] if kind != P2P else 0
                    a_min = self.pick(a_min, lat * STRUCTURES.a[ids, kind, algo])
                    b_min = self.pick(b_min, STRUCTURES.b[ids, kind, algo] / bw)
                a_out.append(a_min)
                b_out.append(b_min)
            c = self._coef[key] = Coefficients(tuple(a_out), tuple(b_out))
        return c


def _assignments(space: Any, coords: list[int]) -> np.ndarray:
    cards = tuple(int(space.cardinalities[i]) for i in coords)
    size = int(np.prod(cards)) if coords else 1
    if not coords:
        return np.zeros((1, 0), dtype=np.int64)
    return np.stack(np.unravel_index(np.arange(size, dtype=np.int64), cards), axis=1).astype(np.int64)


def _relaxed_corner(space: Any, points: np.ndarray, q_per_dim: list[list[int]], pick: Any) -> _Corner:
    """The corner of `points` with a `_RelaxedCommunicator` whose candidates on dimension d are every assignment
    of ``q_per_dim[d]`` (decoded with the other coordinates of each point)."""
    n = len(points)
    corner = _Corner(space, points)
    comm = corner.comm
    comm.__class__ = _RelaxedCommunicator
    cands: list[list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]] = []
    for d, coords in enumerate(q_per_dim):
        asg = _assignments(space, coords)
        pts = np.repeat(points, len(asg), axis=0)
        pts[:, coords] = np.tile(asg, (n, 1))
        cols, _ = space.decode_columns(pts)
        cc = communicator_columns(cols)
        per = []
        for j in range(len(asg)):
            sl = slice(j, None, len(asg))
            per.append((cc.topology[sl, d], cc.algorithms_[sl, :, d], cc.bw[sl, d], cc.lat[sl, d]))
        cands.append(per)
    comm.candidates = cands  # type: ignore[attr-defined]
    comm.pick = pick  # type: ignore[attr-defined]
    return corner


def relaxed_bounds(space: Any, fast_points: np.ndarray, q_per_dim: list[list[int]],
                   slow_points: np.ndarray | None = None) -> np.ndarray:
    """A lower bound of the step time over each relaxed box, one row per box.

    A relaxed box is every point that equals ``fast_points[i]`` on the W coordinates and on the R coordinates
    outside Q (`relaxable_coordinates`), takes any value on Q, and lies on each M coordinate at or below the fast
    corner ``fast_points[i]`` (the largest bandwidth and smallest latency), and at or above ``slow_points[i]``
    when given (it tightens the DP window of point 4; without it any slower network is in the box). `q_per_dim` is
    the second value `relaxable_coordinates` returns, or a subset of it (the coordinates left out are fixed).
    ``inf`` marks boxes whose memory does not fit (it does not depend on Q or M).
    """
    fast_points = np.asarray(fast_points, dtype=np.int64)
    n = len(fast_points)
    if n == 0:
        return np.zeros(0)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        corner = _relaxed_corner(space, fast_points, q_per_dim, np.minimum)
        slow = None
        if slow_points is not None:
            slow = _relaxed_corner(space, np.asarray(slow_points, dtype=np.int64), q_per_dim, np.maximum)
        lb = _bound(space, corner, slow)
    lb = np.where(np.isnan(lb), 0.0, lb)
    # what the batch path refuses (`priced_here`: layouts, divisibility, fidelity) does not depend on Q or M; a row
    # the decoder refused at this corner may decode elsewhere in the box: no bound
    lb[~corner.valid] = np.inf
    lb[~corner.decoded | corner.unbounded] = 0.0
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
