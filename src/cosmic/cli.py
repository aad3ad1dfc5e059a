"""The `cosmic` command line: the only module that prints or exits.

Errors a user can cause (CosmicError) print as one line on stderr with exit code 2; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from cosmic.commands import register_all
from cosmic.commands._output import emit_json, err, fail, out, print_fit_hint, print_result
from cosmic.errors import CosmicError

__all__ = ["app", "emit_json", "err", "fail", "main", "out", "print_result"]

app = typer.Typer(
    name="cosmic",
    help="Simulate and explore distributed training across workload, collective, network and compute stacks.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
_DEBUG = {"on": False}


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="show tracebacks for errors")] = False,
) -> None:
    _DEBUG["on"] = debug


@app.command()
def simulate(
    config: Annotated[Path, typer.Argument(help="configuration YAML (see `cosmic schema`)")],
    json_out: Annotated[bool, typer.Option("--json", help="print the result as JSON")] = False,
    strict: Annotated[bool, typer.Option("--strict", help="exit 1 when the configuration does not fit in "
                                         "memory (default: exit 0, a prediction is printed either way)")] = False,
) -> None:
    """Simulate one training step of CONFIG and print its time, breakdown, memory and cost.

    A configuration that does not fit in memory is still simulated: the output says by how much it is over and
    which single changes (sequence parallelism, a ZeRO stage, recompute, a smaller micro-batch, twice the TP or PP)
    make it fit, each simulated. Exit code 0, or 1 with --strict; 2 for bad input."""
    import cosmic
    from cosmic.commands._fit import fit_changes

    cfg = cosmic.load_config(config)
    result = cosmic.simulate(cfg)
    if json_out:
        d = result.to_dict()
        if not result.fits_memory:
            d["fit_changes"] = [c.to_dict() for c in fit_changes(cfg)]
        emit_json(d)
    else:
        print_result(result, cfg, title=cfg.name or str(config))
        print_fit_hint(result, cfg)
    if strict and not result.fits_memory:
        raise typer.Exit(1)


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
    t.add_column("name", style="bold", no_wrap=True)
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
