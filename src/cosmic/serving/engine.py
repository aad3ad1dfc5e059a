"""`serve(config)`: simulate a serving deployment request by request.

The requests (`cosmic.workload.requests`) are dealt round-robin to the lanes of the replicas (Vidur's round-robin
global scheduler; a replica with PP has one lane per stage). Colocated replicas prefill and decode; disaggregated
ones prefill on the prefill pool, move each prompt's KV cache to the decode pool over the network, and decode
there. Each lane runs its own iteration loop (`cosmic.serving.loop`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from cosmic.collective.communicator import Communicator
from cosmic.network.cost import network_cost_usd
from cosmic.serving.config import SERVE_ORDER, ServingConfig, replica_degrees
from cosmic.serving.cost import ReplicaCost
from cosmic.serving.loop import COLOCATED, DECODE, PREFILL, Lane, LaneRules
from cosmic.serving.result import HOURS_PER_YEAR, Latencies, ServingResult
from cosmic.workload.requests import Requests, generate
from cosmic.workload.serving import Layout


def replica_cost(cfg: ServingConfig, layout: Layout) -> ReplicaCost:
    """The iteration costs of `layout` on `cfg`'s network."""
    degrees = replica_degrees(layout, cfg.network.n_npus)
    comm = Communicator(cfg.network, cfg.collective, degrees, SERVE_ORDER)
    return ReplicaCost(cfg.model, cfg.accelerator, layout, cfg.serving, comm)


def lane_rules(cost: ReplicaCost, mode: str) -> LaneRules:
    sch = cost.spec.scheduler
    return LaneRules(mode=mode, static=sch.policy == "static", max_seqs=cost.lane_max_seqs,
                     budget=sch.max_num_batched_tokens, chunked=sch.chunked_prefill,
                     decode_first=sch.priority == "decode", blocks=cost.lane_blocks,
                     block_size=cost.spec.kv_cache.block_size)


