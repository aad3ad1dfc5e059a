"""`astra-sim` fidelity: ASTRA-sim's congestion-unaware analytical backend, rule for rule.

The rules are those of ``reference/astra-sim-timing.md`` (read from ASTRA-sim 2.x and its analytical network
backend); they describe the simulator, not real hardware (see ``docs/astra-sim.md`` for where cosmic's own model
differs and why). All times are whole nanoseconds, all sizes whole bytes, divisions are integer divisions.

How a collective is priced:

1. **Chunks.** ``chunk = size // splits``; unless the collective is an all-gather, a chunk smaller than the NPU count
   becomes the NPU count; there are ``ceil(size / chunk)`` chunks, each of the full chunk size.
2. **Phases.** Every chunk is a *stream* that runs one phase per dimension (dimensions of one NPU skipped): all-reduce
   with ``local_bw_aware`` = reduce-scatter on dims 0..n-2, all-reduce on the last, all-gather on n-2..0; with
   ``baseline`` = all-reduce on each dim; reduce-scatter and all-to-all on 0..n-1; all-gather on n-1..0.
   The per-phase time is a closed form per algorithm (:func:`phase_time_ns`).
3. **Queues.** One queue per dimension with ``active_chunks`` slots, shared by every phase on that dimension. Waiting
   streams are served first come, first served (a chunk back for its all-gather queues behind chunks still waiting
   for their reduce-scatter; :mod:`cosmic.collective.astra_queues`); a stream that ends a phase at t joins its next
   queue at t and its slot is refilled at t. Without a double binary tree every NPU runs the same schedule, so one
   small event simulation over streams and queues gives the answer whatever the NPU count.
4. **Double binary tree** phases time every NPU of the tree separately (leaves finish before the root's children),
   so NPUs drift apart; those are simulated per NPU *class* (NPUs that share their coordinates in the tree
   dimensions behave alike), and the single-dimension case is vectorised over NPUs with numpy.

Example:
    >>> from cosmic.network.topology import Topology
    >>> ring = AstraDim(Topology.RING, 4, bytes_per_ns=50 * 2**30 / 1e9, latency_ns=500)
    >>> r = simulate_collective(Collective.ALL_REDUCE, 1 << 20, (ring,), (Algorithm.RING,), AstraParams(splits=1))
    >>> r.time_ns
    33829
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

from cosmic.caches import register
from cosmic.collective.algorithms import Algorithm, Collective, GroupDim
from cosmic.collective.astra_core import (
    AstraDim,
    AstraParams,
    AstraResult,
    Phase,
    hops,
    msg_ns,
    reduce_ns,
    ring_step_hops,
)
from cosmic.collective.astra_queues import run_classes, run_streams, run_tree_single
from cosmic.collective.astra_system import IMPL_KEYS, Impl, astra_algorithms, check_impl
from cosmic.collective.astra_tree import tree_finish
from cosmic.collective.model import ZERO, CollectiveTime, MultiDim
from cosmic.errors import ConfigError
from cosmic.network.topology import Network, Topology

if TYPE_CHECKING:
    from cosmic.collective.config import CollectiveConfig


# ---- per-dimension phase times -------------------------------------------------------------------------------------


def _ring_window_ns(dim: AstraDim, m: int, steps: int, extra_per_step: int) -> int:
    """Sum of `steps` consecutive ring steps, each N(m, h) + extra, on the slowest chain of the ring.

    On a dimension's own ring every step costs the same. On a flat ring over a strided sub-group (``ring_hops``) the
    steps that wrap a coordinate ("carry" steps, every `period`-th link) cross more hops; each NPU's chain of steps
    runs over consecutive links, so the slowest NPU sees the window with the most expensive links.
    """
    if dim.ring_hops is None:
        return steps * (msg_ns(m, ring_step_hops(dim), dim) + extra_per_step)
    h_norm, h_carry, period = dim.ring_hops
    p = dim.npus
    c_norm = msg_ns(m, h_norm, dim) + extra_per_step
    c_carry = msg_ns(m, h_carry, dim) + extra_per_step
    carries_per_lap = p // period
    lap = (p - carries_per_lap) * c_norm + carries_per_lap * c_carry
    laps, rest = divmod(steps, p)
    if c_carry >= c_norm:
        k = -(-rest // period)
    else:
        k = rest // period
    k = min(k, carries_per_lap, rest)
    return laps * lap + (rest - k) * c_norm + k * c_carry


def _direct_all_reduce_ns(dim: AstraDim, m: int, p: AstraParams) -> int:
    """Direct all-reduce with the sorted-arrivals rule of the reference."""
    e = p.endpoint_delay_ns
    n = dim.npus
    offsets = np.arange(1, n)
    if dim.topology is Topology.RING:
        h = np.minimum(offsets, n - offsets)
    else:
        h = np.full(n - 1, hops(dim, 1))
    net = (h * dim.latency_ns + m / dim.bytes_per_ns).astype(np.int64)  # N(m, h_j) per offset j
    arrivals = e + net
    g = np.sort(arrivals) + e + reduce_ns(m, p)
    t2 = int(g[np.searchsorted(g, int(arrivals.max()), side="left")])
    sends = np.maximum(t2, g)  # the j-th processed packet triggers the send to offset j
    return int((sends + net).max()) + e


def _hd_ns(kind: Collective, dim: AstraDim, d: int, p: AstraParams) -> int:
    e = p.endpoint_delay_ns
    n = dim.npus
    levels = n.bit_length() - 1
    t = e
    if kind is Collective.ALL_GATHER:
        size, offset = d, n // 2
        for _ in range(levels):
            t += msg_ns(size, hops(dim, offset), dim) + e
            size *= 2
            offset //= 2
        return t
    sizes = [d >> (k + 1) for k in range(levels)]  # d/2, d/4, ..., d/p
    for k, size in enumerate(sizes):
        t += msg_ns(size, hops(dim, 1 << k), dim) + e
        if k > 0:
            t += reduce_ns(size, p)
    if kind is Collective.ALL_REDUCE:
        for k in reversed(range(levels)):
            t += msg_ns(sizes[k], hops(dim, 1 << k), dim) + e
    return t


def phase_time_ns(kind: Collective, algorithm: Algorithm, dim: AstraDim, d: int, p: AstraParams) -> tuple[int, int]:
    """(time, output bytes per NPU) of one phase of `kind` over `dim` for `d` bytes entering per NPU.

    A double binary tree is an all-reduce whatever was asked (as in ASTRA-sim); its time here is the slowest NPU of a
    lone chunk on the tree rooted at p-1.
    """
    n = dim.npus
    e = p.endpoint_delay_ns
    if algorithm is Algorithm.DOUBLE_BINARY_TREE:
        check_impl(kind, algorithm, n, file=None, key="implementation")
        starts = np.zeros(n, dtype=np.int64)
        return int(tree_finish(dim, d, p, starts, root_max=True).max()), d
    if algorithm is Algorithm.RING:
        m = d // n
        if kind is Collective.ALL_REDUCE:
            return e + _ring_window_ns(dim, m, 2 * (n - 1), e) + (n - 1) * reduce_ns(m, p), d
        if kind is Collective.REDUCE_SCATTER:
            return e + _ring_window_ns(dim, m, n - 1, e + reduce_ns(m, p)), m
        if kind is Collective.ALL_GATHER:
            return e + _ring_window_ns(dim, d, n - 1, e), n * d
        return e + _ring_window_ns(dim, m, n * (n - 1) // 2, e), d
    if algorithm is Algorithm.DIRECT:
        far = hops(dim, n // 2)
        if kind is Collective.ALL_REDUCE:
            return _direct_all_reduce_ns(dim, d // n, p), d
        if kind is Collective.REDUCE_SCATTER:
            return 2 * e + msg_ns(d // n, far, dim) + reduce_ns(d // n, p), d // n
        if kind is Collective.ALL_GATHER:
            return 2 * e + msg_ns(d, far, dim), n * d
        return 2 * e + msg_ns(d // n, far, dim), d
    # halving-doubling
    if kind is Collective.ALL_TO_ALL:
        raise ConfigError("ASTRA-sim rejects halvingDoubling for all-to-all", key="all-to-all-implementation")
    out = {Collective.ALL_REDUCE: d, Collective.REDUCE_SCATTER: d // n, Collective.ALL_GATHER: n * d}[kind]
    return _hd_ns(kind, dim, d, p), out


# ---- streams and queues --------------------------------------------------------------------------------------------


def chunking(kind: Collective, size: int, splits: int, total_npus: int) -> tuple[int, int]:
    """(chunk bytes, number of chunks) for a collective of `size` bytes per NPU."""
    if splits < 1:
        raise ConfigError("must be at least 1 (ASTRA-sim divides by it)", key="preferred-dataset-splits")
    chunk = size // splits
    if kind is not Collective.ALL_GATHER and chunk < total_npus:
        chunk = total_npus
    if chunk <= 0:
        raise ConfigError(
            f"a size of {size} B split {splits} ways gives empty chunks; use a size of at least {splits} B",
            key="size",
        )
    return chunk, -(-size // chunk)


def phase_plan(kind: Collective, active: list[int], multidim: MultiDim) -> list[tuple[int, Collective]]:
    """(dimension position, phase collective) of every phase of one chunk, over the `active` dimensions."""
    kind = Collective(kind)
    if kind is Collective.ALL_REDUCE and MultiDim(multidim) is MultiDim.LOCAL_BW_AWARE and active:
        return (
            [(i, Collective.REDUCE_SCATTER) for i in active[:-1]]
            + [(active[-1], Collective.ALL_REDUCE)]
            + [(i, Collective.ALL_GATHER) for i in reversed(active[:-1])]
        )
    if kind is Collective.ALL_GATHER:
        return [(i, kind) for i in reversed(active)]
    return [(i, kind) for i in active]


def build_phases(
    kind: Collective,
    chunk: int,
    dims: tuple[AstraDim, ...],
    algorithms: tuple[Algorithm, ...],
    p: AstraParams,
) -> tuple[Phase, ...]:
    """The phase list every chunk runs (dimensions of one NPU skipped)."""
    plan = phase_plan(kind, [i for i, dim in enumerate(dims) if dim.npus > 1], p.multidim)
    phases = []
    d = chunk
    for i, k in plan:
        algo = algorithms[i]
        t, out = phase_time_ns(k, algo, dims[i], d, p)
        phases.append(Phase(i, dims[i].network_dim, k, algo, d, out, t))
        d = out
    return tuple(phases)



def simulate_collective(
    kind: Collective,
    size: int,
    dims: tuple[AstraDim, ...],
    algorithms: tuple[Algorithm, ...],
    params: AstraParams,
    *,
    total_npus: int | None = None,
) -> AstraResult:
    """ASTRA-sim's time for one collective of `size` bytes per NPU (all-gather: each NPU's input shard).

    Args:
        kind: the collective.
        size: bytes per NPU.
        dims: the dimensions the collective runs over, innermost first.
        algorithms: one per entry of `dims`.
        params: chunking, queue and endpoint parameters.
        total_npus: NPUs of the whole system (the chunk floor); defaults to the product of `dims`.

    Raises:
        ConfigError: combinations ASTRA-sim rejects, crashes or hangs on.
    """
    kind = Collective(kind)
    if len(algorithms) < len(dims):
        raise ConfigError(
            f"has {len(algorithms)} entries but the network has {len(dims)} dimensions",
            key=IMPL_KEYS[kind],
        )
    for i, (dim, algo) in enumerate(zip(dims, algorithms, strict=False)):
        check_impl(kind, algo, dim.npus, file=None, key=f"{IMPL_KEYS[kind]}[{i}]")
    size = int(size)
    npus = total_npus if total_npus is not None else math.prod(dim.npus for dim in dims)
    if size <= 0:
        return AstraResult(0, 0, 0, (), tuple(0 for _ in dims))
    chunk, n_chunks = chunking(kind, size, params.splits, npus)
    phases = build_phases(kind, chunk, dims, tuple(algorithms), params)
    busy = [0] * len(dims)
    for ph in phases:
        busy[ph.position] += ph.time_ns * n_chunks
    notes = []
    if any(ph.algorithm is Algorithm.DOUBLE_BINARY_TREE and ph.kind is not Collective.ALL_REDUCE for ph in phases):
        notes.append("doubleBinaryTree asked for a phase other than all-reduce runs an all-reduce (as in ASTRA-sim)")
    if not any(ph.algorithm is Algorithm.DOUBLE_BINARY_TREE for ph in phases):
        total = run_streams(phases, n_chunks, params.active_chunks, len(dims))
    elif len(phases) == 1:
        total = run_tree_single(dims[phases[0].position], phases[0].bytes_in, n_chunks, params)
    else:
        total = run_classes(phases, dims, n_chunks, params)
    return AstraResult(total, chunk, n_chunks, phases, tuple(busy), tuple(notes))


def whole_system_dims(network: Network, impls: tuple[Impl, ...]) -> tuple[tuple[AstraDim, ...], tuple[Algorithm, ...]]:
    """The dimensions and algorithms ASTRA-sim runs a collective over every NPU with, one per network dimension.

    Except ``oneRing``: ASTRA-sim's ``GeneralComplexTopology`` (astra-sim
    ``system/astraccl/native_collectives/logical_topology/GeneralComplexTopology.cc``) turns the first ``one*`` entry
    into one ring over every NPU (ids in order) and drops the dimensions after it. Consecutive ids first differ in
    the innermost dimension of more than one NPU (the wrap from its last coordinate to 0 is one ring hop), so every
    message of that ring is charged on that dimension's link. ``oneDirect`` and ``oneHalvingDoubling`` (whose peers
    sit on different dimensions) are priced as ``direct`` and ``halvingDoubling`` per dimension instead.
    """
    dims: list[AstraDim] = []
    algos: list[Algorithm] = []
    for i, (d, impl) in enumerate(zip(network.dims, impls, strict=False)):
        if impl.spelling == "oneRing":
            f = next((j for j, x in enumerate(network.dims) if x.npus > 1), 0)
            link = network.dims[f]
            dims.append(AstraDim(link.topology, network.n_npus, link.link_bytes_per_s / 1e9, link.latency_ns, f))
            algos.append(Algorithm.RING)
            break
        dims.append(AstraDim(d.topology, d.npus, d.link_bytes_per_s / 1e9, d.latency_ns, i))
        algos.append(impl.algorithm)
    return tuple(dims), tuple(algos)


# ---- inside `cosmic simulate` --------------------------------------------------------------------------------------


def _group_key(kind: Collective, group: tuple[GroupDim, ...], c: CollectiveConfig,
               topologies: tuple[Topology, ...], n_npus: int) -> tuple:
    return (
        kind,
        group,
        n_npus,
        astra_algorithms(c, kind, topologies),
        c.chunks,
        c.active_chunks,
        int(c.endpoint_delay_ns),
        c.local_mem_bw_gbps,
        MultiDim(c.multidim),
    )


def astra_collective_time(
    kind: Collective, size_bytes: float, group: tuple[GroupDim, ...], collective: CollectiveConfig,
    topologies: tuple[Topology, ...], n_npus: int,
) -> CollectiveTime:
    """What ASTRA-sim charges for collective `kind` of `size_bytes` per NPU over a parallel group.

    A group holding every NPU of the system runs the configured per-dimension algorithms over its dimensions. Any
    smaller group is, as in ASTRA-sim's communicator groups, one flat ring over the group's NPU ids: consecutive ids
    always differ first in the group's innermost dimension, so every message is charged on that dimension's link
    (its bandwidth and latency; on a Ring topology, the ring distance between the two coordinates). That ring's
    endpoint delay is a fixed 10 ns whatever ``endpoint-delay`` says (:data:`LOCAL_RING_DELAY_NS`).
    """
    key = _group_key(Collective(kind), group, collective, topologies, n_npus)
    return _astra_cached(key, int(size_bytes))


# A sub-group's ring is a `RingTopology::Dimension::Local` (astra-sim system/CommunicatorGroup.cc
# get_collective_plan), so Ring.cc sends its packets with `MemBus::Transmition::Fast`, which MemBus.cc charges a fixed
# 10 cycles (1 cycle = 1 ns) instead of `endpoint-delay`.
LOCAL_RING_DELAY_NS = 10


@register
@lru_cache(maxsize=65536)
def _astra_cached(key: tuple, size: int) -> CollectiveTime:
    kind, group, total_npus, algos, chunks, active, e, lmbw, multidim = key
    group = tuple(g for g in group if g.members > 1)
    if not group or size <= 0:
        return ZERO
    params = AstraParams(chunks, active, e, lmbw, multidim)
    n = math.prod(g.members for g in group)

    def dim_of(g: GroupDim, npus: int, ring_hops: tuple[int, int, int] | None = None) -> AstraDim:
        return AstraDim(
            g.topology, npus, g.link_bytes_per_s / 1e9, round(g.latency_s * 1e9, 6), g.dim_index, ring_hops
        )

    if n == total_npus:
        dims = tuple(dim_of(g, g.members) for g in group)
        res = simulate_collective(kind, size, dims, tuple(algos[g.dim_index] for g in group), params,
                                  total_npus=total_npus)
    else:
        g0 = group[0]
        ring_hops = None
        if g0.topology is Topology.RING:
            P = g0.dim_npus
            step = g0.stride % P
            carry = ((g0.members - 1) * g0.stride) % P
            ring_hops = (min(step, P - step), min(carry, P - carry), g0.members)
        flat = dim_of(g0, n, ring_hops)
        local = AstraParams(chunks, active, LOCAL_RING_DELAY_NS, lmbw, multidim)
        res = simulate_collective(kind, size, (flat,), (Algorithm.RING,), local, total_npus=total_npus)
    total_s = res.time_ns * 1e-9
    busy = res.busy_ns
    all_busy = sum(busy)
    if all_busy <= 0:
        return CollectiveTime(total_s, ())
    if n == total_npus:
        per_dim = tuple((g.dim_index, total_s * b / all_busy) for g, b in zip(group, busy, strict=True) if b)
    else:
        per_dim = ((group[0].dim_index, total_s),)
    return CollectiveTime(total_s, per_dim)


__all__ = [
    "AstraDim",
    "AstraParams",
    "AstraResult",
    "Phase",
    "astra_collective_time",
    "chunking",
    "msg_ns",
    "phase_plan",
    "phase_time_ns",
    "reduce_ns",
    "simulate_collective",
    "whole_system_dims",
]
