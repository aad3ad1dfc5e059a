"""One job of a case study = one agent run on one space; `run_job` executes it in a worker and returns plain data.

A job runs :func:`cosmic.explore.run_study` in memory (storing 2,000 trials in SQLite and reading them back costs
~12 s against ~0.6 s for the search itself; ``store_dir`` keeps an Optuna study per job when asked). The points the
agent was told are recorded as they are told, and every trial's metrics (step time, network cost, bandwidth, memory,
breakdown) are read from a second simulation of its configuration, so the CSV of trials holds every evaluation.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cosmic.sim import BREAKDOWN_KEYS

TOP_K = 5


@dataclass(frozen=True)
class Job:
    """What one agent run searches: a (setting, system, model, mode) space, agent, seed, budget, objective."""

    study: str
    setting: str
    system: str
    model: str
    mode: str
    agent: str
    seed: int
    budget: int
    objective: str = "runtime"
    global_batch: int | None = None
    store_dir: str | None = None
    time_limit_s: float | None = None
    """Stop asking after this many seconds (the certifying runs of ``--certify``)."""
    certify: bool = False
    """A reference run of `bnb` that certifies the space's optimum (or proves a gap) for the report: not one of the
    agents compared, and its evaluations are not written to trials.csv."""

    @property
    def cell(self) -> tuple[str, str, str, int | None]:
        """The case-study cell the job belongs to: (setting, model, system, global batch)."""
        return (self.setting, self.model, self.system, self.global_batch)

    @property
    def key(self) -> str:
        gb = f"-b{self.global_batch}" if self.global_batch is not None else ""
        obj = "" if self.objective == "runtime" else "-" + self.objective.replace("*", "x")
        who = "certify" if self.certify else f"{self.agent}-s{self.seed}"
        return f"{self.setting}-{self.system}-{self.model}{gb}-{self.mode}{obj}-{who}"

    @property
    def label(self) -> str:
        """The agent's name, or ``certify`` for a certifying run (what the ETA and the progress line group by)."""
        return "certify" if self.certify else self.agent

    def space(self) -> Any:
        from cosmic.study._spaces import study_space

        return study_space(self.system, self.model, self.mode, setting=self.setting, objective=self.objective,
                           global_batch=self.global_batch)


@dataclass
class JobResult:
    """A finished job, as plain data (pickles cheaply between processes and through Ray)."""

    job: Job
    wall_s: float
    evaluations: int
    counts: dict[str, int]
    best_objective: float | None
    best_point: list[int] | None
    trace: list[float | None]
    job_s: float = 0.0
    """Wall time of the whole job in its worker (search, trial rows, top configurations), for the ETA."""
    trials: list[dict[str, Any]] = field(default_factory=list)
    """One row per evaluation: trial, status, objective, step_time_s, network_cost_usd, total_bandwidth_gbps,
    memory_gb, the breakdown components and the knobs (JSON-ready)."""
    top: list[dict[str, Any]] = field(default_factory=list)
    """The best distinct feasible trials (up to TOP_K): point, objective, knobs, config, result."""
    certificate: dict[str, Any] | None = None
    """What the run proves about the space's optimum, when it proves something (a `bnb` run, or an `exhaustive`
    one that enumerated the space): ``certified``, ``lower_bound``, ``gap_pct``; ``error`` when a certifying run
    could not bound the space (e.g. `bnb` refuses its objective)."""


def _plain(v: Any) -> Any:
    from cosmic.explore._study import jsonable

    return jsonable(v)


