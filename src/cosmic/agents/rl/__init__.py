"""Reinforcement learning over a PSA: a Gymnasium env (`cosmic/Design-v0`) and a PPO agent (extra ``[rl]``).

Registering the env imports nothing heavy (a string entry point, as Gymnasium's own envs). Build it with
``gymnasium.make("cosmic/Design-v0", space=space, evaluate=evaluate)``, where ``evaluate(point) -> (reward,
features)`` is supplied by the caller (`cosmic.explore.make_env` supplies one that simulates), so the env never
imports the simulator.
"""

from __future__ import annotations

import gymnasium

ENV_ID = "cosmic/Design-v0"

if ENV_ID not in gymnasium.registry:
    gymnasium.register(id=ENV_ID, entry_point="cosmic.agents.rl._env:CosmicEnv", max_episode_steps=16)



def action_space(space: object, seed: int | None = None) -> object:
    """``gymnasium.spaces.MultiDiscrete(space.cardinalities)``: the action space of the env over `space`."""
    from cosmic.agents.rl._env import action_space as make

    return make(space, seed)


__all__ = ["ENV_ID", "action_space"]
