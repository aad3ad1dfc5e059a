"""Simulator throughput: evaluations per second on distinct full-stack configurations, one core.

Builds N distinct configurations of COSMIC's S1 GPT-3 175B case by varying every stack (parallel degrees, ZeRO,
scheduling, chunks, per-dimension algorithms, multi-dimensional strategy, per-dimension topology, NPU counts and
bandwidths), clears every cache, and times `cosmic.simulate` over them. Then repeats on a 131,072-NPU system
(the same knobs on a 4-D network 16 x 16 x 16 x 32) to show the cost does not grow with NPU count.

    python benchmarks/bench_simulate.py [--json] [-n 10000]
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import time

import cosmic
from cosmic.sim import engine
from cosmic.collective.algorithms import Algorithm
from cosmic.collective.model import MultiDim
from cosmic.network.topology import Network, NetworkDim, Topology
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


def run(configs: list, *, batch: bool = True) -> dict:
    """Time one pass over `configs` with every cache cleared first (batch API, or one simulate() at a time)."""
    engine.clear_caches()
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=10_000)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    base = cosmic.load_config("examples/cosmic-s1-gpt3-175b.yaml")
    s1_configs = make_configs(base, args.n, [4, 8, 16])
    s1 = run(s1_configs)
    s1_single = run(s1_configs, batch=False)
    big_net = base.network.model_copy(
        update={"dims": [d.model_copy(update={"npus": k}) for d, k in zip(base.network.dims, (16, 16, 16, 32))]}
    )
    big = base.model_copy(update={"network": big_net, "parallel": base.parallel.model_copy(update={"dp": 1024})})
    big = cosmic.config_from_dict(big.to_yaml_dict())
    s_big = run(make_configs(big, args.n, [8, 16, 32, 64]))
    res = {
        "evals_per_s": s1["evals_per_s"],
        "configs": s1["configs"],
        "s1_gpt3_175b_1024": s1,
        "s1_gpt3_175b_1024_one_call_at_a_time": s1_single,
        "npus_131072": s_big,
        "slowdown_131072_vs_1024": s1["evals_per_s"] / s_big["evals_per_s"],
    }
    if args.json:
        print(json.dumps(res, indent=2))
    else:
        for k, v in res.items():
            print(k, v)


if __name__ == "__main__":
    main()
