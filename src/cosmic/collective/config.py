"""The collective stack's schema: per-dimension algorithms, chunking, scheduling and the fidelity switch."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from cosmic._enums import LenientStrEnum
from cosmic.collective.algorithms import Algorithm, Collective
from cosmic.collective.model import MultiDim
from cosmic.network.topology import Topology


class Scheduling(LenientStrEnum):
    LIFO = "LIFO"
    FIFO = "FIFO"


class Fidelity(StrEnum):
    """`cosmic`: cosmic's own model; `astra-sim`: reproduces ASTRA-sim's congestion-unaware analytical backend."""

    COSMIC = "cosmic"
    ASTRA_SIM = "astra-sim"

AlgoSpec = Algorithm | list[Algorithm] | None


class CollectiveConfig(BaseModel):
    """Collective stack. Each algorithm is one value for every dimension or a list with one per dimension;
    `auto` picks by topology (Ring: ring, FullyConnected: direct, Switch: halving_doubling, as COSMIC).
    all_gather / reduce_scatter / all_to_all default to the all-reduce choice."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    all_reduce: AlgoSpec = None
    all_gather: AlgoSpec = None
    reduce_scatter: AlgoSpec = None
    all_to_all: AlgoSpec = None
    chunks: Annotated[int, Field(ge=1, le=4096)] = Field(default=4, description="chunks per collective")
    scheduling: Scheduling = Scheduling.LIFO
    multidim: MultiDim = MultiDim.LOCAL_BW_AWARE
    active_chunks: Annotated[int, Field(ge=1, le=64)] = 1
    endpoint_delay_ns: Annotated[float, Field(ge=0, le=1e9, allow_inf_nan=False)] = 10.0
    local_mem_bw_gbps: Annotated[float, Field(ge=1e-6, le=1e7, allow_inf_nan=False)] = 1600.0
    fidelity: Fidelity = Fidelity.COSMIC

    @field_validator("all_reduce", "all_gather", "reduce_scatter", "all_to_all", mode="before")
    @classmethod
    def _auto(cls, v: Any) -> Any:
        if isinstance(v, str) and v.strip().lower() == "auto":
            return None
        if isinstance(v, list):
            return [None if (isinstance(x, str) and x.lower() == "auto") else x for x in v]
        return v

    def algorithms(self, kind: Collective, topologies: tuple[Topology, ...]) -> tuple[Algorithm, ...]:
        """Per-dimension algorithms for `kind` on a network with these topologies."""
        return _algorithms(self, kind, topologies)


def _algorithms(c: CollectiveConfig, kind: Collective, topologies: tuple[Topology, ...]) -> tuple[Algorithm, ...]:
    spec: Any = getattr(c, kind.value)
    if spec is None and kind is not Collective.ALL_REDUCE:
        spec = c.all_reduce
    if spec is None or isinstance(spec, Algorithm):
        spec = [spec] * len(topologies)
    return tuple(a if a is not None else _DEFAULTS[t] for a, t in zip(spec, topologies, strict=False))


# COSMIC's choice per topology (reference cosmic.md section 4)
_DEFAULTS = {
    Topology.RING: Algorithm.RING,
    Topology.FULLY_CONNECTED: Algorithm.DIRECT,
    Topology.SWITCH: Algorithm.HALVING_DOUBLING,
}


def default_algorithm(topology: Topology) -> Algorithm:
    """The algorithm `auto` means on a dimension of `topology` (Ring: ring, FullyConnected: direct, Switch:
    halving-doubling, as COSMIC).

    Example:
        >>> default_algorithm(Topology.SWITCH).value
        'halving_doubling'
    """
    return _DEFAULTS[topology]


__all__ = ["CollectiveConfig", "Fidelity", "Scheduling", "default_algorithm"]
