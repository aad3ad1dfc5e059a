"""The serving iteration's op costs and the memory of a serving device: closed forms and invariants."""

from __future__ import annotations

import math

import pytest

from cosmic.catalog import get_accelerator, get_model
from cosmic.compute.accelerator import Accelerator
from cosmic.workload.layers import (
    LayerShard,
    _fused_attention_s,
    attention_core,
    cached_attention_s,
    decode_attention_s,
    dense_layer_s,
    elementwise_s,
    weight_gemms,
)
from cosmic.workload.model import ModelSpec
from cosmic.workload.schemas import Recompute
from cosmic.workload.serving import Layout, ServingSpec, kv_bytes_per_token, serving_memory, weight_bytes_per_device

MODEL = ModelSpec(**get_model("llama3-70b"))
H100 = Accelerator(**get_accelerator("h100-sxm"))
WORK = {"workload": {"arrival": "offline", "input": 128, "output": 16}}


def _shard(tokens: int, tp: int = 4) -> LayerShard:
    return LayerShard(tp=tp, sp=1, micro_batch=1, seq_len=tokens, precision="bf16", sequence_parallel=False,
                      flash=True, recompute=Recompute.NONE)


def test_whole_prompt_attention_is_the_training_forward() -> None:
    for tokens in (128, 2048, 8192):
        shard = _shard(tokens)
        fwd, _bwd, _flops = attention_core(MODEL, H100, shard)
        assert fwd == _fused_attention_s(MODEL, H100, shard, 4.0 * tokens * tokens * MODEL.hidden / 4)[0]
        got = cached_attention_s(MODEL, H100, tp=4, q_tokens=tokens, kv_tokens=tokens, precision="bf16",
                                 kv_bytes_per_element=2)
        assert got == pytest.approx(fwd, rel=1e-12)


def test_chunks_of_a_prompt_do_the_work_of_the_whole_prompt() -> None:
    """Chunked prefill: the FLOP-bound attention of four chunks adds up to the whole prompt's (same query-key
    pairs), never less."""
    whole = cached_attention_s(MODEL, H100, tp=8, q_tokens=8192, kv_tokens=8192, precision="bf16",
                               kv_bytes_per_element=2)
    parts = sum(cached_attention_s(MODEL, H100, tp=8, q_tokens=2048, kv_tokens=2048 * (i + 1), precision="bf16",
                                   kv_bytes_per_element=2) for i in range(4))
    assert parts == pytest.approx(whole, rel=1e-9)


def test_decode_attention_reads_the_kv_cache_at_memory_speed() -> None:
    seqs, ctx = 64, 64 * 2000
    t = decode_attention_s(MODEL, H100, tp=8, seqs=seqs, context_tokens=ctx, precision="bf16",
                           kv_bytes_per_element=1)
    kv_bytes = 2 * ctx * 128 * 1  # 8 KV heads over TP 8: one head of 128 per rank, fp8
    q_o_bytes = 2 * seqs * MODEL.hidden / 8 * 2
    assert t == pytest.approx((kv_bytes + q_o_bytes) / H100.achievable_mem_bytes_per_s, rel=1e-12)
    # bandwidth-bound: doubling the context doubles the cache term
    t2 = decode_attention_s(MODEL, H100, tp=8, seqs=seqs, context_tokens=2 * ctx, precision="bf16",
                            kv_bytes_per_element=1)
    assert t2 == pytest.approx(t + kv_bytes / H100.achievable_mem_bytes_per_s, rel=1e-12)


def test_dense_layer_is_the_training_forward_gemms_and_elementwise() -> None:
    shard = _shard(512)
    want = weight_gemms(MODEL, H100, shard)[0] + elementwise_s(MODEL, H100, shard)[0]
    assert dense_layer_s(MODEL, H100, 4, 512, "bf16") == want


def test_one_token_decode_gemms_read_the_weights() -> None:
    """At batch 1 the GEMMs are bound by reading the rank's weights once."""
    t = dense_layer_s(MODEL, H100, 8, 1, "bf16")
    weights = MODEL.layer_params / 8 * 2
    assert t >= weights / H100.achievable_mem_bytes_per_s
    assert t < 1.2 * weights / H100.achievable_mem_bytes_per_s


def test_more_bandwidth_or_flops_is_never_slower() -> None:
    fast_mem = H100.model_copy(update={"mem_bw_gbps": 2 * H100.mem_bw_gbps})
    fast_flop = H100.model_copy(update={"peak_tflops": {k: 2 * v for k, v in H100.peak_tflops.items()}})
    for tokens in (1, 64, 4096):
        base = dense_layer_s(MODEL, H100, 4, tokens, "bf16")
        assert dense_layer_s(MODEL, fast_mem, 4, tokens, "bf16") <= base
        assert dense_layer_s(MODEL, fast_flop, 4, tokens, "bf16") <= base
    for acc in (fast_mem, fast_flop):
        assert cached_attention_s(MODEL, acc, tp=4, q_tokens=1024, kv_tokens=3000, precision="bf16",
                                  kv_bytes_per_element=2) <= cached_attention_s(
            MODEL, H100, tp=4, q_tokens=1024, kv_tokens=3000, precision="bf16", kv_bytes_per_element=2)


def test_serving_memory_leaves_the_rest_to_the_kv_cache() -> None:
    spec = ServingSpec(**WORK)
    m = serving_memory(MODEL, H100.mem_bytes, Layout(tp=4), spec)
    assert m.weights_bytes == pytest.approx(MODEL.n_params * 2 / 4, rel=1e-12)
    assert m.kv_bytes_per_token == 2 * 80 * 2 * 128 * 2  # K and V, 80 layers, 2 of the 8 KV heads per rank, bf16
    assert m.weights_bytes + m.activations_bytes + m.kv_capacity_bytes == pytest.approx(0.9 * H100.mem_bytes)
    assert m.kv_blocks == math.floor(m.kv_capacity_bytes / (m.kv_bytes_per_token * 16))
    fp8 = serving_memory(MODEL, H100.mem_bytes, Layout(tp=4), ServingSpec(precision="fp8", **WORK))
    assert fp8.kv_tokens > 2 * m.kv_tokens  # half the weights and half the bytes per cached token


def test_a_replica_too_small_for_the_weights_has_no_cache() -> None:
    m = serving_memory(MODEL, H100.mem_bytes, Layout(tp=1), ServingSpec(**WORK))
    assert not m.fits and m.kv_blocks == 0


def test_kv_heads_are_replicated_when_tp_exceeds_them() -> None:
    assert kv_bytes_per_token(MODEL, 16, 1, "bf16") == kv_bytes_per_token(MODEL, 8, 1, "bf16")
    assert weight_bytes_per_device(MODEL, 2, 2, "bf16") < weight_bytes_per_device(MODEL, 2, 1, "bf16")
