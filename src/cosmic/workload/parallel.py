"""Parallel groups and how a rank order maps them onto network dimensions.

Ranks are laid out in mixed radix by `rank_order` (innermost first): with Megatron's default ``tp, sp, dp, pp`` the
TP peers are consecutive ranks (inside a node) and pipeline stages are farthest apart; COSMIC's workload generator
uses ``dp, tp, sp, pp``. NPU ids map to network coordinates with dimension 0 varying fastest, so a group of degree g
whose members are `stride` ranks apart covers, in each network dimension, the part of [stride, stride*g) that
overlaps that dimension's rank range.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import NamedTuple

import numpy as np

from cosmic.caches import register
from cosmic.errors import InfeasibleError

PARALLEL_DIMS = ("tp", "sp", "dp", "pp")


class Span(NamedTuple):
    """A group's footprint in one network dimension: `members` NPUs, `stride` coordinates apart."""

    dim_index: int
    members: int
    stride: int


def group_spans(
    degrees: dict[str, int], rank_order: tuple[str, ...], dim_sizes: tuple[int, ...]
) -> dict[str, tuple[Span, ...]]:
    key = tuple(degrees.get(n, 1) for n in rank_order)
    return dict(_group_spans(key, rank_order, dim_sizes))


def span_columns(
    degrees_in_order: np.ndarray, dim_sizes: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Footprints of the parallel groups of many layouts at once.

    Args:
        degrees_in_order: (n, 4) group degrees in rank order (innermost first).
        dim_sizes: (n, D) network dimension sizes.

    Returns:
        ``(members, stride, failed)``: members and stride of position j's group in dimension i, shape (n, 4, D)
        (members 1 where the group does not reach the dimension), and the first (position, dimension) whose
        group does not align with the dimension, as ``j * D + i`` (-1 where the layout fits).
    """
    deg = np.asarray(degrees_in_order, dtype=np.int64)
    sizes = np.asarray(dim_sizes, dtype=np.int64)
    n, n_dims = sizes.shape
    members = np.ones((n, deg.shape[1], n_dims), dtype=np.int64)
    stride_out = np.ones((n, deg.shape[1], n_dims), dtype=np.int64)
    failed = np.full(n, -1, dtype=np.int64)
    stride = np.ones(n, dtype=np.int64)
    for j in range(deg.shape[1]):
        g = deg[:, j]
        lo_g, hi_g = stride, stride * g
        base = np.ones(n, dtype=np.int64)
        for i in range(n_dims):
            top = base * sizes[:, i]
            lo, hi = np.maximum(lo_g, base), np.minimum(hi_g, top)
            span = (g > 1) & (hi > lo)
            safe_lo = np.where(span, lo, 1)
            bad = span & ((hi % safe_lo != 0) | (safe_lo % base != 0)) & (failed < 0)
            failed[bad] = j * n_dims + i
            members[:, j, i] = np.where(span, hi // safe_lo, 1)
            stride_out[:, j, i] = np.where(span, safe_lo // base, 1)
            base = top
        stride = hi_g
    return members, stride_out, failed


@register
@lru_cache(maxsize=65536)
def _group_spans(
    degrees_in_order: tuple[int, ...], rank_order: tuple[str, ...], dim_sizes: tuple[int, ...]
) -> tuple[tuple[str, tuple[Span, ...]], ...]:
    """Footprint of every parallel group on the network dimensions (`span_columns` for one layout).

    Example:
        >>> s = group_spans({"tp": 8, "sp": 1, "dp": 4, "pp": 2}, ("tp", "sp", "dp", "pp"), (8, 8))
        >>> s["tp"], s["dp"]
        ((Span(dim_index=0, members=8, stride=1),), (Span(dim_index=1, members=4, stride=1),))
    """
    members, stride, failed = span_columns(np.array([degrees_in_order]), np.array([dim_sizes]))
    if failed[0] >= 0:
        j, i = divmod(int(failed[0]), len(dim_sizes))
        apart = math.prod(degrees_in_order[:j])
        raise InfeasibleError(
            f"parallel group {rank_order[j]}={degrees_in_order[j]} (ranks {apart} apart) does not fit network "
            f"dimension {i} of {dim_sizes[i]} NPUs: choose degrees whose products align with the dimension sizes"
        )
    out = []
    for j, name in enumerate(rank_order):
        spans = tuple(
            Span(i, int(members[0, j, i]), int(stride[0, j, i]))
            for i in range(len(dim_sizes)) if members[0, j, i] > 1
        )
        out.append((name, spans))
    return tuple(out)
