"""Hybrid sharded data parallelism (parallel.shard_group): closed forms, invariants, both paths, the PSA knob."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest

import cosmic
from cosmic.collective.algorithms import Collective
from cosmic.errors import CosmicError
from cosmic.workload.memory import GRAD_BYTES, OPTIMIZER_BYTES, WEIGHT_BYTES


def _cfg(shard: int | None, zero: int = 3, dp: int = 64, **training: Any) -> cosmic.SystemConfig:
    """Llama 3 8B over 64 H100 (8 nodes of 8): pure data parallelism, sharded over `shard` ranks."""
    par: dict[str, Any] = {"dp": dp, "zero": zero}
    if shard is not None:
        par["shard_group"] = shard
    return cosmic.config_from_dict({
        "model": "llama3-8b", "accelerator": "h100-sxm",
        "network": {"dims": [{"topology": "Switch", "npus": 8, "fabric": "nvlink4"},
                             {"topology": "Switch", "npus": dp // 8, "fabric": "ib-ndr"}]},
        "parallel": par, "training": {"global_batch": 256, "micro_batch": 2, **training},
    })


@pytest.mark.parametrize("zero", [1, 2, 3])
def test_a_shard_group_of_the_whole_dp_group_is_full_sharding(zero: int) -> None:
    a, b = cosmic.simulate(_cfg(None, zero)), cosmic.simulate(_cfg(64, zero))
    assert a.step_time_s == b.step_time_s
    assert a.memory == b.memory
    assert a.comm_by_network_dim_s == b.comm_by_network_dim_s


@pytest.mark.parametrize("zero", [1, 2, 3])
def test_states_shard_over_the_shard_group_only_closed_form(zero: int) -> None:
    """Memory: weights (ZeRO-3), gradients (ZeRO >= 2) and optimizer states (ZeRO >= 1) divided by the shard group,
    not by DP (ZeRO section 3.1 bytes per parameter)."""
    from cosmic.sim.engine import step_inputs
    from cosmic.sim.step import plan

    full, hyb = cosmic.simulate(_cfg(None, zero)), cosmic.simulate(_cfg(8, zero))
    p = plan(step_inputs(_cfg(8, zero))).params[0]
    assert hyb.memory.optimizer_bytes == pytest.approx(p * OPTIMIZER_BYTES / 8, rel=1e-12)
    assert full.memory.optimizer_bytes == pytest.approx(p * OPTIMIZER_BYTES / 64, rel=1e-12)
    if zero >= 2:
        assert hyb.memory.gradients_bytes == pytest.approx(p * GRAD_BYTES / 8, rel=1e-12)
    if zero == 3:
        assert hyb.memory.weights_bytes == pytest.approx(
            p * WEIGHT_BYTES / 8 + 2 * p / 32 * WEIGHT_BYTES, rel=1e-12)


@pytest.mark.parametrize("zero", [1, 2, 3])
def test_hsdp_memory_lies_between_no_and_full_sharding(zero: int) -> None:
    none = cosmic.simulate(_cfg(None, 0)).memory.total_bytes
    full = cosmic.simulate(_cfg(None, zero)).memory.total_bytes
    mems = [cosmic.simulate(_cfg(s, zero)).memory.total_bytes for s in (2, 4, 8, 16, 32)]
    assert all(full <= m <= none for m in mems)
    assert all(a >= b for a, b in itertools.pairwise(mems))


def test_gradients_reduce_scatter_in_the_shard_group_and_all_reduce_across_replicas() -> None:
    """Closed form of the ZeRO-3 gradient collective of one layer under HSDP: a reduce-scatter of the layer's
    gradient in the shard group (NVLink here) plus an all-reduce of its 1/shard part across the replicas (IB),
    and the weight gather stays in the shard group."""
    from cosmic.sim.engine import communicator, step_inputs
    from cosmic.sim.step import layer_comm, plan, stage_rows

    cfg = _cfg(8)
    x = step_inputs(cfg)
    p = plan(x)
    comm = communicator(cfg)
    assert comm.members["shard"] == (8, 1) and comm.members["replica"] == (1, 8)
    rows = stage_rows(x, p, layer_comm(x, p, comm), comm)
    per_layer = p.params[0] / cfg.model.layers
    rs = comm(Collective.REDUCE_SCATTER, per_layer * GRAD_BYTES, "shard").total_s
    ar = comm(Collective.ALL_REDUCE, per_layer * GRAD_BYTES / 8, "replica").total_s
    ag = comm(Collective.ALL_GATHER, per_layer * WEIGHT_BYTES / 8, "shard").total_s
    row = rows[0]
    assert row is not None
    assert row.z3_rs.total_s == pytest.approx(rs + ar, rel=1e-12)
    assert row.z3_ag.total_s == pytest.approx(ag, rel=1e-12)
    assert row.z3_ag.per_dim_s[1] == 0.0  # no gather crosses the nodes


def test_zero1_hsdp_reduces_and_gathers_per_step_closed_form() -> None:
    """ZeRO-1 under HSDP (Megatron's partial distributed optimizer): the step's gradients reduce-scatter over the
    shard group and all-reduce across the replicas; the updated weights gather over the shard group."""
    from cosmic.sim.engine import communicator, step_inputs
    from cosmic.sim.step import layer_comm, plan, stage_rows, tails

    cfg = _cfg(8, 1, dp_overlap=False)
    x = step_inputs(cfg)
    p = plan(x)
    comm = communicator(cfg)
    c = layer_comm(x, p, comm)
    tl = tails(x, p, c, stage_rows(x, p, c, comm), comm, True, 1, False)
    t = tl[0]
    assert t is not None
    g = p.params[0] * GRAD_BYTES
    want = (comm(Collective.REDUCE_SCATTER, g, "shard").total_s
            + comm(Collective.ALL_REDUCE, g / 8, "replica").total_s)
    assert t.t_dp == pytest.approx(want, rel=1e-12)
    assert t.gather_s == pytest.approx(
        comm(Collective.ALL_GATHER, p.params[0] * WEIGHT_BYTES / 8, "shard").total_s, rel=1e-12)


def test_bad_shard_groups_are_one_line_errors() -> None:
    with pytest.raises(CosmicError, match=r"parallel.shard_group: shard_group=3 must divide dp\*sp = 64"):
        cosmic.simulate(_cfg(3))
    with pytest.raises(CosmicError, match=r"parallel.shard_group: .*shards nothing with zero 0"):
        cosmic.simulate(_cfg(8, 0))
    with pytest.raises(CosmicError, match=r"parallel.shard_group: .*does not split"):
        # nodes of 6: a shard group of 8 would hold one node and a third of the next
        cosmic.simulate(cosmic.config_from_dict({
            "model": "llama3-8b", "accelerator": "h100-sxm",
            "network": {"dims": [{"topology": "Switch", "npus": 6, "fabric": "nvlink4"},
                                 {"topology": "Switch", "npus": 4, "fabric": "ib-ndr"}]},
            "parallel": {"dp": 24, "zero": 3, "shard_group": 8}, "training": {"global_batch": 48}}))


def test_batch_path_reads_the_shard_group() -> None:
    from cosmic.sim.batch import simulate_columns
    from cosmic.sim.columns import StepColumns

    cfgs = [_cfg(s, z) for z in (1, 2, 3) for s in (None, 64, 16, 8, 2)]
    b = simulate_columns(StepColumns.from_configs(cfgs))
    assert b.ok.all()
    rs = [cosmic.simulate(c) for c in cfgs]
    assert np.allclose(b.figures["step_time_s"], [r.step_time_s for r in rs], rtol=1e-12, atol=0)
    assert np.allclose(b.figures["memory_bytes"], [r.memory.total_bytes for r in rs], rtol=1e-12, atol=0)


def test_the_psa_searches_the_shard_group(tmp_path: Any) -> None:
    from cosmic.psa import load_psa
    from cosmic.sim.columns import StepColumns
    from tests.psa.psa_testdata import write_psa

    base = {"model": "llama3-8b", "accelerator": "h100-sxm",
            "network": {"dims": [{"topology": "Switch", "npus": 8, "fabric": "nvlink4"},
                                 {"topology": "Switch", "npus": 8, "fabric": "ib-ndr"}]},
            "parallel": {"dp": 64, "zero": 3}, "training": {"global_batch": 256, "micro_batch": 2}}
    space = load_psa(write_psa(tmp_path, {
        "name": "hsdp", "base": base, "objectives": ["step_time"],
        "knobs": {"workload": {"dp": {"values": [16, 32, 64]}, "tp": {"values": [1, 2, 4]},
                               "shard_group": {"values": [0, 8, 16, 32]}}}}))
    pts = space.sample(np.random.default_rng(3), 60)
    cfgs = [space.decode(p) for p in pts]
    cols, ok = space.decode_columns(pts)
    assert ok.all()
    assert cols.same_as(StepColumns.from_configs(cfgs)) == []
    for c in cfgs:
        s = c.parallel.shard_group
        assert s is None or (c.parallel.dp * c.parallel.sp) % s == 0
        cosmic.simulate(c)
    assert {c.parallel.shard_group for c in cfgs} == {None, 8, 16, 32}
