"""Reports of studies: a self-contained plotly HTML page and the files `cosmic explore` leaves behind.

Reports read study records (:class:`cosmic.explore.StudySummary`) only; they never re-simulate.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from cosmic.report._format import axis_title, fmt_objective, fmt_objectives, fmt_value
from cosmic.report._html import render_html, write_report

if TYPE_CHECKING:
    from cosmic.explore import StudySummary


def write_outputs(summary: StudySummary, out_dir: str | Path) -> dict[str, Path]:
    """Write ``best.yaml`` (a `cosmic simulate` configuration), ``report.html`` and ``summary.json`` to `out_dir`."""
    d = Path(out_dir)
    d.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    if summary.best_config is not None:
        best = dict(summary.best_config)
        best["name"] = f"{summary.study_name}-best"
        best["description"] = (f"best of study {summary.study_name} ({summary.agent}, {summary.evaluations} "
                               f"evaluations): {fmt_objectives(summary.objectives, summary.best_values or ())}")
        paths["best_yaml"] = d / "best.yaml"
        paths["best_yaml"].write_text(yaml.safe_dump(best, sort_keys=False), encoding="utf-8")
    paths["report"] = write_report(summary, d / "report.html")
    paths["summary"] = d / "summary.json"
    data = summary.to_dict()
    data["files"] = {k: str(v) for k, v in paths.items()}
    paths["summary"].write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return paths


__all__ = ["axis_title", "fmt_objective", "fmt_objectives", "fmt_value", "render_html", "write_outputs",
           "write_report"]
