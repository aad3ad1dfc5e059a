"""Parallel groups and how a rank order maps them onto network dimensions.

Ranks are laid out in mixed radix by `rank_order` (innermost first): with Megatron's default ``tp, sp, dp, pp`` the
TP peers are consecutive ranks (inside a node) and pipeline stages are farthest apart; COSMIC's workload generator
uses ``dp, tp, sp, pp``. NPU ids map to network coordinates with dimension 0 varying fastest, so a group of degree g
whose members are `stride` ranks apart covers, in each network dimension, the part of [stride, stride*g) that
overlaps that dimension's rank range.
"""

from __future__ import annotations

from typing import NamedTuple
from functools import lru_cache

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


@lru_cache(maxsize=65536)
def _group_spans(
    degrees_in_order: tuple[int, ...], rank_order: tuple[str, ...], dim_sizes: tuple[int, ...]
) -> tuple[tuple[str, tuple[Span, ...]], ...]:
    """Footprint of every parallel group on the network dimensions.

    Example:
        >>> s = group_spans({"tp": 8, "sp": 1, "dp": 4, "pp": 2}, ("tp", "sp", "dp", "pp"), (8, 8))
        >>> s["tp"], s["dp"]
        ((Span(dim_index=0, members=8, stride=1),), (Span(dim_index=1, members=4, stride=1),))
    """
    out: list[tuple[str, tuple[Span, ...]]] = []
    stride = 1
    for name, g in zip(rank_order, degrees_in_order, strict=True):
        lo_g, hi_g = stride, stride * g
        spans: list[Span] = []
        if g > 1:
            base = 1
            for i, n in enumerate(dim_sizes):
                lo, hi = max(lo_g, base), min(hi_g, base * n)
                if hi > lo:
                    if hi % lo or lo % base:
                        raise InfeasibleError(
                            f"parallel group {name}={g} (ranks {stride} apart) does not fit network dimension "
                            f"{i} of {n} NPUs: choose degrees whose products align with the dimension sizes"
                        )
                    spans.append(Span(i, hi // lo, lo // base))
                base *= n
        out.append((name, tuple(spans)))
        stride = hi_g
    return tuple(out)
