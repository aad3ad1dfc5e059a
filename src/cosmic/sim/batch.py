"""simulate_columns(columns) -> BatchResult: the step of many configurations at once (the batch path).

The same phases as `simulate` (`cosmic.sim.step`) run on NumPy columns. What depends on few distinct values (the
per-layer cost of a layer shard, a model's FLOPs) is priced once per distinct value with the scalar functions and
gathered; collectives are priced by `cosmic.collective.columns.ColumnCommunicator`. Configurations the batch path
does not price (ASTRA-sim fidelity, network dimensions of 2^20 NPUs or more) and configurations the checks of
`check_config` would refuse are left to the scalar path: `BatchResult.result(i)` then returns what `simulate` does
for them, errors included.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cosmic._xp import take
from cosmic.caches import BoundedMemo, RowTable, register
from cosmic.collective.columns import ColumnCommunicator
from cosmic.collective.model import MultiDim
from cosmic.errors import CosmicError
from cosmic.network.cost import figures
from cosmic.sim.columns import CP_ALGORITHMS, DISPATCHERS, FIDELITIES, MULTIDIMS, SCHEDULINGS, StepColumns
from cosmic.sim.engine import (
    RECOMPUTE_CODES,
    SCHEDULE_CODES,
    make_shard,
    model_flops,
    run_step,
)
from cosmic.sim.evidence import Evidence, evidence_columns, evidence_of
from cosmic.sim.result import BREAKDOWN_KEYS, MOE_BREAKDOWN_KEYS, Memory, Result
from cosmic.sim.step import TP_OVERLAP_CODES, Plan, StepInputs, plan
from cosmic.units import BYTES_PER_ELEMENT
from cosmic.workload.layers import end_costs, layer_cost
from cosmic.workload.memory import (
    FP32_GRAD_BYTES,
    FULL_LAYER_WORKING_BYTES,
    GRAD_BYTES,
    INTERLEAVED,
    ActivationBytes,
)
from cosmic.workload.model import Embedding
from cosmic.workload.parallel import PARALLEL_DIMS
from cosmic.workload.pipeline import stage_runs
from cosmic.workload.schemas import Schedule
from cosmic.workload.sharding import gather_units, regathers_on_recompute
from cosmic.workload.stack import StackChoice

_LC_FIELDS = ("fwd_s", "bwd_s", "recompute_s", "attn_core_fwd_s", "attn_core_bwd_s", "recompute_flops", "act_bytes",
              "wgrad_s", "qkv_s", "proj_s", "fc1_s", "fc2_s", "weight_cast_s")


def _distinct(*cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(distinct rows, inverse index) of non-negative integer columns (packed into one int64 key when they fit)."""
    n = max(np.size(c) for c in cols)
    ints = [np.broadcast_to(np.asarray(c, dtype=np.int64), (n,)) for c in cols]
    radix = [int(c.max(initial=0)) + 1 for c in ints]
    if math.prod(radix) < 1 << 62:
        key = np.zeros(n, dtype=np.int64)
        for c, r in zip(ints, radix, strict=True):
            key = key * r + c
        _, first, inv = np.unique(key, return_index=True, return_inverse=True)
        return np.stack([c[first] for c in ints], axis=1), inv.reshape(-1)
    rows, inv = np.unique(np.stack(ints, axis=1), axis=0, return_inverse=True)
    return rows, inv.reshape(-1)


_SHARD_FIELDS = _LC_FIELDS + ("emb_fwd", "emb_bwd", "emb_act", "head_fwd", "head_bwd", "head_act")


