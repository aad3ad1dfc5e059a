"""The `cosmic` command line: the only module that prints or exits.

Errors a user can cause (CosmicError) print as one line on stderr with exit code 2; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from cosmic.errors import CosmicError

app = typer.Typer(
    name="cosmic",
    help="Simulate and explore distributed training across workload, collective, network and compute stacks.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console()
err = Console(stderr=True)
_DEBUG = {"on": False}


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="show tracebacks for errors")] = False,
) -> None:
    _DEBUG["on"] = debug


def fail(message: str) -> None:
    """Print one error line and exit 2."""
    err.print(f"error: {message}", markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(2)


def emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=_json_default) + "\n")


def _json_default(o: Any) -> Any:
    if hasattr(o, "model_dump"):
        return o.model_dump(mode="json")
    if hasattr(o, "tolist"):
        return o.tolist()
    return str(o)


def _fmt_s(x: float) -> str:
    if x == 0:
        return "0"
    if x >= 1:
        return f"{x:,.3f} s"
    if x >= 1e-3:
        return f"{x * 1e3:,.3f} ms"
    return f"{x * 1e6:,.2f} µs"


def print_result(result: Any, config: Any, title: str | None = None) -> None:
    """Readable tables of a Result (shared by simulate and explore)."""
    from cosmic.sim.result import BREAKDOWN_KEYS

    r = result
    head = Table(title=title or (config.name or "simulation"), show_header=False, title_justify="left")
    head.add_column("metric", style="bold")
    head.add_column("value")
    par = config.parallel
    head.add_row("model", f"{config.model.name} ({config.model.n_params / 1e9:,.2f} B params)")
    head.add_row("accelerator", f"{config.accelerator.name} x {r.n_npus:,}")
    head.add_row(
        "network",
        " x ".join(f"{d.topology.value}({d.npus})" for d in config.network.dims),
    )
    head.add_row(
        "layout",
        f"DP {par.dp} · TP {par.tp} · PP {par.pp} · SP {par.sp} · ZeRO {par.zero}"
        + (" · seq-par" if par.sequence_parallel else ""),
    )
    tr = config.training
    head.add_row(
        "training",
        f"batch {tr.global_batch} × seq {config.seq_len}, micro-batch {tr.micro_batch} ({r.micro_batches}/pipeline), "
        f"{tr.schedule.value}" + (f" v={tr.virtual_stages}" if tr.virtual_stages > 1 else "")
        + f", recompute {tr.recompute.value}, {tr.precision.value}",
    )
    head.add_row("step time", _fmt_s(r.step_time_s))
    head.add_row("tokens/s", f"{r.tokens_per_s:,.0f}")
    head.add_row("MFU / HFU", f"{r.mfu * 100:.1f}% / {r.hfu * 100:.1f}%")
    fit = "fits" if r.fits_memory else "[red]DOES NOT FIT[/red]"
    head.add_row(
        "memory / device",
        f"{r.memory_per_device_gb:,.1f} GB of {r.memory_capacity_bytes / 1e9:,.0f} GB ({fit})",
    )
    head.add_row("network cost", f"${r.network_cost_usd:,.0f}")
    out.print(head)

    bd = Table(title="step breakdown (critical stage)", title_justify="left")
    bd.add_column("component")
    bd.add_column("time", justify="right")
    bd.add_column("share", justify="right")
    for k in BREAKDOWN_KEYS:
        v = r.breakdown[k]
        bd.add_row(k.removesuffix("_s").replace("_", " "), _fmt_s(v), f"{v / r.step_time_s * 100:5.1f}%")
    bd.add_row("[bold]total[/bold]", f"[bold]{_fmt_s(r.step_time_s)}[/bold]", "100.0%")
    out.print(bd)
    if any(r.comm_by_network_dim_s):
        nd = Table(title="exposed communication per network dimension", title_justify="left")
        nd.add_column("dim")
        nd.add_column("topology")
        nd.add_column("time", justify="right")
        for i, (d, t) in enumerate(zip(config.network.dims, r.comm_by_network_dim_s, strict=True)):
            nd.add_row(str(i), f"{d.topology.value}({d.npus})", _fmt_s(t))
        out.print(nd)
    m = r.memory
    mt = Table(title="memory per device", title_justify="left")
    mt.add_column("part")
    mt.add_column("GB", justify="right")
    for name, val in (
        ("weights", m.weights_bytes),
        ("gradients", m.gradients_bytes),
        ("optimizer states", m.optimizer_bytes),
        ("activations", m.activations_bytes),
    ):
        mt.add_row(name, f"{val / 1e9:,.2f}")
    out.print(mt)


@app.command()
def simulate(
    config: Annotated[Path, typer.Argument(help="configuration YAML (see `cosmic schema`)")],
    json_out: Annotated[bool, typer.Option("--json", help="print the result as JSON")] = False,
) -> None:
    """Simulate one training step of CONFIG and print its time, breakdown, memory and cost."""
    import cosmic

    cfg = cosmic.load_config(config)
    result = cosmic.simulate(cfg)
    if json_out:
        emit_json(result.to_dict())
    else:
        print_result(result, cfg, title=cfg.name or str(config))


@app.command()
def schema() -> None:
    """Print the JSON Schema of a `cosmic simulate` configuration."""
    from cosmic.sim.config import SystemConfig

    emit_json(SystemConfig.model_json_schema())


@app.command()
def catalog(
    kind: Annotated[str, typer.Argument(help="models, accelerators, fabrics or systems")] = "models",
    json_out: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """List the built-in catalog entries."""
    from cosmic import catalog as cat

    getters = {
        "models": (cat.model_names, cat.get_model),
        "accelerators": (cat.accelerator_names, cat.get_accelerator),
        "fabrics": (cat.fabric_names, cat.get_fabric),
        "systems": (cat.system_names, cat.get_system),
    }
    if kind not in getters:
        fail(f"catalog: unknown kind {kind!r}; choose one of {', '.join(getters)}")
    names, get = getters[kind]
    entries = {n: get(n) for n in names()}
    if json_out:
        emit_json(entries)
        return
    t = Table(title=f"cosmic {kind}", title_justify="left")
    t.add_column("name", style="bold")
    t.add_column("summary")
    for n, e in entries.items():
        if kind == "models":
            from cosmic.workload.model import ModelSpec

            ms = ModelSpec(**{k: v for k, v in e.items()})
            summary = f"{ms.n_params / 1e9:,.2f} B params, {ms.layers} layers, hidden {ms.hidden}, seq {ms.seq_len}"
        elif kind == "accelerators":
            peaks = " / ".join(f"{p} {v:g}" for p, v in e["peak_tflops"].items())
            summary = f"{peaks} TFLOP/s, {e['mem_gb']:g} GB at {e['mem_bw_gbps']:g} GB/s"
            if e.get("gemm_efficiency") is not None:
                summary += f", GEMM efficiency {e['gemm_efficiency']:g}"
        elif kind == "fabrics":
            summary = f"{e['link_gbps']} GB/s/link, {e['latency_ns']} ns, efficiency {e['efficiency']}"
        else:
            dims = e["network"]["dims"]
            summary = f"{e['accelerator']}, " + " x ".join(f"{d['topology']}({d['npus']})" for d in dims)
        t.add_row(n, summary)
    out.print(t)


from cosmic.commands import register_all  # noqa: E402  (commands import helpers defined above)

register_all(app)


def main() -> None:
    """Entry point of the `cosmic` console script."""
    try:
        rc = app(standalone_mode=False)
        if isinstance(rc, int) and rc:
            sys.exit(rc)
    except CosmicError as exc:
        if _DEBUG["on"]:
            raise
        _error_line(str(exc))
        sys.exit(2)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        err.print("aborted", markup=False)
        sys.exit(130)
    except KeyboardInterrupt:
        err.print("interrupted", markup=False)
        sys.exit(130)
    except Exception as exc:  # click usage errors arrive here in standalone_mode=False
        # typer vendors click (typer._click) and exports no usage-error class; click's exceptions are the ones
        # with `format_message()` and an `exit_code`
        fmt = getattr(exc, "format_message", None)
        if callable(fmt) and isinstance(getattr(exc, "exit_code", None), int):
            _error_line(str(fmt()))
            sys.exit(2)
        raise


def _error_line(message: str) -> None:
    """Print `error: message` as exactly one line (any line break inside the message is shown as \\n)."""
    one = "\\n".join(message.strip().splitlines())
    err.print(f"error: {one}", markup=False, highlight=False, soft_wrap=True, emoji=False)


if __name__ == "__main__":
    main()
