"""Read and write ASTRA-sim's analytical network file (``network.yml``) and system file (``system.json``).

Units are converted here, once: ASTRA-sim's ``bandwidth`` is GB/s with GB = 2^30 bytes (kept as ``link_gibps``),
``latency`` and ``endpoint-delay`` are ns, ``local-mem-bw`` is GB/s with GB = 10^9 bytes.

The system file is read by :mod:`cosmic.collective.astra_system` (re-exported here), which refuses what ASTRA-sim
refuses when it loads the file, and leaves what ASTRA-sim only checks when a collective runs to the run.

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
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from cosmic.collective.algorithms import Collective
from cosmic.collective.astra_system import (
    ASTRA_NAMES,
    IMPL_KEYS,
    AstraSystem,
    Impl,
    astra_algorithms,
    check_impl,
    parse_impl,
    read_system,
    system_from_dict,
    system_to_dict,
)
from cosmic.errors import ConfigError, extra_keys
from cosmic.network.topology import Network, NetworkDim, Topology
from cosmic.units import GIB

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
        # a training step runs all-reduces, all-gathers and reduce-scatters; all-to-alls only for MoE layers (an
        # all-to-all list ASTRA-sim could not run is left to the astra-sim fidelity's own check of the config)
        for kind in system.implementations:
            if kind is not Collective.ALL_TO_ALL:
                system.implementation(kind, dim_sizes)
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
    "ASTRA_NAMES",
    "IMPL_KEYS",
    "AstraSystem",
    "Impl",
    "astra_algorithms",
    "base_dir",
    "check_impl",
    "export_astra",
    "network_from_dict",
    "network_to_dict",
    "network_yaml",
    "parse_impl",
    "read_network",
    "read_system",
    "system_from_dict",
    "system_to_dict",
]
