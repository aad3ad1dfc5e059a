"""From finished jobs to the case-study summary: baselines, best per mode, speedups, flags and "what changed".

Speedup of full-stack over single-stack mode M in a cell = best objective of M / best objective of full (all
objectives are minimised), the best taken over every agent and seed. A single-stack space is a subset of the full
space only when the full space's domains hold the baseline's values of the stacks M does not search; so when full
loses to M, the cell is flagged with the reason, decided exactly by encoding M's best configuration in the full
space: it encodes (the full search did not find it: budget) or it does not (its value of some knob lies outside the
full space's domain, e.g. a baseline per-NPU bandwidth above the searched 50..500 GB/s).
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

from cosmic.errors import CosmicError
from cosmic.sim import BREAKDOWN_KEYS, simulate
from cosmic.study._jobs import JobResult, metrics
from cosmic.study._spaces import MODES, SINGLE_MODES, baseline_config, study_space

TOL = 1e-9


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-9)
    return bool(a == b)


def baseline_knobs(space: Any, names: list[str]) -> dict[str, Any]:
    """The baseline's value of each knob in `names` (JSON-ready), from the baseline configuration itself."""
    from cosmic.explore._study import jsonable
    from cosmic.psa.knobs import base_values

    bv = base_values(baseline_config(space))
    return {k: jsonable(bv[k]) for k in names if k in bv}


def knob_changes(base: dict[str, Any], knobs: dict[str, Any]) -> dict[str, list[Any]]:
    """``{knob: [baseline value, new value]}`` for every knob whose value differs from the baseline's."""
    return {k: [base.get(k), v] for k, v in knobs.items() if k in base and not _same(base[k], v)}


def breakdown_shift(base: dict[str, Any], best: dict[str, Any]) -> dict[str, list[float]]:
    """``{component: [baseline s, best s]}`` for the step-time components (and the total)."""
    keys = ["step_time_s", *BREAKDOWN_KEYS]
    return {k: [float(base.get(k, 0.0)), float(best.get(k, 0.0))] for k in keys}


def _containment(full: Any, config: dict[str, Any]) -> tuple[bool, str]:
    """Whether a configuration lies in the full space (and if not, which knob is outside)."""
    from cosmic.sim.config import config_from_dict

    try:
        full.encode(config_from_dict(config))
    except CosmicError as exc:
        return False, str(exc)
    return True, ""


def analyse_cells(results: list[JobResult], *, top_k: int = 3) -> list[dict[str, Any]]:
    """One summary per cell (setting, model, system, global batch, objective), in first-seen job order."""
    groups: dict[tuple[Any, ...], list[JobResult]] = defaultdict(list)
    for r in results:
        groups[(*r.job.cell, r.job.objective)].append(r)
    return [_cell(key, rs, top_k) for key, rs in groups.items()]


def certificate_entry(runs: list[JobResult], by_agent: dict[str, float | None]) -> dict[str, Any] | None:
    """What the runs of one mode prove about its optimum, and how close each agent came (None: nothing proven).

    The lower bound is the largest any run proves (a certifying `bnb` run, or an agent run whose agent proves
    bounds: `bnb`, or `exhaustive` once it enumerated the space); the best known value is the smallest any run
    found. ``optimum`` is set when some run certified it. ``gap_by_agent`` is each agent's best over the lower
    bound, in %: the exact gap to the optimum when certified, else an upper bound on it (``gap_pct`` is that of the
    best known value).
    """
    proofs = [r for r in runs if r.certificate is not None]
    if not proofs:
        return None
    known = [r.best_objective for r in runs if r.best_objective is not None]
    best = min(known) if known else None
    certified = [r for r in proofs if r.certificate and r.certificate.get("certified") and r.best_objective is not None]
    bounds = [float(r.certificate["lower_bound"]) for r in proofs
              if r.certificate and r.certificate.get("lower_bound") is not None]
    lb = max(bounds) if bounds else None
    if certified:
        lb = min(r.best_objective for r in certified if r.best_objective is not None)
    errors = sorted({str(r.certificate["error"]) for r in proofs if r.certificate and r.certificate.get("error")})
    by = proofs[0] if not certified else certified[0]

    def gap(v: float | None) -> float | None:
        if v is None or lb is None or lb <= 0:
            return None
        return max(0.0, (v - lb) / lb * 100.0)

    return {"certified": bool(certified), "optimum": lb if certified else None, "lower_bound": lb,
            "best_known": best, "gap_pct": gap(best), "gap_by_agent": {a: gap(v) for a, v in by_agent.items()},
            "by": "certify" if by.job.certify else by.job.agent, "evaluations": sum(r.evaluations for r in proofs),
            "wall_s": sum(r.wall_s for r in proofs), "errors": errors}


