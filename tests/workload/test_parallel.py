"""Mapping of parallel groups onto network dimensions."""

from __future__ import annotations

import pytest

from cosmic.errors import InfeasibleError
from cosmic.workload.parallel import Span, group_spans


def test_megatron_order_tp_inside_node() -> None:
    s = group_spans({"tp": 8, "sp": 1, "dp": 8, "pp": 16}, ("tp", "sp", "dp", "pp"), (8, 128))
    assert s["tp"] == (Span(0, 8, 1),)
    assert s["dp"] == (Span(1, 8, 1),)
    assert s["pp"] == (Span(1, 16, 8),)  # pipeline stages are 8 nodes apart
    assert s["sp"] == ()


def test_cosmic_order_group_spans_part_of_several_dims() -> None:
    """COSMIC's DP-innermost order on S1 (4, 8, 4, 8): DP 8 covers dim 0 and half of dim 1."""
    s = group_spans({"tp": 4, "sp": 8, "dp": 8, "pp": 4}, ("dp", "tp", "sp", "pp"), (4, 8, 4, 8))
    assert s["dp"] == (Span(0, 4, 1), Span(1, 2, 1))
    assert s["tp"] == (Span(1, 4, 2),)  # the other 4 members of dim 1, two apart
    assert s["sp"] == (Span(2, 4, 1), Span(3, 2, 1))
    assert s["pp"] == (Span(3, 4, 2),)


def test_members_multiply_to_degree() -> None:
    degrees = {"tp": 2, "sp": 4, "dp": 16, "pp": 8}
    s = group_spans(degrees, ("tp", "sp", "dp", "pp"), (16, 8, 8))
    for name, g in degrees.items():
        prod = 1
        for span in s[name]:
            prod *= span.members
        assert prod == g


def test_misaligned_group_is_an_error() -> None:
    with pytest.raises(InfeasibleError, match="does not fit"):
        group_spans({"tp": 3, "sp": 1, "dp": 4, "pp": 1}, ("tp", "sp", "dp", "pp"), (4, 3))
