"""Per-layer operation costs of one rank (the workload stack's model of a transformer layer on the compute stack).

Every layer of a model is identical, so one layer is priced once per :class:`LayerShard` (how the layer is split
over the ranks and how it runs) and multiplied by the layers of a stage. Each operation is a roofline on the
accelerator: GEMMs at their shapes, the attention core at the fused kernel's measured rate (or as its unfused
kernels), and element-wise passes at memory speed.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Protocol

from cosmic._xp import vmax
from cosmic.caches import register
from cosmic.units import BYTES_PER_ELEMENT
from cosmic.workload.model import Embedding, ModelSpec, Position
from cosmic.workload.schemas import Recompute


class ComputeModel(Protocol):
    """What the layer costs need from the compute stack (`cosmic.compute.Accelerator` provides it)."""

    fp8_tn_only: bool

    @property
    def achievable_mem_bytes_per_s(self) -> float: ...

    def gemm_time_s(self, m: float, k: float, n: float, *, precision: str, bytes_per_element: int) -> float: ...

    def grouped_gemm_time_s(self, groups: float, m: float, k: float, n: float, *, precision: str,
                            bytes_per_element: int) -> float: ...

    def op_time_s(self, *, flops: float, bytes_moved: float, precision: str, n_kernels: float = 1) -> float: ...

    def peak_flop_per_s(self, precision: str) -> float: ...

    def attention_efficiency_for(self, kernel: str) -> float: ...


@dataclass(frozen=True, slots=True)
class LayerShard:
    """How one layer runs on one rank: its TP and SP split, the micro-batch, sequence, precision and kernels."""

    tp: int
    sp: int
    micro_batch: int
    seq_len: int
    precision: str
    sequence_parallel: bool
    flash: bool
    recompute: Recompute
    attention_kernel: str = "auto"
    ep: int = 1  # expert parallelism (MoE models only)
    etp: int = 1  # expert tensor parallelism
    imbalance: float = 1.0  # tokens of the busiest expert rank over the balanced share
    dispatcher: str = "alltoall"  # Megatron-Core token dispatcher (`ParallelConfig.moe_dispatcher`)
    fp8_recipe: str = "delayed"  # how fp8 GEMM operands are scaled (`fp8_operand_bytes`)
    fp8_weight_cache: bool = True  # fp8 weights are quantised once per step (Transformer Engine), not per micro-batch
    host_launch_s: float = 0.0  # host seconds per kernel launch (eager PyTorch); 0 = graph-launched (`layer_kernels`)


@dataclass(frozen=True, slots=True)
class LayerCost:
    """Per micro-batch, per rank cost of one transformer layer (compute only, seconds and FLOPs)."""

    fwd_s: float
    bwd_s: float
    recompute_s: float
    attn_core_fwd_s: float
    attn_core_bwd_s: float
    fwd_flops: float
    bwd_flops: float
    recompute_flops: float
    act_bytes: float  # activation bytes stored per layer per micro-batch (Korthikanti et al. 2022)
    wgrad_s: float = 0.0  # the weight-gradient GEMMs of the backward (the W pass of a zero-bubble schedule)
    # forward seconds of the GEMMs next to the TP collectives (`tp_gemms_s`): what TP communication overlap hides
    qkv_s: float = 0.0
    proj_s: float = 0.0
    fc1_s: float = 0.0
    fc2_s: float = 0.0
    weight_cast_s: float = 0.0  # fp8: quantising the layer's weights, once per step (`fp8_weight_cache`)


@dataclass(frozen=True, slots=True)
class EndCost:
    """Embedding (first stage) or head (last stage) cost per micro-batch."""

    fwd_s: float
    bwd_s: float
    fwd_flops: float
    act_bytes: float


def _gemm(acc: ComputeModel, m: float, k: float, n: float, prec: str, bpe: int) -> tuple[float, float]:
    return acc.gemm_time_s(m, k, n, precision=prec, bytes_per_element=bpe), 2.0 * m * k * n


def _act_precision(precision: str) -> str:
    """Precision of attention, norms and activations: fp8 training (Transformer Engine) runs the linear layers in
    fp8; the rest stays bf16."""
    return "bf16" if precision == "fp8" else precision


def _tokens(shard: LayerShard) -> int:
    """Tokens of one micro-batch on one rank (the sequence split over SP)."""
    return shard.micro_batch * (shard.seq_len // shard.sp)


def weight_gemms(model: ModelSpec, acc: ComputeModel, shard: LayerShard) -> tuple[float, float]:
    """(forward seconds, forward FLOPs) of the layer's weight GEMMs (QKV, output projection, MLP up and down)
    on one rank: Megatron's column/row split over TP (Shoeybi et al. 2019). MLA and MoE layers price their own
    projections and experts (`_mla_gemms`, `moe_mlp`); a MoE model's layer is the mean of its dense and MoE
    layers."""
    tp, precision = shard.tp, shard.precision
    bpe = BYTES_PER_ELEMENT[precision]
    h, f, kv = model.hidden, model.ffn, model.kv_dim
    tokens = _tokens(shard)
    if model.mla is None:
        t_qkv, f_qkv = _gemm(acc, tokens, h, (model.q_dim + 2 * kv) / tp, precision, bpe)
        t_proj, f_proj = _gemm(acc, tokens, model.attn_out_dim / tp, h, precision, bpe)
    else:
        t_qkv, f_qkv = _mla_gemms(model, acc, shard)
        t_proj, f_proj = _gemm(acc, tokens, model.attn_out_dim / tp, h, precision, bpe)
    t_up, f_up = _gemm(acc, tokens, h, _up_width(model, tp), precision, bpe)
    t_down, f_down = _gemm(acc, tokens, f / tp, h, precision, bpe)
    if model.moe is None:
        return t_qkv + t_proj + t_up + t_down, f_qkv + f_proj + f_up + f_down
    frac = model.moe_fraction
    t_moe, f_moe = moe_mlp(model, acc, shard)
    return (t_qkv + t_proj + (1 - frac) * (t_up + t_down) + frac * t_moe,
            f_qkv + f_proj + (1 - frac) * (f_up + f_down) + frac * f_moe)


def tp_gemms_s(model: ModelSpec, acc: ComputeModel, shard: LayerShard) -> tuple[float, float, float, float]:
    """Forward seconds of the four GEMMs that sit next to a layer's TP collectives under sequence parallelism
    (Korthikanti et al. 2022, fig. 5): the QKV projection after the attention all-gather, the output projection
    before its reduce-scatter, the MLP up projection after the second all-gather and the down projection before the
    second reduce-scatter. A MoE model's up and down are those of its dense layers (the experts exchange tokens
    through their dispatcher, not over TP). The backward's data- and weight-gradient GEMMs of each have its FLOPs."""
    tp, precision = shard.tp, shard.precision
    bpe = BYTES_PER_ELEMENT[precision]
    h, tokens = model.hidden, _tokens(shard)
    if model.mla is None:
        t_qkv = _gemm(acc, tokens, h, (model.q_dim + 2 * model.kv_dim) / tp, precision, bpe)[0]
    else:
        t_qkv = _mla_gemms(model, acc, shard)[0]
    t_proj = _gemm(acc, tokens, model.attn_out_dim / tp, h, precision, bpe)[0]
    t_up = _gemm(acc, tokens, h, _up_width(model, tp), precision, bpe)[0]
    t_down = _gemm(acc, tokens, model.ffn / tp, h, precision, bpe)[0]
    return t_qkv, t_proj, t_up, t_down


