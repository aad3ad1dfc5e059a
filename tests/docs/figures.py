"""The figures the README and docs quote, each produced by the command that backs it.

A figure in a Markdown file sits between markers, on one line or over several:

    <!-- figure: NAME -->text the generator NAME prints<!-- /figure -->

``python -m tests.docs.figures`` lists the figures that differ from what the generators print now;
``python -m tests.docs.figures --write`` rewrites them in place. ``tests/docs/test_figures.py`` fails while any
differs, so a change that moves a prediction also has to move the text that quotes it.

Timing figures (evaluations per second, wall times) are measurements of a machine at a date; they are written as
such next to their command and are not generated. Benchmarks that take minutes to hours (``bench_agents.py``) are
not re-run here either.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
SHARED = ROOT.parent / "shared" / "validation"
DOCS = (ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")))

MARKER = re.compile(r"<!-- figure: (?P<name>[a-z0-9-]+) -->(?P<body>.*?)<!-- /figure -->", re.DOTALL)

# Published measurements the examples are compared with (each with its source).
MEGATRON_MEASURED_S = 4.51e18 / (1024 * 140e12)
"""Narayanan et al. 2021 (arXiv 2104.04473): GPT-3 175B on 1,024 A100 at ~140 TFLOP/s per GPU counting recompute,
4.51e18 FLOPs per iteration by their eq. (3): about 31.5 s per step."""
LLAMA3_MEASURED_MFU = 0.41
"""Llama 3 Herd of Models (arXiv 2407.21783) Table 4: 405B on 16,384 H100 at 8K context, 400 TFLOP/s, 41% BF16 MFU."""


def _pct(x: float, digits: int = 0) -> str:
    """A signed percentage with a real minus sign: +11%, −5%."""
    s = f"{x:+.{digits}f}%"
    return s.replace("-", "−")


@cache
def _simulated(name: str) -> tuple[Any, Any]:
    import cosmic

    cfg = cosmic.load_config(EXAMPLES / name)
    return cfg, cosmic.simulate(cfg)


def examples_table() -> str:
    """The README's table of examples, with what each predicts."""
    _, s1 = _simulated("cosmic-s1-gpt3-175b.yaml")
    _, meg = _simulated("megatron-gpt3-175b-1024xa100.yaml")
    _, ll = _simulated("llama3-405b-16384xh100.yaml")
    err = (meg.step_time_s - MEGATRON_MEASURED_S) / MEGATRON_MEASURED_S * 100
    bubble = ll.breakdown["bubble_s"] / ll.step_time_s * 100
    rows = [
        ("`examples/cosmic-s1-gpt3-175b.yaml` (s2, s3)",
         f"COSMIC's three systems with its baseline GPT-3 175B workload, full depth: S1 predicts "
         f"{s1.step_time_s:,.1f} s per step"),
        ("`examples/megatron-gpt3-175b-1024xa100.yaml`",
         f"GPT-3 175B on 1,024 A100 (Narayanan et al. 2021): predicts {meg.step_time_s:.1f} s vs "
         f"≈{MEGATRON_MEASURED_S:.1f} s measured ({_pct(err, 1)})"),
        ("`examples/llama3-405b-16384xh100.yaml`",
         f"Llama 3 405B on 16,384 H100 as Meta ran it (TP 8, PP 16, DP 128, ZeRO-2, sequence 8,192): "
         f"{ll.memory_per_device_gb:.1f} GB of {ll.memory_capacity_bytes / 1e9:.0f} GB, predicts "
         f"{ll.step_time_s:.2f} s, {ll.mfu * 100:.0f}% MFU vs {LLAMA3_MEASURED_MFU * 100:.0f}% measured: 1F1B stands "
         f"in for Meta's uneven interleaved stages (issue 15), so the bubble is {bubble:.0f}% of the step"),
    ]
    return "\n".join(["", "", "| file | what |", "|---|---|", *(f"| {a} | {b} |" for a, b in rows), "", ""])


def megatron_step() -> str:
    _, meg = _simulated("megatron-gpt3-175b-1024xa100.yaml")
    return f"{meg.step_time_s:.1f} s"


@cache
def _validation(name: str) -> dict[str, Any]:
    import json
    import subprocess

    p = subprocess.run([sys.executable, "-m", "cosmic.cli", "validate", str(SHARED / name), "--json"],
                       capture_output=True, text=True, check=True, timeout=600)
    return dict(json.loads(p.stdout))


def validation_table() -> str:
    """`cosmic validate ../shared/validation/*.csv --json`: rows, compared, median and p90 |error|."""
    tr, co = _validation("training_runs.csv"), _validation("collectives.csv")
    errs = [abs(r["error_pct"]) for r in tr["rows"] if r.get("error_pct") is not None]
    within, beyond = sum(e <= 15 for e in errs), sum(e > 35 for e in errs)
    ok_tr = (tr["rows_compared"] >= 0.8 * tr["rows_total"] and tr["median_ape_pct"] <= 15
             and tr["p90_ape_pct"] <= 35)
    ok_co = co["rows_compared"] >= 0.8 * co["rows_total"] and co["median_ape_pct"] <= 20
    lines = [
        "",
        "",
        "| data | rows | compared | median \\|error\\| | p90 \\|error\\| |",
        "|---|---|---|---|---|",
        f"| training runs (step time, tokens/s, TFLOP/s, MFU) | {tr['rows_total']} | {tr['rows_compared']} | "
        f"{tr['median_ape_pct']:.1f}% | {tr['p90_ape_pct']:.1f}% |",
        f"| collectives (nccl-tests bus bandwidth) | {co['rows_total']} | {co['rows_compared']} | "
        f"{co['median_ape_pct']:.1f}% | {co['p90_ape_pct']:.1f}% |",
        "",
        "Targets: training runs ≥ 80% compared, median ≤ 15%, p90 ≤ 35%; collectives ≥ 80% compared, median ≤ 20% — "
        + ("all met" if ok_tr and ok_co else "not all met")
        + f" ({within} of {len(errs)} training rows within 15%, {beyond} beyond 35%).",
    ]
    return "\n".join(lines)


