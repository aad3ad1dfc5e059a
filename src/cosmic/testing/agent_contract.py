"""The contract every registered search agent honours, as one function that asserts it.

:func:`check_agent` builds the agent on a space, drives a few ask/evaluate/tell rounds through the real evaluator and
asserts: the declared flags have the documented types; ``ask`` returns int64 ``(k, d)`` points (``k <= n``, ``k > 0``
unless the agent is exhausted) inside the encoded box that satisfy the static constraints; ``tell`` accepts the
values, violations (and features when the agent wants them); an agent that declares ``repeats_points = False`` never
asks a point twice, also after ``rebuild``; the same seed asks the same points; a rebuilt agent keeps asking feasible
points, and two agents rebuilt from the same history ask the same ones; ``hyperparameters()`` is a dict.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from cosmic.agents import Agent, BaseAgent, agent_class


def _flags(cls: type[BaseAgent]) -> None:
    assert isinstance(cls.name, str) and cls.name, f"{cls.__name__}.name must be a non-empty string"
    for flag in ("multi_objective", "times_unfit_points", "wants_features", "repeats_points"):
        assert isinstance(getattr(cls, flag), bool), f"{cls.name}.{flag} must be a bool"
    mb = cls.max_batch
    assert mb is None or (isinstance(mb, int) and not isinstance(mb, bool) and mb >= 1), \
        f"{cls.name}.max_batch must be None or a positive int, got {mb!r}"
    db = cls.default_batch
    assert isinstance(db, int) and not isinstance(db, bool) and db >= 1, f"{cls.name}.default_batch must be >= 1"


def _drive(agent: Any, space: Any, evaluator: Any, rounds: int, batch: int,
           history: list[np.ndarray] | None = None) -> tuple[np.ndarray, list[Any]]:
    """Ask/evaluate/tell `rounds` times, checking each ask, then close the agent; returns the asked points and their
    evaluations."""
    cls = type(agent)
    d = len(space.cardinalities)
    n = min(batch, cls.max_batch or batch)
    asked: list[np.ndarray] = []
    evals: list[Any] = []
    for _ in range(rounds):
        pts = agent.ask(n)
        assert isinstance(pts, np.ndarray) and pts.dtype == np.int64, f"{cls.name}: ask must return int64 arrays"
        assert pts.ndim == 2 and pts.shape[1] == d and pts.shape[0] <= n, \
            f"{cls.name}: ask({n}) returned shape {pts.shape}, expected ({n}, {d}) or fewer rows"
        assert isinstance(agent.exhausted, bool), f"{cls.name}.exhausted must be a bool"
        if len(pts) == 0:
            assert agent.exhausted, f"{cls.name}: an empty ask from an agent that is not exhausted"
            break
        assert space.feasible_mask(pts).all(), f"{cls.name}: ask returned points that violate static constraints"
        evs = evaluator.evaluate(pts)
        kw: dict[str, Any] = {"features": [e.features for e in evs]} if cls.wants_features else {}
        agent.tell(pts, [e.values for e in evs], violations=[e.violation for e in evs], **kw)
        asked.append(pts)
        evals.extend(evs)
    agent.close()  # before the next agent starts: rl's learner thread draws from torch's process-wide generator
    out = np.concatenate(asked) if asked else np.empty((0, d), dtype=np.int64)
    if not cls.repeats_points:
        seen = np.concatenate([*(history or []), out])
        assert len({p.tobytes() for p in seen}) == len(seen), \
            f"{cls.name}: declares repeats_points = False but asked a point twice"
    return out, evals


def check_agent(agent: str | type[BaseAgent], space: Any, *, seed: int = 0, rounds: int = 3, batch: int = 8,
                hyper: Mapping[str, Any] | None = None) -> None:
    """Assert the agent contract for `agent` (a registered name or an agent class) on `space` (AssertionError
    naming the broken promise). `hyper` are constructor keywords (keep budgets small: every check drives the agent
    ``rounds`` times through the simulator, four times over)."""
    from cosmic.explore import Evaluator

    cls = agent_class(agent) if isinstance(agent, str) else agent
    hyper = dict(hyper or {})
    _flags(cls)

    def make() -> Any:
        return cls(space, seed=seed, **hyper)

    first = make()
    assert isinstance(first, Agent), f"{cls.name}: does not implement the Agent protocol"
    assert isinstance(first.hyperparameters(), dict), f"{cls.name}.hyperparameters() must return a dict"
    evaluator = Evaluator(space, time_unfit=cls.times_unfit_points)
    pts, evs = _drive(first, space, evaluator, rounds, batch)
    assert len(pts) > 0, f"{cls.name}: asked no point at all"

    again, _ = _drive(make(), space, evaluator, rounds, batch)
    assert np.array_equal(pts, again), f"{cls.name}: the same seed asked different points"

    values = [e.values for e in evs]
    violations = [e.violation for e in evs]
    resumed = []
    for _ in range(2):
        a = make()
        a.rebuild(pts, values, violations)
        more, _ = _drive(a, space, evaluator, max(1, rounds - 1), batch, history=[pts])
        resumed.append(more)
    assert np.array_equal(resumed[0], resumed[1]), f"{cls.name}: two agents rebuilt from one history differ"
