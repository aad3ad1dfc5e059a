"""The stored rows of a batch read from its columns (`cosmic.explore._records.trial_rows`) are, row for row, the
rows the per-evaluation path makes (`_row(space, eb.evaluation(i, config=False))`): ok, memory-infeasible (timed and
untimed), dense and MoE models."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cosmic.explore import Evaluator
from cosmic.explore._records import trial_rows
from cosmic.explore._study import _row
from cosmic.psa import load_psa


def _box(space, n: int, seed: int) -> np.ndarray:
    """Uniform points of the encoded box (feasible or not), plus feasible samples."""
    rng = np.random.default_rng(seed)
    box = np.stack([rng.integers(0, c, n) for c in space.cardinalities], axis=1)
    return np.concatenate([box, space.sample(rng, n)])


def _same(space, eb) -> dict[str, int]:
    got = trial_rows(space, eb, _row)
    want = [_row(space, eb.evaluation(i, config=False)) for i in range(len(eb))]
    assert len(got) == len(want) == len(eb)
    seen: dict[str, int] = {}
    for g, w in zip(got, want, strict=True):
        assert g.point.tolist() == w.point.tolist()
        assert (g.values, g.violation, g.reason) == (w.values, w.violation, w.reason)
        # the stored JSON, key order included
        assert json.dumps(g.attrs) == json.dumps(w.attrs)
        key = w.attrs["status"] + ("" if "figures" in w.attrs else "-untimed")
        seen[key] = seen.get(key, 0) + 1
    return seen


@pytest.mark.parametrize("time_unfit", [True, False])
def test_rows_from_columns_equal_rows_from_evaluations(time_unfit):
    space = load_psa("cosmic-s1-gpt3-175b-full")
    eb = Evaluator(space, time_unfit=time_unfit).evaluate_batch(_box(space, 300, 1))
    seen = _same(space, eb)
    assert seen.get("ok", 0) > 0
    assert seen.get("memory" if time_unfit else "memory-untimed", 0) > 0


def test_rows_from_columns_of_a_moe_space():
    space = load_psa("mixtral-8x22b-256xh100-full")
    eb = Evaluator(space).evaluate_batch(_box(space, 200, 2))
    seen = _same(space, eb)
    assert seen.get("ok", 0) + seen.get("memory", 0) > 0
