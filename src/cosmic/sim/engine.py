"""simulate(config) -> Result: one training step across the four stacks (the scalar path).

One representative rank per pipeline stage run; identical layers priced once (`cosmic.workload.layers`);
collectives as closed forms per network dimension on exactly the part of the network each group spans
(`cosmic.collective.communicator`); the step composed by the phases of `cosmic.sim.step`, which the batch path
(`cosmic.sim.batch.simulate_columns`) runs on columns with the same formulas. The cost never grows with the NPU
count. Sub-configurations are remembered: configurations that differ only in the network share their plan, and
configurations that share a layout share its group shapes (`cosmic.collective.communicator.layout_shapes`).
"""

from __future__ import annotations

import gc
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from cosmic._xp import vmin
from cosmic.caches import BoundedMemo, clear_caches, register
from cosmic.collective.communicator import Communicator
from cosmic.collective.config import Fidelity
from cosmic.errors import InfeasibleError, KeyedValueError
from cosmic.network.cost import network_figures
from cosmic.sim.config import SystemConfig, check_config, check_layout
from cosmic.sim.evidence import evidence_of_config
from cosmic.sim.regime import generation
from cosmic.sim.result import EP_KEY, Memory, Result
from cosmic.sim.step import (
    CP_A2A,
    CP_ALLGATHER,
    CP_P2P,
    DISPATCH_ALLGATHER,
    DISPATCH_ALLTOALL,
    TP_OVERLAP_CODES,
    Plan,
    Step,
    StepInputs,
    compose,
    layer_comm,
    plan,
    stage_rows,
    tails,
)
from cosmic.units import BYTES_PER_ELEMENT
from cosmic.workload.layers import EndCost, LayerCost, LayerShard, end_costs, layer_cost
from cosmic.workload.memory import (
    FP32_GRAD_BYTES,
    FULL_LAYER_WORKING_BYTES,
    GRAD_BYTES,
    ActivationBytes,
)
from cosmic.workload.model import Embedding, ModelSpec
from cosmic.workload.parallel import layout_order as _layout_order
from cosmic.workload.schemas import Recompute, Schedule
from cosmic.workload.sharding import gather_units, regathers_on_recompute
from cosmic.workload.stack import StackChoice

SCHEDULE_CODES = {s: i for i, s in enumerate(Schedule)}
DISPATCHER_CODES = {"alltoall": DISPATCH_ALLTOALL, "allgather": DISPATCH_ALLGATHER}
RECOMPUTE_CODES = {r: i for i, r in enumerate(Recompute)}
CP_CODES = {"p2p": CP_P2P, "allgather": CP_ALLGATHER, "a2a": CP_A2A}

__all__ = [
    "EndCost",
    "LayerCost",
    "LayerShard",
    "clear_caches",
    "end_costs",
    "layer_cost",
    "layout_order",
    "memory_footprint",
    "simulate",
    "simulate_if_fits",
    "simulate_many",
    "step_inputs",
]


def make_shard(model: ModelSpec, accelerator: Any, stack: StackChoice, tp: int, sp: int, micro_batch: int,
               seq_len: int, precision: str, sequence_parallel: bool, recompute: Recompute, ep: int = 1,
               etp: int = 1, imbalance: float = 1.0, dispatcher: str = "alltoall") -> LayerShard:
    """The `LayerShard` of one rank, with the kernels the software stack runs on `accelerator` resolved
    (`cosmic.workload.stack`): the one constructor of the scalar and the batch paths."""
    gen = generation(accelerator.name)
    kernel = stack.attention(gen)
    recipe = stack.recipe(gen) if precision == "fp8" else "delayed"
    cache = stack.caches_fp8_weights
    if model.moe is None:
        ep, etp, imbalance, dispatcher = 1, 1, 1.0, "alltoall"
    return LayerShard(tp, sp, micro_batch, seq_len, precision, bool(sequence_parallel), kernel != "unfused",
                      recompute, kernel, ep, etp, imbalance, dispatcher, recipe, cache, stack.host_launch_s)


def layer_shard(cfg: SystemConfig) -> LayerShard:
    """How one layer of `cfg` runs on one rank."""
    par, tr = cfg.parallel, cfg.training
    return make_shard(cfg.model, cfg.accelerator, StackChoice.of(tr), par.tp, par.sp, tr.micro_batch, cfg.seq_len,
                      tr.precision.value, par.sequence_parallel, tr.recompute, par.ep, par.expert_tp,
                      tr.moe_imbalance, par.moe_dispatcher)


