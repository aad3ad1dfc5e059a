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
from enum import StrEnum

from cosmic.collective.algorithms import Algorithm, Collective, GroupDim, phase_time_s
from cosmic.network.topology import Topology


class MultiDim(StrEnum):
    BASELINE = "baseline"
    LOCAL_BW_AWARE = "local_bw_aware"

    @classmethod
    def _missing_(cls, value: object) -> MultiDim | None:
        if isinstance(value, str):
            key = value.replace("_", "").replace("-", "").lower()
            return {"baseline": cls.BASELINE, "localbwaware": cls.LOCAL_BW_AWARE}.get(key)
        return None


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
    if kind is Collective.ALL_REDUCE:
        if multidim is MultiDim.BASELINE or len(dims) == 1:
            for i, g in enumerate(dims):
                phases.append((i, phase_time_s(kind, algorithms[g.dim_index], g, chunk)))
        else:
            d = chunk
            up: list[tuple[int, float]] = []
            for i, g in enumerate(dims[:-1]):
                up.append((i, phase_time_s(Collective.REDUCE_SCATTER, algorithms[g.dim_index], g, d)))
                d /= g.members
            last = dims[-1]
            mid = (len(dims) - 1, phase_time_s(Collective.ALL_REDUCE, algorithms[last.dim_index], last, d))
            down: list[tuple[int, float]] = []
            for i in reversed(range(len(dims) - 1)):
                g = dims[i]
                down.append((i, phase_time_s(Collective.ALL_GATHER, algorithms[g.dim_index], g, d)))
                d *= g.members
            phases = up + [mid] + down
    elif kind is Collective.REDUCE_SCATTER:
        d = chunk
        for i, g in enumerate(dims):
            phases.append((i, phase_time_s(kind, algorithms[g.dim_index], g, d)))
            d /= g.members
    elif kind is Collective.ALL_GATHER:
        d = chunk
        for i in reversed(range(len(dims))):
            g = dims[i]
            phases.append((i, phase_time_s(kind, algorithms[g.dim_index], g, d)))
            d *= g.members
    else:  # all-to-all
        for i, g in enumerate(dims):
            phases.append((i, phase_time_s(kind, algorithms[g.dim_index], g, chunk)))

    busy = [0.0] * len(dims)
    for i, t in phases:
        busy[i] += t
    first_chunk_s = sum(t for _, t in phases)
    total_s = first_chunk_s + (n_chunks - 1) * max(busy)
    all_busy = sum(busy)
    per_dim = tuple((dims[i].dim_index, total_s * busy[i] / all_busy) for i in range(len(dims)) if all_busy > 0)
    return CollectiveTime(total_s, per_dim)


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
