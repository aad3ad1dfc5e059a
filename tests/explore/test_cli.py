"""`cosmic explore` and `cosmic demo` from the command line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import cosmic

COLLECTIVE = "cosmic-s1-gpt3-175b-collective"
BIN = Path(sys.executable).parent / "cosmic"


def cosmic_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN), *args], capture_output=True, text=True, cwd=cwd, timeout=300)


def test_explore_json_writes_study_best_yaml_and_report(tmp_path):
    r = cosmic_cli("explore", COLLECTIVE, "--agent", "ga", "--budget", "64", "--seed", "0", "--out", "o",
                   "--json", "-H", "population=16", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert {"best_objective", "best_config", "evaluations", "wall_s"} <= set(d)
    assert d["evaluations"] == 64 and d["hyper"]["population"] == 16
    name = f"{COLLECTIVE}-ga-s0"
    assert (tmp_path / "o" / "runs" / f"{name}.db").exists()
    best = tmp_path / "o" / "reports" / name / "best.yaml"
    sim = cosmic_cli("simulate", str(best), "--json", cwd=tmp_path)
    assert sim.returncode == 0, sim.stderr
    assert json.loads(sim.stdout)["step_time_s"] == pytest.approx(d["best_objective"], rel=1e-12)
    assert (tmp_path / "o" / "reports" / name / "report.html").stat().st_size > 100_000
    # resume to a larger budget, then an existing study without --resume is refused with one line
    r2 = cosmic_cli("explore", COLLECTIVE, "--agent", "ga", "--budget", "96", "--seed", "0", "--out", "o",
                    "--json", "--resume", cwd=tmp_path)
    assert r2.returncode == 0, r2.stderr
    assert json.loads(r2.stdout)["evaluations"] == 96 and json.loads(r2.stdout)["new_evaluations"] == 32
    r3 = cosmic_cli("explore", COLLECTIVE, "--agent", "ga", "--budget", "96", "--seed", "0", "--out", "o", "--json",
                    cwd=tmp_path)
    assert r3.returncode == 2 and r3.stderr.count("\n") == 1 and "--resume" in r3.stderr


def test_explore_human_output_and_objective_override(tmp_path):
    r = cosmic_cli("explore", COLLECTIVE, "--agent", "random", "--budget", "20", "--seed", "1",
                   "--objective", "step_time*network_cost", "--study", "cost", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "best step_time*network_cost" in r.stdout and "report: reports/cost/report.html" in r.stdout
    assert (tmp_path / "runs" / "cost.db").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--agent", "gaa"], "unknown agent 'gaa' (did you mean 'ga'?)"),
        (["--agent", "ga", "-H", "populaton=3"], "did you mean 'population'"),
        (["--agent", "ga", "-H", "population"], "expected KEY=VALUE"),
        (["--agent", "ga", "--budget", "0"], "--budget must be >= 1"),
        (["--agent", "exhaustive", "--budget", "5"], None),
    ],
)
def test_explore_bad_input_is_one_line(tmp_path, args, message):
    psa = COLLECTIVE if message is not None else "cosmic-s1-gpt3-175b-full"
    r = cosmic_cli("explore", psa, "--budget", "5", *args, cwd=tmp_path) if "--budget" not in args else \
        cosmic_cli("explore", psa, *args, cwd=tmp_path)
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("error: ")
    assert (message or "limit") in r.stderr


def test_demo_runs_and_prints_best_config_breakdown_and_report(tmp_path):
    r = cosmic_cli("demo", "--budget", "300", "--out", "d", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "step breakdown" in r.stdout and "best configuration" in r.stdout and "report:" in r.stdout
    reports = list((tmp_path / "d" / "reports").glob("demo-*/report.html"))
    assert len(reports) == 1
    cfg = cosmic.load_config(reports[0].parent / "best.yaml")
    assert cosmic.simulate(cfg).fits_memory


def test_show_prints_a_stored_trial_with_its_rebuilt_config(tmp_path):
    from cosmic.psa import load_psa

    full = "cosmic-s1-gpt3-175b-full"
    r = cosmic_cli("explore", full, "--agent", "random", "--budget", "30", "--seed", "4", "--out", "o", "--json",
                   cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    best = summary["best_trial"]
    show = ["explore", full, "--agent", "random", "--seed", "4", "--out", "o", "--show"]
    j = cosmic_cli(*show, str(best), "--json", cwd=tmp_path)
    assert j.returncode == 0, j.stderr
    t = json.loads(j.stdout)
    space = load_psa(full)
    assert t["trial"] == best and t["status"] == "ok" and t["values"] == summary["best_values"]
    assert t["config"] == space.decode(t["point"]).to_yaml_dict() == summary["best_config"]
    assert t["result"] == summary["best_result"] and t["figures"]["step_time_s"] == summary["best_objective"]
    assert t["knobs"] == summary["best_knobs"]
    # the rebuilt configuration is a `cosmic simulate` config that gives the stored figures
    cfg = tmp_path / "t.yaml"
    import yaml

    cfg.write_text(yaml.safe_dump(t["config"], sort_keys=False))
    assert cosmic.simulate(cosmic.load_config(cfg)).step_time_s == t["figures"]["step_time_s"]
    h = cosmic_cli(*show, str(best), cwd=tmp_path)
    assert h.returncode == 0, h.stderr
    assert f"trial {best}" in h.stdout and "knobs" in h.stdout and "figures" in h.stdout
    assert "comm_dim3_s" in h.stdout and "configuration (rebuilt from the PSA" in h.stdout
    assert "global_batch: 2048" in h.stdout
    # no such trial, no such study, another PSA: one line each, and nothing is searched or created
    for args, message in ((["999"], "no trial 999"),
                          (["0", "--storage", f"o/runs/{full}-random-s4.db", "--study", "nope"], "no study 'nope'"),
                          (["0", "--out", "elsewhere"], "no study file")):
        e = cosmic_cli(*show, *args, cwd=tmp_path)
        assert e.returncode == 2 and e.stderr.count("\n") == 1 and message in e.stderr, e.stderr
    e = cosmic_cli("explore", COLLECTIVE, "--storage", f"o/runs/{full}-random-s4.db", "--study",
                   f"{full}-random-s4", "--show", "0", cwd=tmp_path)
    assert e.returncode == 2 and e.stderr.count("\n") == 1 and "another space" in e.stderr, e.stderr
    assert not (tmp_path / "elsewhere").exists()
