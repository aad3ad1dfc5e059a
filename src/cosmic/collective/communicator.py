"""Pricing the collectives of a parallel layout on a network: the public `Communicator` and its column form.

A parallel group (TP, SP, DP, PP, and the gradient group DP x SP) spans, in each network dimension, `members`
NPUs `stride` coordinates apart (`cosmic.workload.parallel`). Every per-dimension phase formula of
`cosmic.collective.algorithms` is affine in the bytes entering the phase, and its two coefficients scale with the
link latency and the inverse link bandwidth:

    phase(x) = latency_s * a(kind, algorithm, topology, members, stride, dim_npus)
             + x / link_bytes_per_s * b(kind, algorithm, topology, members, stride, dim_npus)

so `unit_coefficients` evaluates the formulas once per integer structure (at latency 1 and infinite bandwidth for
`a`, at latency 0 and bandwidth 1 for `b`) and every configuration prices any size with a multiply-add.
`collective_cost` then composes the phases of one collective over the dimensions (hierarchical or baseline
all-reduce, chunks pipelined through the dimensions); it is written once for a float and for a column.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from cosmic._xp import Num, all_, any_, safe, vmax, vmin, where
from cosmic.caches import BoundedMemo, register
from cosmic.collective.algorithms import Algorithm, Collective, GroupDim, phase_time_s
from cosmic.network.topology import Topology

KINDS: tuple[Collective, ...] = tuple(Collective)
"""Collective codes (`KINDS[code]`)."""
P2P = len(KINDS)
"""Code of a point-to-point send (pipeline stages) among the `unit_coefficients` kinds."""
ALGORITHMS: tuple[Algorithm, ...] = tuple(Algorithm)
TOPOLOGIES: tuple[Topology, ...] = tuple(Topology)
TOPOLOGY_CODE = {t: i for i, t in enumerate(TOPOLOGIES)}
"""Topology -> its code (the columns of `cosmic.sim.columns` use the same codes)."""
ALGORITHM_CODE = {a: i for i, a in enumerate(ALGORITHMS)}
"""Algorithm -> its code."""
_TOPO_CODE, _ALGO_CODE = TOPOLOGY_CODE, ALGORITHM_CODE
_AR, _AG, _RS, _A2A = (KINDS.index(k) for k in (Collective.ALL_REDUCE, Collective.ALL_GATHER,
                                                   Collective.REDUCE_SCATTER, Collective.ALL_TO_ALL))


@register
@lru_cache(maxsize=1 << 16)
def unit_coefficients(kind: int, algorithm: int, topology: int, members: int, stride: int,
                      dim_npus: int) -> tuple[float, float]:
    """(a, b) of one phase (see the module docstring); ``(0, 0)`` for a dimension the group does not span.

    Example:
        >>> ring = TOPOLOGIES.index(Topology.RING)
        >>> unit_coefficients(KINDS.index(Collective.ALL_REDUCE), 0, ring, 4, 1, 4)  # 2(p-1) steps, 2(p-1)/(2p)
        (6.0, 0.75)
    """
    if members <= 1:
        return 0.0, 0.0
    topo = TOPOLOGIES[topology]
    if kind == P2P:
        # neighbours `stride` positions apart on a ring (all pairs send at once, sharing links); one hop through a
        # switch is two links; FullyConnected has a direct link
        if topo is Topology.SWITCH:
            return 2.0, 1.0
        if topo is Topology.FULLY_CONNECTED:
            return 1.0, 1.0
        return float(stride), float(stride)
    k, algo = KINDS[kind], ALGORITHMS[algorithm]
    lat_only = GroupDim(0, topo, members, stride, dim_npus, math.inf, 1.0)
    bw_only = GroupDim(0, topo, members, stride, dim_npus, 1.0, 0.0)
    return phase_time_s(k, algo, lat_only, 1.0), phase_time_s(k, algo, bw_only, 1.0)


@register
@lru_cache(maxsize=1 << 16)
def structure_coefficients(topology: int, members: int, stride: int,
                           dim_npus: int) -> tuple[tuple[tuple[float, float], ...], ...]:
    """`unit_coefficients` of every phase kind (and `P2P`) and algorithm of one integer structure:
    ``[kind][algorithm] -> (a, b)``."""
    return tuple(tuple(unit_coefficients(k, algo, topology, members, stride, dim_npus)
                       for algo in range(len(ALGORITHMS) if k != P2P else 1)) for k in range(P2P + 1))


@dataclass(frozen=True, slots=True)
class Priced:
    """One collective: its time and the share of it each network dimension carries (one entry per dimension)."""

    total_s: Num
    per_dim_s: tuple[Num, ...]


class Coefficients:
    """The scaled phase coefficients of one group for one kind: ``a[d] + x * b[d]`` on dimension d."""

    __slots__ = ("a", "b")

    def __init__(self, a: tuple[Num, ...], b: tuple[Num, ...]) -> None:
        self.a, self.b = a, b


class GroupShape:
    """Where one group lies on the network dimensions, for one layout (ints) or many (int columns).

    Attributes:
        members, strides: per dimension (members 1 and stride 1 where the group does not span it).
        dims: the dimensions the group spans in some configuration, innermost first.
        spanned: per dimension, whether the group spans it (``members > 1``).
        full: whether every configuration's group spans every dimension of `dims` (always so for one layout).
        n_spanned: how many dimensions the group spans.
        below, above: per dimension, the product of the members of the dimensions below it and above it.
        later: per dimension, whether the group spans a dimension above it.
    """

    __slots__ = ("above", "below", "dims", "full", "later", "members", "n_spanned", "spanned", "strides")

    def __init__(self, members: tuple[Num, ...], strides: tuple[Num, ...]) -> None:
        n = len(members)
        self.members, self.strides = members, strides
        self.spanned = spanned = tuple(m > 1 for m in members)
        self.dims = dims = tuple(d for d in range(n) if any_(spanned[d]))
        self.full = all(all_(spanned[d]) for d in dims)
        self.n_spanned = sum(1 * spanned[d] for d in dims)
        below: list[Num] = [1] * n
        above: list[Num] = [1] * n
        later: list[Num] = [False] * n
        for d in range(1, n):
            below[d] = below[d - 1] * members[d - 1]
        for d in range(n - 2, -1, -1):
            above[d] = above[d + 1] * members[d + 1]
            later[d] = later[d + 1] | spanned[d + 1]
        self.below, self.above, self.later = tuple(below), tuple(above), tuple(later)


def collective_cost(kind: int, size_bytes: Num, coef: Any, shape: GroupShape, chunks: Num, baseline: Num) -> Priced:
    """Time of collective `kind` of `size_bytes` per NPU (for all-gather: each NPU's input shard).

    `coef(kind)` gives the group's `Coefficients` for a phase kind; `shape` is the group's `GroupShape`;
    `baseline` selects the baseline multi-dimensional all-reduce (the full all-reduce on each dimension in turn)
    over the hierarchical one (reduce-scatter up the dimensions, all-reduce on the outermost spanned one,
    all-gather back down). Chunks pipeline through the dimensions like jobs through a flow shop: the first chunk
    pays every phase, each further chunk the busiest dimension's time.
    """
    n_dims = len(shape.members)
    live = size_bytes > 0
    dims = shape.dims
    if not dims or not any_(live):
        return zero_priced(n_dims)
    chunk = size_bytes / chunks
    c = coef(kind)
    a, b = c.a, c.b
    busy: list[Num] = []
    if kind == _AR:
        # baseline, or a group on one dimension: the full all-reduce on each dimension
        flat = baseline | (shape.n_spanned <= 1)
        hier = not all_(flat)
        if hier:
            rs, ag = coef(_RS), coef(_AG)
        for d in dims:
            t = a[d] + b[d] * chunk
            if hier:
                # below the outermost spanned dimension: reduce-scatter up and all-gather down
                x = chunk / shape.below[d]
                up_down = rs.a[d] + rs.b[d] * x + ag.a[d] + ag.b[d] * (x / shape.members[d])
                t = where(flat, t, where(shape.later[d], up_down, a[d] + b[d] * x))
            busy.append(t)
    elif kind == _RS:
        busy = [a[d] + b[d] * (chunk / shape.below[d]) for d in dims]
    elif kind == _AG:
        busy = [a[d] + b[d] * (chunk * shape.above[d]) for d in dims]
    else:
        busy = [a[d] + b[d] * chunk for d in dims]
    if not (shape.full and live is True):
        busy = [where(live & shape.spanned[d], t, 0.0) for d, t in zip(dims, busy, strict=True)]
    all_busy = busy[0]
    top = busy[0]
    for t in busy[1:]:
        all_busy = all_busy + t
        top = vmax(top, t)
    total = all_busy + (chunks - 1) * top
    scale = total / safe(all_busy)
    per_dim: list[Num] = [0.0] * n_dims
    for d, t in zip(dims, busy, strict=True):
        per_dim[d] = t * scale
    return Priced(where(all_busy > 0, total, 0.0), tuple(per_dim))


def p2p_cost(size_bytes: Num, coef: Coefficients, shape: GroupShape) -> Priced:
    """A send between neighbouring pipeline stages: the slowest spanned dimension sets the pace (the first one on
    ties), and carries all of it."""
    n_dims = len(shape.members)
    best: Num = -1.0
    best_d: Num = -1
    for d in shape.dims:
        t = coef.a[d] + coef.b[d] * size_bytes
        better = shape.spanned[d] & (t > best)
        best = where(better, t, best)
        best_d = where(better, d, best_d)
    total = vmax(best, 0.0)
    per_dim: list[Num] = [0.0] * n_dims
    for d in shape.dims:
        per_dim[d] = where(best_d == d, total, 0.0)
    return Priced(total, tuple(per_dim))


ZERO_PRICE_CACHE: dict[int, Priced] = {}


def zero_priced(n_dims: int) -> Priced:
    """A collective that costs nothing, on a network of `n_dims` dimensions."""
    z = ZERO_PRICE_CACHE.get(n_dims)
    if z is None:
        z = ZERO_PRICE_CACHE[n_dims] = Priced(0.0, (0.0,) * n_dims)
    return z


GROUPS = ("tp", "sp", "dp", "pp", "dpsp")
"""The groups a communicator prices: the four parallel groups and the gradient group DP x SP."""


def merge_dpsp(m_dp: Num, s_dp: Num, m_sp: Num, s_sp: Num) -> tuple[Num, Num]:
    """Members and stride of the gradient group DP x SP in one dimension: the two footprints merged (the smaller
    stride where both span it)."""
    both = (m_dp > 1) & (m_sp > 1)
    stride = where(both, where(s_dp < s_sp, s_dp, s_sp), where(m_dp > 1, s_dp, where(m_sp > 1, s_sp, 1)))
    return m_dp * m_sp, stride


SHARD_GROUPS = ("shard", "replica")
"""Hybrid sharded data parallelism (HSDP): the innermost `shard_group` ranks of the gradient group DP x SP shard the
states (`shard`), and the ranks that hold the same shard form a `replica` group (PyTorch FSDP HYBRID_SHARD /
FSDP2's 2-D device mesh ``(replicate, shard)``; DeepSpeed MiCS; Megatron's partial distributed optimizer)."""


def split_inner(members: tuple[Num, ...], strides: tuple[Num, ...],
                inner: Num) -> tuple[tuple[Num, ...], tuple[Num, ...], tuple[Num, ...], tuple[Num, ...], Num]:
    """Split a group into its innermost `inner` ranks and the groups of ranks that correspond across them:
    ``(inner members, inner strides, outer members, outer strides, failed)`` per network dimension, innermost
    first, for one layout (ints) or many (columns). `failed` is true where `inner` does not divide the group along
    its dimensions (a dimension would hold a part of the inner group that does not divide its members).

    Example:
        >>> split_inner((8, 16), (1, 1), 32)
        ((8, 4), (1, 1), (1, 4), (1, 4), False)
    """
    left: Num = inner
    im: list[Num] = []
    ist: list[Num] = []
    om: list[Num] = []
    ost: list[Num] = []
    failed: Num = False
    for m, st in zip(members, strides, strict=True):
        take = vmax(1, vmin(m, left))
        failed = failed | ((m % take != 0) | (left % take != 0))
        rest = m // take
        im.append(take)
        ist.append(where(take > 1, st, 1))
        om.append(rest)
        ost.append(where(rest > 1, st * take, 1))
        left = left // take
    return tuple(im), tuple(ist), tuple(om), tuple(ost), failed | (left != 1)


def shard_spans(members: dict[str, tuple[Num, ...]], strides: dict[str, tuple[Num, ...]],
                shard: Num) -> tuple[dict[str, tuple[Num, ...]], dict[str, tuple[Num, ...]], Num]:
    """(members, strides, failed) of the `SHARD_GROUPS` from the spans of dp and sp and the shard group size."""
    md = [merge_dpsp(a, b, c, e) for a, b, c, e in zip(members["dp"], strides["dp"], members["sp"], strides["sp"],
                                                       strict=True)]
    im, ist, om, ost, failed = split_inner(tuple(x[0] for x in md), tuple(x[1] for x in md), shard)
    return {"shard": im, "replica": om}, {"shard": ist, "replica": ost}, failed


def group_shapes(members: dict[str, tuple[Num, ...]], strides: dict[str, tuple[Num, ...]]) -> dict[str, GroupShape]:
    """The `GroupShape` of every group of `GROUPS`, from the members and strides of the four parallel groups (and
    of the `EXPERT_GROUPS` when `members` has them)."""
    md = [merge_dpsp(a, b, c, e) for a, b, c, e in zip(members["dp"], strides["dp"], members["sp"], strides["sp"],
                                                       strict=True)]
    out = {g: GroupShape(members[g], strides[g]) for g in ("tp", "sp", "dp", "pp")}
    out["dpsp"] = GroupShape(tuple(x[0] for x in md), tuple(x[1] for x in md))
    for g in EXPERT_GROUPS + SHARD_GROUPS:
        if g in members:
            out[g] = GroupShape(members[g], strides[g])
    return out


EXPERT_GROUPS = ("etp", "ep", "eptp", "edp")
"""The groups of a MoE layer's experts (Megatron-Core MoE parallel folding, `parallel_state.py`): the TP x SP x DP
ranks of a pipeline stage are laid out again, expert tensor parallelism innermost, then expert parallelism, then
expert data parallelism; `eptp` is the EP x ETP block (the all-gather dispatcher's group)."""


def expert_spans(etp: Num, ep: Num, edp: Num, pp: Num,
                 dim_sizes: list[Num]) -> tuple[dict[str, tuple[Num, ...]], dict[str, tuple[Num, ...]], Num]:
    """(members, strides, failed) of the `EXPERT_GROUPS` per network dimension, for one layout (ints) or many
    (columns); `failed` as in `span_columns` (-1 where the expert layout fits the dimensions)."""
    from cosmic.workload.parallel import span_columns

    members, strides, failed = span_columns([etp, ep, edp, pp], dim_sizes)
    m = {"etp": tuple(members[0]), "ep": tuple(members[1]), "edp": tuple(members[2])}
    st = {"etp": tuple(strides[0]), "ep": tuple(strides[1]), "edp": tuple(strides[2])}
    merged = [merge_dpsp(a, b, c, e) for a, b, c, e in zip(members[1], strides[1], members[0], strides[0],
                                                           strict=True)]
    m["eptp"], st["eptp"] = tuple(x[0] for x in merged), tuple(x[1] for x in merged)
    return m, st, failed


_EXPERT_LAYOUTS = register(BoundedMemo(1 << 12))


def expert_layout_shapes(degrees: tuple[int, int, int, int], expert: tuple[int, int],
                         dim_sizes: tuple[int, ...]) -> dict[str, GroupShape]:
    """The `GroupShape` of each of the `EXPERT_GROUPS` for degrees ``(tp, sp, dp, pp)`` and ``(ep, etp)`` (pipeline
    stages outermost, as the folding needs); InfeasibleError when a group does not fit the dimensions."""
    key = (degrees, expert, dim_sizes)
    hit = _EXPERT_LAYOUTS.get(key)
    if hit is not None:
        return hit
    tp, sp, dp, pp = degrees
    ep, etp = expert
    edp = tp * sp * dp // (ep * etp)
    m, st, failed = expert_spans(etp, ep, edp, pp, list(dim_sizes))
    if failed >= 0:
        from cosmic.errors import InfeasibleError

        j, i = divmod(failed, len(dim_sizes))
        name, deg = (("etp", etp), ("ep", ep), ("expert dp", edp), ("pp", pp))[j]
        raise InfeasibleError(f"expert group {name}={deg} does not fit network dimension {i} of {dim_sizes[i]} "
                              "NPUs: choose ep and etp whose products align with the dimension sizes")
    return _EXPERT_LAYOUTS.put(key, {g: _shared_shape(m[g], st[g]) for g in EXPERT_GROUPS})


def hybrid_shard_shapes(shapes: dict[str, GroupShape], shard: int) -> dict[str, GroupShape]:
    """The `GroupShape` of the `SHARD_GROUPS` of one layout: the innermost `shard` ranks of its DP x SP group and
    the replicas across them; InfeasibleError when `shard` does not split that group along the dimensions."""
    dpsp = shapes["dpsp"]
    im, ist, om, ost, failed = split_inner(dpsp.members, dpsp.strides, shard)
    if failed:
        from cosmic.errors import InfeasibleError

        raise InfeasibleError(f"shard group {shard} does not split the data-parallel group "
                              f"{'x'.join(str(m) for m in dpsp.members if m > 1)} along the network dimensions: "
                              "choose a divisor of dp*sp that fills whole inner dimensions")
    return {"shard": _shared_shape(im, ist), "replica": _shared_shape(om, ost)}


_SHAPES = register(BoundedMemo(1 << 14))  # (members, strides) -> GroupShape of one layout
_LAYOUTS = register(BoundedMemo(1 << 14))  # (degrees, order, dim sizes) -> {group: GroupShape}


def layout_shapes(degrees: tuple[int, int, int, int], order: tuple[str, ...],
                  dim_sizes: tuple[int, ...]) -> dict[str, GroupShape]:
    """The `GroupShape` of every group of `GROUPS` for degrees ``(tp, sp, dp, pp)`` laid out in rank order `order`
    on network dimensions of `dim_sizes` NPUs. Raises InfeasibleError when a group does not fit the dimensions.

    Remembered by value (the dict and the shapes are shared, never change them); layouts share the shapes of
    their groups, so that few objects stay behind for the garbage collector to scan."""
    key = (degrees, order, dim_sizes)
    hit = _LAYOUTS.get(key)
    if hit is not None:
        return hit
    from cosmic.workload.parallel import PARALLEL_DIMS, layout_spans

    in_order = dict(zip(PARALLEL_DIMS, degrees, strict=True))
    members, strides = layout_spans(tuple(in_order[g] for g in order), order, dim_sizes)
    pos = {g: j for j, g in enumerate(order)}
    m = {g: tuple(members[pos[g]]) for g in PARALLEL_DIMS}
    s = {g: tuple(strides[pos[g]]) for g in PARALLEL_DIMS}
    md = [merge_dpsp(a, b, c, e) for a, b, c, e in zip(m["dp"], s["dp"], m["sp"], s["sp"], strict=True)]
    m["dpsp"], s["dpsp"] = tuple(x[0] for x in md), tuple(x[1] for x in md)
    return _LAYOUTS.put(key, {g: _shared_shape(m[g], s[g]) for g in GROUPS})


def _shared_shape(members: tuple[int, ...], strides: tuple[int, ...]) -> GroupShape:
    key = (members, strides)
    shape = _SHAPES.get(key)
    if shape is None:
        shape = _SHAPES.put(key, GroupShape(members, strides))
    return shape


_ALGORITHM_CODES = register(BoundedMemo(1 << 14))


_KIND_FIELDS = tuple(k.value for k in KINDS)  # the CollectiveConfig field of each kind


def algorithm_codes(collective: Any, kind: int, topologies: tuple[Topology, ...]) -> tuple[int, ...]:
    """The code (into `ALGORITHMS`) of the algorithm of collective kind `kind` (a `KINDS` code) on each network
    dimension, by `CollectiveConfig.algorithms`; remembered by the settings it reads (the kind's own and the
    all-reduce's, which the others default to)."""
    key = (kind, _spec(getattr(collective, _KIND_FIELDS[kind])), _spec(collective.all_reduce),
           tuple([_TOPO_CODE[t] for t in topologies]))
    codes = _ALGORITHM_CODES.get(key)
    if codes is None:
        codes = _ALGORITHM_CODES.put(key, tuple(_ALGO_CODE[a] for a in collective.algorithms(KINDS[kind],
                                                                                               topologies)))
    return codes


def _spec(value: Any) -> Any:
    """An algorithm setting as a key of plain strings (a key holding enum members would be an object the cyclic
    garbage collector keeps scanning)."""
    if type(value) is list:
        return tuple([str(a) for a in value])
    return value if value is None else str(value)


class Communicator:
    """Prices the collectives of one parallel layout on one network with one collective configuration.

    Args:
        network: a `cosmic.network.Network`.
        collective: a `cosmic.collective.config.CollectiveConfig` (its ``fidelity`` picks cosmic's closed forms
            or the reproduction of ASTRA-sim's analytical backend).
        degrees: ``(tp, sp, dp, pp)``.
        order: the rank order (innermost first).
        expert: ``(ep, etp)`` of a MoE model (adds the `EXPERT_GROUPS`), None for a dense one.

    ``comm(kind, size_bytes, group)`` is the `Priced` collective of `size_bytes` per NPU over `group` (one of
    `GROUPS`); ``comm.p2p(size_bytes)`` a send between neighbouring pipeline stages. ``comm.members[group]`` and
    ``comm.strides[group]`` give the group's footprint per network dimension, ``comm.shapes[group]`` its
    `GroupShape`; ``comm.zero`` is a collective that costs nothing on this network.

    Example:
        >>> from cosmic.network.topology import Network
        >>> from cosmic.collective.config import CollectiveConfig
        >>> net = Network(dims=[{"topology": "Ring", "npus": 4, "link_gbps": 100}])
        >>> comm = Communicator(net, CollectiveConfig(chunks=1), (4, 1, 1, 1), ("tp", "sp", "dp", "pp"))
        >>> round(comm(Collective.ALL_REDUCE, 1e9, "tp").total_s, 6)  # 2(p-1)/p * 1 GB over 2 x 100 GB/s
        0.0075
    """

    __slots__ = (
        "_algos",
        "_coef",
        "_memo",
        "_npus",
        "_topo_codes",
        "astra",
        "baseline",
        "bw",
        "chunks",
        "collective",
        "lat",
        "n_dims",
        "network",
        "shapes",
        "topologies",
        "zero",
    )

    def __init__(self, network: Any, collective: Any, degrees: tuple[int, int, int, int],
                 order: tuple[str, ...], expert: tuple[int, int] | None = None, shard: int | None = None) -> None:
        self.network, self.collective = network, collective
        dims = network.dims
        self.n_dims = len(dims)
        self.astra = astra = collective.fidelity == "astra-sim"
        self.chunks = collective.chunks
        self.baseline = collective.multidim == "baseline"
        self.topologies = tuple(d.topology for d in dims)
        self._topo_codes = tuple(_TOPO_CODE[t] for t in self.topologies)
        self._npus = npus = tuple(d.npus for d in dims)
        self.shapes = layout_shapes(degrees, order, npus)
        if expert is not None:
            self.shapes = {**self.shapes, **expert_layout_shapes(degrees, expert, npus)}
        if shard is not None:
            self.shapes = {**self.shapes, **hybrid_shard_shapes(self.shapes, shard)}
        self.lat = tuple(d.latency_s for d in dims)
        self.bw = tuple(d.link_bytes_per_s * (1.0 if astra else d.efficiency) for d in dims)
        self._algos: dict[int, tuple[int, ...]] = {}
        self._coef: dict[tuple[str, int], Coefficients] = {}
        self._memo: dict[tuple[int, str, float], Priced] = {}
        self.zero = zero_priced(self.n_dims)

    @property
    def members(self) -> dict[str, tuple[int, ...]]:
        """Members of each group of `GROUPS` per network dimension (1 where it does not span)."""
        return {g: s.members for g, s in self.shapes.items()}

    @property
    def strides(self) -> dict[str, tuple[int, ...]]:
        """Stride of each group of `GROUPS` per network dimension."""
        return {g: s.strides for g, s in self.shapes.items()}

    def group_dims(self, group: str) -> tuple[GroupDim, ...]:
        """The `GroupDim` of every dimension `group` spans, innermost first."""
        sh = self.shapes[group]
        return tuple(GroupDim(i, self.topologies[i], sh.members[i], sh.strides[i], self._npus[i], self.bw[i],
                              self.lat[i]) for i in sh.dims)

    def algorithms(self, kind: int) -> tuple[int, ...]:
        """Algorithm codes of collective `kind` per network dimension."""
        a = self._algos.get(kind)
        if a is None:
            a = self._algos[kind] = algorithm_codes(self.collective, kind, self.topologies)
        return a

    def coefficients(self, group: str, kind: int) -> Coefficients:
        """The phase coefficients of `group` for phase kind `kind` (a `KINDS` code or `P2P`)."""
        key = (group, kind)
        c = self._coef.get(key)
        if c is None:
            sh = self.shapes[group]
            m, s = sh.members, sh.strides
            algos = self.algorithms(kind) if kind != P2P else (0,) * self.n_dims
            a: list[float] = [0.0] * self.n_dims
            b: list[float] = [0.0] * self.n_dims
            for d in sh.dims:
                u, w = structure_coefficients(self._topo_codes[d], m[d], s[d], self._npus[d])[kind][algos[d]]
                a[d], b[d] = self.lat[d] * u, w / self.bw[d]
            c = self._coef[key] = Coefficients(tuple(a), tuple(b))
        return c

    def __call__(self, kind: Collective | int, size_bytes: float, group: str) -> Priced:
        k = kind if type(kind) is int else KINDS.index(kind)
        key = (k, group, size_bytes)
        hit = self._memo.get(key)
        if hit is not None:
            return hit
        if self.astra:
            out = self._astra(k, size_bytes, group)
        else:
            out = collective_cost(k, size_bytes, lambda q: self.coefficients(group, q), self.shapes[group],
                                  self.chunks, self.baseline)
        self._memo[key] = out
        return out

    def p2p(self, size_bytes: float) -> Priced:
        """A send of `size_bytes` between neighbouring pipeline stages."""
        key = (P2P, "pp", size_bytes)
        hit = self._memo.get(key)
        if hit is None:
            hit = self._memo[key] = p2p_cost(size_bytes, self.coefficients("pp", P2P), self.shapes["pp"])
        return hit

    def send(self, size_bytes: float, group: str) -> Priced:
        """A send of `size_bytes` between neighbouring members of `group` (`p2p` for another group: e.g. a KV
        cache moving from one replica to the next over the dimensions the ``dp`` group spans)."""
        key = (P2P, group, size_bytes)
        hit = self._memo.get(key)
        if hit is None:
            hit = self._memo[key] = p2p_cost(size_bytes, self.coefficients(group, P2P), self.shapes[group])
        return hit

    def _astra(self, kind: int, size_bytes: float, group: str) -> Priced:
        from cosmic.collective.astra import astra_collective_time

        g = self.group_dims(group)
        if not g or size_bytes <= 0:
            return zero_priced(self.n_dims)
        ct = astra_collective_time(KINDS[kind], size_bytes, g, self.collective, self.topologies,
                                   self.network.n_npus)
        dense = [0.0] * self.n_dims
        for i, t in ct.per_dim_s:
            dense[i] += t
        return Priced(ct.total_s, tuple(dense))
