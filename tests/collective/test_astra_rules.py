"""astra-sim fidelity against the timing rules of ``reference/astra-sim-timing.md``.

Expected values are re-derived here from the reference's formulas (notation: N(m, h) = floor(h*lat + m/B),
B = bw * 2^30 / 1e9 bytes per ns, R(m) = 3*floor(m / local_mem_bw), E = endpoint delay), written out per algorithm,
plus a few values worked by hand.
"""

from __future__ import annotations

import math

import pytest

from cosmic.collective.algorithms import Algorithm, Collective
from cosmic.collective.astra import AstraDim, AstraParams, chunking, phase_time_ns, simulate_collective
from cosmic.collective.model import MultiDim
from cosmic.errors import ConfigError
from cosmic.network.topology import Topology

AR, AG, RS, A2A = Collective.ALL_REDUCE, Collective.ALL_GATHER, Collective.REDUCE_SCATTER, Collective.ALL_TO_ALL
RING, DIRECT, HD, DBT = Algorithm.RING, Algorithm.DIRECT, Algorithm.HALVING_DOUBLING, Algorithm.DOUBLE_BINARY_TREE
TOPOS = (Topology.RING, Topology.FULLY_CONNECTED, Topology.SWITCH)
E = 10
LMBW = 1600.0


def dim(topo: Topology, p: int, bw: float = 50.0, lat: float = 500.0, index: int = 0) -> AstraDim:
    return AstraDim.from_gib(topo, p, bw, lat, index)


def N(m: int, h: int, bw: float = 50.0, lat: float = 500.0) -> int:
    return math.floor(h * lat + m / (bw * 2**30 / 1e9))


def R(m: int) -> int:
    return 3 * math.floor(m / LMBW)


def hops(topo: Topology, p: int, offset: int) -> int:
    if topo is Topology.SWITCH:
        return 2
    if topo is Topology.FULLY_CONNECTED:
        return 1
    return min(offset % p, p - offset % p)


def params(**kw) -> AstraParams:
    base = {"splits": 1, "active_chunks": 1, "endpoint_delay_ns": E, "local_mem_bw_gbps": LMBW}
    base.update(kw)
    return AstraParams(**base)


# ---- reference formulas, one per algorithm ------------------------------------------------------------------------


def ref_ring(kind: Collective, topo: Topology, p: int, d: int, bw: float = 50.0, lat: float = 500.0) -> int:
    def N(m: int, h: int) -> int:
        return globals()["N"](m, h, bw, lat)

    h = 2 if topo is Topology.SWITCH else 1
    m = d // p
    if kind is AR:
        return E + 2 * (p - 1) * (N(m, h) + E) + (p - 1) * R(m)
    if kind is RS:
        return E + (p - 1) * (N(m, h) + E + R(m))
    if kind is AG:
        return E + (p - 1) * (N(d, h) + E)
    return E + p * (p - 1) // 2 * (N(m, h) + E)


