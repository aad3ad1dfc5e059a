"""The evidence table: built from the published runs, shipped as package data, never stale."""

from __future__ import annotations

import json

import pytest

from cosmic import catalog
from cosmic.sim.evidence import MIN_RUNS
from cosmic.sim.regime import LEVELS, level_key
from cosmic.validate import mapping, validate_file
from cosmic.validate.evidence import SHIPPED, build, main, same_table, signed_time_error_pct


def test_the_shipped_table_is_what_build_writes(shared_dir):
    csv = shared_dir / "training_runs.csv"
    built = build(csv)
    shipped = json.loads(SHIPPED.read_text(encoding="utf-8"))
    assert shipped["source"]["sha256"] == built["source"]["sha256"], (
        f"{SHIPPED} was built from another {csv.name}; run `python -m cosmic.validate.evidence build {csv}`")
    assert same_table(built, shipped), f"{SHIPPED} is stale; run `python -m cosmic.validate.evidence build {csv}`"
    assert catalog.evidence_table() == shipped


def test_every_compared_run_is_counted_once_per_level(shared_dir):
    csv = shared_dir / "training_runs.csv"
    report = validate_file(csv)
    table = build(csv)
    assert table["min_runs"] == MIN_RUNS and len(table["levels"]) == len(LEVELS)
    runs = [r for r in report.compared if r.regime is not None]
    assert len(runs) == len(report.compared) == table["source"]["rows_compared"]
    for i, level in enumerate(table["levels"]):
        keyed = [r for r in runs if level_key(r.regime, i) is not None]
        assert sum(e["runs"] for e in level["regimes"].values()) == len(keyed)
        for e in level["regimes"].values():
            assert e["p90_error_pct"] <= e["p50_error_pct"]  # the pessimistic bound is never above the median
    # one regime recomputed by hand: its runs' signed step-time errors, median and 10th percentile
    key = "pytorch-fsdp · ampere · 16-bit · zero-3/fsdp"
    errs = sorted(signed_time_error_pct(r) for r in runs if level_key(r.regime, 1) == key)
    entry = table["levels"][1]["regimes"][key]
    assert entry["runs"] == len(errs) >= MIN_RUNS
    n = len(errs)
    median = errs[n // 2] if n % 2 else (errs[n // 2 - 1] + errs[n // 2]) / 2
    assert entry["p50_error_pct"] == pytest.approx(median, abs=1e-4)
    pos = (n - 1) * 0.1
    lo = int(pos)
    assert entry["p90_error_pct"] == pytest.approx(errs[lo] + (errs[lo + 1] - errs[lo]) * (pos - lo), abs=1e-4)


def test_signed_error_is_the_step_time_error(shared_dir):
    report = validate_file(shared_dir / "training_runs.csv")
    steps = [r for r in report.compared if r.metric == "step_time_s"]
    assert steps
    for r in steps:  # on step-time rows the validator's own error is the step-time error
        assert signed_time_error_pct(r) == pytest.approx(r.error_pct, abs=1e-9)


def test_framework_cells_name_their_family():
    cells = {"Composer / llm-foundry (PyTorch FSDP)": "pytorch-fsdp", "Megatron-Bridge / NeMo 25.11": "megatron-core",
             "Megatron-DeepSpeed (3D parallel)": "deepspeed", "Megatron-LM (Jan 2021)": "megatron-lm",
             "MaxText (JAX)": "jax", "torchtitan": "pytorch-fsdp", "some in-house stack": "unspecified"}
    assert {c: mapping.framework_family(c) for c in cells} == cells


def test_the_command_checks_and_refuses_bad_input(tmp_path, shared_dir, capsys):
    csv = shared_dir / "training_runs.csv"
    out = tmp_path / "evidence.json"
    assert main(["build", str(csv), "--out", str(out)]) == 0
    assert main(["check", str(csv), "--out", str(out)]) == 0
    data = json.loads(out.read_text(encoding="utf-8"))
    data["levels"][0]["regimes"].popitem()
    out.write_text(json.dumps(data), encoding="utf-8")
    assert main(["check", str(csv), "--out", str(out)]) == 1
    assert "stale" in capsys.readouterr().err
    assert main(["build", str(tmp_path / "missing.csv"), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "missing.csv" in err[0]
    coll = shared_dir / "collectives.csv"
    assert main(["build", str(coll), "--out", str(out)]) == 2
    assert "not a training-runs CSV" in capsys.readouterr().err
