"""The knobs a PSA may search: their stack, how their values are spelled, how they read and write a config.

Every knob has a canonical value type (int, float, bool, a StrEnum or a tuple of names). Per-dimension knobs hold a
tuple with one value per network dimension. A knob that a PSA neither searches nor derives keeps the base
configuration's value, read by :func:`base_values`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cosmic.collective.algorithms import Algorithm, Collective
from cosmic.collective.model import MultiDim
from cosmic.network.topology import Topology
from cosmic.sim.columns import CP_ALGORITHMS, DISPATCHERS
from cosmic.sim.config import (
    Recompute,
    Schedule,
    Scheduling,
    SystemConfig,
    rank_order_names,
)
from cosmic.units import GB, GIB, TFLOP

STACKS: tuple[str, ...] = ("workload", "collective", "network", "compute")


def _int(v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or int(v) != v:
        raise ValueError(f"expected an integer, got {v!r}")
    return int(v)


def _pos_int(v: Any) -> int:
    i = _int(v)
    if i < 1:
        raise ValueError(f"expected a positive integer, got {v!r}")
    return i


def _pos_float(v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not (v > 0) or v != v or v == float("inf"):
        raise ValueError(f"expected a positive number, got {v!r}")
    return float(v)


def _nonneg_float(v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not (v >= 0) or v == float("inf"):
        raise ValueError(f"expected a non-negative number, got {v!r}")
    return float(v)


def _bool01(v: Any) -> int:
    if v in (0, 1, True, False):
        return int(v)
    raise ValueError(f"expected 0 or 1, got {v!r}")


def _bool(v: Any) -> bool:
    if isinstance(v, bool) or v in (0, 1):
        return bool(v)
    raise ValueError(f"expected true or false, got {v!r}")


def _zero(v: Any) -> int:
    i = _int(v)
    if not 0 <= i <= 3:
        raise ValueError(f"ZeRO stage must be 0..3, got {v!r}")
    return i


def _enum(cls: Any) -> Callable[[Any], Any]:
    def parse(v: Any) -> Any:
        try:
            return cls(v)
        except ValueError:
            allowed = ", ".join(m.value for m in cls)
            raise ValueError(f"{v!r} is not one of {allowed}") from None

    return parse


def _non_neg_int(v: Any) -> int:
    i = _int(v)
    if i < 0:
        raise ValueError(f"expected a non-negative integer, got {v!r}")
    return i


TP_COMM_OVERLAPS = ("off", "userbuffers", "async_tp")
"""`training.tp_comm_overlap` values, in code order (`cosmic.sim.step.TP_OVERLAP_CODES`)."""


def _tp_comm_overlap(v: Any) -> str:
    if v in TP_COMM_OVERLAPS:
        return str(v)
    raise ValueError(f"{v!r} is not one of {', '.join(TP_COMM_OVERLAPS)}")


def _dispatcher(v: Any) -> str:
    if v in DISPATCHERS:
        return str(v)
    raise ValueError(f"{v!r} is not one of {', '.join(DISPATCHERS)}")


def _cp_algorithm(v: Any) -> str:
    if v in CP_ALGORITHMS:
        return str(v)
    raise ValueError(f"{v!r} is not one of {', '.join(CP_ALGORITHMS)}")


def _rank_order(v: Any) -> tuple[str, ...]:
    if isinstance(v, str):
        v = [x.strip() for x in v.split(",")]
    if not isinstance(v, (list, tuple)):
        raise ValueError(f"expected a rank order like 'dp,tp,sp,pp', got {v!r}")
    return rank_order_names(v)


@dataclass(frozen=True)
class KnobDef:
    """One searchable knob.

    Attributes:
        name: the name used in PSA files and constraints.
        stack: workload, collective, network or compute.
        per_dim: whether it has one value per network dimension.
        parse: turns a YAML value into the canonical value (raises ValueError).
        kind: knobs of the same kind can be copied onto one another by a derived `copy` rule.
        doc: one line for `cosmic psa show`.
    """

    name: str
    stack: str
    per_dim: bool
    parse: Callable[[Any], Any]
    kind: str
    doc: str


_DEFS = [
    KnobDef("dp", "workload", False, _pos_int, "degree", "data-parallel degree"),
    KnobDef("tp", "workload", False, _pos_int, "degree", "tensor-parallel degree"),
    KnobDef("pp", "workload", False, _pos_int, "degree", "pipeline-parallel degree"),
    KnobDef("sp", "workload", False, _pos_int, "degree", "sequence (context) parallel degree"),
    KnobDef("weight_sharded", "workload", False, _bool01, "weight_sharded", "1: ZeRO-3 / FSDP, 0: no sharding"),
    KnobDef("zero", "workload", False, _zero, "zero", "ZeRO stage 0..3"),
    KnobDef("shard_group", "workload", False, _non_neg_int, "shard_group",
            "HSDP: ranks of the DP x SP group that shard the ZeRO states (0: all of them); replicas across"),
    KnobDef("micro_batch", "workload", False, _pos_int, "micro_batch", "sequences per micro-batch"),
    KnobDef("schedule", "workload", False, _enum(Schedule), "schedule", "pipeline schedule"),
    KnobDef("recompute", "workload", False, _enum(Recompute), "recompute", "activation recomputation"),
    KnobDef("sequence_parallel", "workload", False, _bool, "bool", "Megatron sequence parallelism in TP"),
    KnobDef("rank_order", "workload", False, _rank_order, "rank_order", "parallel dims, innermost first"),
    KnobDef("ep", "workload", False, _pos_int, "expert_degree", "expert-parallel degree (MoE)"),
    KnobDef("etp", "workload", False, _non_neg_int, "expert_degree",
            "expert tensor-parallel degree (MoE); 0 in a base means 'follows tp'"),
    KnobDef("moe_dispatcher", "workload", False, _dispatcher, "moe_dispatcher",
            "MoE token dispatcher: alltoall or allgather"),
    KnobDef("cp_algorithm", "workload", False, _cp_algorithm, "cp_algorithm",
            "context-parallel K/V exchange: p2p (ring), allgather or a2a (Ulysses)"),
    KnobDef("moe_overlap", "workload", False, _bool, "bool", "overlap MoE dispatch/combine with compute"),
    KnobDef("tp_comm_overlap", "workload", False, _tp_comm_overlap, "tp_comm_overlap",
            "TP communication overlap under sequence parallelism: off, userbuffers or async_tp"),
    KnobDef("all_reduce", "collective", True, _enum(Algorithm), "algorithm", "all-reduce algorithm"),
    KnobDef("all_gather", "collective", True, _enum(Algorithm), "algorithm", "all-gather algorithm"),
    KnobDef("reduce_scatter", "collective", True, _enum(Algorithm), "algorithm", "reduce-scatter algorithm"),
    KnobDef("all_to_all", "collective", True, _enum(Algorithm), "algorithm", "all-to-all algorithm"),
    KnobDef("chunks", "collective", False, _pos_int, "chunks", "chunks per collective"),
    KnobDef("scheduling", "collective", False, _enum(Scheduling), "scheduling", "collective scheduling policy"),
    KnobDef("multidim", "collective", False, _enum(MultiDim), "multidim", "multi-dimensional collective strategy"),
    KnobDef("active_chunks", "collective", False, _pos_int, "active_chunks", "chunks in flight per dimension"),
    KnobDef("topology", "network", True, _enum(Topology), "topology", "topology of each dimension"),
    KnobDef("npus", "network", True, _pos_int, "npus", "NPUs of each dimension"),
    KnobDef("link_gibps", "network", True, _pos_float, "bw_gib", "per-link bandwidth, GB/s with GB = 2^30 B"),
    KnobDef("link_gbps", "network", True, _pos_float, "bw_gb", "per-link bandwidth, GB/s with GB = 10^9 B"),
    KnobDef(
        "npu_bandwidth_gibps", "network", True, _pos_float, "bw_gib",
        "bandwidth per NPU into a dimension, GB/s with GB = 2^30 B (split over its links)",
    ),
    KnobDef(
        "npu_bandwidth_gbps", "network", True, _pos_float, "bw_gb",
        "bandwidth per NPU into a dimension, GB/s with GB = 10^9 B (split over its links)",
    ),
    KnobDef("latency_ns", "network", True, _nonneg_float, "latency", "per-hop latency of each dimension, ns"),
    KnobDef("peak_tflops", "compute", False, _pos_float, "peak", "peak TFLOP/s at the training precision"),
    KnobDef("mem_gb", "compute", False, _pos_float, "mem_gb", "memory capacity per accelerator, GB"),
    KnobDef("mem_bw_gbps", "compute", False, _pos_float, "mem_bw", "memory bandwidth per accelerator, GB/s"),
]

KNOBS: dict[str, KnobDef] = {k.name: k for k in _DEFS}
ALGORITHM_KNOBS: tuple[str, ...] = tuple(c.value for c in Collective)
PARALLEL_KNOBS = frozenset({"dp", "tp", "pp", "sp", "zero", "weight_sharded", "sequence_parallel", "rank_order",
                            "ep", "etp", "moe_dispatcher", "cp_algorithm", "shard_group"})
TRAINING_KNOBS = frozenset({"micro_batch", "schedule", "recompute", "moe_overlap", "tp_comm_overlap"})
COLLECTIVE_KNOBS = frozenset({*ALGORITHM_KNOBS, "chunks", "scheduling", "multidim", "active_chunks"})
NETWORK_KNOBS = frozenset(
    {"topology", "npus", "link_gibps", "link_gbps", "npu_bandwidth_gibps", "npu_bandwidth_gbps", "latency_ns"}
)
COMPUTE_KNOBS = frozenset({"peak_tflops", "mem_gb", "mem_bw_gbps"})


def base_values(cfg: SystemConfig) -> dict[str, Any]:
    """The value of every knob in `cfg` (per-dimension knobs as tuples)."""
    par, tr, col, acc = cfg.parallel, cfg.training, cfg.collective, cfg.accelerator
    dims = cfg.network.dims
    topologies = tuple(d.topology for d in dims)
    v: dict[str, Any] = {
        "dp": par.dp,
        "tp": par.tp,
        "pp": par.pp,
        "sp": par.sp,
        "zero": par.zero,
        "weight_sharded": 1 if par.zero == 3 else 0,
        "sequence_parallel": par.sequence_parallel,
        "rank_order": tuple(par.rank_order),
        "ep": par.ep,
        "shard_group": par.shard_group or 0,  # 0: the whole DP x SP group
        "etp": 0 if par.etp is None else par.etp,  # 0: the expert TP follows tp (ParallelConfig.expert_tp)
        "moe_dispatcher": par.moe_dispatcher,
        "cp_algorithm": par.cp_algorithm,
        "moe_overlap": tr.moe_overlap,
        "tp_comm_overlap": tr.tp_comm_overlap,
        "micro_batch": tr.micro_batch,
        "schedule": tr.schedule,
        "recompute": tr.recompute,
        "chunks": col.chunks,
        "scheduling": col.scheduling,
        "multidim": col.multidim,
        "active_chunks": col.active_chunks,
        "topology": topologies,
        "npus": tuple(d.npus for d in dims),
        "link_gibps": tuple(d.link_bytes_per_s / GIB for d in dims),
        "link_gbps": tuple(d.link_bytes_per_s / GB for d in dims),
        "npu_bandwidth_gibps": tuple(d.link_bytes_per_s * d.links_per_npu / GIB for d in dims),
        "npu_bandwidth_gbps": tuple(d.link_bytes_per_s * d.links_per_npu / GB for d in dims),
        "latency_ns": tuple(d.latency_ns for d in dims),
        "peak_tflops": acc.peak_flop_per_s(tr.precision.value) / TFLOP,
        "mem_gb": acc.mem_gb,
        "mem_bw_gbps": acc.mem_bw_gbps,
    }
    for kind in Collective:
        v[kind.value] = col.algorithms(kind, topologies)
    return v


def constants(cfg: SystemConfig) -> dict[str, Any]:
    """Names a constraint may use besides knobs: fixed facts of the base configuration and enum spellings."""
    m = cfg.model
    c: dict[str, Any] = {
        "n_npus": cfg.network.n_npus,
        "n_dims": len(cfg.network.dims),
        "heads": m.heads,
        "kv_heads": m.n_kv_heads,
        "layers": m.layers,
        "hidden": m.hidden,
        "ffn_hidden": m.ffn,
        "seq_len": cfg.seq_len,
        "global_batch": cfg.training.global_batch,
        "experts": m.moe.experts if m.moe is not None else 1,
        "expert_ffn_hidden": m.moe.expert_ffn_hidden if m.moe is not None else m.ffn,
    }
    for t in Topology:
        c[t.value] = t.value
    for s in Scheduling:
        c[s.value] = s.value
    return c
