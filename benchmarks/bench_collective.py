"""Time per `cosmic collective --fidelity astra-sim` call against the NPU count; prints JSON.

Two figures per case: ``core_us`` is the timing model alone (`simulate_collective`), ``call_us`` is the whole
in-process command (reading network.yml and system.json, checks, JSON record). Python start-up and imports of the
`cosmic` console script (a few hundred ms, independent of the case) are measured once as ``process_ms``.

    .venv/bin/python benchmarks/bench_collective.py [--repeat N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cosmic.collective.algorithms import Algorithm, Collective
from cosmic.collective.astra import AstraDim, AstraParams, simulate_collective
from cosmic.collective.astra_io import ASTRA_NAMES
from cosmic.collective.model import MultiDim
from cosmic.commands.collective import run_collective

SIZE = 64 * 2**20
SPLITS = 16
ACTIVE = 2

# (label, [(topology, npus)], algorithm per dim)
CASES: list[tuple[str, list[tuple[str, int]], list[Algorithm]]] = []
for n in (8, 64, 512, 4096):
    CASES.append((f"Ring({n}) ring", [("Ring", n)], [Algorithm.RING]))
    CASES.append((f"FullyConnected({n}) direct", [("FullyConnected", n)], [Algorithm.DIRECT]))
    CASES.append((f"Switch({n}) halvingDoubling", [("Switch", n)], [Algorithm.HALVING_DOUBLING]))
    CASES.append((f"Switch({n}) doubleBinaryTree", [("Switch", n)], [Algorithm.DOUBLE_BINARY_TREE]))
for shape in ((2, 2, 2), (4, 4, 4), (8, 8, 8), (16, 16, 16)):
    CASES.append(
        (
            "Ring x FC x Switch " + "x".join(map(str, shape)),
            list(zip(("Ring", "FullyConnected", "Switch"), shape, strict=True)),
            [Algorithm.RING, Algorithm.DIRECT, Algorithm.HALVING_DOUBLING],
        )
    )


def _files(folder: Path, dims: list[tuple[str, int]], algos: list[Algorithm]) -> tuple[Path, Path]:
    net = folder / "network.yml"
    net.write_text(
        f"topology: [ {', '.join(t for t, _ in dims)} ]\n"
        f"npus_count: [ {', '.join(str(n) for _, n in dims)} ]\n"
        f"bandwidth: [ {', '.join('50.0' for _ in dims)} ]\n"
        f"latency: [ {', '.join('500.0' for _ in dims)} ]\n"
    )
    names = [ASTRA_NAMES[a] for a in algos]
    a2a = [ASTRA_NAMES[Algorithm.DIRECT] if a is Algorithm.HALVING_DOUBLING else ASTRA_NAMES[a] for a in algos]
    system = {
        "scheduling-policy": "LIFO",
        "endpoint-delay": 10,
        "active-chunks-per-dimension": ACTIVE,
        "preferred-dataset-splits": SPLITS,
        "collective-optimization": "localBWAware",
        "local-mem-bw": 1600,
        "all-reduce-implementation": names,
        "all-gather-implementation": names,
        "reduce-scatter-implementation": names,
        "all-to-all-implementation": a2a,
    }
    sysf = folder / "system.json"
    sysf.write_text(json.dumps(system))
    return net, sysf


def _median_us(fn, repeat: int) -> float:
    fn()  # warm caches (tree shapes) as a long-running process would
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1e6)
    return statistics.median(samples)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=20)
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for label, dims, algos in CASES:
            net, sysf = _files(folder, dims, algos)
            adims = tuple(AstraDim.from_gib(t, n, 50.0, 500.0, i) for i, (t, n) in enumerate(dims))
            params = AstraParams(SPLITS, ACTIVE, 10, 1600.0, MultiDim.LOCAL_BW_AWARE)
            npus = 1
            for _, n in dims:
                npus *= n
            kind = Collective.ALL_REDUCE
            res = simulate_collective(kind, SIZE, adims, tuple(algos), params)
            rows.append(
                {
                    "case": label,
                    "collective": "all-reduce",
                    "npus": npus,
                    "time_ns": res.time_ns,
                    "core_us": round(_median_us(
                        lambda kind=kind, adims=adims, algos=algos, params=params:
                            simulate_collective(kind, SIZE, adims, tuple(algos), params),
                        args.repeat), 1),
                    "call_us": round(_median_us(
                        lambda kind=kind, net=net, sysf=sysf: run_collective(kind, SIZE, net, sysf),
                        args.repeat), 1),
                }
            )
        net, sysf = _files(folder, [("Switch", 4096)], [Algorithm.HALVING_DOUBLING])
        cmd = [sys.executable, "-m", "cosmic.cli", "collective", "all-reduce", "--size", str(SIZE),
               "--network", str(net), "--system", str(sysf), "--json"]
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        process_ms = (time.perf_counter() - t0) * 1e3
    print(json.dumps({"size_bytes": SIZE, "splits": SPLITS, "active_chunks": ACTIVE, "repeat": args.repeat,
                      "process_ms": round(process_ms, 1), "cases": rows}, indent=2))


if __name__ == "__main__":
    main()
