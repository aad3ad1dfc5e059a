"""The one cell parser every validation reader uses: paper notations for counts, sizes and percentages."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cosmic.validate.cells import CellError, Num, parse_cell


@pytest.mark.parametrize(("text", "value"), [
    ("16M", 16e6), ("2K", 2e3), ("2k", 2e3), ("1.5B", 1.5e9), ("1.5 B", 1.5e9), ("3G", 3e9), ("1T", 1e12),
    ("4 Mi", 4 * 2**20), ("4Mi", 4 * 2**20), ("2Ki", 2048), ("1Gi", 2**30), ("1,024", 1024), ("16,384", 16384),
    ("1_024", 1024), ("2048", 2048), (" 8 ", 8), ("1.3M", 1_300_000), ("1e3", 1000),
])
def test_counts(text: str, value: float) -> None:
    assert parse_cell(text, Num.COUNT) == value


@pytest.mark.parametrize(("text", "value"), [
    ("65536", 65536), ("64MiB", 64 * 2**20), ("4 Mi", 4 * 2**20), ("1.5 GB", 1.5e9), ("8 B", 8), ("8 bytes", 8),
    ("2KiB", 2048), ("1K", 1000), ("3B", 3),  # B is the unit here, never "billion"
])
def test_byte_sizes_read_b_as_bytes(text: str, value: float) -> None:
    assert parse_cell(text, Num.BYTES) == value


@pytest.mark.parametrize(("text", "kind", "message"), [
    ("16Q", Num.COUNT, "'16Q' is not a count such as 2048, 1,024, 16M, 1.5B or 4 Mi"),
    ("1,5", Num.REAL, "'1,5' is not a number such as 1.5 or 1,024"),  # a decimal comma is not read as 15
    ("16M", Num.REAL, "'16M' is not a number such as 1.5 or 1,024 (scale suffixes such as K, M, B are for count "
                      "columns only)"),
    ("45%", Num.REAL, "'45%' is not a number such as 1.5 or 1,024"),
    ("-2", Num.COUNT, "'-2' must not be negative"),
    ("1e400", Num.REAL, "'1e400' is not a finite number"),
    ("nan", Num.REAL, "'nan' is not a number such as 1.5 or 1,024"),
])
def test_refusals_quote_the_cell_and_say_what_is_accepted(text: str, kind: Num, message: str) -> None:
    with pytest.raises(CellError) as exc:
        parse_cell(text, kind)
    assert str(exc.value) == message


def test_percent() -> None:
    assert parse_cell("41.5%", Num.PERCENT) == 41.5 == parse_cell("41.5", Num.PERCENT)


@given(st.floats(min_value=0, max_value=1e15, allow_nan=False))
def test_plain_numbers_read_as_python_reads_them(x: float) -> None:
    for kind in Num:
        assert parse_cell(repr(x), kind) == x


@given(st.integers(min_value=0, max_value=10**12))
def test_thousands_separators_and_suffixes_agree(n: int) -> None:
    assert parse_cell(f"{n:,}", Num.COUNT) == n
    assert parse_cell(f"{n}K", Num.COUNT) == n * 1000 == parse_cell(f"{n:,} k", Num.COUNT)
    assert parse_cell(f"{n} Mi", Num.BYTES) == n * 2**20 == parse_cell(f"{n}MiB", Num.BYTES)