class StableCodes:
    """A small integer per object that stays the same across batches (the registry holds the objects alive)."""

    def __init__(self) -> None:
        self.by_id: dict[Any, tuple[int, Any]] = {}
        self.objects: list[Any] = []

    def clear(self) -> None:
        self.by_id.clear()
        self.objects.clear()

    def codes(self, objs: tuple[Any, ...], *, by_value: bool = False) -> np.ndarray:
        """Codes of `objs`, by identity (the default) or, for small hashable values, by value."""
        out = np.empty(len(objs), dtype=np.int64)
        for i, o in enumerate(objs):
            k = o if by_value else id(o)
            hit = self.by_id.get(k)
            if hit is None:
                hit = self.by_id[k] = (len(self.objects), o)
                self.objects.append(o)
            out[i] = hit[0]
        return out


_OBJECTS = register(StableCodes())
_SHARD_TABLE = register(RowTable(len(_SHARD_FIELDS)))
_BITS = (8, 8, 12, 16, 16, 1)  # model, accelerator, training shard, tp, sp, sequence_parallel


def _shard_tuple(tr: Any) -> tuple[Any, ...]:
    """What a layer shard takes from a training configuration."""
    return (tr.micro_batch, tr.seq_len, tr.precision.value, StackChoice.of(tr), tr.recompute, tr.moe_imbalance)


def _layer_costs(c: StepColumns) -> dict[str, np.ndarray]:
    """Layer, embedding and head costs per row: priced once per distinct layer shard with the scalar
    `layer_cost`/`end_costs`, and remembered across batches in a `RowTable`."""
    t_codes = _OBJECTS.codes(tuple(("shard",) + _shard_tuple(t) for t in c.trainings), by_value=True)
    cols = [_OBJECTS.codes(c.models)[c.model], _OBJECTS.codes(c.accelerators)[c.accelerator],
            t_codes[c.training], c.tp, c.sp, c.sequence_parallel.astype(np.int64)]
    if any(m.moe is not None for m in c.models):
        # MoE shards also depend on ep and etp: price this batch's distinct shards (the scalar layer_cost
        # remembers them) without the packed key
        ep, etp, dispatcher = c.expert_columns()
        rows, inv = _distinct(*cols, ep, etp, dispatcher)
        table = np.array([_shard_costs(*r) for r in rows.tolist()])[inv]
    elif any(int(x.max(initial=0)) >> b for x, b in zip(cols, _BITS, strict=True)):
        # codes too large for the packed key: price this batch's distinct shards without remembering them
        rows, inv = _distinct(*cols)
        table = np.array([_shard_costs(*r) for r in rows.tolist()])[inv]
    else:
        key = np.zeros(c.n, dtype=np.int64)
        for x, b in zip(cols, _BITS, strict=True):
            key = (key << b) | x
        table = _SHARD_TABLE.rows(key, _price_shards)
    return {f: table[:, k] for k, f in enumerate(_SHARD_FIELDS)}


def _price_shards(keys: np.ndarray) -> np.ndarray:
    """Costs of packed shard keys (codes of model, accelerator, training shard; tp, sp, sequence parallel)."""
    out = np.empty((len(keys), len(_SHARD_FIELDS)))
    for r, k in enumerate(int(x) for x in keys):
        parts = []
        for b in reversed(_BITS):
            parts.append(k & ((1 << b) - 1))
            k >>= b
        out[r] = _shard_costs(*reversed(parts))
    return out


def _shard_costs(mc: int, ac: int, tc: int, tp: int, sp: int, seqpar: int, ep: int = 1,
                 etp: int = 1, dispatcher: int = 0) -> tuple[float, ...]:
    """Layer, embedding and head costs of one shard given by its codes (`_OBJECTS`) and split."""
    model, acc = _OBJECTS.objects[mc], _OBJECTS.objects[ac]
    _, mb, seq, prec, stack, recompute, imbalance = _OBJECTS.objects[tc]
    shard = make_shard(model, acc, stack, tp, sp, mb, seq or model.seq_len, prec, bool(seqpar), recompute, ep, etp,
                       imbalance, DISPATCHERS[dispatcher])
    run = acc.sustained()  # the sustained (power-limited) rates of a long training run, as `step_inputs`
    lc = layer_cost(model, run, shard)
    emb, head = end_costs(model, run, shard)
    return tuple(getattr(lc, f) for f in _LC_FIELDS) + (emb.fwd_s, emb.bwd_s, emb.act_bytes, head.fwd_s,
                                                        head.bwd_s, head.act_bytes)


