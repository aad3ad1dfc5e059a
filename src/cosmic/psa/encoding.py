"""The integer encoding of a :class:`Space`: its coordinates (the joint workload group, the NPU tuple, one per
other knob or dimension), which coordinates each knob depends on, the values at a point, and encode."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import numpy as np

from cosmic.collective.communicator import expert_layout_shapes, layout_shapes
from cosmic.errors import ConfigError, CosmicError
from cosmic.psa import decode
from cosmic.psa._common import (
    DEGREES,
    STRUCTURAL,
    Coord,
    Deps,
    conflict_phrase,
    fmt_err,
    label,
    value_key,
)
from cosmic.psa.domain import DimMode, Knob
from cosmic.psa.knobs import (
    KNOBS,
    base_values,
)
from cosmic.psa.rules import Derived
from cosmic.sim.config import (
    Schedule,
    SystemConfig,
)
from cosmic.workload.parallel import layout_order

if TYPE_CHECKING:
    from cosmic.psa.space import Space

CODING_LIMIT = 200_000
"""Most coordinate values the encoding may hold in all (a per-dimension knob counts once per dimension)."""
COMBO_LIMIT = 200_000
"""Most raw combinations of the structural workload knobs enumerated for the joint coordinate."""


def build_coords(space: Space) -> None:
    kd, n = space.knob_defs, space.n_dims
    coords: list[Coord] = []
    quotient = next((d for d in space.derived if d.rule == "npus_quotient"), None)
    group = [k for k in STRUCTURAL if k in kd]
    space._group_checks = structural_checks(space)
    if group:
        combos = workload_combos(space, group, quotient)
        if not combos:
            names = minimal_conflict_structural(space, group, quotient)
            raise fmt_err(
                space.file, "constraints",
                "unsatisfiable: " + conflict_phrase(names)
                + f" for the declared domains of {', '.join(group)} ({space.n_npus} NPUs)",
            )
        labels = [",".join(f"{k}={label(c[k])}" for k in group) for c in combos]
        assign: list[tuple[tuple[str, int | None, Any], ...]] = [tuple((k, None, c[k]) for k in group) for c in combos]
        coords.append(Coord(",".join(group), tuple(group), labels, assign))
    elif quotient is not None:
        v = dict(space._bv)
        v[quotient.target] = quotient.fn(v)
        if math.prod(v[d] for d in DEGREES) != space.n_npus:
            raise fmt_err(space.file, f"derived.{quotient.target}",
                           f"n_npus {space.n_npus} is not divisible by {'*'.join(quotient.inputs)}")
    if "npus" in kd:
        k = kd["npus"]
        tuples = npus_tuples(space, k)
        if not tuples:
            raise fmt_err(space.file, "constraints",
                           f"unsatisfiable: built-in constraint 'prod(npus) == n_npus' ({space.n_npus}) has no "
                           f"solution in the domain {k.domain.spec} over {n} dimensions ({k.mode.value})")
        labels = ["x".join(str(x) for x in t) for t in tuples]
        assign = [tuple(("npus", i, t[i]) for i in range(n)) for t in tuples]
        coords.append(Coord("npus", ("npus",), labels, assign))
    plain = {name: k for name, k in kd.items() if name not in group and name != "npus"}
    n_values = sum(len(k.domain) * (n if k.mode is DimMode.PER_DIM else 1) for k in plain.values())
    if n_values > CODING_LIMIT:
        raise fmt_err(space.file, "knobs",
                       f"the encoding would hold {n_values:,} coordinate values (a per-dimension knob counts once "
                       f"per dimension; at most {CODING_LIMIT:,}); narrow the domains")
    for name, k in plain.items():
        vals = k.domain.values
        numeric = all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in vals)
        if k.mode is DimMode.PER_DIM:
            for i in range(n):
                coords.append(Coord(f"{name}[{i}]", (name,), [label(x) for x in vals],
                                     [((name, i, x),) for x in vals], numeric))
        elif k.mode is DimMode.SHARED:
            coords.append(Coord(name, (name,), [label(x) for x in vals],
                                 [tuple((name, i, x) for i in range(n)) for x in vals], numeric))
        else:
            coords.append(Coord(name, (name,), [label(x) for x in vals], [((name, None, x),) for x in vals],
                                 numeric))
    space._coords = coords
    space.dim_names = tuple(c.name for c in coords)
    space.cardinalities = tuple(c.card for c in coords)
    space._card = np.array(space.cardinalities, dtype=np.int64)
    space._perdim_written = tuple(
        sorted({a[0] for c in coords for asg in c.assign for a in asg if a[1] is not None})
    )
    space._lookup = [{value_key(tuple(a[2] for a in asg)): j for j, asg in enumerate(c.assign)} for c in coords]
    # the assignments as {knob: value} per coordinate value (used when no knob is written per dimension)
    space._scalar_assign = [[{name: x for name, _, x in asg} for asg in c.assign] for c in coords]


def structural_checks(space: Space) -> list[tuple[str, Callable[[dict[str, Any]], bool]]]:
    """The checks of `sim.config.check_config` that the joint workload coordinate satisfies by construction."""
    return [*_dense_checks(space), *_moe_checks(space)]


def _dense_checks(space: Space) -> list[tuple[str, Callable[[dict[str, Any]], bool]]]:
    m, tr = space.base.model, space.base.training
    heads, kv, ffn, seq, layers, gb = m.heads, m.n_kv_heads, m.ffn, space.base.seq_len, m.layers, tr.global_batch
    nn, vs = space.n_npus, tr.virtual_stages

    def interleaved_layers(v: dict[str, Any]) -> bool:
        return v["schedule"] is not Schedule.INTERLEAVED or layers % (v["pp"] * vs) == 0

    def interleaved_mbs(v: dict[str, Any]) -> bool:
        if v["schedule"] is not Schedule.INTERLEAVED or v["pp"] == 1:
            return True
        return (gb // (v["dp"] * v["micro_batch"])) % v["pp"] == 0

    return [
        ("dp*tp*pp*sp == n_npus", lambda v: v["dp"] * v["tp"] * v["pp"] * v["sp"] == nn),
        ("tp divides heads", lambda v: heads % v["tp"] == 0),
        ("tp and kv_heads divide one another", lambda v: kv % v["tp"] == 0 or v["tp"] % kv == 0),
        ("tp divides ffn_hidden", lambda v: ffn % v["tp"] == 0),
        ("sp divides seq_len", lambda v: seq % v["sp"] == 0),
        ("dp*micro_batch divides global_batch", lambda v: gb % (v["dp"] * v["micro_batch"]) == 0),
        ("pp <= layers", lambda v: v["pp"] <= layers),
        ("interleaved: pp*virtual_stages divides layers", interleaved_layers),
        ("interleaved: micro-batches a multiple of pp", interleaved_mbs),
        ("shard_group divides dp*sp",
         lambda v: not v.get("shard_group") or (v["dp"] * v["sp"]) % v["shard_group"] == 0),
        ("virtual_stages > 1 needs interleaved",
         lambda v: vs == 1 or v["schedule"] is Schedule.INTERLEAVED),
    ]


def expert_tp(v: dict[str, Any]) -> int:
    """The resolved expert TP degree of values `v` (0 = follows tp, as ParallelConfig.expert_tp)."""
    return int(v["etp"] or v["tp"])


def _moe_checks(space: Space) -> list[tuple[str, Callable[[dict[str, Any]], bool]]]:
    """`sim.config._check_moe` as structural checks (Megatron-Core MoE parallel folding): a MoE space samples only
    expert layouts the simulator accepts. Dense models get none (their ep must stay 1)."""
    moe = space.base.model.moe
    if moe is None:
        return [("ep == 1 without MoE", lambda v: v["ep"] == 1)]
    experts, width = moe.experts, moe.expert_ffn_hidden
    searched_npus = "npus" in space.knob_defs
    dims = tuple(d.npus for d in space.base.network.dims)

    def fits(v: dict[str, Any]) -> bool:
        if searched_npus:  # the dimension sizes are another coordinate; the simulator still checks the fit
            return True
        try:
            order = layout_order(v["tp"], v["sp"], v["dp"], v["pp"], v["rank_order"])
            layout_shapes((v["tp"], v["sp"], v["dp"], v["pp"]), order, dims)
            expert_layout_shapes((v["tp"], v["sp"], v["dp"], v["pp"]), (v["ep"], expert_tp(v)), dims)
        except CosmicError:
            return False
        return True

    def pp_outermost(v: dict[str, Any]) -> bool:
        order = layout_order(v["tp"], v["sp"], v["dp"], v["pp"], v["rank_order"])
        return v["pp"] == 1 or order.index("pp") == sum(1 for d in (v["tp"], v["sp"], v["dp"]) if d > 1)

    return [
        ("ep divides experts", lambda v: experts % v["ep"] == 0),
        ("etp divides expert_ffn_hidden", lambda v: width % expert_tp(v) == 0),
        ("one expert: etp == tp", lambda v: experts > 1 or expert_tp(v) == v["tp"]),
        ("ep*etp divides tp*sp*dp", lambda v: (v["tp"] * v["sp"] * v["dp"]) % (v["ep"] * expert_tp(v)) == 0),
        ("MoE with tp > 1 needs sequence_parallel", lambda v: v["tp"] == 1 or bool(v["sequence_parallel"])),
        ("MoE: pp outermost in rank_order", pp_outermost),
        ("expert groups fit the network dimensions", fits),
    ]


def workload_raw(space: Space, group: list[str], quotient: Derived | None) -> Iterable[dict[str, Any]]:
    kd = space.knob_defs
    degs = [k for k in group if k in DEGREES]
    rest = [k for k in group if k not in DEGREES]
    nn = space.n_npus

    divisors = {k: [x for x in kd[k].domain.values if nn % x == 0] for k in degs}  # the others never fit

    def rec(i: int, acc: dict[str, Any], prod: int) -> Iterable[dict[str, Any]]:
        if i == len(degs):
            yield acc
            return
        k = degs[i]
        for x in divisors[k]:
            if nn % (prod * x) == 0:  # a degree product must divide the NPU count
                yield from rec(i + 1, {**acc, k: x}, prod * x)

    fixed = math.prod(space._bv[d] for d in DEGREES if d not in degs and (quotient is None or d != quotient.target))
    if nn % fixed:
        return
    for partial in rec(0, {}, fixed):
        for tail in itertools.product(*(kd[k].domain.values for k in rest)):
            yield {**partial, **dict(zip(rest, tail, strict=True))}


def group_values(space: Space, combo: dict[str, Any], quotient: Derived | None) -> dict[str, Any] | None:
    v = dict(space._bv)
    v.update(combo)
    if quotient is not None:
        prod = math.prod(v[s] for s in quotient.inputs)
        if space.n_npus % prod:
            return None
        v[quotient.target] = space.n_npus // prod
    return v


def workload_combos(space: Space, group: list[str], quotient: Derived | None) -> list[dict[str, Any]]:
    out = []
    for i, combo in enumerate(workload_raw(space, group, quotient)):
        if i >= COMBO_LIMIT:
            raise fmt_err(space.file, "knobs.workload",
                           f"more than {COMBO_LIMIT:,} combinations of {', '.join(group)} divide the "
                           f"{space.n_npus:,} NPUs; narrow their domains")
        v = group_values(space, combo, quotient)
        if v is not None and all(f(v) for _, f in space._group_checks):
            out.append(combo)
    return out


def minimal_conflict_structural(space: Space, group: list[str], quotient: Derived | None) -> list[str]:
    checks = list(space._group_checks)
    raw = [group_values(space, c, quotient) for c in workload_raw(space, group, quotient)]
    raw_ok = [v for v in raw if v is not None]
    if not raw_ok:
        return ["dp*tp*pp*sp == n_npus"]

    def sat(cs: list[tuple[str, Any]]) -> bool:
        return any(all(f(v) for _, f in cs) for v in raw_ok)

    keep = list(checks)
    for c in checks:
        trial = [x for x in keep if x is not c]
        if not sat(trial):
            keep = trial
    return [n for n, _ in keep] or ["dp*tp*pp*sp == n_npus"]


def npus_tuples(space: Space, k: Knob) -> list[tuple[int, ...]]:
    n, nn = space.n_dims, space.n_npus
    vals = [x for x in k.domain.values if nn % x == 0]  # only divisors of the NPU count can take part
    if k.mode is DimMode.SHARED:
        return [tuple([x] * n) for x in vals if x**n == nn]
    out: list[tuple[int, ...]] = []

    def rec(prefix: tuple[int, ...], prod: int) -> None:  # divisibility pruning: a DP over dimensions
        if len(prefix) == n:
            if prod == nn:
                out.append(prefix)
            return
        for x in vals:
            if nn % (prod * x) == 0:
                rec(prefix + (x,), prod * x)

    rec((), 1)
    return out


def dependencies(space: Space) -> dict[str, Any]:
    """name -> frozenset of coordinates (scalar) or tuple of frozensets (per dimension)."""
    n = space.n_dims
    deps: dict[str, Any] = {}
    for name, d in KNOBS.items():
        deps[name] = tuple(frozenset() for _ in range(n)) if d.per_dim else frozenset()
    for ci, c in enumerate(space._coords):
        for asg in c.assign[:1]:
            for name, dim, _ in asg:
                if dim is None:
                    deps[name] = deps[name] | {ci}
                else:
                    lst = list(deps[name])
                    lst[dim] = lst[dim] | {ci}
                    deps[name] = tuple(lst)
        if c.name == "npus":  # the joint tuple touches every dimension
            deps["npus"] = tuple(frozenset({ci}) for _ in range(n))
    for r in space.derived:
        if KNOBS[r.target].per_dim:
            per = []
            for i in range(n):
                s: frozenset[int] = frozenset()
                for inp in r.inputs:
                    d = deps[inp]
                    s |= d[i] if isinstance(d, tuple) else d
                per.append(s)
            deps[r.target] = tuple(per)
        else:
            s = frozenset()
            for inp in r.inputs:
                d = deps[inp]
                s |= frozenset().union(*d) if isinstance(d, tuple) else d
            deps[r.target] = s
    return deps


def coords_of(space: Space, name: str, index: int | None) -> Deps:
    d = space._deps.get(name)
    if d is None:
        return frozenset()
    if isinstance(d, tuple):
        if index is None:
            return frozenset().union(*d)
        if -len(d) <= index < len(d):
            return d[index]
        return frozenset()
    return d


def values(space: Space, point: Any, *, for_build: bool = False) -> dict[str, Any]:
    """Every knob's value (searched, derived or from the base) at `point`, plus the constants.

    With `for_build`, only the derived knobs the configuration needs are computed (not the unit views)."""
    v = space._v0.copy()
    idx = point.tolist() if isinstance(point, np.ndarray) else point
    pd = space._perdim_written
    if pd:
        for name in pd:
            v[name] = list(v[name])
        for c, j in zip(space._coords, idx, strict=True):
            for name, dim, x in c.assign[j]:
                if dim is None:
                    v[name] = x
                else:
                    v[name][dim] = x
        for name in pd:
            v[name] = tuple(v[name])
    else:  # every assignment is a whole value: one dict update per coordinate
        for upd, j in zip(space._scalar_assign, idx, strict=True):
            v.update(upd[j])
    for r in space._build_rules if for_build else space.derived:
        v[r.target] = r.fn(v)
    return v


def encode(space: Space, config: SystemConfig) -> np.ndarray:
    """The point whose decoding is `config` (raises ConfigError when `config` is not in the space)."""
    v = base_values(config)
    if "etp" in space.knob_defs and v["etp"] == 0:  # an expert TP that follows tp is that degree
        v["etp"] = v["tp"]
    pt = np.empty(len(space._coords), dtype=np.int64)
    for ci, c in enumerate(space._coords):
        asg0 = c.assign[0]
        got = tuple((v[name][dim] if dim is not None else v[name]) for name, dim, _ in asg0)
        j = space._lookup[ci].get(value_key(got))
        if j is None:
            raise ConfigError(f"value {label(got if len(got) > 1 else got[0])} is not in the space's domain",
                              key=c.name)
        pt[ci] = j
    dv = base_values(decode.decode(space, pt))
    for name in sorted(v):
        if value_key(dv[name]) != value_key(v[name]):
            raise ConfigError(f"config has {label(v[name])} but the space derives {label(dv[name])}",
                              key=name)
    if config.model != space.base.model or config.training.global_batch != space.base.training.global_batch:
        raise ConfigError("config's model or batch differs from the space's base", key="model")
    return pt


def check_point(space: Space, point: Any) -> np.ndarray:
    p = np.asarray(point, dtype=np.int64).reshape(-1)
    if p.shape[0] != len(space._coords) or (p < 0).any() or (p >= space._card).any():
        raise ValueError(f"point {p.tolist()} is outside the box of cardinalities {list(space.cardinalities)}")
    return p
