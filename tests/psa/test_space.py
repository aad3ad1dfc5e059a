"""Properties of compiled spaces: feasible samples, round trips, neighbours, exact counts against brute force."""

from __future__ import annotations

import copy
import itertools
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cosmic
from cosmic.errors import ConfigError
from cosmic.psa import Space, feasibility, list_presets, load_psa
from cosmic.sim.config import config_from_dict

from .psa_testdata import TINY_PSA, write_psa

PRESETS = list_presets()
FULL = [p for p in PRESETS if p.endswith("-full")]
SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def test_48_presets_named_by_system_model_mode() -> None:
    want = {
        f"cosmic-{s}-{m}-{mode}"
        for s in ("s1", "s2", "s3")
        for m in ("gpt3-13b", "gpt3-175b", "vit-base", "vit-large")
        for mode in ("workload", "collective", "network", "full")
    }
    assert want <= set(PRESETS)


@SETTINGS
@given(name=st.sampled_from(PRESETS), seed=st.integers(0, 2**32 - 1))
def test_preset_samples_are_feasible_and_simulate(name: str, seed: int) -> None:
    space = load_psa(name)
    points = space.sample(np.random.default_rng(seed), 3)
    assert points.shape == (3, len(space.dim_names)) and points.dtype == np.int64
    for p in points:
        assert space.violations(p) == []
        assert space.is_feasible(p)
        cfg = space.decode(p)
        assert cfg.parallel.n_npus == cfg.network.n_npus == space.n_npus
        assert cfg.model.heads % cfg.parallel.tp == 0
        result = cosmic.simulate(cfg)  # raises InfeasibleError if the config were not feasible
        assert result.step_time_s > 0
        for obj in space.objectives:
            assert math.isfinite(obj.value(result, cfg))


@SETTINGS
@given(name=st.sampled_from(PRESETS), seed=st.integers(0, 2**32 - 1))
def test_encode_decode_round_trip(name: str, seed: int) -> None:
    space = load_psa(name)
    p = space.sample(np.random.default_rng(seed), 1)[0]
    cfg = space.decode(p)
    assert np.array_equal(space.encode(cfg), p)
    # through YAML, as `cosmic psa sample` hands configs to `cosmic simulate`
    again = config_from_dict(cfg.to_yaml_dict())
    assert np.array_equal(space.encode(again), p)
    assert space.decode(space.encode(again)).model_dump(exclude={"system"}) == again.model_dump(exclude={"system"})


@SETTINGS
@given(name=st.sampled_from(PRESETS), seed=st.integers(0, 2**32 - 1))
def test_neighbours_are_feasible_and_differ_in_one_coordinate(name: str, seed: int) -> None:
    space = load_psa(name)
    p = space.sample(np.random.default_rng(seed), 1)[0]
    nbrs = space.neighbours(p)
    assert nbrs
    for q in nbrs:
        assert int(np.sum(q != p)) == 1
        assert space.violations(q) == []
    # every feasible single-coordinate change is listed
    expected = 0
    for i, card in enumerate(space.cardinalities):
        for j in range(card):
            if j != p[i]:
                q = p.copy()
                q[i] = j
                expected += space.violations(q) == []
    assert expected == len(nbrs)


@settings(max_examples=40, deadline=None)
@given(point=st.lists(st.integers(0, 10**6), min_size=18, max_size=18))
def test_every_box_point_meets_the_equality_constraints(point: list[int]) -> None:
    """Any integer vector in the box (as GA crossover or an RL action produces) satisfies DP*TP*PP*SP = NPUs and
    prod(npus) = NPUs; only the declared constraints can be violated."""
    space = load_psa("cosmic-s2-gpt3-13b-full")
    p = np.array([x % c for x, c in zip(point, space.cardinalities, strict=True)], dtype=np.int64)
    cfg = space.decode(p)
    assert cfg.parallel.n_npus == cfg.network.n_npus == 2048
    assert set(space.violations(p)) <= {"dim0_not_switch"}
    assert (space.violations(p) == []) == (cfg.network.dims[0].topology.value != "Switch")


