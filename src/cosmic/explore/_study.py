"""The study loop: ask the agent, evaluate, tell, store; resumable and reproducible."""

from __future__ import annotations

import contextlib
import enum
import gc
import math
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import cosmic
from cosmic.agents import BaseAgent, make_agent
from cosmic.errors import ConfigError, StudyError
from cosmic.explore._objective import Evaluation, Evaluator
from cosmic.explore._records import trial_rows
from cosmic.explore._storage import StudyStore, TrialRow, sqlite_path, storage_url
from cosmic.explore._trials import check_space, figures, space_fingerprint

FLUSH_TRIALS = 512
FLUSH_S = 1.0
GC_EVERY_S = 5.0
"""During a study the cyclic garbage collector's young generations are collected on this period instead of whenever
allocations pile up."""


@dataclass
class Progress:
    """Passed to the progress callback after every batch."""

    done: int
    budget: int
    best: float | None
    elapsed_s: float
    new: int


@dataclass
class StudySummary:
    """What a study found. ``to_dict()`` is the JSON `cosmic explore --json` prints."""

    study_name: str
    storage: str | None
    agent: str
    hyper: dict[str, Any]
    seed: int | None
    batch: int
    space_name: str | None
    objectives: list[tuple[str, str]]
    evaluations: int
    new_evaluations: int
    wall_s: float
    stopped: str
    complete: bool
    counts: dict[str, int]
    values: list[tuple[float, ...] | None]
    trace: list[float | None]
    best_index: int | None = None
    best_values: tuple[float, ...] | None = None
    best_point: list[int] | None = None
    best_knobs: dict[str, Any] | None = None
    best_config: dict[str, Any] | None = None
    best_result: dict[str, Any] | None = None
    pareto: list[int] = field(default_factory=list)
    timings_s: dict[str, float] = field(default_factory=dict)
    certificate: dict[str, Any] | None = None
    """From an agent that proves bounds (``bnb``): ``certified``, ``lower_bound``, ``gap_pct`` and its counts."""

    @property
    def certified(self) -> bool:
        """Whether the best is proven optimal: the space was enumerated, or a certifying agent closed its gap."""
        if self.certificate is not None:
            return bool(self.certificate.get("certified"))
        return self.complete and len(self.objectives) == 1

    @property
    def gap_pct(self) -> float | None:
        """Proven gap of the best to the optimum, % of the lower bound (0 when certified; None when unknown)."""
        if self.certificate is not None:
            return self.certificate.get("gap_pct")
        return 0.0 if self.certified and self.best_values is not None else None

    @property
    def lower_bound(self) -> float | None:
        """A proven lower bound of the (first, minimised) objective over the space, when one is known."""
        if self.certificate is not None:
            return self.certificate.get("lower_bound")
        return self.best_objective if self.certified else None

    @property
    def best_objective(self) -> float | None:
        return None if self.best_values is None else self.best_values[0]

    @property
    def evals_per_s(self) -> float:
        return self.new_evaluations / self.wall_s if self.wall_s > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "study": self.study_name,
            "storage": self.storage,
            "agent": self.agent,
            "hyper": self.hyper,
            "seed": self.seed,
            "space": self.space_name,
            "objectives": [{"name": n, "direction": d} for n, d in self.objectives],
            "best_objective": self.best_objective,
            "certified": self.certified,
            "gap_pct": self.gap_pct,
            "lower_bound": self.lower_bound,
            "best_values": list(self.best_values) if self.best_values is not None else None,
            "best_trial": self.best_index,
            "best_point": self.best_point,
            "best_knobs": self.best_knobs,
            "best_config": self.best_config,
            "best_result": self.best_result,
            "evaluations": self.evaluations,
            "new_evaluations": self.new_evaluations,
            "wall_s": self.wall_s,
            "evals_per_s": self.evals_per_s,
            "stopped": self.stopped,
            "complete": self.complete,
            "counts": self.counts,
            "pareto_trials": self.pareto,
            "timings_s": self.timings_s,
            "certificate": self.certificate,
        }


