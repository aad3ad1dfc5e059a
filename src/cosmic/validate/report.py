"""Run every row of a validation CSV and summarise: counts, absolute-percentage-error statistics, study groups."""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cosmic.validate import collectives, training
from cosmic.validate.table import Kind, Row, read_table
from cosmic.validate.training import Comparison


def percentile(values: list[float], q: float) -> float:
    """Linear-interpolated percentile (q in 0..100) of a non-empty list.

    Example:
        >>> percentile([1.0, 2.0, 3.0, 4.0], 50), percentile([1.0, 2.0, 3.0, 4.0], 90)
        (2.5, 3.7)
    """
    xs = sorted(values)
    if len(xs) == 1:
        return xs[0]
    pos = (len(xs) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(xs) - 1)
    return round(xs[lo] + (xs[hi] - xs[lo]) * (pos - lo), 12)


@dataclass
class Report:
    file: str
    kind: Kind
    rows: list[Comparison]

    @property
    def compared(self) -> list[Comparison]:
        return [r for r in self.rows if r.skipped_reason is None]

    def stats(self, rows: list[Comparison] | None = None) -> dict[str, Any]:
        rows = self.compared if rows is None else rows
        ape = [abs(r.error_pct or 0.0) for r in rows]
        if not ape:
            return {"median_ape_pct": None, "p90_ape_pct": None, "max_ape_pct": None, "mean_ape_pct": None}
        return {
            "median_ape_pct": percentile(ape, 50),
            "p90_ape_pct": percentile(ape, 90),
            "max_ape_pct": max(ape),
            "mean_ape_pct": statistics.fmean(ape),
        }

    def by(self, key: str) -> dict[str, dict[str, Any]]:
        """Per study (key='study') or per accelerator/precision or collective group (key='group')."""
        groups: dict[str, list[Comparison]] = defaultdict(list)
        totals: dict[str, int] = defaultdict(int)
        for r in self.rows:
            totals[getattr(r, key) or "(not compared)"] += 1
        for r in self.compared:
            groups[getattr(r, key)].append(r)
        out: dict[str, dict[str, Any]] = {}
        for name in sorted(totals):
            rows = groups.get(name, [])
            d: dict[str, Any] = {"rows": totals[name], "compared": len(rows)}
            if rows:
                d["median_error_pct"] = statistics.median(r.error_pct or 0.0 for r in rows)
                d["median_speed_error_pct"] = statistics.median(r.speed_error_pct or 0.0 for r in rows)
                d.update(self.stats(rows))
            out[name] = d
        return out

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "file": self.file,
            "kind": self.kind.value,
            "rows_total": len(self.rows),
            "rows_compared": len(self.compared),
        }
        d.update(self.stats())
        d["by_study"] = self.by("study")
        d["by_group"] = self.by("group")
        d["rows"] = [r.to_dict() for r in self.rows]
        return d


def validate_file(path: str | Path) -> Report:
    """Compare every row of a training-runs or collectives CSV with cosmic's prediction.

    A row with a bad cell (``'16Q'`` in a count column) is listed as skipped with its line, column and value; the
    other rows are still compared.

    Raises:
        ConfigError: a file that cannot be read as a CSV of a known kind (one line naming the file and the line).
    """
    kind, rows = read_table(path)
    if kind is Kind.SERVING:
        from cosmic.validate import serving

        compare = serving.compare_row
    else:
        compare = training.compare_row if kind is Kind.TRAINING else collectives.compare_row
    results = [unreadable(r) if r.problems else compare(r) for r in rows]
    return Report(file=str(path), kind=kind, rows=results)


def unreadable(row: Row) -> Comparison:
    """A row with a bad cell, skipped with the reason that names its line, column and value."""
    return Comparison(row_id=row.row_id, study=row.study, line=row.line, skipped_reason="; ".join(row.problems))
