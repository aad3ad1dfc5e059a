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

from cosmic.collective.columns import ColumnCommunicator
from cosmic.errors import CosmicError
from cosmic.network.cost import figures
from cosmic.sim.columns import FIDELITIES, MULTIDIMS, SCHEDULINGS, StepColumns
from cosmic.sim.engine import (
    RECOMPUTE_CODES,
    SCHEDULE_CODES,
    model_flops,
    run_step,
)
from cosmic.sim.result import BREAKDOWN_KEYS, Memory, Result
from cosmic.sim.step import Plan, StepInputs, plan
from cosmic.units import BYTES_PER_ELEMENT
from cosmic.workload.layers import LayerShard, end_costs, layer_cost
from cosmic.workload.memory import (
    FP32_GRAD_BYTES,
    FULL_LAYER_WORKING_BYTES,
    GRAD_BYTES,
    INTERLEAVED,
    ActivationBytes,
)
from cosmic.workload.model import Embedding
from cosmic.workload.parallel import PARALLEL_DIMS
from cosmic.workload.schemas import Schedule

_LC_FIELDS = ("fwd_s", "bwd_s", "recompute_s", "attn_core_fwd_s", "attn_core_bwd_s", "recompute_flops", "act_bytes")


def _table(objs: tuple[Any, ...], idx: np.ndarray, fn: Any, dtype: Any = np.float64) -> np.ndarray:
    """`fn(obj)` of each row's object (computed once per distinct object)."""
    return np.array([fn(o) for o in objs], dtype=dtype)[idx]


