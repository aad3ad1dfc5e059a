"""Compile a PSA (a validated mapping) into a :class:`Space`: integer encoding, feasible sampling, counting.

Encoding. Each coordinate of the encoded vector is an integer ``0..cardinality-1``:

* the *workload group*: one joint coordinate over every combination of the searched structural workload knobs
  (dp, tp, pp, sp, micro_batch, schedule — minus a derived degree) that satisfies DP·TP·PP·SP = NPUs, TP dividing
  the heads, kv-heads and FFN, SP dividing the sequence, DP·micro_batch dividing the batch and PP <= layers;
* the *NPU tuple*: one joint coordinate over the per-dimension NPU counts whose product is the base's NPU count;
* every other knob: one coordinate per network dimension (``per_dim``) or one coordinate (``scalar``, ``shared``).

So every integer vector in the box satisfies the equality constraints; the remaining constraints (declared ones and
built-in cross-coordinate checks) are grouped into independent components of the constraint graph. A component
small enough is enumerated once: its feasible assignments are sampled uniformly and looked up in O(1); a larger one is
sampled by rejection.
"""

from __future__ import annotations

import copy
import itertools
import math
import operator
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cosmic.collective.algorithms import Algorithm, Collective
from cosmic.errors import ConfigError, CosmicError, extra_keys
from cosmic.psa import columns as _columns
from cosmic.psa.domain import DimMode, Knob, parse_domain
from cosmic.psa.expr import ExprError, compile_expr
from cosmic.psa.knobs import (
    ALGORITHM_KNOBS,
    COLLECTIVE_KNOBS,
    COMPUTE_KNOBS,
    KNOBS,
    NETWORK_KNOBS,
    PARALLEL_KNOBS,
    STACKS,
    TRAINING_KNOBS,
    base_values,
    constants,
)
from cosmic.psa.objectives import Objective
from cosmic.psa.rules import RULES, Derived, derived, make_codecs
from cosmic.sim.columns import StepColumns
from cosmic.sim.config import (
    Fidelity,
    Schedule,
    SystemConfig,
    config_from_dict,
    load_config,
)
from cosmic.units import GB, GIB, TFLOP
from cosmic.workload.parallel import group_spans

ENUM_LIMIT = 100_000
"""Largest number of assignments enumerated to count one constraint component (larger: Monte Carlo)."""
BOX_ENUM_LIMIT = 20_000
"""Encoded boxes up to this size are counted by enumerating every point."""
MC_SAMPLES = 20_000
CODING_LIMIT = 200_000
"""Most coordinate values the encoding may hold in all (a per-dimension knob counts once per dimension)."""
COMBO_LIMIT = 200_000
"""Most raw combinations of the structural workload knobs enumerated for the joint coordinate."""
_TOP_KEYS = ("name", "description", "base", "knobs", "derived", "constraints", "objectives", "memory_fit")
_STRUCTURAL = ("dp", "tp", "pp", "sp", "micro_batch", "schedule")
_DEGREES = ("dp", "tp", "pp", "sp")
_BW = ("link_gibps", "link_gbps", "npu_bandwidth_gibps", "npu_bandwidth_gbps")

Deps = frozenset[int]


@dataclass(frozen=True)
class Constraint:
    """A static constraint: `fn(values) -> bool` over the coordinates `coords`."""

    name: str
    text: str
    fn: Callable[[dict[str, Any]], bool] = field(compare=False, repr=False)
    coords: Deps = frozenset()
    builtin: bool = False


@dataclass
class _Coord:
    name: str
    knobs: tuple[str, ...]
    labels: list[str]
    assign: list[tuple[tuple[str, int | None, Any], ...]]
    ordered_numeric: bool = False

    @property
    def card(self) -> int:
        return len(self.assign)


@dataclass
class _Component:
    coords: tuple[int, ...]
    constraints: tuple[Constraint, ...]
    box: int
    count: float = 0.0
    exact: bool = True
    feasible: np.ndarray | None = None
    feasible_set: frozenset[tuple[int, ...]] | None = None
    table: np.ndarray | None = None  # bool, indexed by the mixed-radix key of the component's coordinates


def _plain(v: Any) -> Any:
    if isinstance(v, (tuple, list)):
        return [_plain(x) for x in v]
    if isinstance(v, str):  # StrEnum too
        return str(v.value) if hasattr(v, "value") else v
    return v


def _label(v: Any) -> str:
    p = _plain(v)
    if isinstance(p, list):
        return ",".join(str(x) for x in p)
    if isinstance(p, float):
        return f"{p:g}"
    return str(p)


def _key(v: Any) -> Any:
    """Hashable, float-tolerant key of a value (for encode)."""
    if isinstance(v, (tuple, list)):
        return tuple(_key(x) for x in v)
    if isinstance(v, float):
        return round(v, 6)
    return v



def _tuple_getter(keys: tuple[str, ...]) -> Callable[[dict[str, Any]], tuple[Any, ...]]:
    """``f(d) == tuple(d[k] for k in keys)``, computed in C (operator.itemgetter returns a bare value for one key)."""
    if len(keys) == 0:
        return lambda d: ()
    if len(keys) == 1:
        (k,) = keys
        return lambda d: (d[k],)
    return operator.itemgetter(*keys)


def _updated(cfg: SystemConfig, update: dict[str, Any]) -> SystemConfig:
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

def _mixed_radix(rows: np.ndarray, radix: np.ndarray) -> np.ndarray:
    """Key of each row of `rows` (n, k) as a number in the mixed radix `radix` (first column most significant)."""
    key = np.zeros(rows.shape[0], dtype=np.int64)
    for j in range(rows.shape[1]):
        key = key * int(radix[j]) + rows[:, j]
    return key


def _fmt_err(file: str | None, key: str, msg: str) -> ConfigError:
    return ConfigError(msg, file=file, key=key)


