"""A serving search space: a PSA whose base is a `cosmic serve` configuration and whose knobs are the replica
layout (TP, PP, disaggregation and the prefill pool's share of the devices), the precision and the scheduler's
limits. It offers the interface agents use (sample, neighbours, decode, feasibility) over an integer box.

Every knob is one coordinate. The layout knobs (tp, pp, disaggregation, prefill_share) form one constraint
component, enumerated once: a layout is feasible when its pools tile the devices and align with the network
(`cosmic.serving.config.check_layout`); every other coordinate is free, so sampling is uniform and exact. A PSA
file::

    kind: serving
    base: {model: llama3-70b, accelerator: h100-sxm, network: ..., serving: ...}   # or a path
    knobs: {serving: {tp: [2, 4, 8], max_num_seqs: [64, 128, 256], chunked_prefill: [false, true]}}
    objectives: [goodput_per_usd]
"""

from __future__ import annotations

import copy
import itertools
import math
from pathlib import Path
from typing import Any

import numpy as np

from cosmic.errors import ConfigError, CosmicError, InfeasibleError, KeyedValueError, extra_keys
from cosmic.psa.objectives import Objective
from cosmic.serving.config import ServingConfig, check_layout, load_serving_config, serving_config_from_dict
from cosmic.workload.serving import Layout

KNOBS: dict[str, tuple[type, str]] = {
    "tp": (int, "tensor-parallel degree of a replica (both pools)"),
    "pp": (int, "pipeline stages of a replica (both pools)"),
    "ep": (int, "expert-parallel degree of a MoE replica, folded onto its TP group (divides tp)"),
    "disaggregation": (bool, "prefill and decode on separate pools"),
    "prefill_share": (float, "share of the devices in the prefill pool (when disaggregated)"),
    "precision": (str, "weights and GEMM precision (bf16, fp16, fp8)"),
    "kv_precision": (str, "KV-cache precision (auto, bf16, fp16, fp8)"),
    "policy": (str, "static or continuous batching"),
    "max_num_seqs": (int, "running sequences per replica"),
    "max_num_batched_tokens": (int, "tokens per iteration"),
    "chunked_prefill": (bool, "Sarathi-Serve chunked prefill"),
    "priority": (str, "prefill or decode first"),
}
LAYOUT_KNOBS = ("tp", "pp", "ep", "disaggregation", "prefill_share")
_TOP = {"kind", "name", "description", "base", "knobs", "objectives", "memory_fit"}


