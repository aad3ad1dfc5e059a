"""The pipeline timeline against closed forms, and the behaviour of schedules, scheduling policy and rank order."""

from __future__ import annotations

from typing import Any

import pytest

import cosmic
from tests.sim.helpers import dgx_config


def _isolated(**training: Any) -> cosmic.SystemConfig:
    """A pipeline with free communication (huge links, no latency): only compute and the bubble remain."""
    train = {"global_batch": 64, "micro_batch": 1, **training}
    return cosmic.config_from_dict(
        {
            "model": {"base": "gpt3-13b", "layers": 8, "vocab": 64},  # negligible embedding and logits
            "accelerator": "a100-80gb",
            "network": {"dims": [{"topology": "Switch", "npus": 4, "link_gbps": 1e7, "latency_ns": 0}]},
            "parallel": {"pp": 4},
            "training": train,
        }
    )


def test_1f1b_bubble_is_p_minus_1_micro_batches() -> None:
    """(m + p - 1) micro-batch slots for uniform stages (Narayanan et al. 2021, eq. 1)."""
    r = cosmic.simulate(_isolated(schedule="1f1b"))
    work = r.breakdown["forward_s"] + r.breakdown["backward_s"]
    m = r.micro_batches
    per_mb = work / m
    assert r.breakdown["bubble_s"] == pytest.approx(3 * per_mb, rel=0.01)


def test_interleaving_divides_the_bubble() -> None:
    one = cosmic.simulate(_isolated(schedule="1f1b"))
    two = cosmic.simulate(_isolated(schedule="interleaved", virtual_stages=2))
    assert two.breakdown["bubble_s"] == pytest.approx(one.breakdown["bubble_s"] / 2, rel=1e-6)


def test_gpipe_and_1f1b_share_time_not_memory() -> None:
    g = cosmic.simulate(_isolated(schedule="gpipe"))
    f = cosmic.simulate(_isolated(schedule="1f1b"))
    assert g.step_time_s == pytest.approx(f.step_time_s, rel=1e-12)
    assert g.memory.activations_bytes > f.memory.activations_bytes


def test_recompute_trades_time_for_memory() -> None:
    none = cosmic.simulate(dgx_config(recompute="none", pp=8, dp=16))
    full = cosmic.simulate(dgx_config(recompute="full", pp=8, dp=16))
    assert full.step_time_s > none.step_time_s
    assert full.memory.activations_bytes < none.memory.activations_bytes / 5
    assert full.hfu > full.mfu


def test_tp_outside_the_node_is_slower() -> None:
    """Megatron's TP-innermost order keeps TP on NVLink; putting DP innermost sends TP over InfiniBand."""
    inner = cosmic.simulate(dgx_config(rank_order="tp,sp,dp,pp"))
    outer = cosmic.simulate(dgx_config(rank_order="dp,tp,sp,pp"))
    assert outer.breakdown["comm_tp_s"] > 3 * inner.breakdown["comm_tp_s"]
    assert outer.comm_by_network_dim_s[1] > inner.comm_by_network_dim_s[1]


def test_sub_group_priced_on_what_it_spans() -> None:
    """TP=2 inside an 8-NPU switch costs a 2-member all-reduce, not a ring over 8 (or over the whole group's ids)."""
    small = cosmic.simulate(dgx_config(tp=2, pp=1, dp=64, global_batch=512, model="gpt3-13b"))
    big = cosmic.simulate(dgx_config(tp=8, pp=1, dp=16, global_batch=512, model="gpt3-13b"))
    per_layer_small = small.breakdown["comm_tp_s"] / small.micro_batches
    per_layer_big = big.breakdown["comm_tp_s"] / big.micro_batches
    # a 2-way all-reduce moves (p-1)/p = 1/2 of the data each way, an 8-way 7/8
    assert per_layer_small < per_layer_big


def test_fifo_never_beats_lifo_when_dp_and_tp_share_a_dimension() -> None:
    base = {
        "system": "cosmic-s1",
        "model": "gpt3-13b",
        "parallel": {"dp": 8, "tp": 8, "pp": 4, "sp": 4, "rank_order": "dp,tp,sp,pp"},
        "training": {"global_batch": 256},
    }
    lifo = cosmic.simulate(cosmic.config_from_dict({**base, "collective": {"scheduling": "LIFO"}}))
    fifo = cosmic.simulate(cosmic.config_from_dict({**base, "collective": {"scheduling": "FIFO"}}))
    assert fifo.step_time_s >= lifo.step_time_s


