"""simulate(config) -> Result: one training step across the four stacks.

How the step is built (one representative rank per pipeline stage; every rank of a stage does the same work, so
the cost never grows with the NPU count):

1. **Layer cost** (compute stack): one transformer layer's forward, backward and recompute time per micro-batch on
   one rank, from a roofline per operation (GEMMs, attention core, memory-bound element-wise ops). All layers of a
   model are identical, so one layer is priced once and multiplied.
2. **Groups** (network stack): the TP, SP, DP and PP groups are laid on the network dimensions by the rank order;
   each collective is priced on what its group really spans (collective stack).
3. **Stage timeline** per micro-batch: compute, TP/SP collectives on the critical path, pipeline sends; ZeRO-3
   parameter gathers overlapped with compute.
4. **Pipeline**: the bottleneck stage runs every micro-batch, the others add the fill and drain (the bubble), which
   an interleaved schedule divides by the virtual stages (Narayanan et al. 2021, section 2.2).
5. **Tail**: each stage reduces its gradients over DP (overlapped with its last backward, and with the time it waits
   for earlier stages to drain), then steps the optimizer; the step ends when the slowest stage is done.
"""

from __future__ import annotations

import gc
import math
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from cosmic.collective.algorithms import Algorithm, Collective, GroupDim
from cosmic.collective.model import ZERO, CollectiveTime, MultiDim, collective_time, p2p_time
from cosmic.compute.accelerator import Accelerator
from cosmic.errors import InfeasibleError, KeyedValueError
from cosmic.network.cost import network_figures
from cosmic.network.topology import Network
from cosmic.sim.config import (
    Fidelity,
    Recompute,
    Schedule,
    Scheduling,
    SystemConfig,
    check_config,
)
from cosmic.sim.result import Memory, Result
from cosmic.units import BYTES_PER_ELEMENT
from cosmic.workload.model import Embedding, ModelSpec
from cosmic.workload.parallel import Span, group_spans

# Adam with mixed precision (Rajbhandari et al. 2020, "ZeRO", section 3.1): 2 B bf16/fp16 weights, 2 B gradients,
# 12 B fp32 master weights + momentum + variance per parameter.
WEIGHT_BYTES = 2
GRAD_BYTES = 2
OPTIMIZER_BYTES = 12
MAIN_GRAD_BYTES = 4  # fp32 gradient accumulation buffer (Megatron-LM main_grad)
# The optimizer step streams master weights, both moments and the gradient in and writes the first three plus the
# low-precision weights back: 4+4+4+2 read, 4+4+4+2 written.
OPTIMIZER_TRAFFIC_BYTES_PER_PARAM = 28


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


@dataclass(frozen=True, slots=True)
class EndCost:
    """Embedding (first stage) or head (last stage) cost per micro-batch."""

    fwd_s: float
    bwd_s: float
    fwd_flops: float
    act_bytes: float


def _gemm(acc: Accelerator, m: float, k: float, n: float, prec: str, bpe: int) -> tuple[float, float]:
    return acc.gemm_time_s(m, k, n, precision=prec, bytes_per_element=bpe), 2.0 * m * k * n