def moe_inputs(model: ModelSpec, ep: Any, etp: Any, imbalance: Any, dispatcher: Any, overlap: Any) -> dict[str, Any]:
    """The MoE fields of `StepInputs` (floats or columns) for a MoE `model`."""
    moe = model.moe
    assert moe is not None
    load = imbalance if moe.capacity_factor is None else vmin(imbalance, moe.capacity_factor)
    return {"moe": moe.experts > 1, "ep": ep, "etp": etp, "expert_params": model.expert_layer_params,
            "moe_frac": model.moe_fraction, "shared": moe.shared_experts > 0, "top_k": moe.top_k, "load": load,
            "dispatcher": dispatcher, "moe_overlap": overlap, "experts": moe.experts}


@register
@lru_cache(maxsize=4096)
def model_flops(model: ModelSpec, seq_len: int, global_batch: int) -> float:
    """Model FLOPs of one step (the MFU numerator) at sequence length `seq_len`."""
    shape = model if seq_len == model.seq_len else model.model_copy(update={"seq_len": seq_len})
    return shape.model_flops_per_step(global_batch)


def step_inputs(cfg: SystemConfig) -> StepInputs:
    """The per-configuration inputs of the step phases, as floats."""
    model, acc, par, tr = cfg.model, cfg.accelerator, cfg.parallel, cfg.training
    shard = layer_shard(cfg)
    # a training step runs for hours at the board's power limit: its kernels see the sustained (settled-clock) rates
    run = acc.sustained()
    lc = layer_cost(model, run, shard)
    emb, head = end_costs(model, run, shard)
    prec = tr.precision.value
    seq = cfg.seq_len
    tokens = tr.micro_batch * seq // par.sp
    token = model.embedding is Embedding.TOKEN
    return StepInputs(
        tp=par.tp, sp=par.sp, dp=par.dp, pp=par.pp, zero=par.zero, seqpar=par.sequence_parallel,
        global_batch=tr.global_batch, micro_batch=tr.micro_batch, seq=seq, schedule=SCHEDULE_CODES[tr.schedule],
        v=tr.virtual_stages if tr.schedule is Schedule.INTERLEAVED else 1, recompute=RECOMPUTE_CODES[tr.recompute],
        dp_overlap=tr.dp_overlap, param_gather_overlap=tr.param_gather_overlap,
        grad_accum_fusion=tr.grad_accumulation_fusion,
        reduce_bytes=FP32_GRAD_BYTES if tr.grad_reduce_fp32 else GRAD_BYTES,
        abpe=BYTES_PER_ELEMENT["bf16" if prec == "fp8" else prec],  # activations travel in bf16 under fp8
        layers=model.layers, hidden=model.hidden, kv_dim=model.kv_dim, head_dim=model.head_size,
        n_kv_heads=model.n_kv_heads, layer_params=model.layer_params, embedding_params=model.embedding_params,
        head_params=model.head_params,
        # the last stage keeps a copy of the tied embedding for the logits (Megatron-LM)
        tied_extra_params=model.vocab * model.hidden if (model.tied_embeddings and token) else 0,
        token_embedding=token, mem_bw=acc.achievable_mem_bytes_per_s, kernel_overhead_s=acc.kernel_overhead_us * 1e-6,
        share=acc.collective_compute_share,
        lc_fwd=lc.fwd_s, lc_bwd=lc.bwd_s, lc_rec=lc.recompute_s, attn_fwd=lc.attn_core_fwd_s,
        attn_bwd=lc.attn_core_bwd_s, lc_rec_flops=lc.recompute_flops, lc_wgrad=lc.wgrad_s,
        lc_wcast=lc.weight_cast_s,
        act=ActivationBytes(lc.act_bytes, emb.act_bytes, head.act_bytes,
                            FULL_LAYER_WORKING_BYTES * tokens * model.hidden / par.tp),
        emb_fwd=emb.fwd_s, emb_bwd=emb.bwd_s, head_fwd=head.fwd_s, head_bwd=head.bwd_s,
        model_flops=model_flops(model, seq, tr.global_batch), cp_algo=CP_CODES[par.cp_algorithm], q_dim=model.q_dim,
        first_layers=tr.first_stage_layers or 0, last_layers=tr.last_stage_layers or 0,
        tp_overlap=TP_OVERLAP_CODES[tr.tp_comm_overlap], g_qkv=lc.qkv_s, g_proj=lc.proj_s, g_fc1=lc.fc1_s,
        g_fc2=lc.fc2_s,
        z3_units=gather_units(tr.zero3_gathers), z3_prefetch=tr.zero3_prefetch,
        z3_reshard=tr.reshard_after_forward, z3_per_step=tr.param_gather_per_step,
        z3_regather=regathers_on_recompute(tr.zero3_gathers, tr.recompute is Recompute.FULL),
        shard=par.shard_group or 0,
        **(moe_inputs(model, par.ep, par.expert_tp, tr.moe_imbalance, DISPATCHER_CODES[par.moe_dispatcher],
                      tr.moe_overlap) if model.moe is not None else {}),
    )


