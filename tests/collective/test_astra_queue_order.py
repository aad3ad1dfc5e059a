"""astra-sim fidelity: each dimension's queue serves the chunks of one collective first come, first served.

The rule (ASTRA-sim ``system/Sys.cc``): ``generate_collective`` gives every chunk of a collective the same priority
(``get_priority`` is called once per collective), and ``insert_stream`` puts a stream that joins a queue behind every
running stream and every waiting stream of equal or higher priority. So a chunk that comes back to dimension 0 for its
all-gather waits behind the chunks still queued there for their reduce-scatter, although it was created first.

Every expected value below is derived by hand from the per-phase closed forms of ``reference/astra-sim-timing.md``
(N(m, h) = floor(h*lat + m/B), B = bw * 2^30 / 1e9 B/ns, R(m) = 3*floor(m / 1600), E = 10) and this queue rule.
"""

from __future__ import annotations

import math

from cosmic.collective.algorithms import Algorithm, Collective
from cosmic.collective.astra import AstraDim, AstraParams, simulate_collective
from cosmic.collective.astra_queues import run_classes, run_streams
from cosmic.collective.model import MultiDim
from cosmic.network.topology import Topology

AR, RS, AG = Collective.ALL_REDUCE, Collective.REDUCE_SCATTER, Collective.ALL_GATHER
RING = Algorithm.RING
E = 10


def N(m: int, h: int, bw: float, lat: float) -> int:
    return math.floor(h * lat + m / (bw * 2**30 / 1e9))


def R(m: int) -> int:
    return 3 * math.floor(m / 1600)


def params(splits: int, active: int = 1) -> AstraParams:
    return AstraParams(splits=splits, active_chunks=active, endpoint_delay_ns=E, local_mem_bw_gbps=1600.0,
                       multidim=MultiDim.LOCAL_BW_AWARE)


# FullyConnected(8) at 400 GB/s and 1000 ns x Switch(8) at 50 GB/s and 50 ns: the 2-D shape of issue 17's case (b)
FC8 = AstraDim.from_gib(Topology.FULLY_CONNECTED, 8, 400, 1000, 0)
SW8 = AstraDim.from_gib(Topology.SWITCH, 8, 50, 50, 1)


def test_returning_chunk_waits_behind_queued_reduce_scatters() -> None:
    """64 MiB all-reduce, 4 chunks of 16 MiB, one slot per queue, ring on both dimensions.

    Phase times (ring closed forms; FullyConnected 1 hop, Switch 2 hops):
      a = RS on dim 0, d = 2^24, m = 2^21: N = floor(1000 + 2^21/429.4967296) = 5882, R(2^21) = 3930,
          a = E + 7 (N + E + R) = 10 + 7 * 9822 = 68764
      b = AR on dim 1, d = 2^21, m = 2^18: N = floor(2*50 + 2^18/53.687091) = 4982, R(2^18) = 489,
          b = E + 14 (N + E) + 7 R = 10 + 69888 + 3423 = 73321
      c = AG on dim 0, d = 2^21 (each message the full d): c = E + 7 (5882 + E) = 41254
    Timeline (queue 0 holds RS and AG, first come first served; s0..s3 queued on dim 0 at t = 0):
          0  s0 RS                         68764  s1 RS, s0 AR
     137528  s2 RS (s1 waits for dim 1)   142085  s0 back on dim 0: queued behind s3; s1 AR
     206292  s3 RS                         215406  s1 queued behind s0; s2 AR
     275056  s0 AG                         288727  s2 queued; s3 AR
     316310  s0 done, s1 AG                357564  s1 done, s2 AG
     362048  s3 queued                     398818  s2 done, s3 AG
     440072  s3 done
    Dimension 0 never idles, so the total is 4 (a + c) = 440072 ns. (Serving by creation order instead would let
    s0's all-gather overtake s3's reduce-scatter at 206292 and leave dimension 0 idle later: 513,393 ns.)
    """
    r = simulate_collective(AR, 2**26, (FC8, SW8), (RING, RING), params(splits=4))
    a = E + 7 * (N(2**21, 1, 400, 1000) + E + R(2**21))
    b = E + 14 * (N(2**18, 2, 50, 50) + E) + 7 * R(2**18)
    c = E + 7 * (N(2**21, 1, 400, 1000) + E)
    assert (a, b, c) == (68764, 73321, 41254)
    assert [(ph.kind, ph.time_ns) for ph in r.phases] == [(RS, a), (AR, b), (AG, c)]
    assert r.n_chunks == 4
    assert r.time_ns == 4 * (a + c) == 440072


