"""cosmic side by side with llm-analysis 0.2.2 on the same core: GPT-3 175B on 1,024 A100s, distinct TP/PP/micro-batch/
recompute layouts.

llm-analysis (https://github.com/cli99/llm-analysis) models one training step analytically, with far less than
cosmic does (no network topology, no collective algorithms, no pipeline schedule choice). Both evaluate the same
layouts: TP in {1, 2, 4, 8}, PP in {1, 2, 4, 8, 16, 32, 64}, micro-batch in {1, 2, 4, 8}, recompute in
{none, selective, full}, DP = 1024 / (TP PP), global batch 1,536, sequence 2,048 (its model: facebook_opt-175b,
the GPT-3 175B shape). Times are CPU seconds of this process (run under ``taskset -c 0``):

* ``llm_analysis``: ``llm_analysis.analysis.train(...)`` once per layout;
* ``cosmic_scalar``: ``space.decode(point)`` + ``cosmic.simulate`` once per layout (the same layouts as a PSA);
* ``cosmic_batch``: ``space.decode_columns`` + ``simulate_columns`` on all of them at once.

    pip install llm-analysis==0.2.2   # in the same environment as cosmic
    python benchmarks/bench_peers.py [--json] [--repeat 3]
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import logging
import time
from pathlib import Path

import numpy as np

import cosmic
from cosmic.caches import clear_caches
from cosmic.psa.space import Space
from cosmic.sim.batch import simulate_columns

ROOT = Path(__file__).resolve().parents[1]
TPS, PPS, MBS = (1, 2, 4, 8), (1, 2, 4, 8, 16, 32, 64), (1, 2, 4, 8)
RECOMPUTE = ("none", "selective", "full")  # llm-analysis activation_recomputation 0, 1 (attention), 2 (full)


def _space() -> Space:
    base = cosmic.load_config(ROOT / "examples" / "megatron-gpt3-175b-1024xa100.yaml").to_yaml_dict()
    base["training"].update(schedule="1f1b", virtual_stages=1, global_batch=1536)
    data = {
        "name": "peers-gpt3-175b-1024",
        "base": base,
        "knobs": {"workload": {"tp": {"values": list(TPS)}, "pp": {"values": list(PPS)},
                               "sp": {"values": [1]}, "micro_batch": {"values": list(MBS)},
                               "recompute": {"values": list(RECOMPUTE)}, "schedule": {"values": ["1f1b"]}}},
        "derived": {"dp": {"rule": "npus_quotient", "from": ["tp", "pp", "sp"]}},
        "objectives": ["step_time"],
        "memory_fit": False,
    }
    return Space(data)


def _layouts() -> list[tuple[int, int, int, int]]:
    out = []
    for tp, pp, mb, rc in itertools.product(TPS, PPS, MBS, range(3)):
        dp = 1024 // (tp * pp)
        if 1536 % (dp * mb) == 0:
            out.append((tp, pp, mb, rc))
    return out


def run_llm_analysis(layouts: list[tuple[int, int, int, int]]) -> dict:
    from llm_analysis.analysis import train

    logging.disable(logging.CRITICAL)
    c0 = time.process_time()
    for tp, pp, mb, rc in layouts:
        train(model_name="facebook_opt-175b", gpu_name="a100-sxm-80gb", dtype_name="w16a16e16", log_level="ERROR",
              batch_size_per_gpu=mb, global_batch_size=1536, seq_len=2048, activation_recomputation=rc,
              tp_size=tp, pp_size=pp, dp_size=1024 // (tp * pp), total_num_gpus=1024, flash_attn=True,
              output_dir=None)
    cpu = time.process_time() - c0
    logging.disable(logging.NOTSET)
    return {"evaluations": len(layouts), "cpu_s": cpu, "evals_per_s": len(layouts) / cpu}


def _points(space: Space, layouts: list[tuple[int, int, int, int]]) -> np.ndarray:
    pts = []
    for tp, pp, mb, rc in layouts:
        cfg = space.base.model_copy(update={
            "parallel": space.base.parallel.model_copy(update={"tp": tp, "pp": pp, "dp": 1024 // (tp * pp)}),
            "training": space.base.training.model_copy(update={"micro_batch": mb, "recompute": RECOMPUTE[rc]}),
        })
        pts.append(space.encode(cfg))
    return np.array(pts, dtype=np.int64)


def run_cosmic(space: Space, pts: np.ndarray, reps: int) -> tuple[dict, dict]:
    """`reps` passes over the distinct points, every cache cleared before each pass (no pass reuses another's)."""
    scalar = batch = 0.0
    for _ in range(reps):
        clear_caches()
        c0 = time.process_time()
        for p in pts:
            with contextlib.suppress(cosmic.InfeasibleError):
                cosmic.simulate(space.decode(p))
        scalar += time.process_time() - c0
        clear_caches()
        c0 = time.process_time()
        cols, _ = space.decode_columns(pts)
        simulate_columns(cols)
        batch += time.process_time() - c0
    n = len(pts) * reps
    return ({"evaluations": n, "cpu_s": scalar, "evals_per_s": n / scalar},
            {"evaluations": n, "cpu_s": batch, "evals_per_s": n / batch})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--repeat", type=int, default=3, help="repeat each measurement, keep the best")
    args = ap.parse_args()
    try:
        import llm_analysis  # noqa: F401
    except ImportError:
        raise SystemExit("bench_peers: llm-analysis is not installed here: pip install llm-analysis==0.2.2") from None
    layouts = _layouts()
    space = _space()
    pts = _points(space, layouts)
    # enough evaluations per measurement for a stable rate: several passes over the distinct layouts, cosmic's
    # caches cleared before each pass (llm-analysis keeps none)
    reps = max(1, 2000 // len(layouts))
    many = layouts * reps
    best: dict[str, dict] = {}
    for _ in range(args.repeat):
        la = run_llm_analysis(many)
        sc, ba = run_cosmic(space, pts, reps)
        for k, v in (("llm_analysis", la), ("cosmic_scalar", sc), ("cosmic_batch", ba)):
            if k not in best or v["evals_per_s"] > best[k]["evals_per_s"]:
                best[k] = v
    res = {
        "layouts": len(layouts), "evaluations_per_run": len(many), **best,
        "scalar_vs_llm_analysis": best["cosmic_scalar"]["evals_per_s"] / best["llm_analysis"]["evals_per_s"],
        "batch_vs_llm_analysis": best["cosmic_batch"]["evals_per_s"] / best["llm_analysis"]["evals_per_s"],
        "targets": {"scalar_vs_llm_analysis": 2.0, "batch_vs_llm_analysis": 5.0},
    }
    print(json.dumps(res, indent=2) if args.json else "\n".join(f"{k}: {v}" for k, v in res.items()))


if __name__ == "__main__":
    main()
