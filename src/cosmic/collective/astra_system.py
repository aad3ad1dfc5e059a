"""Read ASTRA-sim's system file (``system.json``), checked the way ASTRA-sim checks it: some keys when it loads the
file, the others only when it runs the collective that needs them.

**At load** (``Sys::initialize_sys`` and ``CollectiveImplLookup::setup_collective_impl_from_config`` in
astra-sim ``system/Sys.cc`` and ``system/astraccl/CollectiveImplLookup.cc``; ``GeneralComplexTopology``'s
constructor, run for all four collectives when the system starts) ASTRA-sim stops on: a ``scheduling-policy`` other
than LIFO, FIFO or EXPLICIT; a ``collective-optimization`` other than baseline or localBWAware; an unknown name in
any of the four ``*-implementation`` lists (even one no collective of the run uses); an ``*-implementation`` list
longer than the network's dimensions (an ``assert``); a ``*-implementation-custom`` list that does not hold exactly
one Chakra ET file. :func:`system_from_dict` and :meth:`AstraSystem.check` refuse exactly these.

**When a collective runs** (``Sys::generate_all_reduce`` and its siblings, ``generate_collective``,
``generate_collective_phase``, the algorithm constructors) ASTRA-sim only looks at that collective's own list, and
only at the dimensions the collective crosses: a missing list ("No collective implementation found"),
``halvingDoubling`` for all-to-all (``HalvingDoubling``'s constructor exits), ``halvingDoubling`` on a dimension that
is not a power of two (never finishes), ``doubleBinaryTree`` there (``BinaryTree`` leaves NPUs out: crash), a missing
``preferred-dataset-splits`` (``determine_chunk_size`` divides by zero) and a missing ``local-mem-bw`` (0: every
local reduction divides by zero). A localBWAware all-reduce runs its reduce-scatter and all-gather phases with the
all-reduce's own list, so the all-gather and reduce-scatter lists are read only when those collectives run.
:meth:`AstraSystem.implementation` refuses these for the collective being run, and nothing else.

Custom collectives (``*-implementation-custom``, ``per-node-custom-implementation``: MSCCL-style algorithms given as
Chakra ET files) are read but not priced: running a collective that would use one is refused in one line.

Example:
    >>> s = system_from_dict({"preferred-dataset-splits": 4, "local-mem-bw": 1600,
    ...                       "all-reduce-implementation": ["ring", "direct"],
    ...                       "all-to-all-implementation": ["halvingDoubling", "ring"]}, file="sys.json")
    >>> [a.value for a in s.implementation(Collective.ALL_REDUCE, (4, 8))]
    ['ring', 'direct']
    >>> s.implementation(Collective.ALL_TO_ALL, (4, 8))
    Traceback (most recent call last):
    ...
    cosmic.errors.ConfigError: sys.json: all-to-all-implementation[0]: ASTRA-sim rejects halvingDoubling for all-to-all when an all-to-all runs; use direct or ring
"""  # noqa: E501

from __future__ import annotations

import contextlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cosmic.collective.algorithms import Algorithm, Collective
from cosmic.collective.model import MultiDim
from cosmic.errors import ConfigError
from cosmic.network.topology import Topology

IMPL_KEYS: dict[Collective, str] = {
    Collective.ALL_REDUCE: "all-reduce-implementation",
    Collective.ALL_GATHER: "all-gather-implementation",
    Collective.REDUCE_SCATTER: "reduce-scatter-implementation",
    Collective.ALL_TO_ALL: "all-to-all-implementation",
}
PER_NODE_CUSTOM_KEY = "per-node-custom-implementation"
ASTRA_NAMES: dict[Algorithm, str] = {
    Algorithm.RING: "ring",
    Algorithm.DIRECT: "direct",
    Algorithm.HALVING_DOUBLING: "halvingDoubling",
    Algorithm.DOUBLE_BINARY_TREE: "doubleBinaryTree",
}
_IMPL_NAMES = {
    "ring": Algorithm.RING,
    "oneRing": Algorithm.RING,
    "direct": Algorithm.DIRECT,
    "oneDirect": Algorithm.DIRECT,
    "halvingDoubling": Algorithm.HALVING_DOUBLING,
    "oneHalvingDoubling": Algorithm.HALVING_DOUBLING,
    "doubleBinaryTree": Algorithm.DOUBLE_BINARY_TREE,
}
NATIVE = "ring, direct, halvingDoubling or doubleBinaryTree per dimension"
_MULTIDIM = {"baseline": MultiDim.BASELINE, "localBWAware": MultiDim.LOCAL_BW_AWARE}
ASTRA_MULTIDIM = {MultiDim.BASELINE: "baseline", MultiDim.LOCAL_BW_AWARE: "localBWAware"}
# keys ASTRA-sim 2.x does not read (older versions did): accepted and reported, as they change nothing
_IGNORED = ("inter-dimension-scheduling", "intra-dimension-scheduling")


