"""The HTML report of a serving simulation: summary tables, the latency CDFs and throughput against offered rate
(plotly, inlined so that the page opens offline). It renders results it is given; it never simulates."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from cosmic.report._html import _table, page


def _cdf(result: Any) -> Any:
    import plotly.graph_objects as go

    fig = go.Figure()
    lat = result.samples
    for name, label in (("ttft_s", "TTFT"), ("tpot_s", "TPOT"), ("e2e_s", "end-to-end")):
        x = np.sort(getattr(lat, name)[np.isfinite(getattr(lat, name))])
        if len(x):
            fig.add_trace(go.Scatter(x=x, y=np.arange(1, len(x) + 1) / len(x), mode="lines", name=label))
    fig.update_layout(title="Latency CDF per request", xaxis_title="seconds (log)", yaxis_title="fraction of requests",
                      template="plotly_white", height=420)
    fig.update_xaxes(type="log")
    return fig


def _sweep(sweep: list[tuple[float, Any]]) -> Any:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    rates = [r for r, _ in sweep]
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(go.Scatter(x=rates, y=[s.requests_per_s for _, s in sweep], name="throughput, req/s",
                             mode="lines+markers"))
    fig.add_trace(go.Scatter(x=rates, y=[s.goodput_requests_per_s for _, s in sweep], name="goodput, req/s",
                             mode="lines+markers"))
    fig.add_trace(go.Scatter(x=rates, y=[s.latency["ttft_p99_s"] for _, s in sweep], name="TTFT p99, s",
                             mode="lines+markers", line={"dash": "dot"}), secondary_y=True)
    fig.update_layout(title="Throughput and goodput vs offered rate", xaxis_title="offered rate, requests/s",
                      template="plotly_white", height=420)
    fig.update_yaxes(title_text="requests/s", secondary_y=False)
    fig.update_yaxes(title_text="TTFT p99, s", secondary_y=True)
    return fig


def render_serving_html(title: str, result: Any, sweep: list[tuple[float, Any]]) -> str:
    """The page of one serving `result` and a sweep of (offered rate, result) pairs."""
    figs = [_cdf(result)] if result.samples is not None else []
    if sweep:
        figs.append(_sweep(sweep))
    plots = "".join(f.to_html(full_html=False, include_plotlyjs=(i == 0)) for i, f in enumerate(figs))
    d = result.to_dict()
    rows = [(k, d[k]) for k in ("requests", "completed", "refused", "duration_s", "requests_per_s",
                                "input_tokens_per_s", "output_tokens_per_s", "goodput_requests_per_s",
                                "slo_attainment", "usd_per_hour", "usd_per_million_tokens")]
    return page(title, _table(rows) + "<h2>Latency (s)</h2>" + _table(sorted(d["latency"].items())) + plots)


def write_serving_report(path: str | Path, title: str, result: Any, sweep: list[tuple[float, Any]]) -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(render_serving_html(title, result, sweep), encoding="utf-8")
    return p
