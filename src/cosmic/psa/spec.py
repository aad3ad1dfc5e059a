"""Parse a PSA mapping's sections (base, knobs, derived knobs, objectives, constraints) for a :class:`Space`.

Each function reads the space's already-parsed state and returns the parsed section; errors are one-line
:class:`ConfigError` naming the file and key."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cosmic.collective.algorithms import Algorithm, Collective
from cosmic.errors import ConfigError, CosmicError, extra_keys
from cosmic.psa import encoding
from cosmic.psa._common import (
    BW,
    DEGREES,
    STRUCTURAL,
    Constraint,
    fmt_err,
)
from cosmic.psa.domain import DimMode, Knob, parse_domain
from cosmic.psa.expr import ExprError, compile_expr
from cosmic.psa.knobs import (
    ALGORITHM_KNOBS,
    KNOBS,
    STACKS,
)
from cosmic.psa.objectives import Objective
from cosmic.psa.rules import RULES, Derived, derived
from cosmic.sim.config import (
    Fidelity,
    SystemConfig,
    config_from_dict,
    load_config,
)
from cosmic.units import GB, GIB
from cosmic.workload.parallel import group_spans

if TYPE_CHECKING:
    from cosmic.psa.space import Space



def safe(fn: Callable[[dict[str, Any]], Any]) -> Callable[[dict[str, Any]], bool]:
    def run(v: dict[str, Any]) -> bool:
        try:
            return bool(fn(v))
        except (ArithmeticError, ExprError, TypeError, ValueError):
            return False

    return run


def astra_ok(v: dict[str, Any]) -> bool:
    npus = v["npus"]
    for kind in Collective:
        for algo, p in zip(v[kind.value], npus, strict=True):
            if algo is Algorithm.HALVING_DOUBLING and kind is Collective.ALL_TO_ALL and p > 1:
                return False
            if algo in (Algorithm.HALVING_DOUBLING, Algorithm.DOUBLE_BINARY_TREE) and p & (p - 1):
                return False
    return True


def parse_base(space: Space, raw: Any, base_dir: Path | None) -> SystemConfig:
    file = space.file
    if raw is None:
        raise fmt_err(file, "base", "required key is missing (a `cosmic simulate` config, inline or a path)")
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
            raise fmt_err(file, "base", str(exc)) from None
        key = "base" + (f".{exc.key}" if exc.key else "")
        raise fmt_err(file, key, exc.detail) from None
    raise fmt_err(file, "base", f"must be a mapping or a path, got {type(raw).__name__}")


def parse_knobs(space: Space, raw: Any) -> dict[str, Knob]:
    file = space.file
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise fmt_err(file, "knobs", "must map stacks (workload, collective, network, compute) to knobs")
    out: dict[str, Knob] = {}
    for stack, entries in raw.items():
        skey = f"knobs.{stack}"
        if stack not in STACKS:
            raise fmt_err(file, skey, f"unknown stack (allowed: {', '.join(STACKS)})")
        if entries is None:
            continue
        if not isinstance(entries, dict):
            raise fmt_err(file, skey, "must map knob names to domains")
        for kname, spec in entries.items():
            key = f"{skey}.{kname}"
            if kname not in KNOBS:
                import difflib

                hint = difflib.get_close_matches(str(kname), list(KNOBS), n=1)
                raise fmt_err(file, key, f"unknown knob {kname!r}" + (f" (did you mean {hint[0]!r}?)" if hint
                               else "") + f"; known: {', '.join(KNOBS)}")
            defn = KNOBS[kname]
            if defn.stack != stack:
                raise fmt_err(file, key, f"knob {kname!r} belongs to the {defn.stack} stack")
            dom, mode_raw = parse_domain(spec, defn, file=file, key=key)
            if mode_raw is None:
                mode = DimMode.PER_DIM if defn.per_dim else DimMode.SCALAR
            else:
                try:
                    mode = DimMode(mode_raw)
                except ValueError:
                    raise fmt_err(file, f"{key}.mode", f"{mode_raw!r} is not one of scalar, per_dim, shared") \
                        from None
                if defn.per_dim and mode is DimMode.SCALAR:
                    raise fmt_err(file, f"{key}.mode", "a per-dimension knob takes per_dim or shared")
                if not defn.per_dim and mode is not DimMode.SCALAR:
                    raise fmt_err(file, f"{key}.mode", f"{kname} has no per-dimension value; use scalar")
            out[kname] = Knob(defn, dom, mode)
    if "weight_sharded" in out and "zero" in out:
        raise fmt_err(file, "knobs.workload.zero", "search weight_sharded or zero, not both")
    bw = [k for k in BW if k in out]
    if len(bw) > 1:
        raise fmt_err(file, f"knobs.network.{bw[1]}", f"only one bandwidth knob may be searched (also {bw[0]})")
    return out


def parse_derived(space: Space, raw: Any) -> tuple[Derived, ...]:
    file = space.file
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise fmt_err(file, "derived", "must map derived knob names to {rule: ..., from: [...]}")
    rules: dict[str, Derived] = {}
    for target, spec in raw.items():
        key = f"derived.{target}"
        if target not in KNOBS:
            raise fmt_err(file, key, f"unknown knob {target!r}")
        if target in space.knob_defs:
            raise fmt_err(file, key, f"{target!r} is both a searched knob and a derived knob")
        if isinstance(spec, str):
            spec = {"rule": spec}
        if not isinstance(spec, dict) or "rule" not in spec:
            raise fmt_err(file, key, f"needs rule: one of {', '.join(RULES)}")
        extra = extra_keys(spec, {"rule", "from"})
        if extra:
            raise fmt_err(file, f"{key}.{extra[0]}", "unknown key (allowed: rule, from)")
        rule = spec["rule"]
        src = spec.get("from")
        if isinstance(src, str):
            src = [src]
        if src is not None and (not isinstance(src, list) or not all(isinstance(s, str) for s in src)):
            raise fmt_err(file, f"{key}.from", "must be a knob name or a list of knob names")
        for s in src or []:
            if s not in KNOBS:
                raise fmt_err(file, f"{key}.from", f"unknown knob {s!r}")
        rules[target] = make_rule(space, target, rule, src, key)
    # implicit companions, so that every name means what the config will contain
    changed = set(space.knob_defs) | set(rules)
    implicit: list[Derived] = []
    if "weight_sharded" in changed and "zero" not in changed:
        implicit.append(derived("zero", "zero_of", ("weight_sharded",), space._codecs, implicit=True))
    if "zero" in changed and "weight_sharded" not in changed:
        implicit.append(derived("weight_sharded", "weight_sharded_of", ("zero",), space._codecs, implicit=True))
    npb = [k for k in ("npu_bandwidth_gibps", "npu_bandwidth_gbps") if k in changed]
    links: list[str] = [k for k in ("link_gibps", "link_gbps") if k in changed]
    if npb and not links:
        tgt = "link_gibps" if npb[0].endswith("gibps") else "link_gbps"
        implicit.append(make_rule(space, tgt, "per_link", [npb[0]], f"derived.{tgt}", implicit=True))
        links = [tgt]
    col = space.base.collective
    if "topology" in changed and "all_reduce" not in changed and col.all_reduce is None:
        implicit.append(make_rule(space, "all_reduce", "algorithm_from_topology", None, "derived", implicit=True))
        changed.add("all_reduce")
    if "all_reduce" in changed:
        for kind in ALGORITHM_KNOBS[1:]:
            if kind not in changed and getattr(col, kind) is None:
                implicit.append(make_rule(space, kind, "copy", ["all_reduce"], "derived", implicit=True))
    changed |= {d.target for d in implicit}
    # views of the bandwidth in the other units (constraints may use any of them)
    if changed & {"topology", "npus", *BW}:
        auth = links[0] if links else "link_gibps"
        for view in BW:
            if view in changed or view == auth:
                continue
            implicit.append(bandwidth_view(space, view, auth))
    allr = list(rules.values()) + implicit
    return order(space, allr)


def bandwidth_view(space: Space, view: str, auth: str) -> Derived:
    to_bytes = GIB if auth.endswith("gibps") else GB
    unit = GIB if view.endswith("gibps") else GB
    return derived(view, "unit_view", (auth, "topology", "npus"), space._codecs,
                   params=(to_bytes, unit, view.startswith("npu_")), implicit=True)


def make_rule(
    space: Space, target: str, rule: Any, src: list[str] | None, key: str, *, implicit: bool = False
) -> Derived:
    file = space.file
    tdef = KNOBS[target]

    def mk(inputs: tuple[str, ...], params: tuple[Any, ...] = ()) -> Derived:
        return derived(target, rule, inputs, space._codecs, params=params, implicit=implicit)

    if rule == "npus_quotient":
        if target not in DEGREES:
            raise fmt_err(file, key, f"npus_quotient derives one of {', '.join(DEGREES)}, not {target!r}")
        others = tuple(d for d in DEGREES if d != target)
        listed = tuple(src) if src else others
        wrong = [d for d in listed if d not in others]
        if wrong or len(set(listed)) != len(listed):
            what = f"not {wrong[0]!r}" if wrong else "each once"
            raise fmt_err(file, f"{key}.from", f"npus_quotient for {target} takes from: [{', '.join(others)}] "
                          f"({what})")
        # a degree that is not searched may be left out of `from`: it keeps the base configuration's value, which
        # the formula reads like any other input
        missing = [d for d in others if d not in listed and d in space.knob_defs]
        if missing:
            raise fmt_err(file, f"{key}.from", f"npus_quotient for {target} must list every searched degree: "
                          f"add {', '.join(missing)}")
        src_t = listed + tuple(d for d in others if d not in listed)
        return mk(src_t, (space.n_npus,))
    if rule == "copy":
        if not src or len(src) != 1:
            raise fmt_err(file, f"{key}.from", "copy takes exactly one source knob")
        s = src[0]
        sdef = KNOBS[s]
        if sdef.kind != tdef.kind or sdef.per_dim != tdef.per_dim:
            raise fmt_err(file, f"{key}.from", f"cannot copy {s!r} ({sdef.kind}) onto {target!r} ({tdef.kind})")
        return mk((s,))
    if rule == "algorithm_from_topology":
        if target not in ALGORITHM_KNOBS:
            raise fmt_err(file, key, f"algorithm_from_topology derives a collective algorithm, not {target!r}")
        s = (src or ["topology"])[0]
        if (src and len(src) != 1) or s != "topology":
            raise fmt_err(file, f"{key}.from", "algorithm_from_topology takes from: topology")
        return mk(("topology",))
    if rule == "per_link":
        if target not in ("link_gibps", "link_gbps"):
            raise fmt_err(file, key, f"per_link derives link_gibps or link_gbps, not {target!r}")
        want = "npu_bandwidth_gibps" if target == "link_gibps" else "npu_bandwidth_gbps"
        s = (src or [want])[0]
        if (src and len(src) != 1) or s != want:
            raise fmt_err(file, f"{key}.from", f"per_link for {target} takes from: {want} (same unit)")
        return mk((s, "topology", "npus"))
    raise fmt_err(file, f"{key}.rule", f"unknown rule {rule!r} (allowed: {', '.join(RULES)})")


def order(space: Space, rules: list[Derived]) -> tuple[Derived, ...]:
    by_target = {r.target: r for r in rules}
    order: list[Derived] = []
    state: dict[str, int] = {}

    def visit(t: str, path: list[str]) -> None:
        if state.get(t) == 2:
            return
        if state.get(t) == 1:
            cyc = path[path.index(t):] + [t]
            raise fmt_err(space.file, "derived", f"derived knobs form a cycle: {' -> '.join(cyc)}")
        state[t] = 1
        for i in by_target[t].inputs:
            if i in by_target:
                visit(i, path + [t])
        state[t] = 2
        order.append(by_target[t])

    for r in rules:
        visit(r.target, [])
    return tuple(order)


def parse_objectives(space: Space, raw: Any) -> tuple[Objective, ...]:
    if raw is None:
        raw = ["step_time"]
    if not isinstance(raw, list):
        raw = [raw]
    if not raw:
        raise fmt_err(space.file, "objectives", "needs at least one objective")
    objs = tuple(Objective.from_spec(s, file=space.file, key=f"objectives[{i}]") for i, s in enumerate(raw))
    names = [o.name for o in objs]
    if len(set(names)) != len(names):
        raise fmt_err(space.file, "objectives", "an objective is listed twice")
    return objs


def parse_constraints(space: Space, raw: Any) -> tuple[Constraint, ...]:
    file = space.file
    out: list[Constraint] = []
    kd = space.knob_defs
    group_ci = next((i for i, c in enumerate(space._coords) if set(c.knobs) & set(STRUCTURAL)), None)
    quotient = any(d.rule == "npus_quotient" for d in space.derived)
    degrees_vary = group_ci is not None or quotient
    npus_ci = next((i for i, c in enumerate(space._coords) if c.name == "npus"), None)
    if degrees_vary or npus_ci is not None or "rank_order" in kd:
        coords = frozenset().union(
            *(encoding.coords_of(space, k, None) for k in ("dp", "tp", "pp", "sp", "rank_order", "npus"))
        )

        def aligned(v: dict[str, Any]) -> bool:
            try:
                group_spans({"tp": v["tp"], "sp": v["sp"], "dp": v["dp"], "pp": v["pp"]}, v["rank_order"],
                            tuple(v["npus"]))
            except CosmicError:
                return False
            return True

        out.append(Constraint("parallel groups align with network dimensions",
                              "group_spans(dp, tp, pp, sp, rank_order, npus)", aligned, coords, True))
    if space.base.collective.fidelity is Fidelity.ASTRA_SIM and (space._changed & ({"npus"} | set(ALGORITHM_KNOBS))):
        coords = frozenset().union(*(encoding.coords_of(space, k, None) for k in (*ALGORITHM_KNOBS, "npus")))
        out.append(Constraint("algorithms supported by ASTRA-sim", "astra-sim fidelity", astra_ok, coords, True))
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
                raise fmt_err(file, f"constraints[{i}]", "a constraint is an expression or {name:, expr:}")
    elif isinstance(raw, dict):
        items = [(str(k), v, f"constraints.{k}") for k, v in raw.items()]
    else:
        raise fmt_err(file, "constraints", "must map names to expressions")
    names = set(KNOBS) | set(space._consts)
    probe = encoding.values(space, np.zeros(len(space._coords), dtype=np.int64))
    seen = {c.name for c in out}
    for cname, text, key in items:
        if cname in seen:
            raise fmt_err(file, key, "duplicate constraint name")
        seen.add(cname)
        try:
            e = compile_expr(text, names)
            e.fn(probe)
        except ExprError as exc:
            raise fmt_err(file, key, str(exc)) from None
        except (TypeError, ValueError, ArithmeticError) as exc:
            raise fmt_err(file, key, f"cannot be evaluated: {exc}") from None
        coords = frozenset().union(*(encoding.coords_of(space, nm, ix) for nm, ix in e.refs)) if e.refs else frozenset()
        out.append(Constraint(cname, str(text), safe(e.fn), coords, False))
    return tuple(out)