_FIELD_ROWS = register(BoundedMemo(1 << 16))  # (id(fns), id(obj)) -> (obj, row of figures)


def _fields(objs: tuple[Any, ...], idx: np.ndarray, fns: dict[str, Any], dtype: Any) -> dict[str, np.ndarray]:
    """Several figures of each row's object: computed once per object (and remembered while the memo holds it),
    gathered with one index."""
    rows = []
    for o in objs:
        key = (id(fns), id(o))
        hit = _FIELD_ROWS.get(key)
        if hit is None:
            hit = _FIELD_ROWS.put(key, (o, [fn(o) for fn in fns.values()]))
        rows.append(hit[1])
    if len(rows) == 1 or (len(idx) and (idx == idx[0]).all()):
        # one object for the whole batch: its figures are constants, which the phases broadcast
        row = rows[int(idx[0])] if len(idx) else rows[0]
        return {k: v for k, v in zip(fns, row, strict=True)}
    table = np.array(rows, dtype=dtype).reshape(len(objs), len(fns))
    full = table[idx]
    return {k: full[:, j] for j, k in enumerate(fns)}


_TRAINING_INTS = {
    "global_batch": lambda x: x.global_batch, "micro_batch": lambda x: x.micro_batch,
    "seq_tr": lambda x: x.seq_len or 0, "schedule": lambda x: SCHEDULE_CODES[x.schedule],
    "v": lambda x: x.virtual_stages if x.schedule is Schedule.INTERLEAVED else 1,
    "virtual_stages": lambda x: x.virtual_stages, "recompute": lambda x: RECOMPUTE_CODES[x.recompute],
    "dp_overlap": lambda x: x.dp_overlap, "param_gather_overlap": lambda x: x.param_gather_overlap,
    "grad_accum_fusion": lambda x: x.grad_accumulation_fusion,
    "reduce_bytes": lambda x: FP32_GRAD_BYTES if x.grad_reduce_fp32 else GRAD_BYTES,
    "moe_overlap": lambda x: x.moe_overlap, "tp_overlap": lambda x: TP_OVERLAP_CODES[x.tp_comm_overlap],
    "first_layers": lambda x: x.first_stage_layers or 0, "last_layers": lambda x: x.last_stage_layers or 0,
    "z3_units": lambda x: gather_units(x.zero3_gathers), "z3_prefetch": lambda x: x.zero3_prefetch,
    "z3_reshard": lambda x: x.reshard_after_forward, "z3_per_step": lambda x: x.param_gather_per_step,
    "z3_regather": lambda x: regathers_on_recompute(x.zero3_gathers, x.recompute.value == "full"),
    "abpe": lambda x: BYTES_PER_ELEMENT["bf16" if x.precision.value == "fp8" else x.precision.value],
}
_MODEL_INTS = {
    "layers": lambda m: m.layers, "hidden": lambda m: m.hidden, "n_kv_heads": lambda m: m.n_kv_heads,
    "heads": lambda m: m.heads, "ffn": lambda m: m.ffn, "seq_len": lambda m: m.seq_len,
    "token_embedding": lambda m: m.embedding is Embedding.TOKEN,
}
_MODEL_FLOATS = {
    "kv_dim": lambda m: m.kv_dim, "head_dim": lambda m: m.head_size, "q_dim": lambda m: m.q_dim,
    "layer_params": lambda m: m.layer_params,
    "embedding_params": lambda m: m.embedding_params, "head_params": lambda m: m.head_params,
    "tied_extra_params": lambda m: m.vocab * m.hidden if (m.tied_embeddings and m.embedding is Embedding.TOKEN)
    else 0,
}
_ACC_FLOATS = {
    "mem_bw": lambda a: a.achievable_mem_bytes_per_s, "kernel_overhead_s": lambda a: a.kernel_overhead_us * 1e-6,
    "share": lambda a: a.collective_compute_share, "mem_bytes": lambda a: a.mem_bytes,
}


