"""A self-contained HTML report of a study (plotly, with plotly.js inlined: opens offline)."""

from __future__ import annotations

import html
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cosmic.report._format import axis_title, fmt_objectives, fmt_value

if TYPE_CHECKING:
    from cosmic.explore import StudySummary

LOG_AXIS = {"type": "log", "dtick": 1, "exponentformat": "power", "showexponent": "all",
            "minor": {"ticks": "outside", "dtick": "D1", "showgrid": True}}
"""A log axis labelled once per decade (10^k) with unlabelled minor ticks at 2..9: plotly's default labels the
minor ticks too ("5, 2, 10k"), which reads as an unordered axis."""


def _positive(values: list[float]) -> bool:
    return bool(values) and min(values) > 0


def _convergence(s: StudySummary) -> Any:
    import plotly.graph_objects as go

    name, _direction = s.objectives[0]
    x = list(range(1, len(s.values) + 1))
    fig = go.Figure()
    feas_x = [i + 1 for i, v in enumerate(s.values) if v is not None]
    feas_y = [v[0] for v in s.values if v is not None]
    fig.add_trace(go.Scattergl(x=feas_x, y=feas_y, mode="markers", name="evaluation",
                               marker={"size": 3, "opacity": 0.35, "color": "#7f8c8d"}))
    fig.add_trace(go.Scatter(x=x, y=[t if t is not None else None for t in s.trace], mode="lines",
                             name="best so far", line={"width": 3, "color": "#c0392b"}))
    fig.update_layout(title=f"Convergence: best {name} vs evaluations ({s.agent})", xaxis_title="evaluation",
                      yaxis_title=axis_title(name), template="plotly_white", height=420)
    if _positive(feas_y) and max(feas_y) / min(feas_y) > 20:
        fig.update_yaxes(**LOG_AXIS)
    return fig


def _breakdown(s: StudySummary) -> Any:
    import plotly.graph_objects as go

    res = s.best_result or {}
    bd = res.get("breakdown") or {}
    keys = list(bd)
    fig = go.Figure(go.Bar(x=[bd[k] for k in keys], y=[k.removesuffix("_s").replace("_", " ") for k in keys],
                           orientation="h", marker_color="#2e86c1",
                           text=[f"{bd[k]:.4g} s" for k in keys], textposition="auto"))
    total = res.get("step_time_s")
    title = "Best configuration: step-time breakdown (critical stage)"
    if total is not None:
        title += f", total {total:.4g} s"
    fig.update_layout(title=title, xaxis_title="seconds", template="plotly_white", height=380,
                      yaxis={"autorange": "reversed"})
    return fig


def _pareto(s: StudySummary) -> Any:
    import plotly.graph_objects as go

    (n0, _), (n1, _) = s.objectives[0], s.objectives[1]
    feas = [(i, v) for i, v in enumerate(s.values) if v is not None]
    front = set(s.pareto)
    fig = go.Figure()
    fig.add_trace(go.Scattergl(x=[v[0] for i, v in feas if i not in front], y=[v[1] for i, v in feas if i not in front],
                               mode="markers", name="feasible", marker={"size": 4, "opacity": 0.4,
                                                                         "color": "#95a5a6"}))
    pf = sorted((v for i in front if (v := s.values[i]) is not None), key=lambda v: v[0])  # the front is feasible
    fig.add_trace(go.Scatter(x=[v[0] for v in pf], y=[v[1] for v in pf], mode="lines+markers",
                             name="Pareto front", marker={"size": 8, "color": "#c0392b"}))
    fig.update_layout(title=f"Pareto front: {n0} vs {n1}", xaxis_title=axis_title(n0), yaxis_title=axis_title(n1),
                      template="plotly_white", height=450)
    if _positive([v[0] for _, v in feas]):
        fig.update_xaxes(**LOG_AXIS)
    if _positive([v[1] for _, v in feas]):
        fig.update_yaxes(**LOG_AXIS)
    return fig


def _table(rows: list[tuple[str, Any]]) -> str:
    body = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(_fmt(v))}</td></tr>" for k, v in rows
    )
    return f"<table>{body}</table>"


def _fmt(v: Any) -> str:
    return v if isinstance(v, str) else fmt_value(v)


_RESULT_ROWS = (
    ("step time", "step_time_s", lambda v: f"{v:.6g} s"),
    ("tokens/s", "tokens_per_s", lambda v: f"{v:,.0f}"),
    ("MFU", "mfu", lambda v: f"{v * 100:.1f}%"),
    ("memory per device", "memory_per_device_gb", lambda v: f"{v:,.2f} GB"),
    ("memory capacity", "memory_capacity_gb", lambda v: f"{v:,.0f} GB"),
    ("network cost", "network_cost_usd", lambda v: f"${v:,.0f}"),
)


def render_html(s: StudySummary) -> str:
    """The report of study `s` as one HTML document (plotly.js inlined once)."""
    figs = [_convergence(s)]
    if s.best_result:
        figs.append(_breakdown(s))
    if len(s.objectives) > 1 and s.pareto:
        figs.append(_pareto(s))
    parts = []
    for i, f in enumerate(figs):
        parts.append(f.to_html(full_html=False, include_plotlyjs=(i == 0)))
    summary_rows: list[tuple[str, Any]] = [
        ("study", s.study_name), ("space", s.space_name), ("agent", s.agent), ("hyper-parameters", s.hyper),
        ("seed", s.seed), ("objectives", ", ".join(f"{n} ({d})" for n, d in s.objectives)),
        ("evaluations", s.evaluations), ("feasible / over memory / rejected",
                                         f"{s.counts['ok']} / {s.counts['memory']} / {s.counts['rejected']}"),
        ("wall time (this run)", f"{s.wall_s:.2f} s ({s.evals_per_s:,.0f} evaluations/s)"),
        ("stopped by", s.stopped + (" (space enumerated: best is certified)" if s.complete else "")),
        ("best", fmt_objectives(s.objectives, s.best_values) if s.best_values is not None
         else "no feasible point"),
        ("optimum", "certified (proven optimal)" if getattr(s, "certified", False) else
         f"proven gap {s.gap_pct:.3g}% (lower bound {s.lower_bound:.6g})" if getattr(s, "gap_pct", None) is not None
         else "not certified"),
        ("storage", s.storage or "(not stored)"),
    ]
    knob_rows = sorted((s.best_knobs or {}).items())
    res = s.best_result or {}
    res_rows: list[tuple[str, Any]] = [(label, fmt(res[k])) for label, k, fmt in _RESULT_ROWS
                                       if isinstance(res.get(k), (int, float))]
    if not res_rows:  # a result of another workload (serving): its figures as stored
        res_rows = [(k, f"{v:.6g}") for k, v in sorted(res.items()) if isinstance(v, (int, float))]
    title = f"cosmic explore: {s.study_name}"
    return page(title, _table(summary_rows) + "".join(parts) + "<h2>Best configuration: knobs</h2>"
                + _table(knob_rows) + "<h2>Best configuration: result</h2>" + _table(res_rows))


def page(title: str, body: str) -> str:
    """One self-contained HTML document: `title` as its heading, then `body` (HTML)."""
    style = ("body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}"
             "table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #ddd;padding:4px 10px;"
             "text-align:left;font-size:14px}th{background:#f4f6f7}h2{margin-top:1.6em}")
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{style}</style></head><body>"
        f"<h1>{html.escape(title)}</h1>{body}</body></html>"
    )


def write_report(s: StudySummary, path: str | Path) -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(render_html(s), encoding="utf-8")
    return p
