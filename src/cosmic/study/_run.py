"""The two case studies as job grids, and running one end to end: jobs on a backend, analysis, output files.

* ``cosmic-paper``: COSMIC's grid: 4 models x 3 systems x 4 modes (workload, collective, network, full).
* ``scaling``: GPT-3 175B, LLaMA-7B and ViT-Large on S2 with global batch 1024 ... 16384, the same 4 modes.
* ``dense-vs-moe``: Mixtral 8x22B and its dense twin (the same FLOPs and parameters per token) on 256 H100, the
  same 4 modes: what full-stack search buys for a MoE model next to a dense one.

Output directory: ``report.html`` (self-contained), ``summary.json`` and ``trials.csv`` (every evaluation of every
agent run), plus ``studies/<job>.db`` (Optuna studies) when asked to store them.
"""

from __future__ import annotations

import csv
import json
import platform
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import cosmic
from cosmic.errors import ConfigError, UnknownNameError
from cosmic.sim import BREAKDOWN_KEYS
from cosmic.study._analysis import analyse_cells, speedup_range
from cosmic.study._eta import Eta, pilot
from cosmic.study._jobs import Job, JobResult, run_job
from cosmic.study._spaces import (
    MODES,
    MOE_SYSTEMS,
    OBJECTIVES,
    PAPER_MODELS,
    SETTINGS,
    SYSTEMS,
    check_names,
    objective_name,
)

STUDIES = ("cosmic-paper", "scaling", "dense-vs-moe")
SCALING_MODELS = ("gpt3-175b", "llama-7b", "vit-large")
SCALING_SYSTEM = "s2"
SCALING_BATCHES = (1024, 2048, 4096, 8192, 16384)
DENSE_VS_MOE_MODELS = ("mixtral-8x22b-dense", "mixtral-8x22b")
"""Mixtral 8x22B (8 experts, top-2; arXiv 2401.04088) and its dense twin: the same attention and layers with one
dense MLP of the width a token's two experts have, 39.2B parameters, Mixtral's active count
(``catalog/presets/moe.yaml``)."""
DENSE_VS_MOE_SYSTEM = "h100x256"
DEFAULT_AGENTS = ("ga", "tpe")
"""A genetic algorithm and Optuna's TPE, both in the base install. TPE is a Bayesian (sequential model-based)
optimiser like ``bo``, whose Gaussian process needs torch and scipy (extra ``[bo]``, ~1 GB installed) and slows with
every trial; docs/study.md gives the measurements behind the choice."""
DEFAULT_BUDGETS: dict[str, int] = {"ga": 2000, "tpe": 100, "bo": 48}
"""Evaluations per agent run when no budget is given for the agent. GA costs ~0.3 ms per evaluation, TPE ~20 ms per
ask, Optuna's GP (bo) 0.6 s per ask at 10 trials and ~2 s at 160 (it refits per ask), so one shared budget would be
either too small for GA or too slow for the model-based agents (docs/study.md)."""
OTHER_DEFAULT_BUDGET = 1000
CERTIFY_BUDGET = 10**12
"""Evaluations of a certifying run: no limit in practice (it ends when its proof does, or at its time limit)."""


def parse_budget(text: str) -> int | dict[str, int]:
    """``--budget``: a whole number for every agent, or ``agent=N`` pairs, optionally after a number for the rest.

    Example:
        >>> parse_budget("200"), parse_budget("ga=2000,bo=48"), parse_budget("500, bo=48")
        (200, {'ga': 2000, 'bo': 48}, {'*': 500, 'bo': 48})
    """
    out: dict[str, int] = {}
    items = [t.strip() for t in str(text).split(",")]
    if not any(items):
        raise ConfigError("expected a number of evaluations or agent=N pairs (e.g. 200 or ga=2000,bo=48)",
                          key="--budget")
    for item in items:
        agent, eq, value = item.rpartition("=")
        agent = agent.strip().lower() if eq else "*"
        value = value.strip()
        if not value or not value.isdigit():
            what = f" for agent {agent!r}" if agent != "*" else ""
            raise ConfigError(f"{value or item!r}{what} is not a whole number of evaluations (e.g. 200 or "
                              "ga=2000,bo=48)", key="--budget")
        if not agent:
            raise ConfigError(f"{item!r}: name the agent before '=' (e.g. bo=48)", key="--budget")
        if agent in out:
            raise ConfigError("a plain number is given twice" if agent == "*" else f"agent {agent!r} is given twice",
                              key="--budget")
        out[agent] = int(value)
        if out[agent] < 1:
            raise ConfigError(f"budget must be >= 1, got {item!r}", key="--budget")
    if list(out) == ["*"]:
        return out["*"]
    return out