@lru_cache(maxsize=1 << 16)
def layer_cost(
    model: ModelSpec,
    acc: Accelerator,
    tp: int,
    sp: int,
    micro_batch: int,
    seq_len: int,
    precision: str,
    sequence_parallel: bool,
    flash: bool,
    recompute: Recompute,
    attention_kernel: str = "auto",
) -> LayerCost:
    """Cost of one layer on one rank for one micro-batch (priced once, reused for every layer)."""
    bpe = BYTES_PER_ELEMENT[precision]
    # fp8 training (Transformer Engine) runs the linear layers in fp8; attention, norms and activations stay bf16
    act_prec = "bf16" if precision == "fp8" else precision
    abpe = BYTES_PER_ELEMENT[act_prec]
    h, f, kv, a = model.hidden, model.ffn, model.kv_dim, model.heads
    s_local = seq_len // sp
    tokens = micro_batch * s_local
    # --- weight GEMMs (Megatron column/row split over TP; Shoeybi et al. 2019) ---
    t_qkv, f_qkv = _gemm(acc, tokens, h, (h + 2 * kv) / tp, precision, bpe)
    t_proj, f_proj = _gemm(acc, tokens, h / tp, h, precision, bpe)
    t_up, f_up = _gemm(acc, tokens, h, f * (2 if model.gated_mlp else 1) / tp, precision, bpe)
    t_down, f_down = _gemm(acc, tokens, f / tp, h, precision, bpe)
    gemm_fwd_s = t_qkv + t_proj + t_up + t_down
    gemm_flops = f_qkv + f_proj + f_up + f_down
    # --- attention core: QK^T and AV over the full key length (keys are gathered over SP) ---
    heads_local = a / tp
    attn_flops = 4.0 * micro_batch * s_local * seq_len * h / tp
    causal_frac = 0.5 if (model.causal and flash) else 1.0  # fused kernels skip fully masked blocks
    if flash:
        # fused attention runs at its own measured fraction of peak (FlashAttention papers), not at GEMM speed
        attn_rate = acc.peak_flop_per_s(act_prec) * acc.attention_efficiency_for(attention_kernel)
        attn_bytes = micro_batch * (2 * s_local * h / tp + 2 * seq_len * kv / tp) * abpe
        mem_rate = acc.achievable_mem_bytes_per_s
        attn_fwd_s = max(attn_flops * causal_frac / attn_rate, attn_bytes / mem_rate)
        # backward: dQ, dK, dV and the recomputed scores: 2.5x the forward matmuls (Dao 2023, FlashAttention-2)
        attn_bwd_s = max(2.5 * attn_flops * causal_frac / attn_rate, 2 * attn_bytes / mem_rate)
    else:
        scores = micro_batch * heads_local * s_local * seq_len
        # scores written, softmax read+write, dropout read+write, read by AV (Korthikanti et al. 2022, sec. 4.1)
        attn_fwd_s = acc.op_time_s(flops=attn_flops, bytes_moved=6 * scores * abpe, precision=act_prec, n_kernels=4)
        attn_bwd_s = acc.op_time_s(
            flops=2 * attn_flops, bytes_moved=10 * scores * abpe, precision=act_prec, n_kernels=4
        )
    # --- element-wise: 2 norms (r+w), 2 residual adds (2r+w), activation over the MLP width ---
    act_tokens = tokens / tp if sequence_parallel else tokens
    ew_bytes = (2 * 2 + 2 * 3) * act_tokens * h * abpe + (3 if model.gated_mlp else 2) * tokens * f / tp * abpe
    ew_fwd_s = acc.op_time_s(flops=0.0, bytes_moved=ew_bytes, precision=precision, n_kernels=5)
    ew_bwd_s = acc.op_time_s(flops=0.0, bytes_moved=2 * ew_bytes, precision=precision, n_kernels=5)

    fwd_s = gemm_fwd_s + attn_fwd_s + ew_fwd_s
    # backward GEMMs: activation gradient and weight gradient, each as many FLOPs as the forward
    bwd_s = 2 * gemm_fwd_s + attn_bwd_s + ew_bwd_s
    fwd_flops = gemm_flops + attn_flops
    bwd_flops = 2 * gemm_flops + 2 * attn_flops
    if recompute is Recompute.FULL:
        rec_s, rec_flops = fwd_s, fwd_flops
    elif recompute is Recompute.SELECTIVE:
        rec_s, rec_flops = attn_fwd_s, attn_flops
    else:
        rec_s, rec_flops = 0.0, 0.0

    # --- stored activations per layer (Korthikanti et al. 2022, eqs. 1-5), generalised to GQA and gated MLPs ---
    sbh = tokens * h
    attn_coef = 2 + 2 + 4 * kv / h + 2 + 1  # QKV input, Q, K+V, projection input, dropout mask (11 for MHA)
    mlp_coef = 2 + (f / h) * 2 * (1 + (2 if model.gated_mlp else 1)) + 1  # 19 for a 4h GELU MLP
    norm_coef = 4
    score_coef = 0.0 if flash else 5.0 * a * seq_len / h
    if recompute is Recompute.FULL:
        act = 2 * sbh / (tp if sequence_parallel else 1)
    else:
        if sequence_parallel:
            base = (attn_coef + mlp_coef + norm_coef) * sbh / tp
        else:
            # layer-norm inputs, dropout masks and the first-linear inputs are replicated across TP
            replicated = 10.0 * sbh
            base = replicated + (attn_coef + mlp_coef + norm_coef - 10.0) * sbh / tp
        if recompute is Recompute.NONE:
            base += score_coef * sbh / tp
        act = base
    return LayerCost(
        fwd_s=fwd_s,
        bwd_s=bwd_s,
        recompute_s=rec_s,
        attn_core_fwd_s=attn_fwd_s,
        attn_core_bwd_s=attn_bwd_s,
        fwd_flops=fwd_flops,
        bwd_flops=bwd_flops,
        recompute_flops=rec_flops,
        act_bytes=act,
    )


