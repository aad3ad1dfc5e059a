"""Reading the validation CSVs: the kind of file from its header, typed cells, one-line errors.

A malformed file raises :class:`~cosmic.errors.ConfigError` naming the file, the line and the column, e.g.
``runs.csv: line 7, column 'tp': 'eight' is not a number``.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from cosmic.errors import ConfigError


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
TRAINING_NUMERIC = (
    "params_b", "layers", "hidden", "ffn_hidden", "heads", "kv_heads", "seq_len", "vocab", "global_batch_seqs",
    "global_batch_tokens", "micro_batch", "num_accel", "accel_mem_gb", "accel_per_node", "tp", "pp", "dp", "cp",
    "step_time_s", "tokens_per_s", "tokens_per_s_per_accel", "tflops_per_accel", "mfu_pct", "hfu_pct",
    "pct_of_peak_reported", "aggregate_pflops", "scaling_eff_pct",
)
COLLECTIVES_REQUIRED = ("row_id", "collective", "num_ranks", "busbw_GBps")
COLLECTIVES_NUMERIC = (
    "num_ranks", "accel_per_node", "message_bytes", "time_us", "algbw_GBps", "busbw_GBps", "busbw_inplace_GBps",
)
SERVING_REQUIRED = ("row_id", "model", "num_accel", "accel", "scenario")
SERVING_METRICS = ("throughput_tokens_per_s", "throughput_output_tokens_per_s", "throughput_requests_per_s")
SERVING_NUMERIC = (
    "params_b", "layers", "hidden", "ffn_hidden", "heads", "kv_heads", "head_dim", "vocab", "num_accel",
    "accel_mem_gb", "tp", "pp", "ep", "dp", "input_len", "output_len", "batch_size", "max_num_seqs", "concurrency",
    "throughput_tokens_per_s", "throughput_output_tokens_per_s", "throughput_requests_per_s", "ttft_ms_p50",
    "ttft_ms_p99", "tpot_ms_p50", "tpot_ms_p99",
)
COUNT_OR_TEXT = {"num_nodes": ("multi",)}
"""Columns that hold a count or one of a few words (``num_nodes = multi`` when a slide only says "multi-node")."""


@dataclass
class Row:
    """One data row: raw text cells, the numbers parsed from the numeric columns and its line in the file."""

    line: int
    text: dict[str, str]
    num: dict[str, float] = field(default_factory=dict)

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


def _number(text: str, *, file: str, line: int, column: str) -> float:
    t = text.strip().replace("_", "")
    try:
        v = float(t)
    except ValueError:
        raise ConfigError(f"{text.strip()!r} is not a number", file=file,
                          key=f"line {line}, column {column!r}") from None
    if v != v or v in (float("inf"), float("-inf")):
        raise ConfigError(f"{text.strip()!r} is not a finite number", file=file, key=f"line {line}, column {column!r}")
    if v < 0:
        raise ConfigError(f"{text.strip()!r} must not be negative", file=file, key=f"line {line}, column {column!r}")
    return v


def read_table(path: str | Path) -> tuple[Kind, list[Row]]:
    """Read a training-runs, collectives or serving-runs CSV (chosen by its header) into typed rows.

    Raises:
        ConfigError: unreadable file, unknown header, a required column missing, a non-numeric value in a
            numeric column (naming the line and the column), or a row with more cells than the header.
            Empty cells are not errors: a row without what a comparison needs is listed with the reason.
    """
    file = str(path)
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ConfigError("file not found", file=file) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read: {exc.__class__.__name__}", file=file) from None
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
    numeric: tuple[str, ...]
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
        if len(cells) > len(header):
            raise ConfigError(
                f"line {line}: {len(cells)} cells but the header has {len(header)} columns", file=file
            )
        cells = cells + [""] * (len(header) - len(cells))
        row = Row(line=line, text=dict(zip(header, cells, strict=True)))
        for col in numeric:
            v = row.get(col)
            if v:
                row.num[col] = _number(v, file=file, line=line, column=col)
        for col, words in COUNT_OR_TEXT.items():
            v = row.get(col)
            if v and v.lower() not in words:
                row.num[col] = _number(v, file=file, line=line, column=col)
        rows.append(row)
    return kind, rows
