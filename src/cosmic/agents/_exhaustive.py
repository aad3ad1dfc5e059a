"""`exhaustive`: every feasible point of a small space, in batches, in a fixed order (certifies the best)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from cosmic.agents._base import BaseAgent, Value
from cosmic.errors import ConfigError

MAX_POINTS = 10**7


class ExhaustiveAgent(BaseAgent):
    """Enumerates the box ``prod(cardinalities)`` in mixed-radix order (last coordinate fastest) and asks for every
    point that satisfies the static constraints. When it runs out, ``ask`` returns an empty array and the explorer
    marks the study complete: its best is then the certified optimum of the space.

    Spaces with more than 10^7 box points are refused (use a search agent). Infeasible results are skipped like any
    other point: enumeration does not depend on values. When the PSA asks for memory fit, a point's memory footprint
    is computed first and a point that cannot fit is recorded as infeasible without timing its step (the optimum is
    over fitting points only; Calculon's search prunes the same way). Resuming continues after the last stored point.

    Args:
        limit: the largest box size accepted (default 10^7).
    """

    name: ClassVar[str] = "exhaustive"
    repeats_points: ClassVar[bool] = False
    multi_objective: ClassVar[bool] = True
    default_batch: ClassVar[int] = 4096
    times_unfit_points: ClassVar[bool] = False  # the certified best is over fitting points only

    def __init__(self, space: Any, *, seed: int | None = None, limit: int = MAX_POINTS) -> None:
        super().__init__(space, seed=seed)
        self.size = int(np.prod(self.cards.astype(object)))
        self.limit = int(limit)
        if self.size > self.limit:
            raise ConfigError(
                f"exhaustive: the space has {self.size:,} box points, more than the limit {self.limit:,}; "
                "use a search agent (ga, aco, tpe, ...) or fix some knobs"
            )
        self.cursor = 0  # next box index to look at
        # a PSA whose encoded box holds only feasible points needs no per-point check
        self._all_feasible = getattr(space, "box_size", None) == getattr(space, "size_feasible", -1)

    def hyperparameters(self) -> dict[str, Any]:
        return {"limit": self.limit}

    @property
    def exhausted(self) -> bool:
        return self.cursor >= self.size

    def _unravel(self, idx: np.ndarray) -> np.ndarray:
        return np.stack(np.unravel_index(idx, tuple(int(c) for c in self.cards)), axis=1).astype(np.int64)

    def ask(self, n: int = 1) -> np.ndarray:
        found: list[np.ndarray] = []
        have = 0
        while have < n and self.cursor < self.size:
            span = min(max(4 * (n - have), 1024), self.size - self.cursor)
            idx = np.arange(self.cursor, self.cursor + span, dtype=np.int64)
            pts = self._unravel(idx)
            if self._all_feasible:
                ok = np.ones(len(pts), dtype=bool)
            else:
                ok = self.space.feasible_mask(pts)
            take = np.flatnonzero(ok)[: n - have]
            if len(take) < n - have:
                self.cursor += span
            else:
                self.cursor += int(take[-1]) + 1
            found.append(pts[take])
            have += len(take)
        if not found:
            return np.zeros((0, self.d), dtype=np.int64)
        return np.concatenate(found)

    def rebuild(
        self, points: np.ndarray, values: Sequence[Value | None], violations: Sequence[float] | None = None
    ) -> None:
        pts = np.asarray(points, dtype=np.int64).reshape(-1, self.d)
        if len(pts):
            last = np.ravel_multi_index(tuple(pts.T), tuple(int(c) for c in self.cards))
            self.cursor = int(np.max(last)) + 1
