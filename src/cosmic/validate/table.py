"""Reading the validation CSVs: the kind of file from its header, typed cells, one-line errors.

A file that cannot be read as a whole (not found, not UTF-8 text, no known header, a required column missing)
raises :class:`~cosmic.errors.ConfigError` naming the file and, where there is one, the line. A row with a bad cell
(``'eight'`` in ``tp``) or more cells than the header is kept with its ``problems``, e.g.
``line 7, column 'tp': 'eight' is not a count such as 2048, 1,024, 16M, 1.5B or 4 Mi``: ``validate_file`` lists it as
skipped with that reason and compares the other rows. Numeric cells are parsed by :mod:`cosmic.validate.cells`,
which every reader shares.
"""

from __future__ import annotations

import contextlib
import csv
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from cosmic.errors import ConfigError
from cosmic.validate.cells import CellError, Num, parse_cell


class Kind(StrEnum):
    TRAINING = "training"
    COLLECTIVES = "collectives"
    SERVING = "serving"


TRAINING_REQUIRED = ("row_id", "model", "num_accel", "accel", "seq_len")
TRAINING_METRICS = (
    "step_time_s",
    "tokens_per_s",
    "tokens_per_s_per_accel",
    "tflops_per_accel",
    "mfu_pct",
    "pct_of_peak_reported",
)
_C, _R, _P, _B = Num.COUNT, Num.REAL, Num.PERCENT, Num.BYTES
TRAINING_NUMERIC: dict[str, Num] = {
    "params_b": _R, "layers": _C, "hidden": _C, "ffn_hidden": _C, "heads": _C, "kv_heads": _C, "seq_len": _C,
    "vocab": _C, "global_batch_seqs": _C, "global_batch_tokens": _C, "micro_batch": _C, "num_accel": _C,
    "accel_mem_gb": _R, "accel_per_node": _C, "tp": _C, "pp": _C, "dp": _C, "cp": _C, "step_time_s": _R,
    "tokens_per_s": _C, "tokens_per_s_per_accel": _C, "tflops_per_accel": _R, "mfu_pct": _P, "hfu_pct": _P,
    "pct_of_peak_reported": _P, "aggregate_pflops": _R, "scaling_eff_pct": _P,
}
"""Numeric columns of a training-runs CSV and their kinds (``params_b`` is already in billions: a plain number)."""
COLLECTIVES_REQUIRED = ("row_id", "collective", "num_ranks", "busbw_GBps")
COLLECTIVES_NUMERIC: dict[str, Num] = {
    "num_ranks": _C, "accel_per_node": _C, "message_bytes": _B, "time_us": _R, "algbw_GBps": _R, "busbw_GBps": _R,
    "busbw_inplace_GBps": _R,
}
SERVING_REQUIRED = ("row_id", "model", "num_accel", "accel", "scenario")
SERVING_METRICS = ("throughput_tokens_per_s", "throughput_output_tokens_per_s", "throughput_requests_per_s")
SERVING_NUMERIC: dict[str, Num] = {
    "params_b": _R, "layers": _C, "hidden": _C, "ffn_hidden": _C, "heads": _C, "kv_heads": _C, "head_dim": _C,
    "vocab": _C, "num_accel": _C, "accel_mem_gb": _R, "tp": _C, "pp": _C, "ep": _C, "dp": _C, "input_len": _C,
    "output_len": _C, "batch_size": _C, "max_num_seqs": _C, "concurrency": _C, "throughput_tokens_per_s": _R,
    "throughput_output_tokens_per_s": _R, "throughput_requests_per_s": _R, "ttft_ms_p50": _R, "ttft_ms_p99": _R,
    "tpot_ms_p50": _R, "tpot_ms_p99": _R,
}
COUNT_OR_TEXT: dict[str, tuple[str, ...]] = {"num_nodes": ("multi",)}
"""Columns that hold a count or one of a few words (``num_nodes = multi`` when a slide only says "multi-node")."""


@dataclass
class Row:
    """One data row: raw text cells, the numbers parsed from the numeric columns and its line in the file."""

    line: int
    text: dict[str, str]
    num: dict[str, float] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    """Why the row cannot be read (a bad cell: line, column and value), empty when it can."""

    def get(self, key: str) -> str:
        return (self.text.get(key) or "").strip()

    def n(self, key: str) -> float | None:
        return self.num.get(key)

    def i(self, key: str) -> int | None:
        v = self.num.get(key)
        return None if v is None else int(round(v))

    @property
    def row_id(self) -> str:
        return self.get("row_id") or f"line{self.line}"

    @property
    def study(self) -> str:
        return self.get("study") or "(none)"


def parse_numbers(row: Row, numeric: dict[str, Num], count_or_text: dict[str, tuple[str, ...]] | None = None) -> None:
    """Fill ``row.num`` from the row's numeric columns; a bad cell goes to ``row.problems`` naming the line, the
    column and the value (every reader calls this, so every file kind accepts the same notations)."""
    words = count_or_text or {}
    for col, kind in [*numeric.items(), *((c, Num.COUNT) for c in words)]:
        v = row.get(col)
        if not v or v.lower() in words.get(col, ()):
            continue
        try:
            row.num[col] = parse_cell(v, kind)
        except CellError as exc:
            extra = f" or one of: {', '.join(words[col])}" if col in words else ""
            row.problems.append(f"line {row.line}, column {col!r}: {exc}{extra}")


