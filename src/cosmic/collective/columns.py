"""The `Communicator` of many configurations at once: every figure a column, one value per configuration.

Groups are laid on the network with `cosmic.workload.parallel.span_columns` (the rule the scalar communicator
uses), and the phase coefficients come from the same `unit_coefficients`: each distinct integer structure
(topology, members, stride, dimension size) of a group on a dimension is looked up once in a table that lasts
across batches, and a configuration's coefficients are that table's entry scaled by its own link latency and
bandwidth. Collectives compose with `collective_cost` and `p2p_cost`, the functions the scalar path runs on floats.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from cosmic.caches import RowTable, register
from cosmic.collective.communicator import (
    KINDS,
    P2P,
    Coefficients,
    Priced,
    collective_cost,
    expert_spans,
    group_shapes,
    p2p_cost,
    shard_spans,
    structure_coefficients,
)
from cosmic.workload.parallel import PARALLEL_DIMS, span_columns

_N_ALGOS = 4
_PACK_BITS = 20


class StructureTable:
    """(a, b) of every phase kind and algorithm for each integer structure (topology, members, stride, dimension
    size) seen so far, in a `RowTable` keyed by the packed structure: ``a[row, kind, algorithm]``."""

    _SHAPE = (P2P + 1, _N_ALGOS)

    def __init__(self) -> None:
        self.table = RowTable(2 * (P2P + 1) * _N_ALGOS)

    def clear(self) -> None:
        self.table.clear()

    @property
    def a(self) -> np.ndarray:
        return self.table.values[:, : self.table.width // 2].reshape(-1, *self._SHAPE)

    @property
    def b(self) -> np.ndarray:
        return self.table.values[:, self.table.width // 2:].reshape(-1, *self._SHAPE)

    def ids(self, topo: np.ndarray, members: np.ndarray, stride: np.ndarray, npus: np.ndarray) -> np.ndarray:
        """Row of the table for each structure (rows are added for structures not seen before)."""
        if max(int(members.max(initial=1)), int(stride.max(initial=1)), int(npus.max(initial=1))) >= 1 << _PACK_BITS:
            raise ValueError("a network dimension of 2^20 NPUs or more is priced one configuration at a time")
        m = np.where(members > 1, members, 1)
        key = (((topo.astype(np.int64) << _PACK_BITS | m) << _PACK_BITS | np.where(m > 1, stride, 0))
               << _PACK_BITS | np.where(m > 1, npus, 0))
        return self.table.row_ids(key, self._price)

    def _price(self, new: np.ndarray) -> np.ndarray:
        mask = (1 << _PACK_BITS) - 1
        a = np.zeros((len(new), *self._SHAPE))
        b = np.zeros_like(a)
        for r, k in enumerate(int(x) for x in new):
            n, st, m, topo = k & mask, (k >> _PACK_BITS) & mask, (k >> 2 * _PACK_BITS) & mask, k >> 3 * _PACK_BITS
            for kind, per_algo in enumerate(structure_coefficients(topo, m, st, n)):
                for algo, (u, w) in enumerate(per_algo):
                    a[r, kind, algo], b[r, kind, algo] = u, w
        return np.concatenate([a.reshape(len(new), -1), b.reshape(len(new), -1)], axis=1)


STRUCTURES = register(StructureTable())


class ColumnCommunicator:
    """Prices collectives of `n` configurations: ``comm(kind, size_bytes, group)`` with a column of sizes is a
    `Priced` of columns (the interface of `cosmic.collective.communicator.Communicator`).

    Args:
        topology, npus, link_bytes_per_s, latency_s: (n, D) network columns (bandwidth already scaled by the
            fabric efficiency).
        algorithms: (n, len(KINDS), D) algorithm codes.
        chunks, baseline: collective settings per configuration.
        degrees: ``{"tp": col, "sp": col, "dp": col, "pp": col}``.
        order_groups: (n, 4) index into `PARALLEL_DIMS` of each rank-order position.
        expert: ``{"ep": col, "etp": col}`` when some configuration is a MoE model (adds the expert groups of
            `cosmic.collective.communicator.EXPERT_GROUPS`), else None.
    """

    def __init__(self, *, topology: np.ndarray, npus: np.ndarray, link_bytes_per_s: np.ndarray,
                 latency_s: np.ndarray, algorithms: np.ndarray, chunks: np.ndarray, baseline: np.ndarray,
                 degrees: dict[str, np.ndarray], order_groups: np.ndarray,
                 expert: dict[str, np.ndarray] | None = None, shard: np.ndarray | None = None) -> None:
        deg = np.stack([degrees[g] for g in PARALLEL_DIMS], axis=1)
        in_order = np.take_along_axis(deg, order_groups, axis=1)
        n_dims = npus.shape[1]
        members, strides, failed = span_columns([in_order[:, j] for j in range(4)],
                                                [npus[:, i] for i in range(n_dims)])
        m_arr = np.stack([np.stack(x, axis=1) for x in members], axis=1)  # (n, 4 positions, D)
        s_arr = np.stack([np.stack(x, axis=1) for x in strides], axis=1)
        pos_of = np.argsort(order_groups, axis=1)  # rank-order position of each group
        by_group: dict[str, tuple[np.ndarray, ...]] = {}
        strides_by_group: dict[str, tuple[np.ndarray, ...]] = {}
        for gi, g in enumerate(PARALLEL_DIMS):
            pos = pos_of[:, gi][:, None, None]
            mg = np.take_along_axis(m_arr, pos, axis=1)[:, 0, :]
            sg = np.take_along_axis(s_arr, pos, axis=1)[:, 0, :]
            by_group[g] = tuple(mg[:, d] for d in range(n_dims))
            strides_by_group[g] = tuple(sg[:, d] for d in range(n_dims))
        if expert is not None:
            ep, etp = expert["ep"], expert["etp"]
            edp = np.maximum(1, degrees["tp"] * degrees["sp"] * degrees["dp"] // (ep * etp))
            em, es, e_failed = expert_spans(etp, ep, edp, degrees["pp"], [npus[:, i] for i in range(n_dims)])
            by_group.update(em)
            strides_by_group.update(es)
            failed = np.where(failed >= 0, failed, np.where(expert.get("moe", True), e_failed, -1))
        if shard is not None:
            # HSDP: a shard group of 0 is the whole DP x SP group
            full = degrees["dp"] * degrees["sp"]
            sm, ss, s_failed = shard_spans(by_group, strides_by_group, np.where(shard > 0, shard, full))
            by_group.update(sm)
            strides_by_group.update(ss)
            failed = np.where(failed >= 0, failed, np.where(s_failed, 4 * n_dims, -1))
        self._set(topology, npus, link_bytes_per_s, latency_s, algorithms, chunks, baseline, failed, by_group,
                  strides_by_group)

    def _set(self, topology: np.ndarray, npus: np.ndarray, bw: np.ndarray, lat: np.ndarray, algorithms: np.ndarray,
             chunks: np.ndarray, baseline: np.ndarray, failed: np.ndarray,
             members: dict[str, tuple[np.ndarray, ...]], strides: dict[str, tuple[np.ndarray, ...]]) -> None:
        """Everything but the group spans, which `__init__` lays out and `take` slices."""
        self.n_dims = npus.shape[1]
        self.topology, self.npus, self.algorithms_ = topology, npus, algorithms
        self.lat, self.bw = lat, bw
        self.chunks, self.baseline, self.failed = chunks, baseline, failed
        self._spans = (members, strides)
        self.shapes = group_shapes(members, strides)
        self.members = {g: sh.members for g, sh in self.shapes.items()}
        self.strides = {g: sh.strides for g, sh in self.shapes.items()}
        self._ids: dict[str, tuple[np.ndarray, ...]] = {}
        self._coef: dict[tuple[str, int], Coefficients] = {}
        zeros = np.zeros(len(chunks))
        self.zero = Priced(zeros, (zeros,) * self.n_dims)

    def take(self, idx: np.ndarray) -> ColumnCommunicator:
        """The communicator of the rows `idx` only (the spans are sliced, not laid out again)."""
        out = object.__new__(ColumnCommunicator)
        members, strides = self._spans
        out._set(self.topology[idx], self.npus[idx], self.bw[idx], self.lat[idx], self.algorithms_[idx],
                 self.chunks[idx], self.baseline[idx], self.failed[idx],
                 {g: tuple(m[idx] for m in ms) for g, ms in members.items()},
                 {g: tuple(s[idx] for s in ss) for g, ss in strides.items()})
        return out

    def _structure(self, group: str) -> tuple[np.ndarray, ...]:
        ids = self._ids.get(group)
        if ids is None:
            ids = self._ids[group] = tuple(
                STRUCTURES.ids(self.topology[:, d], self.members[group][d], self.strides[group][d], self.npus[:, d])
                for d in range(self.n_dims))
        return ids

    def coefficients(self, group: str, kind: int) -> Coefficients:
        key = (group, kind)
        c = self._coef.get(key)
        if c is None:
            ids = self._structure(group)
            a, b = [], []
            for d in range(self.n_dims):
                algo = self.algorithms_[:, kind, d] if kind != P2P else 0
                a.append(self.lat[:, d] * STRUCTURES.a[ids[d], kind, algo])
                b.append(STRUCTURES.b[ids[d], kind, algo] / self.bw[:, d])
            c = self._coef[key] = Coefficients(tuple(a), tuple(b))
        return c

    def __call__(self, kind: Any, size_bytes: Any, group: str) -> Priced:
        k = kind if isinstance(kind, int) else KINDS.index(kind)
        return collective_cost(k, size_bytes, lambda q: self.coefficients(group, q), self.shapes[group],
                               self.chunks, self.baseline)

    def p2p(self, size_bytes: Any) -> Priced:
        return p2p_cost(size_bytes, self.coefficients("pp", P2P), self.shapes["pp"])

    def send(self, size_bytes: Any, group: str) -> Priced:
        """A send between neighbouring members of `group` (`Communicator.send` on columns)."""
        return p2p_cost(size_bytes, self.coefficients(group, P2P), self.shapes[group])
