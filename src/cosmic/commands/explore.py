"""`cosmic explore PSA --agent NAME --budget N` and `cosmic demo`: search a PSA with a stored, resumable study."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer

from cosmic.commands._output import AGENTS_HELP

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
    from cosmic.errors import ConfigError, close_match
    from cosmic.yamlio import read_yaml

    data = read_yaml(path)
    if not isinstance(data, dict):
        raise ConfigError("an agent file is a mapping: {agent: NAME, hyper: {...}, budget: N, ...}", file=str(path))
    allowed = {"agent", "hyper", "budget", "seed", "batch", "time_limit_s"}
    for k in data:
        if k not in allowed:
            hint = close_match(str(k), allowed)
            raise ConfigError("unknown key (" + (f"did you mean {hint!r}? " if hint else "")
                              + f"allowed: {', '.join(sorted(allowed))})", file=str(path), key=str(k))
    if "hyper" in data and not isinstance(data["hyper"], dict):
        raise ConfigError("must be a mapping of hyper-parameter: value", file=str(path), key="hyper")
    return data


def _default_name(space_name: str, agent: str, seed: int | None, risk: str | None = None) -> str:
    """``<psa>-<agent>-s<seed>``, or ``<psa>-<agent>@p90-s<seed>`` under ``--risk p90`` (its objective values are
    other figures, so it is another study)."""
    return f"{space_name}-{agent}{'@' + risk if risk else ''}-s{seed if seed is not None else 'none'}"


def _stored_study(space_name: str, seed: int | None, storage: str | None, runs_dir: Path) -> str:
    """The one stored study of this PSA (and seed, when given) that `--resume` or `--show` without `--agent`
    means: default-named studies ``<psa>-<agent>-s<seed>`` are looked up in the storage."""
    from fnmatch import fnmatchcase

    from cosmic.agents import agent_names
    from cosmic.errors import StudyError
    from cosmic.explore._storage import storage_url, study_names

    pattern = f"{space_name}-*-s{'*' if seed is None else seed}"
    if storage is None:
        names = [p.stem for p in sorted(runs_dir.glob(f"{pattern}.db"))]
        where = str(runs_dir)
    else:
        where = storage_url(storage, "-", runs_dir)
        names = [n for n in study_names(where) if fnmatchcase(n, pattern)]
    agents = set(agent_names())
    names = [n for n in names if n[len(space_name) + 1:].rpartition("-s")[0].partition("@")[0] in agents]
    if not names:
        raise StudyError(f"no stored study of {space_name} in {where}" + (f" with seed {seed}" if seed is not None
                         else "") + " (give --study NAME, --seed, --storage or --out of the study)")
    if len(names) > 1:
        raise StudyError(f"several stored studies of {space_name} in {where}: {', '.join(names)}; "
                         "choose one with --study NAME (or --agent and --seed)")
    return names[0]


def _run(
    psa: str,
    *,
    agent: str | None,
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
    risk: str | None = None,
) -> tuple[Any, dict[str, Path]]:
    """Run (or resume) the study; on Ctrl-C keep what is stored, write its best.yaml and report, say how to resume
    and exit 130."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    from cosmic.commands._output import output_root
    from cosmic.explore import run_study, with_objectives, with_risk
    from cosmic.psa import load_psa
    from cosmic.report import fmt_objective, write_outputs

    space = load_psa(psa)
    if objectives:
        space = with_objectives(space, objectives)
    space = with_risk(space, risk)
    root = output_root(out_dir)
    runs_dir = root / "runs"
    if agent is None and study is None:  # --resume: the stored study's agent is reused
        study = _stored_study(space.name, seed, storage, runs_dir)
    name = study or _default_name(space.name, str(agent), seed, risk)
    console = Console(stderr=True)
    bar = Progress(  # narrow enough for 80 columns: the study's name is printed with the summary
        TextColumn("[bold]{task.description}"), BarColumn(bar_width=16), MofNCompleteColumn(),
        TextColumn("{task.fields[rate]:>7,.0f} eval/s"), TextColumn("best {task.fields[best]}"),
        TimeElapsedColumn(), console=console, disable=quiet, transient=False,
    )
    objective = space.objectives[0].name
    task = bar.add_task(agent or "resume", total=budget, rate=0.0, best="-")
    started = False

    def on_progress(p: Any) -> None:
        nonlocal started
        if not started:  # shown from the first batch on, so set-up errors stay one line
            bar.start()
            started = True
        rate = p.new / p.elapsed_s if p.elapsed_s > 0 else 0.0
        best = "-" if p.best is None else fmt_objective(objective, p.best)
        bar.update(task, completed=p.done, total=p.budget, rate=rate, best=best)

    try:
        summary = run_study(
            space, agent, budget=budget, storage=storage, study_name=name, time_limit_s=time_limit, seed=seed,
            resume=resume, batch=batch, hyper=hyper, runs_dir=runs_dir, progress=on_progress, worker=worker,
        )
    except KeyboardInterrupt:
        if started:
            bar.stop()
            started = False
        _interrupted(psa, space, name, storage=storage, runs_dir=runs_dir, root=root, out_dir=out_dir,
                     budget=budget, objectives=objectives)
        raise typer.Exit(130) from None
    finally:
        if started:
            bar.stop()
    paths = write_outputs(summary, root / "reports" / name)
    return summary, paths


