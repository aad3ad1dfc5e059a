"""Decode a whole point matrix into :class:`cosmic.sim.columns.StepColumns` without one config object per point.

Every knob gets a column: its base value broadcast, overwritten by the coordinates that write it (a value table per
coordinate, indexed by the point matrix), then the derived rules in order (:mod:`cosmic.psa.rules`, the formulas the
scalar decode uses too). The parallel degrees, network and collective sections are read off those columns; the
training and accelerator sections are built once per distinct combination of the coordinates they depend on,
through the same cached builders as the scalar decode.
"""

from __future__ import annotations

import math
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np

from cosmic.psa import decode, encoding
from cosmic.psa.rules import DEFAULT_ALGORITHM, TOPOLOGY_CODES, Codec
from cosmic.sim.columns import (
    ALGORITHMS,
    COLLECTIVES,
    FIDELITIES,
    SCHEDULINGS,
    TOPOLOGIES,
    CollectiveColumns,
    NetworkColumns,
    StepColumns,
)
from cosmic.sim.config import Scheduling
from cosmic.units import GB, GIB

if TYPE_CHECKING:
    from cosmic.psa.space import Space

assert TOPOLOGY_CODES == TOPOLOGIES  # the rules' codes are the columns' codes
_SCHEDULING_CODE = np.array([SCHEDULINGS.index(s.value) for s in Scheduling], dtype=np.int8)

CoordTables = list[list[tuple[str, int | None, np.ndarray]]]


def coordinate_tables(coords: list[Any], codecs: dict[str, Codec]) -> CoordTables:
    """Per coordinate, what each of its values writes: (knob, dimension or None, codes indexed by the value)."""
    out: CoordTables = []
    for c in coords:
        entries = []
        for k, (name, dim, _) in enumerate(c.assign[0]):
            codec = codecs[name]
            entries.append((name, dim, np.array([codec.code(asg[k][2]) for asg in c.assign], dtype=codec.dtype)))
        out.append(entries)
    return out


def coord_tables(space: Space) -> CoordTables:
    """The space's :func:`coordinate_tables`, built on first use."""
    if space._tables is None:
        space._tables = coordinate_tables(space._coords, space._codecs)
    return space._tables


def knob_columns(space: Space, points: np.ndarray, rules: Any) -> dict[str, np.ndarray]:
    """Column of every knob at `points` (in-box rows): base values, coordinate writes, then `rules` in order."""
    n = points.shape[0]
    cols: dict[str, np.ndarray] = {}
    for name, codec in space._codecs.items():
        base = codec.column([space._bv[name]])
        cols[name] = np.broadcast_to(base, (n, *base.shape[1:]))
    own: set[str] = set()
    for ci, entries in enumerate(coord_tables(space)):
        idx = points[:, ci]
        for name, dim, table in entries:
            if dim is None:
                cols[name] = table[idx]
                continue
            if name not in own:
                cols[name] = cols[name].copy()
                own.add(name)
            cols[name][:, dim] = table[idx]
    for r in rules:
        cols[r.target] = r.column(cols)
    return cols


