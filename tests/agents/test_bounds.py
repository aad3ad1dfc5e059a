"""The branch-and-bound lower bounds never exceed the step time they bound, and bnb's optimum is exhaustive's."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import cosmic
from cosmic.agents import make_agent
from cosmic.agents._bounds import box_bounds, coordinate_roles, relaxable_coordinates, relaxed_bounds
from cosmic.errors import ConfigError
from cosmic.explore import run_study, with_objectives
from cosmic.psa import Space, load_psa
from cosmic.sim.batch import simulate_columns

PRESETS = ["cosmic-s1-gpt3-175b-full", "cosmic-s2-vit-base-full", "cosmic-s3-gpt3-13b-full",
           "cosmic-s1-vit-large-network", "cosmic-s2-gpt3-13b-collective",
           "deepseek-v3-2048xh800-full", "mixtral-8x22b-256xh100-full"]  # MoE: expert all-to-all on the network
REL = 1e-12
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _times(space, pts):
    b = simulate_columns(space.decode_columns(pts)[0])
    t = b.figures["step_time_s"].copy()
    t[~b.ok] = np.nan
    return t, b.figures["fits_memory"] & b.ok


@pytest.mark.parametrize("preset", PRESETS)
def test_every_bound_stays_below_the_step_time_it_bounds(preset):
    space = load_psa(preset)
    rng = np.random.default_rng(19)
    pts = space.sample(rng, 1500)
    t, good = _times(space, pts)
    assert good.sum() > 100
    _, m, _, best = coordinate_roles(space)
    cards = np.asarray(space.cardinalities)
    # a random M box around each point: the fast corner is at or beyond the point's M values, the slow one below
    fast, slow = pts.copy(), pts.copy()
    if m:
        hi = rng.integers(pts[:, m], cards[m])
        lo = rng.integers(0, pts[:, m] + 1)
        fast[:, m] = np.where(best > 0, hi, lo)
        slow[:, m] = np.where(best > 0, lo, hi)
    _, q_dims = relaxable_coordinates(space, coordinate_roles(space)[2])
    half = [coords if d % 2 else [] for d, coords in enumerate(q_dims)]  # every other dimension relaxed
    bounds = {
        "relaxed": relaxed_bounds(space, fast, q_dims),
        "relaxed box": relaxed_bounds(space, fast, q_dims, slow),
        "half relaxed": relaxed_bounds(space, fast, half),
        "point": box_bounds(space, pts, pts),
        "box": box_bounds(space, fast, slow),
        "any slower network": box_bounds(space, fast),
        "compute only": box_bounds(space, pts, free_network=True),
    }
    for name, lb in bounds.items():
        over = lb[good] > t[good] * (1 + REL)
        assert not over.any(), f"{preset}: the {name} bound exceeds the step time at {np.flatnonzero(good)[over][:3]}"
        if space.memory_fit:
            assert np.isinf(lb[~good]).all() or name == "point", f"{name}: an unfit point kept a finite bound"
    # the bounds tighten as the box shrinks, and bound a point within a few percent
    assert (bounds["point"][good] >= bounds["box"][good] * (1 - REL)).all()
    assert np.median(bounds["point"][good] / t[good]) > 0.9


@pytest.mark.parametrize("preset", ["cosmic-s2-gpt3-13b-full", "cosmic-s1-gpt3-175b-full"])
def test_a_relaxed_box_bound_stays_below_every_point_of_the_box(preset):
    """Point 6: with the topology and the algorithms of every dimension free, the bound is below the step time of
    each of the box's points (all their combinations, evaluated), and it is tighter than the compute-only step."""
    space = load_psa(preset)
    _, m, r, best = coordinate_roles(space)
    q, q_dims = relaxable_coordinates(space, r)
    assert q and all(q_dims)  # topology and algorithm coordinates are relaxed on every dimension
    cards = np.asarray(space.cardinalities)
    rng = np.random.default_rng(6)
    checked = 0
    for p in space.sample(rng, 40):
        fast = p.copy()
        fast[m] = best
        grid = np.stack(np.unravel_index(np.arange(int(np.prod(cards[q]))), tuple(cards[q])), axis=1)
        box = np.repeat(p[None, :], len(grid), axis=0)
        box[:, q] = grid
        box = box[space.feasible_mask(box)]
        t, good = _times(space, box)
        slow = p.copy()
        slow[m] = np.where(best > 0, 0, cards[m] - 1)
        lb = relaxed_bounds(space, fast[None, :], q_dims, slow[None, :])[0]
        if not good.any():
            continue
        checked += 1
        assert lb <= t[good].min() * (1 + REL), f"{preset}: relaxed bound {lb} above the box's best {t[good].min()}"
        assert lb >= box_bounds(space, p[None, :], free_network=True)[0] * (1 - REL)
        if checked == 6:
            break
    assert checked >= 3


