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
from typing import Any

from cosmic.collective.algorithms import Algorithm, Collective, GroupDim
from cosmic.collective.model import ZERO, CollectiveTime, MultiDim, collective_time, p2p_time
from cosmic.compute.accelerator import Accelerator
from cosmic.errors import InfeasibleError, KeyedValueError
from cosmic.network.cost import network_figures
from cosmic.network.topology import Network
from cosmic.sim.config import (
    CollectiveConfig,
    ParallelConfig,
    _LAYOUTS_CHECKED,
    Fidelity,
    Recompute,
    Schedule,
    Scheduling,
    SystemConfig,
    check_config,
    check_layout,
)
from cosmic.sim._memo import BoundedMemo
from cosmic.sim.result import Memory, Result
from cosmic.units import BYTES_PER_ELEMENT
from cosmic.workload.model import Embedding, ModelSpec, Position
from cosmic.workload.parallel import Span, group_spans

# Adam with mixed precision (Rajbhandari et al. 2020, "ZeRO", section 3.1): 2 B bf16/fp16 weights, 2 B gradients,
# 12 B fp32 master weights + momentum + variance per parameter.
WEIGHT_BYTES = 2
GRAD_BYTES = 2
OPTIMIZER_BYTES = 12
FP32_GRAD_BYTES = 4  # gradients reduced in fp32 (FSDP MixedPrecision reduce_dtype=float32)
MAIN_GRAD_BYTES = 4  # fp32 gradient accumulation buffer (Megatron-LM main_grad)
# The optimizer step streams master weights, both moments and the gradient in and writes the first three plus the
# low-precision weights back: 4+4+4+2 read, 4+4+4+2 written.
OPTIMIZER_TRAFFIC_BYTES_PER_PARAM = 28


def zero3_grad_traffic_bytes(reduce_bytes: int) -> int:
    """HBM bytes per parameter moved on each micro-batch's unsharded gradient before the ZeRO-3 reduce-scatter.

    What PyTorch FSDP does after each backward (torch 2.x, ``torch/distributed/fsdp/_runtime_utils.py`` and
    ``_flat_param.py``):

    * the weights are views of one flat parameter, so autograd's backward of the split that made them
      (``split_with_sizes_backward``, a ``cat``) copies the per-weight gradients into one flat gradient: read and
      write ``GRAD_BYTES``;
    * ``_post_backward_hook`` casts it to the reduction dtype when that differs (``grad.to(reduce_dtype)``): read
      ``GRAD_BYTES``, write ``reduce_bytes``;
    * ``_reduce_grad`` divides it in place by the gradient pre-divide factor (``_div_if_needed``, a factor > 1 for
      every group of 2 or more ranks) before ``reduce_scatter_tensor``: read and write ``reduce_bytes``.

    Example:
        >>> zero3_grad_traffic_bytes(2), zero3_grad_traffic_bytes(4)
        (8, 18)
    """
    cast = GRAD_BYTES + reduce_bytes if reduce_bytes != GRAD_BYTES else 0
    return 2 * GRAD_BYTES + cast + 2 * reduce_bytes


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
    up_width = f * (2 if model.gated_mlp else 1) / tp  # gate and up projections side by side when gated
    t_up, f_up = _gemm(acc, tokens, h, up_width, precision, bpe)
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
        # unfused: separate kernels that run one after the other (Korthikanti et al. 2022, sec. 4.1): QK^T writes
        # the scores, softmax reads and writes them, dropout reads and writes them, AV reads them. The two batched
        # GEMMs are priced by their own shapes (inner dimension = head size for QK^T, key length for AV).
        scores = micro_batch * heads_local * s_local * seq_len
        rows = micro_batch * heads_local * s_local
        head_dim = h / a
        t_qk = acc.gemm_time_s(rows, head_dim, seq_len, precision=act_prec, bytes_per_element=abpe)
        t_av = acc.gemm_time_s(rows, seq_len, head_dim, precision=act_prec, bytes_per_element=abpe)
        softmax_dropout_s = acc.op_time_s(flops=0.0, bytes_moved=4 * scores * abpe, precision=act_prec, n_kernels=2)
        attn_fwd_s = t_qk + t_av + softmax_dropout_s
        # backward: dV, dP, dQ, dK (two GEMMs per forward GEMM, same shapes), dropout backward (read, write) and
        # softmax backward (read the gradient and the probabilities, write): 10 passes over the scores in all
        attn_bwd_s = 2 * (t_qk + t_av) + acc.op_time_s(
            flops=0.0, bytes_moved=5 * scores * abpe, precision=act_prec, n_kernels=2
        )
    # --- element-wise: 2 norms (r+w), 2 residual adds (2r+w), activation over the MLP width ---
    act_tokens = tokens / tp if sequence_parallel else tokens
    ew_bytes = (2 * 2 + 2 * 3) * act_tokens * h * abpe + (3 if model.gated_mlp else 2) * tokens * f / tp * abpe
    ew_bwd_bytes = 2 * ew_bytes
    if model.position is Position.ROTARY:
        # rotary embeddings rotate the local query and key heads (Su et al. 2021): read and write both, forward
        # and backward (the gradient is rotated back)
        rope_bytes = 2 * tokens * (h + kv) / tp * abpe
        ew_bytes += rope_bytes
        ew_bwd_bytes += rope_bytes
    if precision == "fp8":
        # Transformer Engine quantises every GEMM operand to fp8. Forward: the norms and the MLP activation write
        # their output in fp8 (fused), the attention output needs its own cast (read 2, write 1 byte); backward:
        # each GEMM's output gradient is cast (read 2, write 1). Where fp8 GEMMs are TN only (Hopper), every
        # tensor a backward GEMM reads transposed (the four GEMM inputs, the four output gradients) is also
        # written transposed, 1 byte per element (TE docs, "Handling transposes": cast-transpose kernels).
        tn = 1 if acc.fp8_tn_only else 0
        gemm_in_width = h + h / tp + h + f / tp  # QKV, output projection, MLP up, MLP down inputs
        gemm_out_width = (h + 2 * kv) / tp + h + up_width + h
        ew_bytes += tokens * (3 * h / tp + tn * gemm_in_width)
        ew_bwd_bytes += tokens * (3 + tn) * gemm_out_width
    ew_fwd_s = acc.op_time_s(flops=0.0, bytes_moved=ew_bytes, precision=precision, n_kernels=5)
    ew_bwd_s = acc.op_time_s(flops=0.0, bytes_moved=ew_bwd_bytes, precision=precision, n_kernels=5)

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


