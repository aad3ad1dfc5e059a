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
from cosmic.collective.algorithms import Algorithm, Collective, GroupDim
from cosmic.collective.communicator import (
    ALGORITHMS,
    KINDS,
    TOPOLOGIES,
    Coefficients,
    GroupShape,
    Priced,
    collective_cost,
    p2p_cost,
    unit_coefficients,
)


class MultiDim(LenientStrEnum):
    BASELINE = "baseline"
    LOCAL_BW_AWARE = "local_bw_aware"


@dataclass(frozen=True, slots=True)
class CollectiveTime:
    """Time of one collective and how it splits over the network dimensions it uses."""

    total_s: float
    per_dim_s: tuple[tuple[int, float], ...]  # (network dimension index, share of total_s)


ZERO = CollectiveTime(0.0, ())


def _coefficients(group: tuple[GroupDim, ...], algorithms: tuple[Algorithm, ...], kind: int) -> Coefficients:
    from cosmic.collective.communicator import P2P
    ab = [unit_coefficients(kind, ALGORITHMS.index(algorithms[g.dim_index]) if kind != P2P else 0,
                            TOPOLOGIES.index(g.topology), g.members, g.stride, g.dim_npus) for g in group]
    return Coefficients(tuple(g.latency_s * a for g, (a, _) in zip(group, ab, strict=True)),
                        tuple(b / g.link_bytes_per_s for g, (_, b) in zip(group, ab, strict=True)))


def _shape(group: tuple[GroupDim, ...]) -> GroupShape:
    return GroupShape(tuple(g.members for g in group), tuple(g.stride for g in group))


def _sparse(group: tuple[GroupDim, ...], priced: Priced, *, charged_only: bool = False) -> CollectiveTime:
    if priced.total_s <= 0:
        return ZERO
    return CollectiveTime(priced.total_s, tuple((g.dim_index, t) for g, t in zip(group, priced.per_dim_s,
                                                                                  strict=True)
                                                if t > 0 or not charged_only))


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
    For all-gather, `size_bytes` is each NPU's input shard (output = group size x shard). The composition is
    `cosmic.collective.communicator.collective_cost`, the one the simulator uses.
    """
    if not group or size_bytes <= 0:
        return ZERO
    k = KINDS.index(Collective(kind))
    priced = collective_cost(k, size_bytes, lambda q: _coefficients(group, algorithms, q), _shape(group),
                             max(1, int(chunks)), multidim is MultiDim.BASELINE)
    return _sparse(group, priced)


def p2p_time(msg_bytes: float, group: tuple[GroupDim, ...]) -> CollectiveTime:
    """Time of a point-to-point send between neighbours of `group` (pipeline stages).

    Neighbouring ranks differ in the innermost spanned dimension, and the wrap-around between blocks crosses the
    outer ones; in a pipeline the slowest boundary sets the pace, so the slowest spanned dimension is charged.
    """
    from cosmic.collective.communicator import P2P
    if not group:
        return ZERO
    return _sparse(group, p2p_cost(msg_bytes, _coefficients(group, (), P2P), _shape(group)), charged_only=True)
