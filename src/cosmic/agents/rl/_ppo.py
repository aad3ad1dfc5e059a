"""`rl`: PPO (stable-baselines3) trained on `cosmic/Design-v0` while the explorer asks and tells."""

from __future__ import annotations

import math
import queue
import threading
from collections.abc import Sequence
from typing import Any, ClassVar, TypedDict

import numpy as np

from cosmic.agents._base import BaseAgent, Value
from cosmic.agents.rl import ENV_ID
from cosmic.errors import ConfigError


class _Stop(Exception):
    """Raised inside the env to end PPO's learning loop when the agent closes."""


_STOP = object()


class _Hyper(TypedDict):
    n_steps: int
    batch_size: int
    n_epochs: int
    learning_rate: float
    gamma: float
    ent_coef: float
    episode_steps: int
    n_features: int


class PPOAgent(BaseAgent):
    """Proximal policy optimisation on the design env, driven by the explorer's asks and tells.

    PPO's own training loop (``PPO.learn``) runs in a helper thread on a `CosmicEnv` whose ``evaluate`` hands each
    action to the explorer (``ask`` returns it) and waits for its value (``tell``). The two threads strictly take
    turns, so a seeded run is reproducible. Actions that break a static constraint are answered by the env itself
    (negative reward, no evaluation, no budget spent). One point per ask (``max_batch = 1``).

    Reward: ``log(reference / loss)`` with the first feasible loss as reference (scale-free; positive when better
    than the first design), or the relative difference when losses are not positive. An evaluated point that is
    infeasible (memory) gets the worst reward seen so far minus one minus its overshoot (capped at 4), so the policy
    learns to stay inside memory. The observation carries the step-time breakdown shares the explorer sends.

    PPO is on-policy and cannot learn from a stored history: resuming keeps the reward reference of the study and
    starts a fresh policy.

    Args:
        n_steps: environment steps per PPO update (default 64).
        batch_size: minibatch size (default 32).
        n_epochs: optimisation epochs per update (default 4).
        learning_rate: Adam step size (default 3e-4).
        gamma: discount (default 0.9; each design is judged mostly on its own).
        ent_coef: entropy bonus that keeps exploring (default 0.01).
        episode_steps: designs per episode (default 16).
        n_features: feature slots in the observation (default 9, the breakdown components).
    """

    name: ClassVar[str] = "rl"
    max_batch: ClassVar[int | None] = 1
    default_batch: ClassVar[int] = 1
    wants_features: ClassVar[bool] = True

    def __init__(
        self,
        space: Any,
        *,
        seed: int | None = None,
        n_steps: int = 64,
        batch_size: int = 32,
        n_epochs: int = 4,
        learning_rate: float = 3e-4,
        gamma: float = 0.9,
        ent_coef: float = 0.01,
        episode_steps: int = 16,
        n_features: int = 9,
    ) -> None:
        super().__init__(space, seed=seed)
        try:
            import stable_baselines3  # noqa: F401
            import torch  # noqa: F401
        except ImportError as exc:
            raise ConfigError(
                f"agent 'rl' needs {exc.name}: pip install 'cosmic[rl]' (stable-baselines3 and torch)"
            ) from None
        if n_steps < 2 or batch_size < 2 or n_epochs < 1 or episode_steps < 1:
            raise ConfigError("rl: n_steps and batch_size must be >= 2, n_epochs and episode_steps >= 1")
        self.hyper: _Hyper = {
            "n_steps": int(n_steps), "batch_size": int(batch_size), "n_epochs": int(n_epochs),
            "learning_rate": float(learning_rate), "gamma": float(gamma), "ent_coef": float(ent_coef),
            "episode_steps": int(episode_steps), "n_features": int(n_features),
        }
        self._asks: queue.Queue[Any] = queue.Queue()
        self._tells: queue.Queue[Any] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._waiting = False
        self.ref: float | None = None
        self.worst_reward = 0.0

    def hyperparameters(self) -> dict[str, Any]:
        return dict(self.hyper)

    # ---- the learner thread ------------------------------------------------------------------------------------

    def _bridge(self, point: np.ndarray) -> tuple[float, np.ndarray]:
        self._asks.put(np.asarray(point, dtype=np.int64).copy())
        msg = self._tells.get()
        if msg is _STOP:
            raise _Stop
        return msg

    def _learn(self) -> None:
        try:
            import gymnasium
            import torch
            from stable_baselines3 import PPO

            torch.set_num_threads(1)
            h = self.hyper
            env = gymnasium.make(ENV_ID, space=self.space, evaluate=self._bridge, n_features=h["n_features"],
                                 max_episode_steps=h["episode_steps"])
            model = PPO("MlpPolicy", env, seed=self.seed, n_steps=h["n_steps"], batch_size=h["batch_size"],
                        n_epochs=h["n_epochs"], learning_rate=h["learning_rate"], gamma=h["gamma"],
                        ent_coef=h["ent_coef"], device="cpu", verbose=0)
            model.learn(total_timesteps=10**12)
        except _Stop:
            return
        except BaseException as exc:  # surface learner errors in the explorer's thread
            self._asks.put(exc)

    # ---- ask / tell --------------------------------------------------------------------------------------------

    def ask(self, n: int = 1) -> np.ndarray:
        if n != 1:
            raise ValueError("rl asks one point at a time (max_batch = 1)")
        if self._waiting:
            raise RuntimeError("rl: tell the previous point before asking again")
        if self._thread is None:
            self._thread = threading.Thread(target=self._learn, name="cosmic-rl-ppo", daemon=True)
            self._thread.start()
        item = self._asks.get()
        if isinstance(item, BaseException):
            raise item
        self._waiting = True
        return item.reshape(1, self.d)

    def _reward(self, value: Value | None, violation: float) -> float:
        if value is None:
            return self.worst_reward - 1.0 - min(violation if math.isfinite(violation) else 4.0, 4.0)
        loss = self.loss(value)
        if self.ref is None:
            self.ref = loss
        if loss > 0 and self.ref > 0:
            r = math.log(self.ref / loss)
        else:
            r = (self.ref - loss) / (abs(self.ref) or 1.0)
        self.worst_reward = min(self.worst_reward, r)
        return r

    def tell(
        self,
        points: np.ndarray,
        values: Sequence[Value | None],
        *,
        violations: Sequence[float] | None = None,
        features: Sequence[np.ndarray] | None = None,
    ) -> None:
        self.check_points(points, len(values))
        viol = self.violation_array(values, violations)
        for i, (v, vi) in enumerate(zip(values, viol, strict=True)):
            reward = self._reward(v, float(vi))
            feats = np.asarray(features[i], dtype=float) if features is not None else np.zeros(0)
            if self._waiting:
                self._waiting = False
                self._tells.put((reward, feats))

    def rebuild(
        self, points: np.ndarray, values: Sequence[Value | None], violations: Sequence[float] | None = None
    ) -> None:
        viol = self.violation_array(values, violations)
        for v, vi in zip(values, viol, strict=True):
            self._reward(v, float(vi))

    def close(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            self._tells.put(_STOP)
            self._thread.join(timeout=10)
        self._thread = None
        self._waiting = False
