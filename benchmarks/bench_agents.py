"""Agents against random: median best objective after N evaluations over several seeds.

Runs every agent (or those named) on a PSA preset with the same budget and seeds, without storage, and prints, per
agent, the median / best / worst best-objective over the seeds, the median wall time, and whether the agent beats
`random` on the median (strictly better in the objective's direction).

    python benchmarks/bench_agents.py [--json] [-n 1000] [--seeds 5] [--agents ga,aco,...]
        [--preset cosmic-s1-gpt3-175b-full] [--objective step_time*network_cost] [--jobs 2] [--results DIR]
        [--first-seed K]

Optuna's GP sampler (`bo`) needs seconds per ask on an 18-coordinate space; `--budget-bo` gives it its own budget.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from cosmic.agents import agent_names

PRESET = "cosmic-s1-gpt3-175b-full"


def one(preset: str, objective: str | None, agent: str, seed: int, budget: int) -> dict[str, Any]:
    from cosmic.explore import run_study, with_objectives
    from cosmic.psa import load_psa

    space = load_psa(preset)
    if objective:
        space = with_objectives(space, [objective])
    t = time.perf_counter()
    s = run_study(space, agent, budget=budget, seed=seed, persist=False)
    return {"agent": agent, "seed": seed, "best": s.best_objective, "wall_s": time.perf_counter() - t,
            "budget": budget, "counts": s.counts, "direction": s.objectives[0][1]}


def _result_file(store: Path, preset: str, objective: str | None, agent: str, seed: int, budget: int) -> Path:
    tag = f"{preset}-{objective or 'preset'}".replace("*", "x").replace("/", "_")
    return store / f"{tag}-{agent}-{seed}-{budget}.json"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", "--budget", type=int, default=1000)
    ap.add_argument("--budget-bo", type=int, default=None, help="budget for bo (default: --budget)")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--first-seed", type=int, default=0,
                    help="seeds are first-seed .. first-seed+seeds-1 (split a long benchmark over processes)")
    ap.add_argument("--agents", default=",".join(a for a in agent_names() if a != "exhaustive"))
    ap.add_argument("--preset", default=PRESET)
    ap.add_argument("--objective", default=None, help="replace the preset's objective")
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--results", default=None, metavar="DIR",
                    help="keep each finished run as DIR/<agent>-<seed>-<budget>.json and reuse the ones already there, "
                         "so an interrupted benchmark resumes where it stopped")
    args = ap.parse_args()

    agents = [a.strip() for a in args.agents.split(",") if a.strip()]
    if "random" not in agents:
        agents.insert(0, "random")
    jobs = [(args.preset, args.objective, a, seed, (args.budget_bo or args.budget) if a == "bo" else args.budget)
            for a in agents for seed in range(args.first_seed, args.first_seed + args.seeds)]
    store = Path(args.results) if args.results else None
    done: dict[tuple[str, int], dict[str, Any]] = {}
    if store is not None:
        store.mkdir(parents=True, exist_ok=True)
        for _, _, a, seed, budget in jobs:
            f = _result_file(store, args.preset, args.objective, a, seed, budget)
            if f.exists():
                done[(a, seed)] = json.loads(f.read_text())
    todo = [j for j in jobs if (j[2], j[3]) not in done]

    def keep(r: dict[str, Any]) -> dict[str, Any]:
        if store is not None:
            f = _result_file(store, args.preset, args.objective, r["agent"], r["seed"], r["budget"])
            tmp = f.with_suffix(".tmp")
            tmp.write_text(json.dumps(r))
            tmp.replace(f)  # atomic: a killed run never leaves half a file
        done[(r["agent"], r["seed"])] = r
        return r

    if args.jobs > 1 and todo:
        with ProcessPoolExecutor(args.jobs) as ex:
            for r in ex.map(one, *zip(*todo, strict=True)):
                keep(r)
    else:
        for j in todo:
            keep(one(*j))
    runs = [done[(j[2], j[3])] for j in jobs]
    sign = 1.0 if runs[0]["direction"] == "minimize" else -1.0
    table: dict[str, dict[str, Any]] = {}
    for a in agents:
        rs = [r for r in runs if r["agent"] == a]
        bests = [r["best"] for r in rs if r["best"] is not None]
        table[a] = {
            "budget": rs[0]["budget"],
            "median_best": statistics.median(bests) if bests else None,
            "best": min(bests, key=lambda v: sign * v) if bests else None,
            "worst": max(bests, key=lambda v: sign * v) if bests else None,
            "median_wall_s": statistics.median(r["wall_s"] for r in rs),
            "bests": bests,
        }
    ref = table["random"]["median_best"]
    for a, row in table.items():
        m = row["median_best"]
        row["beats_random"] = None if a == "random" else (m is not None and ref is not None and sign * m < sign * ref)
    res = {"preset": args.preset, "objective": args.objective or "(preset)", "direction": runs[0]["direction"],
           "budget": args.budget, "seeds": args.seeds, "agents": table}
    if args.json:
        print(json.dumps(res, indent=2))
        return
    print(f"{args.preset}, objective {res['objective']} ({res['direction']}), {args.budget} evaluations, "
          f"{args.seeds} seeds")
    print(f"{'agent':<11}{'budget':>7}{'median best':>16}{'best':>16}{'worst':>16}{'wall s':>9}  beats random")
    for a, row in table.items():
        f = (lambda v: f"{v:16.6g}" if v is not None else f"{'-':>16}")  # noqa: E731
        br = "-" if row["beats_random"] is None else ("yes" if row["beats_random"] else "NO")
        print(f"{a:<11}{row['budget']:>7}{f(row['median_best'])}{f(row['best'])}{f(row['worst'])}"
              f"{row['median_wall_s']:9.1f}  {br}")


if __name__ == "__main__":
    main()
