"""cosmic-fidelity collectives against their closed forms (alpha-beta model, reference cosmic.md section 4)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cosmic.collective.algorithms import Algorithm, Collective, GroupDim, phase_time_s
from cosmic.collective.model import MultiDim, collective_time, p2p_time
from cosmic.network.topology import Topology

A = 1e-6  # per-hop latency, s
B = 100e9  # link bandwidth, bytes/s
D = 64e6  # bytes per NPU

AR, AG, RS, A2A = Collective.ALL_REDUCE, Collective.ALL_GATHER, Collective.REDUCE_SCATTER, Collective.ALL_TO_ALL
RING, DIRECT, HD, DBT = Algorithm.RING, Algorithm.DIRECT, Algorithm.HALVING_DOUBLING, Algorithm.DOUBLE_BINARY_TREE


def g(topo: Topology, p: int, *, stride: int = 1, dim_npus: int | None = None, idx: int = 0) -> GroupDim:
    return GroupDim(idx, topo, p, stride, dim_npus or p * stride, B, A)


@pytest.mark.parametrize("p", [2, 4, 8, 16])
def test_ring_on_switch(p: int) -> None:
    """Ring over a switch: one link per NPU, every step crosses two hops."""
    grp = g(Topology.SWITCH, p)
    assert phase_time_s(AR, RING, grp, D) == pytest.approx(2 * (p - 1) * (2 * A + D / (p * B)))
    assert phase_time_s(RS, RING, grp, D) == pytest.approx((p - 1) * (2 * A + D / (p * B)))
    assert phase_time_s(AG, RING, grp, D) == pytest.approx((p - 1) * (2 * A + D / B))


@pytest.mark.parametrize("topo", [Topology.RING, Topology.FULLY_CONNECTED])
@pytest.mark.parametrize("p", [4, 8])
def test_bidirectional_ring(topo: Topology, p: int) -> None:
    """A full ring (or a fully-connected group) carries the ring algorithm both ways: bandwidth 2B."""
    grp = g(topo, p)
    assert phase_time_s(AR, RING, grp, D) == pytest.approx(2 * (p - 1) * (A + D / (p * 2 * B)))


def test_strided_subring_shares_links() -> None:
    """Members 2 apart on an 8-ring: 2 interleaved groups share every link, each step spans 2 hops."""
    grp = g(Topology.RING, 4, stride=2, dim_npus=8)
    assert phase_time_s(AR, RING, grp, D) == pytest.approx(2 * 3 * (2 * A + D / (4 * (2 * B / 2))))


def test_segment_of_ring_is_a_line() -> None:
    """A contiguous segment of a ring has no wrap-around link: one direction's bandwidth."""
    grp = g(Topology.RING, 4, stride=1, dim_npus=8)
    assert phase_time_s(AR, RING, grp, D) == pytest.approx(2 * 3 * (A + D / (4 * B)))


@pytest.mark.parametrize("p", [4, 8, 16])
def test_direct(p: int) -> None:
    fc, sw = g(Topology.FULLY_CONNECTED, p), g(Topology.SWITCH, p)
    # FullyConnected: p-1 links in parallel, one message each
    assert phase_time_s(RS, DIRECT, fc, D) == pytest.approx(A + D / p / B)
    assert phase_time_s(AR, DIRECT, fc, D) == pytest.approx(2 * (A + D / p / B))
    assert phase_time_s(AG, DIRECT, fc, D) == pytest.approx(A + D / B)
    # Switch: the single injection link serialises the p-1 messages
    assert phase_time_s(RS, DIRECT, sw, D) == pytest.approx(2 * A + (p - 1) * D / p / B)
    assert phase_time_s(A2A, DIRECT, sw, D) == pytest.approx(2 * A + (p - 1) * D / p / B)


def test_direct_on_ring_load() -> None:
    """Direct exchange on a bidirectional 4-ring: distances 1,2,1 -> busiest link carries 2 messages."""
    grp = g(Topology.RING, 4)
    assert phase_time_s(RS, DIRECT, grp, D) == pytest.approx(2 * A + (D / 4) * 2 / B)


@pytest.mark.parametrize("p", [2, 4, 8, 16, 32])
def test_halving_doubling_on_switch(p: int) -> None:
    L = int(math.log2(p))
    grp = g(Topology.SWITCH, p)
    rs = sum(2 * A + D / 2 ** (k + 1) / B for k in range(L))
    assert phase_time_s(RS, HD, grp, D) == pytest.approx(rs)
    assert phase_time_s(AR, HD, grp, D) == pytest.approx(2 * L * 2 * A + 2 * (p - 1) / p * D / B)
    assert phase_time_s(AG, HD, grp, D / p) == pytest.approx(rs)


def test_halving_doubling_non_power_of_two_adds_fold_step() -> None:
    grp6, grp4 = g(Topology.SWITCH, 6), g(Topology.SWITCH, 4)
    assert phase_time_s(RS, HD, grp6, D) > phase_time_s(RS, HD, grp4, D)