@dataclass(frozen=True, slots=True)
class PlannedStep:
    """The network-free part of a configuration's step and the figures of its `Result` that follow from it."""

    inputs: StepInputs
    plan: Plan
    memory: Memory
    fits_memory: bool
    memory_capacity_bytes: float
    peak_flop_per_s: float  # of one device at the training precision
    n_npus: int
    tokens_per_step: int
    model: ModelSpec  # held, so that their ids in the memo key are not reused while remembered
    accelerator: Any


def planned_step(cfg: SystemConfig) -> PlannedStep:
    """The `PlannedStep` of a checked `cfg`."""
    x = step_inputs(cfg)
    p = plan(x)
    m = p.memory
    mem = Memory(float(m.weights_bytes), float(m.gradients_bytes), float(m.optimizer_bytes),
                 float(m.activations_bytes))
    acc, par = cfg.accelerator, cfg.parallel
    return PlannedStep(x, p, mem, mem.total_bytes <= acc.mem_bytes, acc.mem_bytes,
                       acc.peak_flop_per_s(cfg.training.precision.value), par.n_npus,
                       cfg.training.global_batch * cfg.seq_len, cfg.model, acc)


_PLANS = register(BoundedMemo(1 << 15))


def _plan_key(cfg: SystemConfig) -> tuple[Any, ...]:
    """What the plan of `cfg` depends on; it includes everything the training checks of `check_config` read. The
    ids of the model and accelerator are held alive by the memo entry, so no id is reused while remembered."""
    model, par, tr = cfg.model, cfg.parallel, cfg.training
    return (
        id(model), id(cfg.accelerator), par.tp, par.sp, par.pp, par.dp, par.zero, par.sequence_parallel,
        tr.micro_batch, tr.seq_len or model.seq_len, tr.precision, tr.flash_attention, tr.recompute,
        tr.attention_kernel, tr.framework, tr.stack_date, tr.fp8_recipe, tr.execution, tr.schedule, tr.virtual_stages,
        tr.global_batch,
        tr.dp_overlap,
        tr.param_gather_overlap, tr.grad_accumulation_fusion, tr.grad_reduce_fp32, par.ep, par.etp,
        par.moe_dispatcher, tr.moe_imbalance, tr.moe_overlap, par.cp_algorithm, tr.first_stage_layers,
        tr.last_stage_layers, tr.tp_comm_overlap, tr.zero3_gathers, tr.zero3_prefetch,
        tr.reshard_after_forward, tr.param_gather_per_step, par.shard_group,
    )


def _checked_plan(cfg: SystemConfig) -> PlannedStep:
    """Check `cfg` (raising InfeasibleError) and return its remembered plan. Plans are made for checked configs
    only and their key holds all the training checks read: with a remembered plan only the layout (rank order,
    network, collectives) remains to check."""
    key = _plan_key(cfg)
    hit = _PLANS.get(key)
    if hit is not None:
        _check(cfg, layout_only=True)
        return hit
    _check(cfg)
    return _PLANS.put(key, planned_step(cfg))


def layout_order(cfg: SystemConfig) -> tuple[str, ...]:
    """The rank order with the groups of degree 1 moved to the end (`cosmic.workload.parallel.layout_order`)."""
    p = cfg.parallel
    return _layout_order(p.tp, p.sp, p.dp, p.pp, p.rank_order)


def communicator(cfg: SystemConfig, order: tuple[str, ...] | None = None) -> Communicator:
    """The `Communicator` of `cfg`'s layout, network and collective settings. It is made anew for each step (it is
    cheap: the layout's group shapes and the algorithm choices are remembered by value), so that a simulation
    leaves no priced collectives behind for the garbage collector to scan."""
    par = cfg.parallel
    return Communicator(cfg.network, cfg.collective, (par.tp, par.sp, par.dp, par.pp), order or layout_order(cfg),
                        _expert(cfg), par.shard_group)


def _expert(cfg: SystemConfig) -> tuple[int, int] | None:
    """``(ep, etp)`` of a MoE model, None for a dense one (the communicator then has no expert groups)."""
    return (cfg.parallel.ep, cfg.parallel.expert_tp) if cfg.model.moe is not None else None


