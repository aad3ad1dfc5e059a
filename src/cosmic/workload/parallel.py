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
from typing import Any, NamedTuple

from cosmic._xp import vmax, vmin, where
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


def span_columns(degrees_in_order: list[Any], dim_sizes: list[Any]) -> tuple[list[list[Any]], list[list[Any]], Any]:
    """Footprints of the parallel groups of one layout (ints) or of many (int columns) at once.

    Args:
        degrees_in_order: the four group degrees in rank order (innermost first).
        dim_sizes: the network dimension sizes, innermost first.

    Returns:
        ``(members, stride, failed)``: ``members[j][i]`` and ``stride[j][i]`` of position j's group in dimension
        i (members 1 where the group does not reach the dimension), and the first (position, dimension) whose
        group does not align with the dimension, as ``j * D + i`` (-1 where the layout fits).
    """
    n_dims = len(dim_sizes)
    members: list[list[Any]] = []
    strides: list[list[Any]] = []
    failed: Any = -1
    stride: Any = 1
    for j, g in enumerate(degrees_in_order):
        lo_g, hi_g = stride, stride * g
        base: Any = 1
        m_j, s_j = [], []
        for i in range(n_dims):
            top = base * dim_sizes[i]
            lo, hi = vmax(lo_g, base), vmin(hi_g, top)
            span = (g > 1) & (hi > lo)
            safe_lo = where(span, lo, 1)
            bad = span & ((hi % safe_lo != 0) | (safe_lo % base != 0)) & (failed < 0)
            failed = where(bad, j * n_dims + i, failed)
            m_j.append(where(span, hi // safe_lo, 1))
            s_j.append(where(span, safe_lo // base, 1))
            base = top
        members.append(m_j)
        strides.append(s_j)
        stride = hi_g
    return members, strides, failed


@register
@lru_cache(maxsize=4096)
def layout_order(tp: int, sp: int, dp: int, pp: int, rank_order: tuple[str, ...]) -> tuple[str, ...]:
    """`rank_order` with the groups of degree 1 moved to the end: a group of one rank has no extent, so rank orders
    that differ only in where it sits place every group identically (and fit the network alike).

    Example:
        >>> layout_order(8, 1, 4, 1, ("sp", "tp", "pp", "dp"))
        ('tp', 'dp', 'sp', 'pp')
    """
    deg = {"tp": tp, "sp": sp, "dp": dp, "pp": pp}
    return tuple(n for n in rank_order if deg[n] > 1) + tuple(n for n in rank_order if deg[n] == 1)


@register
@lru_cache(maxsize=65536)
def _group_spans(
    degrees_in_order: tuple[int, ...], rank_order: tuple[str, ...], dim_sizes: tuple[int, ...]
) -> tuple[tuple[str, tuple[Span, ...]], ...]:
    """Footprint of every parallel group on the network dimensions (`layout_spans`, remembered).

    Example:
        >>> s = group_spans({"tp": 8, "sp": 1, "dp": 4, "pp": 2}, ("tp", "sp", "dp", "pp"), (8, 8))
        >>> s["tp"], s["dp"]
        ((Span(dim_index=0, members=8, stride=1),), (Span(dim_index=1, members=4, stride=1),))
    """
    members, stride = layout_spans(degrees_in_order, rank_order, dim_sizes)
    out = []
    for j, name in enumerate(rank_order):
        spans = tuple(
            Span(i, members[j][i], stride[j][i]) for i in range(len(dim_sizes)) if members[j][i] > 1
        )
        out.append((name, spans))
    return tuple(out)


def layout_spans(degrees_in_order: tuple[int, ...], rank_order: tuple[str, ...],
                 dim_sizes: tuple[int, ...]) -> tuple[list[list[int]], list[list[int]]]:
    """``(members, stride)`` of `span_columns` for one layout (position j of `rank_order`, dimension i), or
    InfeasibleError naming the first group that does not align with a dimension."""
    members, stride, failed = span_columns(list(degrees_in_order), list(dim_sizes))
    if failed >= 0:
        j, i = divmod(failed, len(dim_sizes))
        apart = math.prod(degrees_in_order[:j])
        raise InfeasibleError(
            f"parallel group {rank_order[j]}={degrees_in_order[j]} (ranks {apart} apart) does not fit network "
            f"dimension {i} of {dim_sizes[i]} NPUs: choose degrees whose products align with the dimension sizes"
        )
    return members, stride