class _CommSetup:
    """What pricing a config's collectives needs that does not depend on message sizes: the groups on the network,
    the algorithms per collective, and a memo of the prices already asked for. Shared by every config with the same
    network, collective settings, parallel degrees and rank order."""

    __slots__ = ("network", "collective", "groups", "algos", "memo", "dp_shares_tp", "figures")

    def __init__(
        self, network: Network, collective: CollectiveConfig, par: ParallelConfig, order: tuple[str, ...]
    ) -> None:
        self.network = network  # held so that the ids in the cache key stay those of live objects
        self.collective = collective
        astra = collective.fidelity is Fidelity.ASTRA_SIM
        self.groups = group_dims(network, (par.tp, par.sp, par.dp, par.pp), order, not astra)
        topologies = tuple(d.topology for d in network.dims)
        self.algos = {kind: collective.algorithms(kind, topologies) for kind in Collective}
        self.memo = BoundedMemo(4096)  # (collective or None for p2p, group, bytes) -> CollectiveTime
        self.dp_shares_tp = _shares_dims(self.groups["dpsp"], self.groups["tp"] + self.groups["sp"])
        self.figures = network_figures(network)  # (cost in USD, total bandwidth)


def _layout_order(par: ParallelConfig) -> tuple[str, ...]:
    """The rank order with the groups of degree 1 moved to the end: a group of one rank has no extent, so it does
    not change where the others lie, and rank orders that differ only in it place every group identically."""
    return _layout_order_of(par.tp, par.sp, par.dp, par.pp, par.rank_order)


@lru_cache(maxsize=4096)
def _layout_order_of(tp: int, sp: int, dp: int, pp: int, order: tuple[str, ...]) -> tuple[str, ...]:
    deg = {"tp": tp, "sp": sp, "dp": dp, "pp": pp}
    return tuple(n for n in order if deg[n] > 1) + tuple(n for n in order if deg[n] == 1)


_SETUPS = BoundedMemo(1 << 14)


