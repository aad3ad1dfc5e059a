"""`bnb`: branch and bound over a PSA space, certifying the step-time optimum (or a proven gap when stopped)."""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar

import numpy as np

from cosmic.agents._base import BaseAgent, Value, key
from cosmic.agents._bounds import box_bounds, check_space, coordinate_roles, relaxable_coordinates, relaxed_bounds
from cosmic.errors import ConfigError

_CHUNK = 65536  # boxes bounded per batch
_BATCH_NODES = 256  # nodes of the Q tree and M boxes expanded at a time (one bound call per kind)
_SAFETY = 1e-12  # relative margin against rounding when a bound is compared with the incumbent


class BranchAndBoundAgent(BaseAgent):
    """Branch and bound (Land and Doig 1960) with the simulator-derived lower bounds of `cosmic.agents._bounds`.

    The coordinates split into workload/compute ones (W), monotone network ones (M: bandwidth, latency) and the
    other network and collective ones (R).

    1. Every W assignment is bounded by its compute-only step (an infinitely fast network bounds every network and
       collective choice); those whose memory does not fit are dropped. They are visited in increasing bound.
    2. For one W assignment, every R assignment is bounded over the whole M box (its fastest corner, with the
       window of the DP overlap taken at the slowest corner), and visited in increasing bound.
    3. An M box is bisected on its widest coordinate until it holds at most `leaf` points, which are asked
       (every feasible point not asked before). Each box is bounded before it is split or enumerated.

    When some R coordinates reach the phase coefficients of their dimension only (Q: topology, algorithms; point 6
    of `cosmic.agents._bounds`), step 2 becomes a tree (``relax``, default on): the other R coordinates (S: NPUs
    per dimension, chunks, scheduling, multi-dimensional mode) are the roots, bounded with Q free; a node's
    children fix the Q coordinates of the next dimension; the last level's children are R assignments with their
    M box (step 3). Every node is bounded with what it leaves free relaxed, and the nodes of one W assignment are
    expanded best first from one heap, a batch at a time. W assignments are then visited best first too, keyed by
    their compute-only bound until the relaxed bounds of their roots are known, then by the smallest of those.

    Anything whose bound reaches the incumbent (the best feasible value told) is pruned, with all it contains: the
    first W or R assignment in bound order that does, ends its level. When the search ends the incumbent is the
    certified optimum (``certificate()["certified"]``); when the explorer stops it first (budget, time limit), the
    smallest bound of what is still open gives a proven gap. With ``gap_pct > 0`` boxes within that gap of the
    incumbent are pruned too and the certificate is a proven gap of at most ``gap_pct``.

    Deterministic (the seed is unused). Resuming tells the stored history (the incumbent and the asked points) and
    walks the same tree again, skipping what was asked.

    Args:
        leaf: largest M box enumerated without splitting it further (default 64).
        gap_pct: relative gap, in percent, accepted when pruning (default 0: certify the optimum).
        limit: largest number of W (and of R) assignments (default 10^7).
        relax: bound boxes with the Q coordinates relaxed (default True; False: every R assignment is bounded).
    """

    name: ClassVar[str] = "bnb"
    repeats_points: ClassVar[bool] = False
    default_batch: ClassVar[int] = 1024
    times_unfit_points: ClassVar[bool] = False  # an unfit point is never the optimum

    def __init__(self, space: Any, *, seed: int | None = None, leaf: int = 64, gap_pct: float = 0.0,
                 limit: int = 10**7, relax: bool = True) -> None:
        super().__init__(space, seed=seed)
        check_space(space)
        if leaf < 1:
            raise ConfigError(f"bnb: leaf must be >= 1, got {leaf}")
        if not 0.0 <= gap_pct < 100.0:
            raise ConfigError(f"bnb: gap_pct must be in [0, 100), got {gap_pct}")
        self.leaf, self.gap_pct, self.limit, self.relax = int(leaf), float(gap_pct), int(limit), bool(relax)
        self.w, self.m, self.r, self.m_best = coordinate_roles(space)
        self.q_dims, self.q_levels = self._relaxation() if self.relax else ([], [])
        self.s = [i for i in self.r if not any(i in lv for lv in self.q_levels)]
        self._s_assignments = self._assignments(self.s)
        self.m_worst = np.where(self.m_best > 0, 0, self.cards[self.m] - 1)
        for name, dims in (("workload/compute", self.w), ("network/collective", self.r)):
            size = math.prod(int(self.cards[i]) for i in dims)
            if size > self.limit:
                raise ConfigError(f"bnb: the space has {size:,} {name} assignments, more than limit "
                                  f"{self.limit:,}; fix some knobs or raise -H limit=...")
        # a static constraint on an M coordinate makes feasibility vary inside a box: then boxes are not dropped
        # for an infeasible corner (their points still are, one by one)
        m_set = set(self.m)
        self._corner_feasibility = not any(set(c.coords) & m_set for c in space.constraints)
        self.best = math.inf
        self.seen: set[bytes] = set()
        self._buffer: list[tuple[np.ndarray, float]] = []  # points yielded but not asked yet, with their bound
        self._gen: Iterator[tuple[np.ndarray, float]] | None = None
        self._done = False
        self._open: dict[str, float] = {}  # level -> smallest bound still open there
        self._tol_lb = math.inf  # smallest bound pruned only thanks to gap_pct
        self.pruned_points = 0
        self.bounded_boxes = 0

    def hyperparameters(self) -> dict[str, Any]:
        return {"leaf": self.leaf, "gap_pct": self.gap_pct, "limit": self.limit, "relax": self.relax}

    def _relaxation(self) -> tuple[list[list[int]], list[list[int]]]:
        """Per network dimension, the R coordinates that reach its phase coefficients only (Q, relaxed in a
        box); and the levels of the Q tree: the coordinates of each dimension in turn not fixed by an earlier one."""
        _, q_dims = relaxable_coordinates(self.space, self.r)
        levels: list[list[int]] = []
        fixed: set[int] = set()
        for coords in q_dims:
            new = [i for i in coords if i not in fixed]
            if new:
                levels.append(new)
                fixed |= set(new)
        return q_dims, levels

    @property
    def exhausted(self) -> bool:
        return self._done and not self._buffer

    # ---- the certificate ---------------------------------------------------------------------------------------

    def lower_bound(self) -> float:
        """A proven lower bound of the optimum over the whole space, given what has been told."""
        return min([self.best, self._tol_lb, *self._open.values(), *(b for _, b in self._buffer)])

    def certificate(self) -> dict[str, Any]:
        """``certified`` (the incumbent is the optimum), ``lower_bound`` and ``gap_pct`` = (best - bound) / bound."""
        if self.exhausted and math.isinf(self.best):
            return {"certified": True, "lower_bound": None, "gap_pct": None, "pruned_points": self.pruned_points}
        lb = self.lower_bound()
        gap = None if not (math.isfinite(self.best) and lb > 0) else max(0.0, (self.best - lb) / lb * 100.0)
        # certified once nothing open can beat the incumbent (the search may still have ties to visit)
        return {"certified": gap == 0.0, "lower_bound": lb if math.isfinite(lb) else None,
                "gap_pct": gap, "pruned_points": self.pruned_points, "bounded_boxes": self.bounded_boxes}

    # ---- ask / tell --------------------------------------------------------------------------------------------

    def ask(self, n: int = 1) -> np.ndarray:
        if self._gen is None:
            self._gen = self._search()
        have = sum(len(b) for b, _ in self._buffer)
        while have < n and not self._done:
            try:
                item = next(self._gen)
            except StopIteration:
                self._done = True
                break
            self._buffer.append(item)
            have += len(item[0])
        out: list[np.ndarray] = []
        while self._buffer and n > 0:
            pts, b = self._buffer.pop(0)
            if len(pts) > n:
                self._buffer.insert(0, (pts[n:], b))
                pts = pts[:n]
            out.append(pts)
            n -= len(pts)
        if not out:
            return np.zeros((0, self.d), dtype=np.int64)
        return np.concatenate(out)

    def tell(
        self, points: np.ndarray, values: Sequence[Value | None], *, violations: Sequence[float] | None = None
    ) -> None:
        pts = self.check_points(points, len(values))
        for p, v in zip(pts, values, strict=True):
            self.seen.add(key(p))
            lo = self.loss(v)
            if lo < self.best:
                self.best = lo

    # ---- the search --------------------------------------------------------------------------------------------

    def _cut(self) -> float:
        """Bounds at or above this are pruned."""
        return self.best / (1.0 + self.gap_pct / 100.0) * (1.0 + _SAFETY)

    def _prune(self, lb: float, points: int) -> None:
        self.pruned_points += points
        if lb < self.best * (1.0 + _SAFETY):
            self._tol_lb = min(self._tol_lb, lb)

    def _assignments(self, coords: list[int]) -> np.ndarray:
        """Every assignment of `coords`, one per row (mixed-radix order)."""
        cards = tuple(int(self.cards[i]) for i in coords)
        size = math.prod(cards)
        if not coords:
            return np.zeros((1, 0), dtype=np.int64)
        return np.stack(np.unravel_index(np.arange(size, dtype=np.int64), cards), axis=1).astype(np.int64)

    def _fresh(self, pts: np.ndarray) -> np.ndarray:
        """The feasible rows of `pts` never asked."""
        if not len(pts):
            return pts
        pts = pts[self.space.feasible_mask(pts)]
        keep = [i for i, p in enumerate(pts) if key(p) not in self.seen]
        out = pts[keep]
        for p in out:
            self.seen.add(key(p))
        return out

    def _bounds(self, fast: np.ndarray, slow: np.ndarray | None, *, free: bool = False) -> np.ndarray:
        out = np.empty(len(fast))
        for s in range(0, len(fast), _CHUNK):
            sl = slice(s, s + _CHUNK)
            out[sl] = box_bounds(self.space, fast[sl], None if slow is None else slow[sl], free_network=free)
        self.bounded_boxes += len(fast)
        return out

    def _search(self) -> Iterator[tuple[np.ndarray, float]]:
        ws = self._assignments(self.w)
        base = np.zeros((len(ws), self.d), dtype=np.int64)
        base[:, self.w] = ws
        base[:, self.m] = self.m_best
        rest_size = math.prod(int(self.cards[i]) for i in self.r + self.m)
        lb = self._bounds(base, None, free=True)
        order = np.argsort(lb, kind="stable")
        if not self.r and not self.m:
            yield from self._points_in_order(base[order], lb[order], "w")
            return
        if self.q_levels:
            yield from self._w_best_first(base, lb, rest_size)
            return
        for j, wi in enumerate(order):
            if lb[wi] >= self._cut():
                for k in order[j:]:
                    self._prune(float(lb[k]), rest_size)
                break
            # open: the W assignments after this one, and this one's R assignments until they are bounded
            self._open["w"] = float(lb[order[j + 1]]) if j + 1 < len(order) else math.inf
            self._open["r"] = float(lb[wi])
            yield from self._within_w(base[wi])
        self._open.clear()

    def _points_in_order(self, pts: np.ndarray, lb: np.ndarray, level: str) -> Iterator[tuple[np.ndarray, float]]:
        """Leaves that are single points (no M box): ask them in bound order until the bound reaches the cut."""
        s, step = 0, 16  # small first, so that an incumbent is told early; then doubling up to 4096
        while s < len(pts):
            self._open[level] = float(lb[s + step]) if s + step < len(pts) else math.inf
            stop = int(np.searchsorted(lb[s:s + step], self._cut(), side="left"))
            fresh = self._fresh(pts[s:s + stop])
            if len(fresh):
                yield fresh, float(lb[s])
            if stop < min(step, len(pts) - s):
                for v in lb[s + stop:]:
                    self._prune(float(v), 1)
                break
            s, step = s + step, min(2 * step, 4096)
        self._open.pop(level, None)

    def _r_points(self, wpoint: np.ndarray, idx: np.ndarray) -> np.ndarray:
        """The points of W assignment `wpoint` with the R assignments numbered `idx` (M at the fastest values)."""
        pts = np.repeat(wpoint[None, :], len(idx), axis=0)
        if self.r:
            cards = tuple(int(self.cards[i]) for i in self.r)
            pts[:, self.r] = np.stack(np.unravel_index(idx, cards), axis=1)
        return pts

    def _within_w(self, wpoint: np.ndarray) -> Iterator[tuple[np.ndarray, float]]:
        n_r = math.prod(int(self.cards[i]) for i in self.r)
        lb = np.full(n_r, np.inf)  # inf: the corner breaks a static constraint, or no point of the box can run
        for s in range(0, n_r, _CHUNK):
            idx = np.arange(s, min(s + _CHUNK, n_r), dtype=np.int64)
            fast = self._r_points(wpoint, idx)
            keep = self.space.feasible_mask(fast) if self._corner_feasibility else np.ones(len(idx), dtype=bool)
            if keep.any():
                slow = fast[keep].copy()
                slow[:, self.m] = self.m_worst
                lb[idx[keep]] = self._bounds(fast[keep], slow if self.m else None)
        order = np.argsort(lb, kind="stable")
        order = order[np.isfinite(lb[order])]
        lb = lb[order]
        if not self.m:
            yield from self._points_in_order(self._r_points(wpoint, order), lb, "r")
            return
        m_size = math.prod(int(self.cards[i]) for i in self.m)
        lo, hi = np.minimum(self.m_best, self.m_worst), np.maximum(self.m_best, self.m_worst)
        for j in range(len(order)):
            if lb[j] >= self._cut():
                for v in lb[j:]:
                    self._prune(float(v), m_size)
                break
            self._open["r"] = float(lb[j + 1]) if j + 1 < len(order) else math.inf
            yield from self._m_boxes(self._r_points(wpoint, order[j:j + 1])[0], lo, hi, float(lb[j]))
        self._open.pop("r", None)

    # ---- the Q tree: R coordinates that reach phase coefficients only, relaxed a dimension at a time ----------

    def _relaxed(self, pts: np.ndarray, fixed: int) -> np.ndarray:
        """Bounds of the relaxed boxes of `pts` whose first `fixed` Q levels are fixed (the rest take any value)."""
        done = {i for lv in self.q_levels[:fixed] for i in lv}
        q_per_dim = [[i for i in coords if i not in done] for coords in self.q_dims]
        slow = pts.copy()
        slow[:, self.m] = self.m_worst
        out = np.empty(len(pts))
        for s in range(0, len(pts), _CHUNK // 16):
            sl = slice(s, s + _CHUNK // 16)
            out[sl] = relaxed_bounds(self.space, pts[sl], q_per_dim, slow[sl])
        self.bounded_boxes += len(pts)
        return out

    def _w_best_first(self, base: np.ndarray, lb: np.ndarray, rest_size: int) -> Iterator[tuple[np.ndarray, float]]:
        """W assignments best first, keyed by their compute-only step until the relaxed bounds of their S roots
        are known, then by the smallest of those (a tighter bound of the same assignments), so that the open bound
        of the W level is the smallest key left."""
        heap: list[tuple[float, int, Any]] = [(float(lb[i]), int(i), None) for i in np.flatnonzero(np.isfinite(lb))]
        heapq.heapify(heap)
        while heap:
            if heap[0][0] >= self._cut():
                for b, _, _ in heap:
                    self._prune(b, rest_size)
                break
            b, wi, roots = heapq.heappop(heap)
            if roots is None:
                pts = np.repeat(base[wi][None, :], len(self._s_assignments), axis=0)
                pts[:, self.s] = self._s_assignments
                rl = np.maximum(self._relaxed(pts, 0), b)
                if np.isfinite(rl).any():
                    heapq.heappush(heap, (float(rl.min()), wi, (pts, rl)))
                continue
            self._open["w"] = heap[0][0] if heap else math.inf
            yield from self._relaxed_tree(*roots)
        self._open.clear()

    def _relaxed_tree(self, pts: np.ndarray, lb: np.ndarray) -> Iterator[tuple[np.ndarray, float]]:
        """The R assignments of one W assignment, best first over one heap of nodes, expanded a batch at a time.

        Roots: the assignments of the R coordinates outside Q (S), each bounded with every Q coordinate relaxed.
        A node of depth d has the first d Q levels fixed; its children fix level d (relaxed bounds), the last
        level's children are R assignments bounded over their whole M box (points 1 to 5), and M boxes are bisected
        until they hold at most `leaf` points, which are asked. A child's bound is at least its parent's."""
        heap: list[tuple[float, int, int, np.ndarray, np.ndarray | None, np.ndarray | None]] = []
        self._tick = 0
        self._push(heap, pts, lb, 0, None, None)
        self._open["r"] = heap[0][0] if heap else math.inf
        while heap:
            batch: list[Any] = []
            while heap and heap[0][0] < self._cut() and len(batch) < _BATCH_NODES:
                batch.append(heapq.heappop(heap))
            if not batch:
                for b, _, depth, _, blo, bhi in heap:
                    self._prune(b, self._node_size(depth, blo, bhi))
                break
            leaves = self._expand(heap, batch)
            for i, (pts_i, b) in enumerate(leaves):
                rest = [bb for _, bb in leaves[i + 1:]]
                self._open["r"] = min([heap[0][0] if heap else math.inf, *rest])
                fresh = self._fresh(pts_i)
                if len(fresh):
                    yield fresh, b
            self._open["r"] = heap[0][0] if heap else math.inf
        self._open.pop("r", None)

    def _node_size(self, depth: int, lo: np.ndarray | None, hi: np.ndarray | None) -> int:
        if lo is not None and hi is not None:
            return int(np.prod(hi - lo + 1))
        rest = [i for lv in self.q_levels[depth:] for i in lv] + self.m
        return math.prod(int(self.cards[i]) for i in rest)

    def _push(self, heap: list[Any], pts: np.ndarray, lb: np.ndarray, depth: int, lo: np.ndarray | None,
              hi: np.ndarray | None) -> None:
        """Push nodes (``inf`` bounds dropped); `lo`/`hi` are per-node M boxes (rows) for M nodes."""
        for k in np.flatnonzero(np.isfinite(lb)):
            heapq.heappush(heap, (float(lb[k]), self._tick, depth, pts[k],
                                  None if lo is None else lo[k], None if hi is None else hi[k]))
            self._tick += 1

    def _expand(self, heap: list[Any], batch: list[Any]) -> list[tuple[np.ndarray, float]]:
        """Expand a batch of nodes, pushing their children; return the leaves' points (with their bounds)."""
        leaves: list[tuple[np.ndarray, float]] = []
        n_levels = len(self.q_levels)
        for depth in sorted({e[2] for e in batch if e[4] is None}):
            nodes = [e for e in batch if e[4] is None and e[2] == depth]
            coords = self.q_levels[depth]
            asg = self._assignments(coords)
            kids = np.repeat(np.stack([e[3] for e in nodes]), len(asg), axis=0)
            kids[:, coords] = np.tile(asg, (len(nodes), 1))
            parent = np.repeat([e[0] for e in nodes], len(asg))
            if depth + 1 < n_levels:
                self._push(heap, kids, np.maximum(self._relaxed(kids, depth + 1), parent), depth + 1, None, None)
                continue
            keep = self.space.feasible_mask(kids) if self._corner_feasibility else np.ones(len(kids), dtype=bool)
            kids, parent = kids[keep], parent[keep]
            if not len(kids):
                continue
            if not self.m:
                for k in range(len(kids)):
                    leaves.append((kids[k:k + 1], float(parent[k])))
                continue
            slow = kids.copy()
            slow[:, self.m] = self.m_worst
            lo = np.repeat(np.minimum(self.m_best, self.m_worst)[None, :], len(kids), axis=0)
            hi = np.repeat(np.maximum(self.m_best, self.m_worst)[None, :], len(kids), axis=0)
            self._push(heap, kids, np.maximum(self._bounds(kids, slow), parent), n_levels, lo, hi)
        boxes = [e for e in batch if e[4] is not None]
        split = []
        for b, _, _, point, blo, bhi in boxes:
            if int(np.prod(bhi - blo + 1)) <= self.leaf:
                grid = np.stack(np.meshgrid(*[np.arange(a, z + 1) for a, z in zip(blo, bhi, strict=True)],
                                            indexing="ij"), axis=-1).reshape(-1, len(self.m))
                pts = np.repeat(point[None, :], len(grid), axis=0)
                pts[:, self.m] = grid
                leaves.append((pts, b))
            else:
                split.append((b, point, blo, bhi))
        if split:
            self._bisect(heap, split, n_levels)
        return leaves

    def _bisect(self, heap: list[Any], boxes: list[Any], depth: int) -> None:
        """Split each M box on its widest coordinate, bound both halves at once and push them."""
        los, his, points, parent = [], [], [], []
        for b, point, blo, bhi in boxes:
            k = int(np.argmax(bhi - blo))
            mid = (blo[k] + bhi[k]) // 2
            lo2, hi1 = blo.copy(), bhi.copy()
            hi1[k], lo2[k] = mid, mid + 1
            los += [blo, lo2]
            his += [hi1, bhi]
            points += [point, point]
            parent += [b, b]
        lo, hi, pts = np.stack(los), np.stack(his), np.stack(points)
        fast, slow = pts.copy(), pts.copy()
        fast[:, self.m] = np.where(self.m_best > 0, hi, lo)
        slow[:, self.m] = np.where(self.m_best > 0, lo, hi)
        self._push(heap, pts, np.maximum(self._bounds(fast, slow), parent), depth, lo, hi)

    def _corners(self, point: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        fast = np.repeat(point[None, :], len(lo), axis=0)
        slow = fast.copy()
        fast[:, self.m] = np.where(self.m_best > 0, hi, lo)
        slow[:, self.m] = np.where(self.m_best > 0, lo, hi)
        return fast, slow

    def _m_boxes(self, point: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                 lb: float) -> Iterator[tuple[np.ndarray, float]]:
        """Best-first over the M boxes of one W and R assignment."""
        heap: list[tuple[float, int, np.ndarray, np.ndarray]] = [(lb, 0, lo, hi)]
        tick = 1
        self._open["m"] = lb
        while heap:
            b, _, blo, bhi = heapq.heappop(heap)
            self._open["m"] = min(b, heap[0][0]) if heap else b
            size = int(np.prod(bhi - blo + 1))
            if b >= self._cut():
                self._prune(b, size)
                for bb, _, l2, h2 in heap:
                    self._prune(bb, int(np.prod(h2 - l2 + 1)))
                break
            if size <= self.leaf:
                grid = np.stack(np.meshgrid(*[np.arange(a, z + 1) for a, z in zip(blo, bhi, strict=True)],
                                            indexing="ij"), axis=-1).reshape(-1, len(self.m))
                pts = np.repeat(point[None, :], len(grid), axis=0)
                pts[:, self.m] = grid
                self._open["m"] = heap[0][0] if heap else math.inf  # this leaf's points are asked and told
                fresh = self._fresh(pts)
                if len(fresh):
                    yield fresh, b
                continue
            k = int(np.argmax(bhi - blo))
            mid = (blo[k] + bhi[k]) // 2
            lo2, hi1 = blo.copy(), bhi.copy()
            hi1[k], lo2[k] = mid, mid + 1
            los, his = np.stack([blo, lo2]), np.stack([hi1, bhi])
            fast, slow = self._corners(point, los, his)
            bs = self._bounds(fast, slow)
            for c in range(2):
                heapq.heappush(heap, (max(float(bs[c]), b), tick, los[c], his[c]))
                tick += 1
            self._open["m"] = heap[0][0]
        self._open.pop("m", None)
