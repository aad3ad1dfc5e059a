"""Column decode speed: ``Space.decode_columns`` on 100,000 sampled points of a space, one call, one core.

Target: >= 1,000,000 points/s (the exhaustive search of the 1,059,840-point workload space must fit in 3 s with the
simulation). Prints JSON: the rate per space (best of --repeat runs, caches warm) and ``points_per_s``, the slowest
of them; ``scalar_points_per_s`` is ``Space.decode`` one point at a time, for comparison.

    python benchmarks/bench_decode.py [--points N] [--repeat R]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from cosmic.psa import load_psa

SPACES = ("cosmic-s1-gpt3-175b-full", str(Path(__file__).parent / "spaces" / "gpt3-175b-1024-workload.yaml"))
TARGET = 1_000_000


def rate(space_name: str, n: int, repeat: int) -> dict[str, float]:
    space = load_psa(space_name)
    points = space.sample(np.random.default_rng(0), n)
    space.decode_columns(points[:16])  # the coordinate value tables are built once per space
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        _, ok = space.decode_columns(points)
        best = min(best, time.perf_counter() - t)
        assert ok.all()
    m = min(n, 5_000)
    t = time.perf_counter()
    for p in points[:m]:
        space.decode(p)
    scalar = m / (time.perf_counter() - t)
    return {"points_per_s": n / best, "scalar_points_per_s": scalar}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    per = {load_psa(s).name: rate(s, args.points, args.repeat) for s in SPACES}
    slowest = min(r["points_per_s"] for r in per.values())
    print(json.dumps({"points": args.points, "points_per_s": round(slowest), "target": TARGET,
                      "meets_target": slowest >= TARGET,
                      "spaces": {k: {x: round(y) for x, y in v.items()} for k, v in per.items()}}, indent=2))


if __name__ == "__main__":
    main()