class _Comm:
    """Prices collectives for one config (cosmic or astra-sim fidelity), caching by sub-configuration."""

    __slots__ = ("cfg", "setup", "groups", "astra", "memo")

    def __init__(self, cfg: SystemConfig, order: tuple[str, ...]) -> None:
        self.cfg = cfg
        net, coll, par = cfg.network, cfg.collective, cfg.parallel
        key = (id(net), id(coll), par.tp, par.sp, par.dp, par.pp, order)
        setup = _SETUPS.get(key)
        if setup is None:
            setup = _SETUPS.put(key, _CommSetup(net, coll, par, order))
        self.setup = setup
        self.groups = setup.groups
        self.astra = coll.fidelity is Fidelity.ASTRA_SIM
        self.memo = setup.memo

    def __call__(self, kind: Collective, size_bytes: float, group: str) -> CollectiveTime:
        key = (kind, group, size_bytes)
        ct = self.memo.get(key)
        if ct is not None:
            return ct
        g = self.groups[group]
        if not g or size_bytes <= 0:
            return ZERO
        if self.astra:
            from cosmic.collective.astra import astra_collective_time

            return astra_collective_time(kind, size_bytes, g, self.cfg)
        c = self.setup.collective
        return self.memo.put(key, _coll(kind, float(size_bytes), g, self.setup.algos[kind], c.chunks, c.multidim))

    def p2p(self, msg_bytes: float) -> CollectiveTime:
        key = (None, "p2p", msg_bytes)
        ct = self.memo.get(key)
        if ct is None:
            ct = self.memo.put(key, p2p_time(msg_bytes, self.groups["pp"]))
        return ct


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

    for fn in (layer_cost, end_costs, group_dims, _coll, phase_coefficients, _group_spans, network_figures,
               _layout_order_of):
        fn.cache_clear()
    _PLANS.clear()
    _RESULTS.clear()
    _SETUPS.clear()
    _LAYOUTS_CHECKED.clear()


def _stage_layers(n_layers: int, pp: int) -> list[int]:
    """Layers per pipeline stage; a remainder goes to the middle stages first (the ends also hold the embedding
    and the head), as Llama 3 balanced its 126 layers over 16 stages."""
    base, extra = divmod(n_layers, pp)
    counts = [base] * pp
    order = list(range(1, pp - 1)) + [0, pp - 1] if pp > 2 else list(range(pp))
    for i in order[:extra]:
        counts[i] += 1
    return counts


@lru_cache(maxsize=4096)
def _stage_runs(n_layers: int, pp: int) -> tuple[tuple[int, int, int], ...]:
    """Runs of identical consecutive pipeline stages: ``(first stage, number of stages, layers per stage)``.

    Stage 0 (which holds the embedding) and stage pp-1 (the head) always start runs of their own, so there are at
    most four runs whatever pp is: the simulator prices one representative stage per run.
    """
    counts = _stage_layers(n_layers, pp)
    runs: list[list[int]] = []
    for s, n in enumerate(counts):
        if runs and n == runs[-1][2] and s != 1 and s != pp - 1:
            runs[-1][1] += 1
        else:
            runs.append([s, 1, n])
    return tuple((a, b, c) for a, b, c in runs)


@dataclass(frozen=True, slots=True)
class _Plan:
    """The part of a step that needs no network: per-layer and end costs, stage runs and their parameters, peak
    memory and FLOP counts. It depends on the model, the accelerator, the parallel degrees (not on how the groups lie
    on the network), micro-batching, schedule, recompute, ZeRO and precision, so configs that differ only in rank
    order, network or collectives share it."""

    model: ModelSpec  # held so that the ids in the cache key stay those of live objects
    acc: Accelerator
    lc: LayerCost
    emb: EndCost
    head: EndCost
    runs: tuple[tuple[int, int, int], ...]
    run_params: tuple[float, ...]
    memory: Memory
    micro_batches: int
    chunks_per_stage: int
    model_flops: float
    recompute_flops: float
    precision: str
    act_bytes: float  # one micro-batch's activations (tokens x hidden) on one rank, as they travel
    kv_width: float  # K (or V) width per TP rank
    run_optimizer_s: tuple[float, ...]  # optimizer step of each run's first stage
    n_npus: int


_PLANS = BoundedMemo(1 << 15)