def test_bounds_agree_with_the_scalar_simulator():
    space = load_psa("cosmic-s1-gpt3-175b-full")
    pts = space.sample(np.random.default_rng(3), 40)
    lb = box_bounds(space, pts, pts)
    for p, b in zip(pts, lb, strict=True):
        try:
            r = cosmic.simulate(space.decode(p))
        except cosmic.errors.CosmicError:
            assert np.isinf(b)
            continue
        if r.fits_memory:
            assert b <= r.step_time_s * (1 + REL)
        else:
            assert np.isinf(b)


def _small_network_space() -> Space:
    return Space({
        "name": "small-network",
        "base": str(EXAMPLES / "cosmic-s1-gpt3-175b.yaml"),
        "knobs": {"network": {"topology": {"values": ["Ring", "Switch", "FullyConnected"], "mode": "per_dim"},
                              "npus": {"values": [4, 8, 16], "mode": "per_dim"},
                              "npu_bandwidth_gibps": {"range": [100, 400], "step": 100, "mode": "per_dim"}},
                  "workload": {"weight_sharded": {"values": [0, 1]}}},
        "derived": {"link_gibps": {"rule": "per_link", "from": "npu_bandwidth_gibps"},
                    "all_reduce": {"rule": "algorithm_from_topology", "from": "topology"}},
        "objectives": ["step_time"],
    })


@pytest.mark.parametrize("make", [lambda: load_psa("cosmic-s1-gpt3-175b-collective"),
                                  lambda: load_psa("cosmic-s3-vit-base-workload"), _small_network_space])
def test_bnb_certifies_what_exhaustive_finds(make):
    space = make()
    ex = run_study(space, "exhaustive", budget=10**7, persist=False)
    agent = make_agent("bnb", space, leaf=8)
    bb = run_study(space, agent, budget=10**7, persist=False)
    flat = run_study(space, make_agent("bnb", space, leaf=8, relax=False), budget=10**7, persist=False)
    assert flat.best_objective == pytest.approx(bb.best_objective, rel=1e-12)  # with and without the Q tree
    assert ex.complete and bb.complete
    assert bb.best_objective == pytest.approx(ex.best_objective, rel=1e-12)
    cert = agent.certificate()
    assert cert["certified"] and cert["gap_pct"] == 0.0
    assert bb.evaluations <= ex.evaluations


def test_a_stopped_bnb_reports_a_valid_gap():
    space = _small_network_space()
    ex = run_study(space, "exhaustive", budget=10**7, persist=False)
    agent = make_agent("bnb", space, leaf=4)
    run_study(space, agent, budget=3, persist=False, batch=1)
    cert = agent.certificate()
    assert not cert["certified"]
    assert cert["lower_bound"] <= ex.best_objective * (1 + REL)
    assert cert["gap_pct"] >= 0


def test_bnb_refuses_what_it_cannot_bound():
    space = with_objectives(load_psa("cosmic-s1-gpt3-175b-collective"), ["step_time*network_cost"])
    with pytest.raises(ConfigError, match="step time only"):
        make_agent("bnb", space)


def test_explore_json_prints_the_certificate_next_to_the_best(tmp_path):
    import json
    import subprocess
    import sys

    def explore(agent: str) -> dict:
        out = subprocess.run([sys.executable, "-m", "cosmic.cli", "explore", "cosmic-s1-gpt3-175b-collective",
                              "--agent", agent, "--budget", "5000", "--seed", "0", "--out", str(tmp_path), "--json"],
                             capture_output=True, text=True, check=True, timeout=300).stdout
        return json.loads(out)

    bnb, ex = explore("bnb"), explore("exhaustive")
    assert bnb["certified"] is True and bnb["gap_pct"] == 0.0
    assert bnb["best_objective"] == pytest.approx(ex["best_objective"], rel=1e-12)
    assert bnb["lower_bound"] == pytest.approx(bnb["best_objective"], rel=1e-12)
    assert ex["certified"] is True and ex["gap_pct"] == 0.0
    ga = run_study(load_psa("cosmic-s1-gpt3-175b-collective"), "ga", budget=64, seed=0, persist=False).to_dict()
    assert ga["certified"] is False and ga["gap_pct"] is None and ga["lower_bound"] is None
