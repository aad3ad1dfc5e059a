"""Network cost in dollars with COSMIC's cost table (reference cosmic.md section 3).

Per block of n NPUs with per-link bandwidth B (GB/s): Ring 2n links, FullyConnected n(n-1) links, Switch 2n links
plus a switch term and, in the outermost of four dimensions, a NIC term, each priced per NPU per GB/s. The network
cost is the sum over dimensions of (N / n_d) blocks x block cost. COSMIC forbids a Switch in dimension 1 because its
table has no price there; cosmic allows it and prices it with dimension 2's switch price (documented departure).
COSMIC's bandwidths are ASTRA-sim GB/s; cosmic applies the table to the link bandwidth in GB/s as configured.
"""

from __future__ import annotations

from typing import Any

from cosmic._xp import where
from cosmic.caches import BoundedMemo, register
from cosmic.network.topology import Network, Topology, links_per_npu
from cosmic.units import GB

# $ per GB/s, by dimension position 1..4 (COSMIC Table: link, switch, NIC)
_LINK_USD = (2.0, 4.0, 4.0, 7.8)
_SWITCH_USD = (13.0, 13.0, 13.0, 18.0)  # position 1 has no COSMIC price: position 2's is used
_NIC_USD = (0.0, 0.0, 0.0, 31.6)

# For fewer than four dimensions COSMIC reuses columns: 1 dim -> column 2; 2 -> 2, 4; 3 -> 2, 3, 4.
_COLUMNS = {1: (1,), 2: (1, 3), 3: (1, 2, 3), 4: (0, 1, 2, 3)}


def _column(n_dims: int, i: int) -> int:
    if n_dims in _COLUMNS:
        return _COLUMNS[n_dims][i]
    # more than four dimensions: the first n-3 use the cheapest column, the last three columns 2..4
    return max(0, 3 - (n_dims - 1 - i))


_RING, _FC, _SWITCH = (tuple(Topology).index(t) for t in (Topology.RING, Topology.FULLY_CONNECTED, Topology.SWITCH))


def block_cost_usd(topology: Any, npus: Any, bw_gbps: Any, column: int) -> Any:
    """Cost of one block of `npus` NPUs joined by `topology` (a code into ``tuple(Topology)``) with links of
    `bw_gbps` GB/s, in COSMIC's column `column` (floats or columns)."""
    ring_or_switch = 2 * npus * _LINK_USD[column] * bw_gbps
    cost = where(topology == _FC, npus * (npus - 1) * _LINK_USD[column] * bw_gbps,
                 where(topology == _RING, ring_or_switch,
                       ring_or_switch + npus * (_SWITCH_USD[column] + _NIC_USD[column]) * bw_gbps))
    return where(npus == 1, 0.0, cost)


def figures(topology: list[Any], npus: list[Any], link_bytes_per_s: list[Any]) -> tuple[Any, Any]:
    """(network cost in USD, total per-NPU bandwidth in GB/s) from per-dimension figures (floats or columns)."""
    k = len(npus)
    n_total: Any = 1
    for n in npus:
        n_total = n_total * n
    cost: Any = 0.0
    bw: Any = 0.0
    for i in range(k):
        gbps = link_bytes_per_s[i] / GB
        cost = cost + (n_total // npus[i]) * block_cost_usd(topology[i], npus[i], gbps, _column(k, i))
        bw = bw + gbps * links_per_npu(topology[i], npus[i])
    return cost, bw


_FIGURES = register(BoundedMemo(1 << 14))  # id(network) -> (network, cost, bandwidth)


def network_figures(network: Network) -> tuple[float, float]:
    """(network cost in USD, total per-NPU bandwidth in GB/s), remembered per network object (held by the memo,
    so that its id is not reused while remembered)."""
    hit = _FIGURES.get(id(network))
    if hit is None:
        hit = _FIGURES.put(id(network), (network, *figures(*_dims(network))))
    return hit[1], hit[2]


_TOPOLOGY_CODES = {t: i for i, t in enumerate(Topology)}


def _dims(network: Network) -> tuple[list[int], list[int], list[float]]:
    dims = network.dims
    return [_TOPOLOGY_CODES[d.topology] for d in dims], [d.npus for d in dims], [d.link_bytes_per_s for d in dims]


def network_cost_usd(network: Network) -> float:
    """Total network cost of `network` in US dollars (COSMIC's model)."""
    return figures(*_dims(network))[0]


def total_bandwidth_gbps(network: Network) -> float:
    """Sum over dimensions of the per-NPU injection bandwidth (COSMIC's 'total per-NPU bandwidth')."""
    return figures(*_dims(network))[1]
