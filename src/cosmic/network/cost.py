"""Network cost in dollars with COSMIC's cost table (reference cosmic.md section 3).

Per block of n NPUs with per-link bandwidth B (GB/s): Ring 2n links, FullyConnected n(n-1) links, Switch 2n links
plus a switch term and, in the outermost of four dimensions, a NIC term, each priced per NPU per GB/s. The network
cost is the sum over dimensions of (N / n_d) blocks x block cost. COSMIC forbids a Switch in dimension 1 because its
table has no price there; cosmic allows it and prices it with dimension 2's switch price (documented departure).
COSMIC's bandwidths are ASTRA-sim GB/s; cosmic applies the table to the link bandwidth in GB/s as configured.
"""

from __future__ import annotations

from functools import lru_cache

from cosmic.caches import register
from cosmic.network.topology import Network, NetworkDim, Topology
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


def block_cost_usd(dim: NetworkDim, column: int) -> float:
    n = dim.npus
    bw_gbps = dim.link_bytes_per_s / GB
    if n == 1:
        return 0.0
    if dim.topology is Topology.RING:
        return 2 * n * _LINK_USD[column] * bw_gbps
    if dim.topology is Topology.FULLY_CONNECTED:
        return n * (n - 1) * _LINK_USD[column] * bw_gbps
    return 2 * n * _LINK_USD[column] * bw_gbps + n * (_SWITCH_USD[column] + _NIC_USD[column]) * bw_gbps


@register
@lru_cache(maxsize=1 << 16)
def network_figures(network: Network) -> tuple[float, float]:
    """(network cost in USD, total per-NPU bandwidth in GB/s), cached per network."""
    return network_cost_usd(network), total_bandwidth_gbps(network)


def network_cost_usd(network: Network) -> float:
    """Total network cost of `network` in US dollars (COSMIC's model)."""
    n_total = network.n_npus
    k = len(network.dims)
    return sum((n_total // d.npus) * block_cost_usd(d, _column(k, i)) for i, d in enumerate(network.dims))


def total_bandwidth_gbps(network: Network) -> float:
    """Sum over dimensions of the per-NPU injection bandwidth (COSMIC's 'total per-NPU bandwidth')."""
    return sum(d.npu_bandwidth_gbps for d in network.dims)
