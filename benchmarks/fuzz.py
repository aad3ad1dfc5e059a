"""Robustness fuzzing: N generated configs and PSA files, each must give a one-line error or a sane result.

Runs the generators of ``tests/fuzz/generators.py`` (mutated example configs and `cosmic psa sample` outputs,
random YAML, mutated PSA files, the Python API) outside pytest, counts the cases that break the property (a
traceback, an exit code other than 0 or 2, an error that is not one line naming the file, NaN/inf/negative numbers
in a result, or a case slower than 10 s) and prints the first few failing inputs.

    python benchmarks/fuzz.py [--cases 10000] [--seed 0] [--json]

Exit code 1 if any case failed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import warnings
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("COSMIC_FUZZ_CASE_LIMIT_S", "10")  # the speed target per case (the test suite allows 30 s)

from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis.errors import HypothesisWarning

from tests.fuzz.generators import Case, all_cases, check_case


def run(n_cases: int, seed_value: int, *, shown: int = 5) -> dict[str, object]:
    kinds: Counter[str] = Counter()
    outcomes: Counter[str] = Counter()
    failures: list[dict[str, str]] = []
    n_failed = 0
    slowest = 0.0

    with tempfile.TemporaryDirectory(prefix="cosmic-fuzz-") as tmp:
        workdir = Path(tmp)

        @seed(seed_value)
        @settings(max_examples=n_cases, database=None, deadline=None, phases=[Phase.generate],
                  suppress_health_check=list(HealthCheck))
        @given(all_cases())
        def one(case: Case) -> None:
            nonlocal n_failed, slowest
            kinds[case.kind] += 1
            o = check_case(case, workdir)
            slowest = max(slowest, o.elapsed_s)
            outcomes["failed" if o.problems else "result" if o.code == 0 else "one-line error"] += 1
            if o.problems:
                n_failed += 1
                if len(failures) < shown:
                    failures.append({"input": case.describe(), "problem": o.problems[0][-1500:]})

        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", HypothesisWarning)  # "overly large repr" of the huge-string cases
            one()
        wall = time.perf_counter() - t0
    return {
        "cases": sum(kinds.values()),
        "failures": n_failed,
        "by_kind": dict(kinds),
        "by_outcome": dict(outcomes),
        "wall_s": round(wall, 1),
        "slowest_case_s": round(slowest, 3),
        "seed": seed_value,
        "first_failures": failures,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=10_000, help="number of generated cases (default 10,000)")
    ap.add_argument("--seed", type=int, default=0, help="hypothesis seed (default 0)")
    ap.add_argument("--json", action="store_true", help="print the summary as JSON")
    args = ap.parse_args()
    summary = run(args.cases, args.seed)
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        kinds = ", ".join(f"{k} {v:,}" for k, v in sorted(summary["by_kind"].items()))  # type: ignore[union-attr]
        print(f"cases run: {summary['cases']:,} ({kinds}), seed {summary['seed']}")
        outs = ", ".join(f"{k} {v:,}" for k, v in sorted(summary["by_outcome"].items()))  # type: ignore[union-attr]
        print(f"failures:  {summary['failures']:,} ({outs})")
        print(f"wall time: {summary['wall_s']} s (slowest case {summary['slowest_case_s']} s)")
        for i, f in enumerate(summary["first_failures"], 1):  # type: ignore[union-attr]
            print(f"\n--- failure {i}: {f['input']}\n{f['problem']}")
    sys.exit(1 if summary["failures"] else 0)


if __name__ == "__main__":
    main()