@dataclass(frozen=True, slots=True)
class Impl:
    """One entry of an ``*-implementation`` list: the algorithm, whether it is a ``one*`` flavour and a window."""

    algorithm: Algorithm
    spelling: str
    window: int | None = None  # directN


@dataclass(frozen=True, slots=True)
class AstraSystem:
    """The parts of an ASTRA-sim system file that set a collective's timing.

    ``implementations`` holds only the lists the file gives; ``custom`` maps a custom-collective key to its Chakra ET
    path; ``splits`` and ``local_mem_bw_gbps`` are None when the file leaves them out (ASTRA-sim then fails only when
    a collective needs them).
    """

    scheduling: str
    endpoint_delay_ns: float
    active_chunks: int
    splits: int | None
    multidim: MultiDim
    local_mem_bw_gbps: float | None
    implementations: dict[Collective, tuple[Impl, ...]]
    file: str = "system.json"
    custom: dict[str, str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    def algorithms(self, kind: Collective) -> tuple[Algorithm, ...]:
        """The file's list for `kind` as given (no checks; empty when the file has none)."""
        return tuple(i.algorithm for i in self.implementations.get(Collective(kind), ()))

    def check(self, dim_sizes: tuple[int, ...]) -> None:
        """Refuse what ASTRA-sim refuses when it starts on a network with these dimension sizes: any list longer than
        the dimensions (``GeneralComplexTopology`` asserts ``collective_impl.size() <= dimension_size.size()``)."""
        n = len(dim_sizes)
        for kind, impls in self.implementations.items():
            if len(impls) > n:
                raise ConfigError(
                    f"has {len(impls)} entries but the network has {n} dimensions (ASTRA-sim asserts when it "
                    f"starts); give one per dimension", file=self.file, key=IMPL_KEYS[kind],
                )

    def implementation(self, kind: Collective, dim_sizes: tuple[int, ...]) -> tuple[Algorithm, ...]:
        """The per-dimension algorithms ASTRA-sim runs `kind` with on these dimensions, refusing in one line what it
        fails on when that collective runs (and what cosmic cannot price)."""
        kind = Collective(kind)
        key = IMPL_KEYS[kind]
        if PER_NODE_CUSTOM_KEY in self.custom:
            raise _custom_error(self.file, PER_NODE_CUSTOM_KEY)
        if f"{key}-custom" in self.custom:
            raise _custom_error(self.file, f"{key}-custom")
        what = kind.value.replace("_", "-")
        if kind not in self.implementations:
            raise ConfigError(
                f"required to run an {what}, and missing (ASTRA-sim stops: no collective implementation found); "
                f"give {NATIVE}", file=self.file, key=key,
            )
        impls = self.implementations[kind]
        n = len(dim_sizes)
        if len(impls) < n:
            raise ConfigError(
                f"has {len(impls)} entries but the network has {n} dimensions (ASTRA-sim asserts); "
                f"give one per dimension", file=self.file, key=key,
            )
        for i, (impl, p) in enumerate(zip(impls, dim_sizes, strict=False)):
            if impl.spelling == "oneRing":
                break  # one ring over every NPU; GeneralComplexTopology drops the entries after it
            check_impl(kind, impl.algorithm, p, file=self.file, key=f"{key}[{i}]")
            if impl.window is not None and p > 1 and impl.window < p - 1:
                raise ConfigError(
                    f"{impl.spelling}: a window of {impl.window} below the dimension's {p - 1} peers is not "
                    f"modelled by cosmic; use direct", file=self.file, key=f"{key}[{i}]",
                )
        if self.splits is None:
            raise ConfigError(f"required to run an {what}, and missing (ASTRA-sim then divides by zero)",
                              file=self.file, key="preferred-dataset-splits")
        reduces = kind in (Collective.ALL_REDUCE, Collective.REDUCE_SCATTER) or any(
            i.algorithm is Algorithm.DOUBLE_BINARY_TREE for i, p in zip(impls, dim_sizes, strict=False) if p > 1)
        if reduces and self.local_mem_bw_gbps is None:
            raise ConfigError(
                f"required to run an {what}, and missing (ASTRA-sim's default 0 divides every local reduction by "
                f"zero); give the local memory bandwidth in GB/s", file=self.file, key="local-mem-bw",
            )
        return tuple(i.algorithm for i in impls[:n])

    def collective_dict(self, n_dims: int | None = None) -> dict[str, Any]:
        """Keys of a cosmic ``collective:`` section (lists cut to `n_dims`) for a whole training step, which runs
        every collective: anything a collective would refuse is refused here."""
        for k in (PER_NODE_CUSTOM_KEY, *(f"{key}-custom" for key in IMPL_KEYS.values())):
            if k in self.custom:
                raise _custom_error(self.file, k)
        if Collective.ALL_REDUCE not in self.implementations:
            raise ConfigError(f"required for a training step, and missing; give {NATIVE}", file=self.file,
                              key=IMPL_KEYS[Collective.ALL_REDUCE])
        for key, value in (("preferred-dataset-splits", self.splits), ("local-mem-bw", self.local_mem_bw_gbps)):
            if value is None:
                raise ConfigError("required for a training step, and missing", file=self.file, key=key)
        if self.scheduling not in ("LIFO", "FIFO"):
            raise ConfigError(f"{self.scheduling} (priorities from the workload's ET nodes) is not modelled by "
                              f"cosmic simulate; use LIFO or FIFO", file=self.file, key="scheduling-policy")
        out: dict[str, Any] = {}
        for kind, impls in self.implementations.items():
            algos = [i.algorithm.value for i in impls]
            out[kind.value] = algos[:n_dims] if n_dims is not None else algos
        out.update(
            chunks=self.splits,
            scheduling=self.scheduling,
            multidim=self.multidim.value,
            active_chunks=self.active_chunks,
            endpoint_delay_ns=self.endpoint_delay_ns,
            local_mem_bw_gbps=self.local_mem_bw_gbps,
        )
        return out


def _custom_error(file: str, key: str) -> ConfigError:
    return ConfigError(
        "custom collectives defined by Chakra ET files (MSCCL-style) are not supported by cosmic; give "
        f"{key.removesuffix('-custom') if key.endswith('-custom') else 'the *-implementation lists'} with {NATIVE}",
        file=file, key=key,
    )


def check_impl(kind: Collective, algo: Algorithm, npus: int, *, file: str | None, key: str) -> None:
    """Refuse one algorithm on one dimension where ASTRA-sim rejects, hangs or crashes when it runs `kind` there."""
    if npus <= 1:
        return
    if algo is Algorithm.HALVING_DOUBLING and kind is Collective.ALL_TO_ALL:
        raise ConfigError("ASTRA-sim rejects halvingDoubling for all-to-all when an all-to-all runs; use direct or "
                          "ring", file=file, key=key)
    if algo in (Algorithm.HALVING_DOUBLING, Algorithm.DOUBLE_BINARY_TREE) and npus & (npus - 1):
        what = "never finishes" if algo is Algorithm.HALVING_DOUBLING else "crashes"
        raise ConfigError(
            f"{ASTRA_NAMES[algo]} on a dimension of {npus} NPUs (not a power of two) {what} in ASTRA-sim; "
            f"use ring or direct", file=file, key=key,
        )


def parse_impl(value: Any, *, file: str, key: str) -> Impl:
    """One ``*-implementation`` entry (``ring``, ``oneRing``, ``direct``, ``direct8``, ``halvingDoubling``...), spelt
    as ASTRA-sim's ``generate_collective_impl_from_input`` accepts it."""
    if not isinstance(value, str):
        raise ConfigError(f"must be a name, got {value!r}", file=file, key=key)
    if value in _IMPL_NAMES:
        return Impl(_IMPL_NAMES[value], value)
    m = re.fullmatch(r"(?:direct|oneDirect)(\d+)", value)
    if m:
        return Impl(Algorithm.DIRECT, value, int(m.group(1)))
    known = ", ".join([*_IMPL_NAMES, "directN", "oneDirectN"])
    raise ConfigError(f"unknown implementation {value!r} (ASTRA-sim stops when it loads the file); known: {known}",
                      file=file, key=key)


def _get_number(data: dict[str, Any], key: str, file: str, default: float | None, *, integer: bool,
                low: float) -> Any:
    if key not in data:
        return default
    v = data[key]
    if isinstance(v, str):
        with contextlib.suppress(ValueError):
            v = int(v) if integer else float(v)
    ok = isinstance(v, int) if integer else isinstance(v, (int, float))
    if isinstance(v, bool) or not ok:
        raise ConfigError(f"must be {'an integer' if integer else 'a number'}, got {v!r}", file=file, key=key)
    if v < low:
        raise ConfigError(f"must be at least {low:g}, got {v!r}", file=file, key=key)
    return v


def _custom_keys(data: dict[str, Any], file: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for key in IMPL_KEYS.values():
        ck = f"{key}-custom"
        if ck in data:
            v = data[ck]
            if not (isinstance(v, list) and len(v) == 1 and isinstance(v[0], str)):
                raise ConfigError("must list exactly one Chakra ET file (ASTRA-sim stops when it loads the file)",
                                  file=file, key=ck)
            out[ck] = v[0]
    if PER_NODE_CUSTOM_KEY in data:
        out[PER_NODE_CUSTOM_KEY] = str(data[PER_NODE_CUSTOM_KEY])
    return out


def system_from_dict(data: Any, *, file: str = "system.json") -> AstraSystem:
    """An :class:`AstraSystem` from the contents of an ASTRA-sim system file (checks made at ASTRA-sim's load)."""
    if not isinstance(data, dict):
        raise ConfigError("an ASTRA-sim system file must be a JSON object", file=file)
    policy = str(data.get("scheduling-policy", "LIFO")).upper()
    if policy not in ("LIFO", "FIFO", "EXPLICIT"):
        raise ConfigError(f"must be LIFO, FIFO or EXPLICIT, got {data['scheduling-policy']!r}", file=file,
                          key="scheduling-policy")
    opt = data.get("collective-optimization", "baseline")
    if opt not in _MULTIDIM:
        raise ConfigError(f"must be baseline or localBWAware, got {opt!r}", file=file, key="collective-optimization")
    if data.get("model-shared-bus", 0) not in (0, False):
        raise ConfigError("1 (the LogGP shared-bus model) is not modelled by cosmic; use 0", file=file,
                          key="model-shared-bus")
    impls: dict[Collective, tuple[Impl, ...]] = {}
    for kind, key in IMPL_KEYS.items():
        if key not in data:
            continue
        v = data[key]
        if isinstance(v, str):
            v = [v]
        if not isinstance(v, list):
            raise ConfigError("must be a list with one implementation per dimension", file=file, key=key)
        impls[kind] = tuple(parse_impl(x, file=file, key=f"{key}[{i}]") for i, x in enumerate(v))
    notes = tuple(f"{k} is not read by ASTRA-sim 2.x and is ignored" for k in _IGNORED if k in data)
    return AstraSystem(
        scheduling=policy,
        endpoint_delay_ns=_get_number(data, "endpoint-delay", file, 10, integer=False, low=0),
        active_chunks=_get_number(data, "active-chunks-per-dimension", file, 1, integer=True, low=1),
        splits=_get_number(data, "preferred-dataset-splits", file, None, integer=True, low=1),
        multidim=_MULTIDIM[opt],
        local_mem_bw_gbps=_get_number(data, "local-mem-bw", file, None, integer=False, low=1e-9),
        implementations=impls,
        file=file,
        custom=_custom_keys(data, file),
        notes=notes,
    )


def read_system(path: str | Path) -> AstraSystem:
    """Read an ASTRA-sim ``system.json``."""
    from cosmic.yamlio import read_text

    p = Path(path)
    text = read_text(p, "system file")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"line {exc.lineno}: {exc.msg}", file=str(p)) from None
    except RecursionError:
        raise ConfigError("JSON nested too deeply", file=str(p)) from None
    return system_from_dict(data, file=str(p))


def system_to_dict(collective: Any, topologies: tuple[Topology, ...]) -> dict[str, Any]:
    """The contents of an ASTRA-sim ``system.json`` for a cosmic collective stack on these dimensions."""
    out: dict[str, Any] = {
        "scheduling-policy": collective.scheduling.value
        if hasattr(collective.scheduling, "value") else str(collective.scheduling),
        "endpoint-delay": _plain(collective.endpoint_delay_ns),
        "active-chunks-per-dimension": collective.active_chunks,
        "preferred-dataset-splits": collective.chunks,
        "collective-optimization": ASTRA_MULTIDIM[MultiDim(collective.multidim)],
        "local-mem-bw": _plain(collective.local_mem_bw_gbps),
        "boost-mode": 0,
    }
    for kind, key in IMPL_KEYS.items():
        out[key] = [ASTRA_NAMES[a] for a in astra_algorithms(collective, kind, topologies)]
    return out


def astra_algorithms(collective: Any, kind: Collective, topologies: tuple[Topology, ...]) -> tuple[Algorithm, ...]:
    """Per-dimension algorithms of `kind` as ASTRA-sim would be told them.

    Like cosmic's own resolution (all-gather, reduce-scatter and all-to-all default to the all-reduce choice), except
    that an all-to-all that only inherits halving_doubling gets direct, which ASTRA-sim accepts.
    """
    kind = Collective(kind)
    algos = collective.algorithms(kind, topologies)
    if kind is Collective.ALL_TO_ALL and getattr(collective, "all_to_all", None) is None:
        algos = tuple(Algorithm.DIRECT if a is Algorithm.HALVING_DOUBLING else a for a in algos)
    return algos


def _plain(x: float) -> float | int:
    return int(x) if float(x).is_integer() else float(x)


__all__ = [
    "ASTRA_NAMES",
    "IMPL_KEYS",
    "AstraSystem",
    "Impl",
    "astra_algorithms",
    "check_impl",
    "parse_impl",
    "read_system",
    "system_from_dict",
    "system_to_dict",
]
