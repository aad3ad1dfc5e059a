"""`cosmic/Design-v0`: Gymnasium's own checker, registration, seeding and static-constraint handling."""

from __future__ import annotations

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from cosmic.agents.rl import ENV_ID
from cosmic.agents.rl._env import CosmicEnv
from cosmic.explore import FEATURE_NAMES, make_env
from cosmic.psa import load_psa


@pytest.fixture(scope="module")
def full():
    return load_psa("cosmic-s1-gpt3-175b-full")


def test_env_passes_gymnasiums_checker(full):
    env = make_env(full)
    assert isinstance(env.unwrapped, CosmicEnv)
    check_env(env.unwrapped, skip_render_check=True)
    assert env.action_space == gymnasium.spaces.MultiDiscrete(full.cardinalities)
    assert env.observation_space.shape == (len(full.cardinalities) + len(FEATURE_NAMES) + 1,)


def test_registered_with_a_string_entry_point_and_time_limit(full):
    spec = gymnasium.spec(ENV_ID)
    assert spec.entry_point == "cosmic.agents.rl._env:CosmicEnv" and spec.max_episode_steps == 16
    env = make_env(full, episode_steps=3)
    env.reset(seed=0)
    truncated = [env.step(env.action_space.sample())[3] for _ in range(3)]
    assert truncated == [False, False, True]


def test_same_seed_same_rollout(full):
    def rollout(seed: int) -> list[tuple[list[float], float]]:
        env = make_env(full)
        obs, _ = env.reset(seed=seed)
        env.action_space.seed(seed)
        out = [(obs.tolist(), 0.0)]
        for _ in range(10):
            obs, r, *_ = env.step(env.action_space.sample())
            out.append((obs.tolist(), r))
        return out

    assert rollout(4) == rollout(4)
    assert rollout(4) != rollout(5)


def test_statically_infeasible_action_is_penalised_without_evaluation(full):
    calls = []

    def evaluate(point):
        calls.append(point)
        return 0.5, np.full(len(FEATURE_NAMES), 0.1)

    env = CosmicEnv(full, evaluate, n_features=len(FEATURE_NAMES))
    env.reset(seed=0)
    bad = np.zeros(len(full.cardinalities), dtype=np.int64)
    bad[full.dim_names.index("topology[0]")] = 1  # topology values: Ring, Switch, ... ; Switch on dim 0 is banned
    assert not full.is_feasible(bad)
    obs, r, *_ , info = env.step(bad)
    assert r <= -2.0 and not info["feasible"] and calls == [] and obs[-1] == 0.0
    good = full.sample(np.random.default_rng(0), 1)[0]
    obs, r, *_ , info = env.step(good)
    assert r == 0.5 and info["feasible"] and len(calls) == 1 and obs[-1] == 1.0


def test_rewards_prefer_faster_designs(full):
    env = make_env(full)
    env.reset(seed=0)
    pts = full.sample(np.random.default_rng(1), 40)
    from cosmic.explore import Evaluator

    ev = Evaluator(full)
    feas = [(e.values[0], p) for e, p in zip(ev.evaluate(pts), pts, strict=True) if e.values is not None]
    feas.sort(key=lambda t: t[0])
    r_fast = env.step(feas[0][1])[1]
    r_slow = env.step(feas[-1][1])[1]
    assert r_fast > r_slow
