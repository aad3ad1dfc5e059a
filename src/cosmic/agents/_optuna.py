"""Optuna's samplers as agents: `tpe`, `bo` (Gaussian process), `cmaes` and `nsga2`.

Each agent keeps a private in-memory Optuna study whose parameters are the PSA's encoded coordinates, one
`IntDistribution(0, card - 1)` per coordinate (PSA domains are sorted, so neighbouring indices are neighbouring
values). The sampler itself is Optuna's, unchanged; this module only translates asks and tells.

Feasibility, as every Optuna agent handles it:

* A proposal that breaks a static PSA constraint is never evaluated. It is told to the private study at once, as a
  trial that violates a constraint (value: the worst loss seen so far; constraint: the number of violated PSA
  constraints), and the sampler is asked again. Samplers with constraint support (tpe, bo, nsga2) learn the
  infeasible region from it; cmaes sees a bad value. After 16 rejected proposals the agent asks a uniform feasible
  sample instead (enqueued in the private study, so the sampler still sees it).
* A proposal equal to a point already evaluated is answered from memory with its known value and re-asked, so the
  budget is never spent twice on one point.
* A point that was evaluated but does not fit in memory is told with the worst loss seen so far and a constraint
  equal to its memory overshoot (tpe, bo, nsga2 model the constraint: Optuna's constrained TPE, constrained GP
  expected improvement, NSGA-II constrained domination). cmaes has no constraint support: it gets the worst loss
  seen so far times (1 + overshoot), a penalty that ranks it below every feasible point.
* A point the simulator rejected outright is told as a failed trial, which Optuna's samplers ignore.

Resuming tells the whole stored history to the private study (`Study.add_trials`) and re-seeds the sampler.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from cosmic.agents._base import BaseAgent, Value, key
from cosmic.errors import ConfigError

_TRIES = 16
_VIOLATION_KEY = "cosmic_violation"


def _optuna() -> Any:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=getattr(optuna.exceptions, "ExperimentalWarning", Warning))
    return optuna


def _violation_of(trial: Any) -> tuple[float]:
    """Optuna < 5 reads constraints through a function of the finished trial."""
    return (float(trial.user_attrs.get(_VIOLATION_KEY, 0.0)),)


def suggest(space: Any, trial: Any) -> np.ndarray:
    """Optuna define-by-run over a ``cosmic.psa.Space``: one ``suggest_int`` per ordered numeric coordinate, one
    ``suggest_categorical`` per other coordinate. The point satisfies the equality constraints (the encoding does);
    check ``space.violations`` for the others."""
    p = np.empty(len(space.cardinalities), dtype=np.int64)
    for i, (name, card) in enumerate(zip(space.dim_names, space.cardinalities, strict=True)):
        if space.coordinate_is_ordered(i):
            p[i] = trial.suggest_int(name, 0, card - 1)
        else:
            p[i] = trial.suggest_categorical(name, list(range(card)))
    return p


class OptunaAgent(BaseAgent):
    """Adapter from an Optuna sampler to the agent contract (subclasses choose the sampler)."""

    name: ClassVar[str] = "optuna"
    repeats_points: ClassVar[bool] = False
    default_batch: ClassVar[int] = 1
    constrained: ClassVar[bool] = True

    def __init__(self, space: Any, *, seed: int | None = None) -> None:
        super().__init__(space, seed=seed)
        self._opt = _optuna()
        self._dists = {
            name: self._opt.distributions.IntDistribution(0, int(c) - 1)
            for name, c in zip(space.dim_names, self.cards, strict=True)
        }
        self._names = list(self._dists)
        self._pending: dict[bytes, list[Any]] = {}
        self._known: dict[bytes, tuple[Value | None, float]] = {}
        self._worst: np.ndarray | None = None  # per-objective worst loss among feasible points
        self._set_constraint = hasattr(self._opt.trial.Trial, "set_constraint")
        self._study = self._new_study(seed)

    # ---- construction ------------------------------------------------------------------------------------------

    def make_sampler(self, seed: int | None, constraints_func: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def _new_study(self, seed: int | None) -> Any:
        cf = _violation_of if self.constrained and not self._set_constraint else None
        sampler = self.make_sampler(seed, cf)
        directions = ["minimize" if s > 0 else "maximize" for s in self.signs]
        return self._opt.create_study(
            storage=self._opt.storages.InMemoryStorage(), sampler=sampler, directions=directions
        )

    # ---- ask ---------------------------------------------------------------------------------------------------

    def ask(self, n: int = 1) -> np.ndarray:
        out = np.empty((n, self.d), dtype=np.int64)
        for j in range(n):
            out[j] = self._ask_one()
        return out

    def _point(self, trial: Any) -> np.ndarray:
        return np.array([trial.params[k] for k in self._names], dtype=np.int64)

    def _ask_one(self) -> np.ndarray:
        for _ in range(_TRIES):
            trial = self._study.ask(self._dists)
            p = self._point(trial)
            k = key(p)
            if k in self._known:
                value, viol = self._known[k]
                self._finish(trial, value, viol)
                continue
            if k in self._pending:
                self._study.tell(trial, state=self._opt.trial.TrialState.FAIL)
                continue
            if not self.space.is_feasible(p):
                self._finish(trial, None, float(len(self.space.violations(p)) or 1), static=True)
                continue
            self._pending.setdefault(k, []).append(trial)
            return p
        for _ in range(_TRIES):
            p = np.asarray(self.space.sample(self.rng, 1), dtype=np.int64)[0]
            if key(p) not in self._known and key(p) not in self._pending:
                break
        self._study.enqueue_trial({k: int(v) for k, v in zip(self._names, p, strict=True)})
        trial = self._study.ask(self._dists)
        p = self._point(trial)
        self._pending.setdefault(key(p), []).append(trial)
        return p

    # ---- tell --------------------------------------------------------------------------------------------------

    def _losses(self, value: Value) -> np.ndarray:
        v = np.atleast_1d(np.asarray(value, dtype=float))
        return self.signs * v

    def _finish(self, trial: Any, value: Value | None, violation: float, *, static: bool = False) -> None:
        """Tell one trial of the private study: a value, a constrained penalty or a failure."""
        TS = self._opt.trial.TrialState
        if value is not None:
            loss = self._losses(value)
            self._worst = loss if self._worst is None else np.maximum(self._worst, loss)
            if self.constrained:
                self._constraint(trial, 0.0)
            self._study.tell(trial, list(self.signs * loss))
            return
        if (math.isinf(violation) and not static) or self._worst is None:
            self._study.tell(trial, state=TS.FAIL)
            return
        if self.constrained:
            self._constraint(trial, violation)
            penalty = self._worst
        else:
            penalty = self._worst + np.abs(self._worst) * violation
        self._study.tell(trial, list(self.signs * penalty))

    def _constraint(self, trial: Any, violation: float) -> None:
        trial.set_user_attr(_VIOLATION_KEY, float(violation))
        if self._set_constraint:
            trial.set_constraint("violation", float(violation))

    def tell(
        self, points: np.ndarray, values: Sequence[Value | None], *, violations: Sequence[float] | None = None
    ) -> None:
        pts = self.check_points(points, len(values))
        viol = self.violation_array(values, violations)
        for p, v, vi in zip(pts, values, viol, strict=True):
            k = key(p)
            self._known[k] = (v, float(vi))
            waiting = self._pending.get(k)
            if waiting:
                trial = waiting.pop(0)
                if not waiting:
                    del self._pending[k]
                self._finish(trial, v, float(vi))

    def rebuild(
        self, points: np.ndarray, values: Sequence[Value | None], violations: Sequence[float] | None = None
    ) -> None:
        pts = np.asarray(points, dtype=np.int64).reshape(-1, self.d)
        seed = None if self.seed is None else int(np.random.SeedSequence([self.seed, len(pts)]).generate_state(1)[0])
        self._study = self._new_study(seed)
        self.rng = np.random.default_rng([self.seed if self.seed is not None else 0, len(pts)])
        if not len(pts):
            return
        # tell through enqueued trials so the sampler sees exactly the stored points
        viol = self.violation_array(values, violations)
        for p, v, vi in zip(pts, values, viol, strict=True):
            self._study.enqueue_trial({k: int(x) for k, x in zip(self._names, p, strict=True)})
            trial = self._study.ask(self._dists)
            self._known[key(p)] = (v, float(vi))
            self._finish(trial, v, float(vi))


class TPEAgent(OptunaAgent):
    """`tpe`: Optuna's tree-structured Parzen estimator (multivariate), constrained, single or multi-objective.

    Args:
        n_startup_trials: uniform trials before the model is used (default 10).
        n_ei_candidates: candidates scored per ask (default 24).
        multivariate: model coordinates jointly (default True).
    """

    name: ClassVar[str] = "tpe"
    multi_objective: ClassVar[bool] = True

    def __init__(
        self,
        space: Any,
        *,
        seed: int | None = None,
        n_startup_trials: int = 10,
        n_ei_candidates: int = 24,
        multivariate: bool = True,
    ) -> None:
        self.n_startup_trials = int(n_startup_trials)
        self.n_ei_candidates = int(n_ei_candidates)
        self.multivariate = bool(multivariate)
        super().__init__(space, seed=seed)

    def hyperparameters(self) -> dict[str, Any]:
        return {"n_startup_trials": self.n_startup_trials, "n_ei_candidates": self.n_ei_candidates,
                "multivariate": self.multivariate}

    def make_sampler(self, seed: int | None, constraints_func: Any) -> Any:
        kw: dict[str, Any] = {"seed": seed, "n_startup_trials": self.n_startup_trials,
                              "n_ei_candidates": self.n_ei_candidates, "multivariate": self.multivariate}
        if constraints_func is not None:
            kw["constraints_func"] = constraints_func
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return self._opt.samplers.TPESampler(**kw)


class GPAgent(OptunaAgent):
    """`bo`: Bayesian optimisation with Optuna's Gaussian-process sampler (needs torch and scipy: extra ``[bo]``).

    Sets torch to one thread (process-wide): an ask then takes about 0.3 to 0.5 s on an 18-coordinate space instead
    of 1 to 5 s with torch's thread pool on a busy machine. A GP's cost grows with the cube of the history;
    ``max_history`` caps the trials the sampler sees: past it, the private study is rebuilt from the best quarter and
    the most recent quarter of that many (default 400), which keeps each ask under a second.

    Args:
        n_startup_trials: uniform trials before the GP is used (default 10).
        max_history: trials the GP is fitted on (default 400).
    """

    name: ClassVar[str] = "bo"
    multi_objective: ClassVar[bool] = True

    def __init__(
        self, space: Any, *, seed: int | None = None, n_startup_trials: int = 10, max_history: int = 400
    ) -> None:
        self.n_startup_trials = int(n_startup_trials)
        if max_history < 2 * n_startup_trials:
            raise ConfigError(f"bo: max_history ({max_history}) must be at least 2 * n_startup_trials")
        self.max_history = int(max_history)
        try:
            import scipy  # noqa: F401
            import torch
        except ImportError as exc:
            raise ConfigError(
                f"agent 'bo' needs {exc.name}: pip install 'cosmic[bo]' (torch and scipy for Optuna's GPSampler)"
            ) from None
        # the GP's small matrices gain nothing from threads; on a busy machine torch's pool makes asks ~5x slower
        torch.set_num_threads(1)
        super().__init__(space, seed=seed)

    def hyperparameters(self) -> dict[str, Any]:
        return {"n_startup_trials": self.n_startup_trials, "max_history": self.max_history}

    def make_sampler(self, seed: int | None, constraints_func: Any) -> Any:
        kw: dict[str, Any] = {"seed": seed, "n_startup_trials": self.n_startup_trials,
                              "deterministic_objective": True}
        if constraints_func is not None:
            kw["constraints_func"] = constraints_func
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return self._opt.samplers.GPSampler(**kw)

    def _ask_one(self) -> np.ndarray:
        self._trim()
        return super()._ask_one()

    def _trim(self) -> None:
        """Keep the private study within `max_history` finished trials: the best half plus the most recent half."""
        TS = self._opt.trial.TrialState
        trials = self._study.get_trials(deepcopy=False)
        done = [t for t in trials if t.state is TS.COMPLETE]
        if len(done) <= self.max_history:
            return
        quarter = max(self.max_history // 4, 1)
        recent = done[-quarter:]
        rest = done[:-quarter]

        def rank(t: Any) -> tuple[float, float]:
            return (float(t.user_attrs.get(_VIOLATION_KEY, 0.0)), float(np.dot(self.signs, t.values)))

        best = sorted(rest, key=rank)[:quarter]
        keep = sorted(best + recent, key=lambda t: t.number)
        study = self._new_study(None if self.seed is None else int(self.rng.integers(2**31)))
        study.add_trials(keep)
        # re-create the trials still waiting for a value, in the new study
        self._study = study
        for k, waiting in list(self._pending.items()):
            fresh = []
            for old in waiting:
                self._study.enqueue_trial(dict(old.params))
                fresh.append(self._study.ask(self._dists))
            self._pending[k] = fresh


class CmaEsAgent(OptunaAgent):
    """`cmaes`: Optuna's CMA-ES sampler over the coordinates as integers (needs the `cmaes` package).

    CMA-ES has no constraint model: infeasible points are told with a penalty (worst loss seen times one plus the
    memory overshoot; static-constraint breaks count one per violated constraint).

    Args:
        sigma0: initial step size in coordinate units (default: a sixth of the widest domain, Optuna's choice).
        popsize: population per generation (default: CMA-ES's 4 + 3 ln d).
        restart_strategy: ``None`` or ``"ipop"``/``"bipop"`` restarts (default ``"ipop"``).
    """

    name: ClassVar[str] = "cmaes"
    constrained: ClassVar[bool] = False

    def __init__(
        self,
        space: Any,
        *,
        seed: int | None = None,
        sigma0: float | None = None,
        popsize: int | None = None,
        restart_strategy: str | None = "ipop",
    ) -> None:
        try:
            import cmaes  # noqa: F401
        except ImportError:
            raise ConfigError("agent 'cmaes' needs the cmaes package: pip install cmaes") from None
        self.sigma0 = sigma0
        self.popsize = popsize
        self.restart_strategy = restart_strategy
        super().__init__(space, seed=seed)

    def hyperparameters(self) -> dict[str, Any]:
        return {"sigma0": self.sigma0, "popsize": self.popsize, "restart_strategy": self.restart_strategy}

    def make_sampler(self, seed: int | None, constraints_func: Any) -> Any:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return self._opt.samplers.CmaEsSampler(
                seed=seed, sigma0=self.sigma0, popsize=self.popsize, restart_strategy=self.restart_strategy,
                warn_independent_sampling=False,
            )

class NSGA2Agent(OptunaAgent):
    """`nsga2`: Optuna's NSGA-II, for several objectives (works with one), constrained domination.

    Args:
        population_size: individuals per generation (default 32).
        mutation_prob: per-coordinate mutation probability (default: Optuna's 1/d).
        crossover_prob: probability of crossover (default 0.9).
    """

    name: ClassVar[str] = "nsga2"
    multi_objective: ClassVar[bool] = True
    default_batch: ClassVar[int] = 32

    def __init__(
        self,
        space: Any,
        *,
        seed: int | None = None,
        population_size: int = 32,
        mutation_prob: float | None = None,
        crossover_prob: float = 0.9,
    ) -> None:
        if population_size < 2:
            raise ConfigError(f"nsga2: population_size must be >= 2, got {population_size}")
        self.population_size = int(population_size)
        self.mutation_prob = mutation_prob
        self.crossover_prob = float(crossover_prob)
        super().__init__(space, seed=seed)

    def hyperparameters(self) -> dict[str, Any]:
        return {"population_size": self.population_size, "mutation_prob": self.mutation_prob,
                "crossover_prob": self.crossover_prob}

    def make_sampler(self, seed: int | None, constraints_func: Any) -> Any:
        kw: dict[str, Any] = {"seed": seed, "population_size": self.population_size,
                              "mutation_prob": self.mutation_prob, "crossover_prob": self.crossover_prob}
        if constraints_func is not None:
            kw["constraints_func"] = constraints_func
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return self._opt.samplers.NSGAIISampler(**kw)
