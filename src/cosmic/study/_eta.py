"""How long a case study will take: a pilot measurement before the run, measured job times during it.

Before the jobs start, :func:`pilot` runs short jobs of each agent in this process, on the run's largest space (the
full mode of its first cell), and prices one unit of the agent's cost rule; a job's estimate is a fixed cost plus
that price times the rule's units at the job's budget:

* Every agent but ``bo`` costs the same per ask throughout (GA, ACO, walk and random ask whole generations; Optuna's
  TPE asks grew from 17 to 23 ms over 1,000 trials, measured: ``docs/study.md``): one unit per evaluation.
* ``bo`` (Optuna's GP sampler): the first ``n_startup_trials`` asks are uniform samples (free next to a GP ask); each
  later ask refits the GP on the ``n`` trials so far and costs ``c * (min(n, max_history) + H)`` with
  ``H = GP_HISTORY_OFFSET``, measured on the full S2 GPT-3 175B space on one core: 0.6 s per ask at 10 trials and
  1.9 s at 160 (``docs/study.md`` gives the command).
* An agent that never evaluates a point twice and asks one point at a time (tpe, bo, cmaes) re-asks while its
  sampler proposes known points. In a small space (COSMIC's workload-only spaces have 142-266 points) that is most
  of its cost: with ``k`` of ``S`` points known, a proposal is new with probability ``(S - k) / S`` if proposals were
  uniform, so evaluation ``k`` costs ``min(17, S / (S - k))`` asks (16 re-asks, then a uniform sample). Measured:
  TPE took 0.31 s per evaluation over all 142 points of a workload space against 0.11 s on the full space; the
  rule gives 3.8x.

While the jobs run, :class:`Eta` replaces the pilot's figure for an agent and mode by the mean measured time of its
finished jobs, and scales the other figures of an agent by how its finished jobs compared with theirs (a busy
machine slows the workers more than the pilot). Time left = the estimated seconds of the unfinished jobs / the
number of workers.
"""

from __future__ import annotations

import dataclasses
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

from cosmic.study._jobs import Job, JobResult, never_repeats

GP_HISTORY_OFFSET = 100.0
"""H in the GP ask-cost rule ``c * (n + H)``: fitted to the per-ask times of two ``bo`` runs on the full S2 GPT-3 175B
space (H = 58 from 160 trials on a quiet machine, H = 150 from 200 trials under heavy load; docs/study.md)."""
GROWING_COST = {"bo": GP_HISTORY_OFFSET}
"""Agents whose ask cost grows with the history they fit, and their offset H."""
MAX_ASKS = 17
"""Asks an evaluation of a never-repeating agent costs at most: 16 proposals, then a uniform sample."""
HOURS_WARNING_S = 3600.0
"""A run estimated at one hour or more is announced before it starts, with how to shorten it."""
PILOT_MIN_EVALUATIONS = 8
PILOT_MODEL_ASKS = 4
"""A pilot runs at least this many evaluations, and at least this many model-based asks past the startup trials."""


@dataclasses.dataclass(frozen=True)
class Rate:
    """What a pilot measured for one agent: fixed seconds per job and seconds per unit of its cost rule."""

    fixed_s: float
    unit_s: float


def _hyper(agent: str) -> dict[str, Any]:
    from cosmic.agents import hyperparameter_defaults

    return hyperparameter_defaults(agent)


def _repeats(agent: str) -> bool:
    from cosmic.agents import agent_class

    return not never_repeats(agent_class(agent))


def units(agent: str, n: int, space_size: int | None = None) -> float:
    """The cost of the first `n` evaluations of `agent` in units of its cost rule (see the module docstring).

    Example:
        >>> units("ga", 2000), round(units("tpe", 10, 10**12), 6), round(units("tpe", 142, 142))
        (2000.0, 10.0, 536)
    """
    growth = GROWING_COST.get(agent)
    start = int(_hyper(agent).get("n_startup_trials", 0)) if growth is not None else 0
    cap = int(_hyper(agent).get("max_history", n)) if growth is not None else n
    size = space_size if space_size is not None and not _repeats(agent) else None
    total = 0.0
    for k in range(min(n, size) if size is not None else n):
        asks = 1.0 if size is None else min(float(MAX_ASKS), size / (size - k))
        if growth is not None:
            asks *= 0.0 if k < start else min(k, cap) + growth
        total += asks
    return total


def pilot_budget(agent: str, budget: int) -> int:
    """Evaluations of the pilot run of `agent`: two of its batches, and a few model asks past its startup trials."""
    from cosmic.agents import agent_class

    batch = int(getattr(agent_class(agent), "default_batch", 1))
    start = int(_hyper(agent).get("n_startup_trials", 0))
    return min(budget, max(2 * batch, start + PILOT_MODEL_ASKS, PILOT_MIN_EVALUATIONS))


def _timed(run: Callable[[Job], Any], job: Job) -> float:
    t0 = time.perf_counter()
    run(job)
    return time.perf_counter() - t0


