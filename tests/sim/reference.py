"""The reference results that pin the simulator's numbers (issue: engine v2 must give identical results).

`python -m tests.sim.reference` records, for a fixed list of search spaces and seeds, the encoded points and the
figures of their `Result` (step time, memory, breakdown, per-dimension communication, ...) into
``tests/sim/data/reference_results.npz``. `tests/sim/test_reference.py` decodes the same points, simulates them and
compares every figure to relative 1e-9. A change that moves predictions on purpose (a fidelity change) re-records the
file in its own commit and says which figures moved.

The spaces: every built-in preset, the exhaustive benchmark's workload space, and workload spaces built on every
example configuration with training variants that no PSA knob reaches (fp8, unfused attention, interleaving, fp32
gradient reduction, overlapped parameter gathers, unfused gradient accumulation, ASTRA-sim fidelity).
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(__file__).parent / "data" / "reference_results.npz"
POINTS_PER_SPACE = 1300
MAX_DIMS = 4
COLUMNS: tuple[str, ...] = (
    "step_time_s", "tokens_per_s", "mfu", "hfu",
    "weights_bytes", "gradients_bytes", "optimizer_bytes", "activations_bytes",
    "memory_capacity_bytes", "fits_memory", "network_cost_usd", "total_bandwidth_gbps",
    "forward_s", "backward_s", "recompute_s", "comm_tp_s", "comm_sp_s", "comm_pp_s", "comm_dp_s", "bubble_s",
    "optimizer_s",
    *(f"comm_dim{i}_s" for i in range(MAX_DIMS)),
    "n_npus", "micro_batches", "critical_stage", "model_flops_per_step",
)

_WORKLOAD_KNOBS = {
    "tp": {"pow2": [1, 16]},
    "pp": {"values": [1, 2, 4, 8, 16]},
    "sp": {"pow2": [1, 8]},
    "micro_batch": {"values": [1, 2, 4]},
    "schedule": {"values": ["gpipe", "1f1b", "interleaved"]},
    "recompute": {"values": ["none", "selective", "full"]},
    "zero": {"values": [0, 1, 2, 3]},
    "sequence_parallel": {"values": [False, True]},
}

# training variants (keys of the `training` or `collective` sections) that no knob reaches
_VARIANTS: dict[str, dict[str, dict[str, Any]]] = {
    "plain": {},
    "fp8-unfused-accum": {"training": {"precision": "fp8", "grad_accumulation_fusion": False}},
    "unfused-attention": {"training": {"flash_attention": False}},
    "interleaved-v2": {"training": {"virtual_stages": 2, "schedule": "interleaved", "grad_reduce_fp32": True}},
    "gather-overlap-fp16": {"training": {"param_gather_overlap": True, "precision": "fp16", "dp_overlap": False}},
    "astra-sim": {"collective": {"fidelity": "astra-sim"}},
}


def spaces() -> list[tuple[str, Any]]:
    """(name, Space) of every space the reference covers, in a fixed order."""
    import cosmic
    from cosmic.psa import list_presets, load_psa
    from cosmic.psa.space import Space

    out: list[tuple[str, Any]] = [(name, load_psa(name)) for name in list_presets()]
    out.append(("bench-workload", load_psa(ROOT / "benchmarks" / "spaces" / "gpt3-175b-1024-workload.yaml")))
    for ex in sorted((ROOT / "examples").glob("*.yaml")):
        base = cosmic.load_config(ex).to_yaml_dict()
        base.pop("name", None)
        base.pop("description", None)
        for vname, over in _VARIANTS.items():
            b = {k: (dict(v) if isinstance(v, dict) else v) for k, v in base.items()}
            for sec, upd in over.items():
                b[sec] = {**b.get(sec, {}), **upd}
            tr = b["training"]
            sched_vals = ["interleaved"] if tr.get("virtual_stages", 1) > 1 else ["gpipe", "1f1b"]
            knobs = {**_WORKLOAD_KNOBS, "schedule": {"values": sched_vals}}
            if over.get("collective", {}).get("fidelity") == "astra-sim":
                knobs["sp"] = {"values": [1, 2]}  # keep the layouts ASTRA-sim can run small
            data = {
                "name": f"{ex.stem}-{vname}",
                "base": b,
                "knobs": {"workload": knobs},
                "derived": {"dp": {"rule": "npus_quotient", "from": ["tp", "pp", "sp"]}},
                "objectives": ["step_time"],
                "memory_fit": False,
            }
            try:
                space = Space(data, base_dir=ex.parent)
            except cosmic.ConfigError:
                # the example's own layout cannot take this variant (layers not divisible by pp*v): start from
                # pipeline depth 1, which every variant accepts
                par = b["parallel"]
                b["parallel"] = {**par, "pp": 1, "dp": par.get("dp", 1) * par.get("pp", 1)}
                space = Space(data, base_dir=ex.parent)
            out.append((f"{ex.stem}-{vname}", space))
    return out


def figures(result: Any) -> np.ndarray:
    """The reference columns of one `Result` (`COLUMNS`; NaN for network dimensions it does not have)."""
    m = result.memory
    row = [
        result.step_time_s, result.tokens_per_s, result.mfu, result.hfu,
        m.weights_bytes, m.gradients_bytes, m.optimizer_bytes, m.activations_bytes,
        result.memory_capacity_bytes, float(result.fits_memory), result.network_cost_usd,
        result.total_bandwidth_gbps,
        *(result.breakdown[k] for k in COLUMNS[12:21]),
    ]
    dims = list(result.comm_by_network_dim_s) + [math.nan] * (MAX_DIMS - len(result.comm_by_network_dim_s))
    row += dims + [result.n_npus, result.micro_batches, result.critical_stage, result.model_flops_per_step]
    return np.array(row, dtype=np.float64)


def evaluate(space: Any, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(status, figures) for `points`: status 0 = simulated, 1 = rejected by decode or the simulator."""
    import cosmic

    status = np.zeros(len(points), dtype=np.int8)
    vals = np.full((len(points), len(COLUMNS)), np.nan)
    for i, p in enumerate(points):
        try:
            r = cosmic.simulate(space.decode(p))
        except cosmic.CosmicError:
            status[i] = 1
            continue
        vals[i] = figures(r)
    return status, vals