@pytest.mark.parametrize("p", [4, 8, 16])
def test_double_binary_tree(p: int) -> None:
    grp = g(Topology.SWITCH, p)
    assert phase_time_s(AR, DBT, grp, D) == pytest.approx(2 * math.log2(p) * 2 * A + 2 * D / B)
    # trees exist for all-reduce only: other collectives fall back to the ring (as NCCL)
    assert phase_time_s(AG, DBT, grp, D) == phase_time_s(AG, RING, grp, D)


def test_single_dim_collective_equals_phase_with_one_chunk() -> None:
    grp = (g(Topology.SWITCH, 8),)
    ct = collective_time(AR, D, grp, (RING,), chunks=1)
    assert ct.total_s == pytest.approx(phase_time_s(AR, RING, grp[0], D))
    assert ct.per_dim_s == ((0, pytest.approx(ct.total_s)),)


def test_local_bw_aware_hierarchy_and_pipelining() -> None:
    """RS on dim 0, AR on dim 1 on D/p0, AG on dim 0; chunks pipeline through the dims (flow shop)."""
    g0 = g(Topology.SWITCH, 8, idx=0)
    g1 = GroupDim(1, Topology.SWITCH, 4, 1, 4, B / 10, 5 * A)
    algos = (RING, RING)
    for chunks in (1, 2, 4, 8):
        c = D / chunks
        rs0 = phase_time_s(RS, RING, g0, c)
        ar1 = phase_time_s(AR, RING, g1, c / 8)
        ag0 = phase_time_s(AG, RING, g0, c / 8)
        expected = rs0 + ar1 + ag0 + (chunks - 1) * max(rs0 + ag0, ar1)
        ct = collective_time(AR, D, (g0, g1), algos, chunks=chunks, multidim=MultiDim.LOCAL_BW_AWARE)
        assert ct.total_s == pytest.approx(expected)
        assert sum(t for _, t in ct.per_dim_s) == pytest.approx(ct.total_s)


def test_baseline_runs_full_all_reduce_per_dim() -> None:
    g0, g1 = g(Topology.SWITCH, 8, idx=0), GroupDim(1, Topology.SWITCH, 4, 1, 4, B, A)
    ct = collective_time(AR, D, (g0, g1), (RING, RING), chunks=1, multidim=MultiDim.BASELINE)
    assert ct.total_s == pytest.approx(phase_time_s(AR, RING, g0, D) + phase_time_s(AR, RING, g1, D))
    lbw = collective_time(AR, D, (g0, g1), (RING, RING), chunks=1, multidim=MultiDim.LOCAL_BW_AWARE)
    assert lbw.total_s < ct.total_s


def test_all_gather_grows_outward_reduce_scatter_shrinks() -> None:
    g0, g1 = g(Topology.SWITCH, 4, idx=0), GroupDim(1, Topology.SWITCH, 2, 1, 2, B, A)
    ag = collective_time(AG, D, (g0, g1), (RING, RING), chunks=1)
    # all-gather: outer dim first on the shard, then the inner dim on 2x the shard
    assert ag.total_s == pytest.approx(phase_time_s(AG, RING, g1, D) + phase_time_s(AG, RING, g0, 2 * D))
    rs = collective_time(RS, D, (g0, g1), (RING, RING), chunks=1)
    assert rs.total_s == pytest.approx(phase_time_s(RS, RING, g0, D) + phase_time_s(RS, RING, g1, D / 4))


def test_p2p_charges_slowest_spanned_dim() -> None:
    fast = g(Topology.SWITCH, 8, idx=0)
    slow = GroupDim(1, Topology.SWITCH, 4, 1, 4, B / 8, 5 * A)
    t = p2p_time(1e6, (fast, slow))
    assert t.total_s == pytest.approx(2 * 5 * A + 1e6 / (B / 8))
    assert t.per_dim_s == ((1, t.total_s),)


_topos = st.sampled_from(list(Topology))
_algos = st.sampled_from(list(Algorithm))
_kinds = st.sampled_from(list(Collective))


@settings(max_examples=300, deadline=None)
@given(
    kind=_kinds,
    algo=_algos,
    topo=_topos,
    p=st.integers(2, 64),
    d=st.floats(1.0, 1e10),
    bw=st.floats(1e8, 1e12),
    factor=st.floats(1.0, 10.0),
    lat=st.floats(0, 1e-4),
)
def test_more_bandwidth_or_less_latency_is_never_slower(
    kind: Collective, algo: Algorithm, topo: Topology, p: int, d: float, bw: float, factor: float, lat: float
) -> None:
    base = GroupDim(0, topo, p, 1, p, bw, lat)
    faster = GroupDim(0, topo, p, 1, p, bw * factor, lat)
    lower = GroupDim(0, topo, p, 1, p, bw, lat / factor)
    t = phase_time_s(kind, algo, base, d)
    assert phase_time_s(kind, algo, faster, d) <= t * (1 + 1e-12)
    assert phase_time_s(kind, algo, lower, d) <= t * (1 + 1e-12)
    assert phase_time_s(kind, algo, base, d * factor) >= t * (1 - 1e-12)  # more bytes never faster