def pilot(jobs: Sequence[Job], run: Callable[[Job], Any]) -> dict[str, Rate]:
    """Price each agent's cost unit by short runs in this process (see the module docstring).

    The space is compiled first (its time counts as a fixed cost of every job). An agent of constant cost per
    evaluation runs twice, `n` and `2n` evaluations, so the difference prices an evaluation without the fixed costs
    of a run (building the agent, the study, the top configurations); ``bo`` runs once (its GP asks dominate).
    """
    out: dict[str, Rate] = {}
    for agent in dict.fromkeys(j.agent for j in jobs if not j.certify):  # a certifying run is priced by its limit
        mine = [j for j in jobs if j.agent == agent and not j.certify]
        job = dataclasses.replace(next((j for j in mine if j.mode == "full"), mine[0]), store_dir=None)
        t0 = time.perf_counter()
        size = int(job.space().size_feasible)
        compile_s = time.perf_counter() - t0
        n = pilot_budget(agent, job.budget)
        t1 = _timed(run, dataclasses.replace(job, budget=n))
        if agent in GROWING_COST or 2 * n > job.budget:
            u = units(agent, n, size)
            out[agent] = Rate(compile_s, t1 / u) if u else Rate(compile_s + t1, 0.0)
            continue
        t2 = _timed(run, dataclasses.replace(job, budget=2 * n))
        per_n = t2 - t1  # the second n evaluations, without the run's fixed costs
        if per_n < 0.1 * t2 or per_n > t1:  # lost in the timing noise of a busy machine (the second n cost less
            # than nothing, or more than the first n with its fixed costs): price the whole 2n run instead
            out[agent] = Rate(compile_s, t2 / units(agent, 2 * n, size))
        else:
            out[agent] = Rate(compile_s + t1 - per_n, per_n / (units(agent, 2 * n, size) - units(agent, n, size)))
    return out


def format_duration(seconds: float) -> str:
    """A duration a person reads at a glance.

    Example:
        >>> format_duration(42.4), format_duration(754), format_duration(2 * 3600 + 125)
        ('42 s', '12 min', '2 h 02 min')
    """
    s = max(0, round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 600:
        return f"{s // 60} min {s % 60:02d} s"
    if s < 3600:
        return f"{s // 60} min"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


class Eta:
    """Time left of a running study: the pilot's rates, replaced by measured job times as jobs finish."""

    def __init__(self, jobs: Sequence[Job], workers: int, rates: dict[str, Rate]) -> None:
        self.jobs = list(jobs)
        self.workers = max(1, int(workers))
        self.rates = dict(rates)
        self.done: set[int] = set()
        self._measured: dict[tuple[str, str], list[float]] = defaultdict(list)
        self._by_agent: dict[str, list[float]] = defaultdict(list)
        self._prior: dict[Job, float] = {}
        self._seconds: dict[Job, float] = {}
        if self.rates:
            for j in self.jobs:
                if j.certify:  # at most its time limit (it ends sooner when the proof is done)
                    self._prior[j] = float(j.time_limit_s or 0.0)
                    continue
                r = self.rates.get(j.agent)
                size = None if _repeats(j.agent) else int(j.space().size_feasible)
                self._prior[j] = 0.0 if r is None else r.fixed_s + r.unit_s * units(j.agent, j.budget, size)

    def estimate(self, job: Job) -> float:
        """Seconds one job is expected to take: the mean measured time of its agent and mode; else the pilot's
        figure scaled by how the finished jobs of its agent (else of any agent) compared with their pilot figures
        (which absorbs the machine's load and the pilot's error); else its agent's measured mean."""
        same = self._measured.get((job.label, job.mode))
        if same:
            return sum(same) / len(same)
        if job in self._prior:
            return self._prior[job] * (1.0 if job.certify else self._calibration(job.agent))
        agent = self._by_agent.get(job.label)
        return sum(agent) / len(agent) if agent else 0.0

    def _calibration(self, agent: str) -> float:
        for pick in (lambda j: j.agent == agent, lambda j: True):
            done = [self.jobs[i] for i in self.done if pick(self.jobs[i]) and not self.jobs[i].certify]
            prior = sum(self._prior.get(j, 0.0) for j in done)
            if done and prior > 0:
                return sum(self._seconds[j] for j in done) / prior
        return 1.0

    def _spread(self, jobs: list[Job]) -> float:
        return sum(self.estimate(j) for j in jobs) / min(self.workers, max(len(jobs), 1))

    def total_s(self) -> float:
        """Estimated wall time of the whole run (before any job finished: the pilot's figures)."""
        return self._spread(self.jobs)

    def finish(self, index: int, result: JobResult) -> None:
        self.done.add(index)
        self._seconds[self.jobs[index]] = result.job_s
        self._measured[(result.job.label, result.job.mode)].append(result.job_s)
        self._by_agent[result.job.label].append(result.job_s)

    def remaining_s(self) -> float:
        return self._spread([j for i, j in enumerate(self.jobs) if i not in self.done])

    def by_agent(self) -> dict[str, tuple[int, float]]:
        """Per agent: (jobs, estimated seconds per job)."""
        out: dict[str, tuple[int, float]] = {}
        for a in dict.fromkeys(j.label for j in self.jobs):
            mine = [j for j in self.jobs if j.label == a]
            out[a] = (len(mine), sum(self.estimate(j) for j in mine) / len(mine))
        return out


__all__ = ["GP_HISTORY_OFFSET", "HOURS_WARNING_S", "Eta", "Rate", "format_duration", "pilot", "pilot_budget", "units"]
