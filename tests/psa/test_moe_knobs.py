"""The MoE knobs (ep, etp, moe_dispatcher, moe_overlap) and the MoE presets: both decodes agree, every point is a
configuration the simulator accepts, the joint coordinate holds exactly the accepted layouts, the all-to-all
algorithm knob moves the step."""

from __future__ import annotations

import copy
import itertools
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import cosmic
from cosmic.errors import ConfigError, CosmicError
from cosmic.psa import Space, list_presets, load_psa
from cosmic.sim.columns import StepColumns
from cosmic.sim.config import check_config

from .psa_testdata import TINY_BASE

ROOT = Path(__file__).resolve().parents[2]

SYSTEMS = ["deepseek-v3-2048xh800", "mixtral-8x22b-256xh100"]
MODES = ["workload", "collective", "network", "full"]
PRESETS = [f"{s}-{m}" for s in SYSTEMS for m in MODES]


def test_the_moe_presets_exist() -> None:
    assert set(PRESETS) <= set(list_presets())


@pytest.mark.parametrize("name", [f"{s}-{m}" for s in SYSTEMS for m in ("workload", "full")])
def test_moe_knobs_decode_the_same_in_both_paths(name: str) -> None:
    space = load_psa(name)
    pts = space.sample(np.random.default_rng(11), 300)
    cols, ok = space.decode_columns(pts)
    assert ok.all()
    cfgs = [space.decode(p) for p in pts]
    assert cols.same_as(StepColumns.from_configs(cfgs)) == []
    ep, etp, disp = cols.expert_columns()
    assert (ep == [c.parallel.ep for c in cfgs]).all()
    assert (etp == [c.parallel.expert_tp for c in cfgs]).all()
    assert {c.parallel.moe_dispatcher for c in cfgs} == {"alltoall", "allgather"}
    assert (disp == [c.parallel.moe_dispatcher == "allgather" for c in cfgs]).all()
    assert len({c.parallel.ep for c in cfgs}) > 2 and {c.training.moe_overlap for c in cfgs} == {False, True}


@pytest.mark.parametrize("name", PRESETS)
def test_every_sampled_point_passes_the_simulators_checks(name: str) -> None:
    space = load_psa(name)
    assert space.size_method.startswith("exact")
    for p in space.sample(np.random.default_rng(5), 150):
        check_config(space.decode(p))  # raises on an infeasible configuration


def test_the_joint_coordinate_holds_exactly_the_accepted_layouts() -> None:
    space = load_psa("mixtral-8x22b-256xh100-workload")
    names = ("dp", "tp", "pp", "ep", "etp", "micro_batch")
    doms = [space.knob_defs[k].domain.values for k in names]
    base = space.base
    accepted = set()
    for combo in itertools.product(*doms):
        v = dict(zip(names, combo, strict=True))
        par = base.parallel.model_copy(update={k: v[k] for k in names[:5]})
        cfg = base.model_copy(update={"parallel": par,
                                      "training": base.training.model_copy(update={"micro_batch": v["micro_batch"]})})
        try:
            check_config(cfg)
        except (CosmicError, ValueError):
            continue
        accepted.add(combo)
    got = {tuple(a[2] for a in asg) for asg in space._coords[0].assign}
    assert space._coords[0].knobs == names
    assert got == accepted and 10 < len(got) < 0.5 * np.prod([len(d) for d in doms])
    free = np.prod(space.cardinalities[1:])
    assert space.size_feasible == len(accepted) * free  # the count stays exact


def test_published_deepseek_layout_is_in_the_workload_space() -> None:
    space = load_psa("deepseek-v3-2048xh800-workload")
    layouts = {(a["dp"], a["tp"], a["pp"], a["ep"]) for a in space._scalar_assign[0]}
    assert (128, 1, 16, 64) in layouts
    assert all(a["ep"] >= 1 and 256 % a["ep"] == 0 for a in space._scalar_assign[0])
    published = cosmic.load_config(ROOT / "examples" / "moe" / "deepseek-v3-2048xh800.yaml")
    par = published.parallel.model_copy(update={"sequence_parallel": True})  # the presets' (no effect at tp 1)
    p = space.encode(published.model_copy(update={"parallel": par}))  # its etp follows tp (1): the space's etp 1
    got = space.decode(p)
    assert got.parallel.expert_tp == 1 and cosmic.simulate(got).step_time_s == cosmic.simulate(published).step_time_s


@pytest.mark.parametrize("system", SYSTEMS)
def test_the_all_to_all_knob_changes_the_step(system: str) -> None:
    space = load_psa(f"{system}-collective")
    dims = list(space.dim_names)
    p0 = space.sample(np.random.default_rng(0), 1)[0]
    a2a = cosmic.collective.algorithms.Collective.ALL_TO_ALL
    times = {}
    for algo in ("ring", "direct"):
        p = p0.copy()
        for d in ("all_to_all[0]", "all_to_all[1]"):
            p[dims.index(d)] = space._coords[dims.index(d)].labels.index(algo)
        cfg = space.decode(p)
        got = cfg.collective.algorithms(a2a, tuple(d.topology for d in cfg.network.dims))
        assert [g.value for g in got] == [algo, algo]
        times[algo] = cosmic.simulate(cfg).step_time_s
    # on the base's Switch dimensions a ring relays (p-1) steps where direct sends to every peer at once
    assert times["ring"] > times["direct"] * (1 + 1e-6)


def _tiny_moe(knobs: dict[str, Any]) -> dict[str, Any]:
    base = copy.deepcopy(TINY_BASE)
    base["model"] = {**base["model"], "moe": {"experts": 4, "top_k": 2, "expert_ffn_hidden": 64}}
    base["parallel"] = {"dp": 8, "tp": 1, "pp": 2, "sp": 1, "sequence_parallel": True, "rank_order": "tp,sp,dp,pp"}
    return {"base": base, "knobs": {"workload": knobs}}


def test_etp_follows_tp_unless_searched() -> None:
    space = Space(_tiny_moe({"dp": {"values": [1, 2, 4, 8]}, "tp": {"values": [1, 2]},
                             "ep": {"values": [1, 2, 4, 8]}}), name="tiny-moe")
    pts = space.sample(np.random.default_rng(0), 100)
    cfgs = [space.decode(p) for p in pts]
    assert all(c.parallel.etp is None for c in cfgs) and {c.parallel.tp for c in cfgs} == {1, 2}
    assert {c.parallel.ep for c in cfgs} == {1, 2, 4}  # 8 does not divide the 4 experts
    cols, _ = space.decode_columns(pts)
    assert (cols.expert_columns()[1] == cols.tp).all()
    for c in cfgs:
        check_config(c)


def test_ep_on_a_dense_model_keeps_only_ep_1() -> None:
    psa = {"base": TINY_BASE, "knobs": {"workload": {"dp": {"values": [2, 4]}, "ep": {"values": [1, 2]}}}}
    space = Space(psa, name="dense-ep")
    assert {a["ep"] for a in space._scalar_assign[0]} == {1}


def test_a_bad_dispatcher_is_a_one_line_error() -> None:
    with pytest.raises(ConfigError, match="moe_dispatcher") as e:
        Space(_tiny_moe({"moe_dispatcher": {"values": ["alltoall", "deepep"]}}), name="bad")
    assert "\n" not in str(e.value) and "allgather" in str(e.value)