def _mla_gemms(model: ModelSpec, acc: ComputeModel, shard: LayerShard) -> tuple[float, float]:
    """MLA's projections before attention (DeepSeek-V2 eqs. 9-14): the down-projections of queries and of keys
    and values (with the shared rotary key) are replicated over TP, as Megatron-Core's MLA runs them; the
    up-projections are column-parallel."""
    mla = model.mla
    assert mla is not None
    tp, precision = shard.tp, shard.precision
    bpe = BYTES_PER_ELEMENT[precision]
    h, heads, tokens = model.hidden, model.heads, _tokens(shard)
    q_width = heads * model.qk_head_dim / tp
    if mla.q_lora_rank is None:
        t_q, f_q = _gemm(acc, tokens, h, q_width, precision, bpe)
    else:
        t_qa, f_qa = _gemm(acc, tokens, h, mla.q_lora_rank, precision, bpe)
        t_qb, f_qb = _gemm(acc, tokens, mla.q_lora_rank, q_width, precision, bpe)
        t_q, f_q = t_qa + t_qb, f_qa + f_qb
    t_kva, f_kva = _gemm(acc, tokens, h, mla.kv_lora_rank + mla.qk_rope_head_dim, precision, bpe)
    t_kvb, f_kvb = _gemm(acc, tokens, mla.kv_lora_rank, heads * (mla.qk_nope_head_dim + mla.v_head_dim) / tp,
                         precision, bpe)
    return t_q + t_kva + t_kvb, f_q + f_kva + f_kvb


def routed_tokens(model: ModelSpec, shard: LayerShard) -> float:
    """Token-expert assignments the busiest rank computes per MoE layer and micro-batch.

    Each rank routes its 1/tp sequence-parallel share of the micro-batch's tokens to `top_k` experts; the EP x
    ETP ranks of an expert group hold E/ep experts each, each ETP rank a 1/etp slice of every local expert, and
    gather the tokens of their ETP peers (Megatron-Core MoE parallel folding): a rank computes etp x top_k x
    tokens/tp assignments when routing is balanced, `imbalance` times that on the busiest rank, at most the
    capacity factor times it when tokens beyond capacity are dropped."""
    moe = model.moe
    assert moe is not None
    if moe.experts == 1:
        load = 1.0  # one expert takes every token
    else:
        load = shard.imbalance if moe.capacity_factor is None else min(shard.imbalance, moe.capacity_factor)
    return _tokens(shard) * moe.top_k * shard.etp * load / shard.tp


def moe_mlp(model: ModelSpec, acc: ComputeModel, shard: LayerShard) -> tuple[float, float]:
    """(forward seconds, FLOPs) of one MoE layer's MLP on one rank: the router (on the rank's tokens), the local
    experts as two grouped GEMMs at their real shapes (tokens per expert x hidden x expert width / etp), and the
    shared experts as a TP-split dense MLP."""
    moe = model.moe
    assert moe is not None
    tp, precision = shard.tp, shard.precision
    bpe = BYTES_PER_ELEMENT[precision]
    h, tokens = model.hidden, _tokens(shard)
    # the router's linear on the rank's tokens (none for one expert: its gate is the constant 1)
    t_router, f_router = _gemm(acc, tokens / tp, h, moe.experts, precision, bpe) if moe.experts > 1 else (0.0, 0.0)
    local = moe.experts / shard.ep
    per_expert = routed_tokens(model, shard) / local
    width = moe.expert_ffn_hidden / shard.etp
    up = width * (2 if model.gated_mlp else 1)
    t_up = acc.grouped_gemm_time_s(local, per_expert, h, up, precision=precision, bytes_per_element=bpe)
    t_down = acc.grouped_gemm_time_s(local, per_expert, width, h, precision=precision, bytes_per_element=bpe)
    f_experts = 2.0 * local * per_expert * h * (up + width)
    t, fl = t_router + t_up + t_down, f_router + f_experts
    if moe.shared_experts:
        s_width = moe.shared_experts * moe.shared_ffn
        t_su, f_su = _gemm(acc, tokens, h, s_width * (2 if model.gated_mlp else 1) / tp, precision, bpe)
        t_sd, f_sd = _gemm(acc, tokens, s_width / tp, h, precision, bpe)
        t, fl = t + t_su + t_sd, fl + f_su + f_sd
    return t, fl


