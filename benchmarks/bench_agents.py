"""Agents against the certified optimum: gap % at 1,000 and 2,000 evaluations over seeds, and bnb's certificates.

For each space, `bnb` first certifies the step-time optimum (or proves a lower bound when its time limit stops it);
then every agent runs 2,000 evaluations per seed, without storage, and the table gives the median and worst gap of
its best to that optimum (or bound) after 1,000 and 2,000 evaluations (read off the same run's trace), the median
wall time, and whether the median at 1,000 beats `random`'s. A second table gives bnb on the presets of the issue:
optimum, certified or proven gap, wall time, points evaluated and the share of the feasible space never evaluated.

    python benchmarks/bench_agents.py [--json] [--seeds 5] [--agents random,ils,...] [--spaces a,b] [--jobs 2]
        [--bnb-presets p,q] [--bnb-time-limit 600] [--bnb-gap-pct 0] [--budget 2000]

Defaults: the workload benchmark space (spaces/gpt3-175b-1024-workload.yaml) and two -full presets; tpe, bo and
rl are left out by default (tens of seconds to minutes per run), name them with --agents to include them.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

WORKLOAD = str(Path(__file__).parent / "spaces" / "gpt3-175b-1024-workload.yaml")
SPACES = [WORKLOAD, "cosmic-s1-gpt3-175b-full", "cosmic-s2-gpt3-13b-full"]
AGENTS = ["random", "walk", "ga", "aco", "ils", "memetic", "cmaes", "nsga2"]
BNB_PRESETS = ["cosmic-s1-gpt3-175b-network", "cosmic-s1-gpt3-175b-collective", "cosmic-s1-gpt3-175b-workload",
               "cosmic-s1-gpt3-175b-full", "cosmic-s2-gpt3-13b-full"]


def certify(space_name: str, time_limit_s: float, gap_pct: float = 0.0) -> dict[str, Any]:
    from cosmic.agents import make_agent
    from cosmic.explore import run_study
    from cosmic.psa import load_psa

    space = load_psa(space_name)
    agent = make_agent("bnb", space, gap_pct=gap_pct)
    t = time.perf_counter()
    s = run_study(space, agent, budget=10**12, persist=False, time_limit_s=time_limit_s)
    cert = agent.certificate()
    return {"space": space_name, "optimum": s.best_objective, "certified": cert["certified"],
            "gap_pct": cert["gap_pct"], "lower_bound": cert["lower_bound"], "wall_s": round(time.perf_counter() - t, 1),
            "evaluations": s.evaluations, "feasible_points": space.size_feasible,
            "share_not_evaluated": 1.0 - s.evaluations / space.size_feasible, "bounded_boxes": cert["bounded_boxes"]}


def one(space_name: str, agent: str, seed: int, budget: int) -> dict[str, Any]:
    from cosmic.explore import run_study
    from cosmic.psa import load_psa

    space = load_psa(space_name)
    t = time.perf_counter()
    s = run_study(space, agent, budget=budget, seed=seed, persist=False)
    return {"space": space_name, "agent": agent, "seed": seed, "trace": s.trace, "wall_s": time.perf_counter() - t}


def _gaps(runs: list[dict[str, Any]], at: int, ref: float) -> dict[str, Any]:
    gaps = []
    for r in runs:
        tr = r["trace"][: at]
        v = tr[-1] if tr else None
        gaps.append(None if v is None else (v / ref - 1.0) * 100.0)
    ok = [g for g in gaps if g is not None]
    return {"median": statistics.median(ok) if ok else None, "worst": max(ok) if ok else None,
            "seeds": [None if g is None else round(g, 3) for g in gaps]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--budget", type=int, default=2000)
    ap.add_argument("--agents", default=",".join(AGENTS))
    ap.add_argument("--spaces", default=",".join(SPACES))
    ap.add_argument("--bnb-presets", default=",".join(BNB_PRESETS))
    ap.add_argument("--bnb-time-limit", type=float, default=600.0)
    ap.add_argument("--bnb-gap-pct", type=float, default=0.0, help="gap accepted by bnb's pruning (0: certify)")
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    agents = [a.strip() for a in args.agents.split(",") if a.strip()]
    if "random" not in agents:
        agents.insert(0, "random")
    spaces = [s for s in args.spaces.split(",") if s]
    presets = [p for p in args.bnb_presets.split(",") if p]

    certs = {name: certify(name, args.bnb_time_limit, args.bnb_gap_pct) for name in dict.fromkeys(spaces + presets)}
    jobs = [(sp, a, seed, args.budget) for sp in spaces for a in agents for seed in range(args.seeds)]
    if args.jobs > 1:
        with ProcessPoolExecutor(args.jobs) as ex:
            runs = list(ex.map(one, *zip(*jobs, strict=True)))
    else:
        runs = [one(*j) for j in jobs]
    half = args.budget // 2
    tables: dict[str, Any] = {}
    for sp in spaces:
        c = certs[sp]
        ref = c["optimum"] if c["certified"] else c["lower_bound"]
        rows: dict[str, Any] = {}
        for a in agents:
            rs = [r for r in runs if r["space"] == sp and r["agent"] == a]
            rows[a] = {f"gap_pct_{half}": _gaps(rs, half, ref), f"gap_pct_{args.budget}": _gaps(rs, args.budget, ref),
                       "median_wall_s": round(statistics.median(r["wall_s"] for r in rs), 2)}
        rnd = rows["random"][f"gap_pct_{half}"]["median"]
        for a, row in rows.items():
            m = row[f"gap_pct_{half}"]["median"]
            row[f"beats_random_at_{half}"] = None if a == "random" else (m is not None and rnd is not None and m < rnd)
        tables[sp] = {"reference": ref, "reference_is": "certified optimum" if c["certified"] else "proven bound",
                      "agents": rows}
    res = {"seeds": args.seeds, "budget": args.budget, "bnb": [certs[p] for p in presets], "agents": tables}
    if args.json:
        print(json.dumps(res, indent=2))
        return
    print(f"{'bnb on':<34}{'optimum':>12}{'certified':>10}{'gap %':>8}{'wall s':>8}{'evaluated':>11}{'not eval.':>11}")
    for c in res["bnb"]:
        print(f"{Path(c['space']).stem:<34}{c['optimum']:>12.6g}{c['certified']!s:>10}{c['gap_pct'] or 0:>8.3g}"
              f"{c['wall_s']:>8.1f}{c['evaluations']:>11,}{c['share_not_evaluated']:>11.6f}")
    for sp, t in tables.items():
        print(f"\n{Path(sp).stem}: gap % to the {t['reference_is']} {t['reference']:.6g} ({args.seeds} seeds)")
        print(f"{'agent':<10}{'med ' + str(half):>10}{'worst':>8}{'med ' + str(args.budget):>10}{'worst':>8}"
              f"{'wall s':>8}  beats random")
        for a, row in t["agents"].items():
            g1, g2 = row[f"gap_pct_{half}"], row[f"gap_pct_{args.budget}"]
            br = row[f"beats_random_at_{half}"]
            print(f"{a:<10}{g1['median']:>10.2f}{g1['worst']:>8.2f}{g2['median']:>10.2f}{g2['worst']:>8.2f}"
                  f"{row['median_wall_s']:>8.1f}  {'-' if br is None else ('yes' if br else 'NO')}")


if __name__ == "__main__":
    main()
