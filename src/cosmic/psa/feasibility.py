"""Feasibility of a :class:`Space`: constraint components, exact or Monte Carlo counting, uniform sampling (table
lookup or rejection), per-point and vectorised feasibility, neighbourhoods."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from cosmic.errors import CosmicError
from cosmic.psa import columns as _columns
from cosmic.psa import encoding
from cosmic.psa._common import (
    Constraint,
    conflict_phrase,
    fmt_err,
)

if TYPE_CHECKING:
    from cosmic.psa.space import Space

ENUM_LIMIT = 100_000
"""Largest number of assignments enumerated to count one constraint component (larger: Monte Carlo)."""
BOX_ENUM_LIMIT = 20_000
"""Encoded boxes up to this size are counted by enumerating every point."""
MC_SAMPLES = 20_000


@dataclass
class Component:
    coords: tuple[int, ...]
    constraints: tuple[Constraint, ...]
    box: int
    count: float = 0.0
    exact: bool = True
    feasible: np.ndarray | None = None
    feasible_set: frozenset[tuple[int, ...]] | None = None
    table: np.ndarray | None = None  # bool, indexed by the mixed-radix key of the component's coordinates


def mixed_radix(rows: np.ndarray, radix: np.ndarray) -> np.ndarray:
    """Key of each row of `rows` (n, k) as a number in the mixed radix `radix` (first column most significant)."""
    key = np.zeros(rows.shape[0], dtype=np.int64)
    for j in range(rows.shape[1]):
        key = key * int(radix[j]) + rows[:, j]
    return key


def feasible_unchecked(space: Space, p: np.ndarray) -> bool:
    v = None
    pl = p.tolist()
    for comp in space._components:
        if comp.feasible_set is not None:
            if tuple([pl[i] for i in comp.coords]) not in comp.feasible_set:
                return False
        else:
            if v is None:
                v = encoding.values(space, p)
            if not all(c.fn(v) for c in comp.constraints):
                return False
    return True


def feasible_mask(space: Space, points: Any) -> np.ndarray:
    """``is_feasible`` of every row of an (n, d) point matrix, as a bool array (a table lookup per enumerated
    constraint component; rows of a component too large to enumerate are checked one by one).

    Raises ValueError when a row lies outside the encoded box (as ``is_feasible``)."""
    p, inside = _columns.in_box(space, points)
    if not inside.all():
        bad = p[np.flatnonzero(~inside)[0]].tolist()
        raise ValueError(f"point {bad} is outside the box of cardinalities {list(space.cardinalities)}")
    mask = np.ones(p.shape[0], dtype=bool)
    for comp in space._components:
        idx = list(comp.coords)
        if comp.table is not None:
            mask &= comp.table[mixed_radix(p[:, idx], space._card[idx])]
    for comp in space._components:
        if comp.table is None:
            for r in np.flatnonzero(mask).tolist():
                v = encoding.values(space, p[r])
                mask[r] = all(c.fn(v) for c in comp.constraints)
    return mask


def neighbours(space: Space, point: Any) -> list[np.ndarray]:
    """Feasible points that differ from `point` in exactly one coordinate (one knob of the encoding)."""
    p = encoding.check_point(space, point)
    out = []
    for i, card in enumerate(space.cardinalities):
        for j in range(card):
            if j == p[i]:
                continue
            q = p.copy()
            q[i] = j
            if feasible_unchecked(space, q):
                out.append(q)
    return out


def sample(space: Space, rng: np.random.Generator, n: int) -> np.ndarray:
    """`n` feasible points, uniform over the feasible set, as an (n, d) int64 array."""
    d = len(space._coords)
    out = np.empty((n, d), dtype=np.int64)
    for i, card in enumerate(space.cardinalities):
        out[:, i] = rng.integers(0, card, size=n)
    for comp in space._components:
        idx = list(comp.coords)
        if comp.feasible is not None:
            out[:, idx] = comp.feasible[rng.integers(0, len(comp.feasible), size=n)]
        else:
            reject(space, comp, out, rng)
    return out


def reject(space: Space, comp: Component, out: np.ndarray, rng: np.random.Generator) -> None:
    idx = list(comp.coords)
    cards = space._card[idx]
    for r in range(out.shape[0]):
        for _ in range(1_000_000):
            cand = rng.integers(0, cards)
            out[r, idx] = cand
            v = encoding.values(space, out[r])
            space._drawn += 1
            if all(c.fn(v) for c in comp.constraints):
                space._accepted += 1
                break
        else:
            raise CosmicError(f"{space.name}: no feasible point found in 1,000,000 rejection draws")


def components(space: Space) -> list[Component]:
    """The connected components of the constraint graph (union-find over coordinates); raises ConfigError when a
    constraint that depends on no coordinate is false for the base."""
    cons = list(space.constraints)
    probe = encoding.values(space, np.zeros(len(space._coords), dtype=np.int64))
    for c in cons:
        if not c.coords and not c.fn(probe):
            raise fmt_err(space.file, "constraints",
                          f"unsatisfiable: constraint {c.name!r} is false for the base and depends on no knob")
    parent = list(range(len(space._coords)))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for c in cons:
        ci = sorted(c.coords)
        for a in ci[1:]:
            parent[find(a)] = find(ci[0])
    groups: dict[int, list[Constraint]] = {}
    for c in cons:
        if c.coords:
            groups.setdefault(find(min(c.coords)), []).append(c)
    comps = []
    for root, cs in groups.items():
        coords = tuple(i for i in range(len(space._coords)) if find(i) == root)
        box = math.prod(space.cardinalities[i] for i in coords)
        comps.append(Component(coords, tuple(cs), box))
    return comps


def _enumerated(space: Space, comp: Component) -> None:
    """Enumerate a small component: its feasible rows, their set, the lookup table and the exact count."""
    rows = enumerate_component(space, comp, comp.constraints)
    if not rows:
        names = minimal_conflict(space, comp)
        raise fmt_err(space.file, "constraints", "unsatisfiable: " + conflict_phrase(names))
    comp.feasible = np.array(rows, dtype=np.int64).reshape(len(rows), len(comp.coords))
    comp.feasible_set = frozenset(rows)
    comp.table = np.zeros(comp.box, dtype=bool)
    comp.table[mixed_radix(comp.feasible, space._card[list(comp.coords)])] = True
    comp.count = len(rows)


def _monte_carlo(space: Space, comp: Component) -> float:
    """Estimate a large component's count from MC_SAMPLES uniform draws; returns the squared relative error."""
    rng = np.random.default_rng(12345)
    cards = space._card[list(comp.coords)]
    pt = np.zeros(len(space._coords), dtype=np.int64)
    hits = 0
    for _ in range(MC_SAMPLES):
        pt[list(comp.coords)] = rng.integers(0, cards)
        v = encoding.values(space, pt)
        if all(c.fn(v) for c in comp.constraints):
            hits += 1
    if hits == 0:
        names = [c.name for c in comp.constraints]
        raise fmt_err(space.file, "constraints",
                      f"no feasible point in {MC_SAMPLES:,} random samples of constraints "
                      f"{', '.join(repr(x) for x in names)} (too many combinations to prove it)")
    p = hits / MC_SAMPLES
    comp.count = p * comp.box
    comp.exact = False
    space._drawn += MC_SAMPLES
    space._accepted += hits
    return (1.96 * math.sqrt((1 - p) / (p * MC_SAMPLES))) ** 2


