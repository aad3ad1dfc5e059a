"""`cosmic psa show | sample | list`: inspect PSA files and presets, draw feasible configurations."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

psa_app = typer.Typer(
    name="psa",
    help="Parameter Set Architecture: declarative search spaces (show, sample, list).",
    no_args_is_help=True,
)


def _fmt_int(n: int) -> str:
    return f"{n:,} ({n:.3e})" if n >= 10**6 else f"{n:,}"


@psa_app.command("show")
def show(
    source: Annotated[str, typer.Argument(help="PSA YAML file or preset name (see `cosmic psa list`)")],
    json_out: Annotated[bool, typer.Option("--json", help="print as JSON")] = False,
) -> None:
    """Knobs by stack, derived knobs, constraints, objectives and the size of the space (total and feasible)."""
    from cosmic.commands._output import emit_json, out
    from cosmic.psa import load_psa

    space = load_psa(source)
    d = space.describe()
    if json_out:
        emit_json(d)
        return
    out.print(f"[bold]{d['name']}[/bold]  {d['description']}")
    b = d["base"]
    out.print(f"base: {b['system'] or 'custom'} / {b['model']}, {b['n_npus']:,} NPUs, "
              f"{' x '.join(b['network'])}, " + ", ".join(f"{k} {v}" for k, v in b["parallel"].items()))
    t = Table(title="knobs", title_justify="left")
    for col in ("stack", "knob", "domain", "mode"):
        t.add_column(col)
    for stack, knobs in d["knobs"].items():
        for name, k in knobs.items():
            t.add_row(stack, name, k["domain"], k["mode"])
    out.print(t)
    if d["derived"]:
        t = Table(title="derived knobs", title_justify="left")
        t.add_column("knob")
        t.add_column("rule")
        t.add_column("formula")
        for r in d["derived"]:
            t.add_row(r["knob"] + (" (implicit)" if r["implicit"] else ""), r["rule"], r["formula"])
        out.print(t)
    t = Table(title="constraints", title_justify="left")
    t.add_column("name")
    t.add_column("expression")
    for c in d["constraints"]:
        t.add_row(c["name"], c["expr"])
    out.print(t)
    out.print("objectives: " + ", ".join(f"{o['direction']} {o['name']}" for o in d["objectives"])
              + f"; memory fit {'on' if d['memory_fit'] else 'off'}")
    out.print("encoding: " + " x ".join(f"{x['name']}({x['cardinality']})" for x in d["dims"]))
    out.print(f"space_size_total    {_fmt_int(d['space_size_total'])}  (product of the knobs' domains)")
    out.print(f"space_size_feasible {_fmt_int(d['space_size_feasible'])}  ({d['space_size_method']})", markup=False)
    out.print(f"encoded box {_fmt_int(d['encoded_box_size'])}, feasible fraction of the box "
              f"{d['box_acceptance_rate']:.4f}, sampler acceptance {d['acceptance_rate']:.4f}")


@psa_app.command("sample")
def sample(
    source: Annotated[str, typer.Argument(help="PSA YAML file or preset name")],
    n: Annotated[int, typer.Option("-n", "--n", min=1, max=100_000, help="number of configurations")] = 1,
    seed: Annotated[int, typer.Option("--seed", help="random seed")] = 0,
    json_out: Annotated[bool, typer.Option("--json", help="print a JSON list of {point, knobs, config}")] = False,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="write one `cosmic simulate` YAML per sample into this folder")
    ] = None,
) -> None:
    """Draw N feasible configurations; each is a complete `cosmic simulate` config (YAML documents by default)."""
    import numpy as np
    import yaml

    from cosmic.commands._output import emit_json, out
    from cosmic.psa import load_psa

    space = load_psa(source)
    points = space.sample(np.random.default_rng(seed), n)
    rows: list[dict[str, Any]] = []
    for i, p in enumerate(points):
        cfg = space.decode(p).to_yaml_dict()
        cfg["name"] = f"{space.name}-s{seed}-{i}"
        rows.append({"point": [int(x) for x in p], "knobs": space.knobs(p), "config": cfg})
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        for r in rows:
            path = out_dir / f"{r['config']['name']}.yaml"
            path.write_text(yaml.safe_dump(r["config"], sort_keys=False), encoding="utf-8")
    if json_out:
        emit_json(rows)
    elif out_dir is None:
        import sys

        sys.stdout.write(yaml.safe_dump_all([r["config"] for r in rows], sort_keys=False))
    else:
        out.print(f"wrote {len(rows)} configurations to {out_dir}")


@psa_app.command("list")
def list_(
    json_out: Annotated[bool, typer.Option("--json", help="print as JSON")] = False,
) -> None:
    """List the built-in PSA presets (training, then serving)."""
    from cosmic.commands._output import emit_json, out
    from cosmic.psa import list_presets

    names = list_presets() + list_presets("serving")
    if json_out:
        emit_json(names)
        return
    for name in names:
        out.print(name, highlight=False)


def register(app: typer.Typer) -> None:
    app.add_typer(psa_app, name="psa")
