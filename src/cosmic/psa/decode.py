"""Scalar decode of a :class:`Space`: a point's values into a `SystemConfig`, one cached sub-object per section
(the column decode of a point matrix is :mod:`cosmic.psa.columns`)."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np

from cosmic.psa import encoding
from cosmic.psa._common import (
    plain,
    tuple_getter,
)
from cosmic.psa.knobs import (
    ALGORITHM_KNOBS,
    COLLECTIVE_KNOBS,
    COMPUTE_KNOBS,
    NETWORK_KNOBS,
    PARALLEL_KNOBS,
    TRAINING_KNOBS,
)
from cosmic.sim.config import (
    SystemConfig,
)
from cosmic.units import TFLOP

if TYPE_CHECKING:
    from cosmic.psa.space import Space



def updated(cfg: SystemConfig, update: dict[str, Any]) -> SystemConfig:
    """``cfg.model_copy(update=update)`` for the sub-objects a PSA replaces, without pydantic's generic copy.

    Decoding builds one configuration per point and this copy was a third of it. Same result as ``model_copy``:
    a new instance whose field dict is the base's with `update` applied and whose set-fields include the updated
    keys; no validation (the sub-objects are validated models), no private attributes (SystemConfig has none).
    """
    new = object.__new__(type(cfg))
    d = cfg.__dict__.copy()
    d.update(update)
    object.__setattr__(new, "__dict__", d)
    object.__setattr__(new, "__pydantic_fields_set__", cfg.__pydantic_fields_set__ | update.keys())
    object.__setattr__(new, "__pydantic_extra__", None)
    object.__setattr__(new, "__pydantic_private__", None)
    return new


def prepare_builders(space: Space) -> None:
    ch = space._changed
    b = space.base
    space._par_keys = ("dp", "tp", "pp", "sp", "zero", "sequence_parallel", "rank_order", "ep", "etp",
                       "moe_dispatcher", "cp_algorithm", "shard_group")
    space._do_par = bool(ch & PARALLEL_KNOBS)
    space._do_train = bool(ch & TRAINING_KNOBS)
    space._do_coll = bool(ch & COLLECTIVE_KNOBS)
    space._do_net = bool(ch & NETWORK_KNOBS)
    space._do_acc = bool(ch & COMPUTE_KNOBS)
    space._coll_keys = tuple(k for k in (*ALGORITHM_KNOBS, "chunks", "scheduling", "multidim", "active_chunks")
                            if k in ch)
    explicit = set(space.knob_defs) | {d.target for d in space.derived if d.rule != "unit_view"}
    space._link_key = "link_gbps" if "link_gbps" in explicit else ("link_gibps" if "link_gibps" in explicit
                                                                 else None)
    space._train_keys = tuple(k for k in ("micro_batch", "schedule", "recompute", "moe_overlap", "tp_comm_overlap")
                              if k in ch)
    space._par_get = tuple_getter(space._par_keys)
    space._train_get = tuple_getter(space._train_keys)
    space._acc_keys = tuple(k for k in ("peak_tflops", "mem_gb", "mem_bw_gbps") if k in ch)
    space._cache = {}
    space._tables = None  # cosmic.psa.columns.coord_tables
    space._base_dims = tuple(b.network.dims)
    space._prec = b.training.precision.value


def cached(space: Space, key: Any, make: Callable[[], Any]) -> Any:
    c = space._cache
    obj = c.get(key)
    if obj is None:
        if len(c) > 200_000:
            c.clear()
        obj = c[key] = make()
    return obj


def decode(space: Space, point: Any) -> SystemConfig:
    """The concrete configuration of `point` (derived knobs applied; no pydantic re-validation).

    Raises ValueError for a point outside the encoded box."""
    idx = point.tolist() if isinstance(point, np.ndarray) else list(point)
    if len(idx) != len(space._coords) or not all(0 <= j < c for j, c in zip(idx, space.cardinalities,
                                                                              strict=True)):
        raise ValueError(f"point {idx} is outside the box of cardinalities {list(space.cardinalities)}")
    v = encoding.values(space, idx, for_build=True)
    return build(space, v)


def build(space: Space, v: dict[str, Any]) -> SystemConfig:
    upd: dict[str, Any] = {}
    if space._do_par:
        upd["parallel"] = parallel_of(space, v)
    if space._do_train:
        upd["training"] = training_of(space, v)
    if space._do_coll:
        upd["collective"] = collective_of(space, v)
    if space._do_net:
        upd["network"] = network_of(space, v)
    if space._do_acc:
        upd["accelerator"] = accelerator_of(space, v)
    return updated(space.base, upd) if upd else space.base


def parallel_of(space: Space, v: dict[str, Any]) -> Any:
    return cached(space, ("par", space._par_get(v)), lambda: space.base.parallel.model_copy(
        update={k: (v[k] or None) if k in _ZERO_IS_NONE else v[k] for k in space._par_keys}))


_ZERO_IS_NONE = ("etp", "shard_group")
"""Parallel knobs whose 0 means the default: etp follows tp, the shard group is the whole DP x SP group."""


def training_of(space: Space, v: dict[str, Any]) -> Any:
    return cached(space, ("train", space._train_get(v)), lambda: space.base.training.model_copy(
        update={k: v[k] for k in space._train_keys}))


def collective_of(space: Space, v: dict[str, Any]) -> Any:
    key = ("coll",) + tuple(v[k] for k in space._coll_keys)
    return cached(space, key, lambda: space.base.collective.model_copy(
        update={k: (list(v[k]) if k in ALGORITHM_KNOBS else v[k]) for k in space._coll_keys}))


def network_of(space: Space, v: dict[str, Any]) -> Any:
    lk = space._link_key
    dims = []
    for i, bd in enumerate(space._base_dims):
        bw = v[lk][i] if lk else None
        key = ("dim", i, v["topology"][i], v["npus"][i], v["latency_ns"][i], bw)
        dims.append(cached(space, key, partial(make_dim, space, bd, v, i, bw)))
    net_key = ("net", tuple(id(d) for d in dims))
    return cached(space, net_key, lambda: space.base.network.model_copy(update={"dims": dims}))


def accelerator_of(space: Space, v: dict[str, Any]) -> Any:
    return cached(space, ("acc",) + tuple(v[k] for k in space._acc_keys), lambda: make_acc(space, v))


def make_dim(space: Space, bd: Any, v: dict[str, Any], i: int, bw: float | None) -> Any:
    u: dict[str, Any] = {"topology": v["topology"][i], "npus": v["npus"][i], "latency_ns": v["latency_ns"][i]}
    if space._link_key == "link_gibps":
        u.update(link_gibps=bw, link_gbps=None, fabric=None)
    elif space._link_key == "link_gbps":
        u.update(link_gbps=bw, link_gibps=None, fabric=None)
    return bd.model_copy(update=u)


def make_acc(space: Space, v: dict[str, Any]) -> Any:
    a = space.base.accelerator
    u: dict[str, Any] = {}
    if "peak_tflops" in space._acc_keys:
        cur = a.peak_flop_per_s(space._prec) / TFLOP
        f = v["peak_tflops"] / cur
        u["peak_tflops"] = {p: x * f for p, x in a.peak_tflops.items()}
    if "mem_gb" in space._acc_keys:
        u["mem_gb"] = v["mem_gb"]
    if "mem_bw_gbps" in space._acc_keys:
        u["mem_bw_gbps"] = v["mem_bw_gbps"]
    return a.model_copy(update=u)


def knobs(space: Space, point: Any) -> dict[str, object]:
    """Human-readable values of the searched and derived knobs at `point` (JSON-ready)."""
    v = encoding.values(space, point)
    out: dict[str, object] = {k: plain(v[k]) for k in space.knob_defs}
    for r in space.derived:
        if not r.implicit or r.rule in ("zero_of", "per_link"):
            out[r.target] = plain(v[r.target])
    return out
