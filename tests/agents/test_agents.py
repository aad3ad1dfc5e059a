"""The agent contract, run over every registered agent on small real PSA presets."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest

from cosmic.agents import (
    AGENTS,
    agent_class,
    agent_names,
    hyperparameter_defaults,
    make_agent,
)
from cosmic.errors import ConfigError, UnknownNameError
from cosmic.explore import Evaluator, with_objectives
from cosmic.psa import load_psa

WORKLOAD = "cosmic-s1-gpt3-175b-workload"  # 266 points, one joint workload coordinate + weight sharding
COLLECTIVE = "cosmic-s1-gpt3-175b-collective"  # 4,096 points
FULL = "cosmic-s1-gpt3-175b-full"

FAST = ["random", "walk", "ga", "aco", "tpe", "cmaes", "nsga2", "exhaustive", "bnb", "ils", "memetic"]
ALL = FAST + ["bo", "rl"]


@pytest.fixture(scope="module")
def collective():
    return load_psa(COLLECTIVE)


@pytest.fixture(scope="module")
def full():
    return load_psa(FULL)


def drive(agent, space, n_rounds, batch):
    """Ask/evaluate/tell `n_rounds` times; returns every asked point."""
    ev = Evaluator(space)
    asked = []
    for _ in range(n_rounds):
        pts = agent.ask(min(batch, type(agent).max_batch or batch))
        if len(pts) == 0:
            break
        evs = ev.evaluate(pts)
        kw = {}
        if agent.wants_features:
            kw["features"] = [e.features for e in evs]
        agent.tell(pts, [e.values for e in evs], violations=[e.violation for e in evs], **kw)
        asked.append(pts)
    agent.close()
    return np.concatenate(asked)


def test_registry_names_every_agent():
    assert set(agent_names()) == {"random", "walk", "ga", "aco", "bo", "tpe", "cmaes", "nsga2", "rl", "exhaustive",
                                  "bnb", "ils", "memetic"}
    for name in AGENTS:
        assert agent_class(name).name == name


def test_unknown_agent_suggests():
    with pytest.raises(UnknownNameError, match="did you mean 'nsga2'"):
        agent_class("nsga")


def test_unknown_hyper_parameter_suggests(collective):
    with pytest.raises(UnknownNameError, match="did you mean 'population'"):
        make_agent("ga", collective, seed=0, populaton=8)


def test_bad_hyper_value_is_a_config_error(collective):
    with pytest.raises(ConfigError, match="population"):
        make_agent("ga", collective, seed=0, population=1)
    with pytest.raises(ConfigError, match="greediness"):
        make_agent("aco", collective, seed=0, greediness=1.5)


def test_documented_defaults_are_cosmics():
    assert hyperparameter_defaults("ga") == {"population": 32, "mutation": 0.05, "crossover": 0.9, "tournament": 2,
                                             "immigrants": 0.1, "polish": 0.0}
    assert hyperparameter_defaults("aco") == {"ants": 16, "greediness": 0.5, "evaporation": 0.25}


def test_registry_imports_heavy_agents_lazily():
    code = (
        "import sys\n"
        "from cosmic.psa import load_psa\n"
        "from cosmic.agents import make_agent\n"
        f"a = make_agent('ga', load_psa('{COLLECTIVE}'), seed=0); a.ask(4)\n"
        "print(sorted(m for m in ('torch', 'stable_baselines3') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("name", FAST)
def test_asks_are_feasible_points_of_the_space(name, collective):
    agent = make_agent(name, collective, seed=3)
    pts = drive(agent, collective, 6, 16)
    cards = np.asarray(collective.cardinalities)
    assert pts.dtype == np.int64 and pts.shape[1] == len(cards)
    assert (pts >= 0).all() and (pts < cards).all()
    assert all(collective.is_feasible(p) for p in pts)


@pytest.mark.parametrize("name", FAST)
def test_same_seed_same_points(name, collective):
    a = drive(make_agent(name, collective, seed=11), collective, 5, 8)
    b = drive(make_agent(name, collective, seed=11), collective, 5, 8)
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", ["random", "ga", "aco", "tpe", "cmaes", "nsga2"])
def test_different_seeds_differ(name, collective):
    a = drive(make_agent(name, collective, seed=1), collective, 3, 8)
    b = drive(make_agent(name, collective, seed=2), collective, 3, 8)
    assert not np.array_equal(a, b)


@pytest.mark.parametrize("name", ["ga", "aco", "tpe", "nsga2", "cmaes", "walk"])
def test_search_agents_do_not_repeat_points(name, collective):
    pts = drive(make_agent(name, collective, seed=0), collective, 12, 16)
    assert len({p.tobytes() for p in pts}) == len(pts)


@pytest.mark.parametrize("name", ["ga", "aco", "walk", "cmaes", "rl"])
def test_single_objective_agents_refuse_two_objectives(name, collective):
    two = with_objectives(collective, ["step_time", "step_time*network_cost"])
    with pytest.raises(ConfigError, match="one objective"):
        make_agent(name, two, seed=0)


@pytest.mark.parametrize("name", ["nsga2", "tpe", "random"])
def test_multi_objective_agents_accept_tuples(name, collective):
    two = with_objectives(collective, ["step_time", "step_time*network_cost"])
    pts = drive(make_agent(name, two, seed=0), two, 4, 8)
    assert len(pts) == 32


@pytest.mark.parametrize("name", FAST)
def test_rebuild_from_history_then_continue(name, collective):
    first = make_agent(name, collective, seed=5)
    pts = drive(first, collective, 3, 8)
    ev = Evaluator(collective)
    evs = ev.evaluate(pts)
    again = make_agent(name, collective, seed=5)
    again.rebuild(pts, [e.values for e in evs], [e.violation for e in evs])
    more = drive(again, collective, 2, 8)
    assert all(collective.is_feasible(p) for p in more)
    if name in ("exhaustive", "bnb"):  # continue the enumeration where the history stopped
        assert not ({p.tobytes() for p in more} & {p.tobytes() for p in pts})


def test_exhaustive_enumerates_each_feasible_point_once():
    space = load_psa(WORKLOAD)
    agent = make_agent("exhaustive", space, seed=0)
    pts = drive(agent, space, 10_000, 37)
    assert len(pts) == space.size_feasible
    assert len({p.tobytes() for p in pts}) == len(pts)
    assert agent.exhausted and len(agent.ask(5)) == 0


def test_exhaustive_refuses_huge_spaces(full):
    with pytest.raises(ConfigError, match="limit"):
        make_agent("exhaustive", full, seed=0)


def test_ga_ranks_memory_infeasible_below_feasible_and_by_overshoot(collective):
    ga = make_agent("ga", collective, seed=0, population=4)
    pts = ga.ask(4)
    ga.tell(pts, [None, 5.0, None, 7.0], violations=[0.5, 0.0, 0.1, 0.0])
    order = [p.tobytes() for p in ga.pop]
    assert order == [pts[1].tobytes(), pts[3].tobytes(), pts[2].tobytes(), pts[0].tobytes()]


def test_walk_moves_one_knob_at_a_time_and_never_into_infeasible(collective):
    walk = make_agent("walk", collective, seed=0, temperature=math.inf)
    start = walk.ask(1)
    walk.tell(start, [1.0])
    for _ in range(20):
        cur = walk.current.copy()
        (p,) = walk.ask(1)
        assert int((p != cur).sum()) == 1
        walk.tell(p[None], [None], violations=[0.3])  # over memory: the walker stays
        np.testing.assert_array_equal(walk.current, cur)
        (q,) = walk.ask(1)
        walk.tell(q[None], [2.0])  # temperature inf: an unbiased walk always moves
        np.testing.assert_array_equal(walk.current, q)


def test_aco_pheromone_follows_the_best(collective):
    aco = make_agent("aco", collective, seed=0, ants=4, greediness=1.0, evaporation=0.5)
    pts = aco.ask(4)
    aco.tell(pts, [3.0, 1.0, 2.0, None], violations=[0, 0, 0, 0.2])
    np.testing.assert_array_equal(aco.best, pts[1])
    for i, t in enumerate(aco.tau):
        assert int(np.argmax(t)) == int(pts[1][i])


def test_optuna_agent_answers_repeats_from_memory(collective):
    tpe = make_agent("tpe", collective, seed=0)
    pts = drive(tpe, collective, 40, 1)
    assert len({p.tobytes() for p in pts}) == 40
    assert len(tpe._study.trials) >= 40


def test_bo_runs_a_few_steps(collective):
    bo = make_agent("bo", collective, seed=0, n_startup_trials=4, max_history=12)
    pts = drive(bo, collective, 7, 1)
    assert len(pts) == 7 and all(collective.is_feasible(p) for p in pts)


def test_rl_agent_learns_through_the_env(collective):
    rl = make_agent("rl", collective, seed=0, n_steps=8, batch_size=4, n_epochs=1)
    pts = drive(rl, collective, 20, 1)  # more than two PPO updates
    assert len(pts) == 20 and all(collective.is_feasible(p) for p in pts)
    again = drive(make_agent("rl", collective, seed=0, n_steps=8, batch_size=4, n_epochs=1), collective, 20, 1)
    np.testing.assert_array_equal(pts, again)


def test_ga_random_immigrants(collective, monkeypatch):
    """immigrants=1 replaces every child by a fresh random sample; immigrants=0 breeds every ask after the first
    population; out-of-range values are configuration errors."""
    from cosmic.agents._ga import GeneticAgent

    bred: list[int] = []
    real_child = GeneticAgent._child
    monkeypatch.setattr(GeneticAgent, "_child", lambda self: bred.append(1) or real_child(self))
    drive(make_agent("ga", collective, seed=0, population=4, immigrants=1.0), collective, 4, 8)
    assert bred == []
    drive(make_agent("ga", collective, seed=0, population=4, immigrants=0.0), collective, 4, 8)
    assert len(bred) == 4 * 8 - 8  # the first batch is asked before any tell: all sampled
    with pytest.raises(ConfigError, match="immigrants"):
        make_agent("ga", collective, seed=0, immigrants=1.5)
