"""The RL env wired to the simulator: `make_env(space)` builds `cosmic/Design-v0` with an evaluation callable."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from cosmic.explore._objective import FEATURE_NAMES, Evaluator


def reward_of(loss: float, ref: float) -> float:
    """``log(ref / loss)`` for positive losses (positive when better than the reference), else a relative gain."""
    if loss > 0 and ref > 0:
        return math.log(ref / loss)
    return (ref - loss) / (abs(ref) or 1.0)


def make_env(space: Any, *, episode_steps: int = 16) -> Any:
    """``gymnasium.make("cosmic/Design-v0")`` on `space`, evaluating with the simulator.

    Reward: ``log(reference / loss)`` on the first objective (as a loss: negated when maximised), where the
    reference is the PSA base configuration's value; a point that does not fit in memory or that the simulator
    rejects gets ``-1 - min(overshoot, 4)``. Observation features: the step-time breakdown shares
    (:data:`FEATURE_NAMES`).
    """
    import gymnasium

    from cosmic.agents.rl import ENV_ID
    from cosmic.errors import CosmicError
    from cosmic.sim import simulate

    ev = Evaluator(space)
    obj = space.objectives[0]
    sign = 1.0 if obj.direction == "minimize" else -1.0
    try:
        ref = sign * obj.value(simulate(space.base), space.base)
    except CosmicError:
        ref = 1.0

    def evaluate(point: np.ndarray) -> tuple[float, np.ndarray]:
        e = ev.evaluate_one(point)
        if e.values is None:
            v = e.violation if math.isfinite(e.violation) else 4.0
            return -1.0 - min(v, 4.0), e.features
        return reward_of(sign * e.values[0], ref), e.features

    return gymnasium.make(ENV_ID, space=space, evaluate=evaluate, n_features=len(FEATURE_NAMES),
                          max_episode_steps=episode_steps)
