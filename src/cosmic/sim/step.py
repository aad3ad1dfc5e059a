"""One training step composed from the four stacks, written once for a float and for a column of configurations.

The phases exchange records (frozen for the inputs and the plan, which are remembered; plain slotted ones, which are
cheaper to make, for the rest):

1. :func:`plan` (workload and compute): stage runs, their parameters, peak memory, optimizer time, FLOP counts;
   nothing here depends on the network.
2. :func:`layer_comm` (collective and network): the TP and SP collectives of one layer, the pipeline send.
3. :func:`stage_rows`: each stage run's time per micro-batch (compute, exposed TP/SP/PP traffic, ZeRO-3 gathers).
4. :func:`pipeline`: the bottleneck stage runs every micro-batch, the others add the fill and drain (the bubble),
   which an interleaved schedule divides by the virtual stages (Narayanan et al. 2021, section 2.2).
5. :func:`tails`: each stage reduces its gradients over DP (overlapped with its last backward, and with the time it
   waits for later stages to drain), then steps the optimizer; the step ends when the slowest stage is done.
6. :func:`compose`: the critical stage's breakdown and the exposed communication per network dimension.

Every value is a float (one configuration, `cosmic.simulate`) or a NumPy column (`cosmic.simulate_columns`);
branches are `where` choices and work no configuration needs is skipped with `any_`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cosmic._xp import Num, all_, any_, is_column, safe, vmax, vmin, where
from cosmic.collective.algorithms import Collective
from cosmic.collective.communicator import KINDS, Priced
from cosmic.workload.memory import (
    GRAD_BYTES,
    MAIN_GRAD_BYTES,
    OPTIMIZER_TRAFFIC_BYTES_PER_PARAM,
    RECOMPUTE_FULL,
    WEIGHT_BYTES,
    ZB_H1,
    ActivationBytes,
    Memory,
    peak_memory,
    stage_memory,
    zero3_grad_traffic_bytes,
)
from cosmic.workload.pipeline import StageRun, stage_runs

AR, AG, RS = (KINDS.index(k) for k in (Collective.ALL_REDUCE, Collective.ALL_GATHER, Collective.REDUCE_SCATTER))


@dataclass(frozen=True, slots=True)
class StepInputs:
    """What one step depends on, per configuration (floats or columns). Codes: schedule and recompute as in
    `cosmic.workload.memory`."""

    tp: Num
    sp: Num
    dp: Num
    pp: Num
    zero: Num
    seqpar: Num
    global_batch: Num
    micro_batch: Num
    seq: Num
    schedule: Num
    v: Num  # model chunks per pipeline rank (1 unless interleaved)
    recompute: Num
    dp_overlap: Num
    param_gather_overlap: Num
    grad_accum_fusion: Num
    reduce_bytes: Num  # bytes per parameter as gradients are reduced over DP
    abpe: Num  # bytes per activation element as activations travel
    layers: Num
    hidden: Num
    kv_dim: Num
    head_dim: Num
    n_kv_heads: Num
    layer_params: Num
    embedding_params: Num
    head_params: Num
    tied_extra_params: Num  # the last stage's copy of a tied token embedding (when pp > 1)
    token_embedding: Num
    mem_bw: Num  # achievable HBM bytes/s
    kernel_overhead_s: Num
    share: Num  # fraction of compute a running collective takes away
    lc_fwd: Num
    lc_bwd: Num
    lc_rec: Num
    attn_fwd: Num
    attn_bwd: Num
    lc_rec_flops: Num
    act: ActivationBytes
    emb_fwd: Num
    emb_bwd: Num
    head_fwd: Num
    head_bwd: Num
    model_flops: Num
    # Mixture of Experts (defaults: a dense model)
    moe: Num = False  # the model has MoE layers
    ep: Num = 1
    etp: Num = 1
    expert_params: Num = 0.0  # mean routed-expert parameters per layer (sharded over EP x ETP, reduced over EDP)
    moe_frac: Num = 0.0  # share of the layers that are MoE
    shared: Num = False  # the MoE layers have shared experts
    top_k: Num = 1
    load: Num = 1.0  # the busiest rank's tokens over the balanced share (imbalance, capped by capacity)
    dispatcher: Num = 0  # 0 all-to-all, 1 all-gather / reduce-scatter
    moe_overlap: Num = False
    experts: Num = 1  # routed experts (the all-to-all dispatcher gathers each rank's token count per expert)
    # context parallelism (`parallel.sp`): the algorithm (CP_* codes) and the query width the a2a exchanges
    cp_algo: Num = 0
    q_dim: Num = 0.0  # query (and attention output) width of the whole layer; 0 = hidden
    # layers of the first and last pipeline stage (0 = the balanced split, `cosmic.workload.pipeline.stage_runs`)
    first_layers: Num = 0
    last_layers: Num = 0
    lc_wgrad: Num = 0.0  # the weight-gradient GEMMs of one layer's backward (part of lc_bwd)
    # tensor-parallel communication overlap (`TP_OVERLAP_CODES`) and the forward seconds of the GEMMs beside the
    # TP collectives of one layer (`cosmic.workload.layers.tp_gemms_s`)
    tp_overlap: Num = 0
    g_qkv: Num = 0.0
    g_proj: Num = 0.0
    g_fc1: Num = 0.0
    g_fc2: Num = 0.0
    # ZeRO-3 / FSDP as the framework runs it (`cosmic.workload.sharding`; defaults: PyTorch FSDP FULL_SHARD)
    z3_units: Num = 1  # gather (and reduce-scatter) collectives per layer
    z3_prefetch: Num = 1  # gathers in flight ahead of the compute (0: each gather exposed)
    z3_reshard: Num = True  # gather again for the backward
    z3_per_step: Num = False  # gather once per step, reduce-scatter once per step
    z3_regather: Num = False  # the recompute's forward gathers the weights again (hooks inside the checkpoint)
    shard: Num = 0  # HSDP: ranks of the DP x SP group that shard the ZeRO states (0: all of them)
    lc_wcast: Num = 0.0  # fp8: one layer's weight quantisation, once per step (Transformer Engine's weight cache)


TP_OVERLAP_CODES = {"off": 0, "userbuffers": 1, "async_tp": 2}
"""`training.tp_comm_overlap` codes."""
USERBUFFERS_RS_CHUNKS = 4
"""Chunks of Transformer Engine's pipelined GEMM + reduce-scatter overlap (userbuffers ``method: pipeline``,
``num_splits: 4`` as TE's ``initialize_ub`` default and NeMo's ub_cfgs); its ring-exchange all-gathers split into tp."""


COUNT_BYTES = 8
"""Bytes of one token count (Megatron-Core gathers the per-expert counts as int64 tensors)."""
CP_P2P, CP_ALLGATHER, CP_A2A = 0, 1, 2
"""Context-parallel algorithm codes (`ParallelConfig.cp_algorithm`: p2p, allgather, a2a)."""
CP_ACC_BYTES = 4.0
"""Bytes per element of the running attention output / dQ accumulator of ring attention: fp32, as
TransformerEngine's `flash_attn_fwd_out_correction` adds each step's output into it (`context_parallel.py`)."""

DISPATCH_ALLTOALL, DISPATCH_ALLGATHER = 0, 1
"""Dispatcher codes (`ParallelConfig.moe_dispatcher`)."""
A2A = KINDS.index(Collective.ALL_TO_ALL)


@dataclass(frozen=True, slots=True)
class Plan:
    """The network-free part of a step."""

    runs: tuple[StageRun, ...]
    present: tuple[Num, ...]  # whether each slot holds stages
    params: tuple[Num, ...]  # parameters of one stage of each run, on one rank
    optimizer_s: tuple[Num, ...]
    fwd_s: tuple[Num, ...]  # compute of one micro-batch on one stage of each run: forward,
    bwd_s: tuple[Num, ...]  # backward (with the gradient accumulation and ZeRO-3 gradient copies),
    rec_s: tuple[Num, ...]  # recompute
    memory: Memory
    micro_batches: Num
    recompute_flops: Num
    act_bytes: Num  # one micro-batch's activations (tokens x hidden) on one rank, as they travel
    kv_width: Num  # K (or V) width per TP rank
    expert_params: tuple[Num, ...] = ()  # routed-expert parameters of one stage of each run on one rank (MoE)


def plan(x: StepInputs) -> Plan:
    """Stage runs, parameters, memory and optimizer time (Korthikanti et al. 2022; ZeRO). A MoE model's routed
    experts are sharded over EP x ETP and their gradients and optimizer state over expert DP (`docs/moe.md`)."""
    m = x.global_batch // (x.dp * x.micro_batch)
    runs = stage_runs(x.layers, x.pp, x.first_layers, x.last_layers)
    present = tuple(r.count > 0 for r in runs)
    emb_params = x.embedding_params / x.tp
    head_params = x.head_params / x.tp + where(x.pp > 1, x.tied_extra_params / x.tp, 0.0)
    moe = any_(x.moe)
    layer_local = (x.layer_params - x.expert_params) / x.tp if moe else x.layer_params / x.tp
    params = tuple(r.layers * layer_local + where(r.first == 0, emb_params, 0.0)
                   + where(r.first + r.count == x.pp, head_params, 0.0) for r in runs)
    sg = shard_degree(x)
    shard = where(x.zero >= 1, sg, 1)
    # the optimizer step, and the fp8 cast of the updated weights once per step (`LayerCost.weight_cast_s`)
    opt = tuple(p / shard * OPTIMIZER_TRAFFIC_BYTES_PER_PARAM / x.mem_bw + x.kernel_overhead_s + r.layers * x.lc_wcast
                for p, r in zip(params, runs, strict=True))
    experts: tuple[Num, ...] = ()
    edp = _expert_dp(x)
    if moe:
        experts = tuple(r.layers * x.expert_params / (x.ep * x.etp) for r in runs)
        e_shard = where(x.zero >= 1, edp, 1)
        opt = tuple(o + e / e_shard * OPTIMIZER_TRAFFIC_BYTES_PER_PARAM / x.mem_bw for o, e in zip(opt, experts,
                                                                                                    strict=True))
    mems = [stage_memory(r, p, pp=x.pp, zero=x.zero, dp_group=sg, schedule=x.schedule, m=m, v=x.v,
                         recompute=x.recompute, act=x.act, expert_params=experts[i] if moe else 0.0,
                         expert_group=edp, keep_gathered=(x.z3_reshard == 0) | x.z3_per_step,
                         keep_grads=x.z3_per_step) for i, (r, p) in enumerate(zip(runs, params, strict=True))]
    fwd, bwd, rec = stage_compute(x, runs, tuple(p + e for p, e in zip(params, experts, strict=True))
                                  if moe else params, present)
    return Plan(
        runs=runs, present=present, params=params, optimizer_s=opt, fwd_s=fwd, bwd_s=bwd, rec_s=rec,
        memory=peak_memory(mems, list(present)),
        micro_batches=m,
        recompute_flops=x.global_batch / x.micro_batch * x.sp * x.layers * x.lc_rec_flops * x.tp,
        act_bytes=x.micro_batch * x.seq // x.sp * x.hidden * x.abpe,
        # GQA: kv heads replicate over TP
        kv_width=where(x.n_kv_heads >= x.tp, x.kv_dim / x.tp, x.head_dim),
        expert_params=experts,
    )


def shard_degree(x: StepInputs) -> Num:
    """Ranks that shard the ZeRO states: the HSDP shard group, else the whole DP x SP group."""
    return where(x.shard > 0, x.shard, x.dp * x.sp)


def shard_collectives(x: StepInputs, comm: Any, grad_bytes: Num, weight_bytes: Num) -> tuple[Priced, Priced]:
    """The sharded states' collectives: the gradient reduce-scatter of `grad_bytes` and the all-gather of the
    `weight_bytes` shard. Under HSDP the reduce-scatter runs in the shard group and the resulting shards are
    all-reduced across the replicas (PyTorch FSDP HYBRID_SHARD ``_reduce_grad``: reduce_scatter_tensor in the
    shard process group, then all_reduce in the inter-node group); the gather stays in the shard group."""
    if not any_(x.shard > 0):
        return comm(RS, grad_bytes, "dpsp"), comm(AG, weight_bytes, "dpsp")
    hybrid = (x.shard > 0) & (x.shard < x.dp * x.sp)
    rs = comm(RS, grad_bytes, "shard")
    if any_(hybrid):
        rs = _masked_sum(True, rs, hybrid, comm(AR, grad_bytes / shard_degree(x), "replica"))
    return rs, comm(AG, weight_bytes, "shard")


def _expert_dp(x: StepInputs) -> Num:
    """Expert data parallelism: EP x ETP x EDP = TP x SP x DP (Megatron-Core MoE parallel folding)."""
    return x.tp * x.sp * x.dp // (x.ep * x.etp)


def stage_compute(x: StepInputs, runs: tuple[StageRun, ...], params: tuple[Num, ...],
                  present: tuple[Num, ...]) -> tuple[tuple[Num, ...], tuple[Num, ...], tuple[Num, ...]]:
    """Forward, backward and recompute seconds of one micro-batch on one stage of each run (0 for an empty slot)."""
    dp_group = x.dp * x.sp
    z3 = (x.zero == 3) & (dp_group > 1)
    unfused = (x.grad_accum_fusion == 0) & (x.zero < 3)
    fwds, bwds, recs = [], [], []
    for r, p, here in zip(runs, params, present, strict=True):
        if not any_(here):
            fwds.append(0.0)
            bwds.append(0.0)
            recs.append(0.0)
            continue
        n, first = r.layers, r.first == 0
        last = r.first + r.count == x.pp
        fwd = n * x.lc_fwd + where(first, x.emb_fwd, 0.0) + where(last, x.head_fwd, 0.0)
        bwd = n * x.lc_bwd + where(first, x.emb_bwd, 0.0) + where(last, x.head_bwd, 0.0)
        # each micro-batch's weight gradients are added to the fp32 main-grad buffer by a separate kernel: read
        # the new gradient, read and write the accumulator
        bwd = bwd + where(unfused, p * (GRAD_BYTES + 2 * MAIN_GRAD_BYTES) / x.mem_bw, 0.0)
        if any_(z3 & here):
            # FSDP: the unsharded gradient is copied, cast and scaled before its reduce-scatter, every micro-batch
            bwd = bwd + where(z3, p * zero3_grad_traffic_bytes(x.reduce_bytes) / x.mem_bw, 0.0)
        fwds.append(fwd)
        bwds.append(bwd)
        recs.append(n * x.lc_rec)
    return tuple(fwds), tuple(bwds), tuple(recs)


def overlap_cost_s(comm_s: Num, compute_s: Num, share: Num) -> Num:
    """Time a collective of `comm_s` adds to the `compute_s` it overlaps.

    While both run, the collective's thread blocks hold a `share` of the SMs, so compute progresses at 1 - share
    of its rate (the interference ASTRA-sim's authors measure in Rashidi et al. 2021, "Enabling Compute-Communication
    Overlap in Distributed Deep Learning Training Platforms", ISCA). Both start together: if the collective
    outlasts the slowed compute the cost is what it outlasts, comm - compute; otherwise the compute finishes
    share * comm late. Both cases are ``max(comm - compute, share * comm)``.
    """
    return where(comm_s > 0, vmax(comm_s - compute_s, share * comm_s), 0.0)


def chunked_overlap_cost_s(comm_s: Num, gemm_s: Num, chunks: Num, share: Num, lead: Num) -> Num:
    """Time a collective of `comm_s` adds to the GEMM of `gemm_s` it is decomposed with (Wang et al., "Overlap
    Communication with Dependent Computation via Decomposition", ASPLOS 2023; Transformer Engine userbuffers; PyTorch
    async TP).

    The GEMM runs as `chunks` equal pieces of g = gemm_s / chunks; the collective as k = chunks - 1 + lead equal
    transfers of c = comm_s / k. A ring exchange (`lead` 0) starts on the local shard, so the first transfer hides
    behind its GEMM piece and tp - 1 transfers remain; a pipelined all-gather must receive its first chunk, and a
    pipelined reduce-scatter sends its last chunk after the last piece (`lead` 1, one chunk exposed). Each
    overlapped step costs max(c, g + share * c) (`overlap_cost_s`: the transfer's SMs slow the piece), so

        added = lead * c + (k - lead) * max(c - g, share * c)

    One chunk is no overlap (added = comm_s); more chunks never add more (for lead 1 the added time is
    M + (comm_s - M) / chunks with M = max(comm_s - gemm_s, share * comm_s)), and nothing beats `overlap_cost_s`.

    Example:
        >>> chunked_overlap_cost_s(8.0, 8.0, 4, 0.0, 1), chunked_overlap_cost_s(6.0, 8.0, 4, 0.0, 0)
        (2.0, 0.0)
        >>> chunked_overlap_cost_s(8.0, 2.0, 4, 0.0, 1), chunked_overlap_cost_s(8.0, 2.0, 1, 0.0, 1)
        (6.5, 8.0)
    """
    k = chunks - 1 + lead
    c = comm_s / vmax(k, 1)
    g = gemm_s / chunks
    return where((comm_s > 0) & (k > 0), lead * c + (k - lead) * vmax(c - g, share * c), comm_s)


def tp_overlap_fwd_bwd(x: StepInputs, ag_s: Num, rs_s: Num, g_in: Num, g_out: Num) -> tuple[Num, Num]:
    """(forward, backward) seconds one sub-layer's TP all-gather (`ag_s`) and reduce-scatter (`rs_s`) add with
    `training.tp_comm_overlap`; `g_in` is the GEMM after the all-gather (QKV, MLP up), `g_out` the one before the
    reduce-scatter (output projection, MLP down).

    * userbuffers (Megatron ``--tp-comm-overlap``, Transformer Engine's ub_cfgs defaults): forward all-gather as a
      ring exchange in tp chunks on copy engines (``num_sm: 1``: no compute share), forward reduce-scatter pipelined
      in 4 chunks on `share` of the SMs; backward all-gather of the output gradient a ring exchange with the data
      gradient GEMM of `g_out`, backward reduce-scatter of the input gradient in bulk behind the weight gradient
      GEMM of `g_in` (``method: bulk``, `overlap_cost_s`).
    * async_tp (PyTorch symmetric-memory micro-pipelining, torchtitan ``enable_async_tensor_parallel``): every
      all-gather -> matmul starts on the local shard and every matmul -> reduce-scatter leaves its last chunk
      exposed, in tp chunks, with peer-to-peer copies on copy engines (no compute share), forward and backward.
    """
    ub = x.tp_overlap == TP_OVERLAP_CODES["userbuffers"]
    rs_chunks = where(ub, USERBUFFERS_RS_CHUNKS, x.tp)
    rs_share = where(ub, x.share, 0.0)
    fwd = (chunked_overlap_cost_s(ag_s, g_in, x.tp, 0.0, 0)
           + chunked_overlap_cost_s(rs_s, g_out, rs_chunks, rs_share, 1))
    bwd = (chunked_overlap_cost_s(ag_s, g_out, x.tp, 0.0, 0)
           + where(ub, overlap_cost_s(rs_s, g_in, x.share), chunked_overlap_cost_s(rs_s, g_in, x.tp, 0.0, 1)))
    return fwd, bwd


@dataclass(slots=True)
class LayerComm:
    """The collectives of one layer per micro-batch, and the pipeline send."""

    tp_ar: Priced  # all-reduce of the activations over TP (no sequence parallelism; the vocab-parallel embedding)
    tp_ag: Priced  # all-gather of the 1/tp activation slices (sequence parallelism; the receiver of a send)
    tp_rs: Priced  # reduce-scatter over TP (sequence parallelism)
    tp_one: Num  # one all-reduce equivalent (AR, or AG + RS)
    tp_fwd: Num
    tp_bwd: Num
    tp_rec: Num
    sp_parts: tuple[tuple[Priced, Num], ...]  # the CP collectives of one layer's forward and backward, with counts
    sp_raw: Num  # their seconds before any overlap (the parts times their counts)
    sp_fwd: Num
    sp_bwd: Num
    sp_rec: Num
    emb_tp: Num
    p2p: Priced
    p2p_gather_s: Num  # the receiver's all-gather over TP, when activations travel as 1/tp slices
    p2p_hop_s: Num
    moe: MoEComm | None = None


@dataclass(slots=True)
class MoEComm:
    """Token dispatch and combine of one (mean) layer per micro-batch: the exposed seconds and the collectives
    of one MoE layer's forward (`parts`, each with how many times it runs) for the per-dimension account."""

    fwd: Num
    bwd: Num
    rec: Num
    raw: Num  # the collectives of one mean layer's forward, before any overlap
    one: Num  # the collectives of one MoE layer's forward: the parts, each times how often it runs
    parts: tuple[tuple[Priced, Num], ...]


def moe_comm(x: StepInputs, act_bytes: Num, comm: Any) -> MoEComm:
    """Dispatch and combine (Megatron-Core `token_dispatcher.py`). Each rank routes its 1/tp share of the tokens.

    * all-to-all: each rank sends a copy of every token to each of its top-k experts over the EP group (the
      busiest rank receiving `load` times the balanced share), the ETP peers all-gather what they received and
      reduce-scatter the experts' output, and a second all-to-all brings the results back;
    * all-gather: the EP x ETP group all-gathers every rank's tokens, each rank computes its local experts, and
      a reduce-scatter returns the sums.

    Before its all-to-all the dispatcher learns how many tokens each rank sends to each expert: an all-gather of
    every rank's per-expert counts over the EP x ETP group (`MoEAlltoAllTokenDispatcher.preprocess`,
    ``gather_from_sequence_parallel_region`` of `experts` int64 counts), in the forward only: a latency-bound
    collective per MoE layer.

    The backward runs the same collectives on the gradients. With `moe_overlap` they hide behind the compute of
    the other micro-batch in flight (DualPipe, DeepSeek-V3 report sec. 3.2.1; Megatron-Core's 1F1B all-to-all
    overlap), at the compute share a running collective takes."""
    zero = comm.zero
    tokens_b = act_bytes / x.tp
    routed = tokens_b * x.top_k * x.load
    a2a_on = x.moe & (x.dispatcher == DISPATCH_ALLTOALL)
    ag_on = x.moe & (x.dispatcher == DISPATCH_ALLGATHER)
    a2a = comm(A2A, routed, "ep") if any_(a2a_on) else zero
    etp_on = a2a_on & (x.etp > 1)
    e_ag = comm(AG, routed, "etp") if any_(etp_on) else zero
    e_rs = comm(RS, routed * x.etp, "etp") if any_(etp_on) else zero
    g_ag = comm(AG, tokens_b, "eptp") if any_(ag_on) else zero
    g_rs = comm(RS, tokens_b * x.ep * x.etp, "eptp") if any_(ag_on) else zero
    counts_on = a2a_on & (x.ep * x.etp > 1)
    counts = comm(AG, x.experts * COUNT_BYTES, "eptp") if any_(counts_on) else zero
    counts_s = where(counts_on, counts.total_s, 0.0)
    both = where(a2a_on, 2 * a2a.total_s + e_ag.total_s + e_rs.total_s,
                 where(ag_on, g_ag.total_s + g_rs.total_s, 0.0))
    raw = x.moe_frac * (both + counts_s)
    raw_bwd = x.moe_frac * both
    fwd = where(x.moe_overlap, overlap_cost_s(raw, x.lc_fwd, x.share), raw)
    bwd = where(x.moe_overlap, overlap_cost_s(raw_bwd, x.lc_bwd, x.share), raw_bwd)
    a2a_n = where(a2a_on, 2.0, 0.0)
    e_n = where(etp_on, 1.0, 0.0)
    g_n = where(ag_on, 1.0, 0.0)
    c_n = where(counts_on, 1.0, 0.0)
    return MoEComm(fwd, bwd, where(x.recompute == RECOMPUTE_FULL, fwd, 0.0), raw, both + counts_s,
                   ((a2a, a2a_n), (e_ag, e_n), (e_rs, e_n), (g_ag, g_n), (g_rs, g_n), (counts, c_n)))


@dataclass(slots=True)
class CPComm:
    """Context parallelism of one layer per micro-batch: exposed seconds of its forward and backward, and the
    collectives that make them (each with how often it runs per layer) for the per-dimension account."""

    fwd: Num
    bwd: Num
    raw: Num
    parts: tuple[tuple[Priced, Num], ...]


def cp_comm(x: StepInputs, p: Plan, act_bytes: Num, comm: Any) -> CPComm:
    """The key/value exchange of context parallelism over the `sp` group (cp ranks, each holding seq/cp tokens,
    balanced for a causal mask by zig-zag chunking: rank r holds chunks r and 2cp-1-r, so every rank's attention
    work is 1/cp of the whole, as Megatron-Core's `get_batch_on_this_cp_rank` splits it).

    * ``p2p`` (ring attention; Liu et al. 2023, TransformerEngine ``cp_comm_type="p2p"``, Megatron's default):
      cp steps, each an attention kernel on 1/cp of the work; the K/V chunk of the next step travels to the ring
      neighbour while the current step computes, so each of the cp-1 exchanges is exposed by what it outlasts
      (`overlap_cost_s`). Each step's partial output is merged into the running one (rescaled by the softmax
      statistics: read the step's output, read and write the fp32 accumulator). The backward sends K/V and their
      gradients (twice the bytes) each step and accumulates dQ in fp32.
    * ``allgather`` (Llama 3, arXiv 2407.21783 sec. 3.3.2; PyTorch's `context_parallel` default rotate method):
      all-gather K and V over CP while the local block (1/cp of the attention) computes, then attend to the whole
      sequence; the backward reduce-scatters dK and dV behind the local block's backward.
    * ``a2a`` (DeepSpeed-Ulysses; Jacobs et al. 2023, arXiv 2309.14509): an all-to-all turns the sequence split
      into a head split for Q, K and V before attention and a second one turns the output back; the backward
      runs the mirror pair. Nothing overlaps them. K/V heads fewer than cp per TP rank are repeated (each rank
      sends at least one head's width to each peer).
    """
    has = x.sp > 1
    if not any_(has):
        return CPComm(0.0, 0.0, 0.0, ())
    kv_shard = 2 * p.kv_width / x.hidden * act_bytes  # K and V of the local tokens
    ring_on, ag_on = has & (x.cp_algo == CP_P2P), has & (x.cp_algo == CP_ALLGATHER)
    a2a_on = has & (x.cp_algo == CP_A2A)
    steps = x.sp - 1
    fwd: Num = 0.0
    bwd: Num = 0.0
    raw: Num = 0.0
    parts: list[tuple[Priced, Num]] = []
    if any_(ring_on):
        kv_send = comm.send(kv_shard, "sp")
        kv_grad_send = comm.send(2 * kv_shard, "sp")
        q_dim = where(x.q_dim > 0, x.q_dim, x.hidden)
        q_elems = act_bytes / (x.abpe * x.hidden) * q_dim / x.tp  # the local queries (and outputs) on one rank
        merge_s = q_elems * (x.abpe + 2 * CP_ACC_BYTES) / x.mem_bw + x.kernel_overhead_s
        ring_f = steps * (overlap_cost_s(kv_send.total_s, x.attn_fwd / x.sp, x.share) + merge_s)
        ring_b = steps * (overlap_cost_s(kv_grad_send.total_s, x.attn_bwd / x.sp, x.share) + merge_s)
        fwd, bwd = where(ring_on, ring_f, fwd), where(ring_on, ring_b, bwd)
        raw = where(ring_on, steps * (kv_send.total_s + kv_grad_send.total_s), raw)
        parts += [(kv_send, where(ring_on, steps, 0.0)), (kv_grad_send, where(ring_on, steps, 0.0))]
    if any_(ag_on):
        sp_ag = comm(AG, kv_shard, "sp")
        sp_rs = comm(RS, kv_shard * x.sp, "sp")
        fwd = where(ag_on, overlap_cost_s(sp_ag.total_s, x.attn_fwd / x.sp, x.share), fwd)
        bwd = where(ag_on, overlap_cost_s(sp_rs.total_s, x.attn_bwd / x.sp, x.share), bwd)
        raw = where(ag_on, sp_ag.total_s + sp_rs.total_s, raw)
        one = where(ag_on, 1.0, 0.0)
        parts += [(sp_ag, one), (sp_rs, one)]
    if any_(a2a_on):
        q_dim = where(x.q_dim > 0, x.q_dim, x.hidden)
        kv_sent = vmax(p.kv_width, x.sp * x.head_dim)  # K (or V) width each rank sends, heads repeated if too few
        tokens_b = act_bytes / x.hidden  # bytes per unit of width of the local tokens
        qkv = comm(A2A, tokens_b * (q_dim / x.tp + 2 * kv_sent), "sp")
        out = comm(A2A, tokens_b * q_dim / x.tp, "sp")
        one_way = qkv.total_s + out.total_s
        fwd, bwd = where(a2a_on, one_way, fwd), where(a2a_on, one_way, bwd)
        raw = where(a2a_on, 2 * one_way, raw)
        two = where(a2a_on, 2.0, 0.0)
        parts += [(qkv, two), (out, two)]
    return CPComm(fwd, bwd, raw, tuple(parts))


def layer_comm(x: StepInputs, p: Plan, comm: Any) -> LayerComm:
    """TP collectives after attention and after the MLP (Shoeybi et al. 2019, fig. 4); SP (context parallel)
    gathers of K and V overlapped with the attention core as Megatron's ring implementation does; the pipeline
    send of each TP rank's 1/tp slice (Narayanan et al. 2021, section 4.1) and its all-gather on arrival."""
    act = p.act_bytes
    zero = comm.zero
    no_sp = x.seqpar == 0
    tp_ar = comm(AR, act, "tp") if any_(no_sp | x.token_embedding) else zero
    tp_ag = comm(AG, act / x.tp, "tp") if any_(x.seqpar | ((x.pp > 1) & no_sp)) else zero
    tp_rs = comm(RS, act, "tp") if any_(x.seqpar) else zero
    tp_one = where(x.seqpar, tp_ag.total_s + tp_rs.total_s, tp_ar.total_s)
    full = x.recompute == RECOMPUTE_FULL
    cp = cp_comm(x, p, act, comm)
    p2p = comm.p2p(act / x.tp) if any_(x.pp > 1) else zero
    gather_s = where((x.pp > 1) & no_sp, tp_ag.total_s, 0.0)
    # two TP collectives per layer, after attention and after the MLP; a MoE layer's routed experts exchange their
    # tokens through the dispatcher instead (its shared experts keep theirs: Megatron-Core SharedExpertMLP)
    tp_n = 2 - x.moe_frac * where(x.shared, 0.0, 1.0) if any_(x.moe) else 2
    tp_fwd, tp_bwd = _tp_layer_s(x, tp_n, tp_one, tp_ag.total_s, tp_rs.total_s)
    return LayerComm(
        tp_ar=tp_ar, tp_ag=tp_ag, tp_rs=tp_rs, tp_one=tp_one, tp_fwd=tp_fwd, tp_bwd=tp_bwd,
        tp_rec=where(full, tp_fwd, 0.0), sp_parts=cp.parts, sp_raw=cp.raw, sp_fwd=cp.fwd,
        sp_bwd=cp.bwd, sp_rec=where(full, cp.fwd, 0.0),
        emb_tp=where(x.token_embedding, tp_ar.total_s, 0.0), p2p=p2p, p2p_gather_s=gather_s,
        p2p_hop_s=where(x.pp > 1, p2p.total_s, 0.0) + gather_s,
        moe=moe_comm(x, act, comm) if any_(x.moe) else None,
    )


def _tp_layer_s(x: StepInputs, tp_n: Num, tp_one: Num, ag_s: Num, rs_s: Num) -> tuple[Num, Num]:
    """(forward, backward) TP seconds of one layer: `tp_n` all-reduce equivalents on the critical path, or with
    `tp_comm_overlap` (sequence parallelism only: the overlap decomposes its all-gathers and reduce-scatters) the
    attention's pair and the dense MLP's pair overlapped with their GEMMs (`tp_overlap_fwd_bwd`). A MoE model's
    MoE layers keep their shared experts' collectives unoverlapped."""
    plain = tp_n * tp_one
    on = (x.tp_overlap > 0) & (x.seqpar != 0) & (x.tp > 1)
    if not any_(on):
        return plain, plain
    att_f, att_b = tp_overlap_fwd_bwd(x, ag_s, rs_s, x.g_qkv, x.g_proj)
    mlp_f, mlp_b = tp_overlap_fwd_bwd(x, ag_s, rs_s, x.g_fc1, x.g_fc2)
    dense = 1 - x.moe_frac if any_(x.moe) else 1.0
    rest = (tp_n - 1 - dense) * tp_one  # the shared experts' collectives of the MoE layers
    return where(on, att_f + dense * mlp_f + rest, plain), where(on, att_b + dense * mlp_b + rest, plain)


@dataclass(slots=True)
class StageRow:
    """One stage run's time per micro-batch, by component; `z3_ag`/`z3_rs` are its ZeRO-3 collectives."""

    x: Num
    fwd: Num
    bwd: Num
    rec: Num
    tp: Num
    sp: Num
    pp: Num
    dp: Num
    z3_ag: Priced
    z3_rs: Priced
    ep: Num = 0.0
    w: Num = 0.0  # the weight-gradient part of `bwd`
    dp_once: Num = 0.0  # ZeRO-3 gathered once per step: its exposed gathers and reduce-scatters, once


def stage_rows(x: StepInputs, p: Plan, c: LayerComm, comm: Any) -> tuple[StageRow | None, ...]:
    """The per-micro-batch timeline of each stage run (None for an empty slot)."""
    dp_group = x.dp * x.sp
    z3 = (x.zero == 3) & (dp_group > 1)
    pp_c = where(x.pp > 1, 2 * x.v * c.p2p_hop_s, 0.0)
    tp_layer = c.tp_fwd + c.tp_bwd + c.tp_rec
    sp_layer = c.sp_fwd + c.sp_bwd + c.sp_rec
    ep_layer = c.moe.fwd + c.moe.bwd + c.moe.rec if c.moe is not None else None
    rows: list[StageRow | None] = []
    experts = p.expert_params or (0.0,) * len(p.runs)
    for r, params, here, fwd, bwd, rec, e_params in zip(p.runs, p.params, p.present, p.fwd_s, p.bwd_s, p.rec_s,
                                                        experts, strict=True):
        if not any_(here):
            rows.append(None)
            continue
        n, first = r.layers, r.first == 0
        tp = n * tp_layer + where(first, c.emb_tp, 0.0)
        sp = n * sp_layer
        dp_mb, ag, rs, once = 0.0, comm.zero, comm.zero, 0.0
        if any_(z3 & here):
            fwd_stream = fwd + n * (c.tp_fwd + c.sp_fwd) + where(first, c.emb_tp, 0.0)
            bwd_stream = bwd + rec + n * (c.tp_bwd + c.tp_rec + c.sp_bwd + c.sp_rec)
            ag, rs, z3_s = zero3_exposed_s(x, comm, params, n, fwd_stream, bwd_stream, e_params)
            dp_mb = where(z3 & (x.z3_per_step == 0), z3_s, 0.0)
            once = where(z3 & x.z3_per_step, z3_s, 0.0)
        total = fwd + bwd + rec + tp + sp + pp_c + dp_mb
        w = n * x.lc_wgrad
        if ep_layer is None:
            rows.append(StageRow(total, fwd, bwd, rec, tp, sp, pp_c, dp_mb, ag, rs, 0.0, w, once))
        else:
            ep = n * ep_layer
            rows.append(StageRow(total + ep, fwd, bwd, rec, tp, sp, pp_c, dp_mb, ag, rs, ep, w, once))
    return tuple(rows)


def zero3_exposed_s(x: StepInputs, comm: Any, params: Num, n: Num, fwd_stream: Num,
                    bwd_stream: Num, e_params: Num = 0.0) -> tuple[Priced, Priced, Num]:
    """ZeRO-3 / FSDP on one stage of `n` layers holding `params` parameters: the gather and reduce-scatter of one
    unit and the seconds they add to one pass of forward and backward (`fwd_stream`, `bwd_stream`: the compute and
    exposed TP/SP traffic they can hide behind).

    Each layer's weights are gathered in `z3_units` collectives before its forward and, unless kept
    (`z3_reshard` false), again before its backward; its gradients are reduce-scattered in as many. Every
    collective pays its latency (Rajbhandari et al. 2020, ZeRO sec. 7: 1.5x the data-parallel volume); where
    the framework hooks the modules inside a checkpointed layer (`z3_regather`, DeepSpeed) the recompute's forward
    gathers them once more. With
    prefetch the next unit's gather runs behind the current compute and only the first gather and the last
    reduce-scatter are exposed; without it every gather is exposed and only the reduce-scatters, which are
    asynchronous in every framework, overlap the backward.

    A MoE model's routed experts (`e_params` on this rank) are sharded over expert DP: each unit gathers and
    reduce-scatters them over that group after its dense weights (one more collective on another group, as
    Megatron-FSDP and torchtitan shard experts over their expert-DP mesh dimension; `docs/moe.md`)."""
    units = vmax(1, n) * x.z3_units
    rs, ag = shard_collectives(x, comm, params * x.reduce_bytes / units,
                               params * WEIGHT_BYTES / units / shard_degree(x))
    if any_(x.moe):
        edp = _expert_dp(x)
        on = x.moe & (edp > 1)
        e_rs = comm(RS, e_params * x.reduce_bytes / units, "edp")
        e_ag = comm(AG, e_params * WEIGHT_BYTES / units / edp, "edp")
        rs, ag = _masked_sum(True, rs, on, e_rs), _masked_sum(True, ag, on, e_ag)
    ag_s, rs_s = units * ag.total_s, units * rs.total_s
    bwd_ag_s = where(x.z3_reshard & (x.z3_per_step == 0), ag_s, 0.0) + where(x.z3_regather, ag_s, 0.0)
    pre = x.z3_prefetch > 0
    fwd_s = where(pre, ag.total_s + overlap_cost_s(ag_s - ag.total_s, fwd_stream, x.share), ag_s)
    bwd_s = where(pre, overlap_cost_s(bwd_ag_s + rs_s - rs.total_s, bwd_stream, x.share),
                  bwd_ag_s + overlap_cost_s(rs_s - rs.total_s, bwd_stream, x.share))
    return ag, rs, fwd_s + rs.total_s + bwd_s


def first_max(values: list[Num], present: tuple[Num, ...]) -> tuple[Num, Num]:
    """(index, value) of the largest present value, the first on ties."""
    best_i: Num = 0
    best = values[0]
    for i in range(1, len(values)):
        if values[i] is None:
            continue
        better = present[i] & (values[i] > best)
        best = where(better, values[i], best)
        best_i = where(better, i, best_i)
    return best_i, best


@dataclass(slots=True)
class Tail:
    """One stage run's end of step: exposed gradient reduction, weight gather, optimizer."""

    total: Num
    exposed_dp: Num
    dp_coll: Priced
    t_dp: Num
    gather: Priced
    gather_s: Num
    optimizer_s: Num


def tails(x: StepInputs, p: Plan, c: LayerComm, rows: tuple[StageRow | None, ...], comm: Any,
          lifo: Num, chunks: Num, dp_shares_tp: Num) -> tuple[Tail | None, ...]:
    """Each run's tail, hidden behind its last backward (`window`) and behind the time later stages still spend on
    theirs (`slack`): it is longest at the first stage of each run, so only first stages are candidates."""
    dp_group = x.dp * x.sp
    reduce = (dp_group > 1) & (x.zero < 3)
    gathers = (dp_group > 1) & ((x.zero == 1) | (x.zero == 2))
    n_tp = where(x.seqpar, 2, 1)
    out: list[Tail | None] = []
    slack: Num = 0.0
    experts = p.expert_params or (None,) * len(p.runs)
    for r, row, params, opt_s, e_params in zip(p.runs, rows, p.params, p.optimizer_s, experts, strict=True):
        if row is None:
            out.append(None)
            continue
        gbytes = params * x.reduce_bytes
        dp_coll = comm.zero
        if any_(reduce):
            ar = comm(AR, gbytes, "dpsp") if any_(reduce & (x.zero == 0)) else comm.zero
            rs = shard_collectives(x, comm, gbytes, 0.0)[0] if any_(reduce & (x.zero > 0)) else comm.zero
            dp_coll = _pick(x.zero == 0, ar, rs)
        t_dp = where(reduce, dp_coll.total_s, 0.0)
        if e_params is not None:
            # the routed experts' gradients are reduced over expert DP, in their own buckets after the dense ones
            dp_coll, t_dp = _expert_reduce(x, comm, params, e_params, reduce, dp_coll, t_dp)
        window = where(x.dp_overlap, row.bwd + row.rec + row.tp / 3.0, 0.0)
        shares = (t_dp > 0) & x.dp_overlap & dp_shares_tp
        # LIFO: the newest (TP) collectives of the backward go first and DP uses the gaps; FIFO: each TP
        # collective of the last backward waits for the DP chunk in flight
        first_in, waits = shares & lifo, shares & (lifo == 0)
        if any_(first_in):
            window = where(first_in, vmax(0.0, window - r.layers * (c.tp_bwd + c.sp_bwd)), window)
        penalty: Num = 0.0
        if any_(waits):
            penalty = where(waits, vmin(t_dp, r.layers * 2 * n_tp * t_dp / vmax(1, chunks)), 0.0)
        # what outlasts the backward and the wait for later stages, plus the backward slowed down while the
        # reduction runs beside it (it overlaps only the stage's own compute, not the wait)
        exposed = vmax(0.0, t_dp - window - slack) + x.share * vmin(t_dp, window) + penalty
        # ZeRO-1/2 (distributed optimizer): gather the updated weights after the step; with
        # --overlap-param-gather each bucket's gather hides behind the first micro-batch's forward
        gather, gather_s = comm.zero, 0.0
        if any_(gathers):
            gather = shard_collectives(x, comm, 0.0, params * WEIGHT_BYTES / shard_degree(x))[1]
            gather_s = where(gathers, gather.total_s, 0.0)
        if e_params is not None:
            gather, gather_s = _expert_gather(x, comm, params, e_params, gathers, gather, gather_s)
        if any_(gathers) or e_params is not None:
            gather_s = where(x.param_gather_overlap, overlap_cost_s(gather_s, row.fwd, x.share), gather_s)
        if any_(row.dp_once > 0):
            # ZeRO-3 gathered once per step (kept over the micro-batches): its collectives run once
            gather = _pick(row.dp_once > 0, row.z3_ag, gather)
            gather_s = gather_s + row.dp_once
        out.append(Tail(exposed + gather_s + opt_s, exposed, dp_coll, t_dp, gather, gather_s, opt_s))
        slack = slack + r.count * (row.bwd + row.rec + c.p2p_hop_s * x.v)
    return tuple(out)


def same_group(comm: Any, a: str, b: str) -> Num:
    """Whether groups `a` and `b` lie on the network alike (the same members and strides on every dimension)."""
    sa, sb = comm.shapes[a], comm.shapes[b]
    out: Num = True
    for ma, mb, ta, tb in zip(sa.members, sb.members, sa.strides, sb.strides, strict=True):
        out = out & (ma == mb) & ((ma <= 1) | (ta == tb))
    return out


def _expert_reduce(x: StepInputs, comm: Any, params: Num, e_params: Num, reduce: Num, dp_coll: Priced,
                   t_dp: Num) -> tuple[Priced, Num]:
    """The dense gradient reduction `dp_coll` (taking `t_dp`) followed by the routed experts' over expert DP.

    Gradient buckets are not modelled: the gradients reduced over one group are one collective. Where the expert
    DP group is the gradient group itself (EP 1, ETP = TP) the experts' gradients join the dense ones."""
    edp = _expert_dp(x)
    on = (edp > 1) & (x.zero < 3) & x.moe
    if not any_(on):
        return dp_coll, t_dp
    same = same_group(comm, "edp", "dpsp")
    zero0 = x.zero == 0
    if any_(same & on):
        both = (params + e_params) * x.reduce_bytes
        ar = comm(AR, both, "dpsp") if any_(on & zero0 & same) else comm.zero
        rs = comm(RS, both, "dpsp") if any_(on & ~zero0 & same) else comm.zero
        joint = _pick(zero0, ar, rs)
        if all_(same):
            return _masked_sum(on, joint, False, joint), where(on, joint.total_s, 0.0)
    ebytes = e_params * x.reduce_bytes
    ar = comm(AR, ebytes, "edp") if any_(on & zero0) else comm.zero
    rs = comm(RS, ebytes, "edp") if any_(on & ~zero0) else comm.zero
    e_coll = _pick(zero0, ar, rs)
    apart = _masked_sum(reduce, dp_coll, on, e_coll), t_dp + where(on, e_coll.total_s, 0.0)
    if not any_(same & on):
        return apart
    return (_pick(same & on, joint, apart[0]), where(same & on, joint.total_s, apart[1]))


def _expert_gather(x: StepInputs, comm: Any, params: Num, e_params: Num, gathers: Num, gather: Priced,
                   gather_s: Num) -> tuple[Priced, Num]:
    """ZeRO-1/2: the dense weights' gather `gather` (taking `gather_s`) and the routed experts' over expert DP
    (one gather where the two groups are one, as `_expert_reduce`)."""
    edp = _expert_dp(x)
    on = (edp > 1) & ((x.zero == 1) | (x.zero == 2)) & x.moe
    if not any_(on):
        return gather, gather_s
    same = same_group(comm, "edp", "dpsp") & on
    e_gather = comm(AG, e_params * WEIGHT_BYTES / edp, "edp")
    apart = _masked_sum(gathers, gather, on, e_gather), gather_s + where(on, e_gather.total_s, 0.0)
    if not any_(same):
        return apart
    joint = comm(AG, (params + e_params) * WEIGHT_BYTES / edp, "dpsp")
    return _pick(same, joint, apart[0]), where(same, joint.total_s, apart[1])


def _masked_sum(ca: Num, a: Priced, cb: Num, b: Priced) -> Priced:
    """`a` where `ca` holds plus `b` where `cb` holds, per configuration."""
    return Priced(where(ca, a.total_s, 0.0) + where(cb, b.total_s, 0.0),
                  tuple(where(ca, u, 0.0) + where(cb, w, 0.0) for u, w in zip(a.per_dim_s, b.per_dim_s,
                                                                               strict=True)))


def _pick(cond: Num, a: Priced, b: Priced) -> Priced:
    """`a` where `cond` holds, else `b`, per configuration."""
    if a is b or all_(cond):
        return a
    if not any_(cond):
        return b
    return Priced(where(cond, a.total_s, b.total_s),
                  tuple(where(cond, u, w) for u, w in zip(a.per_dim_s, b.per_dim_s, strict=True)))


class DimAccount:
    """Exposed communication seconds per network dimension (for the breakdown)."""

    __slots__ = ("per_dim",)

    def __init__(self, n_dims: int) -> None:
        self.per_dim: list[Num] = [0.0] * n_dims

    def add(self, ct: Priced, exposed_s: Num, times: Num = 1.0) -> None:
        """Charge `exposed_s` x `times` of collective `ct`, split over the dimensions as `ct` is."""
        ok = (ct.total_s > 0) & (exposed_s > 0)
        if not any_(ok):
            return
        scale = where(ok, exposed_s / safe(ct.total_s) * times, 0.0)
        for i, t in enumerate(ct.per_dim_s):
            self.per_dim[i] = self.per_dim[i] + t * scale


@dataclass(slots=True)
class Step:
    """A composed step: its time, the critical stage's breakdown and the communication per network dimension."""

    step_s: Num
    breakdown: dict[str, Num]
    per_dim_s: tuple[Num, ...]
    critical_stage: Num


def at(items: list[tuple[int, Any]], idx: Num, field: str) -> Num:
    """`field` of the item whose key is `idx`, per configuration (the first item's where no key is)."""
    if not is_column(idx):
        for k, it in items:
            if k == idx:
                return getattr(it, field)
        return getattr(items[0][1], field)
    val = getattr(items[0][1], field)
    for k, it in items[1:]:
        val = where(idx == k, getattr(it, field), val)
    return val


def compose(x: StepInputs, p: Plan, c: LayerComm, rows: tuple[StageRow | None, ...],
            tl: tuple[Tail | None, ...], n_dims: int) -> Step:
    """Pipeline time, tail, and the breakdown of the critical stage (phases 4 and 6 of the module docstring)."""
    m = p.micro_batches
    present = p.present
    crit, x_max = first_max([r.x if r is not None else None for r in rows], present)
    total_x = sum(r.x * run.count for r, run in zip(rows, p.runs, strict=True) if r is not None)
    t_pipe = m * x_max + (total_x - x_max) / x.v
    zb = x.schedule == ZB_H1
    if any_(zb):
        # zero bubble H1 (Qi et al. 2023, sec. 3.1): each stage defers its weight gradients (W) into the drain, so
        # the fill and drain of 1F1B, (p-1)(F+B+W) per stage, shrink to (p-1)(F+B-W) at 1F1B's peak memory
        total_w = sum(r.w * run.count for r, run in zip(rows, p.runs, strict=True) if r is not None)
        w_crit = at([(k, r) for k, r in enumerate(rows) if r is not None], crit, "w")
        t_pipe = t_pipe - where(zb, 2 * (total_w - w_crit), 0.0)
    tail_i, tail_s = first_max([t.total if t is not None else None for t in tl], present)
    rs = [(k, r) for k, r in enumerate(rows) if r is not None]
    ts = [(k, t) for k, t in enumerate(tl) if t is not None]
    cr = {f: at(rs, crit, f) for f in ("fwd", "bwd", "rec", "tp", "sp", "pp", "dp", "ep")}
    exposed_dp, gather_s = at(ts, tail_i, "exposed_dp"), at(ts, tail_i, "gather_s")
    breakdown = {
        "forward_s": m * cr["fwd"], "backward_s": m * cr["bwd"], "recompute_s": m * cr["rec"],
        "comm_tp_s": m * cr["tp"], "comm_sp_s": m * cr["sp"], "comm_pp_s": m * cr["pp"],
        "comm_dp_s": m * cr["dp"] + exposed_dp + gather_s, "comm_ep_s": m * cr["ep"],
        "bubble_s": t_pipe - m * x_max, "optimizer_s": at(ts, tail_i, "optimizer_s"),
    }
    per_dim = _per_dim(x, p, c, rs, ts, cr, crit, tail_i, n_dims)
    crit_stage = p.runs[0].first
    for k, _ in rs[1:]:
        crit_stage = where(crit == k, p.runs[k].first, crit_stage)
    return Step(t_pipe + tail_s, breakdown, per_dim, crit_stage)


def _per_dim(x: StepInputs, p: Plan, c: LayerComm, rs: list[tuple[int, StageRow]], ts: list[tuple[int, Tail]],
             cr: dict[str, Num], crit: Num, tail_i: Num, n_dims: int) -> tuple[Num, ...]:
    """The exposed communication of the critical stage (`cr`, run `crit`) and of the tail of run `tail_i` per
    network dimension."""
    m = p.micro_batches
    acc = DimAccount(n_dims)
    tp_times = m * (cr["tp"] / safe(c.tp_one))
    sp_times = where(x.seqpar, tp_times, 0.0)
    acc.add(c.tp_ag, c.tp_ag.total_s, sp_times)
    acc.add(c.tp_rs, c.tp_rs.total_s, sp_times)
    acc.add(c.tp_ar, c.tp_ar.total_s, where(x.seqpar, 0.0, tp_times))
    # the exposed CP exchange split over the collectives that make it, as their raw times are
    sp_raw = safe(c.sp_raw)
    for ct, times in c.sp_parts:
        acc.add(ct, ct.total_s, where(cr["sp"] > 0, m * cr["sp"] * times / sp_raw, 0.0))
    if c.moe is not None:
        # the exposed dispatch and combine split over the collectives that make it, as their raw times are
        one = safe(c.moe.one)
        for ct, times in c.moe.parts:
            acc.add(ct, ct.total_s, where(cr["ep"] > 0, m * cr["ep"] * times / one, 0.0))
    hop = where(c.p2p_hop_s > 0, m * cr["pp"] / safe(c.p2p_hop_s), 0.0)
    acc.add(c.p2p, c.p2p.total_s, hop)
    acc.add(c.tp_ag, c.p2p_gather_s, hop)
    for k, r in rs:
        on = (crit == k) & (r.dp > 0)
        tot = safe(2 * r.z3_ag.total_s + r.z3_rs.total_s)
        acc.add(r.z3_ag, r.z3_ag.total_s, where(on, 2 * m * r.dp / tot, 0.0))
        acc.add(r.z3_rs, r.z3_rs.total_s, where(on, m * r.dp / tot, 0.0))
    for k, t in ts:
        on = tail_i == k
        acc.add(t.dp_coll, t.dp_coll.total_s, where(on & (t.exposed_dp > 0) & (t.t_dp > 0),
                                                    t.exposed_dp / safe(t.t_dp), 0.0))
        acc.add(t.gather, where(on, t.gather_s, 0.0))
    return tuple(acc.per_dim)