def _plan_key(cfg: SystemConfig) -> tuple[Any, ...]:
    """What the plan of `cfg` depends on; it includes everything the training checks of `check_config` read."""
    model, par, tr = cfg.model, cfg.parallel, cfg.training
    return (
        id(model), id(cfg.accelerator), par.tp, par.sp, par.pp, par.dp, par.zero, par.sequence_parallel,
        tr.micro_batch, tr.seq_len or model.seq_len, tr.precision, tr.flash_attention, tr.recompute,
        tr.attention_kernel, tr.schedule, tr.virtual_stages, tr.global_batch,
    )


def _plan(cfg: SystemConfig) -> _Plan:
    """The network-free part of `cfg` (a checked config), cached by the sub-configuration it depends on.

    The key holds the ids of the model and accelerator objects: configs decoded from a PSA share them with their
    base, so a lookup never hashes a whole model. The cached plan keeps both objects alive, so an id in a key cannot
    be reused by another object while the entry exists.
    """
    key = _plan_key(cfg)
    plan = _PLANS.get(key)
    if plan is not None:
        return plan
    model, acc, par, tr = cfg.model, cfg.accelerator, cfg.parallel, cfg.training
    seq = cfg.seq_len
    prec = tr.precision.value
    tp, sp, pp, dp = par.tp, par.sp, par.pp, par.dp
    mb = tr.micro_batch
    m = tr.global_batch // (dp * mb)
    v = tr.virtual_stages if tr.schedule is Schedule.INTERLEAVED else 1
    lc = layer_cost(
        model, acc, tp, sp, mb, seq, prec, par.sequence_parallel, tr.flash_attention, tr.recompute,
        tr.attention_kernel,
    )
    emb, head = end_costs(model, acc, tp, sp, mb, seq, prec)
    # consecutive stages with the same layer count (all but the first and the last) are identical: each run of them
    # is priced once, through its first stage
    runs = _stage_runs(model.layers, pp)
    emb_params = model.embedding_params / tp
    head_params = model.head_params / tp
    if model.tied_embeddings and model.embedding is Embedding.TOKEN and pp > 1:
        # the last stage keeps a copy of the tied embedding for the logits (Megatron-LM)
        head_params += model.vocab * model.hidden / tp
    layer_params_local = model.layer_params / tp
    run_params = []
    for s, count, n in runs:
        p_ = n * layer_params_local
        if s == 0:
            p_ += emb_params
        if s + count == pp:
            p_ += head_params
        run_params.append(p_)
    shape = model if seq == model.seq_len else model.model_copy(update={"seq_len": seq})
    abpe = BYTES_PER_ELEMENT["bf16" if prec == "fp8" else prec]  # activations travel in bf16 under fp8 training
    shard = dp * sp if par.zero >= 1 else 1
    opt_s = tuple(
        acc.op_time_s(flops=0.0, bytes_moved=p_ / shard * OPTIMIZER_TRAFFIC_BYTES_PER_PARAM, precision=prec,
                      n_kernels=1)
        for p_ in run_params
    )
    plan = _Plan(
        model=model,
        acc=acc,
        lc=lc,
        emb=emb,
        head=head,
        runs=runs,
        run_params=tuple(run_params),
        memory=_memory(cfg, runs, run_params, lc, emb, head, m, v, dp * sp),
        micro_batches=m,
        chunks_per_stage=v,
        model_flops=shape.model_flops_per_step(tr.global_batch),
        recompute_flops=tr.global_batch / mb * sp * model.layers * lc.recompute_flops * tp,
        precision=prec,
        act_bytes=mb * seq // sp * model.hidden * abpe,
        # GQA: kv heads replicate over TP
        kv_width=model.kv_dim / tp if model.n_kv_heads >= tp else model.head_dim,
        run_optimizer_s=opt_s,
        n_npus=par.n_npus,
    )
    return _PLANS.put(key, plan)


def memory_footprint(config: SystemConfig) -> Memory:
    """Peak memory per device of `config` without simulating the step (equal to `simulate(config).memory`).

    Raises InfeasibleError for a configuration the simulator rejects. Exhaustive search uses it to rule out the
    configurations that cannot fit before timing them.
    """
    _check(config)
    return _plan(config).memory


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
    _check(config)
    return _simulate(config)


