"""Serving rows (`serving_runs.csv`): build a serving configuration from a row's cells, simulate it, compare the
output-token throughput.

Every rule reads a cell's content (model shape, accelerator, framework, precision, scenario, lengths, rate,
notes); none reads a row id or a study name.

* **Model.** The shape columns; a gated (SwiGLU) MLP for Llama- and Mistral-family names, otherwise when the MLP
  is not 4 x hidden. Mixture-of-experts rows read their `moe` cell (``experts=8;top_k=2;expert_ffn=14336``) and
  the `ep` column (EP folded onto the TP group; 1 when not stated).
* **Hardware.** The accelerator named in `accel` (`accel_mem_gb` overrides the catalog's memory), one replica's
  TP x PP devices on its scale-up fabric (NVLink of the generation, PCIe for the L40S, Infinity Fabric for MI300X).
* **Replicas.** Requests are dealt round-robin, so the replicas of a row are independent and identical: one is
  simulated with its share of the requests (and of a Poisson rate) and its throughput multiplied by ``dp``.
* **Scheduler.** TensorRT-LLM rows: in-flight batching with chunked context, decode first, at TensorRT-LLM's
  build defaults where the row states no limit (``max_batch_size`` 2048, ``max_num_tokens`` 8192); the KV cache
  takes ``kv_cache_free_gpu_mem_fraction`` of the free memory (0.9, TensorRT-LLM's default, unless the notes give
  it). vLLM rows: vLLM's defaults.
* **Workload.** Fixed lengths from `input_len` / `output_len` (rows without them are not compared); offline rows
  (``request_rate = inf`` or an Offline scenario) send every request at once, others Poisson at the rate; the
  number of requests from the notes ("with N requests"), else enough for several generations of the batch.
* **Metric.** ``throughput_output_tokens_per_s`` (generated tokens over the run, ramp and drain included, as
  trtllm-bench and MLPerf Offline count them).
"""

from __future__ import annotations

import math
import re
from typing import Any

from cosmic.catalog import get_accelerator
from cosmic.errors import CosmicError
from cosmic.validate.table import Row
from cosmic.validate.training import Comparison

TRTLLM_MAX_BATCH = 2048
"""TensorRT-LLM's default ``max_batch_size`` (trtllm-build and trtllm-bench, 0.12+)."""
TRTLLM_MAX_TOKENS = 8192
"""TensorRT-LLM's default ``max_num_tokens``."""
TRTLLM_KV_FRACTION = 0.9
"""TensorRT-LLM's default ``kv_cache_free_gpu_mem_fraction``."""
MIN_REQUESTS, MAX_REQUESTS = 256, 4000
"""Requests simulated per replica for an offline row: at least four generations of the largest batch the cache
holds, within these bounds (the sources ran 1,000-30,000 "to guarantee steady state")."""

_ACCELERATORS = (  # (word in the `accel` cell, catalog name, scale-up fabric, topology)
    ("gh200", "gh200", "nvlink4", "Switch"),
    ("h200", "h200", "nvlink4", "Switch"),
    ("h100", "h100-sxm", "nvlink4", "Switch"),
    ("b200", "b200", "nvlink5", "Switch"),
    ("a100", "a100-80gb", "nvlink3", "Switch"),
    ("l40s", "l40s", "pcie4", "Switch"),
    ("mi300x", "mi300x", "infinity-fabric", "FullyConnected"),
)


def compare_row(row: Row) -> Comparison:
    """The comparison of one serving row (with the reason when it cannot be compared)."""
    base = Comparison(row_id=row.row_id, study=row.study, line=row.line, group=row.get("accel"))
    try:
        data, dp, note = row_config(row)
    except _Skip as exc:
        base.skipped_reason = str(exc)
        return base
    measured = row.n("throughput_output_tokens_per_s")
    if measured is None or measured <= 0:
        base.skipped_reason = "no measured output-token throughput"
        return base
    from cosmic.serving import serve_dict

    try:
        r = serve_dict(data)
    except CosmicError as exc:
        base.skipped_reason = f"configuration rejected: {exc}"
        return base
    if not r.fits_memory or r.completed == 0:
        base.skipped_reason = "predicted not to fit: " + "; ".join(r.notes)
        return base
    predicted = r.output_tokens_per_s * dp
    base.metric, base.predicted, base.measured = "output_tokens_per_s", predicted, measured
    base.error_pct = (predicted - measured) / measured * 100
    base.speed_error_pct = base.error_pct
    base.notes = [note] if note else []
    return base


class _Skip(Exception):
    pass


