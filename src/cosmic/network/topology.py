"""Multi-dimensional networks: one :class:`NetworkDim` per dimension, innermost (fastest-varying NPU id) first."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from cosmic._enums import LenientStrEnum
from cosmic._xp import vmax, where
from cosmic.errors import KeyedValueError, UnknownNameError
from cosmic.units import GB, GIB


class Topology(LenientStrEnum):
    """Topology of one network dimension (ASTRA-sim's three)."""

    RING = "Ring"
    FULLY_CONNECTED = "FullyConnected"
    SWITCH = "Switch"


_RING, _FC = tuple(Topology).index(Topology.RING), tuple(Topology).index(Topology.FULLY_CONNECTED)


def links_per_npu(topology: Any, npus: Any) -> Any:
    """Links of one NPU into a dimension: a Ring 2 (1 for two NPUs), FullyConnected npus-1, a Switch 1.

    `topology` is a code into ``tuple(Topology)``; both arguments may be columns.

    Example:
        >>> [links_per_npu(tuple(Topology).index(t), 8) for t in Topology]
        [2, 7, 1]
    """
    return where(topology == _RING, where(npus > 2, 2, 1), where(topology == _FC, vmax(npus - 1, 1), 1))


class NetworkDim(BaseModel):
    """One network dimension: `npus` NPUs joined by `topology`.

    `link_gbps` is the bandwidth of one link in one direction in decimal GB/s (10^9 B/s); `link_gibps` is the
    same in ASTRA-sim's GB/s (2^30 B/s) — give exactly one, or name a `fabric` from the catalog.
    A Ring gives each NPU 2 links, FullyConnected npus-1 links, Switch 1 link to the switch.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    topology: Topology
    npus: Annotated[int, Field(ge=1, le=1 << 24)]
    link_gbps: Annotated[float, Field(ge=1e-6, le=1e7, allow_inf_nan=False)] | None = None
    link_gibps: Annotated[float, Field(ge=1e-6, le=1e7, allow_inf_nan=False)] | None = None
    latency_ns: Annotated[float, Field(ge=0, le=1e12, allow_inf_nan=False)] = 0.0
    efficiency: Annotated[float, Field(ge=1e-6, le=1)] = Field(
        default=1.0, description="achievable fraction of link bandwidth for collectives (cosmic fidelity)"
    )
    fabric: str | None = Field(default=None, description="catalog fabric filling link, latency and efficiency")

    @model_validator(mode="before")
    @classmethod
    def _fill_fabric(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("fabric") is not None:
            from cosmic.catalog import get_fabric

            name = data["fabric"]
            if not isinstance(name, str) or len(name) > 200:  # before the close-match search, which is slow
                raise KeyedValueError("fabric", "must be a catalog fabric name (a string of at most 200 characters)")
            try:
                fab = get_fabric(name)
            except UnknownNameError as exc:  # re-raised as a ValueError so that pydantic adds the key path
                raise KeyedValueError("fabric", exc.detail) from None
            merged = {k: v for k, v in fab.items() if k in ("link_gbps", "latency_ns", "efficiency")}
            if "link_gibps" in data:
                merged.pop("link_gbps", None)
            merged.update(data)
            return merged
        return data

    @model_validator(mode="after")
    def _one_bandwidth(self) -> NetworkDim:
        if (self.link_gbps is None) == (self.link_gibps is None):
            raise ValueError("give exactly one of link_gbps (GB = 10^9 B) or link_gibps (GB = 2^30 B), or a fabric")
        return self

    @property
    def link_bytes_per_s(self) -> float:
        """Raw link bandwidth per direction in bytes/s."""
        if self.link_gibps is not None:
            return self.link_gibps * GIB
        assert self.link_gbps is not None  # guaranteed by _one_bandwidth
        return self.link_gbps * GB

    @property
    def latency_s(self) -> float:
        return self.latency_ns * 1e-9

    @property
    def links_per_npu(self) -> int:
        return int(links_per_npu(_TOPOLOGY_CODES[self.topology], self.npus))

    @property
    def npu_bandwidth_gbps(self) -> float:
        """Total injection bandwidth of one NPU into this dimension, decimal GB/s."""
        return self.link_bytes_per_s * self.links_per_npu / GB


_TOPOLOGY_CODES = {t: i for i, t in enumerate(Topology)}


class Network(BaseModel):
    """An N-dimensional network; NPU id -> coordinates with dimension 0 varying fastest (as ASTRA-sim)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dims: Annotated[list[NetworkDim], Field(min_length=1, max_length=16)]
    npus: Annotated[int, Field(ge=1)] | None = Field(
        default=None, description="optional total NPU count; must equal the product of dims[*].npus"
    )

    @model_validator(mode="after")
    def _total(self) -> Network:
        n = 1
        for d in self.dims:
            n *= d.npus
        if self.npus is not None and self.npus != n:
            raise KeyedValueError("npus", f"{self.npus} but the product of dims[*].npus is {n}; they must be equal")
        if n > 1 << 40:
            raise ValueError(f"{n} NPUs is more than cosmic supports (2^40)")
        return self

    def __hash__(self) -> int:
        return hash(tuple(self.dims))

    @property
    def n_npus(self) -> int:
        n = 1
        for d in self.dims:
            n *= d.npus
        return n
