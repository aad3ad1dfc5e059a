"""Configurations as columns: many concrete configs of one step, one NumPy array per figure.

The batch path of the simulator (:func:`cosmic.sim.simulate_columns`) prices whole columns at once; a PSA decodes
its integer point matrix straight into a :class:`StepColumns` (``Space.decode_columns``) without building one
pydantic object per point. Sections with few distinct values per batch (model, accelerator, training) are held as a
tuple of the distinct objects plus an index column; sections that vary freely (parallel degrees, network,
collectives) are numeric columns.

``StepColumns.from_configs(configs)`` is the reference: ``space.decode_columns(points)`` must equal
``StepColumns.from_configs([space.decode(p) for p in points])`` field by field (see :meth:`StepColumns.same_as`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from cosmic.collective.communicator import ALGORITHM_CODE as _ALGO_CODE
from cosmic.collective.communicator import ALGORITHMS, TOPOLOGIES
from cosmic.collective.communicator import KINDS as COLLECTIVES
from cosmic.collective.communicator import TOPOLOGY_CODE as _TOPO_CODE
from cosmic.collective.config import Fidelity, Scheduling
from cosmic.collective.model import MultiDim

# the codes of the columns are the communicator's (TOPOLOGIES[code], ALGORITHMS[code]; COLLECTIVES orders the kind
# axis of CollectiveColumns.algorithms)
MULTIDIMS: tuple[MultiDim, ...] = tuple(MultiDim)
SCHEDULINGS: tuple[str, ...] = tuple(s.value for s in Scheduling)
FIDELITIES: tuple[str, ...] = tuple(f.value for f in Fidelity)
DISPATCHERS: tuple[str, ...] = ("alltoall", "allgather")  # codes of sim.step DISPATCH_ALLTOALL, _ALLGATHER
CP_ALGORITHMS: tuple[str, ...] = ("p2p", "allgather", "a2a")  # codes of sim.step CP_P2P, CP_ALLGATHER, CP_A2A


def _expert_column(values: list[int], n: int) -> np.ndarray | None:
    """A column of expert-parallel figures, None when it holds only the default 1."""
    return None if all(v == 1 for v in values) else np.array(values, dtype=np.int64).reshape(n)


@dataclass(frozen=True, eq=False)
class NetworkColumns:
    """Per-dimension network figures, shape (n, n_dims); every config of a batch has the same number of dims."""

    topology: np.ndarray  # int8 codes into TOPOLOGIES
    npus: np.ndarray  # int64
    link_bytes_per_s: np.ndarray  # float64, raw (before efficiency)
    latency_s: np.ndarray  # float64
    efficiency: np.ndarray  # float64


@dataclass(frozen=True, eq=False)
class CollectiveColumns:
    """Collective settings; ``algorithms[i, k, d]`` is the resolved algorithm code of collective ``COLLECTIVES[k]``
    on network dimension d of config i (``auto`` already replaced by the topology's default)."""

    algorithms: np.ndarray  # int8, shape (n, len(COLLECTIVES), n_dims)
    chunks: np.ndarray  # int64
    scheduling: np.ndarray  # int8 codes into SCHEDULINGS
    multidim: np.ndarray  # int8 codes into MULTIDIMS
    fidelity: np.ndarray  # int8 codes into FIDELITIES


@dataclass(frozen=True, eq=False)
class StepColumns:
    """`n` concrete configurations as columns (see the module docstring).

    ``configs`` optionally holds the `SystemConfig` objects the columns came from (``from_configs``); the batch
    simulator uses them only for points it prices one at a time (ASTRA-sim fidelity). A PSA leaves it ``None`` and
    passes ``rebuild``, a callable ``i -> SystemConfig`` for such points.
    """

    n: int
    models: tuple[Any, ...]
    model: np.ndarray  # int64 index into models
    accelerators: tuple[Any, ...]
    accelerator: np.ndarray
    trainings: tuple[Any, ...]  # TrainingConfig objects
    training: np.ndarray
    tp: np.ndarray  # int64
    sp: np.ndarray
    dp: np.ndarray
    pp: np.ndarray
    zero: np.ndarray
    sequence_parallel: np.ndarray  # bool
    rank_orders: tuple[tuple[str, ...], ...]
    rank_order: np.ndarray  # int64 index into rank_orders
    network: NetworkColumns
    collective: CollectiveColumns
    configs: tuple[Any, ...] | None = None
    rebuild: Any = None
    ep: np.ndarray | None = None  # int64; None = 1 everywhere (MoE expert parallelism)
    etp: np.ndarray | None = None  # int64, resolved (ParallelConfig.expert_tp); None = tp
    dispatcher: np.ndarray | None = None  # int8 codes into DISPATCHERS; None = all-to-all
    cp_algorithm: np.ndarray | None = None  # int8 codes into CP_ALGORITHMS; None = p2p everywhere
    shard_group: np.ndarray | None = None  # int64 HSDP shard group, 0 = the whole DP x SP group; None = 0 everywhere

    def config(self, i: int) -> Any:
        """The `SystemConfig` of row `i` (from ``configs`` or ``rebuild``)."""
        if self.configs is not None:
            return self.configs[i]
        if self.rebuild is None:
            raise ValueError("these columns carry neither configs nor a rebuild function")
        return self.rebuild(i)

    @classmethod
    def from_configs(cls, configs: Sequence[Any]) -> StepColumns:
        """Columns of `configs` (checked `SystemConfig` objects with the same number of network dimensions)."""
        configs = tuple(configs)
        n = len(configs)
        models, model = _index([c.model for c in configs])
        accs, acc = _index([c.accelerator for c in configs])
        trs, tr = _index([c.training for c in configs])
        orders, order = _index([c.parallel.rank_order for c in configs])
        par = [c.parallel for c in configs]
        n_dims = {len(c.network.dims) for c in configs}
        if len(n_dims) > 1:
            raise ValueError(f"configs of one batch must have the same number of network dimensions, got {n_dims}")
        d = n_dims.pop() if n_dims else 1
        topo = np.zeros((n, d), dtype=np.int8)
        npus = np.zeros((n, d), dtype=np.int64)
        bw = np.zeros((n, d))
        lat = np.zeros((n, d))
        eff = np.zeros((n, d))
        algos = np.zeros((n, len(COLLECTIVES), d), dtype=np.int8)
        for i, c in enumerate(configs):
            topologies = tuple(x.topology for x in c.network.dims)
            for j, x in enumerate(c.network.dims):
                topo[i, j] = _TOPO_CODE[x.topology]
                npus[i, j] = x.npus
                bw[i, j] = x.link_bytes_per_s
                lat[i, j] = x.latency_s
                eff[i, j] = x.efficiency
            for k, kind in enumerate(COLLECTIVES):
                algos[i, k] = [_ALGO_CODE[a] for a in c.collective.algorithms(kind, topologies)]
        coll = [c.collective for c in configs]
        return cls(
            n=n,
            models=models, model=model, accelerators=accs, accelerator=acc, trainings=trs, training=tr,
            tp=np.array([p.tp for p in par], dtype=np.int64),
            sp=np.array([p.sp for p in par], dtype=np.int64),
            dp=np.array([p.dp for p in par], dtype=np.int64),
            pp=np.array([p.pp for p in par], dtype=np.int64),
            zero=np.array([p.zero for p in par], dtype=np.int64),
            sequence_parallel=np.array([p.sequence_parallel for p in par], dtype=bool),
            rank_orders=orders, rank_order=order,
            network=NetworkColumns(topo, npus, bw, lat, eff),
            collective=CollectiveColumns(
                algorithms=algos,
                chunks=np.array([c.chunks for c in coll], dtype=np.int64),
                scheduling=np.array([SCHEDULINGS.index(c.scheduling.value) for c in coll], dtype=np.int8),
                multidim=np.array([MULTIDIMS.index(c.multidim) for c in coll], dtype=np.int8),
                fidelity=np.array([FIDELITIES.index(c.fidelity.value) for c in coll], dtype=np.int8),
            ),
            configs=configs,
            ep=_expert_column([p.ep for p in par], n),
            etp=None if all(p.etp is None for p in par) else np.array([p.expert_tp for p in par], dtype=np.int64),
            dispatcher=None if all(p.moe_dispatcher == "alltoall" for p in par) else
            np.array([DISPATCHERS.index(p.moe_dispatcher) for p in par], dtype=np.int8),
            cp_algorithm=None if all(p.cp_algorithm == "p2p" for p in par) else
            np.array([CP_ALGORITHMS.index(p.cp_algorithm) for p in par], dtype=np.int8),
            shard_group=None if all(p.shard_group is None for p in par) else
            np.array([p.shard_group or 0 for p in par], dtype=np.int64),
        )

    def expert_columns(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(ep, etp, dispatcher) with the defaults filled in (1, tp, all-to-all)."""
        ones = np.ones(self.n, dtype=np.int64)
        return (self.ep if self.ep is not None else ones, self.etp if self.etp is not None else self.tp,
                self.dispatcher if self.dispatcher is not None else np.zeros(self.n, dtype=np.int8))

    def cp_codes(self) -> np.ndarray:
        """The context-parallel algorithm codes with the default (p2p) filled in."""
        return self.cp_algorithm if self.cp_algorithm is not None else np.zeros(self.n, dtype=np.int8)

    def same_as(self, other: StepColumns) -> list[str]:
        """The fields in which two column sets describe different configurations (empty when they agree).

        Object sections compare by value row by row (their distinct-object tuples may be ordered differently)."""
        diffs: list[str] = []
        if self.n != other.n:
            return ["n"]
        for name, objs in (("model", "models"), ("accelerator", "accelerators"), ("training", "trainings"),
                           ("rank_order", "rank_orders")):
            a = [getattr(self, objs)[i] for i in getattr(self, name)]
            b = [getattr(other, objs)[i] for i in getattr(other, name)]
            if a != b:
                diffs.append(name)
        for name in ("tp", "sp", "dp", "pp", "zero", "sequence_parallel"):
            if not np.array_equal(getattr(self, name), getattr(other, name)):
                diffs.append(name)
        for name, u, v in zip(("ep", "etp", "dispatcher"), self.expert_columns(), other.expert_columns(),
                              strict=True):
            if not np.array_equal(u, v):
                diffs.append(name)
        if not np.array_equal(self.cp_codes(), other.cp_codes()):
            diffs.append("cp_algorithm")
        zeros = np.zeros(self.n, dtype=np.int64)
        sa = self.shard_group if self.shard_group is not None else zeros
        sb = other.shard_group if other.shard_group is not None else zeros
        if not np.array_equal(sa, sb):
            diffs.append("shard_group")
        for sec in ("network", "collective"):
            x, y = getattr(self, sec), getattr(other, sec)
            for f in fields(x):
                u, v = getattr(x, f.name), getattr(y, f.name)
                if u.shape != v.shape or not np.allclose(u, v, rtol=1e-12, atol=0.0):
                    diffs.append(f"{sec}.{f.name}")
        return diffs


def _index(objs: Sequence[Any]) -> tuple[tuple[Any, ...], np.ndarray]:
    """(distinct objects in first-seen order, index of each object)."""
    seen: dict[Any, int] = {}
    idx = np.empty(len(objs), dtype=np.int64)
    for i, o in enumerate(objs):
        j = seen.get(o)
        if j is None:
            j = seen[o] = len(seen)
        idx[i] = j
    return tuple(seen), idx


__all__ = [
    "ALGORITHMS", "COLLECTIVES", "CP_ALGORITHMS", "DISPATCHERS", "FIDELITIES", "MULTIDIMS", "SCHEDULINGS", "TOPOLOGIES",
    "CollectiveColumns",
    "NetworkColumns", "StepColumns",
]