def _interrupted(psa: str, space: Any, name: str, *, storage: str | None, runs_dir: Path, root: Path,
                 out_dir: Path | None, budget: int, objectives: list[str] | None) -> None:
    """After Ctrl-C: what the study kept, its best.yaml and report, and the command that resumes it."""
    import shlex

    from cosmic.commands._output import err
    from cosmic.errors import StudyError
    from cosmic.explore import StudyStore, run_study, storage_url
    from cosmic.report import fmt_objectives, write_outputs

    url = storage_url(storage, name, runs_dir)
    try:
        store = StudyStore(url, name, create=False)
        try:
            kept = store.n_trials()
        finally:
            store.close()
    except StudyError:
        kept = 0
    if kept == 0:
        err.print(f"interrupted: nothing was stored yet (study {name})", markup=False, highlight=False,
                  soft_wrap=True)
        return
    summary = run_study(space, None, budget=kept, storage=storage, study_name=name, resume=True,
                        runs_dir=runs_dir)  # no new evaluation: the stored trials summarised
    paths = write_outputs(summary, root / "reports" / name)
    cmd = ["cosmic", "explore", psa, "--study", name, "--resume", "--budget", str(budget)]
    for o in objectives or []:
        cmd += ["--objective", o]
    if storage is not None:
        cmd += ["--storage", storage]
    elif out_dir is not None:
        cmd += ["--out", str(out_dir)]
    lines = [f"interrupted: kept {kept:,} evaluations of study {name} in {summary.storage}"]
    if summary.best_values is not None:
        lines.append(f"best so far: {fmt_objectives(summary.objectives, summary.best_values)}")
    if "best_yaml" in paths:
        lines.append(f"best configuration: {paths['best_yaml']}")
    lines += [f"report: {paths['report']}", f"resume with: {shlex.join(cmd)}"]
    for line in lines:
        err.print(line, markup=False, highlight=False, soft_wrap=True)


def explore(
    psa: Annotated[str, typer.Argument(help="PSA YAML file or preset name (see `cosmic psa list`)")],
    agent: Annotated[str | None, typer.Option("--agent", "-a", help=f"{AGENTS_HELP} (default ga; --resume and "
                                              "--show reuse the study's)")] = None,
    budget: Annotated[int | None,
                      typer.Option("--budget", "-n", help="evaluations in the study (default 1000)")] = None,
    time_limit: Annotated[float | None, typer.Option("--time-limit", help="stop after S seconds")] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="seed: the same seed gives the same trials")] = None,
    storage: Annotated[str | None, typer.Option("--storage", help="SQLAlchemy URL or SQLite file "
                                                "(default OUT/runs/<study>.db)")] = None,
    study: Annotated[str | None, typer.Option("--study", help="study name (default <psa>-<agent>-s<seed>)")] = None,
    out_dir: Annotated[Path | None, typer.Option("--out", help="output root: runs/ and reports/<study>/ go "
                                                 "under it (default $COSMIC_HOME, else .)")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="continue the stored study to the budget, with its "
                                         "agent, seed and hyper-parameters")] = False,
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
    risk: Annotated[str | None, typer.Option("--risk", help="optimise the pessimistic estimate: step time / (1 + "
                                             "the p90 (or p50) signed error of each configuration's validated "
                                             "regime); see docs/validation.md, Evidence")] = None,
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
    given = agent or fileconf.get("agent")
    # --resume and --show reuse the stored study's agent; a new study defaults to ga
    agent_name = given if given or resume or show is not None else "ga"
    if show is not None:
        _show(psa, show, agent=None if agent_name is None else str(agent_name),
              seed=seed if seed is not None else fileconf.get("seed"), storage=storage, study=study,
              out_dir=out_dir, json_out=json_out, risk=risk)
        return
    n = budget if budget is not None else int(fileconf.get("budget", 1000))
    if n < 1:
        fail(f"--budget must be >= 1, got {n}")
    if risk is not None and risk not in ("p50", "p90"):
        fail(f"--risk must be p50 or p90, got {risk!r}")
    summary, paths = _run(
        psa, agent=None if agent_name is None else str(agent_name), budget=n,
        time_limit=time_limit if time_limit is not None else fileconf.get("time_limit_s"),
        seed=seed if seed is not None else fileconf.get("seed"), storage=storage, study=study, out_dir=out_dir,
        resume=resume, batch=batch if batch is not None else fileconf.get("batch"), hyper=hyp,
        objectives=objective, quiet=json_out, worker=worker, risk=risk,
    )
    if json_out:
        d = summary.to_dict()
        d["files"] = {k: str(v) for k, v in paths.items()}
        emit_json(d)
        return
    _print_summary(summary, paths)
    out.print(f"report: {paths['report']}", soft_wrap=True, highlight=False)