@lru_cache(maxsize=1 << 16)
def end_costs(
    model: ModelSpec, acc: Accelerator, tp: int, sp: int, micro_batch: int, seq_len: int, precision: str
) -> tuple[EndCost, EndCost]:
    """(embedding, head) cost per micro-batch on one rank."""
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


# ---- groups on the network ---------------------------------------------------------------------------------------


@lru_cache(maxsize=1 << 16)
def group_dims(
    network: Network, degrees: tuple[int, int, int, int], rank_order: tuple[str, ...], use_efficiency: bool
) -> dict[str, tuple[GroupDim, ...]]:
    """GroupDims of the tp, sp, dp, pp groups (`degrees` in that order) and of the gradient group dp x sp."""
    dims = network.dims
    tp, sp, dp, pp = degrees
    spans = group_spans({"tp": tp, "sp": sp, "dp": dp, "pp": pp}, rank_order, tuple(d.npus for d in dims))
    per_dim = [
        (d.topology, d.npus, d.link_bytes_per_s * (d.efficiency if use_efficiency else 1.0), d.latency_s)
        for d in dims
    ]

    def to_dims(sp_list: tuple[Span, ...]) -> tuple[GroupDim, ...]:
        out = []
        for i, members, stride in sp_list:
            topo, n, bw, lat = per_dim[i]
            out.append(GroupDim(i, topo, members, stride, n, bw, lat))
        return tuple(out)

    out = {name: to_dims(spans[name]) for name in spans}
    # gradients are reduced over dp x sp: merge the two footprints per dimension
    merged: dict[int, tuple[int, int]] = {}
    for i, members, stride in spans["dp"] + spans["sp"]:
        m, st = merged.get(i, (1, stride))
        merged[i] = (m * members, min(st, stride))
    out["dpsp"] = to_dims(tuple(Span(i, m, st) for i, (m, st) in sorted(merged.items())))
    return out


@lru_cache(maxsize=1 << 17)
def _coll(
    kind: Collective,
    size_bytes: float,
    group: tuple[GroupDim, ...],
    algorithms: tuple[Algorithm, ...],
    chunks: int,
    multidim: MultiDim,
) -> CollectiveTime:
    return collective_time(kind, size_bytes, group, algorithms, chunks=chunks, multidim=multidim)


