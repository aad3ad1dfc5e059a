"""ZeRO-3 / FSDP as frameworks run it: gathers per layer, prefetch, resharding, gathers once per step."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest

import cosmic
from cosmic.collective.algorithms import Collective
from cosmic.sim.step import overlap_cost_s
from cosmic.workload.memory import GRAD_BYTES, WEIGHT_BYTES


def _fsdp(latency_ns: float = 5e3, link_gbps: float = 25.0, **training: Any) -> cosmic.SystemConfig:
    """FSDP over 8 ranks of one switch, 8 layers, no TP, SP or pipelining (one stage; ZeRO-3 has no tail)."""
    train = {"global_batch": 32, "micro_batch": 1, **training}
    return cosmic.config_from_dict({
        "model": {"base": "gpt3-13b", "layers": 8, "vocab": 64},
        "accelerator": "a100-80gb",
        "network": {"dims": [{"topology": "Switch", "npus": 8, "link_gbps": link_gbps, "latency_ns": latency_ns}]},
        "parallel": {"dp": 8, "zero": 3},
        "training": train,
    })


def _unit(cfg: cosmic.SystemConfig, units_per_layer: int) -> tuple[float, float, float]:
    """(stage parameters, one unit's all-gather seconds, one unit's reduce-scatter seconds)."""
    from cosmic.sim.engine import communicator, step_inputs
    from cosmic.sim.step import plan

    params = plan(step_inputs(cfg)).params[0]
    units = cfg.model.layers * units_per_layer
    comm = communicator(cfg)
    ag = comm(Collective.ALL_GATHER, params * WEIGHT_BYTES / units / 8, "dpsp").total_s
    rs = comm(Collective.REDUCE_SCATTER, params * GRAD_BYTES / units, "dpsp").total_s
    return params, ag, rs


@pytest.mark.parametrize("gathers,per_layer", [("layer", 1), ("parameter", 4)])
@pytest.mark.parametrize("reshard", [True, False])
def test_unprefetched_gathers_are_exposed_closed_form(gathers: str, per_layer: int, reshard: bool) -> None:
    """Without prefetch every gather is exposed: per micro-batch U gathers in the forward, U more in the backward
    when resharded, and U reduce-scatters of which all but the last hide behind the backward (U = layers x
    collectives per layer)."""
    cfg = _fsdp(zero3_gathers=gathers, zero3_prefetch=0, reshard_after_forward=reshard)
    r = cosmic.simulate(cfg)
    _, ag, rs = _unit(cfg, per_layer)
    m = r.micro_batches
    units = 8 * per_layer
    bwd_stream = (r.breakdown["backward_s"] + r.breakdown["recompute_s"]) / m
    share = cfg.accelerator.collective_compute_share
    per_mb = units * ag * (2 if reshard else 1) + rs + overlap_cost_s((units - 1) * rs, bwd_stream, share)
    assert r.breakdown["comm_dp_s"] == pytest.approx(m * per_mb, rel=1e-12)


def test_prefetch_hides_all_but_the_first_gather_closed_form() -> None:
    """With prefetch the forward exposes one gather plus what the others outlast of the forward (or their
    interference), and the backward one reduce-scatter plus what the rest outlasts of the backward."""
    cfg = _fsdp()
    r = cosmic.simulate(cfg)
    _, ag, rs = _unit(cfg, 1)
    m, units, share = r.micro_batches, 8, cfg.accelerator.collective_compute_share
    fwd = r.breakdown["forward_s"] / m
    bwd = (r.breakdown["backward_s"] + r.breakdown["recompute_s"]) / m
    per_mb = (ag + overlap_cost_s((units - 1) * ag, fwd, share) + rs
              + overlap_cost_s(units * ag + units * rs - rs, bwd, share))
    assert r.breakdown["comm_dp_s"] == pytest.approx(m * per_mb, rel=1e-12)


def test_per_parameter_gathers_pay_the_latency_per_weight_matrix() -> None:
    """DeepSpeed-style gathers (4 per layer) on a latency-bound network cost over 3x the per-layer gathers (each
    collective pays its latency; only the reduce-scatters partly hide behind the backward)."""
    layer = cosmic.simulate(_fsdp(latency_ns=1e6, link_gbps=1e6, zero3_prefetch=0))
    param = cosmic.simulate(_fsdp(latency_ns=1e6, link_gbps=1e6, zero3_prefetch=0, zero3_gathers="parameter"))
    assert param.breakdown["comm_dp_s"] > 3 * layer.breakdown["comm_dp_s"]


@pytest.mark.parametrize("gathers", ["layer", "parameter"])
def test_more_prefetch_is_never_slower(gathers: str) -> None:
    times = [cosmic.simulate(_fsdp(zero3_gathers=gathers, zero3_prefetch=k)).step_time_s for k in (0, 1, 2, 8)]
    assert all(a >= b for a, b in itertools.pairwise(times))
    assert times[0] > times[1]


def test_keeping_the_gathered_weights_trades_memory_for_gathers() -> None:
    """reshard_after_forward=False: one gather per micro-batch instead of two (never slower) and the stage's
    whole weights in memory instead of two layers of them."""
    full, kept = _fsdp(), _fsdp(reshard_after_forward=False)
    rf, rk = cosmic.simulate(full), cosmic.simulate(kept)
    params, _, _ = _unit(full, 1)
    assert rk.step_time_s <= rf.step_time_s
    assert rk.memory.weights_bytes - rf.memory.weights_bytes == pytest.approx(
        params * WEIGHT_BYTES - 2 * params / 8 * WEIGHT_BYTES, rel=1e-12)
    assert rk.memory.gradients_bytes == rf.memory.gradients_bytes


def test_gathers_once_per_step_do_not_grow_with_micro_batches() -> None:
    """param_gather_per_step: the ZeRO-3 collectives run once per step whatever the micro-batch count, and the
    unsharded weights and gradients stay in memory."""
    one = cosmic.simulate(_fsdp(global_batch=8, param_gather_per_step=True))
    four = cosmic.simulate(_fsdp(global_batch=32, param_gather_per_step=True))
    per_mb = cosmic.simulate(_fsdp(global_batch=32))
    assert four.micro_batches == 4 * one.micro_batches
    assert four.breakdown["comm_dp_s"] == pytest.approx(one.breakdown["comm_dp_s"], rel=1e-12)
    assert four.breakdown["comm_dp_s"] < per_mb.breakdown["comm_dp_s"]
    params, _, _ = _unit(_fsdp(), 1)
    assert four.memory.gradients_bytes - per_mb.memory.gradients_bytes == pytest.approx(params * GRAD_BYTES)
    assert abs(sum(four.breakdown.values()) - four.step_time_s) < 1e-9 * four.step_time_s


def test_batch_path_reads_the_sharding_keys() -> None:
    from cosmic.sim.batch import simulate_columns
    from cosmic.sim.columns import StepColumns

    cfgs = [_fsdp(), _fsdp(zero3_prefetch=0), _fsdp(zero3_gathers="parameter"), _fsdp(reshard_after_forward=False),
            _fsdp(param_gather_per_step=True), _fsdp(zero3_prefetch=0, zero3_gathers="parameter", global_batch=64)]
    b = simulate_columns(StepColumns.from_configs(cfgs))
    assert b.ok.all()
    rs = [cosmic.simulate(c) for c in cfgs]
    assert np.allclose(b.figures["step_time_s"], [r.step_time_s for r in rs], rtol=1e-12, atol=0)
    assert np.allclose(b.figures["memory_bytes"], [r.memory.total_bytes for r in rs], rtol=1e-12, atol=0)


def test_bad_prefetch_is_one_line_error() -> None:
    with pytest.raises(cosmic.ConfigError, match="zero3_prefetch"):
        _fsdp(zero3_prefetch=-1)
