"""`ga`: a steady-state genetic algorithm whose children always satisfy the PSA's static constraints."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from cosmic.agents._base import BaseAgent, Value, key
from cosmic.errors import ConfigError

_TRIES = 16


class GeneticAgent(BaseAgent):
    """Genetic algorithm over the encoded vector (COSMIC/ArchGym used population 32 or 64, mutation 0.01 or 0.05).

    * The first ``population`` asks are uniform feasible samples.
    * A child comes from two parents picked by binary tournaments, uniform crossover (with probability
      ``crossover``, else a copy of the first parent) and per-gene mutation (each coordinate redrawn with probability
      ``mutation``). A child that breaks a static constraint or repeats an earlier point is re-drawn (up to 16 times),
      then replaced by a random feasible neighbour of its first parent: every child asked is feasible and new.
    * Survivors: the told children join the population and the best ``population`` stay (mu + lambda).
    * Random immigrants: each later ask is, with probability ``immigrants``, a fresh uniform feasible sample instead
      of a child (Grefenstette 1992, "Genetic algorithms for changing environments"). Where the good designs need
      several knobs changed at once (a layout and the weight sharding that lets it fit), mutation of a converged
      population rarely gets there; the immigrants keep the search at least as broad as random sampling.

    Infeasible results use Deb's feasibility rules (a constrained tournament): a feasible point beats an infeasible
    one, and of two infeasible points the one with the smaller violation (memory overshoot) wins. So an out-of-memory
    child still ranks, below every feasible one, and steers the population back towards fitting designs.
    Resuming tells the stored history at once: the survivors are the best ``population`` points of the study.

    Args:
        population: individuals kept (default 32).
        mutation: probability that each coordinate of a child is redrawn (default 0.05).
        crossover: probability of uniform crossover, else the child copies its first parent (default 0.9).
        tournament: tournament size for parent selection (default 2).
        immigrants: fraction of later asks that are fresh random samples (default 0.1; 0 for a plain GA).
    """

    name: ClassVar[str] = "ga"
    repeats_points: ClassVar[bool] = False
    default_batch: ClassVar[int] = 32

    def __init__(
        self,
        space: Any,
        *,
        seed: int | None = None,
        population: int = 32,
        mutation: float = 0.05,
        crossover: float = 0.9,
        tournament: int = 2,
        immigrants: float = 0.1,
        polish: float = 0.0,
    ) -> None:
        super().__init__(space, seed=seed)
        if population < 2:
            raise ConfigError(f"ga: population must be >= 2, got {population}")
        if not all(0.0 <= q <= 1.0 for q in (mutation, crossover, immigrants, polish)):
            raise ConfigError(f"{self.name}: mutation, crossover, immigrants and polish are probabilities in [0, 1]")
        if tournament < 1:
            raise ConfigError(f"ga: tournament must be >= 1, got {tournament}")
        self.population = int(population)
        self.mutation = float(mutation)
        self.crossover = float(crossover)
        self.tournament = int(tournament)
        self.immigrants = float(immigrants)
        self.polish = float(polish)
        self._near: list[list[np.ndarray]] | None = None
        self.pop = np.zeros((0, self.d), dtype=np.int64)
        self.rank_keys = np.zeros((0, 2))  # (violation, loss): sort lexicographically, smaller is better
        self._ranks: list[tuple[float, float]] = []  # rank_keys as Python tuples, for the tournaments
        self.seen: set[bytes] = set()
        self.n_asked = 0

    def hyperparameters(self) -> dict[str, Any]:
        return {"population": self.population, "mutation": self.mutation, "crossover": self.crossover,
                "tournament": self.tournament, "immigrants": self.immigrants, "polish": self.polish}

    # ---- ask ---------------------------------------------------------------------------------------------------

    def ask(self, n: int = 1) -> np.ndarray:
        out = np.empty((n, self.d), dtype=np.int64)
        for i in range(n):
            polished = None
            if len(self.pop) >= 2 and self.n_asked >= self.population and self.rng.random() < self.polish:
                polished = self._polished()
            if polished is not None:
                child = polished
            elif len(self.pop) < 2 or self.n_asked < self.population or self.rng.random() < self.immigrants:
                child = self._fresh_sample()
            else:
                child = self._child()
            self.seen.add(key(child))
            out[i] = child
            self.n_asked += 1
        return out

    def _polished(self) -> np.ndarray | None:
        """A one-knob move of the best individual never asked (local polishing), or None when there is none."""
        if self._near is None:
            from cosmic.agents._ils import knob_moves

            self._near = knob_moves(self.space)[0]
        best = self.pop[0]
        if self.rank_keys[0, 0] > 0:  # no feasible individual yet
            return None
        for i in self.rng.permutation(self.d):
            vals = self._near[i][int(best[i])]
            for v in self.rng.permutation(vals) if len(vals) else ():
                c = best.copy()
                c[i] = v
                if key(c) not in self.seen and self.space.is_feasible(c):
                    return c
        return None

    def _fresh_sample(self) -> np.ndarray:
        for _ in range(_TRIES):
            p = np.asarray(self.space.sample(self.rng, 1), dtype=np.int64)[0]
            if key(p) not in self.seen:
                return p
        return p

    def _pick(self) -> np.ndarray:
        idx = self.rng.integers(0, len(self.pop), size=self.tournament)
        best = min(idx.tolist(), key=self._ranks.__getitem__)  # the first of the best, as over rank_keys
        return self.pop[best]

    def _child(self) -> np.ndarray:
        p1 = self._pick()
        for _ in range(_TRIES):
            p2 = self._pick()
            if self.rng.random() < self.crossover:
                mask = self.rng.random(self.d) < 0.5
                c = np.where(mask, p1, p2)
            else:
                c = p1.copy()
            mut = self.rng.random(self.d) < self.mutation
            if mut.any():
                # redraw to a different value in the coordinate's domain
                cards = self.cards[mut]
                shift = self.rng.integers(1, np.maximum(cards, 2))
                c[mut] = (c[mut] + shift) % cards
            if key(c) in self.seen:
                continue
            if self.space.is_feasible(c):
                return c
        # repair: a feasible one-knob neighbour of the first parent that was never asked
        nbrs = [np.asarray(q, dtype=np.int64) for q in self.space.neighbours(p1)]
        fresh = [q for q in nbrs if key(q) not in self.seen]
        if fresh:
            return fresh[int(self.rng.integers(len(fresh)))]
        return self._fresh_sample()

    # ---- tell --------------------------------------------------------------------------------------------------

    def tell(
        self, points: np.ndarray, values: Sequence[Value | None], *, violations: Sequence[float] | None = None
    ) -> None:
        pts = self.check_points(points, len(values))
        if not len(pts):
            return
        viol = self.violation_array(values, violations)
        loss = self.losses(values)
        keys = np.stack([np.where(np.isfinite(loss), 0.0, np.where(viol > 0, viol, math.inf)),
                         np.where(np.isfinite(loss), loss, math.inf)], axis=1)
        for p in pts:
            self.seen.add(key(p))
        pool = np.concatenate([self.pop, pts])
        pool_keys = np.concatenate([self.rank_keys, keys])
        order = np.lexsort((pool_keys[:, 1], pool_keys[:, 0]))[: self.population]
        self.pop = pool[order]
        self.rank_keys = pool_keys[order]
        self._ranks = [(a, b) for a, b in self.rank_keys.tolist()]

    def rebuild(
        self, points: np.ndarray, values: Sequence[Value | None], violations: Sequence[float] | None = None
    ) -> None:
        super().rebuild(points, values, violations)
        self.n_asked = len(np.asarray(points).reshape(-1, self.d))


class MemeticAgent(GeneticAgent):
    """`memetic`: the genetic algorithm with local polishing of its best individual (a memetic algorithm, Moscato
    1989, "On Evolution, Search, Optimization, Genetic Algorithms and Martial Arts"; Krasnogor and Smith 2005).

    Each child is, with probability ``polish``, a one-knob move of the current best individual that was never asked
    (the PSA's knob moves, `cosmic.agents._ils.knob_moves`: one knob of a joint coordinate such as the workload
    group at a time), else a GA child as in `ga`. Polishing walks the incumbent to a local optimum while crossover
    and the immigrants keep the population broad. Same hyper-parameters as `ga`, plus ``polish`` (default 0.5).
    """

    name: ClassVar[str] = "memetic"

    def __init__(self, space: Any, *, seed: int | None = None, population: int = 32, mutation: float = 0.05,
                 crossover: float = 0.9, tournament: int = 2, immigrants: float = 0.1, polish: float = 0.5) -> None:
        super().__init__(space, seed=seed, population=population, mutation=mutation, crossover=crossover,
                         tournament=tournament, immigrants=immigrants, polish=polish)