def test_dp_overlap_hides_gradient_reduction() -> None:
    on = cosmic.simulate(dgx_config(model="gpt3-13b", tp=8, pp=1, dp=32, global_batch=256, dp_overlap=True))
    off = cosmic.simulate(dgx_config(model="gpt3-13b", tp=8, pp=1, dp=32, global_batch=256, dp_overlap=False))
    assert on.breakdown["comm_dp_s"] < off.breakdown["comm_dp_s"]
    assert on.step_time_s < off.step_time_s


def test_cost_table_closed_form() -> None:
    """COSMIC's cost model on S1: sum over dims of (N/n) blocks x block cost (cosmic.md section 3)."""
    r = cosmic.simulate(cosmic.load_config("examples/cosmic-s1-gpt3-175b.yaml"))
    gib = 2**30 / 1e9
    ring0 = 2 * 4 * 2.0 * 187.5 * gib
    fc1 = 8 * 7 * 4.0 * 25 * gib
    ring2 = 2 * 4 * 4.0 * 75 * gib
    sw3 = 2 * 8 * 7.8 * 100 * gib + 8 * (18.0 + 31.6) * 100 * gib
    expected = 256 * ring0 + 128 * fc1 + 256 * ring2 + 128 * sw3
    assert r.network_cost_usd == pytest.approx(expected, rel=1e-12)


def _zero3(**training: Any) -> cosmic.SystemConfig:
    """FSDP over 8 ranks of one switch, free communication: the backward holds only compute and gradient traffic."""
    train = {"global_batch": 32, "micro_batch": 1, **training}
    return cosmic.config_from_dict(
        {
            "model": {"base": "gpt3-13b", "layers": 8, "vocab": 64},
            "accelerator": "a100-80gb",
            "network": {"dims": [{"topology": "Switch", "npus": 8, "link_gbps": 1e7, "latency_ns": 0}]},
            "parallel": {"dp": 8, "zero": 3},
            "training": train,
        }
    )


def test_zero3_backward_moves_the_unsharded_gradient_each_micro_batch() -> None:
    """Closed form: the backward of a ZeRO-3 rank is the layers' and ends' backward plus, per micro-batch, every
    local parameter's gradient copied into the flat buffer and pre-divided (8 bytes per parameter in bf16)."""
    from cosmic.sim.engine import step_inputs
    from cosmic.sim.step import plan
    from cosmic.workload.memory import zero3_grad_traffic_bytes

    cfg = _zero3()
    r = cosmic.simulate(cfg)
    x = step_inputs(cfg)
    m = r.micro_batches
    compute = cfg.model.layers * x.lc_bwd + x.emb_bwd + x.head_bwd
    traffic = plan(x).params[0] * zero3_grad_traffic_bytes(2) / cfg.accelerator.achievable_mem_bytes_per_s
    assert zero3_grad_traffic_bytes(2) == 8
    assert r.breakdown["backward_s"] == pytest.approx(m * (compute + traffic), rel=1e-12)
    # the traffic is per micro-batch: doubling the micro-batch count doubles it with the compute
    r2 = cosmic.simulate(_zero3(global_batch=64))
    assert r2.breakdown["backward_s"] == pytest.approx(2 * r.breakdown["backward_s"], rel=1e-12)


def test_fp32_gradient_reduction_casts_and_moves_twice_the_bytes() -> None:
    """reduce_dtype=float32: the cast to fp32 and the fp32 pre-divide add 10 bytes per parameter per micro-batch
    (18 instead of 8), and the gradient collectives carry 4 bytes per parameter instead of 2."""
    from cosmic.sim.engine import step_inputs
    from cosmic.sim.step import plan
    from cosmic.workload.memory import zero3_grad_traffic_bytes

    bf16, fp32 = _zero3(), _zero3(grad_reduce_fp32=True)
    r16, r32 = cosmic.simulate(bf16), cosmic.simulate(fp32)
    params = plan(step_inputs(fp32)).params[0]
    assert zero3_grad_traffic_bytes(4) == 18
    extra = r32.micro_batches * params * (18 - 8) / fp32.accelerator.achievable_mem_bytes_per_s
    assert r32.breakdown["backward_s"] - r16.breakdown["backward_s"] == pytest.approx(extra, rel=1e-9)
    # plain data parallelism without overlap: the all-reduce of fp32 gradients is the slower one
    base = {"model": "gpt3-13b", "tp": 8, "pp": 1, "dp": 32, "global_batch": 256, "dp_overlap": False}
    a16 = cosmic.simulate(dgx_config(**base))
    a32 = cosmic.simulate(dgx_config(**base, grad_reduce_fp32=True))
    assert a32.breakdown["comm_dp_s"] > 1.5 * a16.breakdown["comm_dp_s"]


