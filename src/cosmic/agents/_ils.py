"""`ils`: iterated local search over the PSA's knob structure (stack by stack descent, kicks, restarts)."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar

import numpy as np

from cosmic.agents._base import BaseAgent, Value, key
from cosmic.errors import ConfigError
from cosmic.psa._common import plain
from cosmic.psa.knobs import KNOBS

_STACK_ORDER = ("workload", "compute", "collective", "network")


def knob_moves(space: Any) -> tuple[list[list[np.ndarray]], list[list[np.ndarray]]]:
    """Per coordinate and value, the values one knob away (``near``) and two knobs away (``far``).

    A joint coordinate (the workload group ``tp,pp,sp,...``, the NPU tuple) holds several knobs; a move changes one
    of them (derived knobs follow), or two when no single change stays in the coordinate (the NPU tuple keeps its
    product). A plain coordinate is one knob: every other value is one move away."""
    near: list[list[np.ndarray]] = []
    far: list[list[np.ndarray]] = []
    for c in space._coords:
        keys = sorted({(k, d if d is not None else -1) for a in c.assign for k, d, _ in a})
        table = [{(k, d if d is not None else -1): repr(plain(v)) for k, d, v in a} for a in c.assign]
        labels = np.array([[row.get(k, "") for k in keys] for row in table])
        codes = np.stack([np.unique(labels[:, j], return_inverse=True)[1].reshape(-1) for j in range(len(keys))],
                         axis=1)
        dist = (codes[:, None, :] != codes[None, :, :]).sum(-1)
        one = [np.flatnonzero(dist[v] == 1) for v in range(c.card)]
        two = [np.flatnonzero(dist[v] == 2) for v in range(c.card)]
        near.append([o if len(o) else t for o, t in zip(one, two, strict=True)])
        far.append([t if len(o) else np.zeros(0, dtype=np.int64) for o, t in zip(one, two, strict=True)])
    return near, far


class IteratedLocalSearchAgent(BaseAgent):
    """Iterated local search (Lourenço, Martin and Stützle 2003, "Iterated Local Search", Handbook of
    Metaheuristics) with a variable-neighbourhood descent (Mladenović and Hansen 1997) on the PSA's knobs.

    * Start: ``init`` uniform feasible samples; the best is the incumbent.
    * Descent, stack by stack (the per-stack decomposition): every one-knob move of the workload coordinates is
      asked at once (the network and collectives fixed), the best improving one is taken; then the compute, the
      collective and the network coordinates in turn; round and round until no stack improves. A joint
      coordinate's moves change one of its knobs (`knob_moves`); when none of the one-knob moves improves, the
      two-knob moves of the joint coordinates are tried (the second neighbourhood) before the descent stops.
    * Kick: from the incumbent, ``kick`` random moves on distinct coordinates, then descend again; the result
      replaces the incumbent only if better. After ``restart`` kicks without improvement the next start is a
      fresh uniform sample instead (a restart).

    Infeasible points (memory, static constraints) are never moved to: the moves are filtered with the PSA's
    static constraints before they are asked, and a point told ``None`` has an infinite loss. Points already
    evaluated are answered from memory, so no point is asked twice. Budgets are counted in evaluations by the
    explorer; an ask returns the moves of one step (fewer than asked when the step has fewer). Resuming tells the
    stored history (the incumbent and the memory) and starts from the incumbent.

    Args:
        init: uniform samples before the first descent (default 32).
        kick: random moves per kick (default 3).
        restart: kicks without improvement before a restart from a fresh sample (default 6).
    """

    name: ClassVar[str] = "ils"
    repeats_points: ClassVar[bool] = False
    default_batch: ClassVar[int] = 256

    def __init__(self, space: Any, *, seed: int | None = None, init: int = 32, kick: int = 3,
                 restart: int = 6) -> None:
        super().__init__(space, seed=seed)
        if init < 1 or kick < 1 or restart < 1:
            raise ConfigError(f"ils: init, kick and restart must be >= 1, got {init}, {kick}, {restart}")
        self.init, self.kick, self.restart = int(init), int(kick), int(restart)
        self.near, self.far = knob_moves(space)
        stacks = [min((_STACK_ORDER.index(KNOBS[k].stack) for k in c.knobs), default=0) for c in space._coords]
        self.groups = [[i for i, s in enumerate(stacks) if s == g] for g in range(len(_STACK_ORDER))]
        self.groups = [g for g in self.groups if g]
        self.known: dict[bytes, float] = {}
        self.best: np.ndarray | None = None
        self.best_loss = math.inf
        self._gen: Iterator[np.ndarray] | None = None
        self._queue: np.ndarray = np.zeros((0, self.d), dtype=np.int64)

    def hyperparameters(self) -> dict[str, Any]:
        return {"init": self.init, "kick": self.kick, "restart": self.restart}

    # ---- ask / tell --------------------------------------------------------------------------------------------

    def ask(self, n: int = 1) -> np.ndarray:
        if self._gen is None:
            self._gen = self._search()
        while not len(self._queue):
            self._queue = next(self._gen)
        out, self._queue = self._queue[:n], self._queue[n:]
        for p in out:
            self.known.setdefault(key(p), math.inf)  # asked: never again (its value comes with tell)
        return out

    def tell(
        self, points: np.ndarray, values: Sequence[Value | None], *, violations: Sequence[float] | None = None
    ) -> None:
        pts = self.check_points(points, len(values))
        for p, v in zip(pts, values, strict=True):
            lo = self.loss(v)
            self.known[key(p)] = lo
            if lo < self.best_loss:
                self.best_loss, self.best = lo, p.copy()

    # ---- the search --------------------------------------------------------------------------------------------

    def _loss(self, p: np.ndarray) -> float:
        return self.known.get(key(p), math.inf)

    def _fresh(self, pts: np.ndarray) -> np.ndarray:
        if not len(pts):
            return pts
        pts = np.unique(pts, axis=0)
        pts = pts[self.space.feasible_mask(pts)]
        return pts[[key(p) not in self.known for p in pts]] if len(pts) else pts

    def _sample(self, n: int) -> np.ndarray:
        for _ in range(16):
            fresh = self._fresh(np.asarray(self.space.sample(self.rng, n), dtype=np.int64))
            if len(fresh):
                return fresh
        return np.asarray(self.space.sample(self.rng, 1), dtype=np.int64)  # everything seen: repeat, told again

    def _moves(self, p: np.ndarray, coords: Sequence[int], far: bool = False) -> np.ndarray:
        table = self.far if far else self.near
        out = []
        for i in coords:
            vals = table[i][int(p[i])]
            if len(vals):
                q = np.repeat(p[None, :], len(vals), axis=0)
                q[:, i] = vals
                out.append(q)
        return np.concatenate(out) if out else np.zeros((0, self.d), dtype=np.int64)

    def _step(self, cur: np.ndarray, moves: np.ndarray) -> Iterator[np.ndarray]:
        """Ask the unseen moves (if any); afterwards ``self._next`` is the best move, or None."""
        fresh = self._fresh(moves)
        if len(fresh):
            yield fresh
        self._next = None
        if len(moves):
            losses = np.array([self._loss(q) for q in moves])
            j = int(np.argmin(losses))
            if losses[j] < self._loss(cur):
                self._next = moves[j]

    def _descend(self, start: np.ndarray) -> Iterator[np.ndarray]:
        cur = start
        all_coords = [i for g in self.groups for i in g]
        while True:
            improved = False
            for g in self.groups:
                while True:
                    yield from self._step(cur, self._moves(cur, g))
                    if self._next is None:
                        break
                    cur, improved = self._next, True
            if improved:
                continue
            yield from self._step(cur, self._moves(cur, all_coords, far=True))
            if self._next is None:
                break
            cur = self._next
        self._local = cur

    def _kicked(self, p: np.ndarray) -> np.ndarray:
        q = p.copy()
        for i in self.rng.permutation(self.d)[: self.kick]:
            vals = self.near[i][int(q[i])]
            if len(vals):
                q[i] = vals[int(self.rng.integers(len(vals)))]
        return q

    def _search(self) -> Iterator[np.ndarray]:
        if self.best is None or len(self.known) < self.init:
            yield self._sample(self.init)
        while self.best is None:  # nothing feasible yet
            yield self._sample(self.init)
        start = self.best
        failures = 0
        while True:
            if not self.space.is_feasible(start):
                start = self._kicked(self.best) if failures < self.restart else self._sample(1)[0]
                failures += 1
                continue
            if key(start) not in self.known:
                yield start[None, :]
            if math.isinf(self._loss(start)):
                start = self._kicked(self.best) if failures < self.restart else self._sample(1)[0]
                failures += 1
                continue
            before = self.best_loss
            yield from self._descend(start)
            if self.best_loss < before:
                failures = 0
            else:
                failures += 1
            if failures >= self.restart:
                failures = 0
                start = self._sample(1)[0]
            else:
                base = self.best if self.best is not None else self._local
                start = self._kicked(base)