class _Comm:
    """Prices collectives for one config (cosmic or astra-sim fidelity), caching by sub-configuration."""

    def __init__(self, cfg: SystemConfig) -> None:
        self.cfg = cfg
        c = cfg.collective
        self.chunks = c.chunks
        self.multidim = c.multidim
        self.topologies = tuple(d.topology for d in cfg.network.dims)
        self.algos: dict[Collective, tuple[Algorithm, ...]] = {}
        self.astra = c.fidelity is Fidelity.ASTRA_SIM
        par = cfg.parallel
        self.groups = group_dims(cfg.network, (par.tp, par.sp, par.dp, par.pp), par.rank_order, not self.astra)

    def __call__(self, kind: Collective, size_bytes: float, group: str) -> CollectiveTime:
        g = self.groups[group]
        if not g or size_bytes <= 0:
            return ZERO
        if self.astra:
            from cosmic.collective.astra import astra_collective_time

            return astra_collective_time(kind, size_bytes, g, self.cfg)
        algos = self.algos.get(kind)
        if algos is None:
            algos = self.algos[kind] = self.cfg.collective.algorithms(kind, self.topologies)
        return _coll(kind, float(size_bytes), g, algos, self.chunks, self.multidim)

    def p2p(self, msg_bytes: float) -> CollectiveTime:
        return p2p_time(msg_bytes, self.groups["pp"])


class _Acc:
    """Accumulates seconds per network dimension for the breakdown."""

    __slots__ = ("per_dim",)

    def __init__(self, n_dims: int) -> None:
        self.per_dim = [0.0] * n_dims

    def add(self, ct: CollectiveTime, exposed_s: float, times: float = 1.0) -> None:
        if ct.total_s <= 0 or exposed_s <= 0:
            return
        scale = exposed_s / ct.total_s * times
        for i, t in ct.per_dim_s:
            self.per_dim[i] += t * scale


def clear_caches() -> None:
    """Empty every sub-configuration cache of the simulator (for benchmarks and memory)."""
    from cosmic.collective.algorithms import phase_coefficients
    from cosmic.workload.parallel import _group_spans

    for fn in (layer_cost, end_costs, group_dims, _coll, phase_coefficients, _group_spans, network_figures):
        fn.cache_clear()


def _stage_layers(n_layers: int, pp: int) -> list[int]:
    """Layers per pipeline stage; a remainder goes to the middle stages first (the ends also hold the embedding
    and the head), as Llama 3 balanced its 126 layers over 16 stages."""
    base, extra = divmod(n_layers, pp)
    counts = [base] * pp
    order = list(range(1, pp - 1)) + [0, pp - 1] if pp > 2 else list(range(pp))
    for i in order[:extra]:
        counts[i] += 1
    return counts