def run_pool(cost: ReplicaCost, count: int, mode: str, arrival_s: np.ndarray, context: np.ndarray,
             tokens: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(first token, finish, refused) of requests dealt round-robin (in arrival order) to `count` replicas."""
    n = len(arrival_s)
    first, finish, dropped = np.full(n, np.nan), np.full(n, np.nan), np.zeros(n, dtype=bool)
    order = np.argsort(arrival_s, kind="stable")
    lanes = count * cost.lanes
    rules = lane_rules(cost, mode)
    for k in range(lanes):
        sel = order[k::lanes]
        if not len(sel):
            continue
        lane = Lane(cost, rules, arrival_s[sel], context[sel], tokens[sel]).run()
        first[sel], finish[sel], dropped[sel] = lane.first_s, lane.finish_s, lane.dropped
    return first, finish, dropped


def timeline(cfg: ServingConfig, reqs: Requests) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(first-token time, finish time, refused) of every request."""
    spec = cfg.serving
    if spec.disaggregation is None:
        assert spec.replicas is not None
        cost = replica_cost(cfg, spec.replicas)
        return run_pool(cost, spec.replicas.count, COLOCATED, reqs.arrival_s, reqs.input_tokens, reqs.output_tokens)
    dis = spec.disaggregation
    pc, dc = replica_cost(cfg, dis.prefill), replica_cost(cfg, dis.decode)
    ones = np.ones(len(reqs), dtype=np.int64)
    first, _, dropped = run_pool(pc, dis.prefill.count, PREFILL, reqs.arrival_s, reqs.input_tokens, ones)
    finish = first.copy()
    more = ~dropped & (reqs.output_tokens > 1)
    if more.any():
        moved = np.zeros(int(more.sum())) if dis.kv_transfer == "free" else pc.kv_transfer_s(reqs.input_tokens[more])
        _, fin, drop2 = run_pool(dc, dis.decode.count, DECODE, first[more] + moved, reqs.input_tokens[more],
                                 reqs.output_tokens[more] - 1)
        finish[more] = fin
        dropped[np.flatnonzero(more)[drop2]] = True
    return first, finish, dropped


def serve(cfg: ServingConfig | str | Path) -> ServingResult:
    """Simulate `cfg` (a `ServingConfig`, or a path to its YAML)."""
    if not isinstance(cfg, ServingConfig):
        from cosmic.serving.config import load_serving_config

        cfg = load_serving_config(cfg)
    spec = cfg.serving
    reqs = generate(spec.workload)
    costs = {k: replica_cost(cfg, lay) for k, lay in spec.layouts.items()}
    notes = [f"{k}: weights and activations leave no room for the KV cache" for k, c in costs.items()
             if not c.memory.fits]
    if notes:
        return _unfit(cfg, costs, len(reqs), tuple(notes))
    first, finish, dropped = timeline(cfg, reqs)
    return summarise(cfg, reqs, first, finish, dropped, costs)


def summarise(cfg: ServingConfig, reqs: Requests, first: np.ndarray, finish: np.ndarray, dropped: np.ndarray,
              costs: dict[str, ReplicaCost]) -> ServingResult:
    spec = cfg.serving
    done = ~dropped & np.isfinite(finish)
    ttft = np.where(done, first - reqs.arrival_s, np.nan)
    e2e = np.where(done, finish - reqs.arrival_s, np.nan)
    multi = done & (reqs.output_tokens > 1)
    tpot = np.full(len(reqs), np.nan)
    tpot[multi] = (finish[multi] - first[multi]) / (reqs.output_tokens[multi] - 1)
    span = float(np.max(finish[done]) - np.min(reqs.arrival_s)) if done.any() else float("nan")
    good = done & (ttft <= spec.slo.ttft_s) & (~multi | (tpot <= spec.slo.tpot_s))
    inp, outp = float(reqs.input_tokens[done].sum()), float(reqs.output_tokens[done].sum())
    lat = Latencies(ttft, tpot, e2e)
    net_usd = network_cost_usd(cfg.network)
    per_h = _usd_per_hour(cfg, net_usd)
    tok_h = (inp + outp) / span * 3600 if span > 0 else 0.0
    out_h = outp / span * 3600 if span > 0 else 0.0
    notes = [] if not dropped.any() else [f"{int(dropped.sum())} requests refused (longer than the KV cache or the "
                                          "token budget)"]
    if cfg.accelerator.usd_per_hour is None:
        notes.append(f"{cfg.accelerator.name} has no $/device-hour in the catalog: cost counts the network only")
    return ServingResult(
        requests=len(reqs), completed=int(done.sum()), refused=int(dropped.sum()), duration_s=span,
        requests_per_s=done.sum() / span if span > 0 else 0.0, input_tokens_per_s=inp / span if span > 0 else 0.0,
        output_tokens_per_s=outp / span if span > 0 else 0.0,
        goodput_requests_per_s=good.sum() / span if span > 0 else 0.0,
        slo_attainment=float(good.sum() / len(reqs)), latency=lat.percentiles(),
        mean_ttft_s=float(np.nanmean(ttft)) if done.any() else float("nan"),
        mean_tpot_s=float(np.nanmean(tpot)) if multi.any() else float("nan"),
        n_npus=cfg.network.n_npus, memory=_memory(costs), fits_memory=True,
        memory_capacity_bytes=cfg.accelerator.mem_bytes, network_cost_usd=net_usd, usd_per_hour=per_h,
        usd_per_million_tokens=per_h / tok_h * 1e6 if tok_h > 0 else None,
        usd_per_million_output_tokens=per_h / out_h * 1e6 if out_h > 0 else None,
        notes=tuple(notes), samples=lat,
    )


def _usd_per_hour(cfg: ServingConfig, network_usd: float) -> float:
    device = (cfg.accelerator.usd_per_hour or 0.0) * cfg.network.n_npus
    return device + network_usd / (cfg.serving.network_amortization_years * HOURS_PER_YEAR)


def _memory(costs: dict[str, ReplicaCost]) -> dict[str, dict[str, float]]:
    out = {}
    for k, c in costs.items():
        m = c.memory
        out[k] = {"weights_bytes": m.weights_bytes, "activations_bytes": m.activations_bytes,
                  "kv_cache_bytes": max(m.kv_capacity_bytes, 0.0), "total_bytes": m.total_bytes,
                  "kv_tokens": float(m.kv_tokens), "kv_bytes_per_token": m.kv_bytes_per_token}
    return out


def _unfit(cfg: ServingConfig, costs: dict[str, ReplicaCost], n: int, notes: tuple[str, ...]) -> ServingResult:
    nan = float("nan")
    lat = {f"{m}_p{q}_s": nan for m in ("ttft", "tpot", "e2e") for q in (50, 90, 99)}
    net = network_cost_usd(cfg.network)
    return ServingResult(n, 0, n, nan, 0.0, 0.0, 0.0, 0.0, 0.0, lat, nan, nan, cfg.network.n_npus, _memory(costs),
                         False, cfg.accelerator.mem_bytes, net, _usd_per_hour(cfg, net), None, None, notes)


def serve_dict(data: Any) -> ServingResult:
    """`serve` of a config mapping."""
    from cosmic.serving.config import serving_config_from_dict

    return serve(serving_config_from_dict(data))