def read_text(path: str | Path) -> str:
    """The text of a UTF-8 file (a byte-order mark is dropped).

    Raises:
        ConfigError: not found, unreadable, or not UTF-8 text (naming the first bad byte's offset, line and column).
    """
    file = str(path)
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise ConfigError("file not found", file=file) from None
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror or exc.__class__.__name__}", file=file) from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(not_utf8(data, exc), file=file) from None


def not_utf8(data: bytes, exc: UnicodeDecodeError) -> str:
    """Where and how a file is not UTF-8 text, for the one-line error: the first bad byte, its offset in the file,
    its line and column (in characters), and the likely encoding.

    Example:
        >>> data = bytes([97, 10, 98, 233, 10])  # "a", newline, "b", then Latin-1's e-acute
        >>> not_utf8(data, UnicodeDecodeError("utf-8", data, 3, 4, "invalid continuation byte"))[:60]
        'not UTF-8 text: byte 0xe9 at offset 3 (line 2, column 2) is '
    """
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "not UTF-8 text: the file is UTF-16 (it starts with a UTF-16 byte-order mark); save it as UTF-8"
    at = exc.start
    if data.startswith(b"\xef\xbb\xbf") and len(exc.object) == len(data) - 3:
        at += 3  # utf-8-sig reports offsets after the byte-order mark it dropped
    line_start = data.rfind(b"\n", 0, at) + 1
    line = data.count(b"\n", 0, at) + 1
    column = len(data[line_start:at].decode("utf-8", "replace")) + 1
    guess = ""
    with contextlib.suppress(UnicodeDecodeError):
        data.decode("cp1252")
        guess = " (it may be Latin-1 or Windows-1252)"
    return (f"not UTF-8 text: byte 0x{data[at]:02x} at offset {at} (line {line}, column {column}) is not valid "
            f"UTF-8; save the file as UTF-8{guess}")


def read_table(path: str | Path) -> tuple[Kind, list[Row]]:
    """Read a training-runs, collectives or serving-runs CSV (chosen by its header) into typed rows.

    Rows with a bad cell or too many cells are returned with their ``problems`` (``validate_file`` skips them with
    that reason). Empty cells are not errors: a row without what a comparison needs is listed with the reason.

    Raises:
        ConfigError: unreadable or non-UTF-8 file, unknown header, a required column missing, a malformed CSV
            quote (naming the line).
    """
    file = str(path)
    text = read_text(path)
    reader = csv.reader(text.splitlines(keepends=True))
    try:
        header = next(reader)
    except StopIteration:
        raise ConfigError("empty file (expected a CSV header)", file=file) from None
    except csv.Error as exc:
        raise ConfigError(f"line 1: {exc}", file=file) from None
    header = [h.strip() for h in header]
    cols = set(header)
    required: tuple[str, ...]
    numeric: dict[str, Num]
    if "scenario" in cols and any(m in cols for m in SERVING_METRICS):
        kind = Kind.SERVING
        required, numeric = SERVING_REQUIRED, SERVING_NUMERIC
    elif "collective" in cols or "busbw_GBps" in cols:
        kind = Kind.COLLECTIVES
        required, numeric = COLLECTIVES_REQUIRED, COLLECTIVES_NUMERIC
    elif "num_accel" in cols or "step_time_s" in cols or "tflops_per_accel" in cols:
        kind = Kind.TRAINING
        required, numeric = TRAINING_REQUIRED, TRAINING_NUMERIC
    else:
        raise ConfigError(
            "line 1: header is neither a training-runs CSV (needs num_accel, accel, ...) nor a collectives CSV "
            "(needs collective, num_ranks, busbw_GBps, ...)",
            file=file,
        )
    missing = [c for c in required if c not in cols]
    if missing:
        raise ConfigError(f"line 1: required column {missing[0]!r} is missing ({kind.value} CSV)", file=file)
    if kind is Kind.TRAINING and not any(m in cols for m in TRAINING_METRICS):
        raise ConfigError(
            f"line 1: no measured-metric column (one of {', '.join(TRAINING_METRICS)})", file=file
        )
    rows: list[Row] = []
    start = 2
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise ConfigError(f"line {start}: {exc}", file=file) from None
        line = start
        start = reader.line_num + 1
        if not any(c.strip() for c in cells):
            continue
        extra = len(cells) - len(header)
        cells = cells + [""] * (len(header) - len(cells))
        row = Row(line=line, text=dict(zip(header, cells[: len(header)], strict=True)))
        if extra > 0:
            row.problems.append(f"line {line}: {len(cells)} cells but the header has {len(header)} columns")
        else:
            parse_numbers(row, numeric, COUNT_OR_TEXT)
        rows.append(row)
    return kind, rows