def simulate(config: SystemConfig) -> Result:
    """Simulate one training step of `config`.

    Example:
        >>> import cosmic
        >>> cfg = cosmic.config_from_dict({"system": "cosmic-s2", "model": "gpt3-13b",
        ...     "parallel": {"dp": 64, "tp": 8, "pp": 4}, "training": {"global_batch": 2048}})
        >>> r = cosmic.simulate(cfg)
        >>> abs(sum(r.breakdown.values()) - r.step_time_s) < 1e-9 * r.step_time_s
        True
    """
    try:
        check_config(config)
    except KeyedValueError as exc:
        raise InfeasibleError(f"{exc.key}: {exc}") from None
    cfg = config
    model, acc, par, tr = cfg.model, cfg.accelerator, cfg.parallel, cfg.training
    prec = tr.precision.value
    bpe = BYTES_PER_ELEMENT[prec]
    seq = cfg.seq_len
    tp, sp, pp, dp = par.tp, par.sp, par.pp, par.dp
    mb = tr.micro_batch
    m = tr.global_batch // (dp * mb)
    v = tr.virtual_stages if tr.schedule is Schedule.INTERLEAVED else 1
    n_dims = len(cfg.network.dims)
    comm = _Comm(cfg)

    lc = layer_cost(
        model, acc, tp, sp, mb, seq, prec, par.sequence_parallel, tr.flash_attention, tr.recompute,
        tr.attention_kernel,
    )
    emb, head = end_costs(model, acc, tp, sp, mb, seq, prec)

    # ---- communication per layer per micro-batch ----------------------------------------------------------------
    tokens = mb * seq // sp
    abpe = BYTES_PER_ELEMENT["bf16" if prec == "fp8" else prec]  # activations travel in bf16 under fp8 training
    act_bytes = tokens * model.hidden * abpe
    if par.sequence_parallel:
        tp_colls = (
            comm(Collective.ALL_GATHER, act_bytes / tp, "tp"),
            comm(Collective.REDUCE_SCATTER, act_bytes, "tp"),
        )
    else:
        tp_colls = (comm(Collective.ALL_REDUCE, act_bytes, "tp"),)
    tp_one = sum(c.total_s for c in tp_colls)  # one all-reduce equivalent (AR, or AG+RS)
    tp_layer_fwd = 2 * tp_one  # after attention and after the MLP (Shoeybi et al. 2019, fig. 4)
    tp_layer_bwd = 2 * tp_one
    tp_layer_rec = tp_layer_fwd if tr.recompute is Recompute.FULL else 0.0
    # SP (context parallel): gather K and V of the local heads, reduce-scatter their gradients; overlapped with the
    # attention core as Megatron's ring implementation does
    kv_width = model.kv_dim / tp if model.n_kv_heads >= tp else model.head_dim  # GQA: kv heads replicate over TP
    kv_shard = tokens * 2 * kv_width * abpe
    sp_ag = comm(Collective.ALL_GATHER, kv_shard, "sp")
    sp_rs = comm(Collective.REDUCE_SCATTER, kv_shard * sp, "sp")
    sp_fwd = max(0.0, sp_ag.total_s - lc.attn_core_fwd_s)
    sp_bwd = max(0.0, sp_rs.total_s - lc.attn_core_bwd_s)
    sp_rec = sp_fwd if tr.recompute is Recompute.FULL else 0.0
    # embedding output all-reduce over TP (vocab-parallel embedding), loss all-reduces are negligible
    emb_tp = comm(Collective.ALL_REDUCE, act_bytes, "tp") if model.embedding is Embedding.TOKEN else ZERO

    # ---- pipeline p2p --------------------------------------------------------------------------------------------
    # each TP rank sends its 1/tp slice (sequence-parallel activations are already sliced; otherwise Megatron's
    # scatter/gather optimisation, Narayanan et al. 2021 section 4.1) and the receiver all-gathers it over TP
    p2p = comm.p2p(act_bytes / tp) if pp > 1 else ZERO
    p2p_gather = (
        comm(Collective.ALL_GATHER, act_bytes / tp, "tp") if (pp > 1 and not par.sequence_parallel) else ZERO
    )
    p2p_hop_s = p2p.total_s + p2p_gather.total_s
    p2p_per_mb = 2 * v * p2p_hop_s  # activations forward, gradients backward, per model chunk

    # ---- parameters per stage --------------------------------------------------------------------------------------
    layers = _stage_layers(model.layers, pp)
    emb_params = model.embedding_params / tp
    head_params = model.head_params / tp
    if model.tied_embeddings and model.embedding is Embedding.TOKEN and pp > 1:
        # the last stage keeps a copy of the tied embedding for the logits (Megatron-LM)
        head_params += model.vocab * model.hidden / tp
    layer_params_local = model.layer_params / tp
    stage_params = []
    for s in range(pp):
        p_ = layers[s] * layer_params_local
        if s == 0:
            p_ += emb_params
        if s == pp - 1:
            p_ += head_params
        stage_params.append(p_)
    dp_group = dp * sp

    # ---- per-stage per-micro-batch timeline --------------------------------------------------------------------
    zero = par.zero
    # stages with the same layer count and no embedding/head are identical: price each kind once
    def stage_kind(s: int) -> tuple[int, bool, bool]:
        return (layers[s], s == 0, s == pp - 1)

    stage_rows = []
    row_cache: dict[tuple[int, bool, bool], tuple] = {}
    for s in range(pp):
        kind = stage_kind(s)
        cached = row_cache.get(kind)
        if cached is not None:
            stage_rows.append(cached)
            continue
        n = layers[s]
        fwd_c = n * lc.fwd_s
        bwd_c = n * lc.bwd_s
        rec_c = n * lc.recompute_s
        tp_c = n * (tp_layer_fwd + tp_layer_bwd + tp_layer_rec)
        sp_c = n * (sp_fwd + sp_bwd + sp_rec)
        if s == 0:
            fwd_c += emb.fwd_s
            bwd_c += emb.bwd_s
            tp_c += emb_tp.total_s
        if s == pp - 1:
            fwd_c += head.fwd_s
            bwd_c += head.bwd_s
        if not tr.grad_accumulation_fusion and zero < 3:
            # each micro-batch's weight gradients are added to the fp32 main-grad buffer by a separate kernel:
            # read the new gradient, read and write the accumulator
            bwd_c += stage_params[s] * (GRAD_BYTES + 2 * MAIN_GRAD_BYTES) / acc.achievable_mem_bytes_per_s
        dp_mb = 0.0
        z3 = (ZERO, ZERO)
        if zero == 3 and dp_group > 1:
            # FSDP: gather weights before forward and backward, reduce-scatter gradients, prefetched layer by layer
            pbytes = stage_params[s] * WEIGHT_BYTES
            ag = comm(Collective.ALL_GATHER, pbytes / dp_group, "dpsp")
            rs = comm(Collective.REDUCE_SCATTER, stage_params[s] * GRAD_BYTES, "dpsp")
            # the gathers hide behind the whole forward (backward) stream: compute and the exposed TP/SP traffic
            fwd_stream = fwd_c + n * (tp_layer_fwd + sp_fwd) + (emb_tp.total_s if s == 0 else 0.0)
            bwd_stream = bwd_c + rec_c + n * (tp_layer_bwd + tp_layer_rec + sp_bwd + sp_rec)
            dp_mb = max(0.0, ag.total_s - fwd_stream) + max(0.0, ag.total_s + rs.total_s - bwd_stream)
            z3 = (ag, rs)
        pp_c = p2p_per_mb if pp > 1 else 0.0
        x = fwd_c + bwd_c + rec_c + tp_c + sp_c + pp_c + dp_mb
        row_cache[kind] = (x, fwd_c, bwd_c, rec_c, tp_c, sp_c, pp_c, dp_mb, z3)
        stage_rows.append(row_cache[kind])

    xs = [r[0] for r in stage_rows]
    crit = max(range(pp), key=lambda i: xs[i])
    x_max = xs[crit]
    t_pipe = m * x_max + (sum(xs) - x_max) / v

    # ---- tail: gradient reduction and optimizer per stage ----------------------------------------------------------
    tails = []
    slack = 0.0
    tail_cache: dict[tuple[int, bool, bool], tuple] = {}
    for s in range(pp):
        row = stage_rows[s]
        kind = stage_kind(s)
        part = tail_cache.get(kind)
        if part is not None:
            t_dp, window, penalty, gather, opt_s, dp_colls = part
            exposed_dp = max(0.0, t_dp - window - slack) + penalty
            tails.append((exposed_dp + gather.total_s + opt_s, exposed_dp, gather, opt_s, dp_colls, t_dp))
            slack += row[2] + row[3] + p2p_hop_s * v
            continue
        bwd_window = row[2] + row[3] + row[4] / 3.0  # last backward (compute + its TP share)
        gbytes = stage_params[s] * GRAD_BYTES
        dp_colls: list[CollectiveTime] = []
        if dp_group > 1 and zero < 3:
            if zero == 0:
                dp_colls.append(comm(Collective.ALL_REDUCE, gbytes, "dpsp"))
            else:
                dp_colls.append(comm(Collective.REDUCE_SCATTER, gbytes, "dpsp"))
        t_dp = sum(c.total_s for c in dp_colls)
        window = bwd_window if tr.dp_overlap else 0.0
        penalty = 0.0
        if t_dp > 0 and tr.dp_overlap:
            shares = _shares_dims(comm.groups["dpsp"], comm.groups["tp"] + comm.groups["sp"])
            if shares:
                tp_in_window = layers[s] * (tp_layer_bwd + sp_bwd)
                if cfg.collective.scheduling is Scheduling.LIFO:
                    # newest first: TP collectives of the backward go ahead, DP uses the gaps
                    window = max(0.0, window - tp_in_window)
                else:
                    # FIFO: each TP collective of the last backward waits for the DP chunk in flight
                    n_tp = layers[s] * 2 * len(tp_colls)
                    penalty = min(t_dp, n_tp * t_dp / max(1, cfg.collective.chunks))
        exposed_dp = max(0.0, t_dp - window - slack) + penalty
        # ZeRO-1/2 (distributed optimizer): gather the updated bf16 weights after the step
        gather = ZERO
        if dp_group > 1 and zero in (1, 2):
            gather = comm(Collective.ALL_GATHER, stage_params[s] * WEIGHT_BYTES / dp_group, "dpsp")
        shard = dp_group if zero >= 1 else 1
        opt_s = acc.op_time_s(
            flops=0.0,
            bytes_moved=stage_params[s] / shard * OPTIMIZER_TRAFFIC_BYTES_PER_PARAM,
            precision=prec,
            n_kernels=1,
        )
        tail_cache[kind] = (t_dp, window, penalty, gather, opt_s, dp_colls)
        tails.append((exposed_dp + gather.total_s + opt_s, exposed_dp, gather, opt_s, dp_colls, t_dp))
        slack += row[2] + row[3] + p2p_hop_s * v  # later stages finish their last backward earlier
    tail_stage = max(range(pp), key=lambda i: tails[i][0])
    tail_s, exposed_dp, gather, opt_s, dp_colls, t_dp = tails[tail_stage]
    step = t_pipe + tail_s

    # ---- breakdown of the critical stage -------------------------------------------------------------------------
    _, fwd_c, bwd_c, rec_c, tp_c, sp_c, pp_c, dp_mb, z3 = stage_rows[crit]
    bubble = t_pipe - m * x_max
    breakdown = {
        "forward_s": m * fwd_c,
        "backward_s": m * bwd_c,
        "recompute_s": m * rec_c,
        "comm_tp_s": m * tp_c,
        "comm_sp_s": m * sp_c,
        "comm_pp_s": m * pp_c,
        "comm_dp_s": m * dp_mb + exposed_dp + gather.total_s,
        "bubble_s": bubble,
        "optimizer_s": opt_s,
    }
    per_dim = _Acc(n_dims)
    for c in tp_colls:
        per_dim.add(c, c.total_s, m * (tp_c / tp_one if tp_one > 0 else 0.0))
    if sp_c > 0:
        tot = sp_ag.total_s + sp_rs.total_s
        per_dim.add(sp_ag, sp_ag.total_s, m * sp_c / tot)
        per_dim.add(sp_rs, sp_rs.total_s, m * sp_c / tot)
    if p2p_hop_s > 0:
        per_dim.add(p2p, p2p.total_s, m * pp_c / p2p_hop_s)
        per_dim.add(p2p_gather, p2p_gather.total_s, m * pp_c / p2p_hop_s)
    if dp_mb > 0:
        ag, rs = z3
        tot = 2 * ag.total_s + rs.total_s
        per_dim.add(ag, ag.total_s, 2 * m * dp_mb / tot)
        per_dim.add(rs, rs.total_s, m * dp_mb / tot)
    if exposed_dp > 0 and t_dp > 0:
        for c in dp_colls:
            per_dim.add(c, c.total_s, exposed_dp / t_dp)
    per_dim.add(gather, gather.total_s)

    # ---- memory ----------------------------------------------------------------------------------------------------
    mem = _memory(cfg, layers, stage_params, lc, emb, head, m, v, dp_group)

    # ---- throughput and utilisation ----------------------------------------------------------------------------
    n_npus = cfg.n_npus
    global_tokens = tr.global_batch * seq
    shape = model if seq == model.seq_len else model.model_copy(update={"seq_len": seq})
    model_flops = shape.model_flops_per_step(tr.global_batch)
    rec_flops = tr.global_batch / mb * sp * model.layers * lc.recompute_flops * tp
    peak_total = step * n_npus * acc.peak_flop_per_s(prec)
    net_cost, net_bw = network_figures(cfg.network)
    return Result(
        step_time_s=step,
        tokens_per_s=global_tokens / step,
        mfu=model_flops / peak_total,
        hfu=(model_flops + rec_flops) / peak_total,
        memory=mem,
        memory_capacity_bytes=acc.mem_bytes,
        fits_memory=mem.total_bytes <= acc.mem_bytes,
        network_cost_usd=net_cost,
        total_bandwidth_gbps=net_bw,
        breakdown=breakdown,
        comm_by_network_dim_s=tuple(per_dim.per_dim),
        n_npus=n_npus,
        micro_batches=m,
        critical_stage=crit,
        model_flops_per_step=model_flops,
        fidelity=cfg.collective.fidelity.value,
    )