def _as_bool(v: Any) -> Any:
    return v.astype(bool) if isinstance(v, np.ndarray) else bool(v)


def _training(c: StepColumns) -> dict[str, np.ndarray]:
    tr = _fields(c.trainings, c.training, _TRAINING_INTS, np.int64)
    for k in ("dp_overlap", "param_gather_overlap", "grad_accum_fusion", "moe_overlap", "z3_reshard", "z3_per_step",
              "z3_regather"):
        tr[k] = _as_bool(tr[k])
    return tr


def step_inputs_columns(c: StepColumns) -> tuple[StepInputs, dict[str, np.ndarray]]:
    """The inputs of the step phases as columns, and the training columns the checks and results read."""
    tr = _training(c)
    lc = _layer_costs(c)
    models, mi = c.models, c.model
    mint = _fields(models, mi, _MODEL_INTS, np.int64)
    mf = _fields(models, mi, _MODEL_FLOATS, np.float64)
    af = _fields(c.accelerators, c.accelerator, _ACC_FLOATS, np.float64)
    tr["seq"] = np.where(tr["seq_tr"] > 0, tr["seq_tr"], mint["seq_len"])
    tr["heads"], tr["ffn"], tr["mem_bytes"] = mint["heads"], mint["ffn"], af["mem_bytes"]
    hidden = mint["hidden"]
    tokens = tr["micro_batch"] * tr["seq"] // c.sp
    rows, inv = _distinct(c.model, tr["seq"], tr["global_batch"])
    flops = np.array([model_flops(models[m], s, g) for m, s, g in rows.tolist()])[inv]
    x = StepInputs(
        tp=c.tp, sp=c.sp, dp=c.dp, pp=c.pp, zero=c.zero, seqpar=c.sequence_parallel,
        global_batch=tr["global_batch"], micro_batch=tr["micro_batch"], seq=tr["seq"], schedule=tr["schedule"],
        v=tr["v"], recompute=tr["recompute"], dp_overlap=tr["dp_overlap"],
        param_gather_overlap=tr["param_gather_overlap"], grad_accum_fusion=tr["grad_accum_fusion"],
        reduce_bytes=tr["reduce_bytes"], abpe=tr["abpe"],
        layers=mint["layers"], hidden=hidden, kv_dim=mf["kv_dim"], head_dim=mf["head_dim"],
        n_kv_heads=mint["n_kv_heads"], layer_params=mf["layer_params"], embedding_params=mf["embedding_params"],
        head_params=mf["head_params"], tied_extra_params=mf["tied_extra_params"],
        token_embedding=_as_bool(mint["token_embedding"]), mem_bw=af["mem_bw"],
        kernel_overhead_s=af["kernel_overhead_s"], share=af["share"],
        lc_fwd=lc["fwd_s"], lc_bwd=lc["bwd_s"], lc_rec=lc["recompute_s"], attn_fwd=lc["attn_core_fwd_s"],
        attn_bwd=lc["attn_core_bwd_s"], lc_rec_flops=lc["recompute_flops"], lc_wgrad=lc["wgrad_s"],
        lc_wcast=lc["weight_cast_s"],
        act=ActivationBytes(lc["act_bytes"], lc["emb_act"], lc["head_act"],
                            FULL_LAYER_WORKING_BYTES * tokens * hidden / c.tp),
        emb_fwd=lc["emb_fwd"], emb_bwd=lc["emb_bwd"], head_fwd=lc["head_fwd"], head_bwd=lc["head_bwd"],
        model_flops=flops, cp_algo=c.cp_codes(), q_dim=mf["q_dim"],
        first_layers=tr["first_layers"], last_layers=tr["last_layers"],
        tp_overlap=tr["tp_overlap"], g_qkv=lc["qkv_s"], g_proj=lc["proj_s"], g_fc1=lc["fc1_s"], g_fc2=lc["fc2_s"],
        z3_units=tr["z3_units"], z3_prefetch=tr["z3_prefetch"], z3_reshard=tr["z3_reshard"],
        z3_per_step=tr["z3_per_step"], z3_regather=tr["z3_regather"],
        shard=c.shard_group if c.shard_group is not None else 0,
        **_moe_columns(c, tr),
    )
    return x, tr


