"""Closed-form collective times per network dimension (cosmic fidelity).

The per-dimension formulas follow the classic alpha-beta analysis of collective algorithms (Thakur, Rabenseifner,
Gropp, "Optimization of Collective Communication Operations in MPICH", IJHPCA 2005; Patarasuk & Yuan 2009 for the
bandwidth-optimal ring; Sanders, Speck, Traeff 2009 for double binary trees) as summarised in the reference
(``cosmic.md`` section 4), with three departures from ASTRA-sim's congestion-unaware backend that make them closer to
real fabrics:

* a group only uses the NPUs it really contains: a group spanning part of a dimension is priced with its own size,
  its stride and the link sharing that stride causes (ASTRA-sim flattens such groups into one ring);
* the injection bandwidth of an NPU bounds every algorithm: on a Switch an NPU has one link, so "direct" cannot send
  p-1 messages at full speed at once; on a Ring, messages to distant peers share links;
* a bidirectional ring (Ring topology, and FullyConnected where two distinct links reach both neighbours) carries a
  ring algorithm in both directions (twice the bandwidth of one link), as NCCL and TPU ICI do.

All sizes are bytes per NPU entering the phase; all bandwidths bytes/s (already scaled by the fabric efficiency).
"""

from __future__ import annotations

import math
from typing import NamedTuple

from cosmic._enums import LenientStrEnum
from cosmic.network.topology import Topology


class Collective(LenientStrEnum):
    ALL_REDUCE = "all_reduce"
    ALL_GATHER = "all_gather"
    REDUCE_SCATTER = "reduce_scatter"
    ALL_TO_ALL = "all_to_all"



class Algorithm(LenientStrEnum):
    """Per-dimension collective algorithm; ASTRA-sim spellings (``halvingDoubling``...) are accepted."""

    RING = "ring"
    DIRECT = "direct"
    HALVING_DOUBLING = "halving_doubling"
    DOUBLE_BINARY_TREE = "double_binary_tree"

    @classmethod
    def _aliases(cls) -> dict[str, str]:
        return {
            "onering": "ring",
            "onedirect": "direct",
            "onehalvingdoubling": "halving_doubling",
            "hd": "halving_doubling",
            "dbt": "double_binary_tree",
        }


class GroupDim(NamedTuple):
    """The part of one network dimension a communication group spans.

    Attributes:
        dim_index: which network dimension.
        topology: its topology.
        members: NPUs of the group in this dimension (>= 2 for a real phase).
        stride: distance, in this dimension's coordinates, between consecutive members.
        dim_npus: size of the dimension.
        link_bytes_per_s: effective bandwidth of one link in one direction.
        latency_s: per-hop latency.
    """

    dim_index: int
    topology: Topology
    members: int
    stride: int
    dim_npus: int
    link_bytes_per_s: float
    latency_s: float

    @property
    def hop_latency_s(self) -> float:
        """Latency of one logical neighbour step (a Switch costs two hops: NPU-switch-NPU)."""
        if self.topology is Topology.SWITCH:
            return 2.0 * self.latency_s
        if self.topology is Topology.RING:
            return self.stride * self.latency_s
        return self.latency_s

    @property
    def ring_bytes_per_s(self) -> float:
        """Bandwidth a ring algorithm gets per step over this group."""
        b = self.link_bytes_per_s
        t = self.topology
        if t is Topology.SWITCH:
            return b
        if t is Topology.FULLY_CONNECTED:
            return 2.0 * b if self.members > 2 else b
        # Ring topology
        covers_ring = self.members * self.stride == self.dim_npus
        if covers_ring:
            # the group's logical ring follows the physical ring in both directions; `stride` interleaved groups
            # share every link
            return (2.0 * b if self.members > 2 else b) / self.stride
        # a segment or a strided subset of a ring: wrap-around traffic shares links with the forward direction
        return b / self.stride


def _ring_load(offset: int, p: int) -> float:
    """Max messages per directed link when every member of a p-ring sends to the member `offset` away
    (shortest way, ties split between both directions)."""
    hops = min(offset, p - offset)
    if 2 * offset == p:
        return max(1.0, hops / 2.0)
    return float(max(1, hops))


def _direct_time_s(g: GroupDim, msg_bytes: float) -> float:
    """Every member sends one `msg_bytes` message to each of the other p-1 members at once."""
    p = g.members
    b = g.link_bytes_per_s
    if g.topology is Topology.SWITCH:
        return g.hop_latency_s + (p - 1) * msg_bytes / b
    if g.topology is Topology.FULLY_CONNECTED:
        return g.latency_s + msg_bytes / b
    # Ring: each member sends to all others by the shortest way; the busiest directed link carries
    # about p^2/8 messages (bidirectional ring), times the stride sharing.
    load = sum(min(k, p - k) for k in range(1, p)) / 2.0
    max_hops = p // 2
    return max_hops * g.stride * g.latency_s + msg_bytes * load * g.stride / b


