"""The pieces every `astra-sim` fidelity module shares: a dimension, the system knobs, a phase, a result, and the
price of one message and of one local reduction (``reference/astra-sim-timing.md``, "Notation").

Sources in ASTRA-sim 2.x: one message costs ``hops x latency + bytes / bandwidth`` truncated to whole ns
(astra-network-analytical ``congestion_unaware/basic-topology/BasicTopology.cpp``
``compute_communication_delay``; hops from ``Ring.cpp`` / ``FullyConnected.cpp`` / ``Switch.cpp``
``compute_hops_count``); a local reduction costs one write and two reads at ``local-mem-bw``
(astra-sim ``system/PacketBundle.cc`` ``PacketBundle::call``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cosmic.collective.algorithms import Algorithm, Collective
from cosmic.collective.model import MultiDim
from cosmic.errors import ConfigError
from cosmic.network.topology import Topology

GIB = 2**30


@dataclass(frozen=True, slots=True)
class AstraDim:
    """One dimension as the analytical backend sees it.

    Attributes:
        topology: Ring, FullyConnected or Switch.
        npus: NPUs in the dimension.
        bytes_per_ns: link bandwidth, ASTRA-sim's ``bandwidth`` (GB/s, GB = 2^30) x 2^30 / 10^9.
        latency_ns: per-hop latency.
        network_dim: index of the network dimension (for reporting).
        ring_hops: hops of a ring step when they differ from the topology's default (flat rings over sub-groups).
    """

    topology: Topology
    npus: int
    bytes_per_ns: float
    latency_ns: float
    network_dim: int = 0
    ring_hops: tuple[int, int, int] | None = None  # (hops of a normal step, hops of a carry step, carry period)

    @classmethod
    def from_gib(cls, topology: Topology, npus: int, gib_per_s: float, latency_ns: float,
                 network_dim: int = 0) -> AstraDim:
        """A dimension from ASTRA-sim's own units (bandwidth in GB/s with GB = 2^30, latency in ns)."""
        return cls(Topology(topology), int(npus), gib_per_s * GIB / 1_000_000_000, float(latency_ns), network_dim)


@dataclass(frozen=True, slots=True)
class AstraParams:
    """System-file knobs that change the timing of one collective."""

    splits: int = 1
    active_chunks: int = 1
    endpoint_delay_ns: int = 10
    local_mem_bw_gbps: float = 1600.0
    multidim: MultiDim = MultiDim.BASELINE


@dataclass(frozen=True, slots=True)
class Phase:
    """One phase of one chunk: what runs on which dimension and how long it takes (slowest NPU, alone)."""

    position: int  # index into the collective's dimension list
    network_dim: int
    kind: Collective
    algorithm: Algorithm
    bytes_in: int
    bytes_out: int
    time_ns: int


@dataclass(frozen=True, slots=True)
class AstraResult:
    """Outcome of one collective in astra-sim fidelity."""

    time_ns: int
    chunk_bytes: int
    n_chunks: int
    phases: tuple[Phase, ...]
    busy_ns: tuple[int, ...]  # per dimension position: sum of phase times of all chunks
    notes: tuple[str, ...] = field(default=())



# ---- messages ------------------------------------------------------------------------------------------------------


def msg_ns(m: int, hops: int, dim: AstraDim) -> int:
    """N(m, h) = floor(h x latency + m / B): one message of m bytes over h hops, truncated to whole ns."""
    return int(hops * dim.latency_ns + m / dim.bytes_per_ns)


def reduce_ns(m: int, p: AstraParams) -> int:
    """R(m) = 3 x floor(m / local-mem-bw): one write and two reads of a received message."""
    if p.local_mem_bw_gbps <= 0:
        raise ConfigError("must be given for a collective with local reductions (GB/s)", key="local-mem-bw")
    return 3 * int(m // p.local_mem_bw_gbps)


def hops(dim: AstraDim, offset: int) -> int:
    """Hops between NPUs `offset` apart in the dimension."""
    if dim.topology is Topology.SWITCH:
        return 2
    if dim.topology is Topology.FULLY_CONNECTED:
        return 1
    k = offset % dim.npus
    return min(k, dim.npus - k)


def ring_step_hops(dim: AstraDim) -> int:
    return 2 if dim.topology is Topology.SWITCH else 1

