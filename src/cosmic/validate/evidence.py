"""Build the evidence table that every `Result` carries from the published training runs.

``python -m cosmic.validate.evidence build [CSV] [--out FILE]`` compares every row of a training-runs CSV (as
``cosmic validate`` does), counts each compared run in its configuration's regime at every level of
`cosmic.sim.regime.LEVELS`, and writes per regime the number of runs and the signed step-time error's p50 and p90
(`cosmic.sim.evidence` gives the sign convention) to the package data ``cosmic/catalog/evidence.json``, with the
source file's SHA-256 and the cosmic version and commit that produced it. ``check`` says whether the shipped table
is what ``build`` would write; ``show`` prints it as Markdown. Re-run ``build`` after any change that moves
predictions.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

from cosmic.errors import CosmicError
from cosmic.sim.evidence import MIN_RUNS
from cosmic.sim.regime import LEVELS, level_key
from cosmic.validate.report import percentile, validate_file
from cosmic.validate.table import Kind
from cosmic.validate.training import Comparison

DEFAULT_CSV = Path("../shared/validation/training_runs.csv")
SHIPPED = Path(__file__).resolve().parents[1] / "catalog" / "evidence.json"
DECIMALS = 4
"""Errors are stored to 1e-4 percentage points: far below any difference that matters, and above the last-digit
noise a different floating-point library could give."""
SIGN = ("signed error = (predicted - measured) / measured of the step time, in percent (negative = cosmic too "
        "fast); p50 = median; p90 = 10th percentile of the signed errors (90% of runs erred at or above it); "
        "pessimistic step time = predicted / (1 + p90/100)")


def signed_time_error_pct(c: Comparison) -> float:
    """A compared run's signed step-time error, ``(predicted - measured) / measured`` of the step time, from its
    speed error (+ = predicted faster, for every metric): ``1 / (1 + speed) - 1``.

    Example:
        >>> round(signed_time_error_pct(Comparison("r", "s", 1, speed_error_pct=25.0)), 9)
        -20.0
    """
    return (1.0 / (1.0 + (c.speed_error_pct or 0.0) / 100.0) - 1.0) * 100.0


def _produced_by() -> dict[str, str]:
    from cosmic import __version__

    try:
        commit = subprocess.run(["git", "describe", "--always", "--dirty", "--abbrev=12"], cwd=SHIPPED.parent,
                                capture_output=True, text=True, timeout=10, check=False).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return {"cosmic_version": __version__, "commit": commit or "unknown"}


def build(csv: str | Path) -> dict[str, Any]:
    """The evidence table of a training-runs CSV (raises `CosmicError` for a file that is not one)."""
    path = Path(csv)
    report = validate_file(path)
    if report.kind is not Kind.TRAINING:
        raise CosmicError(f"{path}: not a training-runs CSV (evidence is built from training runs)")
    errors: list[dict[str, list[float]]] = [defaultdict(list) for _ in LEVELS]
    for c in report.compared:
        if c.regime is None:
            continue
        e = signed_time_error_pct(c)
        for i in range(len(LEVELS)):
            key = level_key(c.regime, i)
            if key is not None:
                errors[i][key].append(e)
    levels = []
    for (name, _parts), by_key in zip(LEVELS, errors, strict=True):
        regimes = {
            key: {"runs": len(es), "p50_error_pct": round(percentile(es, 50), DECIMALS),
                  "p90_error_pct": round(percentile(es, 10), DECIMALS)}
            for key, es in sorted(by_key.items())
        }
        levels.append({"name": name, "regimes": regimes})
    return {
        "format": 1,
        "sign": SIGN,
        "min_runs": MIN_RUNS,
        "source": {"file": path.name, "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
                   "rows_total": len(report.rows), "rows_compared": len(report.compared)},
        "produced_by": _produced_by(),
        "levels": levels,
    }


def same_table(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether two tables agree in everything but who produced them."""
    return {k: v for k, v in a.items() if k != "produced_by"} == {k: v for k, v in b.items() if k != "produced_by"}


def write(table: dict[str, Any], out: Path) -> None:
    out.write_text(json.dumps(table, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def markdown(table: dict[str, Any]) -> str:
    """The regimes of a table as a Markdown table (what docs/validation.md shows), finest level first.

    Example:
        >>> t = {"levels": [{"regimes": {"a · b": {"runs": 12, "p50_error_pct": -3.0, "p90_error_pct": -9.5}}}]}
        >>> print(markdown(t).splitlines()[-1])
        | 1 | a · b | 12 | -3.0% | -9.5% |
    """
    rows = ["| level | regime | runs | p50 | p90 |", "|---|---|---|---|---|"]
    for i, level in enumerate(table.get("levels") or []):
        for key, e in level["regimes"].items():
            thin = "" if e["runs"] >= MIN_RUNS else " (fewer than the minimum)"
            rows.append(f"| {i + 1} | {key}{thin} | {e['runs']} | {e['p50_error_pct']:+.1f}% | "
                        f"{e['p90_error_pct']:+.1f}% |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m cosmic.validate.evidence", description=__doc__.split("\n\n")[0])
    ap.add_argument("action", choices=("build", "check", "show"),
                    help="build: write the table; check: compare it with what build would write; show: print it "
                         "as Markdown")
    ap.add_argument("csv", nargs="?", default=str(DEFAULT_CSV), help=f"training-runs CSV (default {DEFAULT_CSV})")
    ap.add_argument("--out", default=str(SHIPPED), help="table file (default: the package's catalog/evidence.json)")
    args = ap.parse_args(argv)
    out = Path(args.out)
    if args.action == "show":
        if not out.is_file():
            print(f"error: {out}: no evidence table (run `python -m cosmic.validate.evidence build`)", file=sys.stderr)
            return 2
        print(markdown(json.loads(out.read_text(encoding="utf-8"))))
        return 0
    try:
        if not Path(args.csv).is_file():
            raise CosmicError(f"{args.csv}: no such file (give the training-runs CSV)")
        table = build(args.csv)
        if args.action == "build":
            write(table, out)
            runs = sum(e["runs"] for e in table["levels"][-1]["regimes"].values())
            print(f"{out}: {runs} runs of {table['source']['rows_total']} rows in {args.csv}")
            return 0
        shipped = json.loads(out.read_text(encoding="utf-8")) if out.is_file() else {}
    except CosmicError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if same_table(table, shipped):
        print(f"{out}: up to date with {args.csv}")
        return 0
    print(f"{out}: stale; run `python -m cosmic.validate.evidence build {args.csv}`", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