def test_zero3_gathers_and_reduces_layer_by_layer() -> None:
    """FSDP/ZeRO-3 issue one all-gather and one reduce-scatter per layer, so on a latency-bound network the cost
    grows with the layer count (one stage-wide collective would not), and every micro-batch pays at least the first
    layer's gather and the last layer's reduce-scatter, which no compute hides."""
    from cosmic.collective.algorithms import Collective
    from cosmic.sim.engine import communicator, step_inputs
    from cosmic.sim.step import plan

    def cfg(layers: int) -> cosmic.SystemConfig:
        return cosmic.config_from_dict({
            "model": {"base": "gpt3-13b", "layers": layers, "vocab": 64},
            "accelerator": "a100-80gb",
            "network": {"dims": [{"topology": "Switch", "npus": 8, "link_gbps": 1e7, "latency_ns": 1e7}]},
            "parallel": {"dp": 8, "zero": 3},
            "training": {"global_batch": 32, "micro_batch": 1},
        })

    r8, r16 = cosmic.simulate(cfg(8)), cosmic.simulate(cfg(16))
    assert r16.breakdown["comm_dp_s"] > 1.8 * r8.breakdown["comm_dp_s"]
    c = cfg(8)
    comm = communicator(c)
    per_layer = plan(step_inputs(c)).params[0] / 8
    ag = comm(Collective.ALL_GATHER, per_layer * 2 / 8, "dpsp").total_s
    rs = comm(Collective.REDUCE_SCATTER, per_layer * 2, "dpsp").total_s
    assert ag > 0.05 and rs > 0.05  # 7 steps of 10 ms
    assert r8.breakdown["comm_dp_s"] >= r8.micro_batches * (ag + rs)


def test_overlapped_param_gather_hides_behind_the_first_forward() -> None:
    """ZeRO-1 with --overlap-param-gather: the weight all-gather after the optimizer costs
    max(gather - first forward, share * gather) instead of the whole gather (closed form on the tail)."""
    from cosmic.collective.algorithms import Collective
    from cosmic.sim.engine import communicator, step_inputs
    from cosmic.sim.step import plan

    base = {"model": "gpt3-13b", "tp": 8, "pp": 1, "dp": 32, "global_batch": 256, "zero": 1}
    plain = dgx_config(**base)
    over = dgx_config(**base, param_gather_overlap=True)
    r0, r1 = cosmic.simulate(plain), cosmic.simulate(over)
    comm = communicator(plain)
    x = step_inputs(plain)
    params = plan(x).params[0]
    gather = comm(Collective.ALL_GATHER, params * 2 / 32, "dpsp").total_s
    assert gather > 0
    fwd = plain.model.layers * x.lc_fwd + x.emb_fwd + x.head_fwd
    share = plain.accelerator.collective_compute_share
    hidden = gather - max(gather - fwd, share * gather)
    assert r0.step_time_s - r1.step_time_s == pytest.approx(hidden, rel=1e-9)
    assert r0.breakdown["comm_dp_s"] - r1.breakdown["comm_dp_s"] == pytest.approx(hidden, rel=1e-9)
    # no effect without a distributed optimizer
    z0 = {**base, "zero": 0}
    assert cosmic.simulate(dgx_config(**z0)) == cosmic.simulate(dgx_config(**z0, param_gather_overlap=True))


