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

The compilation is split along its seams: :mod:`cosmic.psa.spec` parses the sections, :mod:`cosmic.psa.encoding`
builds the coordinates, :mod:`cosmic.psa.feasibility` counts, samples and checks constraints,
:mod:`cosmic.psa.decode` and :mod:`cosmic.psa.columns` turn points into configurations; :class:`Space` is the facade.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cosmic.errors import ConfigError, close_match
from cosmic.psa import columns as _columns
from cosmic.psa import decode as _decode
from cosmic.psa import encoding as _encoding
from cosmic.psa import feasibility as _feasibility
from cosmic.psa import spec as _spec
from cosmic.psa._common import STRUCTURAL, Constraint, Coord, fmt_err, plain
from cosmic.psa.domain import Knob
from cosmic.psa.knobs import STACKS, base_values, constants
from cosmic.psa.objectives import Objective
from cosmic.psa.rules import Derived, make_codecs
from cosmic.sim.columns import StepColumns
from cosmic.sim.config import Schedule, SystemConfig

if TYPE_CHECKING:
    from cosmic.network.topology import NetworkDim

__all__ = ["Constraint", "Derived", "Space"]

_TOP_KEYS = ("name", "description", "base", "knobs", "derived", "constraints", "objectives", "memory_fit")


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

    # The compilation steps in the sibling modules set these on the space they are given.
    # cosmic.psa.encoding.build_coords:
    dim_names: tuple[str, ...]
    cardinalities: tuple[int, ...]
    _group_checks: list[tuple[str, Callable[[dict[str, Any]], bool]]]
    _coords: list[Coord]
    _card: np.ndarray
    _perdim_written: tuple[str, ...]
    _lookup: list[dict[Any, int]]
    _scalar_assign: list[list[dict[str, Any]]]
    # cosmic.psa.decode.prepare_builders:
    _par_keys: tuple[str, ...]
    _train_keys: tuple[str, ...]
    _coll_keys: tuple[str, ...]
    _acc_keys: tuple[str, ...]
    _do_par: bool
    _do_train: bool
    _do_coll: bool
    _do_net: bool
    _do_acc: bool
    _link_key: str | None
    _par_get: Callable[[dict[str, Any]], tuple[Any, ...]]
    _train_get: Callable[[dict[str, Any]], tuple[Any, ...]]
    _cache: dict[Any, Any]
    _tables: _columns.CoordTables | None  # built on first use by cosmic.psa.columns.coord_tables
    _base_dims: tuple[NetworkDim, ...]
    _prec: str
    # cosmic.psa.feasibility.count (and the samplers, which count draws):
    size_total: int
    box_size: int
    size_feasible: int
    size_method: str
    _components: list[_feasibility.Component]
    _box_feasible: int
    _drawn: int
    _accepted: int

    def __init__(self, data: Any, *, file: str | None = None, name: str | None = None,
                 base_dir: Path | None = None) -> None:
        self.file = file
        self._init_args = (copy.deepcopy(data), file, name, base_dir)
        if not isinstance(data, dict):
            raise ConfigError("a PSA must be a mapping", file=file)
        for k in data:
            if k not in _TOP_KEYS:
                hint = close_match(str(k), _TOP_KEYS)
                raise fmt_err(file, str(k), "unknown key (" + (f"did you mean {hint!r}? " if hint else "")
                              + f"allowed: {', '.join(_TOP_KEYS)})")
        self.name: str = str(data.get("name") or name or (Path(file).stem if file else "psa"))
        self.description: str = str(data.get("description") or "")
        self.base: SystemConfig = _spec.parse_base(self, data.get("base"), base_dir)
        self._bv: dict[str, Any] = base_values(self.base)
        self._consts = constants(self.base)
        self.n_dims = len(self.base.network.dims)
        self.n_npus = self.base.network.n_npus
        self.knob_defs: dict[str, Knob] = _spec.parse_knobs(self, data.get("knobs"))
        orders = [self._bv["rank_order"], *(self.knob_defs["rank_order"].domain.values if "rank_order" in
                                           self.knob_defs else ())]
        self._codecs = make_codecs(orders)
        self.derived: tuple[Derived, ...] = _spec.parse_derived(self, data.get("derived"))
        self.objectives: tuple[Objective, ...] = _spec.parse_objectives(self, data.get("objectives"))
        mf = data.get("memory_fit", True)
        if not isinstance(mf, bool):
            raise fmt_err(file, "memory_fit", f"must be true or false, got {mf!r}")
        self.memory_fit: bool = mf
        self._changed = frozenset(self.knob_defs) | {d.target for d in self.derived}
        self._v0 = {**self._bv, **self._consts}
        self._build_rules = tuple(d for d in self.derived if d.rule not in ("unit_view", "weight_sharded_of"))
        _encoding.build_coords(self)
        self._deps = _encoding.dependencies(self)
        self.constraints: tuple[Constraint, ...] = _spec.parse_constraints(self, data.get("constraints"))
        _decode.prepare_builders(self)
        _feasibility.count(self)

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle as the PSA mapping it was compiled from (closures are rebuilt), for process-pool backends."""
        data, file, name, base_dir = self._init_args
        return (_rebuild, (data, file, name, base_dir))

    # ---- points and configurations -----------------------------------------------------------------------------

    def decode(self, point: Any) -> SystemConfig:
        """The concrete configuration of `point` (derived knobs applied; no pydantic re-validation).

        Raises ValueError for a point outside the encoded box."""
        return _decode.decode(self, point)

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

    def encode(self, config: SystemConfig) -> np.ndarray:
        """The point whose decoding is `config` (raises ConfigError when `config` is not in the space)."""
        return _encoding.encode(self, config)

    def knobs(self, point: Any) -> dict[str, object]:
        """Human-readable values of the searched and derived knobs at `point` (JSON-ready)."""
        return _decode.knobs(self, point)

    def coordinate_labels(self, i: int) -> list[str]:
        """Readable value of each index of coordinate `i`."""
        return list(self._coords[i].labels)

    def coordinate_is_ordered(self, i: int) -> bool:
        """Whether the values of coordinate `i` are numbers in increasing order (an integer range to an optimiser)
        rather than categories."""
        return self._coords[i].ordered_numeric

    # ---- feasibility -------------------------------------------------------------------------------------------

    def violations(self, point: Any) -> list[str]:
        """Names of the static constraints `point` violates ([] = feasible); memory fit is not checked here."""
        v = _encoding.values(self, _encoding.check_point(self, point))
        return [c.name for c in self.constraints if not c.fn(v)]

    def is_feasible(self, point: Any) -> bool:
        """Whether `point` satisfies every static constraint (O(1) lookups for enumerated components)."""
        return _feasibility.feasible_unchecked(self, _encoding.check_point(self, point))

    def feasible_mask(self, points: Any) -> np.ndarray:
        """``is_feasible`` of every row of an (n, d) point matrix, as a bool array (a table lookup per enumerated
        constraint component; rows of a component too large to enumerate are checked one by one).

        Raises ValueError when a row lies outside the encoded box (as ``is_feasible``)."""
        return _feasibility.feasible_mask(self, points)

    def neighbours(self, point: Any) -> list[np.ndarray]:
        """Feasible points that differ from `point` in exactly one coordinate (one knob of the encoding)."""
        return _feasibility.neighbours(self, point)

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """`n` feasible points, uniform over the feasible set, as an (n, d) int64 array."""
        return _feasibility.sample(self, rng, n)

    @property
    def acceptance_rate(self) -> float:
        """Measured acceptance of the rejection step of `sample` (1.0 when every constraint component was
        enumerated, so that sampling needs no rejection)."""
        return self._accepted / self._drawn if self._drawn else 1.0

    @property
    def box_acceptance_rate(self) -> float:
        """Fraction of the encoded box that is feasible (what uniform sampling of the box plus rejection gets)."""
        return self._box_feasible / self.box_size if self.box_size else 0.0

    # ---- description -------------------------------------------------------------------------------------------

    def _constraint_rows(self) -> list[dict[str, Any]]:
        rows = []
        if any(set(c.knobs) & set(STRUCTURAL) for c in self._coords):
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
                "values": plain(list(k.domain.values)),
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