def validation_studies() -> str:
    """Median signed error of the studies the README names (`by_study` of `cosmic validate --json`)."""
    by = _validation("training_runs.csv")["by_study"]

    def med(study: str) -> str:
        return _pct(by[study]["median_error_pct"])

    fsdp = by["mosaicml_llmfoundry_mpt"]
    return (f"Korthikanti 2022 ({med('korthikanti2022')} median step-time error), Narayanan 2021 Table 1 "
            f"({med('narayanan2021_table1')} TFLOP/s), Megatron-Core H100 ({med('megatron_core_h100_2024')}), "
            f"MLPerf v3.1/v4.0 GPT-3 ({med('mlperf_training_v3.1_gpt3')} / {med('mlperf_training_v4.0_gpt3')}) "
            f"are close; PyTorch-FSDP (llm-foundry, {fsdp['compared']} rows) runs are predicted "
            f"{fsdp['median_speed_error_pct']:.0f}% too fast at the median")


@cache
def _exhaustive() -> Any:
    from cosmic.explore import run_study
    from cosmic.psa import load_psa

    space = load_psa(ROOT / "benchmarks" / "spaces" / "gpt3-175b-1024-workload.yaml")
    s = run_study(space, "exhaustive", budget=space.size_feasible, seed=0, persist=False)
    assert s.complete
    return s


def exhaustive_best() -> str:
    """`benchmarks/bench_exhaustive.py`: the certified best of every feasible point of its space."""
    s = _exhaustive()
    k = s.best_knobs
    rec = k.get("recompute", "none")
    return (f"every one of the {s.evaluations:,} feasible points and returns the certified best: "
            f"{s.best_objective:.2f} s with TP {k['tp']}, PP {k['pp']}, SP {k['sp']}, DP {k['dp']}, micro-batch "
            f"{k['micro_batch']}, ZeRO-{k['zero']}, {rec} recompute"
            + (", sequence parallelism" if k.get("sequence_parallel") else "")
            + f" and rank order {','.join(k['rank_order'])}")


def exhaustive_fit() -> str:
    s = _exhaustive()
    return f"{s.counts['ok']:,}"


def exhaustive_fit_of_all() -> str:
    s = _exhaustive()
    return f"{s.counts['ok']:,} of {s.evaluations:,}"


def exhaustive_best_s() -> str:
    s = _exhaustive()
    return f"all {s.evaluations:,} points (certified best {s.best_objective:.3f} s"


GENERATORS: dict[str, Callable[[], str]] = {
    "examples": examples_table,
    "megatron-step": megatron_step,
    "validation": validation_table,
    "validation-studies": validation_studies,
    "exhaustive-best": exhaustive_best,
    "exhaustive-fit": exhaustive_fit,
    "exhaustive-fit-of-all": exhaustive_fit_of_all,
    "exhaustive-best-s": exhaustive_best_s,
}
NEEDS_SHARED = {"validation", "validation-studies"}
"""Figures computed from ../shared/validation (skipped when it is absent)."""


def markers(path: Path) -> list[tuple[str, str]]:
    """(name, text) of every figure in `path`."""
    return [(m["name"], m["body"]) for m in MARKER.finditer(path.read_text(encoding="utf-8"))]


def stale(path: Path, names: set[str] | None = None) -> list[tuple[str, str, str]]:
    """(name, in the file, generated now) for every figure of `path` that differs."""
    out = []
    for name, body in markers(path):
        if names is not None and name not in names:
            continue
        now = GENERATORS[name]()
        if body != now:
            out.append((name, body, now))
    return out


def rewrite(path: Path) -> int:
    """Rewrite the figures of `path` with what the generators print; returns how many changed."""
    text = path.read_text(encoding="utf-8")
    changed = 0

    def sub(m: re.Match[str]) -> str:
        nonlocal changed
        now = GENERATORS[m["name"]]()
        changed += now != m["body"]
        return f"<!-- figure: {m['name']} -->{now}<!-- /figure -->"

    new = MARKER.sub(sub, text)
    if new != text:
        path.write_text(new, encoding="utf-8")
    return changed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write", action="store_true", help="rewrite the figures in place")
    args = ap.parse_args()
    bad = 0
    for path in DOCS:
        if args.write:
            n = rewrite(path)
            if n:
                print(f"{path.relative_to(ROOT)}: {n} figure(s) rewritten")
        else:
            for name, body, now in stale(path):
                bad += 1
                print(f"{path.relative_to(ROOT)}: figure {name} is stale:\n  file: {body!r}\n  now:  {now!r}")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