class ServingSpace:
    """A compiled serving PSA (see the module docstring); points are int64 vectors of `dim_names` indices."""

    def __init__(self, data: dict[str, Any], *, file: str | None = None, name: str | None = None,
                 base_dir: Path | None = None) -> None:
        self.file = file
        self._init_args = (copy.deepcopy(data), file, name, base_dir)
        bad = extra_keys(data, _TOP)
        if bad:
            raise ConfigError(f"unknown key (allowed: {', '.join(sorted(_TOP))})", file=file, key=str(bad[0]))
        self.name = str(data.get("name") or name or (Path(file).stem if file else "serving-psa"))
        self.description = str(data.get("description") or "")
        self.base: ServingConfig = _base(data.get("base"), file, base_dir)
        self.n_npus = self.base.network.n_npus
        self.knob_values = _knobs(data.get("knobs"), file)
        self.dim_names = tuple(self.knob_values)
        self.cardinalities = tuple(len(v) for v in self.knob_values.values())
        raw = data.get("objectives") or ["goodput_per_usd"]
        self.objectives = tuple(Objective.from_spec(s, file=file, key=f"objectives[{i}]")
                                for i, s in enumerate(raw if isinstance(raw, list) else [raw]))
        self.memory_fit = bool(data.get("memory_fit", True))
        self.derived: tuple[Any, ...] = ()
        self._layout_dims = [i for i, k in enumerate(self.dim_names) if k in LAYOUT_KNOBS]
        self._free_dims = [i for i, k in enumerate(self.dim_names) if k not in LAYOUT_KNOBS]
        self._layouts = self._feasible_layouts()
        if not len(self._layouts):
            raise ConfigError("no combination of the layout knobs fits the network", file=file, key="knobs.serving")
        self._layout_set = {tuple(x) for x in self._layouts.tolist()}
        free = math.prod(self.cardinalities[i] for i in self._free_dims)
        self.size_total = math.prod(self.cardinalities)
        self.size_feasible = len(self._layouts) * free
        self.box_size = self.size_total
        self._memo: dict[str, Any] = {}

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle as the PSA mapping it was compiled from, for process-pool backends."""
        return (_rebuild, self._init_args)

    # ---- values and configurations ---------------------------------------------------------------------------

    def values(self, point: Any) -> dict[str, Any]:
        idx = [int(j) for j in np.asarray(point).tolist()]
        if len(idx) != len(self.cardinalities) or not all(0 <= j < c for j, c in zip(idx, self.cardinalities,
                                                                                     strict=True)):
            raise ValueError(f"point {idx} is outside the box of cardinalities {list(self.cardinalities)}")
        return {k: self.knob_values[k][j] for k, j in zip(self.dim_names, idx, strict=True)}

    def _setting(self, name: str, v: dict[str, Any]) -> Any:
        if name in v:
            return v[name]
        s = self.base.serving
        lay = s.disaggregation.prefill if s.disaggregation is not None else s.replicas
        assert lay is not None
        base = {"tp": lay.tp, "pp": lay.pp, "ep": lay.ep, "disaggregation": s.disaggregation is not None,
                "prefill_share": 0.5}
        return base[name]

    def _pools(self, v: dict[str, Any]) -> dict[str, Any]:
        tp, pp, ep = self._setting("tp", v), self._setting("pp", v), self._setting("ep", v)
        n = self.n_npus
        if not self._setting("disaggregation", v):
            return {"replicas": {"tp": tp, "pp": pp, "ep": ep, "count": max(1, n // (tp * pp))},
                    "disaggregation": None}
        pre = round(n * self._setting("prefill_share", v))
        pools = {"prefill": {"tp": tp, "pp": pp, "ep": ep, "count": max(1, pre // (tp * pp))},
                 "decode": {"tp": tp, "pp": pp, "ep": ep, "count": max(1, (n - pre) // (tp * pp))}}
        return {"replicas": None, "disaggregation": {**pools, "kv_transfer": "priced"}}

    def _config_dict(self, v: dict[str, Any]) -> dict[str, Any]:
        d = self.base.to_yaml_dict()
        s = d["serving"]
        s.pop("replicas", None)
        s.pop("disaggregation", None)
        s.update({k: x for k, x in self._pools(v).items() if x is not None})
        for k in ("precision",):
            if k in v:
                s[k] = v[k]
        if "kv_precision" in v:
            s.setdefault("kv_cache", {})["precision"] = v["kv_precision"]
        for k in ("policy", "max_num_seqs", "max_num_batched_tokens", "chunked_prefill", "priority"):
            if k in v:
                s.setdefault("scheduler", {})[k] = v[k]
        if s.get("scheduler", {}).get("policy") == "static":
            s["scheduler"]["chunked_prefill"] = False
        return d

    def decode(self, point: Any) -> ServingConfig:
        """The serving configuration of `point` (ConfigError when the decoder refuses it)."""
        return serving_config_from_dict(self._config_dict(self.values(point)), file=self.file)

    def knobs(self, point: Any) -> dict[str, object]:
        return {k: (x.item() if hasattr(x, "item") else x) for k, x in self.values(point).items()}

    def encode(self, config: Any) -> np.ndarray:
        """The point nearest to `config` on every knob (the base configuration's point for ``encode(base)``)."""
        cur = {"tp": self._setting("tp", {}), "pp": self._setting("pp", {}), "ep": self._setting("ep", {}),
               "disaggregation": self._setting("disaggregation", {}), "prefill_share": 0.5,
               "precision": config.serving.precision, "kv_precision": config.serving.kv_cache.precision,
               **config.serving.scheduler.model_dump()}
        out = []
        for k in self.dim_names:
            vals = self.knob_values[k]
            out.append(vals.index(cur[k]) if cur.get(k) in vals else 0)
        p = np.array(out, dtype=np.int64)
        return p if self.is_feasible(p) else self.sample(np.random.default_rng(0), 1)[0]

    def coordinate_labels(self, i: int) -> list[str]:
        return [str(x) for x in self.knob_values[self.dim_names[i]]]

    def coordinate_is_ordered(self, i: int) -> bool:
        vals = self.knob_values[self.dim_names[i]]
        return all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in vals) and vals == sorted(vals)

    # ---- feasibility and sampling ------------------------------------------------------------------------------

    def _feasible_layouts(self) -> np.ndarray:
        dims = tuple(d.npus for d in self.base.network.dims)
        rows = []
        for combo in itertools.product(*(range(self.cardinalities[i]) for i in self._layout_dims)):
            v = {self.dim_names[i]: self.knob_values[self.dim_names[i]][j]
                 for i, j in zip(self._layout_dims, combo, strict=True)}
            if self._layout_ok(v, dims):
                rows.append(combo)
        return np.array(rows, dtype=np.int64).reshape(len(rows), len(self._layout_dims))

    def _layout_ok(self, v: dict[str, Any], dims: tuple[int, ...]) -> bool:
        pools = self._pools(v)
        lays = ([pools["replicas"]] if pools["replicas"] else
                [pools["disaggregation"]["prefill"], pools["disaggregation"]["decode"]])
        try:
            layouts = [Layout(**p) for p in lays]
            for lay in layouts:
                check_layout(self.base.model, lay, dims, "serving")
        except (KeyedValueError, CosmicError, ValueError):
            return False
        return sum(lay.n_devices for lay in layouts) == self.n_npus

    def violations(self, point: Any) -> list[str]:
        p = np.asarray(point, dtype=np.int64)
        self.values(p)
        return [] if tuple(p[self._layout_dims].tolist()) in self._layout_set else ["replica layout fits the network"]

    def is_feasible(self, point: Any) -> bool:
        return not self.violations(point)

    def feasible_mask(self, points: Any) -> np.ndarray:
        return np.array([self.is_feasible(p) for p in np.asarray(points, dtype=np.int64)], dtype=bool)

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        out = np.zeros((n, len(self.cardinalities)), dtype=np.int64)
        out[:, self._layout_dims] = self._layouts[rng.integers(0, len(self._layouts), size=n)]
        for i in self._free_dims:
            out[:, i] = rng.integers(0, self.cardinalities[i], size=n)
        return out

    def neighbours(self, point: Any) -> list[np.ndarray]:
        p = np.asarray(point, dtype=np.int64)
        out = []
        for i, c in enumerate(self.cardinalities):
            for j in range(c):
                if j != p[i]:
                    q = p.copy()
                    q[i] = j
                    if i in self._free_dims or self.is_feasible(q):
                        out.append(q)
        return out

    @property
    def acceptance_rate(self) -> float:
        return 1.0

    @property
    def box_acceptance_rate(self) -> float:
        return self.size_feasible / self.size_total

    # ---- evaluation -------------------------------------------------------------------------------------------

    def simulate(self, config: ServingConfig) -> Any:
        """`cosmic.serve` of a decoded configuration, remembered by its knob values. A deployment that refuses
        requests of the workload (a prompt over the token budget without chunked prefill, as vLLM refuses to start
        with ``max_num_batched_tokens`` below the model length; a request longer than the KV cache) cannot serve
        it: InfeasibleError, which the evaluator records as rejected."""
        from cosmic.serving import serve

        key = config.model_dump_json()
        hit = self._memo.get(key)
        if hit is None:
            hit = self._memo[key] = serve(config)
        if hit.refused and hit.fits_memory:
            raise InfeasibleError(f"{hit.refused} of {hit.requests} requests refused (longer than the token budget "
                                  "or the KV cache)")
        return hit

    def describe(self) -> dict[str, Any]:
        knobs = {"serving": {k: {"domain": str(list(v)), "values": list(v), "mode": "scalar", "doc": KNOBS[k][1]}
                             for k, v in self.knob_values.items()}}
        return {
            "name": self.name, "description": self.description, "file": self.file, "kind": "serving",
            "base": {"system": self.base.system, "model": self.base.model.name, "n_npus": self.n_npus,
                     "network": [f"{d.topology.value}({d.npus})" for d in self.base.network.dims],
                     "parallel": {k: v.model_dump() for k, v in self.base.serving.layouts.items()}},
            "knobs": knobs, "derived": [], "constraints": [{"name": "replica layout fits the network",
                                                            "expr": "enumerated", "builtin": True}],
            "objectives": [{"name": o.name, "direction": o.direction} for o in self.objectives],
            "memory_fit": self.memory_fit, "dims": [{"name": k, "cardinality": c} for k, c in
                                                    zip(self.dim_names, self.cardinalities, strict=True)],
            "space_size_total": self.size_total, "space_size_feasible": self.size_feasible,
            "space_size_method": "exact", "encoded_box_size": self.box_size, "acceptance_rate": 1.0,
            "box_acceptance_rate": self.box_acceptance_rate,
        }