def simulate_many(configs: Iterable[SystemConfig]) -> list[Result | InfeasibleError]:
    """Simulate a batch; an infeasible configuration yields its InfeasibleError instead of a Result.

    The simulator allocates only acyclic objects, so the cyclic garbage collector has nothing to find during a
    batch; it is paused (reference counting still frees everything) and restored afterwards. On 10,000 configs
    this removes about a third of the time, which the collector spends re-scanning the sub-configuration caches.
    """
    out: list[Result | InfeasibleError] = []
    enabled = gc.isenabled()
    gc.disable()
    try:
        for c in configs:
            try:
                out.append(simulate(c))
            except InfeasibleError as exc:
                out.append(exc)
    finally:
        if enabled:
            gc.enable()
    return out


def _shares_dims(a: tuple[GroupDim, ...], b: tuple[GroupDim, ...]) -> bool:
    da = {g.dim_index for g in a if g.members > 1}
    return any(g.dim_index in da for g in b if g.members > 1)


def _memory(
    cfg: SystemConfig,
    layers: list[int],
    stage_params: list[float],
    lc: LayerCost,
    emb: EndCost,
    head: EndCost,
    m: int,
    v: int,
    dp_group: int,
) -> Memory:
    """Peak memory over stages (Korthikanti et al. 2022 section 4 for activations in flight per schedule)."""
    par, tr = cfg.parallel, cfg.training
    pp = par.pp
    zero = par.zero
    best: Memory | None = None
    for s in range(pp):
        params = stage_params[s]
        w = params * WEIGHT_BYTES / (dp_group if zero >= 3 else 1)
        g = params * GRAD_BYTES / (dp_group if zero >= 2 else 1)
        o = params * OPTIMIZER_BYTES / (dp_group if zero >= 1 else 1)
        if zero >= 3:
            # FSDP keeps one gathered layer (plus a prefetched one) in full
            w += 2 * params / max(1, layers[s]) * WEIGHT_BYTES
        if tr.schedule is Schedule.GPIPE:
            in_flight = m
        elif tr.schedule is Schedule.INTERLEAVED:
            in_flight = min(m * v, math.ceil((pp - s) * (1 + (pp - 1) / (pp * v))))
            in_flight = min(m, in_flight)
        else:
            in_flight = min(m, pp - s)
        act = in_flight * layers[s] * lc.act_bytes
        if tr.recompute is Recompute.FULL and layers[s]:
            act += _full_layer_working_bytes(cfg)
        if s == 0:
            act += in_flight * emb.act_bytes
        if s == pp - 1:
            act += head.act_bytes
        mem = Memory(w, g, o, act)
        if best is None or mem.total_bytes > best.total_bytes:
            best = mem
    assert best is not None
    return best


def _full_layer_working_bytes(cfg: SystemConfig) -> float:
    """With full recompute, the layer being recomputed holds its full activations once."""
    m = cfg.model
    seq = cfg.seq_len
    par = cfg.parallel
    tokens = cfg.training.micro_batch * seq // par.sp
    return 34.0 * tokens * m.hidden / par.tp