_MOE_FLOATS = {
    "moe": lambda m: m.moe is not None and m.moe.experts > 1,
    "shared": lambda m: m.moe is not None and m.moe.shared_experts > 0,
    "expert_params": lambda m: m.expert_layer_params,
    "moe_frac": lambda m: m.moe_fraction, "top_k": lambda m: m.moe.top_k if m.moe is not None else 1,
    "capacity": lambda m: m.moe.capacity_factor or math.inf if m.moe is not None else math.inf,
    "experts": lambda m: m.moe.experts if m.moe is not None else 1,
    "expert_ffn": lambda m: m.moe.expert_ffn_hidden if m.moe is not None else 1,
}


def _moe_columns(c: StepColumns, tr: dict[str, Any]) -> dict[str, Any]:
    """The MoE fields of `StepInputs` as columns (none when the batch holds dense models only: their defaults)."""
    if all(m.moe is None for m in c.models):
        return {}
    f = _fields(c.models, c.model, _MOE_FLOATS, np.float64)
    imbalance = np.array([t.moe_imbalance for t in c.trainings])[c.training]
    ep, etp, dispatcher = c.expert_columns()
    tr["experts"], tr["expert_ffn"] = f["experts"], f["expert_ffn"]
    is_moe = _as_bool(f["moe"])
    return {"moe": is_moe, "ep": ep, "etp": np.where(is_moe, etp, 1), "expert_params": f["expert_params"],
            "moe_frac": f["moe_frac"], "shared": _as_bool(f["shared"]), "top_k": f["top_k"],
            "load": np.minimum(imbalance, f["capacity"]),
            "dispatcher": dispatcher, "moe_overlap": tr["moe_overlap"], "experts": f["experts"]}


def priced_here(c: StepColumns, x: StepInputs, tr: dict[str, np.ndarray], failed: np.ndarray) -> np.ndarray:
    """Rows the batch path prices: the checks of `check_config` hold and the fidelity is cosmic's."""
    heads, ffn, kv = tr["heads"], tr["ffn"], x.n_kv_heads
    n_npus = np.prod(c.network.npus, axis=1)
    mbs = tr["global_batch"] // (c.dp * tr["micro_batch"])
    inter = tr["schedule"] == INTERLEAVED
    ok = (c.tp * c.sp * c.dp * c.pp == n_npus) & (heads % c.tp == 0) & ((kv % c.tp == 0) | (c.tp % kv == 0))
    ok &= (ffn % c.tp == 0) & (c.pp <= x.layers) & (failed < 0) & (x.seq % c.sp == 0)
    ok &= tr["global_batch"] % (c.dp * tr["micro_batch"]) == 0
    fewest, total = _stage_extent(x, c.pp)
    ok &= np.where(inter, (fewest >= tr["virtual_stages"]) & ((c.pp == 1) | (mbs % c.pp == 0)),
                   tr["virtual_stages"] == 1)
    fixed = np.asarray((x.first_layers > 0) | (x.last_layers > 0), dtype=bool)
    ok &= np.logical_not(fixed) | ((c.pp > 1) & (fewest >= 1) & (total == x.layers))
    ok &= c.collective.fidelity == FIDELITIES.index("cosmic")
    ok &= (c.cp_codes() != CP_ALGORITHMS.index("a2a")) | (c.sp == 1) | (heads % (c.tp * c.sp) == 0)
    if "experts" in tr:
        ok &= _moe_ok(c, x, tr)
    elif c.ep is not None:
        ok &= c.ep == 1
    ok &= c.network.npus.max(axis=1) < 1 << 20
    if c.shard_group is not None:
        # the HSDP checks of `check_config` (`cosmic.sim.config._check_shard_group`; the fit is in `failed`)
        sg, group = c.shard_group, c.dp * c.sp
        hybrid = (sg > 0) & (sg != group)
        ok &= (sg == 0) | ((group % np.maximum(sg, 1) == 0) & ~(hybrid & (c.zero == 0)))
        if "experts" in tr:
            ok &= ~hybrid | (tr["experts"] <= 1)
    return ok


