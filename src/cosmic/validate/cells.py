"""Numbers in the cells of a validation CSV, written the way papers and slides write them.

One parser for every reader (training runs, collectives, and the MoE and serving tables): a reader declares each
numeric column's :class:`Num` kind and calls :func:`parse_cell`, which returns the value or raises
:class:`CellError` with a message that names the value and what the column accepts. The table reader turns that
into a skipped row naming the line and the column (``docs/validation.md``).

* Every numeric column: a plain decimal (``1.5``, ``2e-3``), with thousands separators (``1,024``, ``16,384.5``:
  groups of three digits, so a decimal comma such as ``1,5`` is refused rather than misread) or underscores
  (``1_024``); never negative, never infinite.
* ``Num.COUNT`` (tokens, sequences, layers, ranks, ...): also a scale suffix, decimal ``K`` (10^3), ``M`` (10^6),
  ``B`` or ``G`` (10^9), ``T`` (10^12), as in "16M tokens" or "1.5B", and binary ``Ki``, ``Mi``, ``Gi``, ``Ti``
  (2^10 ... 2^40), as in "4 Mi"; a space between number and suffix is allowed, case is ignored (``16m`` = 16M).
* ``Num.BYTES`` (message sizes): the binary and decimal suffixes of a count, optionally followed by ``B`` for
  bytes (``64MiB``, ``4 Mi``, ``1.5 GB``, ``8 B``); here ``B`` is the unit, never "billion".
* ``Num.PERCENT`` (``*_pct`` columns): a trailing ``%`` is allowed (``45.2%``).
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from enum import StrEnum


class Num(StrEnum):
    """What a numeric column holds, which decides the notations it accepts."""

    REAL = "real"
    COUNT = "count"
    BYTES = "bytes"
    PERCENT = "percent"


class CellError(ValueError):
    """A cell that is not a number of its column's kind; the message names the value and what is accepted."""


_DECIMAL = {"k": 10**3, "m": 10**6, "b": 10**9, "g": 10**9, "t": 10**12}
_BINARY = {"ki": 2**10, "mi": 2**20, "gi": 2**30, "ti": 2**40}
_NUMBER = r"(?P<num>[+-]?(?:\d{1,3}(?:,\d{3})+(?:\.\d*)?|(?:\d[\d_]*(?:\.[\d_]*)?|\.\d[\d_]*)(?:e[+-]?\d+)?))"
_COUNT_RE = re.compile(rf"{_NUMBER}\s*(?P<suffix>ki|mi|gi|ti|k|m|b|g|t)?", re.IGNORECASE)
_BYTES_RE = re.compile(rf"{_NUMBER}\s*(?P<suffix>ki|mi|gi|ti|k|m|g|t)?(?P<unit>b|bytes?)?", re.IGNORECASE)
_PLAIN_RE = re.compile(rf"{_NUMBER}(?P<pct>\s*%)?", re.IGNORECASE)

ACCEPTS = {
    Num.REAL: "a number such as 1.5 or 1,024",
    Num.COUNT: "a count such as 2048, 1,024, 16M, 1.5B or 4 Mi",
    Num.BYTES: "a size in bytes such as 65536, 64MiB, 4 Mi or 1.5 GB",
    Num.PERCENT: "a percentage such as 45.2 or 45.2%",
}
"""What each kind accepts, as the error message says it."""


def _decimal(text: str) -> Decimal:
    return Decimal(text.replace(",", "").replace("_", ""))


def parse_cell(text: str, kind: Num = Num.REAL) -> float:
    """The value of a cell of a numeric column of `kind` (see the module docstring for the notations).

    Raises:
        CellError: not a number of that kind, negative or not finite (the message quotes the cell).

    Example:
        >>> [parse_cell(t, Num.COUNT) for t in ("16M", "2K", "1.5B", "4 Mi", "1,024", "2048")]
        [16000000.0, 2000.0, 1500000000.0, 4194304.0, 1024.0, 2048.0]
        >>> parse_cell("64MiB", Num.BYTES), parse_cell("1.5 GB", Num.BYTES), parse_cell("45%", Num.PERCENT)
        (67108864.0, 1500000000.0, 45.0)
    """
    t = text.strip()
    pattern = {Num.COUNT: _COUNT_RE, Num.BYTES: _BYTES_RE}.get(kind, _PLAIN_RE)
    m = pattern.fullmatch(t)
    if m is None or (m.groupdict().get("pct") and kind is not Num.PERCENT):
        hint = ""
        if kind in (Num.REAL, Num.PERCENT) and _COUNT_RE.fullmatch(t):
            hint = " (scale suffixes such as K, M, B are for count columns only)"
        raise CellError(f"{t!r} is not {ACCEPTS[kind]}{hint}")
    try:
        value = _decimal(m.group("num"))
    except InvalidOperation:
        raise CellError(f"{t!r} is not {ACCEPTS[kind]}") from None
    suffix = (m.groupdict().get("suffix") or "").lower()
    if suffix:
        value *= _BINARY.get(suffix) or _DECIMAL[suffix]
    out = float(value)
    if out in (float("inf"), float("-inf")):
        raise CellError(f"{t!r} is not a finite number")
    if out < 0:
        raise CellError(f"{t!r} must not be negative")
    return out


__all__ = ["ACCEPTS", "CellError", "Num", "parse_cell"]
