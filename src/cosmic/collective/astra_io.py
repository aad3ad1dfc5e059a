"""Read and write ASTRA-sim's analytical network file (``network.yml``) and system file (``system.json``).

Units are converted here, once: ASTRA-sim's ``bandwidth`` is GB/s with GB = 2^30 bytes (kept as ``link_gibps``),
``latency`` and ``endpoint-delay`` are ns, ``local-mem-bw`` is GB/s with GB = 10^9 bytes.

Combinations that crash or hang the real tool are refused with a one-line :class:`~cosmic.errors.ConfigError` that
names the file and the key: a missing or zero ``preferred-dataset-splits``, an implementation list shorter than the
network's dimensions, ``halvingDoubling`` or ``doubleBinaryTree`` on a dimension whose size is not a power of two,
``halvingDoubling`` for all-to-all.

Example:
    >>> import pathlib, tempfile
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "network.yml").write_text("topology: [Ring, Switch]\\nnpus_count: [4, 8]\\n"
    ...                                    "bandwidth: [50, 25]\\nlatency: [500, 700]\\n")
    >>> net = read_network(d / "network.yml")
    >>> net.n_npus, net.dims[1].link_gibps
    (32, 25.0)
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from cosmic.collective.algorithms import Algorithm, Collective
from cosmic.collective.model import MultiDim
from cosmic.errors import ConfigError, extra_keys
from cosmic.network.topology import Network, NetworkDim, Topology
from cosmic.units import GIB

IMPL_KEYS: dict[Collective, str] = {
    Collective.ALL_REDUCE: "all-reduce-implementation",
    Collective.ALL_GATHER: "all-gather-implementation",
    Collective.REDUCE_SCATTER: "reduce-scatter-implementation",
    Collective.ALL_TO_ALL: "all-to-all-implementation",
}
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
_MULTIDIM = {"baseline": MultiDim.BASELINE, "localBWAware": MultiDim.LOCAL_BW_AWARE}
_ASTRA_MULTIDIM = {MultiDim.BASELINE: "baseline", MultiDim.LOCAL_BW_AWARE: "localBWAware"}

_BASE_DIR: contextvars.ContextVar[Path | None] = contextvars.ContextVar("cosmic_astra_base_dir", default=None)


@contextlib.contextmanager
def base_dir(folder: str | Path | None) -> Iterator[None]:
    """Resolve relative ``astra_sim:`` paths in a config against `folder` (the config file's folder)."""
    token = _BASE_DIR.set(Path(folder) if folder is not None else None)
    try:
        yield
    finally:
        _BASE_DIR.reset(token)


def resolve(path: str | Path) -> Path:
    p = Path(path).expanduser()
    base = _BASE_DIR.get()
    if not p.is_absolute() and base is not None:
        p = base / p
    return p


# ---- network.yml ---------------------------------------------------------------------------------------------------


def _number_list(data: dict[str, Any], key: str, file: str, n: int | None, *, integer: bool) -> list[Any]:
    if key not in data:
        raise ConfigError("required key is missing", file=file, key=key)
    v = data[key]
    if not isinstance(v, list):
        v = [v]
    if not v:
        raise ConfigError("needs one entry per dimension", file=file, key=key)
    if n is not None and len(v) != n:
        raise ConfigError(f"has {len(v)} entries but topology has {n}; give one per dimension", file=file, key=key)
    out = []
    for i, x in enumerate(v):
        ok = isinstance(x, int) if integer else isinstance(x, (int, float))
        if isinstance(x, bool) or not ok:
            kind = "an integer" if integer else "a number"
            raise ConfigError(f"must be {kind}, got {x!r}", file=file, key=f"{key}[{i}]")
        out.append(x)
    return out


def network_from_dict(data: Any, *, file: str = "network.yml") -> Network:
    """A cosmic :class:`Network` from the contents of an ASTRA-sim analytical network file."""
    if not isinstance(data, dict):
        raise ConfigError("an ASTRA-sim network file must be a mapping", file=file)
    topo = data.get("topology")
    if topo is None:
        raise ConfigError("required key is missing", file=file, key="topology")
    if not isinstance(topo, list):
        topo = [topo]
    n = len(topo)
    npus = _number_list(data, "npus_count", file, n, integer=True)
    bw = _number_list(data, "bandwidth", file, n, integer=False)
    lat = _number_list(data, "latency", file, n, integer=False)
    dims = []
    for i in range(n):
        try:
            t = Topology(str(topo[i]))
        except ValueError:
            raise ConfigError(
                f"unknown topology {topo[i]!r}; the analytical backend knows Ring, FullyConnected, Switch",
                file=file, key=f"topology[{i}]",
            ) from None
        try:
            dims.append(NetworkDim(topology=t, npus=npus[i], link_gibps=bw[i], latency_ns=lat[i]))
        except ValidationError as exc:
            err = exc.errors()[0]
            field = {"npus": "npus_count", "link_gibps": "bandwidth", "latency_ns": "latency"}.get(
                str(err["loc"][0]) if err["loc"] else "", "topology"
            )
            raise ConfigError(f"{err['msg']} (got {err.get('input')!r})", file=file, key=f"{field}[{i}]") from None
    return Network(dims=dims)


def read_network(path: str | Path) -> Network:
    """Read an ASTRA-sim analytical ``network.yml``."""
    from cosmic.yamlio import read_yaml

    p = Path(path)
    data = read_yaml(p, "network file")
    return network_from_dict(data, file=str(p))


def network_to_dict(network: Network) -> dict[str, list[Any]]:
    """The contents of an ASTRA-sim ``network.yml`` for `network` (bandwidth in GB/s with GB = 2^30).

    Fabric efficiency has no ASTRA-sim counterpart and is dropped; the raw link bandwidth is written.
    """
    bw = []
    for d in network.dims:
        bw.append(d.link_gibps if d.link_gibps is not None else d.link_bytes_per_s / GIB)
    return {
        "topology": [d.topology.value for d in network.dims],
        "npus_count": [d.npus for d in network.dims],
        "bandwidth": bw,
        "latency": [d.latency_ns for d in network.dims],
    }


def network_yaml(network: Network) -> str:
    """ASTRA-sim's ``network.yml`` text (flow lists, one entry per dimension)."""
    d = network_to_dict(network)

    def row(values: list[Any]) -> str:
        return "[ " + ", ".join(repr(v) if isinstance(v, float) else str(v) for v in values) + " ]"

    return (
        f"topology: {row(d['topology'])}\n"
        f"npus_count: {row(d['npus_count'])}  # total {network.n_npus} NPUs\n"
        f"bandwidth: {row(d['bandwidth'])}  # GB/s, GB = 2^30 B\n"
        f"latency: {row(d['latency'])}  # ns\n"
    )


# ---- system.json ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Impl:
    """One entry of an ``*-implementation`` list: the algorithm, whether it is a ``one*`` flavour and a window."""

    algorithm: Algorithm
    spelling: str
    window: int | None = None  # directN


@dataclass(frozen=True, slots=True)
class AstraSystem:
    """The parts of an ASTRA-sim system file that set a collective's timing."""

    scheduling: str
    endpoint_delay_ns: float
    active_chunks: int
    splits: int
    multidim: MultiDim
    local_mem_bw_gbps: float
    implementations: dict[Collective, tuple[Impl, ...]]
    file: str = "system.json"

    def algorithms(self, kind: Collective) -> tuple[Algorithm, ...]:
        return tuple(i.algorithm for i in self.implementations[Collective(kind)])

    def check(self, dim_sizes: tuple[int, ...]) -> None:
        """Refuse what ASTRA-sim cannot run on a network with these dimension sizes."""
        n = len(dim_sizes)
        for kind, impls in self.implementations.items():
            key = IMPL_KEYS[kind]
            if len(impls) < n:
                raise ConfigError(
                    f"has {len(impls)} entries but the network has {n} dimensions (ASTRA-sim asserts); "
                    f"give one per dimension",
                    file=self.file, key=key,
                )
            for i, (impl, p) in enumerate(zip(impls, dim_sizes, strict=False)):
                check_impl(kind, impl.algorithm, p, file=self.file, key=f"{key}[{i}]")
                if impl.window is not None and p > 1 and impl.window < p - 1:
                    raise ConfigError(
                        f"{impl.spelling}: a window of {impl.window} below the dimension's {p - 1} peers is not "
                        f"modelled by cosmic; use direct", file=self.file, key=f"{key}[{i}]",
                    )

    def collective_dict(self, n_dims: int | None = None) -> dict[str, Any]:
        """Keys of a cosmic ``collective:`` section (lists cut to `n_dims`; ASTRA-sim ignores extra entries)."""
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


def check_impl(kind: Collective, algo: Algorithm, npus: int, *, file: str | None, key: str) -> None:
    """Refuse one algorithm on one dimension where ASTRA-sim rejects, hangs or crashes."""
    if npus <= 1:
        return
    if algo is Algorithm.HALVING_DOUBLING and kind is Collective.ALL_TO_ALL:
        raise ConfigError("ASTRA-sim rejects halvingDoubling for all-to-all; use direct or ring", file=file, key=key)
    if algo in (Algorithm.HALVING_DOUBLING, Algorithm.DOUBLE_BINARY_TREE) and npus & (npus - 1):
        what = "never finishes" if algo is Algorithm.HALVING_DOUBLING else "crashes"
        raise ConfigError(
            f"{ASTRA_NAMES[algo]} on a dimension of {npus} NPUs (not a power of two) {what} in ASTRA-sim; "
            f"use ring or direct", file=file, key=key,
        )


def parse_impl(value: Any, *, file: str, key: str) -> Impl:
    """One ``*-implementation`` entry (``ring``, ``oneRing``, ``direct``, ``direct8``, ``halvingDoubling``...)."""
    if not isinstance(value, str):
        raise ConfigError(f"must be a name, got {value!r}", file=file, key=key)
    if value in _IMPL_NAMES:
        return Impl(_IMPL_NAMES[value], value)
    m = re.fullmatch(r"(one)?[dD]irect(\d+)", value)
    if m:
        return Impl(Algorithm.DIRECT, value, int(m.group(2)))
    known = ", ".join([*_IMPL_NAMES, "directN"])
    raise ConfigError(f"unknown implementation {value!r}; known: {known}", file=file, key=key)


def _get_number(data: dict[str, Any], key: str, file: str, default: float | None, *, integer: bool, low: float,
                why_missing: str = "") -> Any:
    if key not in data:
        if default is None:
            raise ConfigError(f"required key is missing{why_missing}", file=file, key=key)
        return default
    v = data[key]
    if isinstance(v, str):
        with contextlib.suppress(ValueError):
            v = int(v) if integer else float(v)
    ok = isinstance(v, int) if integer else isinstance(v, (int, float))
    if isinstance(v, bool) or not ok:
        raise ConfigError(f"must be {'an integer' if integer else 'a number'}, got {v!r}", file=file, key=key)
    if v < low:
        raise ConfigError(f"must be at least {low:g}, got {v!r}{why_missing}", file=file, key=key)
    return v


def system_from_dict(data: Any, *, file: str = "system.json") -> AstraSystem:
    """An :class:`AstraSystem` from the contents of an ASTRA-sim system file."""
    if not isinstance(data, dict):
        raise ConfigError("an ASTRA-sim system file must be a JSON object", file=file)
    policy = str(data.get("scheduling-policy", "LIFO")).upper()
    if policy not in ("LIFO", "FIFO"):
        raise ConfigError(f"must be LIFO or FIFO, got {data['scheduling-policy']!r}", file=file,
                          key="scheduling-policy")
    opt = data.get("collective-optimization", "baseline")
    if opt not in _MULTIDIM:
        raise ConfigError(f"must be baseline or localBWAware, got {opt!r}", file=file, key="collective-optimization")
    inter = data.get("inter-dimension-scheduling", "baseline")
    if str(inter).lower() not in ("baseline", "ascending"):
        raise ConfigError(f"{inter!r} is not modelled by cosmic; use baseline", file=file,
                          key="inter-dimension-scheduling")
    intra = data.get("intra-dimension-scheduling", "FIFO")
    if str(intra).upper() != "FIFO":
        raise ConfigError(f"{intra!r} is not modelled by cosmic; use FIFO", file=file, key="intra-dimension-scheduling")
    splits = _get_number(data, "preferred-dataset-splits", file, None, integer=True, low=1,
                         why_missing=" (ASTRA-sim then divides by zero)")
    impls: dict[Collective, tuple[Impl, ...]] = {}
    for kind, key in IMPL_KEYS.items():
        if key not in data:
            raise ConfigError("required key is missing (one entry per dimension)", file=file, key=key)
        v = data[key]
        if isinstance(v, str):
            v = [v]
        if not isinstance(v, list) or not v:
            raise ConfigError("must be a list with one implementation per dimension", file=file, key=key)
        impls[kind] = tuple(parse_impl(x, file=file, key=f"{key}[{i}]") for i, x in enumerate(v))
        for i, impl in enumerate(impls[kind]):
            if impl.algorithm is Algorithm.HALVING_DOUBLING and kind is Collective.ALL_TO_ALL:
                check_impl(kind, impl.algorithm, 2, file=file, key=f"{key}[{i}]")
    return AstraSystem(
        scheduling=policy,
        endpoint_delay_ns=_get_number(data, "endpoint-delay", file, 10, integer=False, low=0),
        active_chunks=_get_number(data, "active-chunks-per-dimension", file, 1, integer=True, low=1),
        splits=splits,
        multidim=_MULTIDIM[opt],
        local_mem_bw_gbps=_get_number(data, "local-mem-bw", file, 1600, integer=False, low=1e-9),
        implementations=impls,
        file=file,
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
        "collective-optimization": _ASTRA_MULTIDIM[MultiDim(collective.multidim)],
        "local-mem-bw": _plain(collective.local_mem_bw_gbps),
        "boost-mode": 0,
        "intra-dimension-scheduling": "FIFO",
        "inter-dimension-scheduling": "baseline",
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


def export_astra(network: Network, collective: Any, folder: str | Path, *, stem: str = "") -> tuple[Path, Path]:
    """Write ``network.yml`` and ``system.json`` for a cosmic network and collective stack; returns both paths."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    net_path = out / f"{stem}network.yml"
    sys_path = out / f"{stem}system.json"
    net_path.write_text(network_yaml(network), encoding="utf-8")
    topologies = tuple(d.topology for d in network.dims)
    sys_path.write_text(json.dumps(system_to_dict(collective, topologies), indent=2) + "\n", encoding="utf-8")
    return net_path, sys_path


# ---- hooks for `cosmic simulate` configs ----------------------------------------------------------------------------


def expand_network(value: Any) -> Any:
    """``network: {astra_sim: path/to/network.yml}`` -> the network section; anything else unchanged."""
    if not (isinstance(value, dict) and "astra_sim" in value):
        return value
    extra = extra_keys(value, {"astra_sim"})
    if extra:
        raise ConfigError(f"unknown key {extra[0]!r} next to astra_sim (a network file is taken whole)",
                          key="network")
    net = read_network(resolve(str(value["astra_sim"])))
    return net.model_dump(mode="json", exclude_none=True)


def expand_collective(value: Any, dim_sizes: tuple[int, ...] | None) -> Any:
    """``collective: {astra_sim: path/to/system.json, ...overrides}`` -> the collective section."""
    if not (isinstance(value, dict) and "astra_sim" in value):
        return value
    system = read_system(resolve(str(value["astra_sim"])))
    if dim_sizes is not None:
        system.check(dim_sizes)
    merged = system.collective_dict(len(dim_sizes) if dim_sizes is not None else None)
    merged.update({k: v for k, v in value.items() if k != "astra_sim"})
    return merged


def dim_sizes_of(network: Any) -> tuple[int, ...] | None:
    """Dimension sizes of a (possibly raw) network section, when they can be read."""
    if isinstance(network, Network):
        return tuple(d.npus for d in network.dims)
    if isinstance(network, dict) and isinstance(network.get("dims"), list):
        sizes = []
        for d in network["dims"]:
            if isinstance(d, NetworkDim):
                sizes.append(d.npus)
            elif isinstance(d, dict) and isinstance(d.get("npus"), int):
                sizes.append(d["npus"])
            else:
                return None
        return tuple(sizes)
    return None


__all__ = [
    "AstraSystem",
    "Impl",
    "astra_algorithms",
    "base_dir",
    "check_impl",
    "export_astra",
    "network_from_dict",
    "network_to_dict",
    "network_yaml",
    "read_network",
    "read_system",
    "system_from_dict",
    "system_to_dict",
]
