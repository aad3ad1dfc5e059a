"""The case-study HTML report: one self-contained page (plotly.js inlined, no network access needed).

Per setting: full-stack speedup over each single-stack mode per cell (flagged cells in red), a table of baselines,
bests and speedups, the certified optimum (or proven gap) of each mode next to each agent's best, step-time
breakdowns of the baseline and of each mode's best, convergence per agent, Pareto fronts when the objective is a
product of two quantities, and the top configurations with what changed against the baseline. Reads the summary
and the job results only; never re-simulates.
"""

from __future__ import annotations

import html
import math
from pathlib import Path
from typing import Any

from cosmic.sim import BREAKDOWN_KEYS
from cosmic.study._jobs import JobResult
from cosmic.study._spaces import MODES, SECOND_AXIS, SINGLE_MODES

_COLORS = {"workload": "#2e86c1", "collective": "#28b463", "network": "#d68910", "full": "#c0392b",
           "baseline": "#7f8c8d"}
_PART_COLORS = ["#1f77b4", "#aec7e8", "#ff7f0e", "#2ca02c", "#98df8a", "#d62728", "#9467bd", "#8c564b", "#e377c2"]
_MAX_POINTS = 300
_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#222;max-width:1400px}
h1{font-size:1.6em} h2{margin-top:1.6em;border-bottom:2px solid #ddd} h3{margin-top:1.2em}
table{border-collapse:collapse;margin:8px 0;font-size:.86em} th,td{border:1px solid #ccc;padding:3px 7px;
text-align:left;vertical-align:top} th{background:#f4f6f7} tr.flagged td{background:#fdedec}
.flag{color:#c0392b;font-weight:600} .note{color:#555;font-size:.9em} code{font-size:.92em}
"""


def _label(c: dict[str, Any]) -> str:
    lab = f"{c['model']} / {c['system'].upper()}"
    if c.get("batch_label"):
        lab += f" / b{c['global_batch']}"
    return lab


def _fmt(v: Any, digits: int = 4) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        if not math.isfinite(v):
            return str(v)
        return f"{v:.{digits}g}"
    if isinstance(v, list):
        return "[" + ", ".join(_fmt(x, digits) for x in v) + "]"
    return str(v)


def _esc(v: Any) -> str:
    return html.escape(_fmt(v))


def _fig_html(fig: Any) -> str:
    return str(fig.to_html(full_html=False, include_plotlyjs=False, config={"displaylogo": False}))


_BAR_PX = 16
"""Height of one bar in the horizontal bar charts: a label per bar, never overlapping its neighbours."""


def _speedup_fig(cells: list[dict[str, Any]], title: str) -> Any:
    """Horizontal grouped bars, one group per cell (labels never overlap however many cells), log speedup axis."""
    import plotly.graph_objects as go

    y = [_label(c) for c in cells]
    fig = go.Figure()
    for mode in SINGLE_MODES:
        x = [c["speedup_full_over"].get(mode) for c in cells]
        txt = [("⚑ " if any(f["mode"] == mode for f in c["flags"]) else "") + _fmt(v, 3) + "×" if v else ""
               for v, c in zip(x, cells, strict=True)]
        fig.add_trace(go.Bar(y=y, x=x, orientation="h", name=f"full over {mode}", marker_color=_COLORS[mode],
                             text=txt, textposition="outside", cliponaxis=False))
    fig.add_vline(x=1.0, line_dash="dash", line_color="#555")
    fig.update_layout(title=title, barmode="group", template="plotly_white",
                      height=160 + _BAR_PX * len(SINGLE_MODES) * len(cells), legend_orientation="h",
                      legend={"y": -80 / (160 + _BAR_PX * 3 * len(cells)), "yanchor": "top"},
                      margin={"l": 150, "r": 60, "t": 60, "b": 90})
    fig.update_xaxes(type="log", dtick="D2", title_text="speedup of full-stack, × (best single-stack objective / "
                                                        "best full-stack objective; 1× dashed)")
    fig.update_yaxes(autorange="reversed", title_text="model / system")
    return fig


def _breakdown_fig(cells: list[dict[str, Any]], title: str) -> Any:
    """Horizontal stacked bars: per cell the baseline and each mode's best, every component as a fraction of the
    baseline's step time; a two-level axis (cell, variant) with one row per bar."""
    import plotly.graph_objects as go

    ys: list[list[str]] = [[], []]
    parts: dict[str, list[float | None]] = {k: [] for k in BREAKDOWN_KEYS}
    for c in cells:
        base = c["baseline"]["metrics"]
        ref = base["step_time_s"] or 1.0
        variants = [("baseline", base)] + [(m, c["modes"][m]["metrics"]) for m in MODES
                                           if c["modes"].get(m, {}).get("metrics")]
        for name, m in variants:
            ys[0].append(_label(c))
            ys[1].append(name)
            for k in BREAKDOWN_KEYS:
                parts[k].append(m.get(k, 0.0) / ref)
    fig = go.Figure()
    for k, col in zip(BREAKDOWN_KEYS, _PART_COLORS, strict=True):
        if any(v for v in parts[k]):
            fig.add_trace(go.Bar(y=ys, x=parts[k], orientation="h", name=k.removesuffix("_s").replace("_", " "),
                                 marker_color=col))
    height = 160 + _BAR_PX * len(ys[0])
    fig.update_layout(title=title, barmode="stack", template="plotly_white", height=height,
                      legend_orientation="h", legend={"y": -80 / height, "yanchor": "top"},
                      margin={"l": 200, "r": 30, "t": 60, "b": 90})
    fig.update_xaxes(title_text="step time / baseline step time (1 = the baseline's step time, s / s)")
    fig.update_yaxes(autorange="reversed", title_text="model / system, configuration")
    return fig


def _convergence_fig(cells: list[dict[str, Any]], results: list[JobResult], title: str) -> Any:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    cols = min(4, len(cells))
    rows = math.ceil(len(cells) / cols)
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=[_label(c) for c in cells],
                        vertical_spacing=min(0.12, 0.5 / max(rows, 1)))
    dash = {0: "solid", 1: "dot", 2: "dash", 3: "dashdot"}
    shown: set[str] = set()
    palette = ["#c0392b", "#2e86c1", "#28b463", "#8e44ad", "#d68910", "#17a589", "#34495e", "#e74c3c",
               "#5d6d7e", "#a04000"]
    agents = sorted({r.job.agent for r in results})
    for ci, c in enumerate(cells):
        base = c["baseline"]["objective"] or 1.0
        for r in results:
            j = r.job
            if (j.setting, j.model, j.system, j.objective) != (c["setting"], c["model"], c["system"],
                                                                c["objective"]) or j.mode != "full":
                continue
            if (j.global_batch or c["global_batch"]) != c["global_batch"]:
                continue
            n = len(r.trace)
            step = max(1, math.ceil(n / _MAX_POINTS))
            idx = list(range(0, n, step))
            if n and idx[-1] != n - 1:
                idx.append(n - 1)
            y = [None if (t := r.trace[i]) is None else t / base for i in idx]
            fig.add_trace(go.Scatter(x=[i + 1 for i in idx], y=y, mode="lines", name=j.agent,
                                     legendgroup=j.agent, showlegend=j.agent not in shown,
                                     line={"color": palette[agents.index(j.agent) % len(palette)],
                                           "dash": dash.get(j.seed % 4, "solid")}),
                          row=ci // cols + 1, col=ci % cols + 1)
            shown.add(j.agent)
    fig.update_layout(title=title, template="plotly_white", height=260 * rows + 80, legend_orientation="h")
    fig.update_xaxes(type="log", dtick=1)
    fig.update_xaxes(title_text="evaluations", row=rows)
    fig.update_yaxes(title_text="best / baseline objective", col=1)
    return fig


def _pareto_fig(cells: list[dict[str, Any]], results: list[JobResult], title: str, axis: tuple[str, str]) -> Any:
    import numpy as np
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    from cosmic.explore import pareto_front

    key, label = axis
    cols = min(4, len(cells))
    rows = math.ceil(len(cells) / cols)
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=[_label(c) for c in cells],
                        vertical_spacing=min(0.12, 0.5 / max(rows, 1)))
    for ci, c in enumerate(cells):
        pts = [(t["step_time_s"], t[key]) for r in results
               if (r.job.setting, r.job.model, r.job.system, r.job.objective, r.job.mode)
               == (c["setting"], c["model"], c["system"], c["objective"], "full")
               and (r.job.global_batch or c["global_batch"]) == c["global_batch"]
               for t in r.trials if t["status"] == "ok"]
        if not pts:
            continue
        front = set(pareto_front(pts, np.array([1.0, 1.0])))
        rest = [p for i, p in enumerate(pts) if i not in front]
        if len(rest) > 4 * _MAX_POINTS:
            rest = rest[:: math.ceil(len(rest) / (4 * _MAX_POINTS))]
        pf = sorted(pts[i] for i in front)
        r_, c_ = ci // cols + 1, ci % cols + 1
        fig.add_trace(go.Scattergl(x=[p[0] for p in rest], y=[p[1] for p in rest], mode="markers",
                                   marker={"size": 3, "color": "#95a5a6", "opacity": 0.4}, name="trial",
                                   showlegend=ci == 0, legendgroup="trial"), row=r_, col=c_)
        fig.add_trace(go.Scatter(x=[p[0] for p in pf], y=[p[1] for p in pf], mode="lines+markers",
                                 marker={"size": 6, "color": "#c0392b"}, name="Pareto front", showlegend=ci == 0,
                                 legendgroup="front"), row=r_, col=c_)
        b = c["baseline"]["metrics"]
        fig.add_trace(go.Scatter(x=[b["step_time_s"]], y=[b[key]], mode="markers", name="baseline",
                                 marker={"size": 11, "symbol": "star", "color": "#2c3e50"}, showlegend=ci == 0,
                                 legendgroup="base"), row=r_, col=c_)
    fig.update_layout(title=title, template="plotly_white", height=280 * rows + 80, legend_orientation="h")
    fig.update_xaxes(type="log")
    fig.update_yaxes(type="log")
    fig.update_xaxes(title_text="step time, s", row=rows)
    fig.update_yaxes(title_text=label, col=1)
    return fig


def _scaling_fig(cells: list[dict[str, Any]], title: str) -> Any:
    import plotly.graph_objects as go

    fig = go.Figure()
    models = list(dict.fromkeys(c["model"] for c in cells))
    dash = {"workload": "solid", "collective": "dot", "network": "dash"}
    for m in models:
        cs = sorted((c for c in cells if c["model"] == m), key=lambda c: c["global_batch"])
        for mode in SINGLE_MODES:
            fig.add_trace(go.Scatter(x=[c["global_batch"] for c in cs],
                                     y=[c["speedup_full_over"].get(mode) for c in cs], mode="lines+markers",
                                     name=f"{m}: full over {mode}", line={"dash": dash[mode]}))
    fig.add_hline(y=1.0, line_dash="dash", line_color="#555")
    fig.update_layout(title=title, template="plotly_white", height=460, xaxis_title="global batch, sequences",
                      yaxis_title="speedup of full-stack, ×")
    fig.update_xaxes(type="log")
    fig.update_yaxes(type="log")
    return fig


UNVALIDATED = "outside every validated regime"
"""The marker of a best configuration no published run vouches for (its evidence has no runs; docs/validation.md)."""


def _unvalidated(entry: dict[str, Any]) -> str:
    """The marker for a best or top entry whose evidence counts no published run ('' otherwise)."""
    ev = entry.get("evidence")
    if ev is None or ev.get("runs"):
        return ""
    return f" <span class=flag title='{html.escape(str(ev.get('regime')))}'>⚠ {UNVALIDATED}</span>"


def _cell_table(cells: list[dict[str, Any]], unit: str) -> str:
    head = ("<tr><th>cell</th><th>baseline</th>" + "".join(f"<th>best {m}</th>" for m in MODES)
            + "".join(f"<th>full / {m}</th>" for m in SINGLE_MODES) + "<th>full vs baseline</th><th>flags</th></tr>")
    rows = []
    for c in cells:
        b = c["baseline"]
        bcell = _esc(b["objective"]) + ("" if b["fits_memory"] else " <span class=flag>(does not fit)</span>")
        if not b["in_full_space"]:
            bcell += " <span class=note>(not in full space)</span>"
        tds = [f"<td>{html.escape(_label(c))}</td><td>{bcell}</td>"]
        for m in MODES:
            e = c["modes"].get(m) or {}
            who = f" <span class=note>{html.escape(str(e.get('agent')))} s{e.get('seed')}</span>" if e.get("best") \
                else ""
            tds.append(f"<td>{_esc(e.get('best'))}{who}{_unvalidated(e) if e.get('best') else ''}</td>")
        for m in SINGLE_MODES:
            s = c["speedup_full_over"].get(m)
            flagged = any(f["mode"] == m for f in c["flags"])
            tds.append(f"<td{' class=flag' if flagged else ''}>{_esc(s)}{'×' if s else ''}</td>")
        fb = c["speedup_vs_baseline"].get("full")
        tds.append(f"<td>{_esc(fb)}{'×' if fb else ''}</td>")
        fl = "<br>".join(f"<span class=flag>⚑ {html.escape(f['mode'])}</span>: {html.escape(f['detail'])}"
                         for f in c["flags"])
        tds.append(f"<td>{fl}</td>")
        rows.append(f"<tr{' class=flagged' if c['flags'] else ''}>{''.join(tds)}</tr>")
    return (f"<p class=note>Objective values in {html.escape(unit)}; speedups are best single-stack / best "
            f"full-stack (higher: full-stack better; below 1: flagged).</p><table>{head}{''.join(rows)}</table>")


def _gap(g: float | None, exact: bool) -> str:
    if g is None:
        return "–"
    return ("+" if exact else "≤ +") + f"{g:.3g}%"


def _certificate_table(cells: list[dict[str, Any]]) -> str:
    """Per cell and mode with a proof: the certified optimum (or the proven lower bound and gap) next to each
    agent's best and its gap to it."""
    agents = list(dict.fromkeys(a for c in cells for e in c["modes"].values() for a in e.get("by_agent", {})))
    rows = []
    for c in cells:
        for m in MODES:
            e = c["modes"].get(m) or {}
            cert = e.get("certificate")
            if not cert:
                continue
            if cert["certified"]:
                ref = f"{_esc(cert['optimum'])} <span class=note>certified</span>"
            elif cert["lower_bound"] is not None:
                ref = (f"≥ {_esc(cert['lower_bound'])} <span class=note>proven gap {_fmt(cert['gap_pct'], 3)}% "
                       f"of the best known {_fmt(cert['best_known'])}</span>")
            else:
                ref = "<span class=note>no bound: " + html.escape("; ".join(cert.get("errors") or ["-"])) + "</span>"
            tds = [f"<td>{html.escape(_label(c))}</td><td>{m}</td><td>{ref}</td>"]
            for a in agents:
                v = e.get("by_agent", {}).get(a)
                tds.append(f"<td>{_esc(v)} ({_gap(cert['gap_by_agent'].get(a), cert['certified'])})</td>"
                           if v is not None else "<td>–</td>")
            rows.append(f"<tr>{''.join(tds)}</tr>")
    if not rows:
        return ""
    head = ("<tr><th>cell</th><th>mode</th><th>optimum</th>"
            + "".join(f"<th>{html.escape(a)}: best (gap)</th>" for a in agents) + "</tr>")
    return ("<h3>How close each agent came</h3><p class=note>The optimum of each mode's space, certified by "
            "branch and bound (<code>bnb</code>, <code>--certify</code>) or by enumerating it; when the time limit "
            "stopped the proof first, the proven lower bound, and each agent's gap is an upper bound (≤). Gap = "
            f"agent's best / optimum − 1.</p><table>{head}{''.join(rows)}</table>")


def _changes(changed: dict[str, Any]) -> str:
    if not changed:
        return "<span class=note>(no knob moved)</span>"
    return "<br>".join(f"<code>{html.escape(k)}</code>: {_esc(v[0])} → <b>{_esc(v[1])}</b>"
                       for k, v in changed.items())


def _shift(bd: dict[str, list[float]]) -> str:
    out = []
    for k, (a, b) in bd.items():
        if a == 0 and b == 0:
            continue
        out.append(f"{html.escape(k.removesuffix('_s').replace('_', ' '))}: {_fmt(a)} → {_fmt(b)} s")
    return "<br>".join(out)


def _top_tables(cells: list[dict[str, Any]]) -> str:
    parts = []
    for c in cells:
        rows = []
        for m in SINGLE_MODES:
            e = c["modes"].get(m) or {}
            if e.get("best"):
                rows.append(f"<tr><td>best {m}-only</td><td>{_esc(e['best'])}{_unvalidated(e)}</td>"
                            f"<td>{_changes(e['changed'])}</td>"
                            f"<td>{_shift(e['breakdown'])}</td></tr>")
        for i, t in enumerate(c["top"]):
            rows.append(f"<tr><td>full #{i + 1} ({html.escape(t['agent'])} s{t['seed']})</td><td>{_esc(t['objective'])}"
                        f"{_unvalidated(t)}</td><td>{_changes(t['changed'])}</td><td>{_shift(t['breakdown'])}</td></tr>")
        parts.append(f"<h4>{html.escape(_label(c))}</h4><table><tr><th>configuration</th><th>objective</th>"
                     f"<th>knobs changed vs baseline</th><th>breakdown: baseline → this</th></tr>{''.join(rows)}"
                     "</table>")
    return "".join(parts)


def render_html(summary: dict[str, Any], results: list[JobResult]) -> str:
    """The report page for a case-study summary and its job results."""
    from plotly.offline import get_plotlyjs

    study = summary["study"]
    cells = [dict(c, batch_label=study == "scaling") for c in summary["cells"]]
    sections = []
    for setting in dict.fromkeys(c["setting"] for c in cells):
        cs = [c for c in cells if c["setting"] == setting]
        obj = cs[0]["objective"]
        unit = {"runtime": "s (step time)", "runtime*cost": "s × USD", "runtime*bw": "s × GB/s / 2000"}.get(obj, obj)
        rng = summary["speedup_range"].get(setting, {})
        sec = [f"<h2>Setting: {html.escape(setting)}</h2>",
               f"<p>Full-stack speedup over single-stack modes: <b>{_esc(rng.get('min'))}× – "
               f"{_esc(rng.get('max'))}×</b> (COSMIC: 1.50× – 48.41×); full-stack vs baseline: "
               f"{_esc(rng.get('full_vs_baseline_min'))}× – {_esc(rng.get('full_vs_baseline_max'))}×; "
               f"flagged cells: {rng.get('flagged_cells', 0)}.</p>",
               _fig_html(_speedup_fig(cs, f"Full-stack speedup per model and system ({setting}, objective {obj})")),
               _cell_table(cs, unit), _certificate_table(cs)]
        if study == "scaling":
            sec.append(_fig_html(_scaling_fig(cs, f"Speedup vs global batch ({setting})")))
        sec.append(_fig_html(_breakdown_fig(cs, f"Step-time breakdown: baseline vs best per mode ({setting})")))
        sec.append(_fig_html(_convergence_fig(cs, results, f"Convergence of the full-stack search per agent "
                                                           f"({setting}; best so far / baseline; line style = seed)")))
        axis = SECOND_AXIS.get(obj)
        if axis is not None:
            sec.append(_fig_html(_pareto_fig(cs, results, f"Full-stack trials: step time vs {axis[1]} ({setting})",
                                             axis)))
        sec.append("<h3>Top configurations and what changed</h3>" + _top_tables(cs))
        sections.append("".join(sec))
    opts = summary["options"]
    head = (f"<h1>cosmic case study: {html.escape(study)}</h1><p class=note>cosmic "
            f"{html.escape(summary['cosmic_version'])}, backend {html.escape(summary['backend'])} "
            f"({summary['workers']} workers), wall time "
            f"{summary['wall_s']:.1f} s, {summary.get('n_trials', 0):,} evaluations; agents "
            f"{html.escape(', '.join(opts['agents']))}, seeds {opts['seeds']}, budgets "
            f"{html.escape(', '.join(f'{a} {b}' for a, b in opts['budgets'].items()))}, objective "
            f"{html.escape(opts['objective'])}.</p>")
    return ("<!DOCTYPE html><html lang=en><head><meta charset=utf-8><title>cosmic study "
            f"{html.escape(study)}</title><style>{_CSS}</style><script>{get_plotlyjs()}</script></head><body>"
            f"{head}{''.join(sections)}</body></html>")


def write_html(summary: dict[str, Any], results: list[JobResult], path: Path) -> Path:
    path.write_text(render_html(summary, results), encoding="utf-8")
    return path


__all__ = ["render_html", "write_html"]
