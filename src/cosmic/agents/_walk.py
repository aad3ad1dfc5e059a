"""`walk`: a random walk over the PSA's neighbour graph (one knob changes per step), Metropolis-filtered."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from cosmic.agents._base import BaseAgent, Value, key
from cosmic.errors import ConfigError, CosmicError

_MAX_FREE_STEPS = 1000


class WalkAgent(BaseAgent):
    """A walker that moves from its current point to a uniformly chosen feasible neighbour (``space.neighbours``).

    Each proposed move is evaluated; it is accepted when it is no worse, or otherwise with the Metropolis probability
    ``exp(-d / temperature)`` where ``d`` is the relative worsening of the objective. ``temperature=inf`` is the plain
    unbiased random walk; the default 0.02 lets it wander across plateaus while drifting downhill.

    Infeasible points (``None``: over memory or rejected by the simulator) are never accepted: the walker stays
    where it is and proposes another neighbour. Evaluations are remembered: a step onto a point already evaluated
    is taken from memory (same acceptance rule, no budget spent), so the walk never asks for a point twice. A
    walker whose neighbourhood is exhausted restarts from a uniform sample. With a batch ask of ``n`` it proposes
    ``n`` distinct unevaluated neighbours of its current point and, on tell, considers them in order. Resuming
    replays the stored history through the same acceptance rule.

    Args:
        temperature: Metropolis temperature on the relative worsening (``inf`` = unbiased walk).
        start: ``"base"`` starts at the PSA's base configuration (when it lies inside the searched domains, else at
            a uniform sample), ``"random"`` at a uniform sample.
    """

    name: ClassVar[str] = "walk"
    repeats_points: ClassVar[bool] = False
    default_batch: ClassVar[int] = 1

    def __init__(self, space: Any, *, seed: int | None = None, temperature: float = 0.02, start: str = "base") -> None:
        super().__init__(space, seed=seed)
        if not temperature > 0:
            raise ConfigError(f"walk: temperature must be > 0 (inf for an unbiased walk), got {temperature}")
        if start not in ("base", "random"):
            raise ConfigError(f"walk: start must be 'base' or 'random', got {start!r}")
        self.temperature = float(temperature)
        self.start = start
        self.current: np.ndarray | None = None
        self.current_loss = math.inf
        self.n_moves = 0
        self.known: dict[bytes, float] = {}  # evaluated points and their losses (inf: infeasible)

    def hyperparameters(self) -> dict[str, Any]:
        return {"temperature": self.temperature, "start": self.start}

    def _start_point(self) -> np.ndarray:
        if self.start == "base":
            try:
                base = np.asarray(self.space.encode(self.space.base), dtype=np.int64)
            except CosmicError:  # the base configuration lies outside the searched domains
                base = None
            if base is not None and self.space.is_feasible(base):
                return base
        return np.asarray(self.space.sample(self.rng, 1), dtype=np.int64)[0]

    def ask(self, n: int = 1) -> np.ndarray:
        out: list[np.ndarray] = []
        if self.current is None:
            # nothing accepted yet: the first proposal is the starting point itself
            p = self._start_point()
            if key(p) not in self.known:
                out.append(p)
        for _ in range(_MAX_FREE_STEPS):
            if len(out) >= n or self.current is None:
                break
            nbrs = self.space.neighbours(self.current)
            order = self.rng.permutation(len(nbrs))
            fresh = [nbrs[j] for j in order if key(nbrs[j]) not in self.known and
                     all(key(nbrs[j]) != key(o) for o in out)]
            if fresh:
                out.extend(np.asarray(q, dtype=np.int64) for q in fresh[: n - len(out)])
                break
            if not nbrs:
                break
            # every neighbour is known: take one step through memory (no evaluation) and look again
            q = np.asarray(nbrs[order[0]], dtype=np.int64)
            loss = self.known[key(q)]
            if math.isfinite(loss) and self._accept(loss):
                self.current, self.current_loss = q, loss
        while len(out) < n:  # stranded, or the neighbourhood is exhausted: restart from a fresh uniform sample
            p = np.asarray(self.space.sample(self.rng, 1), dtype=np.int64)[0]
            if key(p) not in self.known or len(self.known) >= self.space.size_feasible:
                out.append(p)
        return np.stack(out)

    def tell(
        self, points: np.ndarray, values: Sequence[Value | None], *, violations: Sequence[float] | None = None
    ) -> None:
        pts = self.check_points(points, len(values))
        for p, v in zip(pts, values, strict=True):
            loss = self.loss(v)
            self.known[key(p)] = loss
            if v is None:
                continue
            if self.current is None or self._accept(loss):
                self.current = p.copy()
                self.current_loss = loss
                self.n_moves += 1

    def _accept(self, loss: float) -> bool:
        if loss <= self.current_loss:
            return True
        if math.isinf(self.temperature):
            return True
        scale = abs(self.current_loss) or 1.0
        worse = (loss - self.current_loss) / scale
        return bool(self.rng.random() < math.exp(-worse / self.temperature))
