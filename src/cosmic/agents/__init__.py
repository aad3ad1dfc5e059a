"""Search agents over a PSA's encoded space, and the registry that names them.

Every agent follows one contract (:class:`Agent`, modelled on Optuna's sampler): ``ask(n)`` returns ``n`` points of
the encoded space, ``tell(points, values, violations=...)`` reports their objective values (``None`` when a point is
infeasible), ``rebuild(...)`` restores the state a stored study implies. Agents see only the space, never the
simulator.

Names map to ``"module:Class"`` strings, imported only when named, so ``rl`` loads torch and stable-baselines3 only
when asked for::

    from cosmic.agents import make_agent
    agent = make_agent("ga", space, seed=0, population=64)
    points = agent.ask(32)

Unknown agent or hyper-parameter names raise :class:`cosmic.errors.UnknownNameError` with a suggestion.
"""

from __future__ import annotations

import importlib
import inspect
from typing import TYPE_CHECKING, Any

from cosmic.agents._base import Agent, BaseAgent, Value
from cosmic.errors import ConfigError, UnknownNameError

if TYPE_CHECKING:
    from cosmic.psa import Space

AGENTS: dict[str, str] = {
    "random": "cosmic.agents._random:RandomAgent",
    "walk": "cosmic.agents._walk:WalkAgent",
    "ga": "cosmic.agents._ga:GeneticAgent",
    "aco": "cosmic.agents._aco:AntColonyAgent",
    "bo": "cosmic.agents._optuna:GPAgent",
    "tpe": "cosmic.agents._optuna:TPEAgent",
    "cmaes": "cosmic.agents._optuna:CmaEsAgent",
    "nsga2": "cosmic.agents._optuna:NSGA2Agent",
    "rl": "cosmic.agents.rl._ppo:PPOAgent",
    "exhaustive": "cosmic.agents._exhaustive:ExhaustiveAgent",
    "bnb": "cosmic.agents._bnb:BranchAndBoundAgent",
    "ils": "cosmic.agents._ils:IteratedLocalSearchAgent",
    "memetic": "cosmic.agents._ga:MemeticAgent",
}
"""Agent name -> ``module:Class`` (imported lazily)."""


def agent_names() -> list[str]:
    return list(AGENTS)


def agent_class(name: str) -> type[BaseAgent]:
    """The class registered as `name` (imports its module)."""
    key = str(name).strip().lower()
    if key not in AGENTS:
        raise UnknownNameError("agent", str(name), AGENTS)
    module, _, cls = AGENTS[key].partition(":")
    return getattr(importlib.import_module(module), cls)


def hyperparameter_defaults(name: str) -> dict[str, Any]:
    """Documented hyper-parameters of agent `name` and their defaults (from its keyword-only constructor)."""
    sig = inspect.signature(agent_class(name).__init__)
    return {
        p.name: p.default
        for p in sig.parameters.values()
        if p.kind is inspect.Parameter.KEYWORD_ONLY and p.name != "seed"
    }


def make_agent(name: str, space: Space, *, seed: int | None = None, **hyper: Any) -> BaseAgent:
    """Build agent `name` over `space` with `hyper` overriding its defaults.

    Raises:
        UnknownNameError: the agent or a hyper-parameter name does not exist (with a suggestion).
        ConfigError: a hyper-parameter value is out of range, or the agent cannot handle the space.
    """
    cls = agent_class(name)
    known = hyperparameter_defaults(name)
    for k in hyper:
        if k not in known:
            raise UnknownNameError(f"hyper-parameter of agent {name!r}", k, known)
    try:
        return cls(space, seed=seed, **hyper)
    except TypeError as exc:
        raise ConfigError(f"agent {name!r}: {exc}") from None


__all__ = [
    "AGENTS",
    "Agent",
    "BaseAgent",
    "Value",
    "agent_class",
    "agent_names",
    "hyperparameter_defaults",
    "make_agent",
]
