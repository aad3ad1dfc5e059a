"""`random`: uniform, independent samples of the feasible space (ArchGym's "random walker" was this too)."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from cosmic.agents._base import BaseAgent


class RandomAgent(BaseAgent):
    """Uniform i.i.d. samples from ``space.sample`` (feasible for every static constraint by construction).

    Infeasible results (memory) teach it nothing: every ask is independent of the history, so resuming only re-seeds.
    Works for any number of objectives.

    Example:
        >>> # agent = RandomAgent(space, seed=0); agent.ask(4).shape == (4, len(space.cardinalities))
    """

    name: ClassVar[str] = "random"
    multi_objective: ClassVar[bool] = True
    default_batch: ClassVar[int] = 256

    def ask(self, n: int = 1) -> np.ndarray:
        return np.asarray(self.space.sample(self.rng, n), dtype=np.int64).reshape(n, self.d)
