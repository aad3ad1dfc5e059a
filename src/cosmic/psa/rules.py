"""Derived-knob rules as a table of formulas on columns, and the codes knob values take in a column.

Every rule's formula is written once, on NumPy columns (a scalar knob is an (n,) array, a per-dimension knob an
(n, n_dims) array; enum knobs hold integer codes, see :class:`Codec`). ``Space.decode_columns`` applies the formulas
to whole columns; the scalar decode of one point applies the same formulas to length-1 columns through
:func:`scalar_rule` (memoised on the rule's inputs, so a point costs a dictionary lookup once its inputs were seen).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cosmic.collective.algorithms import Algorithm
from cosmic.collective.model import MultiDim
from cosmic.network.topology import Topology, links_per_npu
from cosmic.psa.knobs import KNOBS, TP_COMM_OVERLAPS
from cosmic.sim.columns import CP_ALGORITHMS, DISPATCHERS
from cosmic.sim.config import Recompute, Schedule, Scheduling, default_algorithm

TOPOLOGY_CODES: tuple[Topology, ...] = tuple(Topology)
ALGORITHM_CODES: tuple[Algorithm, ...] = tuple(Algorithm)
_RING = TOPOLOGY_CODES.index(Topology.RING)
_FULLY_CONNECTED = TOPOLOGY_CODES.index(Topology.FULLY_CONNECTED)
DEFAULT_ALGORITHM = np.array([ALGORITHM_CODES.index(default_algorithm(t)) for t in TOPOLOGY_CODES], dtype=np.int8)
"""``DEFAULT_ALGORITHM[topology code]``: the algorithm code ``auto`` means on that topology (the simulator's rule)."""

_ENUMS: dict[str, tuple[Any, ...]] = {
    "topology": TOPOLOGY_CODES,
    "scheduling": tuple(Scheduling),
    "multidim": tuple(MultiDim),
    "schedule": tuple(Schedule),
    "recompute": tuple(Recompute),
    "moe_dispatcher": DISPATCHERS,
    "cp_algorithm": CP_ALGORITHMS,
    "tp_comm_overlap": TP_COMM_OVERLAPS,
}
_FLOATS = {"link_gibps", "link_gbps", "npu_bandwidth_gibps", "npu_bandwidth_gbps", "latency_ns", "peak_tflops",
           "mem_gb", "mem_bw_gbps"}


# ---- the formulas --------------------------------------------------------------------------------------------------

def _npus_quotient(params: tuple[Any, ...], *degrees: np.ndarray) -> np.ndarray:
    (total,) = params
    return total // math.prod(degrees)


def _copy(params: tuple[Any, ...], x: np.ndarray) -> np.ndarray:
    return x


def _algorithm_from_topology(params: tuple[Any, ...], topology: np.ndarray) -> np.ndarray:
    return DEFAULT_ALGORITHM[topology]


def _per_link(params: tuple[Any, ...], bw: np.ndarray, topology: np.ndarray, npus: np.ndarray) -> np.ndarray:
    return bw / links_per_npu(topology, npus)


def _zero_of(params: tuple[Any, ...], weight_sharded: np.ndarray) -> np.ndarray:
    return np.where(weight_sharded != 0, 3, 0)


def _weight_sharded_of(params: tuple[Any, ...], zero: np.ndarray) -> np.ndarray:
    return np.where(zero == 3, 1, 0)


def _unit_view(params: tuple[Any, ...], link: np.ndarray, topology: np.ndarray, npus: np.ndarray) -> np.ndarray:
    to_bytes, unit, per_npu = params
    out = link * to_bytes / unit
    return out * links_per_npu(topology, npus) if per_npu else out


FORMULAS: dict[str, Callable[..., np.ndarray]] = {
    "npus_quotient": _npus_quotient,
    "copy": _copy,
    "algorithm_from_topology": _algorithm_from_topology,
    "per_link": _per_link,
    "zero_of": _zero_of,
    "weight_sharded_of": _weight_sharded_of,
    "unit_view": _unit_view,
}
"""rule name -> ``formula(params, *input_columns) -> output column``."""

RULES: tuple[str, ...] = ("npus_quotient", "copy", "algorithm_from_topology", "per_link")
"""The rules a PSA file may name (the others are implicit companions)."""


# ---- codes ---------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Codec:
    """How the values of one knob sit in a column: enums as the index into `table`, numbers as themselves."""

    name: str
    per_dim: bool
    dtype: Any
    table: tuple[Any, ...] | None = None
    _index: dict[Any, int] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.table is not None:
            self._index.update({v: i for i, v in enumerate(self.table)})

    def code(self, value: Any) -> Any:
        """The code of one element (one dimension's value for a per-dimension knob)."""
        return self._index[value] if self.table is not None else value

    def column(self, values: Sequence[Any]) -> np.ndarray:
        """Column of whole knob values (tuples for a per-dimension knob)."""
        if self.per_dim:
            return np.array([[self.code(x) for x in v] for v in values], dtype=self.dtype)
        return np.array([self.code(v) for v in values], dtype=self.dtype)

    def value(self, row: np.ndarray) -> Any:
        """The knob value of one row of a column (inverse of :meth:`column`)."""
        items = row.tolist()
        if self.table is not None:
            items = [self.table[x] for x in items] if self.per_dim else self.table[items]
        if self.dtype is bool and not self.per_dim:
            items = bool(items)
        return tuple(items) if self.per_dim else items


def make_codecs(rank_orders: Sequence[tuple[str, ...]]) -> dict[str, Codec]:
    """A codec per knob; rank orders are coded by their index in `rank_orders` (the space's distinct orders)."""
    out: dict[str, Codec] = {}
    for name, d in KNOBS.items():
        if d.kind == "algorithm":
            out[name] = Codec(name, d.per_dim, np.int8, ALGORITHM_CODES)
        elif name in _ENUMS:
            out[name] = Codec(name, d.per_dim, np.int8, _ENUMS[name])
        elif name == "rank_order":
            out[name] = Codec(name, False, np.int64, tuple(dict.fromkeys(rank_orders)))
        elif name in ("sequence_parallel", "moe_overlap"):
            out[name] = Codec(name, False, bool)
        else:
            out[name] = Codec(name, d.per_dim, np.float64 if name in _FLOATS else np.int64)
    return out


def scalar_rule(rule: str, params: tuple[Any, ...], inputs: tuple[str, ...], target: str,
                codecs: dict[str, Codec]) -> Callable[[dict[str, Any]], Any]:
    """``fn(values) -> value of target`` for one point: the rule's formula on length-1 columns, memoised on its
    inputs (per dimension when every input and the target are per-dimension: every formula is elementwise over
    dimensions, and one dimension's inputs take few distinct values)."""
    formula = FORMULAS[rule]
    in_codecs = [codecs[i] for i in inputs]
    out_codec = codecs[target]
    memo: dict[Any, Any] = {}
    elementwise = out_codec.per_dim and all(c.per_dim for c in in_codecs)

    def one(key: tuple[Any, ...]) -> Any:
        out = memo.get(key)
        if out is None:
            wrap = (lambda x: (x,)) if elementwise else (lambda x: x)
            cols = [c.column([wrap(x)]) for c, x in zip(in_codecs, key, strict=True)]
            out = out_codec.value(np.asarray(formula(params, *cols))[0])
            if elementwise:
                out = out[0]
            if len(memo) > 100_000:
                memo.clear()
            memo[key] = out
        return out

    if rule == "copy":  # the identity formula applies to a value as it is
        (src,) = inputs

        def fn(v: dict[str, Any]) -> Any:
            return formula(params, v[src])
    elif elementwise:
        def fn(v: dict[str, Any]) -> Any:
            out = []
            for k in zip(*[v[i] for i in inputs], strict=True):
                r = memo.get(k)
                out.append(one(k) if r is None else r)
            return tuple(out)
    else:
        def fn(v: dict[str, Any]) -> Any:
            k = tuple([v[i] for i in inputs])
            r = memo.get(k)
            return one(k) if r is None else r

    return fn


@dataclass(frozen=True)
class Derived:
    """A derived knob: `target` computed by `rule` (a key of :data:`FORMULAS`) from `inputs` after decoding, before
    simulating. `fn` evaluates it on one point's values; :meth:`column` on columns (the same formula)."""

    target: str
    rule: str
    inputs: tuple[str, ...]
    fn: Callable[[dict[str, Any]], Any] = field(compare=False, repr=False)
    implicit: bool = False
    params: tuple[Any, ...] = ()

    def column(self, cols: dict[str, np.ndarray]) -> np.ndarray:
        """The target's column from the input columns in `cols`."""
        return FORMULAS[self.rule](self.params, *(cols[i] for i in self.inputs))

    def describe(self) -> str:
        r, t, i = self.rule, self.target, self.inputs
        if r == "npus_quotient":
            return f"{t} = n_npus / ({'*'.join(i)})"
        if r == "copy":
            return f"{t} = {i[0]}"
        if r == "algorithm_from_topology":
            return f"{t}[d] = ring if {i[0]}[d] == Ring, direct if FullyConnected, halving_doubling if Switch"
        if r == "per_link":
            return f"{t}[d] = {i[0]}[d] / links per NPU (Ring 2, FullyConnected npus[d]-1, Switch 1)"
        if r == "zero_of":
            return f"{t} = 3 if weight_sharded else 0"
        if r == "weight_sharded_of":
            return f"{t} = 1 if zero == 3 else 0"
        return f"{t} = {r}({', '.join(i)})"


def derived(target: str, rule: str, inputs: tuple[str, ...], codecs: dict[str, Codec], *,
            params: tuple[Any, ...] = (), implicit: bool = False) -> Derived:
    """A :class:`Derived` whose scalar `fn` is the rule's formula (see :func:`scalar_rule`)."""
    return Derived(target, rule, inputs, scalar_rule(rule, params, inputs, target, codecs), implicit, params)