def budgets_for(agents: Sequence[str], budget: int | str | Mapping[str, int] | None) -> dict[str, int]:
    """Evaluations per run of each agent: `budget` (a number for all, ``{agent: n}`` with an optional ``"*"`` for
    the rest, or the text of ``--budget``), the agents it leaves out taking their defaults (``DEFAULT_BUDGETS``).

    Raises:
        ConfigError: a budget below 1, or one for an agent the run does not use (with the nearest agent's name).
    """
    if isinstance(budget, str):
        budget = parse_budget(budget)
    if budget is None:
        budget = {}
    if not isinstance(budget, Mapping):
        budget = {"*": int(budget)}
    for a, n in budget.items():
        if a != "*" and a not in agents:
            raise UnknownNameError("agent", a, agents, key="--budget")
        if int(n) < 1:
            raise ConfigError(f"budget must be >= 1, got {n} for {'every agent' if a == '*' else a}", key="--budget")
    rest = budget.get("*")
    return {a: int(budget.get(a, rest if rest is not None else DEFAULT_BUDGETS.get(a, OTHER_DEFAULT_BUDGET)))
            for a in agents}


def settings_for(setting: str) -> tuple[str, ...]:
    if setting == "both":
        return SETTINGS
    if setting not in SETTINGS:
        raise ConfigError(f"unknown setting {setting!r}; known: {', '.join(SETTINGS)}, both")
    return (setting,)


def make_jobs(
    study: str,
    *,
    agents: Sequence[str] = DEFAULT_AGENTS,
    seeds: int = 1,
    budget: int | str | Mapping[str, int] | None = None,
    objective: str = "runtime",
    setting: str = "full-depth",
    models: Sequence[str] | None = None,
    systems: Sequence[str] | None = None,
    batches: Sequence[int] | None = None,
    modes: Sequence[str] = MODES,
    store_dir: str | None = None,
    certify_s: float | None = None,
) -> list[Job]:
    """The jobs of a case study: cell x mode x agent x seed (seeds 0 .. seeds-1), and with `certify_s` one
    certifying `bnb` run per cell and mode, stopped after that many seconds (`Job.certify`)."""
    from cosmic.agents import agent_class, agent_names

    if study not in STUDIES:
        raise ConfigError(f"unknown study {study!r}; known: {', '.join(STUDIES)}")
    if not agents:
        raise ConfigError("name at least one agent (e.g. --agents ga,tpe)")
    if seeds < 1:
        raise ConfigError(f"seeds must be >= 1, got {seeds}")
    objective_name(objective)
    if certify_s is not None:
        if not certify_s > 0:
            raise ConfigError(f"expected seconds per certifying run above 0, got {certify_s}", key="--certify")
        if objective != "runtime":
            raise ConfigError(f"bnb bounds the step time only, not {objective!r}: certify with --objective runtime",
                              key="--certify")
    for a in agents:
        try:
            agent_class(a)
        except UnknownNameError as exc:
            raise UnknownNameError("agent", str(a), agent_names(), key="--agents") from exc
    paper, moe = study == "cosmic-paper", study == "dense-vs-moe"
    models = list(models or (PAPER_MODELS if paper else DENSE_VS_MOE_MODELS if moe else SCALING_MODELS))
    systems = list(systems or (SYSTEMS if paper else (DENSE_VS_MOE_SYSTEM if moe else SCALING_SYSTEM,)))
    check_names(systems=systems, models=models, modes=modes,
                known=tuple(MOE_SYSTEMS) if moe else SYSTEMS)
    bud = budgets_for(agents, budget)
    cells: list[tuple[str, str, int | None]]  # (system, model, global_batch)
    if paper or moe:
        cells = [(s, m, None) for m in models for s in systems]
    else:
        cells = [(s, m, b) for m in models for s in systems for b in (batches or SCALING_BATCHES)]
    jobs = [
        Job(study=study, setting=st, system=s, model=m, mode=mode, agent=a, seed=seed, budget=bud[a],
            objective=objective, global_batch=b, store_dir=store_dir)
        for st in settings_for(setting) for s, m, b in cells for mode in modes for a in agents
        for seed in range(seeds)
    ]
    if certify_s is not None:
        jobs += [Job(study=study, setting=st, system=s, model=m, mode=mode, agent="bnb", seed=0, budget=CERTIFY_BUDGET,
                     objective=objective, global_batch=b, time_limit_s=float(certify_s), certify=True)
                 for st in settings_for(setting) for s, m, b in cells for mode in modes]
    return jobs


