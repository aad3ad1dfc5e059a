"""`cosmic study cosmic-paper | scaling | dense-vs-moe`: COSMIC's single-stack vs full-stack case studies, with an HTML
report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from cosmic.commands._output import AGENTS_HELP, plural

study_app = typer.Typer(
    name="study",
    help="Case studies: single-stack vs full-stack search (COSMIC's grid, batch scaling) with an HTML report.",
    no_args_is_help=True,
)

_Budget = Annotated[str | None, typer.Option("--budget", help="evaluations per agent run: N for every agent, or "
                                                              "per agent, e.g. ga=2000,bo=48 (default: ga 2000, "
                                                              "tpe 100, bo 48, others 1000)")]
_Agents = Annotated[str, typer.Option("--agents", help=f"comma-separated agents: {AGENTS_HELP}")]
_Seeds = Annotated[int, typer.Option("--seeds", help="seeds per agent (0 .. K-1)")]
_Objective = Annotated[str, typer.Option("--objective", help="runtime, runtime*cost or runtime*bw")]
_Setting = Annotated[str, typer.Option("--setting", help="full-depth (presets as they are), cosmic (4 layers, "
                                                         "GPipe, 2 micro-batches) or both")]
_Backend = Annotated[str, typer.Option("--backend", help="local (process pool) or ray")]
_Address = Annotated[str | None, typer.Option("--ray-address", help="Ray cluster address (default: RAY_ADDRESS, "
                                                                    "else a local Ray)")]
_Workers = Annotated[int | None, typer.Option("--workers", help="processes (local) or CPUs of a local Ray "
                                                                "(default: all cores)")]
_Out = Annotated[Path, typer.Option("--out", help="output directory")]
_Json = Annotated[bool, typer.Option("--json", help="print the summary as JSON (no tables)")]
_Store = Annotated[bool, typer.Option("--store", help="also keep every agent run as an Optuna study in "
                                                      "OUT/studies/<job>.db")]
_Certify = Annotated[float | None, typer.Option("--certify", help="also run bnb on every cell and mode for at most "
                                                                "this many seconds: the report gives each agent's "
                                                                "gap to the certified optimum (or proven bound); "
                                                                "objective runtime only")]
_Models = Annotated[str | None, typer.Option("--models", help="comma-separated subset of the study's models")]
_Systems = Annotated[str | None, typer.Option("--systems", help="comma-separated subset of s1, s2, s3")]


def _split(text: str | None) -> list[str] | None:
    if text is None:
        return None
    items = [t.strip() for t in text.split(",") if t.strip()]
    return items or None


def _run(study: str, *, out_dir: Path, agents: str, seeds: int, budget: str | None, objective: str, setting: str,
         backend: str, ray_address: str | None, workers: int | None, json_out: bool, store: bool,
         models: str | None, systems: str | None, batches: list[int] | None = None,
         certify: float | None = None) -> None:
    from rich.console import Console

    from cosmic.commands._output import emit_json
    from cosmic.explore.backends import make_backend
    from cosmic.study import make_jobs, run_case_study

    agent_list = _split(agents) or []
    options: dict[str, Any] = dict(agents=agent_list, seeds=seeds, budget=budget, objective=objective,
                                   setting=setting, models=_split(models), systems=_split(systems), batches=batches,
                                   certify_s=certify)
    make_jobs(study, **options)  # every name and option checked before a worker or Ray starts
    be = make_backend(backend, workers=workers, address=ray_address)
    console = Console(stderr=True)
    progress = _Progress(console, f"{study} on {be.name} ({plural(be.workers, 'worker')})", json_out)
    try:
        summary = run_case_study(study, out_dir, backend=be, store=store, estimate=True,
                                 on_start=progress.start, on_done=progress.done, **options)
    finally:
        progress.stop()
        if hasattr(be, "shutdown"):
            be.shutdown()
    if json_out:
        emit_json(summary)
        return
    _print(summary)


_MODES = (("workload", "×wl"), ("collective", "×coll"), ("network", "×net"))
_UNITS = {"runtime": "s", "runtime*cost": "s·USD", "runtime*bw": "s·GB/s ÷ 2000"}


class _Progress:
    """The progress bar on stderr, the estimate before the run and the time left after the first jobs."""

    def __init__(self, console: Any, title: str, quiet: bool) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.console = console
        self.title = title
        self.bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("{task.fields[last]}"), TimeElapsedColumn(), TextColumn("{task.fields[eta]}"),
                            console=console, disable=quiet)
        self.task: Any = None
        self.announced = False

    def start(self, eta: Any) -> None:
        from cosmic.study import format_duration
        from cosmic.study._eta import HOURS_WARNING_S

        total = eta.total_s()
        per = ", ".join(f"{a} {n} × ~{format_duration(s)}" for a, (n, s) in eta.by_agent().items())
        self.console.print(f"{len(eta.jobs)} agent runs ({per}); estimated wall time {format_duration(total)} "
                           f"on {plural(eta.workers, 'worker')} (from a pilot run of each agent)")
        if total >= HOURS_WARNING_S:
            slow = max(eta.by_agent().items(), key=lambda kv: kv[1][0] * kv[1][1])[0]
            self.console.print(f"[bold yellow]warning:[/] this run will take hours (~{format_duration(total)}), "
                               f"mostly {slow!r}: lower its budget (--budget {slow}=N), drop it from --agents, or "
                               "run fewer --models/--systems/--seeds; Ctrl-C stops it")
        self.bar.start()
        self.task = self.bar.add_task(self.title, total=len(eta.jobs), last="", eta="")

    def done(self, _i: int, r: Any, eta: Any) -> None:
        from cosmic.study import format_duration

        left = eta.remaining_s()
        self.bar.update(self.task, advance=1, last=f"{r.job.key} {r.job_s:.1f} s",
                        eta=f"~{format_duration(left)} left" if len(eta.done) < len(eta.jobs) else "")
        if not self.announced and len(eta.done) >= min(eta.workers, len(eta.jobs)) and len(eta.done) < len(eta.jobs):
            self.announced = True
            self.console.print(f"ETA: ~{format_duration(left)} left after {len(eta.done)} of {len(eta.jobs)} agent "
                               f"runs (measured: {r.job.label} {r.job_s:.1f} s per run)")

    def stop(self) -> None:
        if self.task is not None:
            self.bar.stop()


def _print(summary: dict[str, Any]) -> None:
    """One table per setting that stays readable at 80 columns: model names whole, speedup headers abbreviated
    (explained under the table), flags listed under it instead of in a column."""
    from rich import box
    from rich.table import Table

    from cosmic.commands._output import out

    obj = summary["options"]["objective"]
    unit = _UNITS.get(obj, "")
    scaling = summary["study"] == "scaling"
    for setting, rng in summary["speedup_range"].items():
        t = Table(title=f"{summary['study']} — setting {setting}, objective {obj}" + (f" ({unit})" if unit else ""),
                  title_justify="left", box=box.SIMPLE_HEAD, padding=(0, 1))
        t.add_column("model", no_wrap=True)
        t.add_column("sys", no_wrap=True)
        if scaling:
            t.add_column("batch", justify="right", no_wrap=True)
        for col in ("baseline", "full", *(h for _, h in _MODES), "×base"):
            t.add_column(col, justify="right", no_wrap=True)
        flags: list[str] = []
        for c in summary["cells"]:
            if c["setting"] != setting:
                continue
            sp = c["speedup_full_over"]
            full = (c["modes"].get("full") or {}).get("best")
            mark = "*" if c["flags"] else ""
            row = [c["model"] + mark, c["system"].upper()] + ([f"{c['global_batch']:,}"] if scaling else [])
            t.add_row(*row, f"{c['baseline']['objective']:.4g}", "-" if full is None else f"{full:.4g}",
                      *(f"{sp[m]:.2f}" if m in sp else "-" for m, _ in _MODES),
                      f"{c['speedup_vs_baseline'].get('full', 0):.2f}")
            flags += [f"* {c['model']} {c['system'].upper()} {f['mode']}: {f['reason']}" for f in c["flags"]]
        out.print(t)
        out.print("×wl, ×coll, ×net: best full-stack over best workload-, collective-, network-only search; "
                  "×base: full-stack over the baseline configuration", soft_wrap=False, highlight=False)
        for line in flags:
            out.print(line, markup=False, highlight=False)
        for line in _certificate_lines(summary["cells"], setting):
            out.print(line, markup=False, highlight=False)
        lo, hi = rng["min"], rng["max"]
        if lo is not None:
            out.print(f"full-stack speedup over single-stack: {lo:.2f}x - {hi:.2f}x (COSMIC: 1.50x - 48.41x); "
                      f"flagged cells: {rng['flagged_cells']}", highlight=False)
    est = summary.get("estimated_wall_s")
    out.print(f"{plural(summary['n_trials'], 'evaluation')} in {summary['wall_s']:.1f} s on {summary['backend']} "
              f"({plural(summary['workers'], 'worker')})"
              + (f"; estimated before the run: {est:.1f} s" if est is not None else ""), highlight=False)
    for k, v in summary["files"].items():
        out.print(f"{k}: {Path(v).absolute()}", soft_wrap=True, highlight=False)


def _certificate_lines(cells: list[dict[str, Any]], setting: str) -> list[str]:
    """One line per cell and mode with a proof: the optimum (or bound) and each agent's gap to it."""
    lines = []
    for c in cells:
        if c["setting"] != setting:
            continue
        for mode, e in c["modes"].items():
            cert = e.get("certificate")
            if not cert or cert["lower_bound"] is None:
                continue
            exact = cert["certified"]
            head = (f"optimum {cert['optimum']:.6g} (certified)" if exact else
                    f"optimum >= {cert['lower_bound']:.6g} (proven gap {cert['gap_pct']:.3g}%)")
            gaps = ", ".join(f"{a} {'+' if exact else '<= +'}{g:.3g}%" for a, g in cert["gap_by_agent"].items()
                             if g is not None)
            lines.append(f"{c['model']} {c['system'].upper()} {mode}: {head}; {gaps or 'no agent found a point'}")
    return lines


