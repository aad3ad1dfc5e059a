"""All-to-all (MoE token dispatch) against its closed forms: every algorithm on Ring, FullyConnected and Switch, on
one dimension and over several, through the scalar and the column communicator."""

from __future__ import annotations

import numpy as np
import pytest

from cosmic.collective.algorithms import Algorithm, Collective
from cosmic.collective.columns import ColumnCommunicator
from cosmic.collective.communicator import ALGORITHM_CODE, KINDS, TOPOLOGY_CODE, Communicator
from cosmic.collective.config import CollectiveConfig
from cosmic.network.topology import Network, Topology

LAT = 1e-6  # s per hop
GBPS = 100.0  # GB/s per link
B = GBPS * 1e9
D = 64e6  # bytes each NPU sends in all
A2A = Collective.ALL_TO_ALL


def _ring_load(p: int) -> float:
    return sum(min(k, p - k) for k in range(1, p)) / 2.0


def closed_form(topo: Topology, algo: Algorithm, p: int, d: float) -> float:
    """The per-dimension all-to-all of `cosmic.collective.algorithms` for a group covering the dimension."""
    if algo is Algorithm.HALVING_DOUBLING:
        algo = Algorithm.DIRECT  # no halving-doubling all-to-all (as ASTRA-sim)
    if algo is Algorithm.DOUBLE_BINARY_TREE:
        algo = Algorithm.RING  # trees are for all-reduce only
    if algo is Algorithm.RING:
        hop = 2 * LAT if topo is Topology.SWITCH else LAT
        bw = B if topo is Topology.SWITCH else 2 * B  # a bidirectional ring carries both ways
        return (p - 1) * hop + d * (p - 1) / 2 / bw
    if topo is Topology.SWITCH:  # one link per NPU: p-1 messages of d/p leave through it
        return 2 * LAT + (p - 1) * d / p / B
    if topo is Topology.FULLY_CONNECTED:  # a link to every peer: one message per link
        return LAT + d / p / B
    return (p // 2) * LAT + d / p * _ring_load(p) / B  # shortest ways, the busiest link's load


def _network(dims: list[tuple[Topology, int]]) -> Network:
    return Network(dims=[{"topology": t.value, "npus": n, "link_gbps": GBPS, "latency_ns": LAT * 1e9}
                         for t, n in dims])


def _columns(net: Network, coll: CollectiveConfig, dp: int) -> ColumnCommunicator:
    topo = np.array([[TOPOLOGY_CODE[x.topology] for x in net.dims]], dtype=np.int8)
    algos = np.array([[[ALGORITHM_CODE[a] for a in coll.algorithms(k, tuple(x.topology for x in net.dims))]
                       for k in KINDS]], dtype=np.int8)
    one = np.ones(1, dtype=np.int64)
    return ColumnCommunicator(
        topology=topo, npus=np.array([[x.npus for x in net.dims]]),
        link_bytes_per_s=np.array([[x.link_bytes_per_s * x.efficiency for x in net.dims]]),
        latency_s=np.array([[x.latency_s for x in net.dims]]), algorithms=algos, chunks=one,
        baseline=np.zeros(1, dtype=bool), degrees={"tp": one, "sp": one, "dp": one * dp, "pp": one},
        order_groups=np.array([[0, 1, 2, 3]], dtype=np.int64))


@pytest.mark.parametrize("topo", [Topology.RING, Topology.FULLY_CONNECTED, Topology.SWITCH])
@pytest.mark.parametrize("algo", list(Algorithm))
@pytest.mark.parametrize("p", [4, 8])
def test_one_dimension(topo: Topology, algo: Algorithm, p: int) -> None:
    net = _network([(topo, p)])
    coll = CollectiveConfig(chunks=1, all_to_all=algo.value)
    want = closed_form(topo, algo, p, D)
    got = Communicator(net, coll, (1, 1, p, 1), ("tp", "sp", "dp", "pp"))(A2A, D, "dp")
    assert got.total_s == pytest.approx(want, rel=1e-12)
    col = _columns(net, coll, p)(KINDS.index(A2A), np.array([D]), "dp")
    assert float(col.total_s[0]) == pytest.approx(want, rel=1e-12)


@pytest.mark.parametrize("inner", [Topology.RING, Topology.FULLY_CONNECTED, Topology.SWITCH])
@pytest.mark.parametrize("outer", [Topology.RING, Topology.FULLY_CONNECTED, Topology.SWITCH])
@pytest.mark.parametrize("algo", [Algorithm.RING, Algorithm.DIRECT])
def test_two_dimensions(inner: Topology, outer: Topology, algo: Algorithm) -> None:
    """A group over two dimensions exchanges in two phases, each moving every NPU's whole buffer over its own
    dimension (the hierarchical all-to-all): the time is the sum, and each dimension carries its own phase."""
    net = _network([(inner, 4), (outer, 8)])
    coll = CollectiveConfig(chunks=1, all_to_all=algo.value)
    got = Communicator(net, coll, (1, 1, 32, 1), ("tp", "sp", "dp", "pp"))(A2A, D, "dp")
    per_dim = (closed_form(inner, algo, 4, D), closed_form(outer, algo, 8, D))
    assert got.total_s == pytest.approx(sum(per_dim), rel=1e-12)
    assert got.per_dim_s == pytest.approx(per_dim, rel=1e-12)


def test_group_on_part_of_the_network_is_priced_on_its_dimensions_only() -> None:
    """An EP group of 8 on an 8-NPU NVLink domain pays nothing on the scale-out dimension; one of 16 pays both."""
    net = _network([(Topology.SWITCH, 8), (Topology.SWITCH, 16)])
    coll = CollectiveConfig(chunks=1)
    inside = Communicator(net, coll, (1, 1, 128, 1), ("tp", "sp", "dp", "pp"), expert=(8, 1))
    t = inside(A2A, D, "ep")
    assert t.per_dim_s[1] == 0.0 and t.total_s == pytest.approx(closed_form(Topology.SWITCH, Algorithm.DIRECT, 8, D))
    across = Communicator(net, coll, (1, 1, 128, 1), ("tp", "sp", "dp", "pp"), expert=(16, 1))
    t2 = across(A2A, D, "ep")
    assert t2.per_dim_s[1] == pytest.approx(closed_form(Topology.SWITCH, Algorithm.DIRECT, 2, D))
    assert t2.total_s > t.total_s


def test_expert_groups_fold_onto_the_stage() -> None:
    """EP x ETP x expert DP = TP x SP x DP: the groups' sizes multiply to the stage's ranks, ETP innermost."""
    net = _network([(Topology.SWITCH, 8), (Topology.SWITCH, 32)])
    comm = Communicator(net, CollectiveConfig(), (2, 1, 64, 2), ("tp", "sp", "dp", "pp"), expert=(16, 2))
    size = {g: int(np.prod(comm.members[g])) for g in ("etp", "ep", "edp", "eptp")}
    assert size == {"etp": 2, "ep": 16, "edp": 4, "eptp": 32}
    assert comm.strides["etp"][0] == 1 and comm.strides["ep"][0] == 2
