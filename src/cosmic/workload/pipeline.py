"""Pipeline stages: how many layers each stage holds, grouped into at most four runs of identical stages.

Stage 0 holds the embedding and stage pp-1 the head, so they always start runs of their own; the middle stages hold
``layers // pp`` layers, plus one for the first ``layers % pp`` of them (a remainder goes to the middle stages first,
as Llama 3 balanced its 126 layers over 16 stages). The simulator prices one representative stage per run.

The runs are four fixed *slots* so that one formula covers a float and a column of configurations:
slot 0 is stage 0, slots 1 and 2 are the middle stages with ``base + 1`` and ``base`` layers, slot 3 is the last
stage; a slot that a layout does not have has ``count == 0``.
"""

from __future__ import annotations

from dataclasses import dataclass

from cosmic._xp import Num, where

N_SLOTS = 4


@dataclass(frozen=True, slots=True)
class StageRun:
    """A run of `count` identical consecutive stages starting at stage `first`, each holding `layers` layers."""

    first: Num
    count: Num
    layers: Num


def stage_runs(n_layers: Num, pp: Num) -> tuple[StageRun, StageRun, StageRun, StageRun]:
    """The four slots of a model of `n_layers` layers over `pp` stages (ints, or int columns).

    Example:
        >>> [(r.first, r.count, r.layers) for r in stage_runs(126, 16)]
        [(0, 1, 7), (1, 14, 8), (15, 0, 7), (15, 1, 7)]
    """
    base, extra = n_layers // pp, n_layers % pp
    middle = pp - 2
    many = pp > 2
    # more remainder than middle stages: every middle stage and stage 0 take one more
    over = many & (extra > middle)
    n0 = where(pp == 1, n_layers, where(pp == 2, base + extra, where(over, base + 1, base)))
    c1 = where(many, where(over, middle, where(extra >= 1, extra, middle)), 0)
    n1 = where(over | (extra >= 1), base + 1, base)
    c2 = where(many & (over == 0) & (extra >= 1), middle - extra, 0)
    return (
        StageRun(0, 1, n0),
        StageRun(1, c1, n1),
        StageRun(1 + c1, c2, base),
        StageRun(pp - 1, where(pp > 1, 1, 0), base),
    )


def stage_layers(n_layers: int, pp: int) -> list[int]:
    """Layers of every stage, in stage order (the expanded form of `stage_runs`)."""
    out: list[int] = []
    for r in stage_runs(n_layers, pp):
        out += [int(r.layers)] * int(r.count)
    return out