def _distinct(*cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(distinct rows, inverse index) of integer columns."""
    stacked = np.stack([np.asarray(c, dtype=np.int64) for c in cols], axis=1)
    rows, inv = np.unique(stacked, axis=0, return_inverse=True)
    return rows, inv.reshape(-1)


def _layer_costs(c: StepColumns) -> dict[str, np.ndarray]:
    """Layer, embedding and head costs per row, priced once per distinct layer shard."""
    rows, inv = _distinct(c.model, c.accelerator, c.training, c.tp, c.sp, c.sequence_parallel)
    out = {f: np.empty(len(rows)) for f in _LC_FIELDS + ("emb_fwd", "emb_bwd", "emb_act", "head_fwd", "head_bwd",
                                                          "head_act")}
    for r, (mi, ai, ti, tp, sp, seqpar) in enumerate(rows.tolist()):
        model, acc, tr = c.models[mi], c.accelerators[ai], c.trainings[ti]
        shard = LayerShard(tp, sp, tr.micro_batch, tr.seq_len or model.seq_len, tr.precision.value, bool(seqpar),
                           tr.flash_attention, tr.recompute, tr.attention_kernel)
        lc = layer_cost(model, acc, shard)
        emb, head = end_costs(model, acc, shard)
        for f in _LC_FIELDS:
            out[f][r] = getattr(lc, f)
        for name, ec in (("emb", emb), ("head", head)):
            out[f"{name}_fwd"][r], out[f"{name}_bwd"][r], out[f"{name}_act"][r] = ec.fwd_s, ec.bwd_s, ec.act_bytes
    return {k: v[inv] for k, v in out.items()}


def _training(c: StepColumns) -> dict[str, np.ndarray]:
    t, i = c.trainings, c.training

    def col(fn: Any, dtype: Any = np.int64) -> np.ndarray:
        return _table(t, i, fn, dtype)

    seq_tr = col(lambda x: x.seq_len or 0)
    return {
        "global_batch": col(lambda x: x.global_batch), "micro_batch": col(lambda x: x.micro_batch),
        "seq": np.where(seq_tr > 0, seq_tr, _table(c.models, c.model, lambda m: m.seq_len, np.int64)),
        "schedule": col(lambda x: SCHEDULE_CODES[x.schedule]),
        "v": col(lambda x: x.virtual_stages if x.schedule is Schedule.INTERLEAVED else 1),
        "virtual_stages": col(lambda x: x.virtual_stages),
        "recompute": col(lambda x: RECOMPUTE_CODES[x.recompute]),
        "dp_overlap": col(lambda x: x.dp_overlap, bool), "param_gather_overlap": col(lambda x: x.param_gather_overlap,
                                                                                      bool),
        "grad_accum_fusion": col(lambda x: x.grad_accumulation_fusion, bool),
        "reduce_bytes": col(lambda x: FP32_GRAD_BYTES if x.grad_reduce_fp32 else GRAD_BYTES),
        "abpe": col(lambda x: BYTES_PER_ELEMENT["bf16" if x.precision.value == "fp8" else x.precision.value]),
    }


def step_inputs_columns(c: StepColumns) -> tuple[StepInputs, dict[str, np.ndarray]]:
    """The inputs of the step phases as columns, and the training columns the checks and results read."""
    tr = _training(c)
    lc = _layer_costs(c)
    models, mi, accs, ai = c.models, c.model, c.accelerators, c.accelerator

    def mcol(fn: Any, dtype: Any = np.float64) -> np.ndarray:
        return _table(models, mi, fn, dtype)

    def acol(fn: Any) -> np.ndarray:
        return _table(accs, ai, fn)

    hidden = mcol(lambda m: m.hidden, np.int64)
    token = mcol(lambda m: m.embedding is Embedding.TOKEN, bool)
    tokens = tr["micro_batch"] * tr["seq"] // c.sp
    rows, inv = _distinct(c.model, tr["seq"], tr["global_batch"])
    flops = np.array([model_flops(models[m], s, g) for m, s, g in rows.tolist()])[inv]
    x = StepInputs(
        tp=c.tp, sp=c.sp, dp=c.dp, pp=c.pp, zero=c.zero, seqpar=c.sequence_parallel,
        global_batch=tr["global_batch"], micro_batch=tr["micro_batch"], seq=tr["seq"], schedule=tr["schedule"],
        v=tr["v"], recompute=tr["recompute"], dp_overlap=tr["dp_overlap"],
        param_gather_overlap=tr["param_gather_overlap"], grad_accum_fusion=tr["grad_accum_fusion"],
        reduce_bytes=tr["reduce_bytes"], abpe=tr["abpe"],
        layers=mcol(lambda m: m.layers, np.int64), hidden=hidden, kv_dim=mcol(lambda m: m.kv_dim),
        head_dim=mcol(lambda m: m.head_dim), n_kv_heads=mcol(lambda m: m.n_kv_heads, np.int64),
        layer_params=mcol(lambda m: m.layer_params), embedding_params=mcol(lambda m: m.embedding_params),
        head_params=mcol(lambda m: m.head_params),
        tied_extra_params=mcol(lambda m: m.vocab * m.hidden if (m.tied_embeddings and
                                                                m.embedding is Embedding.TOKEN) else 0),
        token_embedding=token, mem_bw=acol(lambda a: a.achievable_mem_bytes_per_s),
        kernel_overhead_s=acol(lambda a: a.kernel_overhead_us * 1e-6), share=acol(lambda a: a.collective_compute_share),
        lc_fwd=lc["fwd_s"], lc_bwd=lc["bwd_s"], lc_rec=lc["recompute_s"], attn_fwd=lc["attn_core_fwd_s"],
        attn_bwd=lc["attn_core_bwd_s"], lc_rec_flops=lc["recompute_flops"],
        act=ActivationBytes(lc["act_bytes"], lc["emb_act"], lc["head_act"],
                            FULL_LAYER_WORKING_BYTES * tokens * hidden / c.tp),
        emb_fwd=lc["emb_fwd"], emb_bwd=lc["emb_bwd"], head_fwd=lc["head_fwd"], head_bwd=lc["head_bwd"],
        model_flops=flops,
    )
    return x, tr


def priced_here(c: StepColumns, x: StepInputs, tr: dict[str, np.ndarray], failed: np.ndarray) -> np.ndarray:
    """Rows the batch path prices: the checks of `check_config` hold and the fidelity is cosmic's."""
    models, mi = c.models, c.model
    heads = _table(models, mi, lambda m: m.heads, np.int64)
    kv = x.n_kv_heads
    ffn = _table(models, mi, lambda m: m.ffn, np.int64)
    n_npus = np.prod(c.network.npus, axis=1)
    mbs = tr["global_batch"] // (c.dp * tr["micro_batch"])
    inter = tr["schedule"] == INTERLEAVED
    ok = (c.tp * c.sp * c.dp * c.pp == n_npus) & (heads % c.tp == 0) & ((kv % c.tp == 0) | (c.tp % kv == 0))
    ok &= (ffn % c.tp == 0) & (c.pp <= x.layers) & (failed < 0) & (x.seq % c.sp == 0)
    ok &= tr["global_batch"] % (c.dp * tr["micro_batch"]) == 0
    ok &= np.where(inter, (x.layers % (c.pp * tr["virtual_stages"]) == 0) & ((c.pp == 1) | (mbs % c.pp == 0)),
                   tr["virtual_stages"] == 1)
    ok &= c.collective.fidelity == FIDELITIES.index("cosmic")
    ok &= c.network.npus.max(axis=1) < 1 << 20
    return ok


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
    _scalar: dict[int, Result | CosmicError] = field(default_factory=dict)

    def __len__(self) -> int:
        return self.columns.n

    def result(self, i: int) -> Result:
        """Row `i` as a `Result` (the scalar path's for rows not priced here)."""
        if not self.ok[i]:
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
            breakdown={k: float(self.breakdown[k][i]) for k in BREAKDOWN_KEYS},
            comm_by_network_dim_s=tuple(float(t) for t in self.comm_by_network_dim_s[i]),
            n_npus=int(f["n_npus"][i]), micro_batches=int(f["micro_batches"][i]),
            critical_stage=int(f["critical_stage"][i]), model_flops_per_step=float(f["model_flops_per_step"][i]),
            fidelity="cosmic",
        )


