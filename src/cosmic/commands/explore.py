"""`cosmic explore PSA --agent NAME --budget N` and `cosmic demo`: search a PSA with a stored, resumable study."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer

DEMO_PRESET = "cosmic-s1-gpt3-175b-full"
DEMO_BUDGET = 5000


def _parse_hyper(items: list[str] | None) -> dict[str, Any]:
    import yaml

    from cosmic.commands._output import fail

    out: dict[str, Any] = {}
    for item in items or []:
        k, sep, v = item.partition("=")
        if not sep or not k.strip():
            fail(f"--hyper: expected KEY=VALUE, got {item!r}")
        try:
            out[k.strip()] = yaml.safe_load(v)
        except yaml.YAMLError:
            fail(f"--hyper {k.strip()}: cannot read the value {v!r}")
    return out


def _read_agent_yaml(path: Path) -> dict[str, Any]:
    from cosmic.errors import ConfigError
    from cosmic.yamlio import read_yaml

    data = read_yaml(path)
    if not isinstance(data, dict):
        raise ConfigError("an agent file is a mapping: {agent: NAME, hyper: {...}, budget: N, ...}", file=str(path))
    allowed = {"agent", "hyper", "budget", "seed", "batch", "time_limit_s"}
    for k in data:
        if k not in allowed:
            raise ConfigError(f"unknown key (allowed: {', '.join(sorted(allowed))})", file=str(path), key=str(k))
    if "hyper" in data and not isinstance(data["hyper"], dict):
        raise ConfigError("must be a mapping of hyper-parameter: value", file=str(path), key="hyper")
    return data


def _run(
    psa: str,
    *,
    agent: str,
    budget: int,
    time_limit: float | None,
    seed: int | None,
    storage: str | None,
    study: str | None,
    out_dir: Path | None,
    resume: bool,
    batch: int | None,
    hyper: dict[str, Any],
    objectives: list[str] | None,
    quiet: bool,
    worker: bool = False,
) -> tuple[Any, dict[str, Path]]:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    from cosmic.explore import run_study, with_objectives
    from cosmic.psa import load_psa
    from cosmic.report import write_outputs

    space = load_psa(psa)
    if objectives:
        space = with_objectives(space, objectives)
    name = study or f"{space.name}-{agent}-s{seed if seed is not None else 'none'}"
    root = out_dir if out_dir is not None else Path(".")
    runs_dir = root / "runs"
    console = Console(stderr=True)
    bar = Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[rate]:>9,.0f} eval/s"), TextColumn("best {task.fields[best]}"),
        TimeElapsedColumn(), console=console, disable=quiet, transient=False,
    )
    task = bar.add_task(f"{agent} on {space.name}", total=budget, rate=0.0, best="-")
    started = False

    def on_progress(p: Any) -> None:
        nonlocal started
        if not started:  # shown from the first batch on, so set-up errors stay one line
            bar.start()
            started = True
        rate = p.new / p.elapsed_s if p.elapsed_s > 0 else 0.0
        best = "-" if p.best is None else f"{p.best:.6g}"
        bar.update(task, completed=p.done, total=p.budget, rate=rate, best=best)

    try:
        summary = run_study(
            space, agent, budget=budget, storage=storage, study_name=name, time_limit_s=time_limit, seed=seed,
            resume=resume, batch=batch, hyper=hyper, runs_dir=runs_dir, progress=on_progress, worker=worker,
        )
    finally:
        if started:
            bar.stop()
    paths = write_outputs(summary, root / "reports" / name)
    return summary, paths


def explore(
    psa: Annotated[str, typer.Argument(help="PSA YAML file or preset name (see `cosmic psa list`)")],
    agent: Annotated[str | None, typer.Option("--agent", "-a", help="random, walk, ga, aco, bo, tpe, cmaes, nsga2, "
                                              "rl, exhaustive (default ga)")] = None,
    budget: Annotated[int | None,
                      typer.Option("--budget", "-n", help="evaluations in the study (default 1000)")] = None,
    time_limit: Annotated[float | None, typer.Option("--time-limit", help="stop after S seconds")] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="seed: the same seed gives the same trials")] = None,
    storage: Annotated[str | None, typer.Option("--storage", help="SQLAlchemy URL or SQLite file "
                                                "(default OUT/runs/<study>.db)")] = None,
    study: Annotated[str | None, typer.Option("--study", help="study name (default <psa>-<agent>-s<seed>)")] = None,
    out_dir: Annotated[Path | None, typer.Option("--out", help="output root: runs/ and reports/<study>/ go "
                                                 "under it (default .)")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="continue the stored study to the budget")] = False,
    worker: Annotated[bool, typer.Option("--worker", help="one of several concurrent writers to the study: create "
                                         "or join it and add --budget evaluations (give each worker its own "
                                         "--seed)")] = False,
    batch: Annotated[int | None, typer.Option("--batch", help="points per ask (default: the agent's)")] = None,
    hyper: Annotated[list[str] | None, typer.Option("--hyper", "-H", help="agent hyper-parameter KEY=VALUE "
                                                    "(repeatable; see docs/agents.md)")] = None,
    config: Annotated[Path | None, typer.Option("--config", help="YAML with agent, hyper, budget, seed, batch, "
                                                "time_limit_s (command-line options win)")] = None,
    objective: Annotated[list[str] | None, typer.Option("--objective", help="replace the PSA's objectives "
                                                        "(repeatable, e.g. step_time*network_cost)")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="print the summary as JSON")] = False,
    show: Annotated[int | None, typer.Option("--show", metavar="N", help="search nothing: print stored trial N of "
                                             "the study (knobs, figures, its configuration rebuilt from PSA)")
                    ] = None,
) -> None:
    """Search PSA with an agent; every evaluation is stored as a trial, the best configuration is written as a
    YAML that `cosmic simulate` accepts, with an HTML report."""
    from cosmic.commands._output import emit_json, fail, out

    fileconf = _read_agent_yaml(config) if config is not None else {}
    hyp = dict(fileconf.get("hyper") or {})
    hyp.update(_parse_hyper(hyper))
    agent_name = agent or fileconf.get("agent") or "ga"
    if show is not None:
        _show(psa, show, agent=str(agent_name), seed=seed if seed is not None else fileconf.get("seed"),
              storage=storage, study=study, out_dir=out_dir, json_out=json_out)
        return
    n = budget if budget is not None else int(fileconf.get("budget", 1000))
    if n < 1:
        fail(f"--budget must be >= 1, got {n}")
    summary, paths = _run(
        psa, agent=str(agent_name), budget=n,
        time_limit=time_limit if time_limit is not None else fileconf.get("time_limit_s"),
        seed=seed if seed is not None else fileconf.get("seed"), storage=storage, study=study, out_dir=out_dir,
        resume=resume, batch=batch if batch is not None else fileconf.get("batch"), hyper=hyp,
        objectives=objective, quiet=json_out, worker=worker,
    )
    if json_out:
        d = summary.to_dict()
        d["files"] = {k: str(v) for k, v in paths.items()}
        emit_json(d)
        return
    _print_summary(summary, paths)
    out.print(f"report: {paths['report']}")


def _show(psa: str, number: int, *, agent: str, seed: int | None, storage: str | None, study: str | None,
          out_dir: Path | None, json_out: bool) -> None:
    """`cosmic explore PSA --show N`: trial N of the stored study, its configuration rebuilt by decoding its point."""
    import yaml
    from rich.table import Table

    from cosmic.commands._output import emit_json, out
    from cosmic.errors import StudyError
    from cosmic.explore import load_trial
    from cosmic.explore._study import jsonable
    from cosmic.psa import load_psa

    space = load_psa(psa)
    name = study or f"{space.name}-{agent}-s{seed if seed is not None else 'none'}"
    root = out_dir if out_dir is not None else Path(".")
    t = load_trial(space, number, study_name=name, storage=storage, runs_dir=root / "runs")
    try:
        cfg: dict[str, Any] | None = t.config(space).to_yaml_dict()
        cfg_error = None
    except StudyError as exc:
        if t.status != "rejected":
            raise
        cfg, cfg_error = None, str(exc)  # a point the decoder refused: the reason says why
    if json_out:
        emit_json({"study": name, "trial": t.number, "state": t.state, "status": t.status,
                   "values": None if t.values is None else list(t.values), "violation": jsonable(t.violation),
                   "reason": t.reason, "point": t.point.tolist(), "knobs": t.knobs, "figures": t.figures,
                   "result": t.result_dict(), "config": cfg})
        return
    head = Table(title=f"study {name}, trial {t.number}", show_header=False, title_justify="left")
    head.add_column("k", style="bold")
    head.add_column("v")
    head.add_row("state / status", f"{t.state} / {t.status}")
    if t.values is not None:
        head.add_row("values", ", ".join(f"{n} = {v:.6g}" for (n, _), v in
                                         zip([(o.name, o.direction) for o in space.objectives], t.values,
                                             strict=False)))
    head.add_row("violation", f"{t.violation:g}")
    if t.reason:
        head.add_row("reason", t.reason)
    head.add_row("point", str(t.point.tolist()))
    out.print(head)
    k = Table(title="knobs", title_justify="left")
    k.add_column("knob")
    k.add_column("value")
    for kn, v in (t.knobs or {}).items():
        k.add_row(kn, str(v))
    out.print(k)
    figs = t.figures if t.figures is not None else _flat(t.result_dict() or {})
    if figs:
        f = Table(title="figures" if t.figures is not None else "result (stored in the old format)",
                  title_justify="left")
        f.add_column("figure")
        f.add_column("value", justify="right")
        for fn, v in figs.items():
            f.add_row(fn, f"{v:.10g}" if isinstance(v, float) else str(v))
        out.print(f)
    else:
        out.print("figures: none (the point was not simulated)")
    if cfg is None:
        out.print(f"configuration: {cfg_error}", markup=False, highlight=False)
    else:
        out.print("configuration (rebuilt from the PSA; `cosmic simulate` accepts it):")
        out.print(yaml.safe_dump(cfg, sort_keys=False), end="", markup=False, highlight=False)


def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            flat.update(_flat(v, f"{prefix}{k}."))
        else:
            flat[f"{prefix}{k}"] = v
    return flat


def _print_summary(summary: Any, paths: dict[str, Path]) -> None:
    from rich.table import Table

    from cosmic.commands._output import out, print_result

    t = Table(title=f"study {summary.study_name}", show_header=False, title_justify="left")
    t.add_column("k", style="bold")
    t.add_column("v")
    t.add_row("agent", f"{summary.agent} {summary.hyper}")
    t.add_row("evaluations", f"{summary.evaluations:,} ({summary.new_evaluations:,} this run, "
                             f"{summary.evals_per_s:,.0f}/s, {summary.wall_s:.2f} s)")
    c = summary.counts
    t.add_row("feasible / over memory / rejected", f"{c['ok']:,} / {c['memory']:,} / {c['rejected']:,}")
    t.add_row("stopped by", summary.stopped + (" (space enumerated: best is certified)" if summary.complete else ""))
    names = ", ".join(n for n, _ in summary.objectives)
    t.add_row(f"best {names}", "no feasible point" if summary.best_values is None
              else ", ".join(f"{v:.6g}" for v in summary.best_values))
    if summary.certified:
        t.add_row("optimum", "certified (proven optimal)")
    elif summary.gap_pct is not None:
        t.add_row("proven gap", f"{summary.gap_pct:.3g}% (lower bound {summary.lower_bound:.6g})")
    if summary.pareto:
        t.add_row("Pareto front", f"{len(summary.pareto)} trials")
    t.add_row("study storage", str(summary.storage))
    out.print(t)
    if summary.best_knobs:
        k = Table(title="best configuration (knobs)", title_justify="left")
        k.add_column("knob")
        k.add_column("value")
        for name, v in summary.best_knobs.items():
            k.add_row(name, str(v))
        out.print(k)
    if "best_yaml" in paths:
        import cosmic

        cfg = cosmic.load_config(paths["best_yaml"])
        print_result(cosmic.simulate(cfg), cfg, title=f"best configuration ({paths['best_yaml']})")


def demo(
    out_dir: Annotated[Path | None, typer.Option("--out", help="output root (default .)")] = None,
    budget: Annotated[int, typer.Option("--budget", help="evaluations")] = DEMO_BUDGET,
    seed: Annotated[int, typer.Option("--seed")] = 0,
) -> None:
    """Explore COSMIC's S1 GPT-3 175B full-stack space with the genetic algorithm (well under a minute) and print
    the best configuration, its breakdown and the report path."""
    from cosmic.commands._output import out

    study = f"demo-{time.strftime('%Y%m%d-%H%M%S')}"
    summary, paths = _run(
        DEMO_PRESET, agent="ga", budget=budget, time_limit=100.0, seed=seed, storage=None, study=study,
        out_dir=out_dir, resume=False, batch=None, hyper={}, objectives=None, quiet=False,
    )
    _print_summary(summary, paths)
    out.print(f"best configuration: {paths.get('best_yaml')}")
    out.print(f"report: {paths['report']}")


def register(app: typer.Typer) -> None:
    app.command()(explore)
    app.command()(demo)