def count(space: Space) -> None:
    """Set the space's sizes (total, box, feasible and how it was counted) and its constraint components."""
    space.size_total = math.prod(k.n_raw_points(space.n_dims) for k in space.knob_defs.values())
    space.box_size = math.prod(space.cardinalities)
    space._drawn = 0
    space._accepted = 0
    comps = space._components = components(space)
    constrained = {i for comp in comps for i in comp.coords}
    feasible: float = math.prod(space.cardinalities[i] for i in range(len(space._coords)) if i not in constrained)
    rel_err2 = 0.0
    n_mc = 0
    for comp in comps:
        if comp.box <= ENUM_LIMIT:
            _enumerated(space, comp)
        else:
            rel_err2 += _monte_carlo(space, comp)
            n_mc += MC_SAMPLES
        feasible *= comp.count
    space.size_feasible = int(round(feasible))
    space._box_feasible = space.size_feasible
    if n_mc:
        space.size_method = f"estimated (Monte Carlo, {n_mc} samples, ±{100 * math.sqrt(rel_err2):.1f}%)"
        return
    space.size_method = "exact (DP)"
    if space.box_size <= BOX_ENUM_LIMIT:  # small: count the whole box directly (and cross-check)
        cons = space.constraints
        whole = Component(tuple(range(len(space._coords))), tuple(cons), space.box_size)
        n_whole = len(enumerate_component(space, whole, cons))
        if n_whole != space.size_feasible:  # pragma: no cover - would be a bug in the factorisation
            raise AssertionError(f"count mismatch: {n_whole} != {space.size_feasible}")
        space.size_method = "exact (enumeration)"


def enumerate_component(space: Space, comp: Component, constraints: Iterable[Constraint]) -> list[tuple[int, ...]]:
    cs = list(constraints)
    rows = []
    pt = np.zeros(len(space._coords), dtype=np.int64)
    idx = list(comp.coords)
    for combo in itertools.product(*(range(space.cardinalities[i]) for i in idx)):
        pt[idx] = combo
        v = encoding.values(space, pt)
        if all(c.fn(v) for c in cs):
            rows.append(combo)
    return rows


def minimal_conflict(space: Space, comp: Component) -> list[str]:
    keep = list(comp.constraints)
    for c in list(keep):
        trial = [x for x in keep if x is not c]
        if trial and not enumerate_component(space, comp, trial):
            keep = trial
    return [c.name for c in keep]
