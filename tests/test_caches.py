"""The cache registry and the RowTable the batch path keeps its priced rows in."""

from __future__ import annotations

import numpy as np

from cosmic import caches


def test_row_table_prices_each_key_once_and_keeps_row_numbers() -> None:
    calls: list[list[int]] = []

    def price(keys: np.ndarray) -> np.ndarray:
        calls.append(keys.tolist())
        return np.stack([keys * 2.0, keys + 0.5], axis=1)

    t = caches.RowTable(2)
    first = t.row_ids(np.array([7, 3, 7]), price)
    assert calls == [[3, 7]]
    np.testing.assert_array_equal(t.rows(np.array([3, 7]), price), [[6.0, 3.5], [14.0, 7.5]])
    assert calls == [[3, 7]]  # seen keys are not priced again
    got = t.rows(np.array([1, 7, 9]), price)  # new keys arrive: rows are appended, old row numbers stay valid
    np.testing.assert_array_equal(got, [[2.0, 1.5], [14.0, 7.5], [18.0, 9.5]])
    assert calls[-1] == [1, 9]
    np.testing.assert_array_equal(t.row_ids(np.array([7, 3, 7]), price), first)
    t.clear()
    assert len(t.values) == 0 and len(t.keys) == 0


def test_clear_caches_walks_the_registry() -> None:
    memo = caches.register(caches.BoundedMemo(4))
    memo.put("k", 1)
    table = caches.register(caches.RowTable(1))
    table.rows(np.array([5]), lambda k: k[:, None] * 1.0)
    caches.clear_caches()
    assert not memo and len(table.keys) == 0
    assert memo in caches.registered() and table in caches.registered()