def _cell(key: tuple[Any, ...], runs: list[JobResult], top_k: int) -> dict[str, Any]:
    setting, model, system, gb, objective = key
    rs = [r for r in runs if not r.job.certify]  # the agents compared; certifying runs only prove bounds
    full = study_space(system, model, "full", setting=setting, objective=objective, global_batch=gb)
    base_cfg = baseline_config(full)
    base_res = simulate(base_cfg)
    obj = full.objectives[0]
    base_obj = float(obj.value(base_res, base_cfg))
    base_m = metrics(base_res)
    names = sorted({k for r in rs for t in r.top for k in t["knobs"]})
    bknobs = baseline_knobs(full, names)
    in_full, why_not = _containment(full, base_cfg.to_yaml_dict())

    modes: dict[str, Any] = {}
    for mode in MODES:
        mr = [r for r in rs if r.job.mode == mode]
        if not mr:
            continue
        proofs = [r for r in runs if r.job.mode == mode]
        feas = [r for r in mr if r.best_objective is not None]
        by_agent: dict[str, float | None] = {}
        for r in mr:
            cur = by_agent.get(r.job.agent)
            if r.best_objective is not None and (cur is None or r.best_objective < cur):
                by_agent[r.job.agent] = r.best_objective
            else:
                by_agent.setdefault(r.job.agent, cur)
        entry: dict[str, Any] = {"best": None, "by_agent": by_agent,
                                 "evaluations": sum(r.evaluations for r in mr),
                                 "certificate": certificate_entry(proofs, by_agent)}
        if feas:
            best = min(feas, key=lambda r: (r.best_objective, r.job.agent, r.job.seed))
            t = best.top[0]
            entry.update(best=best.best_objective, agent=best.job.agent, seed=best.job.seed, knobs=t["knobs"],
                         config=t["config"], metrics=t["result"], evidence=t.get("evidence"),
                         changed=knob_changes(bknobs, t["knobs"]),
                         breakdown=breakdown_shift(base_m, t["result"]))
        modes[mode] = entry

    cell: dict[str, Any] = {
        "setting": setting, "model": model, "system": system, "global_batch": gb or base_cfg.training.global_batch,
        "objective": objective, "psa_objective": obj.name,
        "baseline": {"objective": base_obj, "metrics": base_m, "fits_memory": bool(base_res.fits_memory),
                     "in_full_space": in_full, "outside_full_space": why_not,
                     "knobs": bknobs},
        "modes": modes, "speedup_full_over": {}, "speedup_vs_baseline": {}, "flags": [],
    }
    fbest = (modes.get("full") or {}).get("best")
    for mode, e in modes.items():
        if e.get("best"):
            cell["speedup_vs_baseline"][mode] = base_obj / e["best"]
    if fbest:
        for mode in SINGLE_MODES:
            e = modes.get(mode)
            if not e or not e.get("best"):
                continue
            s = e["best"] / fbest
            cell["speedup_full_over"][mode] = s
            if s < 1.0 - TOL:
                inside, why = _containment(full, e["config"])
                cell["flags"].append({
                    "mode": mode, "speedup": s,
                    "reason": "budget" if inside else "outside_full_space",
                    "detail": ("the full-stack search did not reach this configuration, which the full space "
                               "contains: more budget or seeds would find it") if inside else
                              f"the {mode}-only optimum is not in the full space: {why}",
                })
    elif modes:
        cell["flags"].append({"mode": "full", "speedup": None, "reason": "no_feasible",
                              "detail": "the full-stack search found no feasible configuration"})
    cell["top"] = _top_configs(rs, bknobs, base_m, top_k)
    return cell


def _top_configs(rs: list[JobResult], bknobs: dict[str, Any], base_m: dict[str, Any], k: int) -> list[dict[str, Any]]:
    seen: set[tuple[int, ...]] = set()
    cands = sorted(((t["objective"], r.job.agent, r.job.seed, t) for r in rs if r.job.mode == "full"
                    for t in r.top), key=lambda x: (x[0], x[1], x[2]))
    out = []
    for val, agent, seed, t in cands:
        p = tuple(t["point"])
        if p in seen:
            continue
        seen.add(p)
        out.append({"objective": val, "agent": agent, "seed": seed, "knobs": t["knobs"],
                    "changed": knob_changes(bknobs, t["knobs"]), "breakdown": breakdown_shift(base_m, t["result"]),
                    "metrics": t["result"], "evidence": t.get("evidence")})
        if len(out) >= k:
            break
    return out


def speedup_range(cells: list[dict[str, Any]]) -> dict[str, Any]:
    """Smallest and largest full-stack speedup over any single-stack mode, overall and per setting."""
    out: dict[str, Any] = {}
    for setting in dict.fromkeys(c["setting"] for c in cells):
        vals = [v for c in cells if c["setting"] == setting for v in c["speedup_full_over"].values()]
        base = [c["speedup_vs_baseline"].get("full") for c in cells if c["setting"] == setting]
        base = [b for b in base if b]
        out[setting] = {"min": min(vals) if vals else None, "max": max(vals) if vals else None,
                        "full_vs_baseline_min": min(base) if base else None,
                        "full_vs_baseline_max": max(base) if base else None,
                        "flagged_cells": sum(1 for c in cells if c["setting"] == setting and c["flags"])}
    return out


__all__ = ["analyse_cells", "baseline_knobs", "breakdown_shift", "certificate_entry", "knob_changes",
           "speedup_range"]