class Space:
    """A compiled PSA: the encoded search space agents see.

    Build one with :func:`cosmic.psa.load_psa`. Points are 1-D int64 arrays of length ``len(dim_names)``.

    Example:
        >>> import numpy as np
        >>> from cosmic.psa import load_psa
        >>> s = load_psa("cosmic-s1-gpt3-175b-workload")
        >>> pts = s.sample(np.random.default_rng(0), 3)
        >>> all(s.is_feasible(p) for p in pts)
        True
        >>> c = s.decode(pts[0]); c.parallel.n_npus == c.network.n_npus
        True
    """

    def __init__(self, data: Any, *, file: str | None = None, name: str | None = None,
                 base_dir: Path | None = None) -> None:
        self.file = file
        self._init_args = (copy.deepcopy(data), file, name, base_dir)
        if not isinstance(data, dict):
            raise ConfigError("a PSA must be a mapping", file=file)
        for k in data:
            if k not in _TOP_KEYS:
                raise _fmt_err(file, str(k), f"unknown key (allowed: {', '.join(_TOP_KEYS)})")
        self.name: str = str(data.get("name") or name or (Path(file).stem if file else "psa"))
        self.description: str = str(data.get("description") or "")
        self.base: SystemConfig = self._parse_base(data.get("base"), base_dir)
        self._bv: dict[str, Any] = base_values(self.base)
        self._consts = constants(self.base)
        self.n_dims = len(self.base.network.dims)
        self.n_npus = self.base.network.n_npus
        self.knob_defs: dict[str, Knob] = self._parse_knobs(data.get("knobs"))
        orders = [self._bv["rank_order"], *(self.knob_defs["rank_order"].domain.values if "rank_order" in
                                           self.knob_defs else ())]
        self._codecs = make_codecs(orders)
        self.derived: tuple[Derived, ...] = self._parse_derived(data.get("derived"))
        self.objectives: tuple[Objective, ...] = self._parse_objectives(data.get("objectives"))
        mf = data.get("memory_fit", True)
        if not isinstance(mf, bool):
            raise _fmt_err(file, "memory_fit", f"must be true or false, got {mf!r}")
        self.memory_fit: bool = mf
        self._changed = frozenset(self.knob_defs) | {d.target for d in self.derived}
        self._v0 = {**self._bv, **self._consts}
        self._build_rules = tuple(d for d in self.derived if d.rule not in ("unit_view", "weight_sharded_of"))
        self._build_coords()
        self._deps = self._dependencies()
        self.constraints: tuple[Constraint, ...] = self._parse_constraints(data.get("constraints"))
        self._prepare_builders()
        self._count()

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle as the PSA mapping it was compiled from (closures are rebuilt), for process-pool backends."""
        data, file, name, base_dir = self._init_args
        return (_rebuild, (data, file, name, base_dir))

    # ---- parsing -----------------------------------------------------------------------------------------------

    def _parse_base(self, raw: Any, base_dir: Path | None) -> SystemConfig:
        file = self.file
        if raw is None:
            raise _fmt_err(file, "base", "required key is missing (a `cosmic simulate` config, inline or a path)")
        try:
            if isinstance(raw, str):
                p = Path(raw)
                if not p.is_absolute() and base_dir is not None:
                    p = base_dir / p
                return load_config(p)
            if isinstance(raw, dict):
                return config_from_dict(raw)
        except ConfigError as exc:
            if isinstance(raw, str):
                raise _fmt_err(file, "base", str(exc)) from None
            key = "base" + (f".{exc.key}" if exc.key else "")
            raise _fmt_err(file, key, exc.detail) from None
        raise _fmt_err(file, "base", f"must be a mapping or a path, got {type(raw).__name__}")

    def _parse_knobs(self, raw: Any) -> dict[str, Knob]:
        file = self.file
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise _fmt_err(file, "knobs", "must map stacks (workload, collective, network, compute) to knobs")
        out: dict[str, Knob] = {}
        for stack, entries in raw.items():
            skey = f"knobs.{stack}"
            if stack not in STACKS:
                raise _fmt_err(file, skey, f"unknown stack (allowed: {', '.join(STACKS)})")
            if entries is None:
                continue
            if not isinstance(entries, dict):
                raise _fmt_err(file, skey, "must map knob names to domains")
            for kname, spec in entries.items():
                key = f"{skey}.{kname}"
                if kname not in KNOBS:
                    import difflib

                    hint = difflib.get_close_matches(str(kname), list(KNOBS), n=1)
                    raise _fmt_err(file, key, f"unknown knob {kname!r}" + (f" (did you mean {hint[0]!r}?)" if hint
                                   else "") + f"; known: {', '.join(KNOBS)}")
                defn = KNOBS[kname]
                if defn.stack != stack:
                    raise _fmt_err(file, key, f"knob {kname!r} belongs to the {defn.stack} stack")
                dom, mode_raw = parse_domain(spec, defn, file=file, key=key)
                if mode_raw is None:
                    mode = DimMode.PER_DIM if defn.per_dim else DimMode.SCALAR
                else:
                    try:
                        mode = DimMode(mode_raw)
                    except ValueError:
                        raise _fmt_err(file, f"{key}.mode", f"{mode_raw!r} is not one of scalar, per_dim, shared") \
                            from None
                    if defn.per_dim and mode is DimMode.SCALAR:
                        raise _fmt_err(file, f"{key}.mode", "a per-dimension knob takes per_dim or shared")
                    if not defn.per_dim and mode is not DimMode.SCALAR:
                        raise _fmt_err(file, f"{key}.mode", f"{kname} has no per-dimension value; use scalar")
                out[kname] = Knob(defn, dom, mode)
        if "weight_sharded" in out and "zero" in out:
            raise _fmt_err(file, "knobs.workload.zero", "search weight_sharded or zero, not both")
        bw = [k for k in _BW if k in out]
        if len(bw) > 1:
            raise _fmt_err(file, f"knobs.network.{bw[1]}", f"only one bandwidth knob may be searched (also {bw[0]})")
        return out

    def _parse_derived(self, raw: Any) -> tuple[Derived, ...]:
        file = self.file
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise _fmt_err(file, "derived", "must map derived knob names to {rule: ..., from: [...]}")
        rules: dict[str, Derived] = {}
        for target, spec in raw.items():
            key = f"derived.{target}"
            if target not in KNOBS:
                raise _fmt_err(file, key, f"unknown knob {target!r}")
            if target in self.knob_defs:
                raise _fmt_err(file, key, f"{target!r} is both a searched knob and a derived knob")
            if isinstance(spec, str):
                spec = {"rule": spec}
            if not isinstance(spec, dict) or "rule" not in spec:
                raise _fmt_err(file, key, f"needs rule: one of {', '.join(RULES)}")
            extra = extra_keys(spec, {"rule", "from"})
            if extra:
                raise _fmt_err(file, f"{key}.{extra[0]}", "unknown key (allowed: rule, from)")
            rule = spec["rule"]
            src = spec.get("from")
            if isinstance(src, str):
                src = [src]
            if src is not None and (not isinstance(src, list) or not all(isinstance(s, str) for s in src)):
                raise _fmt_err(file, f"{key}.from", "must be a knob name or a list of knob names")
            for s in src or []:
                if s not in KNOBS:
                    raise _fmt_err(file, f"{key}.from", f"unknown knob {s!r}")
            rules[target] = self._make_rule(target, rule, src, key)
        # implicit companions, so that every name means what the config will contain
        changed = set(self.knob_defs) | set(rules)
        implicit: list[Derived] = []
        if "weight_sharded" in changed and "zero" not in changed:
            implicit.append(derived("zero", "zero_of", ("weight_sharded",), self._codecs, implicit=True))
        if "zero" in changed and "weight_sharded" not in changed:
            implicit.append(derived("weight_sharded", "weight_sharded_of", ("zero",), self._codecs, implicit=True))
        npb = [k for k in ("npu_bandwidth_gibps", "npu_bandwidth_gbps") if k in changed]
        links = [k for k in ("link_gibps", "link_gbps") if k in changed]
        if npb and not links:
            tgt = "link_gibps" if npb[0].endswith("gibps") else "link_gbps"
            implicit.append(self._make_rule(tgt, "per_link", [npb[0]], f"derived.{tgt}", implicit=True))
            links = [tgt]
        col = self.base.collective
        if "topology" in changed and "all_reduce" not in changed and col.all_reduce is None:
            implicit.append(self._make_rule("all_reduce", "algorithm_from_topology", None, "derived", implicit=True))
            changed.add("all_reduce")
        if "all_reduce" in changed:
            for kind in ALGORITHM_KNOBS[1:]:
                if kind not in changed and getattr(col, kind) is None:
                    implicit.append(self._make_rule(kind, "copy", ["all_reduce"], "derived", implicit=True))
        changed |= {d.target for d in implicit}
        # views of the bandwidth in the other units (constraints may use any of them)
        if changed & {"topology", "npus", *_BW}:
            auth = links[0] if links else "link_gibps"
            for view in _BW:
                if view in changed or view == auth:
                    continue
                implicit.append(self._bandwidth_view(view, auth))
        allr = list(rules.values()) + implicit
        return self._order(allr)

    def _bandwidth_view(self, view: str, auth: str) -> Derived:
        to_bytes = GIB if auth.endswith("gibps") else GB
        unit = GIB if view.endswith("gibps") else GB
        return derived(view, "unit_view", (auth, "topology", "npus"), self._codecs,
                       params=(to_bytes, unit, view.startswith("npu_")), implicit=True)

    def _make_rule(self, target: str, rule: Any, src: list[str] | None, key: str, *, implicit: bool = False) -> Derived:
        file = self.file
        tdef = KNOBS[target]

        def mk(inputs: tuple[str, ...], params: tuple[Any, ...] = ()) -> Derived:
            return derived(target, rule, inputs, self._codecs, params=params, implicit=implicit)

        if rule == "npus_quotient":
            if target not in _DEGREES:
                raise _fmt_err(file, key, f"npus_quotient derives one of {', '.join(_DEGREES)}, not {target!r}")
            others = tuple(d for d in _DEGREES if d != target)
            src_t = tuple(src) if src else others
            if sorted(src_t) != sorted(others):
                raise _fmt_err(file, f"{key}.from", f"npus_quotient for {target} takes from: [{', '.join(others)}]")
            return mk(src_t, (self.n_npus,))
        if rule == "copy":
            if not src or len(src) != 1:
                raise _fmt_err(file, f"{key}.from", "copy takes exactly one source knob")
            s = src[0]
            sdef = KNOBS[s]
            if sdef.kind != tdef.kind or sdef.per_dim != tdef.per_dim:
                raise _fmt_err(file, f"{key}.from", f"cannot copy {s!r} ({sdef.kind}) onto {target!r} ({tdef.kind})")
            return mk((s,))
        if rule == "algorithm_from_topology":
            if target not in ALGORITHM_KNOBS:
                raise _fmt_err(file, key, f"algorithm_from_topology derives a collective algorithm, not {target!r}")
            s = (src or ["topology"])[0]
            if (src and len(src) != 1) or s != "topology":
                raise _fmt_err(file, f"{key}.from", "algorithm_from_topology takes from: topology")
            return mk(("topology",))
        if rule == "per_link":
            if target not in ("link_gibps", "link_gbps"):
                raise _fmt_err(file, key, f"per_link derives link_gibps or link_gbps, not {target!r}")
            want = "npu_bandwidth_gibps" if target == "link_gibps" else "npu_bandwidth_gbps"
            s = (src or [want])[0]
            if (src and len(src) != 1) or s != want:
                raise _fmt_err(file, f"{key}.from", f"per_link for {target} takes from: {want} (same unit)")
            return mk((s, "topology", "npus"))
        raise _fmt_err(file, f"{key}.rule", f"unknown rule {rule!r} (allowed: {', '.join(RULES)})")

    def _order(self, rules: list[Derived]) -> tuple[Derived, ...]:
        by_target = {r.target: r for r in rules}
        order: list[Derived] = []
        state: dict[str, int] = {}

        def visit(t: str, path: list[str]) -> None:
            if state.get(t) == 2:
                return
            if state.get(t) == 1:
                cyc = path[path.index(t):] + [t]
                raise _fmt_err(self.file, "derived", f"derived knobs form a cycle: {' -> '.join(cyc)}")
            state[t] = 1
            for i in by_target[t].inputs:
                if i in by_target:
                    visit(i, path + [t])
            state[t] = 2
            order.append(by_target[t])

        for r in rules:
            visit(r.target, [])
        return tuple(order)

    def _parse_objectives(self, raw: Any) -> tuple[Objective, ...]:
        if raw is None:
            raw = ["step_time"]
        if not isinstance(raw, list):
            raw = [raw]
        if not raw:
            raise _fmt_err(self.file, "objectives", "needs at least one objective")
        objs = tuple(Objective.from_spec(s, file=self.file, key=f"objectives[{i}]") for i, s in enumerate(raw))
        names = [o.name for o in objs]
        if len(set(names)) != len(names):
            raise _fmt_err(self.file, "objectives", "an objective is listed twice")
        return objs

    # ---- coordinates -------------------------------------------------------------------------------------------

    def _build_coords(self) -> None:
        kd, n = self.knob_defs, self.n_dims
        coords: list[_Coord] = []
        quotient = next((d for d in self.derived if d.rule == "npus_quotient"), None)
        group = [k for k in _STRUCTURAL if k in kd]
        self._group_checks: list[tuple[str, Callable[[dict[str, Any]], bool]]] = self._structural_checks()
        if group:
            combos = self._workload_combos(group, quotient)
            if not combos:
                names = self._minimal_conflict_structural(group, quotient)
                raise _fmt_err(
                    self.file, "constraints",
                    "unsatisfiable: " + _conflict_phrase(names)
                    + f" for the declared domains of {', '.join(group)} ({self.n_npus} NPUs)",
                )
            labels = [",".join(f"{k}={_label(c[k])}" for k in group) for c in combos]
            assign = [tuple((k, None, c[k]) for k in group) for c in combos]
            coords.append(_Coord(",".join(group), tuple(group), labels, assign))
        elif quotient is not None:
            v = dict(self._bv)
            v[quotient.target] = quotient.fn(v)
            if math.prod(v[d] for d in _DEGREES) != self.n_npus:
                raise _fmt_err(self.file, f"derived.{quotient.target}",
                               f"n_npus {self.n_npus} is not divisible by {'*'.join(quotient.inputs)}")
        if "npus" in kd:
            k = kd["npus"]
            tuples = self._npus_tuples(k)
            if not tuples:
                raise _fmt_err(self.file, "constraints",
                               f"unsatisfiable: built-in constraint 'prod(npus) == n_npus' ({self.n_npus}) has no "
                               f"solution in the domain {k.domain.spec} over {n} dimensions ({k.mode.value})")
            labels = ["x".join(str(x) for x in t) for t in tuples]
            assign = [tuple(("npus", i, t[i]) for i in range(n)) for t in tuples]
            coords.append(_Coord("npus", ("npus",), labels, assign))
        plain = {name: k for name, k in kd.items() if name not in group and name != "npus"}
        n_values = sum(len(k.domain) * (n if k.mode is DimMode.PER_DIM else 1) for k in plain.values())
        if n_values > CODING_LIMIT:
            raise _fmt_err(self.file, "knobs",
                           f"the encoding would hold {n_values:,} coordinate values (a per-dimension knob counts once "
                           f"per dimension; at most {CODING_LIMIT:,}); narrow the domains")
        for name, k in plain.items():
            vals = k.domain.values
            numeric = all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in vals)
            if k.mode is DimMode.PER_DIM:
                for i in range(n):
                    coords.append(_Coord(f"{name}[{i}]", (name,), [_label(x) for x in vals],
                                         [((name, i, x),) for x in vals], numeric))
            elif k.mode is DimMode.SHARED:
                coords.append(_Coord(name, (name,), [_label(x) for x in vals],
                                     [tuple((name, i, x) for i in range(n)) for x in vals], numeric))
            else:
                coords.append(_Coord(name, (name,), [_label(x) for x in vals], [((name, None, x),) for x in vals],
                                     numeric))
        self._coords = coords
        self.dim_names: tuple[str, ...] = tuple(c.name for c in coords)
        self.cardinalities: tuple[int, ...] = tuple(c.card for c in coords)
        self._card = np.array(self.cardinalities, dtype=np.int64)
        self._perdim_written = tuple(
            sorted({a[0] for c in coords for asg in c.assign for a in asg if a[1] is not None})
        )
        self._lookup = [{_key(tuple(a[2] for a in asg)): j for j, asg in enumerate(c.assign)} for c in coords]
        # the assignments as {knob: value} per coordinate value (used when no knob is written per dimension)
        self._scalar_assign = [[{name: x for name, _, x in asg} for asg in c.assign] for c in coords]

    def _structural_checks(self) -> list[tuple[str, Callable[[dict[str, Any]], bool]]]:
        m, tr = self.base.model, self.base.training
        heads, kv, ffn, seq, layers, gb = m.heads, m.n_kv_heads, m.ffn, self.base.seq_len, m.layers, tr.global_batch
        nn, vs = self.n_npus, tr.virtual_stages

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
            ("virtual_stages > 1 needs interleaved",
             lambda v: vs == 1 or v["schedule"] is Schedule.INTERLEAVED),
        ]

    def _workload_raw(self, group: list[str], quotient: Derived | None) -> Iterable[dict[str, Any]]:
        kd = self.knob_defs
        degs = [k for k in group if k in _DEGREES]
        rest = [k for k in group if k not in _DEGREES]
        nn = self.n_npus

        divisors = {k: [x for x in kd[k].domain.values if nn % x == 0] for k in degs}  # the others never fit

        def rec(i: int, acc: dict[str, Any], prod: int) -> Iterable[dict[str, Any]]:
            if i == len(degs):
                yield acc
                return
            k = degs[i]
            for x in divisors[k]:
                if nn % (prod * x) == 0:  # a degree product must divide the NPU count
                    yield from rec(i + 1, {**acc, k: x}, prod * x)

        fixed = math.prod(self._bv[d] for d in _DEGREES if d not in degs and (quotient is None or d != quotient.target))
        if nn % fixed:
            return
        for partial in rec(0, {}, fixed):
            for tail in itertools.product(*(kd[k].domain.values for k in rest)):
                yield {**partial, **dict(zip(rest, tail, strict=True))}

    def _group_values(self, combo: dict[str, Any], quotient: Derived | None) -> dict[str, Any] | None:
        v = dict(self._bv)
        v.update(combo)
        if quotient is not None:
            prod = math.prod(v[s] for s in quotient.inputs)
            if self.n_npus % prod:
                return None
            v[quotient.target] = self.n_npus // prod
        return v

    def _workload_combos(self, group: list[str], quotient: Derived | None) -> list[dict[str, Any]]:
        out = []
        for i, combo in enumerate(self._workload_raw(group, quotient)):
            if i >= COMBO_LIMIT:
                raise _fmt_err(self.file, "knobs.workload",
                               f"more than {COMBO_LIMIT:,} combinations of {', '.join(group)} divide the "
                               f"{self.n_npus:,} NPUs; narrow their domains")
            v = self._group_values(combo, quotient)
            if v is not None and all(f(v) for _, f in self._group_checks):
                out.append(combo)
        return out

    def _minimal_conflict_structural(self, group: list[str], quotient: Derived | None) -> list[str]:
        checks = list(self._group_checks)
        raw = [self._group_values(c, quotient) for c in self._workload_raw(group, quotient)]
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

    def _npus_tuples(self, k: Knob) -> list[tuple[int, ...]]:
        n, nn = self.n_dims, self.n_npus
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

    # ---- dependencies and constraints --------------------------------------------------------------------------

    def _dependencies(self) -> dict[str, Any]:
        """name -> frozenset of coordinates (scalar) or tuple of frozensets (per dimension)."""
        n = self.n_dims
        deps: dict[str, Any] = {}
        for name, d in KNOBS.items():
            deps[name] = tuple(frozenset() for _ in range(n)) if d.per_dim else frozenset()
        for ci, c in enumerate(self._coords):
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
        for r in self.derived:
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

    def _coords_of(self, name: str, index: int | None) -> Deps:
        d = self._deps.get(name)
        if d is None:
            return frozenset()
        if isinstance(d, tuple):
            if index is None:
                return frozenset().union(*d)
            if -len(d) <= index < len(d):
                return d[index]
            return frozenset()
        return d

    def _parse_constraints(self, raw: Any) -> tuple[Constraint, ...]:
        file = self.file
        out: list[Constraint] = []
        kd = self.knob_defs
        group_ci = next((i for i, c in enumerate(self._coords) if set(c.knobs) & set(_STRUCTURAL)), None)
        quotient = any(d.rule == "npus_quotient" for d in self.derived)
        degrees_vary = group_ci is not None or quotient
        npus_ci = next((i for i, c in enumerate(self._coords) if c.name == "npus"), None)
        if degrees_vary or npus_ci is not None or "rank_order" in kd:
            coords = self._coords_of("dp", None) | self._coords_of("tp", None) | self._coords_of("pp", None) \
                | self._coords_of("sp", None) | self._coords_of("rank_order", None) | self._coords_of("npus", None)

            def aligned(v: dict[str, Any]) -> bool:
                try:
                    group_spans({"tp": v["tp"], "sp": v["sp"], "dp": v["dp"], "pp": v["pp"]}, v["rank_order"],
                                tuple(v["npus"]))
                except CosmicError:
                    return False
                return True

            out.append(Constraint("parallel groups align with network dimensions",
                                  "group_spans(dp, tp, pp, sp, rank_order, npus)", aligned, coords, True))
        if self.base.collective.fidelity is Fidelity.ASTRA_SIM and (self._changed & ({"npus"} | set(ALGORITHM_KNOBS))):
            coords = frozenset().union(*(self._coords_of(k, None) for k in (*ALGORITHM_KNOBS, "npus")))
            out.append(Constraint("algorithms supported by ASTRA-sim", "astra-sim fidelity", _astra_ok, coords, True))
        if raw is None:
            raw = {}
        if isinstance(raw, list):
            items = []
            for i, x in enumerate(raw):
                if isinstance(x, dict) and set(x) == {"name", "expr"}:
                    items.append((str(x["name"]), x["expr"], f"constraints[{i}]"))
                elif isinstance(x, str):
                    items.append((x, x, f"constraints[{i}]"))
                else:
                    raise _fmt_err(file, f"constraints[{i}]", "a constraint is an expression or {name:, expr:}")
        elif isinstance(raw, dict):
            items = [(str(k), v, f"constraints.{k}") for k, v in raw.items()]
        else:
            raise _fmt_err(file, "constraints", "must map names to expressions")
        names = set(KNOBS) | set(self._consts)
        probe = self._values(np.zeros(len(self._coords), dtype=np.int64))
        seen = {c.name for c in out}
        for cname, text, key in items:
            if cname in seen:
                raise _fmt_err(file, key, "duplicate constraint name")
            seen.add(cname)
            try:
                e = compile_expr(text, names)
                e.fn(probe)
            except ExprError as exc:
                raise _fmt_err(file, key, str(exc)) from None
            except (TypeError, ValueError, ArithmeticError) as exc:
                raise _fmt_err(file, key, f"cannot be evaluated: {exc}") from None
            coords = frozenset().union(*(self._coords_of(nm, ix) for nm, ix in e.refs)) if e.refs else frozenset()
            out.append(Constraint(cname, str(text), _safe(e.fn), coords, False))
        return tuple(out)

    # ---- decoding ----------------------------------------------------------------------------------------------

    def _values(self, point: Any, *, for_build: bool = False) -> dict[str, Any]:
        """Every knob's value (searched, derived or from the base) at `point`, plus the constants.

        With `for_build`, only the derived knobs the configuration needs are computed (not the unit views)."""
        v = self._v0.copy()
        idx = point.tolist() if isinstance(point, np.ndarray) else point
        pd = self._perdim_written
        if pd:
            for name in pd:
                v[name] = list(v[name])
            for c, j in zip(self._coords, idx, strict=True):
                for name, dim, x in c.assign[j]:
                    if dim is None:
                        v[name] = x
                    else:
                        v[name][dim] = x
            for name in pd:
                v[name] = tuple(v[name])
        else:  # every assignment is a whole value: one dict update per coordinate
            for upd, j in zip(self._scalar_assign, idx, strict=True):
                v.update(upd[j])
        for r in self._build_rules if for_build else self.derived:
            v[r.target] = r.fn(v)
        return v

    def _prepare_builders(self) -> None:
        ch = self._changed
        b = self.base
        self._par_keys = ("dp", "tp", "pp", "sp", "zero", "sequence_parallel", "rank_order")
        self._do_par = bool(ch & PARALLEL_KNOBS)
        self._do_train = bool(ch & TRAINING_KNOBS)
        self._do_coll = bool(ch & COLLECTIVE_KNOBS)
        self._do_net = bool(ch & NETWORK_KNOBS)
        self._do_acc = bool(ch & COMPUTE_KNOBS)
        self._coll_keys = tuple(k for k in (*ALGORITHM_KNOBS, "chunks", "scheduling", "multidim", "active_chunks")
                                if k in ch)
        explicit = set(self.knob_defs) | {d.target for d in self.derived if d.rule != "unit_view"}
        self._link_key = "link_gbps" if "link_gbps" in explicit else ("link_gibps" if "link_gibps" in explicit
                                                                     else None)
        self._train_keys = tuple(k for k in ("micro_batch", "schedule", "recompute") if k in ch)
        self._par_get = _tuple_getter(self._par_keys)
        self._train_get = _tuple_getter(self._train_keys)
        self._acc_keys = tuple(k for k in ("peak_tflops", "mem_gb", "mem_bw_gbps") if k in ch)
        self._cache: dict[Any, Any] = {}
        self._tables: _columns.CoordTables | None = None
        self._base_dims = tuple(b.network.dims)
        self._prec = b.training.precision.value

    def _cached(self, key: Any, make: Callable[[], Any]) -> Any:
        c = self._cache
        obj = c.get(key)
        if obj is None:
            if len(c) > 200_000:
                c.clear()
            obj = c[key] = make()
        return obj

    def decode(self, point: Any) -> SystemConfig:
        """The concrete configuration of `point` (derived knobs applied; no pydantic re-validation).

        Raises ValueError for a point outside the encoded box."""
        idx = point.tolist() if isinstance(point, np.ndarray) else list(point)
        if len(idx) != len(self._coords) or not all(0 <= j < c for j, c in zip(idx, self.cardinalities,
                                                                                  strict=True)):
            raise ValueError(f"point {idx} is outside the box of cardinalities {list(self.cardinalities)}")
        v = self._values(idx, for_build=True)
        return self._build(v)

    def _build(self, v: dict[str, Any]) -> SystemConfig:
        upd: dict[str, Any] = {}
        if self._do_par:
            upd["parallel"] = self._parallel_of(v)
        if self._do_train:
            upd["training"] = self._training_of(v)
        if self._do_coll:
            upd["collective"] = self._collective_of(v)
        if self._do_net:
            upd["network"] = self._network_of(v)
        if self._do_acc:
            upd["accelerator"] = self._accelerator_of(v)
        return _updated(self.base, upd) if upd else self.base

    def decode_columns(self, points: Any) -> tuple[StepColumns, np.ndarray]:
        """The configurations of an (n, d) point matrix as columns, and a bool array `ok`.

        ``ok[i]`` is False where ``decode(points[i])`` raises (a row outside the encoded box); such rows hold
        arbitrary values. Otherwise the columns equal ``StepColumns.from_configs([decode(p) for p in points])``
        (:meth:`StepColumns.same_as`), built without one config object per point; ``rebuild(i)`` is
        ``decode(points[i])``.

        Example:
            >>> import numpy as np
            >>> from cosmic.psa import load_psa
            >>> s = load_psa("cosmic-s1-gpt3-175b-full")
            >>> cols, ok = s.decode_columns(s.sample(np.random.default_rng(0), 4))
            >>> cols.n, bool(ok.all()), cols.network.npus.shape
            (4, True, (4, 4))
        """
        return _columns.decode_columns(self, points)

    def _coord_tables(self) -> _columns.CoordTables:
        if self._tables is None:
            self._tables = _columns.coordinate_tables(self._coords, self._codecs)
        return self._tables

    def _parallel_of(self, v: dict[str, Any]) -> Any:
        return self._cached(("par", self._par_get(v)), lambda: self.base.parallel.model_copy(
            update={k: v[k] for k in self._par_keys}))

    def _training_of(self, v: dict[str, Any]) -> Any:
        return self._cached(("train", self._train_get(v)), lambda: self.base.training.model_copy(
            update={k: v[k] for k in self._train_keys}))

    def _collective_of(self, v: dict[str, Any]) -> Any:
        key = ("coll",) + tuple(v[k] for k in self._coll_keys)
        return self._cached(key, lambda: self.base.collective.model_copy(
            update={k: (list(v[k]) if k in ALGORITHM_KNOBS else v[k]) for k in self._coll_keys}))

    def _network_of(self, v: dict[str, Any]) -> Any:
        lk = self._link_key
        dims = []
        for i, bd in enumerate(self._base_dims):
            bw = v[lk][i] if lk else None
            key = ("dim", i, v["topology"][i], v["npus"][i], v["latency_ns"][i], bw)
            dims.append(self._cached(key, lambda i=i, bd=bd, bw=bw: self._make_dim(bd, v, i, bw)))
        key = ("net", tuple(id(d) for d in dims))
        return self._cached(key, lambda: self.base.network.model_copy(update={"dims": dims}))

    def _accelerator_of(self, v: dict[str, Any]) -> Any:
        return self._cached(("acc",) + tuple(v[k] for k in self._acc_keys), lambda: self._make_acc(v))

    def _make_dim(self, bd: Any, v: dict[str, Any], i: int, bw: float | None) -> Any:
        u: dict[str, Any] = {"topology": v["topology"][i], "npus": v["npus"][i], "latency_ns": v["latency_ns"][i]}
        if self._link_key == "link_gibps":
            u.update(link_gibps=bw, link_gbps=None, fabric=None)
        elif self._link_key == "link_gbps":
            u.update(link_gbps=bw, link_gibps=None, fabric=None)
        return bd.model_copy(update=u)

    def _make_acc(self, v: dict[str, Any]) -> Any:
        a = self.base.accelerator
        u: dict[str, Any] = {}
        if "peak_tflops" in self._acc_keys:
            cur = a.peak_flop_per_s(self._prec) / TFLOP
            f = v["peak_tflops"] / cur
            u["peak_tflops"] = {p: x * f for p, x in a.peak_tflops.items()}
        if "mem_gb" in self._acc_keys:
            u["mem_gb"] = v["mem_gb"]
        if "mem_bw_gbps" in self._acc_keys:
            u["mem_bw_gbps"] = v["mem_bw_gbps"]
        return a.model_copy(update=u)

    def knobs(self, point: Any) -> dict[str, object]:
        """Human-readable values of the searched and derived knobs at `point` (JSON-ready)."""
        v = self._values(point)
        out: dict[str, object] = {k: _plain(v[k]) for k in self.knob_defs}
        for r in self.derived:
            if not r.implicit or r.rule in ("zero_of", "per_link"):
                out[r.target] = _plain(v[r.target])
        return out

    def encode(self, config: SystemConfig) -> np.ndarray:
        """The point whose decoding is `config` (raises ConfigError when `config` is not in the space)."""
        v = base_values(config)
        pt = np.empty(len(self._coords), dtype=np.int64)
        for ci, c in enumerate(self._coords):
            asg0 = c.assign[0]
            got = tuple((v[name][dim] if dim is not None else v[name]) for name, dim, _ in asg0)
            j = self._lookup[ci].get(_key(got))
            if j is None:
                raise ConfigError(f"value {_label(got if len(got) > 1 else got[0])} is not in the space's domain",
                                  key=c.name)
            pt[ci] = j
        dv = base_values(self.decode(pt))
        for name in sorted(v):
            if _key(dv[name]) != _key(v[name]):
                raise ConfigError(f"config has {_label(v[name])} but the space derives {_label(dv[name])}",
                                  key=name)
        if config.model != self.base.model or config.training.global_batch != self.base.training.global_batch:
            raise ConfigError("config's model or batch differs from the space's base", key="model")
        return pt

    # ---- feasibility -------------------------------------------------------------------------------------------

    def _check_point(self, point: Any) -> np.ndarray:
        p = np.asarray(point, dtype=np.int64).reshape(-1)
        if p.shape[0] != len(self._coords) or np.any(p < 0) or np.any(p >= self._card):
            raise ValueError(f"point {p.tolist()} is outside the box of cardinalities {list(self.cardinalities)}")
        return p

    def violations(self, point: Any) -> list[str]:
        """Names of the static constraints `point` violates ([] = feasible); memory fit is not checked here."""
        p = self._check_point(point)
        v = self._values(p)
        return [c.name for c in self.constraints if not c.fn(v)]

    def is_feasible(self, point: Any) -> bool:
        """Whether `point` satisfies every static constraint (O(1) lookups for enumerated components)."""
        p = self._check_point(point)
        return self._feasible_unchecked(p)

    def _feasible_unchecked(self, p: np.ndarray) -> bool:
        v = None
        for comp in self._components:
            if comp.feasible_set is not None:
                if tuple(int(p[i]) for i in comp.coords) not in comp.feasible_set:
                    return False
            else:
                if v is None:
                    v = self._values(p)
                if not all(c.fn(v) for c in comp.constraints):
                    return False
        return True

    def feasible_mask(self, points: Any) -> np.ndarray:
        """``is_feasible`` of every row of an (n, d) point matrix, as a bool array (a table lookup per enumerated
        constraint component; rows of a component too large to enumerate are checked one by one).

        Raises ValueError when a row lies outside the encoded box (as ``is_feasible``)."""
        p, inside = _columns.in_box(self, points)
        if not inside.all():
            bad = p[np.flatnonzero(~inside)[0]].tolist()
            raise ValueError(f"point {bad} is outside the box of cardinalities {list(self.cardinalities)}")
        mask = np.ones(p.shape[0], dtype=bool)
        for comp in self._components:
            idx = list(comp.coords)
            if comp.table is not None:
                mask &= comp.table[_mixed_radix(p[:, idx], self._card[idx])]
        for comp in self._components:
            if comp.table is None:
                for r in np.flatnonzero(mask).tolist():
                    v = self._values(p[r])
                    mask[r] = all(c.fn(v) for c in comp.constraints)
        return mask

    def neighbours(self, point: Any) -> list[np.ndarray]:
        """Feasible points that differ from `point` in exactly one coordinate (one knob of the encoding)."""
        p = self._check_point(point)
        out = []
        for i, card in enumerate(self.cardinalities):
            for j in range(card):
                if j == p[i]:
                    continue
                q = p.copy()
                q[i] = j
                if self._feasible_unchecked(q):
                    out.append(q)
        return out

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """`n` feasible points, uniform over the feasible set, as an (n, d) int64 array."""
        d = len(self._coords)
        out = np.empty((n, d), dtype=np.int64)
        for i, card in enumerate(self.cardinalities):
            out[:, i] = rng.integers(0, card, size=n)
        for comp in self._components:
            idx = list(comp.coords)
            if comp.feasible is not None:
                out[:, idx] = comp.feasible[rng.integers(0, len(comp.feasible), size=n)]
            else:
                self._reject(comp, out, rng)
        return out

    def _reject(self, comp: _Component, out: np.ndarray, rng: np.random.Generator) -> None:
        idx = list(comp.coords)
        cards = self._card[idx]
        for r in range(out.shape[0]):
            for _ in range(1_000_000):
                cand = rng.integers(0, cards)
                out[r, idx] = cand
                v = self._values(out[r])
                self._drawn += 1
                if all(c.fn(v) for c in comp.constraints):
                    self._accepted += 1
                    break
            else:
                raise CosmicError(f"{self.name}: no feasible point found in 1,000,000 rejection draws")

    @property
    def acceptance_rate(self) -> float:
        """Measured acceptance of the rejection step of `sample` (1.0 when every constraint component was
        enumerated, so that sampling needs no rejection)."""
        return self._accepted / self._drawn if self._drawn else 1.0

    @property
    def box_acceptance_rate(self) -> float:
        """Fraction of the encoded box that is feasible (what uniform sampling of the box plus rejection gets)."""
        return self._box_feasible / self.box_size if self.box_size else 0.0

    # ---- counting ----------------------------------------------------------------------------------------------

    def _count(self) -> None:
        self.size_total: int = math.prod(k.n_raw_points(self.n_dims) for k in self.knob_defs.values())
        self.box_size: int = math.prod(self.cardinalities)
        self._drawn = 0
        self._accepted = 0
        cons = [c for c in self.constraints]
        constant = [c for c in cons if not c.coords]
        probe = self._values(np.zeros(len(self._coords), dtype=np.int64))
        for c in constant:
            if not c.fn(probe):
                raise _fmt_err(self.file, "constraints",
                               f"unsatisfiable: constraint {c.name!r} is false for the base and depends on no knob")
        # connected components of the constraint graph (union-find over coordinates)
        parent = list(range(len(self._coords)))

        def find(x: int) -> int:
            while parent[x] != x:
                parent[x] = parent[parent[x]]
                x = parent[x]
            return x

        for c in cons:
            cs = sorted(c.coords)
            for a in cs[1:]:
                parent[find(a)] = find(cs[0])
        groups: dict[int, list[Constraint]] = {}
        for c in cons:
            if c.coords:
                groups.setdefault(find(min(c.coords)), []).append(c)
        comps = []
        for root, cs in groups.items():
            coords = tuple(i for i in range(len(self._coords)) if find(i) == root)
            box = math.prod(self.cardinalities[i] for i in coords)
            comps.append(_Component(coords, tuple(cs), box))
        self._components = comps
        constrained = {i for comp in comps for i in comp.coords}
        free = math.prod(self.cardinalities[i] for i in range(len(self._coords)) if i not in constrained)
        rel_err2 = 0.0
        n_mc = 0
        feasible: float = free
        exact_all = True
        for comp in comps:
            if comp.box <= ENUM_LIMIT:
                rows = self._enumerate(comp, comp.constraints)
                if not rows:
                    names = self._minimal_conflict(comp)
                    raise _fmt_err(self.file, "constraints", "unsatisfiable: " + _conflict_phrase(names))
                comp.feasible = np.array(rows, dtype=np.int64).reshape(len(rows), len(comp.coords))
                comp.feasible_set = frozenset(rows)
                comp.table = np.zeros(comp.box, dtype=bool)
                comp.table[_mixed_radix(comp.feasible, self._card[list(comp.coords)])] = True
                comp.count = len(rows)
            else:
                exact_all = False
                rng = np.random.default_rng(12345)
                cards = self._card[list(comp.coords)]
                pt = np.zeros(len(self._coords), dtype=np.int64)
                hits = 0
                for _ in range(MC_SAMPLES):
                    pt[list(comp.coords)] = rng.integers(0, cards)
                    v = self._values(pt)
                    if all(c.fn(v) for c in comp.constraints):
                        hits += 1
                if hits == 0:
                    names = [c.name for c in comp.constraints]
                    raise _fmt_err(self.file, "constraints",
                                   f"no feasible point in {MC_SAMPLES:,} random samples of constraints "
                                   f"{', '.join(repr(x) for x in names)} (too many combinations to prove it)")
                p = hits / MC_SAMPLES
                comp.count = p * comp.box
                comp.exact = False
                rel_err2 += (1.96 * math.sqrt((1 - p) / (p * MC_SAMPLES))) ** 2
                n_mc += MC_SAMPLES
                self._drawn += MC_SAMPLES
                self._accepted += hits
            feasible *= comp.count
        if exact_all:
            self.size_feasible: int = int(round(feasible))
            self._box_feasible = self.size_feasible
            self.size_method: str = "exact (DP)"
            if self.box_size <= BOX_ENUM_LIMIT:  # small: count the whole box directly (and cross-check)
                whole = _Component(tuple(range(len(self._coords))), tuple(cons), self.box_size)
                n_whole = len(self._enumerate(whole, cons))
                if n_whole != self.size_feasible:  # pragma: no cover - would be a bug in the factorisation
                    raise AssertionError(f"count mismatch: {n_whole} != {self.size_feasible}")
                self.size_method = "exact (enumeration)"
        else:
            self.size_feasible = int(round(feasible))
            self._box_feasible = self.size_feasible
            self.size_method = (f"estimated (Monte Carlo, {n_mc} samples, ±{100 * math.sqrt(rel_err2):.1f}%)")

    def _enumerate(self, comp: _Component, constraints: Iterable[Constraint]) -> list[tuple[int, ...]]:
        cs = list(constraints)
        rows = []
        pt = np.zeros(len(self._coords), dtype=np.int64)
        idx = list(comp.coords)
        for combo in itertools.product(*(range(self.cardinalities[i]) for i in idx)):
            pt[idx] = combo
            v = self._values(pt)
            if all(c.fn(v) for c in cs):
                rows.append(combo)
        return rows

    def _minimal_conflict(self, comp: _Component) -> list[str]:
        keep = list(comp.constraints)
        for c in list(keep):
            trial = [x for x in keep if x is not c]
            if trial and not self._enumerate(comp, trial):
                keep = trial
        return [c.name for c in keep]

    # ---- adapters ----------------------------------------------------------------------------------------------

    def gym_action_space(self, seed: int | None = None) -> Any:
        """`gymnasium.spaces.MultiDiscrete(cardinalities)`."""
        from gymnasium.spaces import MultiDiscrete

        return MultiDiscrete(np.array(self.cardinalities, dtype=np.int64), seed=seed)

    def suggest(self, trial: Any) -> np.ndarray:
        """Optuna define-by-run: one `suggest_int` (ordered numeric coordinates) or `suggest_categorical` per
        coordinate. The point satisfies the equality constraints; check `violations` for the others."""
        p = np.empty(len(self._coords), dtype=np.int64)
        for i, c in enumerate(self._coords):
            if c.ordered_numeric:
                p[i] = trial.suggest_int(c.name, 0, c.card - 1)
            else:
                p[i] = trial.suggest_categorical(c.name, list(range(c.card)))
        return p

    def coordinate_labels(self, i: int) -> list[str]:
        """Readable value of each index of coordinate `i`."""
        return list(self._coords[i].labels)

    def _constraint_rows(self) -> list[dict[str, Any]]:
        rows = []
        if any(set(c.knobs) & set(_STRUCTURAL) for c in self._coords):
            interleaved = "schedule" in self.knob_defs or self.base.training.schedule is Schedule.INTERLEAVED
            rows += [{"name": n, "expr": "by construction (joint coordinate)", "builtin": True}
                     for n, _ in self._group_checks if interleaved or "interleaved" not in n]
        if "npus" in self.knob_defs:
            rows.append({"name": "prod(npus) == n_npus", "expr": "by construction (joint coordinate)",
                         "builtin": True})
        rows += [{"name": c.name, "expr": c.text, "builtin": c.builtin} for c in self.constraints]
        return rows

    def describe(self) -> dict[str, Any]:
        """Everything `cosmic psa show` prints (JSON-ready)."""
        knobs: dict[str, dict[str, Any]] = {s: {} for s in STACKS}
        for name, k in self.knob_defs.items():
            knobs[k.defn.stack][name] = {
                "domain": k.domain.spec,
                "values": _plain(list(k.domain.values)),
                "mode": k.mode.value,
                "doc": k.defn.doc,
            }
        return {
            "name": self.name,
            "description": self.description,
            "file": self.file,
            "base": {
                "system": self.base.system,
                "model": self.base.model.name,
                "n_npus": self.n_npus,
                "network": [f"{d.topology.value}({d.npus})" for d in self.base.network.dims],
                "parallel": {k: self.base.parallel.degrees[k] for k in ("dp", "tp", "pp", "sp")}
                | {"zero": self.base.parallel.zero},
            },
            "knobs": {s: v for s, v in knobs.items() if v},
            "derived": [{"knob": d.target, "rule": d.rule, "from": list(d.inputs), "formula": d.describe(),
                         "implicit": d.implicit} for d in self.derived if d.rule != "unit_view"],
            "constraints": self._constraint_rows(),
            "objectives": [{"name": o.name, "direction": o.direction} for o in self.objectives],
            "memory_fit": self.memory_fit,
            "dims": [{"name": c.name, "cardinality": c.card} for c in self._coords],
            "space_size_total": self.size_total,
            "space_size_feasible": self.size_feasible,
            "space_size_method": self.size_method,
            "encoded_box_size": self.box_size,
            "acceptance_rate": self.acceptance_rate,
            "box_acceptance_rate": self.box_acceptance_rate,
        }


def _rebuild(data: Any, file: str | None, name: str | None, base_dir: Path | None) -> Space:
    return Space(data, file=file, name=name, base_dir=base_dir)


def _safe(fn: Callable[[dict[str, Any]], Any]) -> Callable[[dict[str, Any]], bool]:
    def run(v: dict[str, Any]) -> bool:
        try:
            return bool(fn(v))
        except (ArithmeticError, ExprError, TypeError, ValueError):
            return False

    return run


def _astra_ok(v: dict[str, Any]) -> bool:
    npus = v["npus"]
    for kind in Collective:
        for algo, p in zip(v[kind.value], npus, strict=True):
            if algo is Algorithm.HALVING_DOUBLING and kind is Collective.ALL_TO_ALL and p > 1:
                return False
            if algo in (Algorithm.HALVING_DOUBLING, Algorithm.DOUBLE_BINARY_TREE) and p & (p - 1):
                return False
    return True


def _conflict_phrase(names: list[str]) -> str:
    if len(names) == 1:
        return f"constraint {names[0]!r} cannot be satisfied"
    quoted = [repr(n) for n in names]
    return "constraints " + ", ".join(quoted[:-1]) + f" and {quoted[-1]} conflict (no point satisfies all of them)"
