"""`cosmic validate FILE.csv`: compare predictions with published training runs or collective benchmarks."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table


def validate(
    file: Annotated[Path, typer.Argument(help="training_runs.csv, collectives.csv or serving_runs.csv format "
                                         "(chosen by the header)")],
    json_out: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
    plot: Annotated[Path | None, typer.Option("--plot", help="write predicted-vs-measured charts (HTML)")] = None,
) -> None:
    """Simulate every row of FILE and compare with its measured metric (step time, throughput, TFLOP/s, MFU,
    bus bandwidth, or serving output-token throughput); rows that cannot be compared are listed with the reason."""
    from cosmic.commands._output import emit_json, out
    from cosmic.validate import validate_file

    report = validate_file(file)
    if plot is not None:
        from cosmic.validate.plot import write_plot

        write_plot(report, plot)
    if json_out:
        emit_json(report.to_dict())
        return
    t = Table(title=f"cosmic validate {file} ({report.kind.value})", title_justify="left")
    for col, just in (("row", "left"), ("study", "left"), ("metric", "left"), ("predicted", "right"),
                      ("measured", "right"), ("error", "right")):
        t.add_column(col, justify=just, overflow="fold")  # type: ignore[arg-type]
    for r in report.compared:
        t.add_row(r.row_id, r.study, r.metric or "", f"{r.predicted:,.4g}", f"{r.measured:,.4g}",
                  f"{r.error_pct:+.1f}%")
    out.print(t)
    skipped = [r for r in report.rows if r.skipped_reason is not None]
    if skipped:
        st = Table(title="rows not compared", title_justify="left")
        st.add_column("row", overflow="fold")
        st.add_column("study", overflow="fold")
        st.add_column("reason")
        for r in skipped:
            st.add_row(r.row_id, r.study, r.skipped_reason or "")
        out.print(st)
    g = Table(title="by study, medians (speed: + = predicted faster than measured)", title_justify="left")
    for col in ("study", "rows", "compared", "error", "speed", "|error|"):
        # study names are folded, not cut: two studies may share their first dozen characters
        g.add_column(col, justify="left" if col == "study" else "right", overflow="fold")
    for name, d in report.by("study").items():
        if d["compared"]:
            g.add_row(name, str(d["rows"]), str(d["compared"]), f"{d['median_error_pct']:+.1f}%",
                      f"{d['median_speed_error_pct']:+.1f}%", f"{d['median_ape_pct']:.1f}%")
        else:
            g.add_row(name, str(d["rows"]), "0", "-", "-", "-")
    out.print(g)
    s = report.stats()
    summary = f"{len(report.compared)}/{len(report.rows)} rows compared"
    if report.compared:
        summary += (f"; |error| median {s['median_ape_pct']:.1f}%, p90 {s['p90_ape_pct']:.1f}%, "
                    f"max {s['max_ape_pct']:.1f}%")
    out.print(summary)


def register(app: typer.Typer) -> None:
    app.command()(validate)