def row_config(row: Row) -> tuple[dict[str, Any], int, str]:
    """(serving config mapping of one replica, replicas of the row, a note) or _Skip with the reason."""
    inp, out = row.i("input_len"), row.i("output_len")
    if not inp or not out:
        raise _Skip("input or output length not stated")
    tp, pp = row.i("tp"), row.i("pp") or 1
    n = row.i("num_accel")
    if not tp or not n:
        raise _Skip("tp or num_accel not stated")
    dp = row.i("dp") or max(1, n // (tp * pp))
    model = _model(row, inp + out)
    acc, fabric, topology = _accelerator(row)
    offline = row.get("request_rate").lower() in ("inf", "") or "offline" in row.get("scenario").lower()
    rate = None if offline else _rate(row)
    workload: dict[str, Any] = {"arrival": "offline" if offline else "poisson", "input": inp, "output": out,
                                "seed": 0}
    serving: dict[str, Any] = {
        "precision": _precision(row.get("precision_compute") or row.get("precision_weights")),
        "replicas": {"tp": tp, "pp": pp, "ep": row.i("ep") or 1, "count": 1},
        "kv_cache": {"precision": _precision(row.get("precision_kv")) if row.get("precision_kv") else "auto"},
        "scheduler": _scheduler(row),
        "workload": workload,
    }
    if "tensorrt-llm" in row.get("framework").lower():
        m = re.search(r"kv_cache_free_gpu_mem_fraction\s+([0-9.]+)", row.get("notes"))
        serving["kv_free_fraction"] = float(m.group(1)) if m else TRTLLM_KV_FRACTION
    if rate is not None:
        workload["rate"] = rate / dp
    data = {"model": model, "accelerator": acc, "serving": serving,
            "network": {"dims": [{"topology": topology, "npus": tp * pp, "fabric": fabric}]}}
    workload["requests"] = _requests(row, data, dp, inp + out)
    return data, dp, ""


def _rate(row: Row) -> float:
    try:
        return float(row.get("request_rate"))
    except ValueError:
        raise _Skip(f"request_rate {row.get('request_rate')!r} is not a number") from None


def _model(row: Row, seq: int) -> dict[str, Any]:
    need = ("layers", "hidden", "heads", "vocab")
    if any(row.i(k) is None for k in need):
        raise _Skip("model shape not stated")
    h, heads = row.i("hidden") or 0, row.i("heads") or 1
    ffn = row.i("ffn_hidden") or 4 * h
    head_dim = row.i("head_dim")
    name = row.get("model").lower()
    gated = any(w in name for w in ("llama", "mistral", "mixtral")) or ffn != 4 * h
    moe = _moe(row.get("moe"))
    return {**({"moe": moe} if moe else {}), "name": row.get("model")[:60], "layers": row.i("layers"),
            "hidden": h, "ffn_hidden": ffn,
            "heads": heads, "kv_heads": row.i("kv_heads") or heads, "vocab": row.i("vocab"),
            "seq_len": max(seq, 2048), "gated_mlp": gated, "position": "rotary", "norm": "rmsnorm", "bias": False,
            **({"head_dim": head_dim} if head_dim is not None and head_dim * heads != h else {})}


def _moe(cell: str) -> dict[str, int] | None:
    """The model's `moe` section from a ``key=value;...`` cell (experts, top_k, expert_ffn, shared_experts), None
    for a dense model, _Skip when the cell lacks a field the cost needs."""
    if not cell.strip():
        return None
    fields = {}
    for part in cell.split(";"):
        key, _, value = part.partition("=")
        fields[key.strip().lower()] = value.strip()
    try:
        moe = {"experts": int(fields["experts"]), "top_k": int(fields["top_k"]),
               "expert_ffn_hidden": int(fields["expert_ffn"])}
        if fields.get("shared_experts"):
            moe["shared_experts"] = int(fields["shared_experts"])
    except (KeyError, ValueError):
        raise _Skip(f"moe cell {cell!r} needs experts, top_k and expert_ffn as integers") from None
    return moe


def _accelerator(row: Row) -> tuple[dict[str, Any], str, str]:
    text = row.get("accel").lower().replace(" ", "").replace("-", "")
    for word, name, fabric, topology in _ACCELERATORS:
        if word in text:
            if word == "h100" and "nvl" in text:
                raise _Skip("H100 NVL (PCIe card, NVLink bridge pairs) is not in the catalog")
            acc = dict(get_accelerator(name))
            if row.n("accel_mem_gb"):
                acc["mem_gb"] = row.n("accel_mem_gb")
            return acc, fabric, topology
    raise _Skip(f"accelerator {row.get('accel')!r} not in the catalog")


def _precision(text: str) -> str:
    t = text.lower()
    if "fp8" in t or "float8" in t:
        return "fp8"
    if "fp16" in t and "bf16" not in t:
        return "fp16"
    if not t or "bf16" in t or "bfloat16" in t:
        return "bf16"
    raise _Skip(f"precision {text!r} not modelled")


def _scheduler(row: Row) -> dict[str, Any]:
    fw = row.get("framework").lower()
    stated = row.i("max_num_seqs")
    if "tensorrt-llm" in fw:
        return {"max_num_seqs": stated or TRTLLM_MAX_BATCH, "max_num_batched_tokens": TRTLLM_MAX_TOKENS,
                "chunked_prefill": True, "priority": "decode"}
    if "vllm" in fw:
        return {"max_num_seqs": stated or 256}
    raise _Skip(f"framework {row.get('framework')!r}: scheduler defaults unknown")


def _requests(row: Row, data: dict[str, Any], dp: int, length: int) -> int:
    m = re.search(r"with\s+([0-9][0-9,]*)\s+requests", row.get("notes"))
    if m:
        return max(1, math.ceil(int(m.group(1).replace(",", "")) / dp))
    from cosmic.serving import serving_config_from_dict
    from cosmic.serving.engine import replica_cost

    cfg = serving_config_from_dict(data | {"serving": data["serving"] | {"workload": data["serving"]["workload"]
                                                                            | {"requests": 1}}})
    cost = replica_cost(cfg, cfg.serving.replicas or cfg.serving.layouts["replicas"])
    batch = min(cost.lane_max_seqs, max(1, cost.lane_blocks * cost.memory.block_size // length)) * cost.lanes
    return int(min(MAX_REQUESTS, max(MIN_REQUESTS, 4 * batch)))
