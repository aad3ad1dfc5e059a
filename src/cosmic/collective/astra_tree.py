"""Double binary tree phases in `astra-sim` fidelity: every NPU of the tree timed separately.

Source: astra-sim ``system/astraccl/native_collectives/collective_algorithm/DoubleBinaryTreeAllReduce.cc`` (the
per-node state machine: leaf, intermediate, root) and ``logical_topology/BinaryTree.cc`` (the shape: a root with one
child, that child a complete tree numbered in order; ``RootMax`` puts the root last, ``RootMin`` first).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from cosmic.caches import register
from cosmic.collective.astra_core import AstraDim, AstraParams, hops, reduce_ns
from cosmic.network.topology import Topology


@dataclass(frozen=True, slots=True)
class _Tree:
    """A binary tree over p NPUs: a root with one child, that child a complete in-order-numbered tree of p-1 nodes."""

    root: int
    top: int
    levels: tuple[tuple[np.ndarray, np.ndarray, np.ndarray], ...]  # per height >= 1: (nodes, left, right)
    leaves: np.ndarray
    parent: np.ndarray  # parent of every node (root: -1)


@register
@lru_cache(maxsize=64)
def tree_shape(n: int, root_max: bool) -> _Tree:
    depth = n.bit_length() - 1  # levels of the inner tree (2^depth - 1 nodes)
    base = 0 if root_max else 1
    root = n - 1 if root_max else 0
    j = np.arange(1, n)  # in-order position within the inner tree, 1-based
    ids = base + j - 1
    height = np.zeros(n - 1, dtype=np.int64)
    for h in range(1, depth):
        height[(j % (1 << h)) == 0] = h
    parent = np.full(n, -1, dtype=np.int64)
    for h in range(depth - 1):
        sel = height == h
        jj = j[sel]
        up = jj + (1 << h)
        is_up = (up % (1 << (h + 2))) == (1 << (h + 1))
        par_j = np.where(is_up, up, jj - (1 << h))
        parent[ids[sel]] = base + par_j - 1
    top = base + (1 << (depth - 1)) - 1
    parent[top] = root
    levels = []
    for h in range(1, depth):
        jj = j[height == h]
        levels.append((base + jj - 1, base + jj - (1 << (h - 1)) - 1, base + jj + (1 << (h - 1)) - 1))
    leaves = ids[height == 0]
    return _Tree(root, top, tuple(levels), leaves, parent)


def _edge_ns(dim: AstraDim, a: np.ndarray | int, b: np.ndarray | int, d: int) -> np.ndarray:
    """N(d, hops(a, b)) for tree edges (vectorised)."""
    if dim.topology is Topology.RING:
        k = np.abs(np.asarray(a) - np.asarray(b)) % dim.npus
        h = np.minimum(k, dim.npus - k)
    else:
        h = np.full(np.shape(a), hops(dim, 1))
    return (h * dim.latency_ns + d / dim.bytes_per_ns).astype(np.int64)


def tree_finish(dim: AstraDim, d: int, p: AstraParams, starts: np.ndarray, *, root_max: bool) -> np.ndarray:
    """Finish time of every NPU of one double-binary-tree chunk, given when each NPU started it.

    Up: a leaf sends at start + E; an inner node sends once it has started and both children's data arrived,
    plus E + R; the root adds E + R and sends down. Down: an inner node forwards E + R after its parent's message
    arrives (and is done then); a leaf is done E after it arrives.
    """
    n = dim.npus
    e = p.endpoint_delay_ns
    er = e + reduce_ns(d, p)
    t = tree_shape(n, root_max)
    up = np.zeros(n, dtype=np.int64)  # time each node sends up
    up[t.leaves] = starts[t.leaves] + e
    for nodes, left, right in t.levels:
        arr_l = up[left] + _edge_ns(dim, left, nodes, d)
        arr_r = up[right] + _edge_ns(dim, right, nodes, d)
        up[nodes] = np.maximum(np.maximum(arr_l, arr_r), starts[nodes]) + er
    root_arr = int(up[t.top] + _edge_ns(dim, t.top, t.root, d))
    root_send = max(root_arr, int(starts[t.root])) + er
    finish = np.zeros(n, dtype=np.int64)
    finish[t.root] = root_send
    recv = np.zeros(n, dtype=np.int64)  # time the down message reaches each node
    recv[t.top] = root_send + int(_edge_ns(dim, t.root, t.top, d))
    for nodes, left, right in reversed(t.levels):
        fwd = recv[nodes] + er
        finish[nodes] = fwd
        recv[left] = fwd + _edge_ns(dim, nodes, left, d)
        recv[right] = fwd + _edge_ns(dim, nodes, right, d)
    finish[t.leaves] = recv[t.leaves] + e
    return finish

