"""Space.decode_columns against the scalar decode (StepColumns.from_configs), and Space.feasible_mask against
is_feasible, over every preset, the benchmark space and PSAs that exercise every knob, mode and derived rule."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cosmic.psa import Space, list_presets, load_psa
from cosmic.sim.columns import ALGORITHMS, COLLECTIVES, TOPOLOGIES, StepColumns

from .psa_testdata import TINY_BASE

ROOT = Path(__file__).resolve().parents[2]
BENCH_SPACE = ROOT / "benchmarks" / "spaces" / "gpt3-175b-1024-workload.yaml"

ALGOS = ["ring", "direct", "halvingDoubling", "doubleBinaryTree"]

# every workload, collective, network and compute knob; scalar, per_dim and shared modes; npus_quotient, implicit
# copies of all_reduce, zero -> weight_sharded, link_gbps -> the three other bandwidth views
EVERY_KNOB: dict[str, Any] = {
    "base": TINY_BASE,
    "knobs": {
        "workload": {
            "dp": {"pow2": [1, 16]}, "pp": {"values": [1, 2, 4]}, "sp": {"values": [1, 2]},
            "micro_batch": {"values": [1, 2, 4]}, "schedule": {"values": ["gpipe", "1f1b", "interleaved"]},
            "recompute": {"values": ["none", "selective", "full"]}, "zero": {"values": [0, 1, 2, 3]},
            "sequence_parallel": {"values": [False, True]},
            "rank_order": {"values": ["dp,tp,sp,pp", "tp,dp,pp,sp", "pp,sp,tp,dp"]},
        },
        "collective": {
            "all_reduce": {"values": ALGOS, "mode": "per_dim"}, "chunks": {"values": [1, 4, 16]},
            "scheduling": {"values": ["LIFO", "FIFO"]}, "multidim": {"values": ["baseline", "localBWAware"]},
            "active_chunks": {"values": [1, 2]},
        },
        "network": {
            "topology": {"values": ["Ring", "Switch", "FullyConnected"], "mode": "per_dim"},
            "npus": {"values": [2, 4, 8], "mode": "per_dim"},
            "link_gbps": {"float_range": [10.5, 200.25], "num": 5, "mode": "shared"},
            "latency_ns": {"float_range": [0, 900], "step": 150.5, "mode": "per_dim"},
        },
        "compute": {
            "peak_tflops": {"values": [100, 312.5, 989]}, "mem_gb": {"values": [16, 80.5]},
            "mem_bw_gbps": {"float_range": [1000, 3000], "num": 3},
        },
    },
    "derived": {"tp": {"rule": "npus_quotient", "from": ["dp", "sp", "pp"]}},
    "constraints": {"fast_dim0": "link_gbps[0] >= 50 or latency_ns[0] < 300"},
}

# searched topology with auto algorithms: implicit algorithm_from_topology and copies; per_link from the NPU
# bandwidth; weight_sharded -> zero; an explicit copy of one algorithm onto another
TOPOLOGY_RULES: dict[str, Any] = {
    "base": TINY_BASE,
    "knobs": {
        "workload": {"weight_sharded": {"values": [0, 1]}},
        "network": {
            "topology": {"values": ["Ring", "Switch", "FullyConnected"], "mode": "per_dim"},
            "npus": {"values": [2, 4, 8], "mode": "per_dim"},
            "npu_bandwidth_gibps": {"range": [50, 300], "step": 50, "mode": "per_dim"},
        },
        "collective": {"reduce_scatter": {"values": ALGOS, "mode": "shared"}},
    },
    "derived": {"all_to_all": {"rule": "copy", "from": "reduce_scatter"}},
    "constraints": {"dim0_not_switch": "topology[0] != 'Switch'"},
}

EXPLICIT_RULES: dict[str, Any] = {
    "base": TINY_BASE,
    "knobs": {
        "network": {
            "topology": {"values": ["Ring", "Switch", "FullyConnected"], "mode": "per_dim"},
            "npu_bandwidth_gbps": {"values": [40, 100.5], "mode": "per_dim"},
        },
    },
    "derived": {
        "link_gbps": {"rule": "per_link", "from": "npu_bandwidth_gbps"},
        "all_reduce": {"rule": "algorithm_from_topology", "from": "topology"},
        "all_gather": {"rule": "copy", "from": "all_reduce"},
    },
}

# the base fixes all_reduce per dimension and all_to_all while the topology is searched: they stay, all_gather and
# reduce_scatter (auto) fall back to all_reduce
PARTIAL_AUTO: dict[str, Any] = {
    "base": {**TINY_BASE, "collective": {"all_reduce": ["ring", "halvingDoubling"], "all_to_all": "direct"}},
    "knobs": {"network": {"topology": {"values": ["Ring", "Switch", "FullyConnected"], "mode": "per_dim"}},
              "collective": {"chunks": {"values": [2, 8]}}},
}

# ASTRA-sim fidelity adds its built-in constraint on the algorithms; a component too large to enumerate
# (400 x 400 latencies) is checked by rejection
ASTRA_AND_LARGE: dict[str, Any] = {
    "base": {**TINY_BASE, "collective": {"fidelity": "astra-sim"}},
    "knobs": {
        "collective": {"all_reduce": {"values": ALGOS, "mode": "per_dim"}},
        "network": {"npus": {"values": [2, 4, 8, 16], "mode": "per_dim"},
                    "latency_ns": {"range": [0, 399], "mode": "per_dim"}},
    },
    "constraints": {"latency_budget": "latency_ns[0] + latency_ns[1] < 500"},
}

CUSTOM = {"every_knob": EVERY_KNOB, "topology_rules": TOPOLOGY_RULES, "explicit_rules": EXPLICIT_RULES,
          "partial_auto": PARTIAL_AUTO, "astra_and_large": ASTRA_AND_LARGE}


def _space(name: str) -> Space:
    if name in CUSTOM:
        return Space(copy.deepcopy(CUSTOM[name]), name=name)
    return load_psa(BENCH_SPACE if name == "bench" else name)


def _box_points(space: Space, rng: np.random.Generator, n: int) -> np.ndarray:
    return np.stack([rng.integers(0, c, n) for c in space.cardinalities], axis=1).astype(np.int64)


SPACES = [*list_presets(), "bench", *CUSTOM]


@pytest.mark.parametrize("name", SPACES)
def test_decode_columns_equals_scalar_decode(name: str) -> None:
    space = _space(name)
    rng = np.random.default_rng(7)
    pts = np.concatenate([space.sample(rng, 200), _box_points(space, rng, 100)])  # feasible and any box points
    cols, ok = space.decode_columns(pts)
    assert ok.dtype == bool and ok.all()
    ref = StepColumns.from_configs([space.decode(p) for p in pts])
    assert cols.same_as(ref) == []
    assert cols.n == len(pts)
    assert cols.config(5) == space.decode(pts[5])


def test_custom_spaces_exercise_every_rule() -> None:
    rules = {d.rule for name in CUSTOM for d in _space(name).derived}
    assert rules == {"npus_quotient", "copy", "algorithm_from_topology", "per_link", "zero_of", "weight_sharded_of",
                     "unit_view"}
    modes = {k.mode.value for name in CUSTOM for k in _space(name).knob_defs.values()}
    assert modes == {"scalar", "per_dim", "shared"}


def test_algorithms_resolve_as_the_collective_config() -> None:
    ar, ag, rs, a2a = (COLLECTIVES.index(k) for k in ("all_reduce", "all_gather", "reduce_scatter", "all_to_all"))
    cols, _ = _space("partial_auto").decode_columns(_box_points(_space("partial_auto"), np.random.default_rng(0), 200))
    algos = cols.collective.algorithms
    assert (algos[:, ar, 0] == ALGORITHMS.index("ring")).all()
    assert (algos[:, ar, 1] == ALGORITHMS.index("halving_doubling")).all()
    assert (algos[:, ag] == algos[:, ar]).all() and (algos[:, rs] == algos[:, ar]).all()
    assert (algos[:, a2a] == ALGORITHMS.index("direct")).all()
    space = _space("topology_rules")  # auto all_reduce: the topology's default, copied onto all_gather
    cols, _ = space.decode_columns(_box_points(space, np.random.default_rng(0), 200))
    algos = cols.collective.algorithms
    default = {"Ring": "ring", "FullyConnected": "direct", "Switch": "halving_doubling"}
    want = np.array([ALGORITHMS.index(default[t.value]) for t in TOPOLOGIES])
    topo = cols.network.topology
    assert (algos[:, ar] == want[topo]).all() and (algos[:, ag] == want[topo]).all()
    assert (algos[:, a2a] == algos[:, rs]).all()


@pytest.mark.parametrize("name", ["every_knob", "cosmic-s1-gpt3-175b-full"])
def test_ok_is_false_exactly_where_decode_raises(name: str) -> None:
    space = _space(name)
    rng = np.random.default_rng(1)
    pts = _box_points(space, rng, 60)
    card = np.array(space.cardinalities)
    pts[::3, 0] = card[0]  # one past the box
    pts[1::7, -1] = -1
    cols, ok = space.decode_columns(pts)
    raised = []
    for p in pts:
        try:
            space.decode(p)
            raised.append(False)
        except ValueError:
            raised.append(True)
    assert (~ok == np.array(raised)).all() and 0 < (~ok).sum() < len(pts)
    good = np.flatnonzero(ok)
    ref = StepColumns.from_configs([space.decode(pts[i]) for i in good])
    sub, _ = space.decode_columns(pts[good])
    assert sub.same_as(ref) == []


def test_decode_columns_rejects_a_matrix_of_the_wrong_shape() -> None:
    space = _space("topology_rules")
    with pytest.raises(ValueError, match="matrix"):
        space.decode_columns(np.zeros((3, len(space.cardinalities) + 1), dtype=np.int64))
    cols, ok = space.decode_columns(np.zeros((0, len(space.cardinalities)), dtype=np.int64))
    assert cols.n == 0 and ok.shape == (0,)


@pytest.mark.parametrize("name", ["cosmic-s1-gpt3-175b-full", "cosmic-s3-vit-base-network", "bench", *CUSTOM])
def test_feasible_mask_equals_is_feasible(name: str) -> None:
    space = _space(name)
    pts = _box_points(space, np.random.default_rng(3), 400)
    mask = space.feasible_mask(pts)
    want = np.array([space.is_feasible(p) for p in pts])
    assert mask.dtype == bool and (mask == want).all()
    assert mask.sum() > 0
    if name not in ("bench", "explicit_rules", "partial_auto"):  # these have no infeasible box point
        assert mask.sum() < len(pts)
    assert space.feasible_mask(space.sample(np.random.default_rng(4), 50)).all()


def test_feasible_mask_checks_a_component_too_large_to_enumerate() -> None:
    space = _space("astra_and_large")
    assert any(c.table is None for c in space._components)  # the latency component is sampled by rejection
    pts = _box_points(space, np.random.default_rng(5), 300)
    lat = np.array([space.knobs(p)["latency_ns"] for p in pts])
    mask = space.feasible_mask(pts)
    assert not mask[lat.sum(axis=1) >= 500].any()


def test_feasible_mask_rejects_points_outside_the_box() -> None:
    space = _space("every_knob")
    pts = space.sample(np.random.default_rng(0), 4)
    pts[2, 1] = space.cardinalities[1]
    with pytest.raises(ValueError, match="outside the box"):
        space.feasible_mask(pts)