_MODE_COST = {"full": 4, "network": 3, "collective": 2, "workload": 1}
"""Relative size of the spaces of the four modes (the full space has the most coordinates): orders jobs only."""


def run_jobs(jobs: Sequence[Job], backend: Any, *,
             on_done: Callable[[int, JobResult], None] | None = None,
             cost: Callable[[Job], float] | None = None) -> list[JobResult]:
    """Run the jobs on a backend (``cosmic.explore.backends``); results in job order.

    The jobs expected to be slowest (`cost`, seconds per job, e.g. :meth:`Eta.estimate`; else the budget of the
    model-based agents) start first, so the pool is not left waiting on one straggler at the end.
    """
    def expected(j: Job) -> float:
        if cost is not None:
            return cost(j)
        return float(j.time_limit_s or 0) if j.certify else float(j.budget if j.agent in ("bo", "tpe") else 0)

    order = sorted(range(len(jobs)), key=lambda i: (-expected(jobs[i]), -_MODE_COST[jobs[i].mode], i))
    got = backend.map(run_job, [jobs[i] for i in order],
                      on_done=None if on_done is None else (lambda k, r: on_done(order[k], r)))
    out: list[Any] = [None] * len(jobs)
    for k, i in enumerate(order):
        out[i] = got[k]
    return out


def summarise(study: str, results: list[JobResult], *, wall_s: float, backend: str, workers: int,
              options: dict[str, Any]) -> dict[str, Any]:
    cells = analyse_cells(results)
    return {
        "study": study,
        "cosmic_version": cosmic.__version__,
        "python": platform.python_version(),
        "backend": backend,
        "workers": workers,
        "wall_s": wall_s,
        "options": options,
        "objectives": {k: v for k, v in OBJECTIVES.items()},
        "speedup_range": speedup_range(cells),
        "cosmic_paper_range": [1.50, 48.41],
        "cells": cells,
        "jobs": [{"key": r.job.key, **{k: v for k, v in asdict(r.job).items() if k != "store_dir"},
                  "wall_s": r.wall_s, "job_s": r.job_s, "evaluations": r.evaluations, "counts": r.counts,
                  "best_objective": r.best_objective, "best_point": r.best_point, "certificate": r.certificate}
                 for r in results],
    }


CSV_FIELDS = ["study", "setting", "model", "system", "global_batch", "mode", "objective", "agent", "seed",
              "trial", "status", "value", "step_time_s", "network_cost_usd", "total_bandwidth_gbps", "memory_gb",
              *BREAKDOWN_KEYS, "point", "knobs"]