def test_fp8_quantisation_traffic_and_hopper_transposes() -> None:
    """fp8 adds the casts of the GEMM operands (memory bound, so only the element-wise time grows); on an
    accelerator whose fp8 GEMMs are TN only it also writes the transposed copies. bf16 pays neither."""
    from cosmic.workload.layers import LayerShard, layer_cost
    from cosmic.workload.schemas import Recompute

    cfg = dgx_config(model="gpt3-13b", accelerator="h100-sxm", tp=2, pp=1, dp=1, global_batch=4)
    hopper = cfg.accelerator
    assert hopper.fp8_tn_only
    any_layout = hopper.model_copy(update={"fp8_tn_only": False})

    def shard(precision: str) -> LayerShard:
        return LayerShard(2, 1, 2, 2048, precision, True, True, Recompute.NONE)

    fp8_tn = layer_cost(cfg.model, hopper, shard("fp8"))
    fp8_any = layer_cost(cfg.model, any_layout, shard("fp8"))
    assert fp8_tn.fwd_s > fp8_any.fwd_s and fp8_tn.bwd_s > fp8_any.bwd_s
    assert fp8_tn.fwd_flops == fp8_any.fwd_flops
    # the transposes are 1 byte per element of the four GEMM inputs (forward) and outputs (backward)
    m, h, f, kv = 2 * 2048, cfg.model.hidden, cfg.model.ffn, cfg.model.kv_dim
    extra_bytes = m * (h + h / 2 + h + f / 2) + m * ((h + 2 * kv) / 2 + h + f / 2 + h)
    extra_s = (fp8_tn.fwd_s - fp8_any.fwd_s) + (fp8_tn.bwd_s - fp8_any.bwd_s)
    assert extra_s == pytest.approx(extra_bytes / hopper.achievable_mem_bytes_per_s, rel=1e-9)
    bf16_tn = layer_cost(cfg.model, hopper, shard("bf16"))
    bf16_any = layer_cost(cfg.model, any_layout, shard("bf16"))
    assert bf16_tn.fwd_s == bf16_any.fwd_s and bf16_tn.bwd_s == bf16_any.bwd_s


def test_unfused_attention_is_its_kernels_one_after_the_other() -> None:
    """Without a fused kernel, QK^T and AV are batched GEMMs priced by their own shapes, and softmax and dropout
    read and write the score matrix in between: the forward is the sum of the four kernels, not their maximum."""
    from cosmic.workload.layers import LayerShard, layer_cost
    from cosmic.workload.schemas import Recompute

    cfg = dgx_config(model="gpt3-13b", accelerator="a100-80gb", tp=2, pp=1, dp=1, global_batch=4)
    acc, m = cfg.accelerator, cfg.model
    mb, seq, tp = 2, 2048, 2
    cost = layer_cost(m, acc, LayerShard(tp, 1, mb, seq, "bf16", False, False, Recompute.NONE))
    rows = mb * (m.heads // tp) * seq
    d = m.hidden / m.heads
    t_qk = acc.gemm_time_s(rows, d, seq, precision="bf16", bytes_per_element=2)
    t_av = acc.gemm_time_s(rows, seq, d, precision="bf16", bytes_per_element=2)
    passes_s = 4 * rows * seq * 2 / acc.achievable_mem_bytes_per_s
    assert cost.attn_core_fwd_s == pytest.approx(t_qk + t_av + passes_s, rel=1e-9)
    assert cost.attn_core_bwd_s == pytest.approx(2 * (t_qk + t_av) + 1.25 * passes_s, rel=1e-9)
    # a short inner dimension (the head size) makes QK^T slower than its FLOPs at the measured GEMM rate
    assert t_qk > 2 * rows * d * seq / acc.achievable_flop_per_s("bf16")


def test_rotary_embeddings_read_and_write_queries_and_keys() -> None:
    """A rotary model pays one read and one write of its local queries and keys, forward and backward; the same
    model with learned positions does not (FLOPs are the same)."""
    from cosmic.workload.layers import LayerShard, layer_cost
    from cosmic.workload.model import Position
    from cosmic.workload.schemas import Recompute

    cfg = dgx_config(model="llama2-7b", accelerator="h100-sxm", tp=2, pp=1, dp=1, global_batch=4)
    rotary = cfg.model
    assert rotary.position.value == "rotary"
    learned = rotary.model_copy(update={"position": Position.LEARNED})
    shard = LayerShard(2, 1, 1, 4096, "bf16", False, True, Recompute.NONE)
    a, b = layer_cost(rotary, cfg.accelerator, shard), layer_cost(learned, cfg.accelerator, shard)
    rope_bytes = 2 * 4096 * (rotary.hidden + rotary.kv_dim) / 2 * 2
    rope_s = rope_bytes / cfg.accelerator.achievable_mem_bytes_per_s
    assert a.fwd_s - b.fwd_s == pytest.approx(rope_s, rel=1e-9)
    assert a.bwd_s - b.bwd_s == pytest.approx(rope_s, rel=1e-9)
    assert a.fwd_flops == b.fwd_flops