def dp_shares_tp(comm: Any) -> Any:
    """Whether the gradient group shares a network dimension with the TP or SP group (their traffic contends)."""
    dpsp, tp, sp = comm.shapes["dpsp"].spanned, comm.shapes["tp"].spanned, comm.shapes["sp"].spanned
    out: Any = False
    for d in comm.shapes["dpsp"].dims:
        out = out | (dpsp[d] & (tp[d] | sp[d]))
    return out


def run_step(x: StepInputs, p: Plan, comm: Any, lifo: Any, chunks: Any) -> Step:
    """Phases 2-6 of a step (`cosmic.sim.step`) on one communicator."""
    c = layer_comm(x, p, comm)
    rows = stage_rows(x, p, c, comm)
    tl = tails(x, p, c, rows, comm, lifo, chunks, dp_shares_tp(comm))
    return compose(x, p, c, rows, tl, comm.n_dims)


_FIDELITY_NAMES = {f: f.value for f in Fidelity}


def _result(cfg: SystemConfig, ps: PlannedStep, st: Step) -> Result:
    step = st.step_s
    peak_total = step * ps.n_npus * ps.peak_flop_per_s
    flops = ps.inputs.model_flops
    net_cost, net_bw = network_figures(cfg.network)
    return Result(
        step_time_s=step, tokens_per_s=ps.tokens_per_step / step, mfu=flops / peak_total,
        hfu=(flops + ps.plan.recompute_flops) / peak_total, memory=ps.memory,
        memory_capacity_bytes=ps.memory_capacity_bytes, fits_memory=ps.fits_memory, network_cost_usd=net_cost,
        total_bandwidth_gbps=net_bw,
        breakdown=st.breakdown if cfg.model.moe is not None else _dense(st.breakdown),
        comm_by_network_dim_s=st.per_dim_s,
        n_npus=ps.n_npus, micro_batches=ps.plan.micro_batches, critical_stage=st.critical_stage,
        model_flops_per_step=flops, fidelity=_FIDELITY_NAMES[cfg.collective.fidelity],
        evidence=evidence_of_config(cfg),
    )


def _dense(breakdown: dict[str, Any]) -> dict[str, Any]:
    """A dense model's breakdown: the nine `BREAKDOWN_KEYS` (its dispatch time is 0)."""
    del breakdown[EP_KEY]
    return breakdown


_RESULTS = register(BoundedMemo(1 << 14))  # key -> (the objects whose ids are in the key..., Result)


def _check(config: SystemConfig, *, layout_only: bool = False) -> None:
    try:
        (check_layout if layout_only else check_config)(config)
    except KeyedValueError as exc:
        raise InfeasibleError(f"{exc.key}: {exc}") from None


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
    model, acc, net, coll, par, tr = config.model, config.accelerator, config.network, config.collective, \
        config.parallel, config.training
    order = _layout_order(par.tp, par.sp, par.dp, par.pp, par.rank_order)
    # remembered by what the step depends on (the memo holds the sub-objects whose ids it keys on, so no id can be
    # reused while remembered); only checked configurations are remembered, and the key holds everything the
    # checks read (a rank order that moves a group of degree 1 fits exactly when this one does)
    key = (id(model), id(acc), id(net), id(coll), id(tr), par.tp, par.sp, par.dp, par.pp, par.zero,
           par.sequence_parallel, order, par.ep, par.etp, par.moe_dispatcher, par.cp_algorithm, par.shard_group)
    hit = _RESULTS.get(key)
    if hit is not None:
        return hit[5]
    ps = _checked_plan(config)
    comm = Communicator(net, coll, (par.tp, par.sp, par.dp, par.pp), order, _expert(config), par.shard_group)
    result = _result(config, ps, run_step(ps.inputs, ps.plan, comm, coll.scheduling == "LIFO", coll.chunks))
    _RESULTS.put(key, (model, acc, net, coll, tr, result))
    return result


def memory_footprint(config: SystemConfig) -> Memory:
    """Peak memory per device of `config` without simulating the step (equal to `simulate(config).memory`).

    Raises InfeasibleError for a configuration the simulator rejects. Exhaustive search uses it to rule out the
    configurations that cannot fit before timing them.
    """
    return _checked_plan(config).memory


def simulate_if_fits(config: SystemConfig) -> Result | Memory:
    """`simulate(config)` if its peak memory fits the device, else that `Memory` (the step is not timed)."""
    ps = _checked_plan(config)
    return simulate(config) if ps.fits_memory else ps.memory


def simulate_many(configs: Iterable[SystemConfig]) -> list[Result | InfeasibleError]:
    """Simulate a batch; an infeasible configuration yields its InfeasibleError instead of a Result.

    The simulator allocates only acyclic objects, so the cyclic garbage collector has nothing to find during a
    batch; it is paused (reference counting still frees everything) and restored afterwards.
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
