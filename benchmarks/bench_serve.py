"""Serving simulation speed: 10,000 requests of the example deployment (Llama 3.1 70B on 8x H100, two TP-4
replicas, chunked prefill, Poisson arrivals), simulated request by request.

Target: <= 5 s on one core. Prints the requests, the wall time, the iterations' share that ran as vectorised
decode runs, and the simulated throughput (so that a change in speed is not a change in what is simulated).

    taskset -c 0 python benchmarks/bench_serve.py [--json] [-n 10000] [--config FILE]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from cosmic.caches import clear_caches
from cosmic.serving import load_serving_config, serve

CONFIG = Path(__file__).resolve().parents[1] / "examples" / "serving" / "llama3-70b-8xh100.yaml"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=10_000)
    ap.add_argument("--config", type=Path, default=CONFIG)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    cfg = load_serving_config(args.config)
    w = cfg.serving.workload.model_copy(update={"requests": args.n})
    cfg = cfg.model_copy(update={"serving": cfg.serving.model_copy(update={"workload": w})})
    clear_caches()
    t0 = time.perf_counter()
    r = serve(cfg)
    wall = time.perf_counter() - t0
    out = {"requests": r.requests, "completed": r.completed, "wall_s": round(wall, 3),
           "requests_per_wall_s": round(r.requests / wall), "simulated_span_s": round(r.duration_s, 2),
           "output_tokens_per_s": round(r.output_tokens_per_s, 1), "ttft_p99_s": round(r.latency["ttft_p99_s"], 4),
           "target_wall_s": 5.0, "meets_target": wall <= 5.0, "config": str(args.config)}
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        for k, v in out.items():
            print(f"{k:>22}: {v}")


if __name__ == "__main__":
    main()
