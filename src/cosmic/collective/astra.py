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
   streams are served in creation order; a stream that ends a phase at t joins its next queue at t and its slot is
   refilled at t. Without a double binary tree every NPU runs the same schedule, so one small event simulation over
   streams and queues gives the answer whatever the NPU count.
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

import heapq
import math
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np

from cosmic.caches import register
from cosmic.collective.algorithms import Algorithm, Collective, GroupDim
from cosmic.collective.astra_io import IMPL_KEYS, astra_algorithms, check_impl
from cosmic.collective.model import ZERO, CollectiveTime, MultiDim
from cosmic.errors import ConfigError
from cosmic.network.topology import Topology

if TYPE_CHECKING:
    from cosmic.collective.config import CollectiveConfig

GIB = 2**30


@dataclass(frozen=True, slots=True)
class AstraDim:
    """One dimension as the analytical backend sees it.

    Attributes:
        topology: Ring, FullyConnected or Switch.
        npus: NPUs in the dimension.
        bytes_per_ns: link bandwidth, ASTRA-sim's ``bandwidth`` (GB/s, GB = 2^30) x 2^30 / 10^9.
        latency_ns: per-hop latency.
        network_dim: index of the network dimension (for reporting).
        ring_hops: hops of a ring step when they differ from the topology's default (flat rings over sub-groups).
    """

    topology: Topology
    npus: int
    bytes_per_ns: float
    latency_ns: float
    network_dim: int = 0
    ring_hops: tuple[int, int, int] | None = None  # (hops of a normal step, hops of a carry step, carry period)

    @classmethod
    def from_gib(cls, topology: Topology, npus: int, gib_per_s: float, latency_ns: float,
                 network_dim: int = 0) -> AstraDim:
        """A dimension from ASTRA-sim's own units (bandwidth in GB/s with GB = 2^30, latency in ns)."""
        return cls(Topology(topology), int(npus), gib_per_s * GIB / 1_000_000_000, float(latency_ns), network_dim)


@dataclass(frozen=True, slots=True)
class AstraParams:
    """System-file knobs that change the timing of one collective."""

    splits: int = 1
    active_chunks: int = 1
    endpoint_delay_ns: int = 10
    local_mem_bw_gbps: float = 1600.0
    multidim: MultiDim = MultiDim.BASELINE


@dataclass(frozen=True, slots=True)
class Phase:
    """One phase of one chunk: what runs on which dimension and how long it takes (slowest NPU, alone)."""

    position: int  # index into the collective's dimension list
    network_dim: int
    kind: Collective
    algorithm: Algorithm
    bytes_in: int
    bytes_out: int
    time_ns: int


@dataclass(frozen=True, slots=True)
class AstraResult:
    """Outcome of one collective in astra-sim fidelity."""

    time_ns: int
    chunk_bytes: int
    n_chunks: int
    phases: tuple[Phase, ...]
    busy_ns: tuple[int, ...]  # per dimension position: sum of phase times of all chunks
    notes: tuple[str, ...] = field(default=())


# ---- messages ------------------------------------------------------------------------------------------------------


def msg_ns(m: int, hops: int, dim: AstraDim) -> int:
    """N(m, h) = floor(h x latency + m / B): one message of m bytes over h hops, truncated to whole ns."""
    return int(hops * dim.latency_ns + m / dim.bytes_per_ns)


