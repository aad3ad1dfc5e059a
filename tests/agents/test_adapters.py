"""The Gymnasium and Optuna adapters of a PSA space (they live with the agents that use them)."""

from __future__ import annotations

import numpy as np

from cosmic.agents._optuna import suggest
from cosmic.agents.rl import action_space
from cosmic.psa import load_psa


def test_gymnasium_action_space_is_the_encoded_box() -> None:
    space = load_psa("cosmic-s1-vit-large-full")
    act = action_space(space, seed=0)
    assert tuple(act.nvec) == space.cardinalities
    p = act.sample()
    cfg = space.decode(p)
    assert cfg.parallel.n_npus == cfg.network.n_npus


def test_optuna_suggest_names_every_coordinate_by_its_kind() -> None:
    import optuna

    space = load_psa("cosmic-s1-vit-large-full")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(5):
        trial = study.ask()
        q = suggest(space, trial)
        assert q.shape == (len(space.dim_names),) and q.dtype == np.int64
        assert all(0 <= x < c for x, c in zip(q, space.cardinalities, strict=True))
        assert set(trial.params) == set(space.dim_names)
        for i, name in enumerate(space.dim_names):
            dist = trial.distributions[name]
            assert isinstance(dist, optuna.distributions.IntDistribution) == space.coordinate_is_ordered(i)
        study.tell(trial, 1.0)