def evaluate_batch(columns: Any) -> tuple[np.ndarray, np.ndarray]:
    """(status, figures) of `evaluate`, through the batch path (`cosmic.sim.batch.simulate_columns`)."""
    import cosmic
    from cosmic.sim.batch import simulate_columns

    b = simulate_columns(columns)
    n = len(b)
    vals = np.full((n, len(COLUMNS)), np.nan)
    f, bd = b.figures, b.breakdown
    names = {"fits_memory": None}
    for k, col in enumerate(COLUMNS):
        if col.startswith("comm_dim"):
            d = int(col[len("comm_dim"):-2])
            if d < b.comm_by_network_dim_s.shape[1]:
                vals[:, k] = b.comm_by_network_dim_s[:, d]
        elif col in bd:
            vals[:, k] = bd[col]
        elif col not in names:
            vals[:, k] = f[col]
        else:
            vals[:, k] = f[col].astype(np.float64)
    status = np.zeros(n, dtype=np.int8)
    for i in np.flatnonzero(~b.ok):
        try:
            vals[i] = figures(b.result(int(i)))
        except cosmic.CosmicError:
            status[i] = 1
            vals[i] = np.nan
    return status, vals


def record(path: Path = DATA) -> None:
    names, offsets, pts, status, vals = [], [0], [], [], []
    width = 0
    for i, (name, space) in enumerate(spaces()):
        p = space.sample(np.random.default_rng(1000 + i), POINTS_PER_SPACE)
        s, v = evaluate(space, p)
        names.append(name)
        pts.append(p)
        width = max(width, p.shape[1])
        status.append(s)
        vals.append(v)
        offsets.append(offsets[-1] + len(p))
        print(f"{name}: {len(p)} points, {int(s.sum())} rejected", file=sys.stderr)
    padded = np.full((offsets[-1], width), -1, dtype=np.int16)
    for k, p in enumerate(pts):
        padded[offsets[k]:offsets[k + 1], : p.shape[1]] = p
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        path, names=np.array(names), offsets=np.array(offsets), points=padded,
        status=np.concatenate(status), values=np.concatenate(vals), columns=np.array(COLUMNS),
    )
    print(f"{offsets[-1]} points in {path}", file=sys.stderr)


if __name__ == "__main__":
    record()