def reduce_ns(m: int, p: AstraParams) -> int:
    """R(m) = 3 x floor(m / local-mem-bw): one write and two reads of a received message."""
    return 3 * int(m // p.local_mem_bw_gbps)


def _hops(dim: AstraDim, offset: int) -> int:
    """Hops between NPUs `offset` apart in the dimension."""
    if dim.topology is Topology.SWITCH:
        return 2
    if dim.topology is Topology.FULLY_CONNECTED:
        return 1
    k = offset % dim.npus
    return min(k, dim.npus - k)


def _ring_step_hops(dim: AstraDim) -> int:
    return 2 if dim.topology is Topology.SWITCH else 1


# ---- per-dimension phase times -------------------------------------------------------------------------------------


def _ring_window_ns(dim: AstraDim, m: int, steps: int, extra_per_step: int) -> int:
    """Sum of `steps` consecutive ring steps, each N(m, h) + extra, on the slowest chain of the ring.

    On a dimension's own ring every step costs the same. On a flat ring over a strided sub-group (``ring_hops``) the
    steps that wrap a coordinate ("carry" steps, every `period`-th link) cross more hops; each NPU's chain of steps
    runs over consecutive links, so the slowest NPU sees the window with the most expensive links.
    """
    if dim.ring_hops is None:
        return steps * (msg_ns(m, _ring_step_hops(dim), dim) + extra_per_step)
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
        hops = np.minimum(offsets, n - offsets)
    else:
        hops = np.full(n - 1, _hops(dim, 1))
    net = (hops * dim.latency_ns + m / dim.bytes_per_ns).astype(np.int64)  # N(m, h_j) per offset j
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
            t += msg_ns(size, _hops(dim, offset), dim) + e
            size *= 2
            offset //= 2
        return t
    sizes = [d >> (k + 1) for k in range(levels)]  # d/2, d/4, ..., d/p
    for k, size in enumerate(sizes):
        t += msg_ns(size, _hops(dim, 1 << k), dim) + e
        if k > 0:
            t += reduce_ns(size, p)
    if kind is Collective.ALL_REDUCE:
        for k in reversed(range(levels)):
            t += msg_ns(sizes[k], _hops(dim, 1 << k), dim) + e
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
        return int(_tree_finish(dim, d, p, starts, root_max=True).max()), d
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
        far = _hops(dim, n // 2)
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


# ---- double binary tree --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Tree:
    """A binary tree over p NPUs: a root with one child, that child a complete in-order-numbered tree of p-1 nodes."""

    root: int
    top: int
    levels: tuple[tuple[np.ndarray, np.ndarray, np.ndarray], ...]  # per height >= 1: (nodes, left, right)
    leaves: np.ndarray
    parent: np.ndarray  # parent of every node (root: -1)


@register
@lru_cache(maxsize=64)
def _tree(n: int, root_max: bool) -> _Tree:
    depth = n.bit_length() - 1  # levels of the inner tree (2^depth - 1 nodes)
    base = 0 if root_max else 1
    root = n - 1 if root_max else 0
    j = np.arange(1, n)  # in-order position within the inner tree, 1-based
    ids = base + j - 1
    height = np.zeros(n - 1, dtype=np.int64)
    for h in range(1, depth):
        height[(j % (1 << h)) == 0] = h
    parent = np.full(n, -1, dtype=np.int64)
    for h in range(depth - 1):
        sel = height == h
        jj = j[sel]
        up = jj + (1 << h)
        is_up = (up % (1 << (h + 2))) == (1 << (h + 1))
        par_j = np.where(is_up, up, jj - (1 << h))
        parent[ids[sel]] = base + par_j - 1
    top = base + (1 << (depth - 1)) - 1
    parent[top] = root
    levels = []
    for h in range(1, depth):
        jj = j[height == h]
        levels.append((base + jj - 1, base + jj - (1 << (h - 1)) - 1, base + jj + (1 << (h - 1)) - 1))
    leaves = ids[height == 0]
    return _Tree(root, top, tuple(levels), leaves, parent)


def _edge_ns(dim: AstraDim, a: np.ndarray | int, b: np.ndarray | int, d: int) -> np.ndarray:
    """N(d, hops(a, b)) for tree edges (vectorised)."""
    if dim.topology is Topology.RING:
        k = np.abs(np.asarray(a) - np.asarray(b)) % dim.npus
        hops = np.minimum(k, dim.npus - k)
    else:
        hops = np.full(np.shape(a), _hops(dim, 1))
    return (hops * dim.latency_ns + d / dim.bytes_per_ns).astype(np.int64)


def _tree_finish(dim: AstraDim, d: int, p: AstraParams, starts: np.ndarray, *, root_max: bool) -> np.ndarray:
    """Finish time of every NPU of one double-binary-tree chunk, given when each NPU started it.

    Up: a leaf sends at start + E; an inner node sends once it has started and both children's data arrived,
    plus E + R; the root adds E + R and sends down. Down: an inner node forwards E + R after its parent's message
    arrives (and is done then); a leaf is done E after it arrives.
    """
    n = dim.npus
    e = p.endpoint_delay_ns
    er = e + reduce_ns(d, p)
    t = _tree(n, root_max)
    up = np.zeros(n, dtype=np.int64)  # time each node sends up
    up[t.leaves] = starts[t.leaves] + e
    for nodes, left, right in t.levels:
        arr_l = up[left] + _edge_ns(dim, left, nodes, d)
        arr_r = up[right] + _edge_ns(dim, right, nodes, d)
        up[nodes] = np.maximum(np.maximum(arr_l, arr_r), starts[nodes]) + er
    root_arr = int(up[t.top] + _edge_ns(dim, t.top, t.root, d))
    root_send = max(root_arr, int(starts[t.root])) + er
    finish = np.zeros(n, dtype=np.int64)
    finish[t.root] = root_send
    recv = np.zeros(n, dtype=np.int64)  # time the down message reaches each node
    recv[t.top] = root_send + int(_edge_ns(dim, t.root, t.top, d))
    for nodes, left, right in reversed(t.levels):
        fwd = recv[nodes] + er
        finish[nodes] = fwd
        recv[left] = fwd + _edge_ns(dim, nodes, left, d)
        recv[right] = fwd + _edge_ns(dim, nodes, right, d)
    finish[t.leaves] = recv[t.leaves] + e
    return finish


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


def _run_streams(phases: tuple[Phase, ...], n_streams: int, active: int, n_queues: int) -> int:
    """Finish time of the last stream when every NPU runs the same schedule (no double binary tree)."""
    if not phases:
        return 0
    if len({ph.position for ph in phases}) == 1:
        # one dimension: rounds of `active` chunks
        return -(-n_streams // active) * sum(ph.time_ns for ph in phases)
    waiting: list[list[int]] = [[] for _ in range(n_queues)]
    free = [active] * n_queues
    stage = [0] * n_streams
    events: list[tuple[int, int]] = []
    for s in range(n_streams):
        waiting[phases[0].position].append(s)  # already in creation order
    last = 0
    now = 0
    while True:
        for q in range(n_queues):
            wq = waiting[q]
            while free[q] and wq:
                s = heapq.heappop(wq)
                free[q] -= 1
                heapq.heappush(events, (now + phases[stage[s]].time_ns, s))
        if not events:
            return last
        now = events[0][0]
        while events and events[0][0] == now:
            _, s = heapq.heappop(events)
            free[phases[stage[s]].position] += 1
            stage[s] += 1
            if stage[s] < len(phases):
                heapq.heappush(waiting[phases[stage[s]].position], s)
            else:
                last = now


def _run_tree_single(dim: AstraDim, d: int, n_streams: int, p: AstraParams) -> int:
    """One double-binary-tree dimension: each NPU has its own slots; chunks alternate trees (even: root p-1)."""
    n = dim.npus
    slots = np.zeros((n, p.active_chunks), dtype=np.int64)
    rows = np.arange(n)
    last = 0
    for c in range(n_streams):
        col = slots.argmin(axis=1)
        starts = slots[rows, col]
        fin = _tree_finish(dim, d, p, starts, root_max=(c % 2 == 0))
        slots[rows, col] = fin
        last = max(last, int(fin.max()))
    return last


def _run_classes(
    phases: tuple[Phase, ...], dims: tuple[AstraDim, ...], n_streams: int, p: AstraParams
) -> int:
    """Per-NPU-class event simulation when tree phases make NPUs drift apart.

    NPUs with the same coordinates in every tree dimension run identical schedules (every other phase only talks
    within such a class), so a class stands for all of them; a tree phase couples the classes along its dimension.
    """
    tree_pos = sorted({ph.position for ph in phases if ph.algorithm is Algorithm.DOUBLE_BINARY_TREE})
    radix = [dims[i].npus for i in tree_pos]
    n_cls = math.prod(radix)
    weights = [math.prod(radix[:k]) for k in range(len(radix))]
    n_q = len(dims)
    waiting: list[list[list[Any]]] = [[[] for _ in range(n_q)] for _ in range(n_cls)]
    free = [[p.active_chunks] * n_q for _ in range(n_cls)]
    stage = [[0] * n_streams for _ in range(n_cls)]
    # which tree each tree phase uses: ASTRA-sim alternates per dimension in phase-creation order
    counter: dict[int, int] = {}
    root_max: dict[tuple[int, int], bool] = {}
    for s in range(n_streams):
        for k, ph in enumerate(phases):
            if ph.algorithm is Algorithm.DOUBLE_BINARY_TREE:
                c = counter.get(ph.position, 0)
                root_max[(s, k)] = c % 2 == 0
                counter[ph.position] = c + 1
    pending: dict[tuple[int, int, int], dict[int, int]] = {}
    events: list[tuple[int, int, int]] = []
    for c in range(n_cls):
        for s in range(n_streams):
            waiting[c][phases[0].position].append(s)
    last = 0
    now = 0
    dirty = {(c, phases[0].position) for c in range(n_cls)}  # queues whose slots or waiting lists changed
    while True:
        for c, q in sorted(dirty):
            wq = waiting[c][q]
            while free[c][q] and wq:
                s = heapq.heappop(wq)
                free[c][q] -= 1
                k = stage[c][s]
                ph = phases[k]
                if ph.algorithm is not Algorithm.DOUBLE_BINARY_TREE:
                    heapq.heappush(events, (now + ph.time_ns, c, s))
                    continue
                t_idx = tree_pos.index(ph.position)
                w = weights[t_idx]
                coord = (c // w) % radix[t_idx]
                key = (s, k, c - coord * w)
                group = pending.setdefault(key, {})
                group[coord] = now
                if len(group) == radix[t_idx]:
                    starts = np.array([group[i] for i in range(radix[t_idx])], dtype=np.int64)
                    fin = _tree_finish(dims[ph.position], ph.bytes_in, p, starts, root_max=root_max[(s, k)])
                    for i in range(radix[t_idx]):
                        heapq.heappush(events, (int(fin[i]), key[2] + i * w, s))
                    del pending[key]
        dirty.clear()
        if not events:
            return last
        now = events[0][0]
        while events and events[0][0] == now:
            _, c, s = heapq.heappop(events)
            q = phases[stage[c][s]].position
            free[c][q] += 1
            dirty.add((c, q))
            stage[c][s] += 1
            if stage[c][s] < len(phases):
                q = phases[stage[c][s]].position
                heapq.heappush(waiting[c][q], s)
                dirty.add((c, q))
            else:
                last = now


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
        total = _run_streams(phases, n_chunks, params.active_chunks, len(dims))
    elif len(phases) == 1:
        total = _run_tree_single(dims[phases[0].position], phases[0].bytes_in, n_chunks, params)
    else:
        total = _run_classes(phases, dims, n_chunks, params)
    return AstraResult(total, chunk, n_chunks, phases, tuple(busy), tuple(notes))


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
    (its bandwidth and latency; on a Ring topology, the ring distance between the two coordinates).
    """
    key = _group_key(Collective(kind), group, collective, topologies, n_npus)
    return _astra_cached(key, int(size_bytes))


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
        res = simulate_collective(kind, size, (flat,), (Algorithm.RING,), params, total_npus=total_npus)
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
]