def ref_direct(kind: Collective, topo: Topology, p: int, d: int, bw: float = 50.0, lat: float = 500.0) -> int:
    def n_(m: int, h: int) -> int:
        return N(m, h, bw, lat)

    nmax = lambda m: max(n_(m, hops(topo, p, j)) for j in range(1, p))  # noqa: E731
    if kind is RS:
        return 2 * E + nmax(d // p) + R(d // p)
    if kind is AG:
        return 2 * E + nmax(d)
    if kind is A2A:
        return 2 * E + nmax(d // p)
    m = d // p
    a = [E + n_(m, hops(topo, p, j)) for j in range(1, p)]
    g = sorted(x + E + R(m) for x in a)
    t2 = min(x for x in g if x >= max(a))
    return max(max(t2, g[j - 1]) + n_(m, hops(topo, p, j)) for j in range(1, p)) + E


def ref_hd(kind: Collective, topo: Topology, p: int, d: int, bw: float = 50.0, lat: float = 500.0) -> int:
    def N(m: int, h: int) -> int:
        return globals()["N"](m, h, bw, lat)

    levels = int(math.log2(p))
    t = E
    if kind is AG:
        for k in range(levels):
            t += N(d * 2**k, hops(topo, p, p // 2 >> k)) + E
        return t
    for k in range(levels):
        size = d // 2 ** (k + 1)
        t += N(size, hops(topo, p, 2**k)) + E + (R(size) if k else 0)
    if kind is AR:
        for k in reversed(range(levels)):
            t += N(d // 2 ** (k + 1), hops(topo, p, 2**k)) + E
    return t


REF = {RING: ref_ring, DIRECT: ref_direct, HD: ref_hd}


@pytest.mark.parametrize("topo", TOPOS)
@pytest.mark.parametrize(
    "kind,algo",
    # halving-doubling all-to-all is rejected by ASTRA-sim (tested below)
    [(k, a) for k in (AR, AG, RS, A2A) for a in (RING, DIRECT, HD) if not (a is HD and k is A2A)],
)
@pytest.mark.parametrize("p", [2, 4, 8, 16])
def test_one_dimension_closed_forms(topo: Topology, kind: Collective, algo: Algorithm, p: int) -> None:
    d = 3 * 2**20 + 4096
    t, _ = phase_time_ns(kind, algo, dim(topo, p), d, params())
    assert t == REF[algo](kind, topo, p, d)


def test_hand_worked_ring_all_reduce() -> None:
    # p = 4, 1 MiB, 50 GB/s (2^30), 500 ns: m = 262144, N = floor(500 + 4882.8125) = 5382, R = 3*163 = 489
    # E + 6*(N + E) + 3*R = 10 + 32352 + 1467
    r = simulate_collective(AR, 2**20, (dim(Topology.RING, 4),), (RING,), params())
    assert r.time_ns == 33829


def test_direct_all_reduce_on_fc_and_switch_is_3e_2n_r() -> None:
    d = 2**22
    for topo, h in ((Topology.FULLY_CONNECTED, 1), (Topology.SWITCH, 2)):
        t, _ = phase_time_ns(AR, DIRECT, dim(topo, 8), d, params())
        assert t == 3 * E + 2 * N(d // 8, h) + R(d // 8)


def test_direct_all_reduce_on_ring_follows_sorted_arrivals() -> None:
    # on a Ring the hop spread can move the answer away from 3E + 2N(max) + R when E + R exceeds one hop's latency
    p, d, lat = 16, 2**16, 5.0
    t, _ = phase_time_ns(AR, DIRECT, dim(Topology.RING, p, lat=lat), d, params())
    assert t == ref_direct(AR, Topology.RING, p, d, 50.0, lat)
    m = d // p
    assert t < 3 * E + 2 * N(m, p // 2, lat=lat) + R(m)


@pytest.mark.parametrize("topo,h", [(Topology.FULLY_CONNECTED, 1), (Topology.SWITCH, 2)])
@pytest.mark.parametrize("p", [2, 4, 8, 64, 1024])
def test_double_binary_tree_single_chunk(topo: Topology, h: int, p: int) -> None:
    d = 2**20
    depth = int(math.log2(p))
    n = N(d, h)
    expected = 2 * E + (2 * depth - 1) * (n + E + R(d)) + n
    r = simulate_collective(AR, d, (dim(topo, p),), (DBT,), params(), total_npus=p)
    assert r.time_ns == expected


def test_double_binary_tree_hand_worked_fc8() -> None:
    # D = 3, N = floor(500 + 2^20 / 53.687...) = 20031, R = 3*655 = 1965: 2E + 5(N+E+R) + N
    t, _ = phase_time_ns(AR, DBT, dim(Topology.FULLY_CONNECTED, 8), 2**20, params())
    assert t == 20 + 5 * (20031 + 10 + 1965) + 20031 == 130081


@pytest.mark.parametrize("topo", TOPOS)
@pytest.mark.parametrize("splits", [2, 4, 16])
def test_double_binary_tree_chunks_overlap_across_npus(topo: Topology, splits: int) -> None:
    d, p = 2**24, 16
    one = simulate_collective(AR, d // splits, (dim(topo, p),), (DBT,), params(), total_npus=p).time_ns
    many = simulate_collective(AR, d, (dim(topo, p),), (DBT,), params(splits=splits), total_npus=p).time_ns
    assert many < splits * one  # NPUs start their next chunk as soon as their own chunk ends
    # ... but no faster than the root's own serial work per chunk
    assert many >= splits * (N(d // splits, 1) + E)


def test_double_binary_tree_on_ring_is_slower_than_on_fc() -> None:
    d, p = 2**20, 16
    fc = simulate_collective(AR, d, (dim(Topology.FULLY_CONNECTED, p),), (DBT,), params()).time_ns
    ring = simulate_collective(AR, d, (dim(Topology.RING, p),), (DBT,), params()).time_ns
    assert ring > fc


def test_double_binary_tree_for_other_collectives_runs_an_all_reduce() -> None:
    dd = (dim(Topology.SWITCH, 8),)
    ag = simulate_collective(AG, 2**20, dd, (DBT,), params())
    ar = simulate_collective(AR, 2**20, dd, (DBT,), params())
    assert ag.time_ns == ar.time_ns and ag.notes


# ---- chunks and queues ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("splits", [1, 2, 3, 5, 8, 16])
@pytest.mark.parametrize("active", [1, 2, 3, 4])
@pytest.mark.parametrize("algo", [RING, DIRECT, HD])
def test_one_dimension_rounds_of_active_chunks(splits: int, active: int, algo: Algorithm) -> None:
    size = 10**7 + 7
    dd = (dim(Topology.SWITCH, 8),)
    r = simulate_collective(AR, size, dd, (algo,), params(splits=splits, active_chunks=active))
    chunk = size // splits
    n_chunks = math.ceil(size / chunk)
    assert (r.chunk_bytes, r.n_chunks) == (chunk, n_chunks)
    assert r.time_ns == math.ceil(n_chunks / active) * REF[algo](AR, Topology.SWITCH, 8, chunk)


def test_chunk_floor_is_the_npu_count_except_all_gather() -> None:
    assert chunking(AR, 1000, 16, 512) == (512, 2)
    assert chunking(AG, 1000, 16, 512) == (62, 17)
    assert chunking(RS, 2**20, 4, 8) == (2**18, 4)
    with pytest.raises(ConfigError, match="preferred-dataset-splits"):
        chunking(AR, 1000, 0, 8)


def flow_shop(times: list[int], n_chunks: int, active: int) -> int:
    """Identical chunks visiting each dimension once, `active` slots per dimension: batches of `active` chunks move
    together, so the first batch pays every phase and each further batch the slowest one."""
    return sum(times) + (math.ceil(n_chunks / active) - 1) * max(times)


SPECS = (
    (Topology.RING, 4, 200.0, 50.0),
    (Topology.FULLY_CONNECTED, 8, 100.0, 500.0),
    (Topology.SWITCH, 16, 50.0, 1000.0),
)
THREE = tuple(dim(t, p, bw, lat, i) for i, (t, p, bw, lat) in enumerate(SPECS))


@pytest.mark.parametrize("kind", [RS, AG, A2A, AR])
@pytest.mark.parametrize("n_dims", [2, 3])
@pytest.mark.parametrize("splits", [1, 4, 16])
@pytest.mark.parametrize("active", [1, 2, 4])
def test_multi_dimension_pipeline(kind: Collective, n_dims: int, splits: int, active: int) -> None:
    dims = THREE[:n_dims]
    algos = (RING, DIRECT, HD)[:n_dims]
    if kind is A2A:
        algos = (RING, DIRECT, DIRECT)[:n_dims]
    p = params(splits=splits, active_chunks=active, multidim=MultiDim.BASELINE)
    r = simulate_collective(kind, 2**26, dims, algos, p)
    # phase times from the per-dimension closed forms, sizes carried from phase to phase
    chunk = r.chunk_bytes
    order = list(range(n_dims))[::-1] if kind is AG else list(range(n_dims))
    times, d = [], chunk
    for i in order:
        topo, pp, bw, lat = SPECS[i]
        times.append(REF[algos[i]](kind, topo, pp, d, bw, lat))
        d = {RS: d // pp, AG: d * pp}.get(kind, d)
    assert [ph.time_ns for ph in r.phases] == times
    assert r.time_ns == flow_shop(times, r.n_chunks, active)


def test_local_bw_aware_phase_list_and_sizes() -> None:
    r = simulate_collective(AR, 2**26, THREE, (RING, DIRECT, HD), params(splits=4, multidim=MultiDim.LOCAL_BW_AWARE))
    assert [(ph.network_dim, ph.kind) for ph in r.phases] == [(0, RS), (1, RS), (2, AR), (1, AG), (0, AG)]
    assert [ph.bytes_in for ph in r.phases] == [2**24, 2**22, 2**19, 2**19, 2**22]
    assert r.phases[0].time_ns == ref_ring(RS, *SPECS[0][:2], 2**24, *SPECS[0][2:])
    assert r.phases[2].time_ns == ref_hd(AR, *SPECS[2][:2], 2**19, *SPECS[2][2:])
    assert r.phases[4].time_ns == ref_ring(AG, *SPECS[0][:2], 2**22, *SPECS[0][2:])


@pytest.mark.parametrize("algo1", [RING, DIRECT, HD])
@pytest.mark.parametrize("splits", [4, 8])
def test_bottleneck_dimension_sets_the_total(algo1: Algorithm, splits: int) -> None:
    """Reference example: on Ring(4) x Switch(8) an all-reduce costs chunks x (RS + AG on dim 0) whatever dim 1 runs
    (dim 0's queue, shared by RS and AG, is never idle)."""
    dims = (dim(Topology.RING, 4, 50, 500, 0), dim(Topology.SWITCH, 8, 50, 500, 1))
    r = simulate_collective(AR, 2**26, dims, (RING, algo1), params(splits=splits, multidim=MultiDim.LOCAL_BW_AWARE))
    chunk = 2**26 // splits
    rs0 = ref_ring(RS, Topology.RING, 4, chunk)
    ag0 = ref_ring(AG, Topology.RING, 4, chunk // 4)
    assert r.time_ns == splits * (rs0 + ag0)


def test_unit_dimensions_are_skipped() -> None:
    with_unit = (dim(Topology.RING, 1, index=0), dim(Topology.SWITCH, 8, index=1))
    alone = (dim(Topology.SWITCH, 8),)
    a = simulate_collective(AR, 2**20, with_unit, (HD, RING), params(splits=2))
    b = simulate_collective(AR, 2**20, alone, (RING,), params(splits=2))
    assert a.time_ns == b.time_ns and len(a.phases) == 1


def test_multi_dimension_double_binary_tree_runs_per_npu_class() -> None:
    dims = (dim(Topology.SWITCH, 8, index=0), dim(Topology.RING, 4, index=1))
    pr = params(splits=1, multidim=MultiDim.LOCAL_BW_AWARE)
    lone = simulate_collective(AR, 2**24, dims, (DBT, RING), pr)
    # the tree "reduce-scatter" is an all-reduce keeping its size
    assert [ph.bytes_in for ph in lone.phases] == [2**24, 2**24, 2**24]
    # one chunk, per NPU: tree (root p-1), then the ring among NPUs of the same tree position, then the second tree
    # phase of the dimension (ASTRA-sim alternates trees per phase created: root 0) starting when each NPU is ready
    t_ring = ref_ring(AR, Topology.RING, 4, 2**24)
    d, depth, n = 2**24, 3, N(2**24, 2)
    tree = 2 * E + (2 * depth - 1) * (n + E + R(d)) + n  # one tree phase with every NPU starting together
    assert simulate_collective(AR, d, dims[:1], (DBT,), pr, total_npus=8).time_ns == tree
    # the last NPU out of the first tree still has its ring and its part of the second tree ahead of it ...
    assert lone.time_ns > tree + t_ring + n
    # ... but NPUs that finish early start the next phase early: less than two trees run back to back
    assert lone.time_ns < 2 * tree + t_ring
    many = simulate_collective(AR, 2**24, dims, (DBT, RING), params(splits=8, active_chunks=2,
                                                                    multidim=MultiDim.LOCAL_BW_AWARE))
    assert lone.time_ns / 8 < many.time_ns < lone.time_ns  # chunks pipeline across the dimensions


# ---- invalid combinations ------------------------------------------------------------------------------------------


def test_halving_doubling_all_to_all_rejected() -> None:
    with pytest.raises(ConfigError, match=r"all-to-all-implementation.*rejects halvingDoubling"):
        simulate_collective(A2A, 2**20, (dim(Topology.SWITCH, 8),), (HD,), params())


@pytest.mark.parametrize("algo,word", [(HD, "never finishes"), (DBT, "crashes")])
def test_non_power_of_two_rejected(algo: Algorithm, word: str) -> None:
    with pytest.raises(ConfigError, match=word):
        simulate_collective(AR, 2**20, (dim(Topology.SWITCH, 6),), (algo,), params())


def test_short_implementation_list_rejected() -> None:
    with pytest.raises(ConfigError, match="all-reduce-implementation: has 1 entries"):
        simulate_collective(AR, 2**20, THREE[:2], (RING,), params())


def test_cost_does_not_grow_with_npus() -> None:
    """The work of pricing a collective grows with log(NPUs) (halving-doubling steps), not with the NPU count:
    counted as Python calls into the simulator module, so the test does not depend on the machine's speed."""
    import sys

    import cosmic.collective.astra as astra_module

    def calls(p: int) -> int:
        group = (dim(Topology.RING, p, bw=51.7, index=0), dim(Topology.SWITCH, p, bw=51.7, index=1))
        n = 0

        def count(frame, event, arg):  # type: ignore[no-untyped-def]
            nonlocal n
            if event == "call" and frame.f_code.co_filename == astra_module.__file__:
                n += 1

        sys.setprofile(count)
        try:
            r = simulate_collective(AR, 2**30, group, (RING, HD),
                                    params(splits=16, active_chunks=2, multidim=MultiDim.LOCAL_BW_AWARE))
        finally:
            sys.setprofile(None)
        assert r.time_ns > 0
        return n

    small, big = calls(4), calls(64)  # 16 NPUs and 4,096 NPUs
    assert 0 < big <= 2 * small


# ---- oneRing: one ring over every NPU ------------------------------------------------------------------------------


def _one_ring_files(tmp_path, impl: list[str], topology: list[str], npus: list[int], multidim: str = "baseline"):
    import json

    net = tmp_path / "network.yml"
    net.write_text(f"topology: {topology}\nnpus_count: {npus}\nbandwidth: [50, 25]\nlatency: [500, 700]\n"
                   .replace("'", ""))
    sysf = tmp_path / "system.json"
    lists = {f"{k}-implementation": impl for k in ("all-reduce", "all-gather", "reduce-scatter", "all-to-all")}
    sysf.write_text(json.dumps({"preferred-dataset-splits": 1, "local-mem-bw": LMBW, "endpoint-delay": E,
                                "collective-optimization": multidim, **lists}))
    return net, sysf


def test_one_ring_is_a_flat_ring_over_every_npu_on_the_innermost_link(tmp_path) -> None:
    """GeneralComplexTopology turns `oneRing` into one ring over all 8 NPUs of Ring(4) x Switch(2); consecutive ids
    differ first in dim 0 (3 -> 4 wraps dim 0's coordinate 3 -> 0: one ring hop), so every step is N(m, 1) on dim 0.
    1 MiB, one chunk: E + 14 (N(2^17, 1) + E) + 7 R(2^17) = 10 + 14 (500 + 2441 + 10) + 7 * 243 = 43025 ns."""
    from cosmic.commands.collective import run_collective

    net, sysf = _one_ring_files(tmp_path, ["oneRing", "ring"], ["Ring", "Switch"], [4, 2])
    rec = run_collective(AR, 2**20, net, sysf)
    n = N(2**17, 1)
    assert n == 500 + 2441
    assert rec["time_ns"] == E + 14 * (n + E) + 7 * R(2**17) == 43025
    assert [(ph["npus"], ph["collective"]) for ph in rec["phases"]] == [(8, "all-reduce")]
    # the same ring on a network whose dim 0 has one NPU is charged on the Switch: 2 hops at 25 GB/s and 700 ns
    net, sysf = _one_ring_files(tmp_path, ["oneRing", "ring"], ["Ring", "Switch"], [1, 8])
    n_sw = N(2**17, 2, bw=25, lat=700)
    assert run_collective(AR, 2**20, net, sysf)["time_ns"] == E + 14 * (n_sw + E) + 7 * R(2**17)


def test_one_ring_after_a_dimension_keeps_that_dimension(tmp_path) -> None:
    """[ring, oneRing] with localBWAware: the dimensions are dim 0 (its own ring) then the flat ring of all 8 NPUs,
    so the all-reduce is RS on dim 0 (d = 2^20), AR on the flat ring (d = 2^18), AG on dim 0 (d = 2^18)."""
    from cosmic.commands.collective import run_collective

    net, sysf = _one_ring_files(tmp_path, ["ring", "oneRing"], ["Ring", "Switch"], [4, 2], "localBWAware")
    rec = run_collective(AR, 2**20, net, sysf)
    rs = ref_ring(RS, Topology.RING, 4, 2**20)
    ar = E + 14 * (N(2**15, 1) + E) + 7 * R(2**15)
    ag = ref_ring(AG, Topology.RING, 4, 2**18)
    assert [(ph["npus"], ph["collective"], ph["time_ns_per_chunk"]) for ph in rec["phases"]] == [
        (4, "reduce-scatter", rs), (8, "all-reduce", ar), (4, "all-gather", ag)]
    assert rec["time_ns"] == rs + ar + ag


def test_entries_after_one_ring_are_never_run(tmp_path) -> None:
    """ASTRA-sim drops the entries after `oneRing`, so a halvingDoubling there on 6 NPUs never runs."""
    from cosmic.commands.collective import run_collective

    net, sysf = _one_ring_files(tmp_path, ["oneRing", "halvingDoubling"], ["Ring", "Switch"], [4, 6])
    assert run_collective(AR, 2**20, net, sysf)["phases"][0]["npus"] == 24