def _show(psa: str, number: int, *, agent: str | None, seed: int | None, storage: str | None, study: str | None,
          out_dir: Path | None, json_out: bool, risk: str | None = None) -> None:
    """`cosmic explore PSA --show N`: trial N of the stored study, its configuration rebuilt by decoding its point."""
    import yaml
    from rich.table import Table
    from rich.text import Text

    from cosmic.commands._output import emit_json, out, output_root
    from cosmic.errors import StudyError
    from cosmic.explore import load_trial
    from cosmic.explore._study import jsonable
    from cosmic.psa import load_psa
    from cosmic.report import fmt_objectives, fmt_value

    space = load_psa(psa)
    root = output_root(out_dir)
    if study is None and agent is None:
        study = _stored_study(space.name, seed, storage, root / "runs")
    name = study or _default_name(space.name, str(agent), seed, risk)
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
        head.add_row("values", fmt_objectives([(o.name, o.direction) for o in space.objectives], t.values))
    head.add_row("violation", f"{t.violation:g}")
    if t.reason:
        head.add_row("reason", t.reason)
    head.add_row("point", str(t.point.tolist()))
    out.print(head)
    k = Table(title="knobs", title_justify="left")
    k.add_column("knob")
    k.add_column("value")
    for kn, v in (t.knobs or {}).items():
        k.add_row(kn, Text(fmt_value(v)))
    out.print(k)
    figs = t.figures if t.figures is not None else _flat(t.result_dict() or {})
    if figs:
        f = Table(title="figures" if t.figures is not None else "result (stored in the old format)",
                  title_justify="left")
        f.add_column("figure")
        f.add_column("value", justify="right")
        for fn, v in figs.items():
            f.add_row(fn, Text(fmt_value(v)))
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
    from rich.text import Text

    from cosmic.commands._output import out, print_result
    from cosmic.report import fmt_objective, fmt_value

    t = Table(title=f"study {summary.study_name}", show_header=False, title_justify="left")
    t.add_column("k", style="bold")
    t.add_column("v", overflow="fold")  # paths and names wrap, never cut
    t.add_row("agent", Text(f"{summary.agent} {fmt_value(summary.hyper)}"))
    t.add_row("evaluations", f"{summary.evaluations:,} ({summary.new_evaluations:,} this run, "
                             f"{summary.evals_per_s:,.0f}/s, {summary.wall_s:.2f} s)")
    c = summary.counts
    t.add_row("feasible / over mem. / rejected", f"{c['ok']:,} / {c['memory']:,} / {c['rejected']:,}")
    t.add_row("stopped by", summary.stopped + (" (space enumerated: best is certified)" if summary.complete else ""))
    names = ", ".join(n for n, _ in summary.objectives)
    t.add_row(f"best {names}", "no feasible point" if summary.best_values is None
              else ", ".join(fmt_objective(n, v) for (n, _), v in zip(summary.objectives, summary.best_values,
                                                                     strict=False)))
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
            k.add_row(name, Text(fmt_value(v)))
        out.print(k)
    if "best_yaml" in paths and "serving" in (summary.best_config or {}):
        from cosmic.commands.serve import _print as print_serving
        from cosmic.serving import load_serving_config, serve

        scfg = load_serving_config(paths["best_yaml"])
        print_serving(serve(scfg), scfg, f"best configuration ({paths['best_yaml']}; `cosmic serve` it)")
    elif "best_yaml" in paths:
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
    out.print(f"best configuration: {paths.get('best_yaml')}", soft_wrap=True, highlight=False)
    out.print(f"report: {paths['report']}", soft_wrap=True, highlight=False)


def register(app: typer.Typer) -> None:
    app.command()(explore)
    app.command()(demo)