@study_app.command("cosmic-paper")
def cosmic_paper(
    budget: _Budget = None,
    agents: _Agents = "ga,tpe",
    seeds: _Seeds = 1,
    objective: _Objective = "runtime",
    setting: _Setting = "full-depth",
    backend: _Backend = "local",
    ray_address: _Address = None,
    workers: _Workers = None,
    out_dir: _Out = Path("reports/cosmic-paper"),
    json_out: _Json = False,
    store: _Store = False,
    models: _Models = None,
    systems: _Systems = None,
    certify: _Certify = None,
) -> None:
    """COSMIC's grid: 4 models x 3 systems x 4 modes; full-stack speedup over each single-stack mode per cell."""
    _run("cosmic-paper", out_dir=out_dir, agents=agents, seeds=seeds, budget=budget, objective=objective,
         setting=setting, backend=backend, ray_address=ray_address, workers=workers, json_out=json_out, store=store,
         models=models, systems=systems, certify=certify)


@study_app.command("scaling")
def scaling(
    budget: _Budget = None,
    agents: _Agents = "ga,tpe",
    seeds: _Seeds = 1,
    objective: _Objective = "runtime",
    setting: _Setting = "full-depth",
    backend: _Backend = "local",
    ray_address: _Address = None,
    workers: _Workers = None,
    out_dir: _Out = Path("reports/scaling"),
    json_out: _Json = False,
    store: _Store = False,
    models: _Models = None,
    certify: _Certify = None,
    batches: Annotated[str | None, typer.Option("--batches", help="comma-separated global batches "
                                                                  "(default 1024,2048,4096,8192,16384)")] = None,
) -> None:
    """GPT-3 175B, LLaMA-7B and ViT-Large on S2 with global batch 1024 ... 16384, single- vs full-stack."""
    from cosmic.commands._output import fail

    bs = None
    if batches:
        try:
            bs = [int(b) for b in _split(batches) or []]
        except ValueError:
            fail(f"--batches: expected comma-separated integers, got {batches!r}")
    _run("scaling", out_dir=out_dir, agents=agents, seeds=seeds, budget=budget, objective=objective,
         setting=setting, backend=backend, ray_address=ray_address, workers=workers, json_out=json_out, store=store,
         models=models, systems=None, batches=bs, certify=certify)


@study_app.command("dense-vs-moe")
def dense_vs_moe(
    budget: _Budget = None,
    agents: _Agents = "ga,tpe",
    seeds: _Seeds = 1,
    objective: _Objective = "runtime",
    setting: Annotated[str, typer.Option("--setting", help="full-depth (the presets as they are)")] = "full-depth",
    backend: _Backend = "local",
    ray_address: _Address = None,
    workers: _Workers = None,
    out_dir: _Out = Path("reports/dense-vs-moe"),
    json_out: _Json = False,
    store: _Store = False,
    models: _Models = None,
    certify: _Certify = None,
) -> None:
    """Mixtral 8x22B and its dense twin (same FLOPs per token) on 256 H100: single- vs full-stack search of each."""
    _run("dense-vs-moe", out_dir=out_dir, agents=agents, seeds=seeds, budget=budget, objective=objective,
         setting=setting, backend=backend, ray_address=ray_address, workers=workers, json_out=json_out, store=store,
         models=models, systems=None, certify=certify)


def register(app: typer.Typer) -> None:
    app.add_typer(study_app, name="study")