def write_trials_csv(results: list[JobResult], path: Path) -> int:
    """Every evaluation of every job, one row each; returns the number of rows."""
    n = 0
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=CSV_FIELDS, extrasaction="ignore")
        w.writeheader()
        for r in results:
            j = r.job
            head = {"study": j.study, "setting": j.setting, "model": j.model, "system": j.system,
                    "global_batch": j.global_batch or "", "mode": j.mode, "objective": j.objective,
                    "agent": j.agent, "seed": j.seed}
            for t in r.trials:
                row = {**head, **{k: v for k, v in t.items() if k not in ("knobs", "point", "objective")}}
                row["value"] = "" if t["objective"] is None else t["objective"]
                row["point"] = " ".join(str(x) for x in t["point"])
                row["knobs"] = json.dumps(t["knobs"], separators=(",", ":"))
                w.writerow(row)
                n += 1
    return n


def run_case_study(
    study: str,
    out_dir: str | Path,
    *,
    backend: Any,
    agents: Sequence[str] = DEFAULT_AGENTS,
    seeds: int = 1,
    budget: int | str | Mapping[str, int] | None = None,
    objective: str = "runtime",
    setting: str = "full-depth",
    models: Sequence[str] | None = None,
    systems: Sequence[str] | None = None,
    batches: Sequence[int] | None = None,
    store: bool = False,
    certify_s: float | None = None,
    estimate: bool = False,
    on_start: Callable[[Eta], None] | None = None,
    on_done: Callable[[int, JobResult, Eta], None] | None = None,
) -> dict[str, Any]:
    """Run a case study on `backend` and write report.html, summary.json and trials.csv into `out_dir`.

    With `certify_s`, one `bnb` run per cell and mode (at most that many seconds each) certifies the mode's optimum
    or proves a lower bound, and the report gives each agent's gap to it (docs/study.md).
    Every name and option is checked before anything is written or any job starts. With `estimate`, a short pilot
    run of each agent in this process estimates the run's wall time first (:mod:`cosmic.study._eta`); `on_start`
    receives the :class:`Eta` before the jobs start, `on_done` each finished job with it (its time left updated).
    Returns the summary (also written as ``summary.json``), with ``files`` naming what was written.
    """
    from cosmic.study._report import write_html

    d = Path(out_dir)
    jobs = make_jobs(study, agents=agents, seeds=seeds, budget=budget, objective=objective, setting=setting,
                     models=models, systems=systems, batches=batches,
                     store_dir=str((d / "studies").resolve()) if store else None, certify_s=certify_s)
    eta = Eta(jobs, backend.workers, pilot(jobs, run_job) if estimate else {})
    estimated_s = eta.total_s() if estimate else None
    if on_start is not None:
        on_start(eta)

    def done(i: int, r: JobResult) -> None:
        eta.finish(i, r)
        if on_done is not None:
            on_done(i, r, eta)

    t0 = time.perf_counter()
    results = run_jobs(jobs, backend, on_done=done, cost=eta.estimate if estimate else None)
    wall = time.perf_counter() - t0
    options = {"agents": list(agents), "seeds": seeds, "budgets": budgets_for(agents, budget),
               "objective": objective, "setting": setting, "models": list(models) if models else None,
               "systems": list(systems) if systems else None, "batches": list(batches) if batches else None,
               "certify_s": certify_s}
    summary = summarise(study, results, wall_s=wall, backend=backend.name, workers=backend.workers,
                        options=options)
    summary["estimated_wall_s"] = estimated_s
    d.mkdir(parents=True, exist_ok=True)
    files = {"report": d / "report.html", "summary": d / "summary.json", "trials": d / "trials.csv"}
    agent_runs = [r for r in results if not r.job.certify]
    summary["n_trials"] = write_trials_csv(agent_runs, files["trials"])
    write_html(summary, agent_runs, files["report"])
    summary["files"] = {k: str(v.resolve()) for k, v in files.items()}
    files["summary"].write_text(json.dumps(summary, indent=1, default=str) + "\n", encoding="utf-8")
    return summary


__all__ = [
    "DEFAULT_AGENTS",
    "DEFAULT_BUDGETS",
    "DENSE_VS_MOE_MODELS",
    "SCALING_BATCHES",
    "SCALING_MODELS",
    "STUDIES",
    "budgets_for",
    "make_jobs",
    "parse_budget",
    "run_case_study",
    "run_jobs",
    "summarise",
    "write_trials_csv",
]
