"""`cosmic serve CONFIG.yaml [--json] [--report OUT.html]`: simulate a serving deployment."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

SWEEP = (0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0)
"""Offered rates of the report's throughput-vs-rate plot, as multiples of the configured rate."""


def serve(
    config: Annotated[Path, typer.Argument(help="serving configuration YAML (a `serving:` section; docs/serving.md)")],
    json_out: Annotated[bool, typer.Option("--json", help="print the result as JSON")] = False,
    report: Annotated[Path | None, typer.Option("--report", help="write latency CDFs and throughput vs offered "
                                                "rate (self-contained HTML)")] = None,
) -> None:
    """Simulate serving CONFIG's requests and print throughput, TTFT/TPOT/E2E percentiles, goodput and cost."""
    from cosmic.commands._output import emit_json, out
    from cosmic.serving import load_serving_config
    from cosmic.serving import serve as run

    cfg = load_serving_config(config)
    result = run(cfg)
    if report is not None:
        from cosmic.report.serving import write_serving_report

        write_serving_report(report, cfg.name or str(config), result, _sweep(cfg))
    if json_out:
        emit_json(result.to_dict())
        return
    _print(result, cfg, cfg.name or str(config))
    if report is not None:
        out.print(f"report: {report}")


def _sweep(cfg: Any) -> list[tuple[float, Any]]:
    from cosmic.serving import serve as run

    w = cfg.serving.workload
    if w.arrival != "poisson" or w.rate is None:
        return []
    points = []
    for f in SWEEP:
        c = cfg.model_copy(update={"serving": cfg.serving.model_copy(update={
            "workload": w.model_copy(update={"rate": w.rate * f})})})
        points.append((w.rate * f, run(c)))
    return points


def _print(r: Any, cfg: Any, title: str) -> None:
    from cosmic.commands._output import out

    spec = cfg.serving
    head = Table(title=title, show_header=False, title_justify="left")
    head.add_column("metric", style="bold")
    head.add_column("value")
    layout = ", ".join(f"{k}: {v.count} x (tp {v.tp}, pp {v.pp}" + (f", ep {v.ep})" if v.ep > 1 else ")")
                       for k, v in spec.layouts.items())
    head.add_row("model", f"{cfg.model.name} ({cfg.model.n_params / 1e9:,.2f} B params), {spec.precision}")
    head.add_row("deployment", f"{cfg.accelerator.name} x {r.n_npus}; {layout}")
    head.add_row("requests", f"{r.completed:,} of {r.requests:,} completed in {r.duration_s:,.2f} s"
                 + (f" ({r.refused:,} refused)" if r.refused else ""))
    head.add_row("throughput", f"{r.requests_per_s:,.3f} req/s, {r.input_tokens_per_s:,.0f} input + "
                 f"{r.output_tokens_per_s:,.0f} output tok/s")
    head.add_row("goodput", f"{r.goodput_requests_per_s:,.3f} req/s ({r.slo_attainment:.1%} of requests meet TTFT "
                 f"<= {spec.slo.ttft_s:g} s and TPOT <= {spec.slo.tpot_s * 1e3:g} ms)")
    if r.usd_per_million_tokens is not None:
        head.add_row("cost", f"${r.usd_per_hour:,.2f}/h; ${r.usd_per_million_tokens:,.4f} per million tokens, "
                     f"${r.usd_per_million_output_tokens:,.4f} per million output tokens")
    for k, m in r.memory.items():
        head.add_row(f"memory ({k})", f"weights {m['weights_bytes'] / 1e9:,.1f} GB, activations "
                     f"{m['activations_bytes'] / 1e9:,.2f} GB, KV cache {m['kv_cache_bytes'] / 1e9:,.1f} GB = "
                     f"{m['kv_tokens']:,.0f} tokens per replica")
    for n in r.notes:
        head.add_row("note", n)
    out.print(head)
    lat = Table(title="latency", title_justify="left")
    lat.add_column("metric")
    for q in (50, 90, 99):
        lat.add_column(f"p{q}", justify="right")
    for name, label in (("ttft", "TTFT"), ("tpot", "TPOT"), ("e2e", "end-to-end")):
        lat.add_row(label, *(_ms(r.latency[f"{name}_p{q}_s"]) for q in (50, 90, 99)))
    out.print(lat)


def _ms(x: float) -> str:
    return "-" if x != x else (f"{x * 1e3:,.1f} ms" if x < 10 else f"{x:,.2f} s")


def register(app: typer.Typer) -> None:
    app.command()(serve)