def _brute_force_tiny() -> int:
    """Count the tiny space by trying every raw knob combination through `config_from_dict` (the simulator's own
    checks) plus the two declared constraints written out in Python."""
    n = 0
    for dp, sp, pp in itertools.product([1, 2, 4, 8, 16], [1, 2, 4, 8], [1, 2, 4]):
        if 16 % (dp * sp * pp):
            continue
        tp = 16 // (dp * sp * pp)
        for npus in itertools.product([2, 4, 8], repeat=2):
            for topo in itertools.product(["Ring", "Switch", "FullyConnected"], repeat=2):
                if topo[0] == "Switch" or not (dp <= 4 or "Ring" in topo):
                    continue
                d = copy.deepcopy(TINY_PSA["base"])
                d["parallel"].update(dp=dp, tp=tp, pp=pp, sp=sp)
                for i in range(2):
                    d["network"]["dims"][i].update(npus=npus[i], topology=topo[i])
                try:
                    config_from_dict(d)
                except ConfigError:
                    continue
                n += 1
    return n


def test_feasible_count_equals_brute_force(tiny_psa_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    want = _brute_force_tiny()
    assert want > 0
    space = load_psa(tiny_psa_file)
    assert space.size_method == "exact (enumeration)"
    assert space.size_feasible == want
    assert space.size_total == 5 * 4 * 3 * 3**2 * 3**2
    # the factorised count (no whole-box enumeration) agrees
    monkeypatch.setattr(feasibility, "BOX_ENUM_LIMIT", 0)
    dp_space = load_psa(tiny_psa_file)
    assert dp_space.size_method == "exact (DP)"
    assert dp_space.size_feasible == want
    # and a Monte Carlo estimate is within its stated error
    monkeypatch.setattr(feasibility, "ENUM_LIMIT", 1)
    mc = load_psa(tiny_psa_file)
    assert mc.size_method.startswith("estimated (Monte Carlo, 20000 samples, ±")
    pct = float(mc.size_method.split("±")[1].rstrip("%)"))
    assert abs(mc.size_feasible - want) <= 2 * pct / 100 * want
    rows = mc.sample(np.random.default_rng(1), 50)
    assert all(mc.is_feasible(r) for r in rows)
    assert 0 < mc.acceptance_rate < 1


def test_sampling_is_uniform_over_the_feasible_set(tiny_psa_file: Path) -> None:
    space = load_psa(tiny_psa_file)
    rows = space.sample(np.random.default_rng(0), 40000)
    distinct = {tuple(r) for r in rows}
    assert len(distinct) == space.size_feasible  # 40000 draws over a few hundred points hit every one
    counts = np.unique(rows, axis=0, return_counts=True)[1]
    expected = len(rows) / space.size_feasible
    chi2 = float(np.sum((counts - expected) ** 2 / expected))
    df = space.size_feasible - 1
    assert chi2 < df + 5 * math.sqrt(2 * df)  # uniform: chi2 ~ df +- sqrt(2 df)


def test_small_preset_counts_by_hand() -> None:
    # collective mode: 4^4 all-reduce algorithms x 4 chunks x 2 policies x 2 strategies, no constraint
    col = load_psa("cosmic-s1-gpt3-175b-collective")
    assert col.size_total == col.size_feasible == 4**4 * 4 * 2 * 2
    # network mode on S3 (512 NPUs): NPU tuples from {4,8,16}^4 with product 512 are the 4 placements of the 8;
    # dimension 0 is not a Switch: 2 * 3^3 topologies; 10^4 bandwidths
    net = load_psa("cosmic-s3-gpt3-175b-network")
    assert net.size_total == 3**4 * 3**4 * 10**4
    assert net.size_feasible == 4 * (2 * 27) * 10**4
    assert net.size_method == "exact (DP)"


def test_workload_group_matches_check_config() -> None:
    """The joint (dp, pp, sp) coordinate holds exactly the combinations the simulator accepts."""
    space = load_psa("cosmic-s2-vit-base-workload")
    accepted = set()
    base = space.base.to_yaml_dict()
    for dp, sp, pp in itertools.product([2**i for i in range(10)], [2**i for i in range(10)], [1, 2, 4]):
        if 2048 % (dp * sp * pp):
            continue
        d = copy.deepcopy(base)
        d["parallel"].update(dp=dp, sp=sp, pp=pp, tp=2048 // (dp * sp * pp))
        try:
            config_from_dict(d)
        except ConfigError:
            continue
        accepted.add((dp, pp, sp))
    got = set()
    for j in range(space.cardinalities[0]):
        k = space.knobs(np.array([j, 0]))
        got.add((k["dp"], k["pp"], k["sp"]))
    assert got == accepted


def test_decode_builds_no_new_validation_and_equals_a_validated_config(monkeypatch: pytest.MonkeyPatch) -> None:
    """Decode copies cached sub-objects instead of re-validating (its speed is in benchmarks/bench_explore.py),
    and what it builds is what validating the same settings gives."""
    import cosmic.sim.config as config_module
    from cosmic.sim import config_from_dict

    space = load_psa("cosmic-s1-gpt3-175b-full")
    pts = space.sample(np.random.default_rng(0), 300)
    validations = []
    real_check = config_module.check_config
    monkeypatch.setattr(config_module, "check_config", lambda c: validations.append(c) or real_check(c))
    cfgs = [space.decode(p) for p in pts]
    assert validations == []
    monkeypatch.undo()
    for cfg in cfgs[:20]:
        assert config_from_dict(cfg.to_yaml_dict()) == cfg.model_copy(update={"system": None})


@pytest.mark.parametrize("name", ["cosmic-s1-gpt3-175b-full", "cosmic-s2-gpt3-13b-workload"])
def test_decode_equals_pydantic_model_copy(name: str) -> None:
    """Decode's own copy of the base (and its one-dict-update path for spaces without per-dimension knobs) gives
    exactly what pydantic's model_copy gives: same fields, same set-fields, no extras or private attributes."""
    from cosmic.psa.decode import updated as _updated

    space = load_psa(name)
    for p in space.sample(np.random.default_rng(1), 200):
        cfg = space.decode(p)
        upd = {k: getattr(cfg, k) for k in ("parallel", "training", "network", "collective", "accelerator")}
        ref = space.base.model_copy(update=upd)
        assert cfg == ref and cfg.model_fields_set == ref.model_fields_set
        assert _updated(space.base, upd) == ref
        k = space.knobs(p)
        assert (cfg.parallel.tp, cfg.parallel.pp, cfg.parallel.dp) == (k["tp"], k["pp"], k["dp"])


def test_encode_rejects_configs_outside_the_space() -> None:
    space = load_psa("cosmic-s1-gpt3-175b-network")
    base = space.base  # S1's dim 1 gives 7 * 25 = 175 GB/s per NPU: not in {50, 100, ..., 500}
    with pytest.raises(ConfigError, match="npu_bandwidth_gibps"):
        space.encode(base)
    wl = load_psa("cosmic-s1-gpt3-175b-workload")
    p = wl.encode(wl.base)
    assert wl.knobs(p)["dp"] == 8 and wl.knobs(p)["tp"] == 4
    other = wl.base.model_copy(update={"collective": wl.base.collective.model_copy(update={"chunks": 16})})
    with pytest.raises(ConfigError, match="chunks"):
        wl.encode(other)


def test_float_range_shared_mode_and_compute_knobs(tmp_path: Path) -> None:
    data = copy.deepcopy(TINY_PSA)
    data["knobs"] = {
        "network": {"link_gibps": {"float_range": [10, 40], "step": 7.5, "mode": "shared"}},
        "compute": {"peak_tflops": {"values": [5, 10, 20]}, "mem_gb": {"range": [40, 80], "step": 40}},
    }
    data["derived"] = {}
    data["constraints"] = {"fast_chip_fast_links": "peak_tflops < 20 or link_gibps[0] >= 25"}
    space = load_psa(write_psa(tmp_path, data))
    assert space.dim_names == ("link_gibps", "peak_tflops", "mem_gb")
    assert space.cardinalities == (5, 3, 2)
    assert space.size_feasible == 5 * 3 * 2 - 2 * 1 * 2  # 20 TFLOP/s with 10 or 17.5 GB/s links, either memory
    for p in space.sample(np.random.default_rng(0), 30):
        cfg = space.decode(p)
        bw = {d.link_gibps for d in cfg.network.dims}
        assert len(bw) == 1
        assert cfg.accelerator.peak_flop_per_s("bf16") in (5e12, 10e12, 20e12)
        assert cosmic.simulate(cfg).step_time_s > 0


def test_space_is_a_space() -> None:
    assert isinstance(load_psa("cosmic-s3-vit-base-workload"), Space)


ALIGN_BASE = {
    "model": {"name": "six", "layers": 3, "hidden": 96, "heads": 6, "seq_len": 64, "vocab": 100},
    "accelerator": "cosmic-s1-npu",
    "network": {"dims": [{"topology": "Ring", "npus": 6, "link_gibps": 50},
                         {"topology": "Switch", "npus": 4, "link_gibps": 25}]},
    "parallel": {"dp": 4, "tp": 6, "pp": 1, "sp": 1, "rank_order": "tp,sp,dp,pp"},
    "training": {"global_batch": 24},
}


def test_non_power_of_two_space_with_rank_order_matches_brute_force(tmp_path: Path) -> None:
    """Degrees and dimension sizes with factors of 3, so that the rank order decides whether parallel groups fit the
    network dimensions (the built-in alignment constraint); counted against `config_from_dict`."""
    dps, pps, sps = [1, 2, 3, 4, 6, 8, 12, 24], [1, 2, 3], [1, 2]
    orders = ["dp,tp,sp,pp", "tp,sp,dp,pp"]
    npus_vals = [2, 3, 4, 6, 8, 12]
    data = {
        "base": ALIGN_BASE,
        "knobs": {
            "workload": {"dp": {"values": dps}, "pp": {"values": pps}, "sp": {"values": sps},
                         "rank_order": {"values": orders}},
            "network": {"npus": {"values": npus_vals, "mode": "per_dim"}},
        },
        "derived": {"tp": {"rule": "npus_quotient"}},
    }
    space = load_psa(write_psa(tmp_path, data))
    want = 0
    for dp, pp, sp, order, npus in itertools.product(dps, pps, sps, orders, itertools.product(npus_vals, repeat=2)):
        if 24 % (dp * pp * sp):
            continue
        d = copy.deepcopy(ALIGN_BASE)
        d["parallel"].update(dp=dp, pp=pp, sp=sp, tp=24 // (dp * pp * sp), rank_order=order)
        for i in range(2):
            d["network"]["dims"][i]["npus"] = npus[i]
        try:
            config_from_dict(d)
        except ConfigError:
            continue
        want += 1
    assert 0 < want < math.prod(space.cardinalities)  # the alignment constraint does remove points
    assert space.size_feasible == want
    for p in space.sample(np.random.default_rng(0), 40):
        assert cosmic.simulate(space.decode(p)).step_time_s > 0


def test_space_pickles_for_process_pools() -> None:
    import pickle

    space = load_psa("cosmic-s2-gpt3-175b-full")
    clone = pickle.loads(pickle.dumps(space))
    p = space.sample(np.random.default_rng(3), 1)[0]
    assert clone.dim_names == space.dim_names and clone.size_feasible == space.size_feasible
    assert clone.decode(p) == space.decode(p)


@pytest.mark.parametrize("name", PRESETS)
def test_every_preset_samples_simulate(name: str) -> None:
    """Each of the 48 presets, not just those hypothesis happens to draw: two samples simulate without error."""
    space = load_psa(name)
    assert space.size_feasible > 0 and space.size_method.startswith("exact")
    for p in space.sample(np.random.default_rng(len(name)), 2):
        assert space.violations(p) == []
        assert cosmic.simulate(space.decode(p)).step_time_s > 0


def test_a_number_among_the_keys_of_a_psa_mapping_is_named_in_one_line(tmp_path: Path) -> None:
    """Found by the fuzzer: YAML allows number keys next to string keys, and sorting the unknown ones raised a
    TypeError (a traceback). Every such check names the first unknown key in a one-line ConfigError."""
    data = {
        "base": ALIGN_BASE,
        "knobs": {"workload": {"dp": {"values": [1, 2, 3, 4, 6, 8, 12, 24], 7: 1}}},
        "derived": {"tp": {"rule": "npus_quotient", 3: "x", "zz": 1}},
    }
    with pytest.raises(ConfigError) as info:
        load_psa(write_psa(tmp_path, data))
    assert "\n" not in str(info.value) and "unknown key" in str(info.value)
    data["knobs"]["workload"]["dp"] = {"values": [1, 2, 3, 4, 6, 8, 12, 24]}
    with pytest.raises(ConfigError, match=r"derived\.tp\.3: unknown key \(allowed: rule, from\)"):
        load_psa(write_psa(tmp_path, data))
