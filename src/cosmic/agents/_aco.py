"""`aco`: ant colony optimisation over the knob graph (one layer per coordinate, one node per value)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from cosmic.agents._base import BaseAgent, Value, key
from cosmic.errors import ConfigError

_TRIES = 16


class AntColonyAgent(BaseAgent):
    """Ant colony system (Dorigo and Gambardella 1997) with max-min pheromone bounds (Stuetzle and Hoos 2000).

    The knob graph has one layer per coordinate and one node per value; an ant walks the layers in order. At each
    layer it takes the value with the most pheromone with probability ``greediness`` and otherwise samples a value in
    proportion to the pheromone. After each colony of ``ants`` is told, pheromone evaporates by ``evaporation`` and the
    iteration-best and best-so-far ants deposit on the values they chose; pheromone stays within [1/(2 card), 1] so
    no value is ever ruled out. COSMIC (via DeepSwarm) used 8 to 32 ants and greediness/evaporation 0.25 to 0.75.

    An ant whose path breaks a static constraint or repeats an earlier point walks again (up to 16 times), then is
    replaced by a random feasible neighbour of the best-so-far point. Infeasible results (memory, simulator
    rejection) deposit no pheromone: their values simply evaporate. Resuming replays the history colony by colony.

    Args:
        ants: ants per colony (default 16).
        greediness: probability of taking the strongest value at a layer (default 0.5).
        evaporation: fraction of pheromone lost per colony (default 0.25).
    """

    name: ClassVar[str] = "aco"
    repeats_points: ClassVar[bool] = False
    default_batch: ClassVar[int] = 16

    def __init__(
        self,
        space: Any,
        *,
        seed: int | None = None,
        ants: int = 16,
        greediness: float = 0.5,
        evaporation: float = 0.25,
    ) -> None:
        super().__init__(space, seed=seed)
        if ants < 1:
            raise ConfigError(f"aco: ants must be >= 1, got {ants}")
        if not 0.0 <= greediness <= 1.0 or not 0.0 < evaporation <= 1.0:
            raise ConfigError("aco: greediness must be in [0, 1] and evaporation in (0, 1]")
        self.ants = int(ants)
        self.greediness = float(greediness)
        self.evaporation = float(evaporation)
        self.tau = [np.ones(int(c)) for c in self.cards]
        self.tau_min = [1.0 / (2.0 * max(int(c), 1)) for c in self.cards]
        self.best: np.ndarray | None = None
        self.best_loss = np.inf
        self.seen: set[bytes] = set()
        self._colony_pts: list[np.ndarray] = []
        self._colony_loss: list[float] = []

    def hyperparameters(self) -> dict[str, Any]:
        return {"ants": self.ants, "greediness": self.greediness, "evaporation": self.evaporation}

    def _walk(self) -> np.ndarray:
        p = np.empty(self.d, dtype=np.int64)
        greedy = self.rng.random(self.d) < self.greediness
        u = self.rng.random(self.d)
        for i, t in enumerate(self.tau):
            if greedy[i]:
                top = np.flatnonzero(t == t.max())
                p[i] = top[0] if len(top) == 1 else top[int(u[i] * len(top))]
            else:
                c = np.cumsum(t)
                p[i] = min(int(np.searchsorted(c, u[i] * c[-1], side="right")), len(t) - 1)
        return p

    def ask(self, n: int = 1) -> np.ndarray:
        out = np.empty((n, self.d), dtype=np.int64)
        for j in range(n):
            p = None
            for _ in range(_TRIES):
                q = self._walk()
                if key(q) not in self.seen and self.space.is_feasible(q):
                    p = q
                    break
            if p is None:
                p = self._fallback()
            self.seen.add(key(p))
            out[j] = p
        return out

    def _fallback(self) -> np.ndarray:
        if self.best is not None:
            fresh = [np.asarray(q, dtype=np.int64) for q in self.space.neighbours(self.best)]
            fresh = [q for q in fresh if key(q) not in self.seen]
            if fresh:
                return fresh[int(self.rng.integers(len(fresh)))]
        for _ in range(_TRIES):  # a random feasible point, new if one can be found
            q = np.asarray(self.space.sample(self.rng, 1), dtype=np.int64)[0]
            if key(q) not in self.seen:
                break
        return q

    def tell(
        self, points: np.ndarray, values: Sequence[Value | None], *, violations: Sequence[float] | None = None
    ) -> None:
        pts = self.check_points(points, len(values))
        loss = self.losses(values)
        for p, lo in zip(pts, loss, strict=True):
            self.seen.add(key(p))
            self._colony_pts.append(p)
            self._colony_loss.append(float(lo))
            if len(self._colony_pts) >= self.ants:
                self._update()

    def _update(self) -> None:
        losses = np.array(self._colony_loss)
        pts = self._colony_pts
        self._colony_pts, self._colony_loss = [], []
        rho = self.evaporation
        for t in self.tau:
            t *= 1.0 - rho
        if np.isfinite(losses).any():
            i = int(np.argmin(losses))
            if losses[i] < self.best_loss:
                self.best_loss = float(losses[i])
                self.best = pts[i].copy()
            self._deposit(pts[i], 0.5 * rho)
        if self.best is not None:
            self._deposit(self.best, 0.5 * rho if np.isfinite(losses).any() else rho)
        for t, lo in zip(self.tau, self.tau_min, strict=True):
            np.clip(t, lo, 1.0, out=t)

    def _deposit(self, p: np.ndarray, amount: float) -> None:
        for i, t in enumerate(self.tau):
            t[p[i]] += amount