def _hd_step_s(g: GroupDim, offset: int, msg_bytes: float) -> float:
    if g.topology is Topology.RING:
        p = g.members
        hops = min(offset, p - offset) * g.stride
        load = _ring_load(offset, p) * g.stride
        return hops * g.latency_s + msg_bytes * load / g.link_bytes_per_s
    return g.hop_latency_s + msg_bytes / g.link_bytes_per_s


def _hd_reduce_scatter_s(g: GroupDim, d: float) -> float:
    p = g.members
    levels = int(math.log2(p))
    t = 0.0
    if (1 << levels) != p:
        # non power of two: fold the extra members in first (Rabenseifner), one full-size exchange
        t += g.hop_latency_s + d / g.link_bytes_per_s
    size = d
    for k in range(levels):
        size /= 2.0
        t += _hd_step_s(g, 1 << k, size)
    return t


def _hd_all_gather_s(g: GroupDim, shard: float) -> float:
    p = g.members
    levels = int(math.log2(p))
    t = 0.0
    if (1 << levels) != p:
        t += g.hop_latency_s + shard * p / g.link_bytes_per_s
    size = shard
    for k in reversed(range(levels)):
        t += _hd_step_s(g, 1 << k, size)
        size *= 2.0
    return t


def _dbt_all_reduce_s(g: GroupDim, d: float) -> float:
    """Pipelined double binary tree: two trees each carry half the data up (reduce) and down (broadcast);
    every NPU is an inner node of at most one tree, so its link carries about 2d per direction."""
    p = g.members
    depth = math.ceil(math.log2(p))
    if g.topology is Topology.RING:
        spread = max(1, p // 4)  # tree edges on a ring span about p/4 positions
        alpha = g.latency_s * g.stride * spread
        bw = g.link_bytes_per_s / (g.stride * spread)
    else:
        alpha = g.hop_latency_s
        bw = g.link_bytes_per_s
    return 2 * depth * alpha + 2.0 * d / bw


def phase_time_s(kind: Collective, algorithm: Algorithm, g: GroupDim, d_bytes: float) -> float:
    """Time of one collective phase over one group dimension.

    Args:
        kind: collective of this phase.
        algorithm: algorithm used on this dimension.
        g: the group's span of the dimension.
        d_bytes: per-NPU bytes entering the phase (for all-gather: the input shard).
    """
    p = g.members
    if p <= 1 or d_bytes <= 0:
        return 0.0
    if algorithm is Algorithm.DOUBLE_BINARY_TREE and kind is not Collective.ALL_REDUCE:
        algorithm = Algorithm.RING  # trees exist for all-reduce only (as in NCCL)
    if algorithm is Algorithm.HALVING_DOUBLING and kind is Collective.ALL_TO_ALL:
        algorithm = Algorithm.DIRECT

    if algorithm is Algorithm.RING:
        a, bw = g.hop_latency_s, g.ring_bytes_per_s
        if kind is Collective.ALL_REDUCE:
            return 2 * (p - 1) * (a + d_bytes / (p * bw))
        if kind is Collective.REDUCE_SCATTER:
            return (p - 1) * (a + d_bytes / (p * bw))
        if kind is Collective.ALL_GATHER:
            return (p - 1) * (a + d_bytes / bw)
        # all-to-all relayed around the ring: p-1 steps, each forwarding the blocks still in transit
        return (p - 1) * a + d_bytes * (p - 1) / 2.0 / bw
    if algorithm is Algorithm.DIRECT:
        if kind is Collective.ALL_REDUCE:
            return 2 * _direct_time_s(g, d_bytes / p)
        if kind is Collective.REDUCE_SCATTER or kind is Collective.ALL_TO_ALL:
            return _direct_time_s(g, d_bytes / p)
        return _direct_time_s(g, d_bytes)
    if algorithm is Algorithm.HALVING_DOUBLING:
        if kind is Collective.ALL_REDUCE:
            return _hd_reduce_scatter_s(g, d_bytes) + _hd_all_gather_s(g, d_bytes / p)
        if kind is Collective.REDUCE_SCATTER:
            return _hd_reduce_scatter_s(g, d_bytes)
        return _hd_all_gather_s(g, d_bytes)
    return _dbt_all_reduce_s(g, d_bytes)
