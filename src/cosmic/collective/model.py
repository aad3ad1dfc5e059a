"""A whole collective over a (possibly multi-dimensional) group: chunking, phase lists and pipelining.

A collective of D bytes is split into `chunks` pieces; each chunk runs one phase per spanned dimension:

* all-reduce, ``local_bw_aware``: reduce-scatter up the dimensions (data shrinks by each dimension's size), an
  all-reduce on the outermost spanned dimension, all-gather back down (hierarchical all-reduce);
* all-reduce, ``baseline``: the full all-reduce on each dimension in turn;
* reduce-scatter and all-to-all: dimensions innermost first; all-gather: outermost first.

Chunks pipeline through the dimensions like jobs through a flow shop: the first chunk pays every phase, each
further chunk adds the busiest dimension's per-chunk time (RS and AG of a dimension share it). So more chunks hide
more of the non-bottleneck phases but pay more latency.
"""

from __future__ import annotations

from dataclasses import dataclass

from cosmic._enums import LenientStrEnum
from cosmic.collective.algorithms import Algorithm, Collective, GroupDim, phase_coefficients
from cosmic.network.topology import Topology


class MultiDim(LenientStrEnum):
    BASELINE = "baseline"
    LOCAL_BW_AWARE = "local_bw_aware"


@dataclass(frozen=True, slots=True)
class CollectiveTime:
    """Time of one collective and how it splits over the network dimensions it uses."""

    total_s: float
    per_dim_s: tuple[tuple[int, float], ...]  # (network dimension index, share of total_s)


ZERO = CollectiveTime(0.0, ())


def collective_time(
    kind: Collective,
    size_bytes: float,
    group: tuple[GroupDim, ...],
    algorithms: tuple[Algorithm, ...],
    *,
    chunks: int = 1,
    multidim: MultiDim = MultiDim.LOCAL_BW_AWARE,
) -> CollectiveTime:
    """Time of collective `kind` of `size_bytes` per NPU over `group` (its spans, innermost first).

    `algorithms` is indexed by network dimension (``algorithms[g.dim_index]``).
    For all-gather, `size_bytes` is each NPU's input shard (output = group size x shard).
    """
    dims = group  # spans always have >= 2 members
    if not dims or size_bytes <= 0:
        return ZERO
    n_chunks = max(1, int(chunks))
    chunk = size_bytes / n_chunks

    # (dimension position, time) of every phase of one chunk, in order
    phases: list[tuple[int, float]] = []
    n = len(dims)

    def t(k: Collective, i: int, d: float) -> float:
        a, b = phase_coefficients(k, algorithms[dims[i].dim_index], dims[i])
        return a + b * d

    if kind is Collective.ALL_REDUCE:
        if multidim is MultiDim.BASELINE or n == 1:
            phases = [(i, t(kind, i, chunk)) for i in range(n)]
        else:
            d = chunk
            for i in range(n - 1):
                phases.append((i, t(Collective.REDUCE_SCATTER, i, d)))
                d /= dims[i].members
            phases.append((n - 1, t(Collective.ALL_REDUCE, n - 1, d)))
            for i in range(n - 2, -1, -1):
                phases.append((i, t(Collective.ALL_GATHER, i, d)))
                d *= dims[i].members
    elif kind is Collective.REDUCE_SCATTER:
        d = chunk
        for i in range(n):
            phases.append((i, t(kind, i, d)))
            d /= dims[i].members
    elif kind is Collective.ALL_GATHER:
        d = chunk
        for i in range(n - 1, -1, -1):
            phases.append((i, t(kind, i, d)))
            d *= dims[i].members
    else:  # all-to-all
        phases = [(i, t(kind, i, chunk)) for i in range(n)]

    busy = [0.0] * n
    for i, x in phases:
        busy[i] += x
    all_busy = sum(busy)  # = the first chunk's time through every phase
    total_s = all_busy + (n_chunks - 1) * max(busy)
    if all_busy <= 0:
        return ZERO
    scale = total_s / all_busy
    return CollectiveTime(total_s, tuple((dims[i].dim_index, busy[i] * scale) for i in range(n)))


def p2p_time(msg_bytes: float, group: tuple[GroupDim, ...]) -> CollectiveTime:
    """Time of a point-to-point send between neighbours of `group` (pipeline stages).

    Neighbouring ranks differ in the innermost spanned dimension, and the wrap-around between blocks crosses the
    outer ones; in a pipeline the slowest boundary sets the pace, so the slowest spanned dimension is charged.
    """
    best: tuple[float, int] | None = None
    for g in group:
        if g.members <= 1:
            continue
        if g.topology is Topology.SWITCH:
            t = g.hop_latency_s + msg_bytes / g.link_bytes_per_s
        elif g.topology is Topology.FULLY_CONNECTED:
            t = g.latency_s + msg_bytes / g.link_bytes_per_s
        else:
            # neighbours `stride` positions apart on the ring; all pairs send at once, sharing links
            t = g.stride * g.latency_s + msg_bytes * g.stride / g.link_bytes_per_s
        if best is None or t > best[0]:
            best = (t, g.dim_index)
    if best is None:
        return ZERO
    return CollectiveTime(best[0], ((best[1], best[0]),))