def test_short_last_dimension_three_chunks() -> None:
    """FullyConnected(8) at 50 GB/s, 500 ns x Switch(2) at 400 GB/s, 100 ns; 3 chunks of 2 MiB, one slot.

    a = RS dim 0 (m = 2^18): E + 7 (N(2^18, 1) + E + R(2^18)) = 10 + 7 (5382 + 10 + 489) = 41177
    b = AR dim 1 on 2^18 (m = 2^17, 2 hops): E + 2 (N + E) + R(2^17) = 10 + 2 (505 + 10) + 243 = 1283
    c = AG dim 0 on 2^18: E + 7 (N(2^18, 1) + E) = 10 + 7 * 5392 = 37754
    s0 RS [0, a], s1 RS [a, 2a], s0 AR [a, a + b] and back on dim 0 at a + b < 2a, behind s2 (queued since 0):
    s2 RS [2a, 3a], then s0 AG [3a, 3a + c], s1 AG, s2 AG (both back long before): total 3a + 3c = 236793.
    """
    fc = AstraDim.from_gib(Topology.FULLY_CONNECTED, 8, 50, 500, 0)
    sw = AstraDim.from_gib(Topology.SWITCH, 2, 400, 100, 1)
    r = simulate_collective(AR, 3 * 2**21, (fc, sw), (RING, RING), params(splits=3))
    a = E + 7 * (N(2**18, 1, 50, 500) + E + R(2**18))
    b = E + 2 * (N(2**17, 2, 400, 100) + E) + R(2**17)
    c = E + 7 * (N(2**18, 1, 50, 500) + E)
    assert (a, b, c) == (41177, 1283, 37754)
    assert [ph.time_ns for ph in r.phases] == [a, b, c]
    assert r.time_ns == 3 * a + 3 * c == 236793


def test_class_simulation_follows_the_same_queue_rule() -> None:
    """The per-NPU-class simulator (used when tree phases make NPUs drift apart) with no tree phase is one class
    and must give the same timeline as the plain stream simulator."""
    for splits, active in ((4, 1), (16, 2), (64, 4)):
        r = simulate_collective(AR, 2**26, (FC8, SW8), (RING, RING), params(splits, active))
        assert run_classes(r.phases, (FC8, SW8), r.n_chunks, params(splits, active)) == r.time_ns
        assert run_streams(r.phases, r.n_chunks, active, 2) == r.time_ns


def test_busiest_queue_bounds_the_total() -> None:
    """Whatever the order, the total is at least the busiest queue's work divided by its slots, and at most every
    phase of every chunk run back to back."""
    for splits, active in ((2, 1), (8, 1), (8, 2), (32, 4)):
        r = simulate_collective(AR, 2**26, (FC8, SW8), (RING, RING), params(splits, active))
        per_queue = [0, 0]
        for ph in r.phases:
            per_queue[ph.position] += ph.time_ns
        assert r.time_ns >= max(r.n_chunks * w / active for w in per_queue)
        assert r.time_ns <= r.n_chunks * sum(per_queue)


def test_tree_dimension_timeline_per_npu_class() -> None:
    """Ring(2) x Switch(2), 100 GB/s and 500 ns both, ring on dim 0 and doubleBinaryTree on dim 1, localBWAware,
    4 chunks of 1 MiB, one slot: the shape of issue 17's case (a), small enough to follow every NPU.

    d = 2^20 enters; every message is 2^19 B (4882.8125 ns on the wire): N(2^19, 1) = 5382 on the Ring,
    n = N(2^19, 2) = 5882 on the Switch; R(2^19) = 3 * 327 = 981.
      a = RS dim 0 = E + (5382 + E + 981) = 6383;  c = AG dim 0 = E + (5382 + E) = 5402
      tree of two NPUs (a root and one leaf): the root is done max(leaf start + E + n, root start) + E + R,
      the leaf n + E after that. Chunks 0 and 2 use the tree rooted at coordinate 1 (c1), chunks 1 and 3 at c0.
    Per class (c0, c1 = coordinate on dim 1); each has its own two queues, first come first served:
          0  s0 RS both              6383  s1 RS; s0 tree (root c1 done 13266, leaf c0 done 19158)
      12766  s2 RS; s1 waits dim 1  13266  c1: s0 back on dim 0 behind s3; s1 tree, c1 is its leaf (sends 13276)
      19149  s3 RS both (in c1 ahead of s0, queued since 0)
      19158  c0: s0 waits dim 0; s1 root: leaf data there at 19158, done 20149 (c1 leaf done 26041)
      20149  c0: s1 waits; s2 tree, c0 leaf sends 20159, data at c1 26041
      25532  s3 -> dim 1 waits; s0 AG both [25532, 30934]
      26041  c1: s2 root done 27032 (c0 leaf done 32924)   27032  c1: s3 tree, c1 leaf sends 27042, data at c0 32924
      30934  s1 AG both [30934, 36336]                     32924  c0: s3 root done 33915 (c1 leaf done 39807)
      36336  s2 AG both [36336, 41738]                     41738  s3 AG both, done 47140
    Serving by creation order (s0's all-gather before s3's reduce-scatter at 19149 in c1) gives 49111 ns.
    """
    ring2 = AstraDim.from_gib(Topology.RING, 2, 100, 500, 0)
    sw2 = AstraDim.from_gib(Topology.SWITCH, 2, 100, 500, 1)
    r = simulate_collective(AR, 4 * 2**20, (ring2, sw2), (RING, Algorithm.DOUBLE_BINARY_TREE), params(splits=4))
    n, rr = N(2**19, 2, 100, 500), R(2**19)
    a = E + (N(2**19, 1, 100, 500) + E + rr)
    c = E + (N(2**19, 1, 100, 500) + E)
    assert (a, c, n, rr) == (6383, 5402, 5882, 981)
    # a lone tree phase: root done 2E + n + R after a common start, leaf n + E later
    assert r.phases[1].time_ns == (2 * E + n + rr) + n + E == 12775
    # the last step of the timeline: s3's all-gather starts when s2's ends, 3 all-gathers after s0's began
    s0_ag = 4 * a  # dimension 0 is busy with the four reduce-scatters until 25532
    assert s0_ag == 25532
    assert r.time_ns == s0_ag + 4 * c == 47140
