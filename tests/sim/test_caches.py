"""The simulator's shortcuts never change a number: stage runs, the network-free plan, the collective memo and the
step memo give what a from-scratch simulation gives."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import cosmic
from cosmic.psa import load_psa
from cosmic.sim import (
    Memory,
    clear_caches,
    memory_footprint,
    simulate,
    simulate_if_fits,
)
from cosmic.sim.step import overlap_cost_s
from cosmic.workload.pipeline import stage_layers, stage_runs
from tests.sim.helpers import dgx_config


@given(st.integers(1, 200), st.integers(1, 64))
def test_stage_runs_expand_to_the_layers_of_every_stage(n_layers: int, pp: int) -> None:
    pp = min(pp, n_layers)
    runs = [(int(r.first), int(r.count), int(r.layers)) for r in stage_runs(n_layers, pp) if r.count > 0]
    expanded = [n for _, count, n in runs for _ in range(count)]
    assert expanded == stage_layers(n_layers, pp)
    assert len(expanded) == pp and sum(expanded) == n_layers and max(expanded) - min(expanded) <= 1
    assert [s for s, _, _ in runs] == [sum(c for _, c, _ in runs[:i]) for i in range(len(runs))]
    assert len(runs) <= 4
    assert runs[0][0] == 0 and (pp == 1 or runs[-1][1] == 1)  # the head's stage is a run of its own
    # columns give the same runs as one layout at a time
    col = stage_runs(np.array([n_layers, n_layers]), np.array([pp, pp]))
    at0 = [tuple(int(np.broadcast_to(v, (2,))[0]) for v in (r.first, r.count, r.layers)) for r in col]
    assert [t for t in at0 if t[1] > 0] == runs


def _configs(n: int) -> list[cosmic.SystemConfig]:
    space = load_psa("cosmic-s1-gpt3-175b-full")
    return [space.decode(p) for p in space.sample(np.random.default_rng(3), n)]


def test_memory_footprint_and_simulate_if_fits_agree_with_simulate() -> None:
    fit = unfit = 0
    for cfg in _configs(300):
        r = simulate(cfg)
        assert memory_footprint(cfg) == r.memory
        got = simulate_if_fits(cfg)
        if r.fits_memory:
            fit += 1
            assert got == r
        else:
            unfit += 1
            assert isinstance(got, Memory) and got == r.memory
    assert fit and unfit


def test_results_do_not_depend_on_what_is_cached() -> None:
    cfgs = _configs(200)
    warm = [simulate(c) for c in cfgs]
    clear_caches()
    # equal but distinct objects (validated anew) miss every identity-keyed memo
    fresh = [simulate(cosmic.config_from_dict(c.to_yaml_dict())) for c in cfgs]
    assert fresh == warm


def test_rank_orders_differing_only_in_single_rank_groups_price_the_same() -> None:
    a = simulate(dgx_config(tp=8, pp=8, dp=16, rank_order=["tp", "sp", "dp", "pp"]))
    b = simulate(dgx_config(tp=8, pp=8, dp=16, rank_order=["sp", "tp", "dp", "pp"]))
    c = simulate(dgx_config(tp=8, pp=8, dp=16, rank_order=["tp", "dp", "pp", "sp"]))
    assert a == b == c
    # moving a group of more than one rank does change the step (TP leaves the NVSwitch node)
    d = simulate(dgx_config(tp=8, pp=8, dp=16, rank_order=["dp", "tp", "sp", "pp"]))
    assert d.step_time_s > a.step_time_s


def test_overlap_cost_closed_form() -> None:
    assert overlap_cost_s(0.0, 5.0, 0.2) == 0.0
    assert overlap_cost_s(3.0, 5.0, 0.0) == 0.0  # no contention: hidden
    assert overlap_cost_s(7.0, 5.0, 0.0) == 2.0  # what outlasts the compute
    # compute at 80% while the 3 s collective runs: 3 s give 2.4 s of work, 2.6 s remain -> 5.6 s in all
    assert abs(overlap_cost_s(3.0, 5.0, 0.2) - 0.6) < 1e-12
    # the slowed compute (5 / 0.8 = 6.25 s of wall time needed) ends inside a 7 s collective: the collective decides
    assert abs(overlap_cost_s(7.0, 5.0, 0.2) - 2.0) < 1e-12


def test_a_remembered_plan_does_not_skip_the_rank_order_check() -> None:
    """simulate_if_fits reuses the plan of a config that differs only in rank order, but still rejects a rank order
    whose groups do not fit the network (tp=4 then dp=6 straddles a dimension of 6)."""
    ok = cosmic.config_from_dict({
        "model": "gpt3-13b", "accelerator": "h100-sxm",
        "network": {"dims": [{"topology": "Switch", "npus": 6, "fabric": "nvlink4"},
                             {"topology": "Switch", "npus": 4, "fabric": "ib-ndr"}]},
        "parallel": {"tp": 4, "dp": 6, "rank_order": "dp,tp,sp,pp"},
        "training": {"global_batch": 24},
    })
    simulate_if_fits(ok)  # remembers the plan
    bad = ok.model_copy(update={"parallel": ok.parallel.model_copy(update={"rank_order": ("tp", "dp", "sp", "pp")})})
    with pytest.raises(cosmic.InfeasibleError, match="rank_order"):
        simulate_if_fits(bad)
    with pytest.raises(cosmic.InfeasibleError, match="rank_order"):
        simulate(bad)


def test_layer_costs_without_the_packed_key_are_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    """When codes do not fit the packed shard key, a batch prices its shards on its own: same figures."""
    from cosmic.sim import batch

    space = load_psa("cosmic-s1-gpt3-175b-full")
    cols, _ = space.decode_columns(space.sample(np.random.default_rng(5), 400))
    packed = batch._layer_costs(cols)
    monkeypatch.setattr(batch, "_BITS", (1, 1, 1, 1, 1, 1))
    unpacked = batch._layer_costs(cols)
    assert packed.keys() == unpacked.keys()
    for k in packed:
        np.testing.assert_array_equal(packed[k], unpacked[k])


def test_timing_only_the_fitting_rows_gives_the_same_figures() -> None:
    """simulate_columns(time_unfit=False) times exactly the rows that fit, with the figures a full batch gives."""
    from cosmic.sim.batch import simulate_columns

    space = load_psa("cosmic-s1-gpt3-175b-full")
    cols, _ = space.decode_columns(space.sample(np.random.default_rng(9), 600))
    full = simulate_columns(cols)
    part = simulate_columns(cols, time_unfit=False)
    fits = np.asarray(full.figures["fits_memory"], dtype=bool)
    assert 0 < fits.sum() < len(fits)
    np.testing.assert_array_equal(part.timed, full.ok & fits)
    for k, v in full.breakdown.items():
        np.testing.assert_array_equal(part.breakdown[k][fits], v[fits])
        assert np.isnan(part.breakdown[k][~fits]).all()
    np.testing.assert_array_equal(part.figures["step_time_s"][fits], full.figures["step_time_s"][fits])
    np.testing.assert_array_equal(part.comm_by_network_dim_s[fits], full.comm_by_network_dim_s[fits])