def mlp_width_per_token(model: ModelSpec, shard: LayerShard) -> float:
    """MLP intermediate elements per local token on one rank, mean over the layers (f/tp for a dense model; a MoE
    layer's routed assignments times the expert width, plus the shared experts)."""
    f_local = model.ffn / shard.tp
    moe = model.moe
    if moe is None:
        return f_local
    routed = routed_tokens(model, shard) / _tokens(shard) * moe.expert_ffn_hidden / shard.etp
    moe_w = routed + moe.shared_experts * moe.shared_ffn / shard.tp
    frac = model.moe_fraction
    return (1 - frac) * f_local + frac * moe_w


def mlp_io_width_per_token(model: ModelSpec, shard: LayerShard) -> float:
    """Elements per local token at the MLP's input (and its output), mean over the layers: `hidden` for a dense
    layer; a MoE layer's experts read one copy of the token per routed assignment the rank computes, plus the
    token itself for the shared experts."""
    h, moe = model.hidden, model.moe
    if moe is None or moe.experts == 1:
        return float(h)
    routed = routed_tokens(model, shard) / _tokens(shard) * h
    frac = model.moe_fraction
    return (1 - frac) * h + frac * (routed + (h if moe.shared_experts else 0))


def moe_elementwise_bytes(model: ModelSpec, shard: LayerShard) -> tuple[float, float]:
    """(forward, backward) bytes one MoE layer's token handling moves on one rank, mean over the layers
    (Megatron-Core `token_dispatcher.py`, `moe_utils.py`, `router.py`; docs/moe.md, "Per-layer MoE passes"):

    * permutation: dispatch reads the rank's tokens and writes one copy per assignment, combine reads the copies
      and writes the weighted sum (`permute` / `unpermute`); the backward runs each once on the gradients;
    * the all-to-all dispatcher's second permutation: the tokens that arrive are sorted from (source rank,
      local expert) to (local expert, source rank) order and back before the combine (`sort_chunks_by_idxs`,
      when a rank holds more than one expert and EP x ETP > 1): read and write every computed assignment, twice
      forward and twice backward;
    * the router's scores in fp32 over the rank's tokens x experts: the score function and top-k read the logits
      and write the probabilities and the routing map, the auxiliary load-balancing loss reads both again
      (Megatron-Core `topk_softmax_with_capacity`, `switch_load_balancing_loss_func`); the backward reads the
      probabilities' gradient and the probabilities and writes the logits' gradient, 12 B per score;
    * fp8: the grouped experts quantise their own inputs (TE `GroupedLinear` casts each expert's slice: read 2,
      write 1 byte per element), both the routed tokens into the up projection and the activation into the
      down projection, which no norm or fused activation writes in fp8 as in a dense layer.
    """
    moe = model.moe
    if moe is None or moe.experts == 1:
        return 0.0, 0.0
    abpe = BYTES_PER_ELEMENT[_act_precision(shard.precision)]
    h, tokens = model.hidden, _tokens(shard)
    local_tokens = tokens / shard.tp  # the rank's sequence-parallel share, which it routes
    computed = routed_tokens(model, shard)
    perm = 2 * (local_tokens + computed) * h * abpe
    sort = 0.0
    if shard.dispatcher == "alltoall" and moe.experts > shard.ep and shard.ep * shard.etp > 1:
        sort = 2 * 2 * computed * h * abpe
    scores = local_tokens * moe.experts
    router_fwd = scores * (4 + 4 + 1 + 4 + 1)  # read logits, write probs and map; the aux loss reads both
    router_bwd = scores * 12
    cast = 0.0
    if shard.precision == "fp8":
        cast = 3 * computed * (h + moe.expert_ffn_hidden / shard.etp)
    frac = model.moe_fraction
    return frac * (perm + sort + router_fwd + cast), frac * (perm + sort + router_bwd)


def _up_width(model: ModelSpec, tp: int) -> float:
    """Width of the MLP up projection on one rank (gate and up projections side by side when gated)."""
    return model.ffn * (2 if model.gated_mlp else 1) / tp