def jsonable(v: Any) -> Any:
    """Knob values (enums, tuples, numpy scalars) as plain JSON values."""
    t = type(v)
    if t is str or t is int or t is bool or v is None:  # the common cases first (exact types: same result)
        return v
    if t is float:
        return v if math.isfinite(v) else str(v)
    if t is list:
        return [jsonable(x) for x in v]
    if isinstance(v, enum.Enum):
        return v.value
    if isinstance(v, dict):
        return {str(k): jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [jsonable(x) for x in v]
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    return v


def pareto_front(values: Sequence[tuple[float, ...] | None], signs: np.ndarray) -> list[int]:
    """Indices of the non-dominated feasible values (all objectives turned into minimisation by `signs`); trials
    with equal values are all kept, as Optuna's ``Study.best_trials`` does."""
    idx = [i for i, v in enumerate(values) if v is not None]
    if not idx:
        return []
    F = np.array([values[i] for i in idx], dtype=float) * signs
    order = np.lexsort(F.T[::-1])
    front: list[int] = []
    kept = np.zeros((0, F.shape[1]))
    for j in order:
        f = F[j]
        if len(kept) and np.any(np.all(kept <= f, axis=1) & np.any(kept < f, axis=1)):
            continue
        front.append(idx[j])
        kept = np.vstack([kept, f])
    return sorted(front)


def _space_info(space: Any) -> dict[str, Any]:
    return {
        "name": getattr(space, "name", None),
        "dim_names": list(space.dim_names),
        "cardinalities": [int(c) for c in space.cardinalities],
        "objectives": [[o.name, o.direction] for o in space.objectives],
        "memory_fit": bool(getattr(space, "memory_fit", True)),
        "fingerprint": space_fingerprint(space),
    }


def run_study(
    space: Any,
    agent: str | BaseAgent | None,
    *,
    budget: int,
    storage: str | Path | None = None,
    study_name: str | None = None,
    time_limit_s: float | None = None,
    seed: int | None = None,
    resume: bool = False,
    batch: int | None = None,
    hyper: dict[str, Any] | None = None,
    persist: bool = True,
    worker: bool = False,
    runs_dir: str | Path = "runs",
    progress: Callable[[Progress], None] | None = None,
) -> StudySummary:
    """Search `space` with `agent` for `budget` evaluations in total, storing every evaluation as a trial.

    Args:
        space: a ``cosmic.psa.Space``.
        agent: an agent name (``"ga"``; built with `seed` and `hyper`) or an agent instance; ``None`` with `resume`
            reuses the stored study's agent (then `study_name` is needed).
        budget: evaluations the study should hold when done (a resumed study counts its stored trials).
        storage: a SQLAlchemy URL or a SQLite file path; default ``runs/<study>.db``.
        study_name: default ``<space name>-<agent>-s<seed>``.
        time_limit_s: stop asking after this many seconds (the batch in flight finishes and is stored).
        seed: makes the run reproducible: the same seed gives the same sequence of points.
        resume: continue an existing study (its agent, hyper-parameters and seed are reused); without it an
            existing study of that name is an error.
        batch: points per ask (default: the agent's preferred batch, clamped to its maximum).
        hyper: agent hyper-parameters (when `agent` is a name).
        persist: ``False`` keeps nothing on disk (used by the exhaustive benchmark).
        worker: join the study as one of several concurrent writers: it is created if missing (whoever comes
            first creates it), else opened as with `resume`; `budget` is then the number of evaluations *this*
            process adds, and the seed is not taken from the study (give every worker its own). The agent is
            rebuilt from the trials stored when the worker starts; other workers' later trials are not seen.
            Each trial records its writer as the user attribute ``worker`` (``host:pid``).
        runs_dir: where default SQLite files go.
        progress: called after every batch.

    Raises:
        StudyError: the study exists (without `resume`), is missing (with `resume`), belongs to another space or
            agent, or the storage cannot be opened.
    """
    if budget < 1:
        raise ConfigError(f"budget must be >= 1, got {budget}")
    info = _space_info(space)
    hyper = dict(hyper or {})
    if agent is None and not resume:
        raise ConfigError("an agent is needed to start a study (only --resume reuses the stored one)")
    agent_name = None if agent is None else (agent if isinstance(agent, str) else type(agent).name)
    name = study_name or f"{info['name'] or 'space'}-{agent_name}-s{seed if seed is not None else 'none'}"
    if agent_name is None and study_name is None:
        raise ConfigError("resuming without an agent needs the study's name")
    url: str | None = None
    ag: BaseAgent | None = None
    built_with: tuple[int | None, dict[str, Any]] | None = None
    if persist:
        url = storage_url(storage, name, runs_dir)
        path = sqlite_path(url)
        creates = not resume and (not worker or path is None or not path.is_file())
        if creates:  # check the agent (name, extras, hyper-parameters) before any file exists
            ag = _make(agent, space, seed, hyper)
            built_with = (seed, dict(hyper))
    elif resume or worker:
        raise StudyError("resume and worker need a stored study (persist=True)")
    store, resume, seed, hyper, agent_name = _open_store(url, name, info, agent_name, seed, hyper, resume=resume,
                                                         worker=worker, user_hyper=bool(hyper))
    assert agent_name is not None
    try:
        if ag is None or built_with != (seed, hyper):  # a resumed or joined study fixes the seed or hyper
            ag = _make(agent or agent_name, space, seed, hyper)
        b = _batch_size(ag, batch)
        if store is not None:
            store.set_dimensions(info["dim_names"], info["cardinalities"])
        if store is not None and not resume:
            resume = _create(store, info, agent_name, ag, seed, b, budget, worker)
    except BaseException:
        if store is not None:
            store.close()
        raise
    hyper = ag.hyperparameters()
    stored_counts = {"ok": 0, "memory": 0, "rejected": 0}

    signs = np.array([1.0 if d == "minimize" else -1.0 for _, d in info["objectives"]])
    values: list[tuple[float, ...] | None] = []
    trace: list[float | None] = []
    best_i: int | None = None
    best_loss = math.inf
    best_eval: Evaluation | None = None
    hist_ids: np.ndarray | None = None
    if store is not None and resume:
        hist = store.history()
        hist_ids = hist.trial_ids
        values = list(hist.values)
        for v, vi in zip(values, hist.violations, strict=True):
            stored_counts["ok" if v is not None else ("rejected" if math.isinf(vi) else "memory")] += 1
        for i, v in enumerate(values):
            if v is not None and signs[0] * v[0] < best_loss:
                best_loss, best_i = signs[0] * v[0], i
            trace.append(None if best_i is None else values[best_i][0])  # type: ignore[index]
        if len(hist):
            ag.rebuild(hist.points, hist.values, hist.violations.tolist())
    n_stored = len(values)
    target = n_stored + budget if worker else budget
    worker_tag = f"{socket.gethostname()}:{os.getpid()}" if worker else None

    evaluator = Evaluator(space, time_unfit=ag.times_unfit_points)
    wants_features = ag.wants_features
    pending: list[TrialRow] = []
    t0 = time.perf_counter()
    last_flush = t0
    done = n_stored
    stopped = "budget"
    complete = False

    tm = {"ask": 0.0, "evaluate": 0.0, "tell": 0.0, "record": 0.0, "store": 0.0}

    def flush() -> None:
        nonlocal pending, last_flush
        t = time.perf_counter()
        with _sigint_deferred():  # Ctrl-C during a write takes effect after it: a write is never cut in half
            if store is not None and pending:
                store.write(pending)
            pending = []
        last_flush = time.perf_counter()
        tm["store"] += last_flush - t

    # The simulator and the evaluations create no reference cycles (reference counting frees them), but the
    # collector's automatic passes re-scan the live evaluations and the simulator's memos over and over: about a
    # tenth of an exhaustive run. Instead the young generations (where an agent's fresh cycles are) are collected
    # every GC_EVERY_S; a full pass over the memos (~0.3 s each) waits until the study ends and the collector is
    # back on its own schedule.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    last_gc = t0
    finished = False
    try:
        while done < target:
            if time_limit_s is not None and time.perf_counter() - t0 >= time_limit_s:
                stopped = "time_limit"
                break
            n = min(b, target - done)
            t1 = time.perf_counter()
            pts = np.asarray(ag.ask(n), dtype=np.int64).reshape(-1, len(info["cardinalities"]))
            t2 = time.perf_counter()
            tm["ask"] += t2 - t1
            if len(pts) == 0:
                stopped, complete = "exhausted", True
                break
            eb = evaluator.evaluate_batch(pts)
            t3 = time.perf_counter()
            tm["evaluate"] += t3 - t2
            vals = eb.values_list()
            viol = eb.violation.tolist()
            if wants_features:
                ag.tell(pts, vals, violations=viol, features=list(eb.features()))  # type: ignore[call-arg]
            else:
                ag.tell(pts, vals, violations=viol)
            t4 = time.perf_counter()
            tm["tell"] += t4 - t3
            best_loss, best_i, best_eval = _track_best(eb, signs[0], best_loss, best_i, best_eval, len(values),
                                                       trace)
            values.extend(vals)
            if store is not None:
                rows = trial_rows(space, eb, _row)
                if worker_tag is not None:
                    for row in rows:
                        row.attrs["worker"] = worker_tag
                pending.extend(rows)
            done += len(pts)
            now = time.perf_counter()
            tm["record"] += now - t4
            if len(pending) >= FLUSH_TRIALS or now - last_flush >= FLUSH_S:
                flush()
            if gc_was_enabled and now - last_gc >= GC_EVERY_S:
                gc.collect(1)
                last_gc = time.perf_counter()
            if progress is not None:
                progress(Progress(done, target, None if best_i is None else values[best_i][0],  # type: ignore[index]
                                  now - t0, done - n_stored))
        if not complete and ag.exhausted:
            complete = True
        finished = True
    finally:
        if gc_was_enabled:
            gc.enable()
        flush()  # also on Ctrl-C: what was evaluated is kept
        ag.close()
        if not finished and store is not None:
            store.close()
    wall = time.perf_counter() - t0

    counts = {k: stored_counts.get(k, 0) + evaluator.counts[k] for k in ("ok", "memory", "rejected")}
    if store is not None and not worker:  # workers' counts are partial (and would race on the attribute)
        store.set_attr("cosmic_progress", {"counts": counts, "evaluations": done, "complete": complete})
    summary = StudySummary(
        study_name=name, storage=url, agent=agent_name, hyper=jsonable(hyper), seed=seed, batch=b,
        space_name=info["name"], objectives=[(n_, d) for n_, d in info["objectives"]], evaluations=done,
        new_evaluations=done - n_stored, wall_s=wall, stopped=stopped, complete=complete, counts=counts,
        values=values, trace=trace, timings_s={k: round(v, 4) for k, v in tm.items()},
    )
    if best_i is not None:
        summary.best_index = best_i
        summary.best_values = values[best_i]
        if best_eval is not None and best_i >= n_stored:
            summary.best_point = best_eval.point.tolist()
            summary.best_knobs = jsonable(space.knobs(best_eval.point))
            summary.best_config = space.decode(best_eval.point).to_yaml_dict()  # rebuilt as a stored trial is
            summary.best_result = None if best_eval.result is None else jsonable(best_eval.result.to_dict())
        elif store is not None and hist_ids is not None:
            t = store.trial(int(hist.numbers[best_i]))
            summary.best_point = t.point.tolist()
            summary.best_knobs = t.knobs
            summary.best_config = t.config(space).to_yaml_dict()
            summary.best_result = t.result_dict()
    cert = getattr(ag, "certificate", None)
    if callable(cert):
        summary.certificate = jsonable(cert())
    if len(signs) > 1:
        summary.pareto = pareto_front(values, signs)
    if store is not None:
        store.close()
    return summary


def _make(agent: str | BaseAgent | None, space: Any, seed: int | None, hyper: dict[str, Any]) -> BaseAgent:
    if isinstance(agent, BaseAgent):
        return agent
    assert agent is not None
    return make_agent(agent, space, seed=seed, **hyper)


def _batch_size(ag: BaseAgent, batch: int | None) -> int:
    b = int(batch or type(ag).default_batch)
    if b < 1:
        raise ConfigError(f"batch must be >= 1, got {b}")
    max_b = type(ag).max_batch
    return b if max_b is None else min(b, max_b)


def _open_store(url: str | None, name: str, info: dict[str, Any], agent_name: str | None, seed: int | None,
                hyper: dict[str, Any], *, resume: bool, worker: bool, user_hyper: bool
                ) -> tuple[StudyStore | None, bool, int | None, dict[str, Any], str | None]:
    """Open the study's storage (creating a SQLite file only when a study is started) and read what a resumed or
    joined study fixes: its agent (when none is given), seed and hyper-parameters."""
    if url is None:
        return None, resume, seed, hyper, agent_name
    store = StudyStore(url, name, create=not resume)
    try:
        attrs: dict[str, Any] | None = None
        if worker:
            resume = store.exists()  # join it, or create it (losing a creation race joins)
            if resume:
                attrs = _open_when_ready(store)
        elif resume:
            attrs = store.open()
            if seed is None:
                seed = attrs.get("seed")
        elif store.exists():
            raise StudyError(
                f"study {name!r} already exists in {url}; pass --resume to continue it or choose another --study"
            )
        if attrs is not None:
            agent_name = agent_name or attrs.get("agent")
            _check_same(attrs, info, str(agent_name), name, url)
            if not user_hyper:
                hyper = dict(attrs.get("hyper") or {})
    except BaseException:
        store.close()
        raise
    return store, resume, seed, hyper, agent_name


def _create(store: StudyStore, info: dict[str, Any], agent_name: str, ag: BaseAgent, seed: int | None, b: int,
            budget: int, worker: bool) -> bool:
    """Create the study (or, for a worker that lost the creation race, join it); returns whether it was joined."""
    attrs = {"version": cosmic.__version__, "agent": agent_name, "hyper": jsonable(ag.hyperparameters()),
             "seed": seed, "batch": b, "budget": budget, "space": info}
    if worker:
        attrs["workers"] = True
    try:
        store.create([d for _, d in info["objectives"]], attrs)
    except StudyError:
        if not worker:
            raise
        _check_same(_open_when_ready(store), info, agent_name, store.study_name, store.url)
        return True
    return False


def _track_best(eb: Any, sign: float, best_loss: float, best_i: int | None, best_eval: Evaluation | None,
                offset: int, trace: list[float | None]) -> tuple[float, int | None, Evaluation | None]:
    """Update the incumbent (the first strictly better trial of the batch) and extend `trace` with the best value
    after each trial of the batch, as columns (only the new incumbent is materialised)."""
    loss = sign * eb.values[:, 0]
    loss = np.where(np.isnan(loss), math.inf, loss)
    prev = best_loss
    if len(loss):
        j = int(np.argmin(loss))
        if loss[j] < best_loss:
            best_loss, best_i, best_eval = float(loss[j]), offset + j, eb.evaluation(j)
    running = np.minimum.accumulate(np.concatenate([[prev], loss]))[1:] * sign
    if np.isinf(running).any():
        trace.extend([None if r in (math.inf, -math.inf) else r for r in running.tolist()])
    else:  # the common case once a feasible point is known: the values as they are
        trace.extend(running.tolist())
    return best_loss, best_i, best_eval


def _row(space: Any, e: Evaluation) -> TrialRow:
    """What a trial stores: knobs, status and the result's figures; no configuration (``space.decode(point)``
    rebuilds it, see `cosmic.explore._trials`)."""
    attrs: dict[str, Any] = {"knobs": jsonable(space.knobs(e.point)), "status": e.status}
    if e.result is not None:
        attrs["figures"] = e.result.figures() if hasattr(e.result, "figures") else figures(e.result)
    if e.raw is not None and e.values is None:
        attrs["unconstrained_values"] = list(e.raw)
    return TrialRow(point=e.point, values=e.values, violation=e.violation, reason=e.reason, attrs=attrs)


def _open_when_ready(store: StudyStore, wait_s: float = 10.0) -> dict[str, Any]:
    """Open a study another worker may be creating right now (the study row is written before its attributes)."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            return store.open()
        except StudyError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.05)


def _check_same(attrs: dict[str, Any], info: dict[str, Any], agent: str, name: str, url: str) -> None:
    check_space(attrs.get("space") or {}, info, name, url)
    if attrs.get("agent") != agent:
        raise StudyError(
            f"study {name!r} in {url} was run with agent {attrs.get('agent')!r}, not {agent!r}; resume it "
            f"without --agent (its agent is reused) or choose another --study"
        )


@contextlib.contextmanager
def _sigint_deferred() -> Iterator[None]:
    """Hold a Ctrl-C (SIGINT) that arrives inside the block and raise it as KeyboardInterrupt when the block ends
    (main thread only: elsewhere signals are not delivered to Python)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    got: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, _frame: got.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous if previous is not None else signal.default_int_handler)
    if got:
        raise KeyboardInterrupt
