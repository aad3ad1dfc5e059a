"""Output helpers shared by the CLI sub-commands: the consoles, one-line failures, JSON and result tables.

`cosmic.cli` builds the application from :mod:`cosmic.commands`; the commands take their output helpers from here,
so that they never import the CLI module that imports them.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

out = Console()
err = Console(stderr=True)


HOME_ENV = "COSMIC_HOME"
"""Environment variable naming the default output root (``runs/`` and ``reports/`` go under it)."""


def output_root(out_dir: Path | None) -> Path:
    """Where a command writes ``runs/`` and ``reports/``: ``--out``, else ``$COSMIC_HOME``, else the current
    directory; always absolute, so the paths printed can be opened from anywhere."""
    if out_dir is not None:
        return Path(out_dir).absolute()
    home = os.environ.get(HOME_ENV)
    return Path(home).expanduser().absolute() if home else Path.cwd()


AGENTS_HELP = ("random, walk, ga, aco, ils, memetic, bo (needs the bo extra), tpe, cmaes, nsga2, "
               "rl (needs the rl extra), exhaustive, bnb")
"""The agents, for help texts (a test checks it against `cosmic.agents.agent_names()`; kept literal so that `--help`
does not import the agents)."""


def plural(n: int, word: str) -> str:
    """`1 worker`, `2 workers`.

    Example:
        >>> plural(1, "worker"), plural(1024, "evaluation")
        ('1 worker', '1,024 evaluations')
    """
    return f"{n:,} {word}" + ("" if n == 1 else "s")


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
    from cosmic.sim.result import MOE_BREAKDOWN_KEYS

    r = result
    head = Table(title=title or (config.name or "simulation"), show_header=False, title_justify="left")
    head.add_column("metric", style="bold", no_wrap=True)
    head.add_column("value", overflow="fold")
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
        + (f" (HSDP: shard {par.shard_group}, {par.dp * par.sp // par.shard_group} replicas)"
           if par.shard_group is not None and par.shard_group < par.dp * par.sp else "")
        + (" · seq-par" if par.sequence_parallel else "")
        + (f" · EP {par.ep} · ETP {par.expert_tp} ({par.moe_dispatcher})" if config.model.moe is not None else ""),
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
    if r.evidence is not None:
        head.add_row("evidence", r.evidence.line())
    out.print(head)

    bd = Table(title="step breakdown (critical stage)", title_justify="left")
    bd.add_column("component")
    bd.add_column("time", justify="right")
    bd.add_column("share", justify="right")
    for k in (k for k in MOE_BREAKDOWN_KEYS if k in r.breakdown):
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


def print_fit_hint(result: Any, config: Any) -> list[Any]:
    """When `result` does not fit in memory: by how much, and the single changes that make it fit (each one
    simulated, see :mod:`cosmic.commands._fit`). Returns the changes tried."""
    from cosmic.commands._fit import fit_changes

    if result.fits_memory:
        return []
    need, cap = result.memory.total_bytes, result.memory_capacity_bytes
    out.print(f"[red]does not fit[/red]: {need / 1e9:,.1f} GB per device is {(need - cap) / 1e9:,.1f} GB "
              f"({(need - cap) / cap * 100:.1f}%) over the {cap / 1e9:,.0f} GB capacity", highlight=False)
    changes = fit_changes(config)
    fitting = [c for c in changes if c.fits]
    if not fitting:
        closest = min(changes, key=lambda c: c.memory_bytes, default=None)
        tail = "" if closest is None else (f"; the closest is {closest.change} at "
                                           f"{closest.memory_bytes / 1e9:,.1f} GB")
        out.print(f"no single change makes it fit{tail}", markup=False, highlight=False)
        return changes
    t = Table(title="single changes that make it fit (each simulated)", title_justify="left")
    t.add_column("change")
    t.add_column("memory", justify="right")
    t.add_column("step time", justify="right")
    for c in fitting:
        dt = (c.step_time_s - result.step_time_s) / result.step_time_s * 100
        t.add_row(c.change, f"{c.memory_bytes / 1e9:,.1f} GB", f"{_fmt_s(c.step_time_s)} ({dt:+.1f}%)")
    out.print(t)
    return changes