def _stage_extent(x: StepInputs, pp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The fewest layers a stage holds and the layers all stages hold (`sim.config._check_stages` on columns)."""
    runs = stage_runs(x.layers, pp, x.first_layers, x.last_layers)
    fewest = np.full(np.shape(pp), np.iinfo(np.int64).max, dtype=np.int64)
    total = np.zeros(np.shape(pp), dtype=np.int64)
    for r in runs:
        here = np.asarray(r.count) > 0
        fewest = np.where(here, np.minimum(fewest, r.layers), fewest)
        total = total + np.asarray(r.count) * r.layers
    return fewest, total


def _moe_ok(c: StepColumns, x: StepInputs, tr: dict[str, np.ndarray]) -> np.ndarray:
    """The MoE checks of `check_config` (`cosmic.sim.config._check_moe`) on columns."""
    ep, etp, _ = c.expert_columns()
    moe = np.array([m.moe is not None for m in c.models])[c.model]
    block = c.tp * c.sp * c.dp
    ok = (tr["experts"] % ep == 0) & (tr["expert_ffn"] % etp == 0) & (block % (ep * etp) == 0)
    ok &= ((c.tp == 1) | c.sequence_parallel) & ((tr["experts"] > 1) | (etp == c.tp))
    # pipeline stages outermost in the rank order: no group of degree > 1 after pp
    after_pp = np.zeros(c.n, dtype=bool)
    for g in ("tp", "sp", "dp"):
        later = np.array([o.index(g) > o.index("pp") for o in c.rank_orders])[c.rank_order]
        after_pp |= (getattr(c, g) > 1) & later
    ok &= (c.pp == 1) | ~after_pp
    return np.where(moe, ok, ep == 1)


@dataclass
class BatchResult:
    """The figures of `n` simulated steps as columns (`Result` field names; memory parts in bytes).

    ``ok[i]`` is False where row i was not priced here; `result(i)` gives that row's `Result` (or raises the
    `CosmicError` `simulate` raises), and fills every column of the row with it (``materialise()`` does so for all).
    """

    columns: StepColumns
    ok: np.ndarray
    figures: dict[str, np.ndarray]
    breakdown: dict[str, np.ndarray]
    comm_by_network_dim_s: np.ndarray  # (n, D)
    timed: np.ndarray | None = None  # rows whose step was timed (all priced rows unless time_unfit=False)
    _scalar: dict[int, Result | CosmicError] = field(default_factory=dict)

    def __len__(self) -> int:
        return self.columns.n

    def result(self, i: int) -> Result:
        """Row `i` as a `Result` (the scalar path's for rows not priced here)."""
        if not self.ok[i] or (self.timed is not None and not self.timed[i]):
            got = self._scalar.get(i)
            if got is None:
                got = self._scalar[i] = _scalar(self.columns.config(i))
            if isinstance(got, CosmicError):
                raise got
            return got
        f = self.figures
        return Result(
            step_time_s=float(f["step_time_s"][i]), tokens_per_s=float(f["tokens_per_s"][i]),
            mfu=float(f["mfu"][i]), hfu=float(f["hfu"][i]),
            memory=Memory(*(float(f[k][i]) for k in ("weights_bytes", "gradients_bytes", "optimizer_bytes",
                                                     "activations_bytes"))),
            memory_capacity_bytes=float(f["memory_capacity_bytes"][i]), fits_memory=bool(f["fits_memory"][i]),
            network_cost_usd=float(f["network_cost_usd"][i]), total_bandwidth_gbps=float(f["total_bandwidth_gbps"][i]),
            breakdown={k: float(self.breakdown[k][i])
                       for k in (MOE_BREAKDOWN_KEYS if self.columns.models[self.columns.model[i]].moe is not None
                                 else BREAKDOWN_KEYS)},
            comm_by_network_dim_s=tuple(float(t) for t in self.comm_by_network_dim_s[i]),
            n_npus=int(f["n_npus"][i]), micro_batches=int(f["micro_batches"][i]),
            critical_stage=int(f["critical_stage"][i]), model_flops_per_step=float(f["model_flops_per_step"][i]),
            fidelity="cosmic", evidence=self.evidence(i),
        )

    def evidence(self, i: int) -> Evidence:
        """Row `i`'s evidence (`cosmic.sim.evidence`), computed when asked: the batch's figures never wait on it."""
        c = self.columns
        return evidence_of(c.accelerators[c.accelerator[i]], c.trainings[c.training[i]], int(c.zero[i]),
                           int(c.tp[i]), int(c.pp[i]), int(c.sp[i]), bool(c.sequence_parallel[i]))

    def evidence_columns(self) -> dict[str, np.ndarray]:
        """Every row's evidence as columns (`cosmic.sim.evidence.evidence_columns`), computed when asked."""
        return evidence_columns(self.columns)


def _scalar(cfg: Any) -> Result | CosmicError:
    from cosmic.sim.engine import simulate

    try:
        return simulate(cfg)
    except CosmicError as exc:
        return exc


def communicator_columns(c: StepColumns) -> ColumnCommunicator:
    """The collective coster of the batch path for the rows of `c` (what `simulate_columns` prices with); public
    so that `cosmic.agents` bounds reuse the batch path's own wiring."""
    net, coll = c.network, c.collective
    groups = np.array([[PARALLEL_DIMS.index(g) for g in o] for o in c.rank_orders], dtype=np.int64)
    return ColumnCommunicator(
        topology=net.topology, npus=net.npus, link_bytes_per_s=net.link_bytes_per_s * net.efficiency,
        latency_s=net.latency_s, algorithms=coll.algorithms, chunks=coll.chunks,
        baseline=coll.multidim == MULTIDIMS.index(MultiDim.BASELINE),
        degrees={"tp": c.tp, "sp": c.sp, "dp": c.dp, "pp": c.pp},
        order_groups=groups[c.rank_order], expert=_expert(c), shard=c.shard_group,
    )


def _expert(c: StepColumns) -> dict[str, np.ndarray] | None:
    """The expert degrees for the communicator when the batch holds a MoE model (dense rows get 1 and 1)."""
    moe = np.array([m.moe is not None for m in c.models])[c.model]
    if not moe.any():
        return None
    ep, etp, _ = c.expert_columns()
    return {"ep": np.where(moe, ep, 1), "etp": np.where(moe, etp, 1), "moe": moe}


def simulate_columns(c: StepColumns, *, time_unfit: bool = True) -> BatchResult:
    """Simulate every configuration of `c` (see the module docstring).

    With ``time_unfit=False`` the step is timed only for configurations whose memory fits the device (the others
    keep their memory figures and NaN times; ``BatchResult.timed`` tells which), as exhaustive search wants.

    Example:
        >>> import cosmic, numpy as np
        >>> from cosmic.psa import load_psa
        >>> from cosmic.sim.columns import StepColumns
        >>> space = load_psa("cosmic-s1-gpt3-175b-full")
        >>> cfgs = [space.decode(p) for p in space.sample(np.random.default_rng(0), 64)]
        >>> b = simulate_columns(StepColumns.from_configs(cfgs))
        >>> all(b.result(i) == cosmic.simulate(cfg) for i, cfg in enumerate(cfgs))
        True
    """
    x, tr = step_inputs_columns(c)
    comm = communicator_columns(c)
    ok = priced_here(c, x, tr, comm.failed)
    n = c.n
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        p = plan(x)
        total_mem = p.memory.total_bytes
        timed = ok if time_unfit else ok & (total_mem <= tr["mem_bytes"])
        lifo = c.collective.scheduling == SCHEDULINGS.index("LIFO")
        chunks = c.collective.chunks
        idx: Any = slice(None) if timed.all() else np.flatnonzero(timed)
        st = None
        if timed.all():
            st = run_step(x, p, comm, lifo, chunks)
        elif timed.any():  # a batch with nothing to time (every point rejected or unfit) prices no step
            st = run_step(take(x, idx, n), take(p, idx, n), comm.take(idx), lifo[idx], chunks[idx])
        step = np.full(n, np.nan)
        crit = np.full(n, -1, dtype=np.int64)
        per_dim = np.full((n, comm.n_dims), np.nan)
        bd = {k: np.full(n, np.nan) for k in MOE_BREAKDOWN_KEYS}
        if st is not None:
            step[idx], crit[idx] = st.step_s, st.critical_stage
            for d, t in enumerate(st.per_dim_s):
                per_dim[idx, d] = t
            bd = {}
            for k, v in st.breakdown.items():
                bd[k] = np.full(n, np.nan)
                bd[k][idx] = v
        figs = _figures(c, x, p, step, tr)
    figs["critical_stage"] = crit
    return BatchResult(c, ok, figs, bd, per_dim, timed=timed)


def _figures(c: StepColumns, x: StepInputs, p: Plan, step: np.ndarray, tr: dict[str, np.ndarray]) -> dict[str, Any]:
    accs, ai = c.accelerators, c.accelerator
    peak = np.array([[a.peak_flop_per_s(t.precision.value) for t in c.trainings] for a in accs])[ai, c.training]
    cap = tr["mem_bytes"]
    n_npus = c.tp * c.sp * c.dp * c.pp
    peak_total = step * n_npus * peak
    mem = p.memory
    total_mem = mem.weights_bytes + mem.gradients_bytes + mem.optimizer_bytes + mem.activations_bytes
    net = c.network
    cost, bw = figures([net.topology[:, d] for d in range(net.npus.shape[1])],
                       [net.npus[:, d] for d in range(net.npus.shape[1])],
                       [net.link_bytes_per_s[:, d] for d in range(net.npus.shape[1])])
    return {
        "step_time_s": step, "tokens_per_s": tr["global_batch"] * tr["seq"] / step,
        "mfu": x.model_flops / peak_total, "hfu": (x.model_flops + p.recompute_flops) / peak_total,
        "weights_bytes": mem.weights_bytes, "gradients_bytes": mem.gradients_bytes,
        "optimizer_bytes": mem.optimizer_bytes, "activations_bytes": mem.activations_bytes,
        "memory_bytes": total_mem, "memory_capacity_bytes": cap + np.zeros(c.n),
        "fits_memory": total_mem <= cap,
        "network_cost_usd": cost, "total_bandwidth_gbps": bw, "n_npus": n_npus, "micro_batches": p.micro_batches,
        "model_flops_per_step": x.model_flops,
    }


__all__ = ["BatchResult", "communicator_columns", "priced_here", "simulate_columns", "step_inputs_columns"]
