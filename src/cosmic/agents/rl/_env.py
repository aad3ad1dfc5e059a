"""`CosmicEnv`: each step proposes a whole design; the reward is how good it is."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces

Evaluate = Callable[[np.ndarray], tuple[float, np.ndarray]]
"""``evaluate(point) -> (reward, features)``: higher reward is better, features are floats in [0, 1]."""


def action_space(space: Any, seed: int | None = None) -> spaces.MultiDiscrete:
    """The Gymnasium action space of a ``cosmic.psa.Space``: ``MultiDiscrete(cardinalities)``."""
    return spaces.MultiDiscrete(np.array(space.cardinalities, dtype=np.int64), seed=seed)


class CosmicEnv(gymnasium.Env[np.ndarray, np.ndarray]):
    """Design-space exploration as a Gymnasium env.

    * Action: a point of the PSA's encoded space, ``MultiDiscrete(space.cardinalities)``.
    * Observation: the last design's coordinates scaled to [0, 1], then the ``n_features`` features that
      ``evaluate`` returned for it (the explorer gives the step-time breakdown shares), then a flag that is 0 when the
      last action broke a static constraint.
    * Reward: ``evaluate``'s reward for a design that satisfies the PSA's static constraints. A design that breaks
      them is not evaluated: its reward is ``-(1 + number of violated constraints)`` and the observation keeps the
      previous design.
    * Episodes never terminate by themselves; registration adds a 16-step ``TimeLimit``.
    * ``reset`` starts from a uniform feasible sample drawn with the env's seeded generator.

    Args:
        space: a ``cosmic.psa.Space``.
        evaluate: the evaluation callable (see `Evaluate`).
        n_features: length of the feature vector ``evaluate`` returns.
    """

    # gymnasium.Env declares `metadata` as an instance attribute (wrappers replace it per env), so it cannot be
    # re-declared ClassVar here (mypy: "cannot override instance variable with class variable").
    metadata: dict[str, Any] = {"render_modes": []}  # noqa: RUF012

    def __init__(self, space: Any, evaluate: Evaluate, n_features: int = 9) -> None:
        self.space = space
        self.evaluate = evaluate
        self.n_features = int(n_features)
        self.cards = np.asarray(space.cardinalities, dtype=np.int64)
        self.action_space = action_space(space)
        d = int(self.cards.size)
        self.observation_space = spaces.Box(0.0, 1.0, shape=(d + self.n_features + 1,), dtype=np.float32)
        self._scale = np.maximum(self.cards - 1, 1).astype(np.float64)
        self._obs = np.zeros(self.observation_space.shape, dtype=np.float32)

    def _observe(self, point: np.ndarray, features: np.ndarray, feasible: float) -> np.ndarray:
        f = np.zeros(self.n_features)
        feats = np.asarray(features, dtype=np.float64).ravel()[: self.n_features]
        f[: feats.size] = feats
        obs = np.concatenate([point / self._scale, np.clip(f, 0.0, 1.0), [feasible]])
        return obs.astype(np.float32)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        start = np.asarray(self.space.sample(self.np_random, 1), dtype=np.int64)[0]
        self._obs = self._observe(start, np.zeros(self.n_features), 1.0)
        return self._obs.copy(), {}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        point = np.asarray(action, dtype=np.int64).reshape(-1)
        if not self.space.is_feasible(point):
            broken = self.space.violations(point)
            self._obs[-1] = 0.0
            info = {"feasible": False, "violations": list(broken)}
            return self._obs.copy(), -1.0 - float(len(broken)), False, False, info
        reward, features = self.evaluate(point)
        self._obs = self._observe(point, features, 1.0)
        return self._obs.copy(), float(reward), False, False, {"feasible": True}
