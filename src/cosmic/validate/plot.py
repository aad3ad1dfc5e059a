"""HTML charts of a validation report: predicted vs measured (log-log, one trace per study) and error by study."""

from __future__ import annotations

from pathlib import Path

from cosmic.validate.report import Report


def write_plot(report: Report, path: str | Path) -> None:
    """Write a self-contained plotly HTML file with both charts (plotly.js inlined, as in the explore and study
    reports: the page opens offline)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(
        rows=1, cols=2,
        subplot_titles=("predicted vs measured (each in the row's metric)", "signed error by study (%)"),
    )
    by_study: dict[str, list] = {}
    for r in report.compared:
        by_study.setdefault(r.study, []).append(r)
    lo, hi = float("inf"), 0.0
    for study, rows in sorted(by_study.items()):
        xs = [r.measured for r in rows]
        ys = [r.predicted for r in rows]
        lo = min(lo, *xs, *ys)
        hi = max(hi, *xs, *ys)
        fig.add_trace(
            go.Scatter(
                x=xs, y=ys, mode="markers", name=study, legendgroup=study,
                text=[f"{r.row_id} {r.metric}: {r.error_pct:+.1f}%" for r in rows], hoverinfo="text",
            ),
            row=1, col=1,
        )
        fig.add_trace(
            go.Box(y=[r.error_pct for r in rows], name=study, legendgroup=study, showlegend=False,
                   boxpoints="all", text=[r.row_id for r in rows]),
            row=1, col=2,
        )
    if report.compared:
        fig.add_trace(go.Scatter(x=[lo, hi], y=[lo, hi], mode="lines", name="y = x",
                                 line={"dash": "dash", "color": "gray"}), row=1, col=1)
    fig.update_xaxes(type="log", title_text="measured", row=1, col=1)
    fig.update_yaxes(type="log", title_text="predicted", row=1, col=1)
    fig.update_yaxes(title_text="(predicted - measured) / measured, %", row=1, col=2)
    s = report.stats()
    title = (
        f"cosmic validate: {report.file} — {len(report.compared)}/{len(report.rows)} rows compared"
        + (f", median |error| {s['median_ape_pct']:.1f}%, p90 {s['p90_ape_pct']:.1f}%" if report.compared else "")
    )
    fig.update_layout(title=title, height=650, width=1400)
    fig.write_html(str(path), include_plotlyjs=True, full_html=True)