def _scalar(cfg: Any) -> Result | CosmicError:
    from cosmic.sim.engine import simulate

    try:
        return simulate(cfg)
    except CosmicError as exc:
        return exc


def _communicator(c: StepColumns) -> ColumnCommunicator:
    net, coll = c.network, c.collective
    groups = np.array([[PARALLEL_DIMS.index(g) for g in o] for o in c.rank_orders], dtype=np.int64)
    return ColumnCommunicator(
        topology=net.topology, npus=net.npus, link_bytes_per_s=net.link_bytes_per_s * net.efficiency,
        latency_s=net.latency_s, algorithms=coll.algorithms, chunks=coll.chunks,
        baseline=coll.multidim == MULTIDIMS.index(MULTIDIMS[0]) if MULTIDIMS[0].value == "baseline" else
        coll.multidim == 1, degrees={"tp": c.tp, "sp": c.sp, "dp": c.dp, "pp": c.pp},
        order_groups=groups[c.rank_order],
    )


def simulate_columns(c: StepColumns) -> BatchResult:
    """Simulate every configuration of `c` (see the module docstring).

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
    comm = _communicator(c)
    ok = priced_here(c, x, tr, comm.failed)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        p = plan(x)
        lifo = c.collective.scheduling == SCHEDULINGS.index("LIFO")
        st = run_step(x, p, comm, lifo, c.collective.chunks)
        figs = _figures(c, x, p, st.step_s, tr)
    figs["critical_stage"] = np.asarray(st.critical_stage) + np.zeros(c.n, dtype=np.int64)
    per_dim = np.stack([np.broadcast_to(t, (c.n,)) for t in st.per_dim_s], axis=1)
    bd = {k: np.broadcast_to(v, (c.n,)).astype(np.float64) for k, v in st.breakdown.items()}
    return BatchResult(c, ok, figs, bd, per_dim)


def _figures(c: StepColumns, x: StepInputs, p: Plan, step: np.ndarray, tr: dict[str, np.ndarray]) -> dict[str, Any]:
    accs, ai = c.accelerators, c.accelerator
    peak = np.array([[a.peak_flop_per_s(t.precision.value) for t in c.trainings] for a in accs])[ai, c.training]
    cap = _table(accs, ai, lambda a: a.mem_bytes)
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
        "memory_bytes": total_mem, "memory_capacity_bytes": cap, "fits_memory": total_mem <= cap,
        "network_cost_usd": cost, "total_bandwidth_gbps": bw, "n_npus": n_npus, "micro_batches": p.micro_batches,
        "model_flops_per_step": x.model_flops,
    }


__all__ = ["simulate_columns", "BatchResult", "step_inputs_columns", "math"]