def simulate_if_fits(config: SystemConfig) -> Result | Memory:
    """`simulate(config)` if its peak memory fits the device, else that `Memory` (the step is not timed).

    For searches that only want configurations that fit: the footprint is known before any collective is priced.
    """
    plan = _PLANS.get(_plan_key(config))
    # plans are made for checked configs only, and the key holds all the training checks read: with a remembered
    # plan only the layout (rank order, network, collectives) remains to check
    _check(config, layout_only=plan is not None)
    if plan is None:
        plan = _plan(config)
    mem = plan.memory
    if mem.total_bytes > config.accelerator.mem_bytes:
        return mem
    return _simulate(config, plan)


def _check(config: SystemConfig, *, layout_only: bool = False) -> None:
    try:
        (check_layout if layout_only else check_config)(config)
    except KeyedValueError as exc:
        raise InfeasibleError(f"{exc.key}: {exc}") from None


_RESULTS = BoundedMemo(1 << 14)  # key -> ((objects whose ids are in the key), Result)


def _simulate(cfg: SystemConfig, plan: _Plan | None = None) -> Result:
    """`simulate` of a checked config, remembered by what the step depends on: configs that differ only in where
    groups of one rank sit in the rank order have the same step (the memo holds the sub-objects whose ids it keys
    on, so no id can be reused while remembered)."""
    model, acc, net, coll, par, tr = cfg.model, cfg.accelerator, cfg.network, cfg.collective, cfg.parallel, \
        cfg.training
    key = (
        id(model), id(acc), id(net), id(coll), id(tr), par.tp, par.sp, par.dp, par.pp, par.zero,
        par.sequence_parallel, _layout_order(par),  # the layout order last: `_step` takes it from the key
    )
    hit = _RESULTS.get(key)
    if hit is not None:
        return hit[1]
    result = _step(cfg, key[-1], plan if plan is not None else _plan(cfg))
    _RESULTS.put(key, ((model, acc, net, coll, tr), result))
    return result


