"""Exhaustive search of a workload-stack space: GPT-3 175B on 1,024 A100s, every layout of TP, PP, DP (derived), SP,
micro-batch, schedule, recompute, ZeRO, sequence parallelism and rank order (`spaces/gpt3-175b-1024-workload.yaml`,
1,059,840 feasible points). Evaluates them all in batches on one core and returns the certified best.

Target: >= 1,000,000 configurations in < 60 s (Calculon's brute force over 1.14M points did not finish in 15 min).
Prints the measured rate, the time split (enumeration, evaluation = decode + simulate + objective, bookkeeping) and
the gap to the target.

    python benchmarks/bench_exhaustive.py [--json] [--limit N]   (--limit: stop after N points, for a quick look)
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from cosmic.explore import run_study
from cosmic.psa import load_psa

SPACE = Path(__file__).parent / "spaces" / "gpt3-175b-1024-workload.yaml"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--batch", type=int, default=65536, help="points per ask (default 65,536)")
    args = ap.parse_args()

    t0 = time.perf_counter()
    space = load_psa(SPACE)
    load_s = time.perf_counter() - t0
    budget = args.limit or space.size_feasible
    s = run_study(space, "exhaustive", budget=budget, seed=0, persist=False, batch=args.batch)
    rate = s.evaluations / s.wall_s
    res = {
        "space": space.name,
        "feasible_points": space.size_feasible,
        "evaluations": s.evaluations,
        "complete": s.complete,
        "wall_s": round(s.wall_s, 2),
        "evals_per_s": round(rate, 1),
        "psa_load_s": round(load_s, 3),
        "timings_s": s.timings_s,
        "counts": s.counts,
        "certified_best_step_time_s": s.best_objective if s.complete else None,
        "best_objective": s.best_objective,
        "best_knobs": s.best_knobs,
        "target_s": 60,
        "meets_target": s.complete and s.evaluations >= 1_000_000 and s.wall_s < 60,
        "rate_needed_for_target": round(space.size_feasible / 60, 1),
        "projected_full_s": round(space.size_feasible / rate, 1),
    }
    if args.json:
        print(json.dumps(res, indent=2))
    else:
        for k, v in res.items():
            print(f"{k}: {v}")


if __name__ == "__main__":
    main()