def _rebuild(data: Any, file: str | None, name: str | None, base_dir: Path | None) -> ServingSpace:
    return ServingSpace(data, file=file, name=name, base_dir=base_dir)


def _base(raw: Any, file: str | None, base_dir: Path | None) -> ServingConfig:
    if raw is None:
        raise ConfigError("required key is missing (a `cosmic serve` config, inline or a path)", file=file, key="base")
    try:
        if isinstance(raw, str):
            p = Path(raw)
            return load_serving_config(p if p.is_absolute() or base_dir is None else base_dir / p)
        if isinstance(raw, dict):
            return serving_config_from_dict(raw)
    except ConfigError as exc:
        raise ConfigError(str(exc), file=file, key="base") from None
    raise ConfigError(f"must be a mapping or a path, got {type(raw).__name__}", file=file, key="base")


def _is(x: Any, kind: type) -> bool:
    """Whether `x` is a value of `kind` (an int counts as a float; a bool is no number)."""
    if isinstance(x, bool):
        return kind is bool
    return isinstance(x, kind) or (kind is float and isinstance(x, int))


def _knobs(raw: Any, file: str | None) -> dict[str, list[Any]]:
    if not isinstance(raw, dict) or set(raw) - {"serving"}:
        raise ConfigError("must map the stack `serving` to knobs", file=file, key="knobs")
    out: dict[str, list[Any]] = {}
    for k, vals in (raw.get("serving") or {}).items():
        key = f"knobs.serving.{k}"
        if k not in KNOBS:
            raise ConfigError(f"unknown knob {k!r}; known: {', '.join(KNOBS)}", file=file, key=key)
        if not isinstance(vals, list) or not vals:
            raise ConfigError("must be a non-empty list of values", file=file, key=key)
        kind = KNOBS[k][0]
        if not all(_is(x, kind) for x in vals):
            raise ConfigError(f"values must be {kind.__name__}s, got {vals!r}", file=file, key=key)
        out[k] = list(vals)
    if not out:
        raise ConfigError("needs at least one knob", file=file, key="knobs.serving")
    return out
