"""Every figure of 102,700 recorded results (tests/sim/reference.py) is reproduced to relative 1e-9."""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest

from tests.sim import reference


@cache
def _data() -> dict[str, np.ndarray]:
    with np.load(reference.DATA) as f:
        return {k: f[k] for k in f.files}


@cache
def _spaces() -> dict[str, object]:
    return dict(reference.spaces())


def _names() -> list[str]:
    return [str(n) for n in _data()["names"]]


def _recorded(name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    d = _data()
    k = _names().index(name)
    a, b = int(d["offsets"][k]), int(d["offsets"][k + 1])
    space = _spaces()[name]
    width = len(space.cardinalities)  # type: ignore[attr-defined]
    return d["points"][a:b, :width].astype(np.int64), d["status"][a:b], d["values"][a:b]


def assert_same(name: str, status: np.ndarray, values: np.ndarray, want_status: np.ndarray,
                want: np.ndarray) -> None:
    """Statuses equal, and every figure within relative 1e-9 (NaN where the recording has NaN)."""
    assert np.array_equal(status, want_status), f"{name}: {int((status != want_status).sum())} statuses differ"
    ok = np.isclose(values, want, rtol=1e-9, atol=0.0, equal_nan=True)
    if not ok.all():
        r, c = np.argwhere(~ok)[0]
        col = reference.COLUMNS[c]
        raise AssertionError(
            f"{name}: {int((~ok).sum())} figures differ; first: point {r}, {col} = {values[r, c]!r}, "
            f"recorded {want[r, c]!r}"
        )


def test_reference_covers_enough() -> None:
    d = _data()
    assert len(d["status"]) >= 100_000
    assert tuple(str(c) for c in d["columns"]) == reference.COLUMNS
    assert (d["status"] == 0).mean() > 0.95


@pytest.mark.parametrize("name", _names())
def test_simulate_reproduces_reference(name: str) -> None:
    points, want_status, want = _recorded(name)
    status, values = reference.evaluate(_spaces()[name], points)
    assert_same(name, status, values, want_status, want)


@pytest.mark.parametrize("name", _names())
def test_batch_path_reproduces_reference(name: str) -> None:
    from cosmic.sim.columns import StepColumns

    points, want_status, want = _recorded(name)
    space = _spaces()[name]
    configs = []
    rejected = []
    for i, p in enumerate(points):
        try:
            configs.append(space.decode(p))  # type: ignore[attr-defined]
        except Exception:  # decode refuses it: recorded as rejected
            rejected.append(i)
    assert all(want_status[rejected] == 1)
    keep = np.setdiff1d(np.arange(len(points)), rejected)
    status, values = reference.evaluate_batch(StepColumns.from_configs(configs))
    assert_same(name, status, values, want_status[keep], want[keep])
