"""Every registered agent honours the agent contract (cosmic.testing.check_agent), on a space where some box points
are infeasible and on one whose objectives are two."""

from __future__ import annotations

import pytest

from cosmic.agents import BaseAgent, agent_class, agent_names
from cosmic.explore import with_objectives
from cosmic.psa import load_psa
from cosmic.testing import check_agent

NETWORK = "cosmic-s1-gpt3-175b-network"  # a third of its box breaks `dim0_not_switch`
COLLECTIVE = "cosmic-s1-gpt3-175b-collective"
TINY = {  # keep the torch agents' budgets tiny: (hyper-parameters, rounds, batch)
    "bo": ({"n_startup_trials": 3, "max_history": 6}, 2, 3),
    "rl": ({"n_steps": 4, "batch_size": 4, "n_epochs": 1}, 3, 1),
}


@pytest.fixture(scope="module")
def network():
    return load_psa(NETWORK)


@pytest.mark.parametrize("name", agent_names())
def test_registered_agent_honours_the_contract(name, network):
    hyper, rounds, batch = TINY.get(name, ({}, 4, 8))
    check_agent(name, network, seed=3, rounds=rounds, batch=batch, hyper=hyper)


@pytest.mark.parametrize("name", [n for n in agent_names() if n not in TINY and agent_class(n).multi_objective])
def test_multi_objective_agents_honour_the_contract_on_two_objectives(name):
    two = with_objectives(load_psa(COLLECTIVE), ["step_time", "step_time*network_cost"])
    check_agent(name, two, seed=1, rounds=2, batch=8)


class _Repeater(BaseAgent):
    """Promises no repeats, then asks the same point every time."""

    name = "repeater"
    repeats_points = False

    def ask(self, n: int = 1):
        return self.space.sample(__import__("numpy").random.default_rng(0), n)


class _BadFlag(_Repeater):
    name = "bad-flag"
    default_batch = 0


def test_the_contract_catches_a_broken_promise(network):
    with pytest.raises(AssertionError, match="repeats_points"):
        check_agent(_Repeater, network, rounds=2, batch=4)
    with pytest.raises(AssertionError, match="default_batch"):
        check_agent(_BadFlag, network)