def _distinct(points: np.ndarray, coords: list[int], card: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(one row index per distinct combination of `coords`, index of each row's combination)."""
    n = points.shape[0]
    if not coords or n == 0:
        return np.zeros(min(n, 1), dtype=np.int64), np.zeros(n, dtype=np.int64)
    radix = [int(card[i]) for i in coords]
    if math.prod(radix) >= 1 << 62:
        _, first, inv = np.unique(points[:, coords], axis=0, return_index=True, return_inverse=True)
        return first, inv.reshape(-1)
    key = np.zeros(n, dtype=np.int64)
    for i, r in zip(coords, radix, strict=True):
        key = key * r + points[:, i]
    size = math.prod(radix)
    if size > 8 * n:
        _, first, inv = np.unique(key, return_index=True, return_inverse=True)
        return first, inv
    first_of = np.full(size, -1, dtype=np.int64)
    first_of[key[::-1]] = np.arange(n - 1, -1, -1)
    keys = np.flatnonzero(first_of >= 0)
    remap = np.empty(size, dtype=np.int64)
    remap[keys] = np.arange(len(keys))
    return first_of[keys], remap[key]


def _section(space: Space, points: np.ndarray, keys: tuple[str, ...], build: Any, base: Any, changed: bool,
             ) -> tuple[tuple[Any, ...], np.ndarray]:
    """(distinct objects, index column) of a section built by `build(values)` from the knobs `keys`."""
    n = points.shape[0]
    if not changed:
        return (base,), np.zeros(n, dtype=np.int64)
    coords = sorted(set().union(*(encoding.coords_of(space, k, None) for k in keys)))
    first, inv = _distinct(points, coords, space._card)
    objs = tuple(build(encoding.values(space, points[r], for_build=True)) for r in first.tolist())
    return objs, inv


def _algorithms(space: Space, cols: dict[str, np.ndarray], n: int) -> np.ndarray:
    """``(n, len(COLLECTIVES), n_dims)`` resolved algorithm codes, as ``CollectiveConfig.algorithms`` resolves."""
    d = space.n_dims
    written = set(space._coll_keys) if space._do_coll else set()

    def spec(kind: str) -> np.ndarray | None:
        if kind in written:
            return cols[kind]
        raw = getattr(space.base.collective, kind)
        if raw is None:
            return None
        raw = raw if isinstance(raw, list) else [raw] * d
        return np.array([[-1 if a is None else ALGORITHMS.index(a) for a in raw]], dtype=np.int8)

    default = DEFAULT_ALGORITHM[cols["topology"]]
    all_reduce = spec("all_reduce")
    out = np.empty((n, len(COLLECTIVES), d), dtype=np.int8)
    for k, kind in enumerate(COLLECTIVES):
        s = spec(kind.value)
        if s is None:
            s = all_reduce
        out[:, k] = default if s is None else np.where(s < 0, default, s)
    return out


def _network(space: Space, cols: dict[str, np.ndarray], n: int) -> NetworkColumns:
    dims = space._base_dims
    lk = space._link_key if space._do_net else None
    if lk is not None:
        bw = cols[lk] * (GIB if lk == "link_gibps" else GB)
    else:
        bw = np.broadcast_to(np.array([[x.link_bytes_per_s for x in dims]]), (n, len(dims)))
    if space._do_net:
        lat = cols["latency_ns"] * 1e-9
    else:
        lat = np.broadcast_to(np.array([[x.latency_s for x in dims]]), (n, len(dims)))
    return NetworkColumns(
        topology=np.array(cols["topology"], dtype=np.int8),
        npus=np.array(cols["npus"], dtype=np.int64),
        link_bytes_per_s=np.array(bw, dtype=np.float64),
        latency_s=np.array(lat, dtype=np.float64),
        efficiency=np.array(np.broadcast_to(np.array([[x.efficiency for x in dims]]), (n, len(dims)))),
    )


def _collective(space: Space, cols: dict[str, np.ndarray], n: int) -> CollectiveColumns:
    fid = FIDELITIES.index(space.base.collective.fidelity.value)
    return CollectiveColumns(
        algorithms=_algorithms(space, cols, n),
        chunks=np.array(cols["chunks"], dtype=np.int64),
        scheduling=_SCHEDULING_CODE[cols["scheduling"]],
        multidim=np.array(cols["multidim"], dtype=np.int8),
        fidelity=np.full(n, fid, dtype=np.int8),
    )


def in_box(space: Space, points: Any) -> tuple[np.ndarray, np.ndarray]:
    """(the points as an (n, d) int64 matrix, whether each row lies in the encoded box)."""
    p = np.asarray(points, dtype=np.int64)
    if p.ndim != 2 or p.shape[1] != len(space.cardinalities):
        raise ValueError(f"points must be an (n, {len(space.cardinalities)}) matrix, got shape {p.shape}")
    return p, np.all((p >= 0) & (p < space._card), axis=1)


def decode_columns(space: Space, points: Any) -> tuple[StepColumns, np.ndarray]:
    """See :meth:`cosmic.psa.Space.decode_columns`."""
    p, ok = in_box(space, points)
    n = p.shape[0]
    pc = p if ok.all() else np.where(ok[:, None], p, 0)
    cols = knob_columns(space, pc, space._build_rules)
    b = space.base
    trs, tr = _section(space, pc, space._train_keys, partial(decode.training_of, space), b.training, space._do_train)
    accs, acc = _section(space, pc, space._acc_keys, partial(decode.accelerator_of, space), b.accelerator,
                         space._do_acc)
    rank_orders = space._codecs["rank_order"].table or ()
    columns = StepColumns(
        n=n,
        models=(b.model,), model=np.zeros(n, dtype=np.int64),
        accelerators=accs, accelerator=acc, trainings=trs, training=tr,
        tp=np.array(cols["tp"], dtype=np.int64), sp=np.array(cols["sp"], dtype=np.int64),
        dp=np.array(cols["dp"], dtype=np.int64), pp=np.array(cols["pp"], dtype=np.int64),
        zero=np.array(cols["zero"], dtype=np.int64),
        sequence_parallel=np.array(cols["sequence_parallel"], dtype=bool),
        rank_orders=rank_orders, rank_order=np.array(cols["rank_order"], dtype=np.int64),
        network=_network(space, cols, n),
        collective=_collective(space, cols, n),
        rebuild=lambda i: space.decode(p[i]),
        **_expert_columns(space, cols, n),
    )
    return columns, ok


def _expert_columns(space: Space, cols: dict[str, np.ndarray], n: int) -> dict[str, Any]:
    """The expert parallelism as `StepColumns` fields (none for the defaults EP 1, ETP = TP, all-to-all, as
    `StepColumns.from_configs` leaves them); searched knobs come from their columns, the others from the base."""
    par, ch = space.base.parallel, space._changed
    out: dict[str, Any] = {}
    if "ep" in ch or par.ep != 1:
        out["ep"] = np.array(np.broadcast_to(cols["ep"], (n,)), dtype=np.int64)
    if "etp" in ch or par.etp is not None:
        etp = np.broadcast_to(cols["etp"], (n,))
        out["etp"] = np.array(np.where(etp == 0, cols["tp"], etp), dtype=np.int64)  # 0: follows tp
    if "shard_group" in ch or par.shard_group is not None:
        out["shard_group"] = np.array(np.broadcast_to(cols["shard_group"], (n,)), dtype=np.int64)  # 0: all DP x SP
    if "moe_dispatcher" in ch or par.moe_dispatcher != "alltoall":
        out["dispatcher"] = np.array(np.broadcast_to(cols["moe_dispatcher"], (n,)), dtype=np.int8)
    if "cp_algorithm" in ch or par.cp_algorithm != "p2p":
        out["cp_algorithm"] = np.array(np.broadcast_to(cols["cp_algorithm"], (n,)), dtype=np.int8)
    return out