def attention_core(model: ModelSpec, acc: ComputeModel, shard: LayerShard) -> tuple[float, float, float]:
    """(forward seconds, backward seconds, forward FLOPs) of the attention core, QK^T and AV over the full key
    length (keys are gathered over SP), fused or as its unfused kernels."""
    h = model.attn_width
    attn_flops = 4.0 * shard.micro_batch * (shard.seq_len // shard.sp) * shard.seq_len * h / shard.tp
    if shard.flash:
        fwd_s, bwd_s = _fused_attention_s(model, acc, shard, attn_flops)
    else:
        fwd_s, bwd_s = _unfused_attention_s(model, acc, shard)
    return fwd_s, bwd_s, attn_flops


ATTENTION_REF_HEAD_DIM = 128
"""Head dimension of the catalog's attention efficiencies (the FlashAttention papers' head-dim-128 figures)."""
ATTENTION_HEAD_DIM_K0 = 32.0
"""Per score element the matmuls do 4 x head_dim FLOPs forward while the softmax's exponent and rescaling cost a
fixed time: efficiency scales as d / (d + K0). K0 = 32 from Shah et al. 2024 (FlashAttention-3, Figs. 5-6, H100,
sequence 2k, forward + 2.5 x backward): head dim 64 runs at 0.81 (FA3), 0.90 (FA2), 0.79 (cuDNN) of head dim 128,
mean 0.835 = (128 + K0) / (2 (64 + K0))."""


def attention_rate_flop_per_s(model: ModelSpec, acc: ComputeModel, kernel: str, precision: str) -> float:
    """FLOP/s of fused attention kernel `kernel`: the catalog's efficiency (measured at head dim 128) times the
    head-dimension factor ``(d / (d + K0)) / (128 / (128 + K0))``, never above the measured figure (FA2 and cuDNN
    do not gain beyond head dim 128 in Shah et al. 2024's figures)."""
    d = model.qk_head_dim
    k0, ref = ATTENTION_HEAD_DIM_K0, ATTENTION_REF_HEAD_DIM
    head_factor = min(1.0, (d / (d + k0)) / (ref / (ref + k0)))
    return acc.peak_flop_per_s(precision) * acc.attention_efficiency_for(kernel) * head_factor


def _fused_attention_s(model: ModelSpec, acc: ComputeModel, shard: LayerShard,
                       attn_flops: float) -> tuple[float, float]:
    """Fused attention runs at its own measured fraction of peak (FlashAttention papers), not at GEMM speed, and
    skips the fully masked blocks of a causal mask: half the query-key pairs, at the catalog's rates, which are the
    papers' causal-kernel figures (the diagonal blocks' masking is in them)."""
    tp, s_local, seq_len = shard.tp, shard.seq_len // shard.sp, shard.seq_len
    act_prec = _act_precision(shard.precision)
    abpe = BYTES_PER_ELEMENT[act_prec]
    causal_frac = 0.5 if model.causal else 1.0
    attn_rate = attention_rate_flop_per_s(model, acc, shard.attention_kernel, act_prec)
    attn_bytes = shard.micro_batch * (s_local * (model.q_dim + model.attn_out_dim) / tp
                                      + 2 * seq_len * model.kv_dim / tp) * abpe
    mem_rate = acc.achievable_mem_bytes_per_s
    fwd_s = max(attn_flops * causal_frac / attn_rate, attn_bytes / mem_rate)
    # backward: dQ, dK, dV and the recomputed scores: 2.5x the forward matmuls (Dao 2023, FlashAttention-2)
    bwd_s = max(2.5 * attn_flops * causal_frac / attn_rate, 2 * attn_bytes / mem_rate)
    return fwd_s, bwd_s


def _unfused_attention_s(model: ModelSpec, acc: ComputeModel, shard: LayerShard) -> tuple[float, float]:
    """Unfused attention: separate kernels that run one after the other (Korthikanti et al. 2022, sec. 4.1): QK^T
    writes the scores, softmax reads and writes them, dropout reads and writes them, AV reads them. The two batched
    GEMMs are priced by their own shapes (inner dimension = head size for QK^T, key length for AV)."""
    s_local, seq_len = shard.seq_len // shard.sp, shard.seq_len
    act_prec = _act_precision(shard.precision)
    abpe = BYTES_PER_ELEMENT[act_prec]
    heads_local = model.heads / shard.tp
    scores = shard.micro_batch * heads_local * s_local * seq_len
    rows = shard.micro_batch * heads_local * s_local
    t_qk = acc.gemm_time_s(rows, model.qk_head_dim, seq_len, precision=act_prec, bytes_per_element=abpe)
    t_av = acc.gemm_time_s(rows, seq_len, model.v_head_dim, precision=act_prec, bytes_per_element=abpe)
    softmax_dropout_s = acc.op_time_s(flops=0.0, bytes_moved=4 * scores * abpe, precision=act_prec, n_kernels=2)
    fwd_s = t_qk + t_av + softmax_dropout_s
    # backward: dV, dP, dQ, dK (two GEMMs per forward GEMM, same shapes), dropout backward (read, write) and
    # softmax backward (read the gradient and the probabilities, write): 10 passes over the scores in all
    bwd_s = 2 * (t_qk + t_av) + acc.op_time_s(flops=0.0, bytes_moved=5 * scores * abpe, precision=act_prec,
                                              n_kernels=2)
    return fwd_s, bwd_s


def elementwise_s(model: ModelSpec, acc: ComputeModel, shard: LayerShard) -> tuple[float, float]:
    """(forward, backward) seconds of the element-wise passes: 2 norms (r+w), 2 residual adds (2r+w), the
    activation over the MLP width, rotary embeddings, the fp8 casts, and in MoE layers the permutation of the
    routed tokens to their experts and back."""
    tp, precision = shard.tp, shard.precision
    abpe = BYTES_PER_ELEMENT[_act_precision(precision)]
    h, kv = model.hidden, model.kv_dim
    tokens = _tokens(shard)
    act_tokens = tokens / tp if shard.sequence_parallel else tokens
    f_local = model.ffn / tp if model.moe is None else mlp_width_per_token(model, shard)
    ew_bytes = (2 * 2 + 2 * 3) * act_tokens * h * abpe + (3 if model.gated_mlp else 2) * tokens * f_local * abpe
    ew_bwd_bytes = 2 * ew_bytes
    moe_fwd, moe_bwd = moe_elementwise_bytes(model, shard)
    ew_bytes += moe_fwd
    ew_bwd_bytes += moe_bwd
    if model.position is Position.ROTARY:
        # rotary embeddings rotate the local query and key heads (Su et al. 2021): read and write both, forward
        # and backward (the gradient is rotated back)
        rope_bytes = 2 * tokens * (model.q_dim + kv) / tp * abpe
        ew_bytes += rope_bytes
        ew_bwd_bytes += rope_bytes
    if precision == "fp8":
        q_fwd, q_bwd = fp8_quantise_bytes(model, shard, acc.fp8_tn_only, f_local)
        ew_bytes += q_fwd
        ew_bwd_bytes += q_bwd
    k_fwd, k_bwd = elementwise_kernels(model, shard)
    return (acc.op_time_s(flops=0.0, bytes_moved=ew_bytes, precision=precision, n_kernels=k_fwd),
            acc.op_time_s(flops=0.0, bytes_moved=ew_bwd_bytes, precision=precision, n_kernels=k_bwd))


FP8_QUANTISE_KERNELS = {"delayed": 1, "current": 2, "rowwise": 2, "blockwise": 1, "mxfp8": 1}
"""Kernels per quantised operand: one cast (-transpose) kernel; current scaling runs its amax reduction first, and
rowwise quantises each layout in its own kernel."""


def elementwise_kernels(model: ModelSpec, shard: LayerShard) -> tuple[float, float]:
    """(forward, backward) element-wise kernels of one layer, the passes `elementwise_s` prices: 2 norms, 2
    residual adds, the activation (and the gate's multiply), the rotary embedding of queries and keys, MoE's
    permute and unpermute, and in fp8 the quantisation kernels (`FP8_QUANTISE_KERNELS`): the attention output's
    cast (with delayed scaling the norms and activation cast in their own kernel), every other GEMM input's with
    any other recipe, and every output gradient's in the backward."""
    k = 2.0 + 2 + (2 if model.gated_mlp else 1) + (2 if model.position is Position.ROTARY else 0)
    if model.moe is not None and model.moe.experts > 1:
        k += model.moe_fraction * 2
    fwd, bwd = float(k), float(k)
    if shard.precision == "fp8":
        per = FP8_QUANTISE_KERNELS[shard.fp8_recipe]
        fwd += per * (1 if shard.fp8_recipe == "delayed" else 4) + (0 if shard.fp8_weight_cache else 4 * per)
        bwd += per * 4
    return fwd, bwd


def layer_kernels(model: ModelSpec, shard: LayerShard) -> tuple[float, float]:
    """(forward, backward) kernels one layer launches on one rank per micro-batch (a MoE model's: the mean over its
    layers): its weight GEMMs (QKV or MLA's projections, output projection, MLP up and down; a MoE layer's router,
    two grouped expert GEMMs and the shared experts), attention (fused: one kernel forward, two backward, the
    FlashAttention backward's preprocessing and main kernels; unfused: two batched GEMMs with softmax and dropout
    forward, four GEMMs and two passes backward) and `elementwise_kernels`; the backward runs two GEMMs per
    forward GEMM (data and weight gradients).

    Example:
        >>> m = ModelSpec(layers=12, hidden=768, heads=12, seq_len=2048, vocab=50257)
        >>> layer_kernels(m, LayerShard(1, 1, 8, 2048, "bf16", False, True, Recompute.NONE))
        (10.0, 15.0)
    """
    mla = model.mla
    qkv = 1.0 if mla is None else (1 if mla.q_lora_rank is None else 2) + 2
    mlp = 2.0
    if model.moe is not None:
        moe = model.moe
        moe_mlp_k = (1 if moe.experts > 1 else 0) + 2 + (2 if moe.shared_experts else 0)
        mlp = (1 - model.moe_fraction) * 2 + model.moe_fraction * moe_mlp_k
    gemms = qkv + 1 + mlp
    attn_fwd, attn_bwd = (1, 2) if shard.flash else (4, 6)
    ew_fwd, ew_bwd = elementwise_kernels(model, shard)
    return gemms + attn_fwd + ew_fwd, 2 * gemms + attn_bwd + ew_bwd


FP8_SCALE_BYTES_PER_ELEMENT = {"blockwise": 4 / 128, "mxfp8": 1 / 32}
"""Scale bytes per quantised element of the block-scaled recipes: one fp32 scale per 1x128 tile (DeepSeek-V3,
arXiv 2412.19437 sec. 3.3.2; Transformer Engine Float8BlockScaling), one E8M0 byte per 32 elements (OCP MX v1.0,
MXFP8 on Blackwell)."""


def fp8_operand_bytes(recipe: str, tn_only: bool, fused_cast: bool = False) -> float:
    """HBM bytes per element that quantising one bf16 GEMM operand (input, weight or output gradient) to fp8 costs,
    for both uses of the operand (the forward or data-gradient GEMM reads it along one axis, the weight-gradient or
    data-gradient GEMM along the other).

    - ``delayed`` (tensorwise, scale from the amax history; TE DelayedScaling): one cast, read 2 and write 1 byte,
      which a producing norm or activation does in its own kernel (`fused_cast`: 0 bytes more); a transposed copy
      (1 byte) where fp8 GEMMs are TN only (Hopper; TE's cast-transpose).
    - ``current`` (tensorwise, scale from this tensor's amax; TE Float8CurrentScaling, torchao's dynamic
      tensorwise): the amax is a reduction over the whole tensor before the cast can start: read 2 more bytes, and
      no producer can fuse the cast.
    - ``rowwise`` (torchao rowwise): per-row scales, local to the cast kernel, but the second use scales along
      the other axis, so each layout is its own pass: 2 x (read 2 + write 1).
    - ``blockwise`` (1x128 activation / 128x128 weight tiles) and ``mxfp8`` (1x32 blocks, Blackwell): one kernel
      reads once and writes both layouts with their block scales (`FP8_SCALE_BYTES_PER_ELEMENT`).

    Example:
        >>> fp8_operand_bytes("delayed", True), fp8_operand_bytes("delayed", True, fused_cast=True)
        (4.0, 1.0)
        >>> fp8_operand_bytes("current", False), fp8_operand_bytes("rowwise", False), fp8_operand_bytes("mxfp8", False)
        (5.0, 6.0, 4.0625)
    """
    copies = 2 if tn_only else 1
    if recipe == "delayed":
        return (copies - 1) * 1.0 if fused_cast else 2.0 + copies
    if recipe == "current":
        return 2.0 + 2.0 + copies
    if recipe == "rowwise":
        return 2 * (2.0 + 1.0)
    if recipe in FP8_SCALE_BYTES_PER_ELEMENT:
        return 2.0 + 2 * (1.0 + FP8_SCALE_BYTES_PER_ELEMENT[recipe])
    raise ValueError(f"unknown fp8 recipe {recipe!r}")


def fp8_quantise_bytes(model: ModelSpec, shard: LayerShard, tn_only: bool, f_local: float) -> tuple[float, float]:
    """(forward, backward) HBM bytes of one layer's fp8 quantisation on one rank, priced per GEMM operand by its
    shape (`fp8_operand_bytes`): the inputs of QKV, the output projection, MLP up and down (the norm and activation
    outputs can take a fused cast; the attention output cannot) and their weights in the forward, every output
    gradient in the backward. The weights count here only when they are quantised every micro-batch (not
    `fp8_weight_cache`; else `fp8_weight_cast_bytes`, once per step)."""
    tp, tokens, recipe = shard.tp, _tokens(shard), shard.fp8_recipe
    h, kv = model.hidden, model.kv_dim
    attn_out = model.attn_out_dim / tp
    mlp_io = mlp_io_width_per_token(model, shard)  # MLP up input = MLP down output width (a MoE layer's routed copies)
    fused_in = h + mlp_io + f_local  # QKV and MLP-up inputs (norm outputs), MLP-down input (activation output)
    up_width = f_local * (2 if model.gated_mlp else 1)
    grad_width = (model.q_dim + 2 * kv) / tp + h + up_width + mlp_io  # the four GEMMs' output gradients
    fwd = tokens * (fused_in * fp8_operand_bytes(recipe, tn_only, fused_cast=True)
                    + attn_out * fp8_operand_bytes(recipe, tn_only))
    if not shard.fp8_weight_cache:
        fwd += fp8_weight_cast_bytes(model, shard, tn_only)
    bwd = tokens * grad_width * fp8_operand_bytes(recipe, tn_only)
    return fwd, bwd


def fp8_weight_cast_bytes(model: ModelSpec, shard: LayerShard, tn_only: bool) -> float:
    """HBM bytes of quantising one layer's weights on one rank (its TP share, and its EP x ETP share of the
    routed experts) to fp8 in both layouts."""
    weights = (model.layer_params - model.expert_layer_params) / shard.tp
    if model.moe is not None:
        weights += model.expert_layer_params / (shard.ep * shard.etp)
    return weights * fp8_operand_bytes(shard.fp8_recipe, tn_only)


def linear_fwd_bwd_s(acc: ComputeModel, m: float, k: float, n: float, *, precision: str,
                     fp8_recipe: str = "delayed", input_fused: bool = False) -> float:
    """Forward plus backward seconds of one linear layer, an (m x k) input times a (k x n) weight: its three GEMMs
    (forward, data gradient, weight gradient, each of the forward's shape class) and, in fp8, the quantisation of
    its input, weight and output gradient at memory speed (`fp8_operand_bytes`). Shows where fp8 does not pay: a
    GEMM with a narrow n (the K or V projection of a GQA model at TP 8) is bandwidth bound on reading its input,
    and quantising that input costs more than the fp8 GEMM saves."""
    bpe = BYTES_PER_ELEMENT[precision]
    gemms = 3 * acc.gemm_time_s(m, k, n, precision=precision, bytes_per_element=bpe)
    if precision != "fp8":
        return gemms
    q_bytes = (m * k * fp8_operand_bytes(fp8_recipe, acc.fp8_tn_only, input_fused)
               + (k * n + m * n) * fp8_operand_bytes(fp8_recipe, acc.fp8_tn_only))
    return gemms + acc.op_time_s(flops=0.0, bytes_moved=q_bytes, precision="bf16", n_kernels=3)


def stored_activation_bytes(model: ModelSpec, shard: LayerShard) -> float:
    """Activation bytes one layer stores per micro-batch on one rank (Korthikanti et al. 2022, eqs. 1-5),
    generalised to GQA, own head widths, gated MLPs and MoE layers (each routed copy of a token is stored as its
    expert's input, and the experts' intermediate activations are those of the assignments the rank computes)."""
    tp, sequence_parallel = shard.tp, shard.sequence_parallel
    h, f, kv, a = model.hidden, model.ffn, model.kv_dim, model.heads
    sbh = _tokens(shard) * h
    if shard.recompute is Recompute.FULL:
        return 2 * sbh / (tp if sequence_parallel else 1)
    # QKV input, Q, K+V, projection input, dropout mask (11 for MHA)
    attn_coef = 2 + 2 * model.q_dim / h + 4 * kv / h + 2 * model.attn_out_dim / h + 1
    gated = 1 + (2 if model.gated_mlp else 1)
    if model.moe is None:
        mlp_coef = 2 + (f / h) * 2 * gated + 1  # 19 for a 4h GELU MLP
    else:
        frac = model.moe_fraction
        # the expert inputs: one copy of each token per assignment, beside the router's input
        moe_in = 2 * routed_tokens(model, shard) * tp / _tokens(shard) + 2 if model.moe.experts > 1 else 2
        mlp_coef = (1 - frac) * 2 + frac * moe_in + mlp_width_per_token(model, shard) * tp / h * 2 * gated + 1
    norm_coef = 4
    if sequence_parallel:
        base = (attn_coef + mlp_coef + norm_coef) * sbh / tp
    else:
        # layer-norm inputs, dropout masks and the first-linear inputs are replicated across TP
        replicated = 10.0 * sbh
        base = replicated + (attn_coef + mlp_coef + norm_coef - 10.0) * sbh / tp
    if shard.recompute is Recompute.NONE:
        score_coef = 0.0 if shard.flash else 5.0 * a * shard.seq_len / h
        base += score_coef * sbh / tp
    return base


@register
@lru_cache(maxsize=1 << 16)
def layer_cost(model: ModelSpec, acc: ComputeModel, shard: LayerShard) -> LayerCost:
    """Cost of one layer on one rank for one micro-batch (priced once, reused for every layer): the weight GEMMs,
    the attention core and the element-wise passes; the backward GEMMs (activation and weight gradients) take
    twice the forward's FLOPs."""
    gemm_fwd_s, gemm_flops = weight_gemms(model, acc, shard)
    attn_fwd_s, attn_bwd_s, attn_flops = attention_core(model, acc, shard)
    ew_fwd_s, ew_bwd_s = elementwise_s(model, acc, shard)
    fwd_s = gemm_fwd_s + attn_fwd_s + ew_fwd_s
    bwd_s = 2 * gemm_fwd_s + attn_bwd_s + ew_bwd_s
    if shard.host_launch_s > 0:
        # the host launches kernels ahead of the GPU (asynchronously); when it launches them slower than the GPU
        # runs them, the GPU waits: the layer takes the longer of the two
        k_fwd, k_bwd = layer_kernels(model, shard)
        fwd_s = max(fwd_s, k_fwd * shard.host_launch_s)
        bwd_s = max(bwd_s, k_bwd * shard.host_launch_s)
    fwd_flops = gemm_flops + attn_flops
    bwd_flops = 2 * gemm_flops + 2 * attn_flops
    if shard.recompute is Recompute.FULL:
        rec_s, rec_flops = fwd_s, fwd_flops
    elif shard.recompute is Recompute.SELECTIVE:
        rec_s, rec_flops = attn_fwd_s, attn_flops
    else:
        rec_s, rec_flops = 0.0, 0.0
    weight_cast_s = 0.0
    if shard.precision == "fp8" and shard.fp8_weight_cache:
        # Transformer Engine quantises the weights in the first micro-batch of a step and reuses them
        # (Megatron passes is_first_microbatch): once per step, priced with the optimizer step
        weight_cast_s = acc.op_time_s(flops=0.0, bytes_moved=fp8_weight_cast_bytes(model, shard, acc.fp8_tn_only),
                                      precision="bf16")
    return LayerCost(
        fwd_s=fwd_s,
        bwd_s=bwd_s,
        recompute_s=rec_s,
        attn_core_fwd_s=attn_fwd_s,
        attn_core_bwd_s=attn_bwd_s,
        fwd_flops=fwd_flops,
        bwd_flops=bwd_flops,
        recompute_flops=rec_flops,
        act_bytes=stored_activation_bytes(model, shard),
        wgrad_s=gemm_fwd_s,  # one GEMM per forward GEMM computes the weight gradients
        **dict(zip(("qkv_s", "proj_s", "fc1_s", "fc2_s"), tp_gemms_s(model, acc, shard), strict=True)),
        weight_cast_s=weight_cast_s,
    )


@register
@lru_cache(maxsize=1 << 16)
def end_costs(model: ModelSpec, acc: ComputeModel, shard: LayerShard) -> tuple[EndCost, EndCost]:
    """(embedding, head) cost per micro-batch on one rank."""
    tp, sp, micro_batch, seq_len, precision = shard.tp, shard.sp, shard.micro_batch, shard.seq_len, shard.precision
    bpe = BYTES_PER_ELEMENT[precision]
    h, v = model.hidden, model.vocab
    tokens = micro_batch * seq_len // sp
    if model.embedding is Embedding.PATCH:
        t, fl = _gemm(acc, tokens, model.patch_dim or 0, h, precision, bpe)
        emb = EndCost(fwd_s=t, bwd_s=t, fwd_flops=fl, act_bytes=tokens * (model.patch_dim or 0) * bpe)
        # classifier on the [CLS] token only
        t_head, fl_head = _gemm(acc, micro_batch, h, v / tp, precision, bpe)
        head = EndCost(fwd_s=t_head, bwd_s=2 * t_head, fwd_flops=fl_head, act_bytes=micro_batch * h * bpe)
        return emb, head
    lookup = acc.op_time_s(flops=0.0, bytes_moved=2 * tokens * h * bpe, precision=precision)
    emb = EndCost(fwd_s=lookup, bwd_s=2 * lookup, fwd_flops=0.0, act_bytes=tokens * h * bpe)
    t_logits, fl_logits = _gemm(acc, tokens, h, v / tp, precision, bpe)
    # softmax cross-entropy in fp32 over the local vocabulary shard: read logits, write probabilities (fwd, bwd)
    xent = acc.op_time_s(flops=0.0, bytes_moved=3 * tokens * v / tp * 4, precision=precision, n_kernels=3)
    head = EndCost(
        fwd_s=t_logits + xent,
        bwd_s=2 * t_logits + xent,
        fwd_flops=fl_logits,
        act_bytes=tokens * v / tp * 4 + tokens * h * bpe,
    )
    return emb, head


# ---- serving: attention over a KV cache -----------------------------------------------------------------------


def kv_width_per_rank(model: ModelSpec, tp: int) -> float:
    """Width of K (and of V) one rank holds: its share of the KV heads, at least one whole head (with TP above the
    KV heads each head is replicated, as vLLM and TensorRT-LLM do for GQA)."""
    return max(model.n_kv_heads / tp, 1.0) * model.head_size


def cached_attention_s(model: ModelSpec, acc: ComputeModel, *, tp: int, q_tokens: float, kv_tokens: float,
                       precision: str, kv_bytes_per_element: float, kernel: str = "auto") -> float:
    """Seconds of one layer's attention core for `q_tokens` new queries of one sequence over `kv_tokens` keys
    (the cached context plus the new tokens themselves, causal among them): a prefill chunk after `kv_tokens -
    q_tokens` cached tokens (Sarathi-Serve's chunked prefill), or a whole prompt when they are equal.

    The fused kernel's roofline, as `_fused_attention_s`: QK^T and AV at the kernel's measured fraction of peak,
    against reading Q, writing O and reading the K and V of the cache at its own precision (paged KV, Kwon et al.
    2023). With ``q_tokens == kv_tokens`` and the cache at the activation precision this is the training forward.
    """
    act_prec = _act_precision(precision)
    abpe = BYTES_PER_ELEMENT[act_prec]
    h = model.hidden
    # query i of the chunk sees the cached keys and the chunk's first i+1 keys: q*(kv - q) + q*q/2 pairs
    pairs = q_tokens * (kv_tokens - q_tokens) + (0.5 if model.causal else 1.0) * q_tokens * q_tokens
    flops = 4.0 * pairs * h / tp
    rate = attention_rate_flop_per_s(model, acc, kernel, act_prec)
    bytes_moved = 2 * q_tokens * h / tp * abpe + 2 * kv_tokens * kv_width_per_rank(model, tp) * kv_bytes_per_element
    return max(flops / rate, bytes_moved / acc.achievable_mem_bytes_per_s)


def decode_attention_coefficients(model: ModelSpec, acc: ComputeModel, *, tp: int, precision: str,
                                  kv_bytes_per_element: float, kernel: str = "auto") -> tuple[float, float, float]:
    """``(per_context_flop_s, per_seq_byte_s, per_context_byte_s)`` of `decode_attention_s`: its FLOP time is
    ``context x the first``, its memory time ``seqs x the second + context x the third``."""
    act_prec = _act_precision(precision)
    abpe = BYTES_PER_ELEMENT[act_prec]
    h = model.hidden
    rate = attention_rate_flop_per_s(model, acc, kernel, act_prec)
    mem = acc.achievable_mem_bytes_per_s
    return (4.0 * h / tp / rate, 2 * h / tp * abpe / mem,
            2 * kv_width_per_rank(model, tp) * kv_bytes_per_element / mem)


def decode_attention_s(model: ModelSpec, acc: ComputeModel, *, tp: int, seqs: Any, context_tokens: Any,
                       precision: str, kv_bytes_per_element: float, kernel: str = "auto") -> Any:
    """Seconds of one layer's attention core for one decode step of `seqs` sequences holding `context_tokens`
    cached tokens in all (each new query attends its whole context): one batched kernel (FlashDecoding / paged
    attention) whose time is the larger of its FLOPs at the kernel's rate and its bytes (the KV cache read once,
    Q and O of each sequence) at memory speed; it is bandwidth-bound for every catalog accelerator.
    `seqs` and `context_tokens` may be NumPy arrays (a run of decode steps priced at once)."""
    coef = decode_attention_coefficients(model, acc, tp=tp, precision=precision,
                                         kv_bytes_per_element=kv_bytes_per_element, kernel=kernel)
    return decode_attention_time(coef, seqs, context_tokens)


def decode_attention_time(coef: tuple[float, float, float], seqs: Any, context_tokens: Any) -> Any:
    """`decode_attention_s` from its `decode_attention_coefficients` (scaled by a number of layers, the same for
    those layers together)."""
    f, s, k = coef
    return vmax(context_tokens * f, seqs * s + context_tokens * k)


@register
@lru_cache(maxsize=1 << 16)
def dense_layer_s(model: ModelSpec, acc: ComputeModel, tp: int, tokens: int, precision: str) -> float:
    """Forward seconds of one layer's weight GEMMs and element-wise passes for `tokens` batched tokens on one rank
    of a TP group (the same `weight_gemms` and `elementwise_s` a training step prices: a decode step's small m makes
    the GEMMs read-the-weights bound through the roofline)."""
    shard = LayerShard(tp=tp, sp=1, micro_batch=1, seq_len=tokens, precision=precision, sequence_parallel=False,
                       flash=True, recompute=Recompute.NONE)
    return weight_gemms(model, acc, shard)[0] + elementwise_s(model, acc, shard)[0]


@register
@lru_cache(maxsize=1 << 16)
def logits_s(model: ModelSpec, acc: ComputeModel, tp: int, seqs: int, precision: str) -> float:
    """Seconds of the output head for the `seqs` sequences that sample a token this iteration: only their last
    position is projected onto the vocabulary shard (vLLM's logits processor gathers those rows first)."""
    bpe = BYTES_PER_ELEMENT[precision]
    return _gemm(acc, seqs, model.hidden, model.vocab / tp, precision, bpe)[0]