def run_job(job: Job) -> JobResult:
    """Run one agent on one space (module-level, so process pools and Ray can ship it)."""
    from cosmic.agents import make_agent
    from cosmic.errors import ConfigError
    from cosmic.explore import run_study

    start = time.perf_counter()
    space = job.space()
    try:
        agent = make_agent(job.agent, space, seed=job.seed)
    except ConfigError as exc:
        if not job.certify:
            raise
        return JobResult(job=job, wall_s=0.0, evaluations=0, counts={}, best_objective=None, best_point=None,
                         trace=[], job_s=time.perf_counter() - start,
                         certificate={"certified": False, "lower_bound": None, "gap_pct": None, "error": str(exc)})
    told_points: list[np.ndarray] = []
    told_viol: list[float] = []
    tell = agent.tell

    def recording_tell(points: Any, values: Any, **kw: Any) -> None:
        pts = np.asarray(points, dtype=np.int64).reshape(len(values), -1)
        told_points.extend(pts)
        viol = kw.get("violations")
        told_viol.extend(float(v) for v in (viol if viol is not None else [0.0] * len(values)))
        tell(points, values, **kw)

    agent.tell = recording_tell  # type: ignore[method-assign]
    kw: dict[str, Any] = {"persist": False}
    if job.store_dir is not None:
        db = Path(job.store_dir) / f"{job.key}.db"
        db.parent.mkdir(parents=True, exist_ok=True)
        if db.exists():
            db.unlink()
        kw = {"persist": True, "storage": str(db), "study_name": job.key}
    t0 = time.perf_counter()
    summary = run_study(space, agent, budget=effective_budget(job, agent, space), seed=job.seed,
                        time_limit_s=job.time_limit_s, **kw)
    wall = time.perf_counter() - t0
    if len(told_points) != len(summary.values):
        raise RuntimeError(f"{job.key}: recorded {len(told_points)} points for {len(summary.values)} trials")
    trials = [] if job.certify else _trial_rows(space, told_points, summary.values, told_viol)
    top = _top(space, told_points, summary.values)
    best_point = None
    if summary.best_index is not None:
        best_point = [int(x) for x in told_points[summary.best_index]]
    return JobResult(job=job, wall_s=wall, evaluations=summary.evaluations, counts=dict(summary.counts),
                     best_objective=summary.best_objective, best_point=best_point,
                     trace=[None if t is None else float(t) for t in summary.trace],
                     job_s=time.perf_counter() - start, trials=trials, top=top, certificate=_certificate(summary))


def _certificate(summary: Any) -> dict[str, Any] | None:
    """What a finished run proves about the optimum of its space (None when it proves nothing)."""
    if summary.certificate is None and not summary.certified:
        return None
    return {"certified": bool(summary.certified), "lower_bound": summary.lower_bound, "gap_pct": summary.gap_pct}


def never_repeats(agent: Any) -> bool:
    """An agent (class or instance) that asks one point at a time and never evaluates a point twice (Optuna's tpe,
    bo, cmaes): it re-asks up to 16 times while its sampler proposes known points (``docs/agents.md``)."""
    return not agent.repeats_points and agent.default_batch == 1


def effective_budget(job: Job, agent: Any, space: Any) -> int:
    """The job's budget, capped at the space's number of feasible points for an agent that never repeats a point:
    past that size every ask would re-propose known points and end on a duplicate. COSMIC's workload-only spaces
    have 142-266 points. Population agents (ga, aco, nsga2) and random keep their budget."""
    if never_repeats(agent):
        return min(job.budget, int(space.size_feasible))
    return job.budget


def metrics(result: Any) -> dict[str, Any]:
    """The per-trial quantities the CSV and the report use, from a simulation Result."""
    row: dict[str, Any] = {
        "step_time_s": float(result.step_time_s),
        "network_cost_usd": float(result.network_cost_usd),
        "total_bandwidth_gbps": float(result.total_bandwidth_gbps),
        "memory_gb": float(result.memory_per_device_gb),
    }
    for k in BREAKDOWN_KEYS:
        row[k] = float(result.breakdown[k])
    return row


def _trial_rows(space: Any, points: list[np.ndarray], values: list[Any], viol: list[float]) -> list[dict[str, Any]]:
    from cosmic.errors import CosmicError
    from cosmic.sim import simulate

    rows = []
    for i, (p, v, vi) in enumerate(zip(points, values, viol, strict=True)):
        status = "ok" if v is not None else ("rejected" if math.isinf(vi) else "memory")
        row: dict[str, Any] = {"trial": i, "status": status, "objective": None if v is None else float(v[0])}
        with contextlib.suppress(CosmicError):  # a design the simulator rejects keeps only its status
            row.update(metrics(simulate(space.decode(p))))
        row["knobs"] = _plain(space.knobs(p))
        row["point"] = [int(x) for x in p]
        rows.append(row)
    return rows


def _top(space: Any, points: list[np.ndarray], values: list[Any]) -> list[dict[str, Any]]:
    from cosmic.sim import simulate

    seen: set[bytes] = set()
    order = sorted((float(v[0]), i) for i, v in enumerate(values) if v is not None)
    out = []
    for val, i in order:
        k = np.asarray(points[i], dtype=np.int64).tobytes()
        if k in seen:
            continue
        seen.add(k)
        cfg = space.decode(points[i])
        res = simulate(cfg)
        out.append({"trial": i, "objective": val, "point": [int(x) for x in points[i]],
                    "knobs": _plain(space.knobs(points[i])), "config": cfg.to_yaml_dict(),
                    "result": metrics(res), "evidence": None if res.evidence is None else res.evidence.to_dict()})
        if len(out) >= TOP_K:
            break
    return out


__all__ = ["TOP_K", "Job", "JobResult", "effective_budget", "metrics", "never_repeats", "run_job"]