def _step(cfg: SystemConfig, order: tuple[str, ...], plan: _Plan) -> Result:
    """One training step of a checked config (see the module docstring); `plan` is ``_plan(cfg)``."""
    model, acc, par, tr = cfg.model, cfg.accelerator, cfg.parallel, cfg.training
    tp, sp, pp, dp = par.tp, par.sp, par.pp, par.dp
    n_dims = len(cfg.network.dims)
    comm = _Comm(cfg, order)
    lc, emb, head = plan.lc, plan.emb, plan.head
    runs, run_params = plan.runs, plan.run_params
    m, v = plan.micro_batches, plan.chunks_per_stage

    # ---- communication per layer per micro-batch ----------------------------------------------------------------
    act_bytes = plan.act_bytes
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
    kv_shard = 2 * plan.kv_width / model.hidden * act_bytes  # K and V of the local tokens
    sp_ag = comm(Collective.ALL_GATHER, kv_shard, "sp")
    sp_rs = comm(Collective.REDUCE_SCATTER, kv_shard * sp, "sp")
    share = acc.collective_compute_share
    sp_fwd = _overlap_cost_s(sp_ag.total_s, lc.attn_core_fwd_s, share)
    sp_bwd = _overlap_cost_s(sp_rs.total_s, lc.attn_core_bwd_s, share)
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

    dp_group = dp * sp
    reduce_bytes = FP32_GRAD_BYTES if tr.grad_reduce_fp32 else GRAD_BYTES  # per parameter, as reduced over DP

    # ---- per-stage per-micro-batch timeline --------------------------------------------------------------------
    zero = par.zero
    rows = []
    for (s, count, n), params in zip(runs, run_params, strict=True):
        last = s + count == pp
        fwd_c = n * lc.fwd_s
        bwd_c = n * lc.bwd_s
        rec_c = n * lc.recompute_s
        tp_c = n * (tp_layer_fwd + tp_layer_bwd + tp_layer_rec)
        sp_c = n * (sp_fwd + sp_bwd + sp_rec)
        if s == 0:
            fwd_c += emb.fwd_s
            bwd_c += emb.bwd_s
            tp_c += emb_tp.total_s
        if last:
            fwd_c += head.fwd_s
            bwd_c += head.bwd_s
        if not tr.grad_accumulation_fusion and zero < 3:
            # each micro-batch's weight gradients are added to the fp32 main-grad buffer by a separate kernel:
            # read the new gradient, read and write the accumulator
            bwd_c += params * (GRAD_BYTES + 2 * MAIN_GRAD_BYTES) / acc.achievable_mem_bytes_per_s
        dp_mb = 0.0
        z3 = (ZERO, ZERO)
        if zero == 3 and dp_group > 1:
            # FSDP: each layer (the unit FSDP wraps and DeepSpeed's ZeRO-3 prefetches) gathers its weights before
            # its forward and its backward and reduce-scatters its gradients: one collective per layer, so the
            # per-step latency is paid per layer. The next layer's gather runs behind the current layer's compute.
            units = max(1, n)
            ag = comm(Collective.ALL_GATHER, params * WEIGHT_BYTES / units / dp_group, "dpsp")
            rs = comm(Collective.REDUCE_SCATTER, params * reduce_bytes / units, "dpsp")
            # the unsharded gradient is copied, cast and scaled before its reduce-scatter, every micro-batch
            bwd_c += params * zero3_grad_traffic_bytes(reduce_bytes) / acc.achievable_mem_bytes_per_s
            # the gathers hide behind the whole forward (backward) stream: compute and the exposed TP/SP traffic,
            # except the first layer's gather (nothing to hide behind) and the last layer's reduce-scatter
            fwd_stream = fwd_c + n * (tp_layer_fwd + sp_fwd) + (emb_tp.total_s if s == 0 else 0.0)
            bwd_stream = bwd_c + rec_c + n * (tp_layer_bwd + tp_layer_rec + sp_bwd + sp_rec)
            ag_s, rs_s = units * ag.total_s, units * rs.total_s
            dp_mb = ag.total_s + _overlap_cost_s(ag_s - ag.total_s, fwd_stream, share) + rs.total_s + \
                _overlap_cost_s(ag_s + rs_s - rs.total_s, bwd_stream, share)
            z3 = (ag, rs)
        pp_c = p2p_per_mb if pp > 1 else 0.0
        x = fwd_c + bwd_c + rec_c + tp_c + sp_c + pp_c + dp_mb
        rows.append((x, fwd_c, bwd_c, rec_c, tp_c, sp_c, pp_c, dp_mb, z3))

    # the slowest stage runs every micro-batch, the others add their share of fill and drain once (per model chunk)
    crit_run, x_max, total_x = 0, rows[0][0], 0.0
    for i, row in enumerate(rows):
        x = row[0]
        total_x += x * runs[i][1]
        if x > x_max:
            crit_run, x_max = i, x
    crit = runs[crit_run][0]
    t_pipe = m * x_max + (total_x - x_max) / v

    # ---- tail: gradient reduction and optimizer per stage ----------------------------------------------------------
    # a stage's tail can hide behind the time later stages still spend on their last backward (`slack`); it is
    # longest at the first stage of each run, so only first stages are candidates for the slowest tail
    tails = []
    slack = 0.0
    for i, ((s, count, n), row, params) in enumerate(zip(runs, rows, run_params, strict=True)):
        bwd_window = row[2] + row[3] + row[4] / 3.0  # last backward (compute + its TP share)
        gbytes = params * reduce_bytes
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
            if comm.setup.dp_shares_tp:
                tp_in_window = n * (tp_layer_bwd + sp_bwd)
                if cfg.collective.scheduling is Scheduling.LIFO:
                    # newest first: TP collectives of the backward go ahead, DP uses the gaps
                    window = max(0.0, window - tp_in_window)
                else:
                    # FIFO: each TP collective of the last backward waits for the DP chunk in flight
                    n_tp = n * 2 * len(tp_colls)
                    penalty = min(t_dp, n_tp * t_dp / max(1, cfg.collective.chunks))
        # what outlasts the backward and the wait for later stages, plus the backward slowed down while the
        # reduction runs beside it (it overlaps only the stage's own compute, not the wait)
        exposed_dp = max(0.0, t_dp - window - slack) + share * min(t_dp, window) + penalty
        # ZeRO-1/2 (distributed optimizer): gather the updated bf16 weights after the step
        gather = ZERO
        if dp_group > 1 and zero in (1, 2):
            gather = comm(Collective.ALL_GATHER, params * WEIGHT_BYTES / dp_group, "dpsp")
        gather_s = gather.total_s
        if tr.param_gather_overlap:
            # each bucket's gather is issued when the next step starts and its layers' forward waits for it: it
            # hides behind the first micro-batch's forward
            gather_s = _overlap_cost_s(gather_s, row[1], share)
        opt_s = plan.run_optimizer_s[i]
        tails.append((exposed_dp + gather_s + opt_s, exposed_dp, gather, gather_s, opt_s, dp_colls, t_dp))
        slack += count * (row[2] + row[3] + p2p_hop_s * v)  # later stages finish their last backward earlier
    tail_run = 0
    for i, t in enumerate(tails):
        if t[0] > tails[tail_run][0]:
            tail_run = i
    tail_s, exposed_dp, gather, gather_s, opt_s, dp_colls, t_dp = tails[tail_run]
    step = t_pipe + tail_s

    # ---- breakdown of the critical stage -------------------------------------------------------------------------
    _, fwd_c, bwd_c, rec_c, tp_c, sp_c, pp_c, dp_mb, z3 = rows[crit_run]
    bubble = t_pipe - m * x_max
    breakdown = {
        "forward_s": m * fwd_c,
        "backward_s": m * bwd_c,
        "recompute_s": m * rec_c,
        "comm_tp_s": m * tp_c,
        "comm_sp_s": m * sp_c,
        "comm_pp_s": m * pp_c,
        "comm_dp_s": m * dp_mb + exposed_dp + gather_s,
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
    per_dim.add(gather, gather_s)

    # ---- memory ----------------------------------------------------------------------------------------------------
    mem = plan.memory

    # ---- throughput and utilisation ----------------------------------------------------------------------------
    n_npus = plan.n_npus
    global_tokens = tr.global_batch * cfg.seq_len
    model_flops = plan.model_flops
    rec_flops = plan.recompute_flops
    peak_total = step * n_npus * acc.peak_flop_per_s(plan.precision)
    net_cost, net_bw = comm.setup.figures
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


def _overlap_cost_s(comm_s: float, compute_s: float, share: float) -> float:
    """Time a collective of `comm_s` adds to the `compute_s` it overlaps.

    While both run, the collective's thread blocks hold a `share` of the SMs, so compute progresses at 1 - share
    of its rate (the interference ASTRA-sim's authors measure in Rashidi et al. 2021, "Enabling Compute-Communication
    Overlap in Distributed Deep Learning Training Platforms", ISCA). Both start together: if the collective
    outlasts the slowed compute the cost is what it outlasts, comm - compute; otherwise the compute finishes
    share * comm late. Both cases are ``max(comm - compute, share * comm)``.
    """
    if comm_s <= 0.0:
        return 0.0
    return max(comm_s - compute_s, share * comm_s)


def _shares_dims(a: tuple[GroupDim, ...], b: tuple[GroupDim, ...]) -> bool:
    da = {g.dim_index for g in a if g.members > 1}
    return any(g.dim_index in da for g in b if g.members > 1)


def _memory(
    cfg: SystemConfig,
    runs: tuple[tuple[int, int, int], ...],
    run_params: list[float] | tuple[float, ...],
    lc: LayerCost,
    emb: EndCost,
    head: EndCost,
    m: int,
    v: int,
    dp_group: int,
) -> Memory:
    """Peak memory over stages (Korthikanti et al. 2022 section 4 for activations in flight per schedule).

    Within a run of identical stages the activations in flight never grow with the stage index, so the first stage
    of each run is the one to check.
    """
    par, tr = cfg.parallel, cfg.training
    pp = par.pp
    zero = par.zero
    best: Memory | None = None
    for (s, count, n), params in zip(runs, run_params, strict=True):
        w = params * WEIGHT_BYTES / (dp_group if zero >= 3 else 1)
        g = params * GRAD_BYTES / (dp_group if zero >= 2 else 1)
        o = params * OPTIMIZER_BYTES / (dp_group if zero >= 1 else 1)
        if zero >= 3:
            # FSDP keeps one gathered layer (plus a prefetched one) in full
            w += 2 * params / max(1, n) * WEIGHT_BYTES
        if tr.schedule is Schedule.GPIPE:
            in_flight = m
        elif tr.schedule is Schedule.INTERLEAVED:
            in_flight = min(m * v, math.ceil((pp - s) * (1 + (pp - 1) / (pp * v))))
            in_flight = min(m, in_flight)
        else:
            in_flight = min(m, pp - s)
        act = in_flight * n * lc.act_bytes
        if tr.recompute is Recompute.FULL and n:
            act += _full_layer_working_bytes(cfg)
        if s == 0:
            act += in_flight * emb.act_bytes
        if s + count == pp:
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
