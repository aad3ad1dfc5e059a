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

from cosmic._xp import Num, any_, vmax, where

N_SLOTS = 4


@dataclass(frozen=True, slots=True)
class StageRun:
    """A run of `count` identical consecutive stages starting at stage `first`, each holding `layers` layers."""

    first: Num
    count: Num
    layers: Num


def stage_runs(n_layers: Num, pp: Num, first: Num = 0, last: Num = 0) -> tuple[StageRun, StageRun, StageRun, StageRun]:
    """The four slots of a model of `n_layers` layers over `pp` stages (ints, or int columns).

    `first` and `last` (0 = not set) fix the layers of stage 0 and stage pp-1, as Megatron's
    ``--decoder-first-pipeline-num-layers`` / ``--decoder-last-pipeline-num-layers``; one not set takes the balanced
    share of what the other leaves, ``(n_layers - set) // (pp - 1)``, and the middle stages split the rest (a
    remainder to the first of them).

    Example:
        >>> [(r.first, r.count, r.layers) for r in stage_runs(126, 16)]
        [(0, 1, 7), (1, 14, 8), (15, 0, 7), (15, 1, 7)]
        >>> [(r.first, r.count, r.layers) for r in stage_runs(126, 16, first=6, last=6)]
        [(0, 1, 6), (1, 2, 9), (3, 12, 8), (15, 1, 6)]
    """
    balanced = _balanced_runs(n_layers, pp)
    explicit = ((first > 0) | (last > 0)) & (pp > 1)
    if not any_(explicit):
        return balanced
    share = (n_layers - first - last) // vmax(1, pp - 1)  # the balanced share of what the set one leaves
    f = where(first > 0, first, share)
    ll = where(last > 0, last, share)
    middle = pp - 2
    rest = n_layers - f - ll
    base, extra = rest // vmax(1, middle), rest % vmax(1, middle)
    many = pp > 2
    c1 = where(many, where(extra >= 1, extra, middle), 0)
    n1 = where(extra >= 1, base + 1, base)
    c2 = where(many & (extra >= 1), middle - extra, 0)
    fixed = (StageRun(0, 1, f), StageRun(1, c1, n1), StageRun(1 + c1, c2, base), StageRun(pp - 1, 1, ll))
    return tuple(StageRun(where(explicit, e.first, b.first), where(explicit, e.count, b.count),  # type: ignore[return-value]
                          where(explicit, e.layers, b.layers)) for e, b in zip(fixed, balanced, strict=True))


def _balanced_runs(n_layers: Num, pp: Num) -> tuple[StageRun, StageRun, StageRun, StageRun]:
    """`stage_runs` without first/last stage sizes: as even as the layers allow."""
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


def stage_layers(n_layers: int, pp: int, first: int = 0, last: int = 0) -> list[int]:
    """Layers of every stage, in stage order (the expanded form of `stage_runs`)."""
    out: list[int] = []
    for r in stage_runs(n_layers, pp, first, last):
        out += [int(r.layers)] * int(r.count)
    return out
