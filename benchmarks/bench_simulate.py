"""Simulator throughput: evaluations per second on distinct full-stack configurations, one core.

* ``batch``: the batch path from a PSA's integer points: 100,000 distinct points of COSMIC's S1 GPT-3 175B
  full-stack space (every stack varies) through ``Space.decode_columns`` and ``simulate_columns`` in batches of
  16,384, caches cleared, objects made only for nothing (no Result is materialised).
* ``scalar``: ``cosmic.simulate`` one call at a time on N distinct pydantic configurations of the same case
  (parallel degrees, ZeRO, scheduling, chunks, per-dimension algorithms, strategy, topology, NPU counts and
  bandwidths all vary), caches cleared; ``simulate_many`` the same through the batch-of-configs API.
* ``moe_scalar`` and ``moe_batch_configs``: ``cosmic.simulate`` one call at a time and ``simulate_columns`` on N
  distinct configurations of Qwen3-30B-A3B (128 experts) on 256 H100 (NVLink 8 x InfiniBand 32): parallel
  degrees, EP, ETP, the dispatcher, dispatch overlap, all-to-all algorithms and bandwidths vary.
* ``batch_configs`` and ``npus_131072``: ``simulate_columns`` on the columns of those N configurations, and of N
  configurations of a 131,072-NPU system (the same knobs on a 4-D network 16 x 16 x 16 x 32): the cost does not
  grow with the NPU count.

Times are CPU seconds of this single-threaded process (run it under ``taskset -c 0``). Each cold pass starts after
a full garbage collection, so that a collection of the objects earlier passes left behind (which lands wherever
the allocation counters happen to trigger it) is not charged to it.

    python benchmarks/bench_simulate.py [--json] [-n 10000] [--points 100000]
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import random
import time

import numpy as np

import cosmic
from cosmic.caches import clear_caches
from cosmic.collective.algorithms import Algorithm
from cosmic.collective.model import MultiDim
from cosmic.network.topology import Network, NetworkDim, Topology
from cosmic.psa import load_psa
from cosmic.sim.batch import simulate_columns
from cosmic.sim.columns import StepColumns
from cosmic.sim.config import CollectiveConfig, ParallelConfig, Scheduling

POW2 = [1 << i for i in range(11)]


def _dim_tuples(n_npus: int, choices: list[int], n_dims: int) -> list[tuple[int, ...]]:
    return [t for t in itertools.product(choices, repeat=n_dims) if _prod(t) == n_npus]


def _prod(t: tuple[int, ...]) -> int:
    p = 1
    for x in t:
        p *= x
    return p


def make_configs(base: cosmic.SystemConfig, n: int, dim_choices: list[int], seed: int = 0) -> list:
    rng = random.Random(seed)
    n_npus = base.n_npus
    heads = base.model.heads
    tuples = _dim_tuples(n_npus, dim_choices, len(base.network.dims))
    lat = [d.latency_ns for d in base.network.dims]
    seen: set = set()
    out = []
    while len(out) < n:
        dims_n = rng.choice(tuples)
        topo = [rng.choice([Topology.RING, Topology.SWITCH, Topology.FULLY_CONNECTED]) for _ in dims_n]
        if topo[0] is Topology.SWITCH:
            topo[0] = Topology.RING
        bw = [rng.choice(range(50, 501, 50)) for _ in dims_n]
        dp = rng.choice(POW2)
        sp = rng.choice(POW2)
        pp = rng.choice([1, 2, 4])
        if dp * sp * pp > n_npus or n_npus % (dp * sp * pp):
            continue
        tp = n_npus // (dp * sp * pp)
        if heads % tp or base.seq_len % sp or base.training.global_batch % dp:
            continue
        algos = [rng.choice(list(Algorithm)) for _ in dims_n]
        key = (dims_n, tuple(topo), tuple(bw), dp, sp, pp, tuple(algos))
        if key in seen:
            continue
        seen.add(key)
        links = {Topology.RING: 2, Topology.SWITCH: 1}
        net = Network(
            dims=[
                NetworkDim(
                    topology=t,
                    npus=k,
                    link_gibps=b / links.get(t, k - 1),
                    latency_ns=lat[i],
                )
                for i, (t, k, b) in enumerate(zip(topo, dims_n, bw, strict=True))
            ]
        )
        coll = CollectiveConfig(
            all_reduce=algos,
            chunks=rng.choice([2, 4, 8, 16]),
            scheduling=rng.choice(list(Scheduling)),
            multidim=rng.choice(list(MultiDim)),
        )
        par = ParallelConfig(dp=dp, tp=tp, pp=pp, sp=sp, zero=rng.choice([0, 3]), rank_order=base.parallel.rank_order)
        out.append(base.model_copy(update={"network": net, "collective": coll, "parallel": par}))
    return out


def make_moe_configs(n: int, seed: int = 0) -> list:
    """N distinct MoE configurations (see the module docstring)."""
    rng = random.Random(seed)
    seen: set = set()
    out = []
    while len(out) < n:
        tp, pp = rng.choice([1, 2, 4]), rng.choice([1, 2, 4])
        dp = 256 // (tp * pp)
        ep = rng.choice([e for e in (1, 2, 4, 8, 16, 32, 64, 128) if (tp * dp) % e == 0])
        etp = rng.choice([e for e in (1, tp) if (tp * dp) % (ep * e) == 0])
        bw = (rng.choice(range(150, 451, 50)), rng.choice(range(25, 101, 25)))
        a2a = [rng.choice(["ring", "direct"]) for _ in bw]
        disp, overlap = rng.choice(["alltoall", "allgather"]), rng.random() < 0.5
        key = (tp, pp, ep, etp, bw, tuple(a2a), disp, overlap)
        if key in seen:
            continue
        seen.add(key)
        out.append(cosmic.config_from_dict({
            "model": "qwen3-30b-a3b", "accelerator": "h100-sxm",
            "network": {"dims": [{"topology": "Switch", "npus": 8, "link_gbps": bw[0], "latency_ns": 500},
                                 {"topology": "Switch", "npus": 32, "link_gbps": bw[1], "latency_ns": 3000}]},
            "collective": {"all_to_all": a2a},
            "parallel": {"tp": tp, "pp": pp, "dp": dp, "ep": ep, "etp": etp, "sequence_parallel": tp > 1,
                         "zero": 1, "moe_dispatcher": disp},
            "training": {"global_batch": 1024, "moe_overlap": overlap, "moe_imbalance": 1.1},
        }))
    return out


def run(configs: list, *, batch: bool = True) -> dict:
    """Time one pass over `configs` with every cache cleared first (batch API, or one simulate() at a time)."""
    clear_caches()
    t0 = time.perf_counter()
    c0 = time.process_time()
    if batch:
        results = cosmic.simulate_many(configs)
    else:
        results = []
        for c in configs:
            try:
                results.append(cosmic.simulate(c))
            except cosmic.InfeasibleError as exc:
                results.append(exc)
    wall = time.perf_counter() - t0
    cpu = time.process_time() - c0
    infeasible = sum(isinstance(r, Exception) for r in results)
    ok = len(results) - infeasible
    # CPU time of this (single-threaded) process: the one-core figure, robust to other load on the machine
    return {"configs": len(configs), "simulated": ok, "infeasible": infeasible, "wall_s": wall, "cpu_s": cpu,
            "evals_per_s": len(configs) / cpu, "evals_per_s_wall": len(configs) / wall,
            "us_per_eval": cpu / len(configs) * 1e6}


def run_points(preset: str, n_points: int, chunk: int = 16_384, seed: int = 0) -> dict:
    """decode_columns + simulate_columns over `n_points` distinct points of `preset`, caches cleared."""
    space = load_psa(preset)
    rng = np.random.default_rng(seed)
    pts = np.unique(space.sample(rng, int(n_points * 1.2)), axis=0)
    pts = pts[rng.permutation(len(pts))][:n_points]
    clear_caches()
    c0 = time.process_time()
    ok = 0
    for a in range(0, len(pts), chunk):
        cols, decoded = space.decode_columns(pts[a:a + chunk])
        b = simulate_columns(cols)
        ok += int((decoded & b.ok).sum())
    cpu = time.process_time() - c0
    return {"preset": preset, "points": len(pts), "priced_in_batch": ok, "cpu_s": cpu,
            "evals_per_s": len(pts) / cpu, "us_per_eval": cpu / len(pts) * 1e6, "chunk": chunk}


def run_columns(configs: list) -> dict:
    """simulate_columns on the columns of `configs` (built before timing): once with every cache cleared (the
    tables of layer shards and group structures fill as they go), then again with them filled."""
    cols = StepColumns.from_configs(configs)
    clear_caches()
    gc.collect()  # a full collection of what earlier passes left is not this pass's cost
    c0 = time.process_time()
    b = simulate_columns(cols)
    cpu = time.process_time() - c0
    c0 = time.process_time()
    simulate_columns(cols)
    warm = time.process_time() - c0
    return {"configs": len(configs), "priced_in_batch": int(b.ok.sum()), "cpu_s": cpu,
            "evals_per_s": len(configs) / cpu, "us_per_eval": cpu / len(configs) * 1e6,
            "warm_cpu_s": warm, "warm_evals_per_s": len(configs) / warm}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=10_000)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--points", type=int, default=100_000, help="PSA points for the batch figure")
    args = ap.parse_args()

    base = cosmic.load_config("examples/cosmic-s1-gpt3-175b.yaml")
    s1_configs = make_configs(base, args.n, [4, 8, 16])
    batch = run_points("cosmic-s1-gpt3-175b-full", args.points)
    s1 = run(s1_configs)
    s1_single = run(s1_configs, batch=False)
    s1_cols = run_columns(s1_configs)
    big_npus = (16, 16, 16, 32)  # one per dimension of the example's network: zip refuses a mismatch
    big_net = base.network.model_copy(
        update={"dims": [d.model_copy(update={"npus": k}) for d, k in zip(base.network.dims, big_npus, strict=True)]}
    )
    big = base.model_copy(update={"network": big_net, "parallel": base.parallel.model_copy(update={"dp": 1024})})
    big = cosmic.config_from_dict(big.to_yaml_dict())
    big_cols = run_columns(make_configs(big, args.n, [8, 16, 32, 64]))
    moe_configs = make_moe_configs(min(args.n, 2_000))
    moe_single = run(moe_configs, batch=False)
    moe_cols = run_columns(moe_configs)
    res = {
        "batch": batch,
        "scalar": s1_single,
        "simulate_many": s1,
        "batch_configs": s1_cols,
        "npus_131072": big_cols,
        "moe_scalar": moe_single,
        "moe_batch_configs": moe_cols,
        "slowdown_131072_vs_1024": s1_cols["evals_per_s"] / big_cols["evals_per_s"],
        "slowdown_131072_vs_1024_warm": s1_cols["warm_evals_per_s"] / big_cols["warm_evals_per_s"],
        "targets": {"batch_evals_per_s": 200_000, "scalar_evals_per_s": 20_000, "slowdown_131072_max": 1.2},
    }
    if args.json:
        print(json.dumps(res, indent=2))
    else:
        for k, v in res.items():
            print(k, v)


if __name__ == "__main__":
    main()
