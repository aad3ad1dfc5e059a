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
    assert "best step_time*network_cost" in r.stdout
    assert f"report: {tmp_path / 'reports' / 'cost' / 'report.html'}" in r.stdout.replace("\n", "")
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


def _stored_trials(db: Path) -> int:
    import sqlite3

    if not db.is_file():
        return 0
    try:
        with sqlite3.connect(db, timeout=5) as con:
            return int(con.execute("select count(*) from trials").fetchone()[0])
    except sqlite3.OperationalError:  # tables not created yet
        return 0


def test_ctrl_c_keeps_the_study_writes_best_and_report_and_says_how_to_resume(tmp_path):
    import signal
    import time

    name = f"{COLLECTIVE}-random-s3"
    db = tmp_path / "runs" / f"{name}.db"
    p = subprocess.Popen([str(BIN), "explore", COLLECTIVE, "--agent", "random", "--budget", "100000000", "--seed",
                          "3"], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while _stored_trials(db) < 100 and time.monotonic() < deadline and p.poll() is None:
            time.sleep(0.2)
        assert p.poll() is None, p.communicate()
        p.send_signal(signal.SIGINT)
        stdout, stderr = p.communicate(timeout=120)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 130, stderr
    kept = _stored_trials(db)
    assert kept >= 100
    assert f"interrupted: kept {kept:,} evaluations of study {name}" in stderr
    best = tmp_path / "reports" / name / "best.yaml"
    assert f"best configuration: {best}" in stderr and f"report: {best.parent / 'report.html'}" in stderr
    assert best.is_file() and (best.parent / "report.html").stat().st_size > 100_000
    summary = json.loads((best.parent / "summary.json").read_text())
    assert summary["evaluations"] == kept
    assert cosmic.simulate(cosmic.load_config(best)).step_time_s == pytest.approx(summary["best_objective"],
                                                                                  rel=1e-12)
    resume = next(line for line in stderr.splitlines() if line.startswith("resume with: "))
    assert resume == (f"resume with: cosmic explore {COLLECTIVE} --study {name} --resume --budget 100000000")
    # the printed command (with a budget a little above what is kept) resumes with the stored agent and seed
    args = resume.removeprefix("resume with: cosmic ").split()
    args[args.index("--budget") + 1] = str(kept + 10)
    r = cosmic_cli(*args, "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert (d["agent"], d["seed"], d["evaluations"], d["new_evaluations"]) == ("random", 3, kept + 10, 10)


def test_resume_and_show_reuse_the_stored_agent(tmp_path):
    r = cosmic_cli("explore", COLLECTIVE, "--agent", "walk", "--budget", "20", "--seed", "5", "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    r2 = cosmic_cli("explore", COLLECTIVE, "--seed", "5", "--budget", "30", "--resume", "--json", cwd=tmp_path)
    assert r2.returncode == 0, r2.stderr
    d = json.loads(r2.stdout)
    assert (d["agent"], d["study"], d["evaluations"]) == ("walk", f"{COLLECTIVE}-walk-s5", 30)
    assert cosmic_cli("explore", COLLECTIVE, "--show", "3", "--json", cwd=tmp_path).returncode == 0
    other = cosmic_cli("explore", COLLECTIVE, "--study", f"{COLLECTIVE}-walk-s5", "--agent", "ga", "--budget", "40",
                       "--resume", cwd=tmp_path)
    assert other.returncode == 2 and "was run with agent 'walk', not 'ga'" in other.stderr
    assert other.stderr.count("\n") == 1
    none = cosmic_cli("explore", COLLECTIVE, "--seed", "6", "--budget", "30", "--resume", cwd=tmp_path)
    assert none.returncode == 2 and "no stored study of" in none.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["--agent", "gaa"],
        ["--agent", "ga", "-H", "populaton=3"],
        ["--agent", "ga", "--resume"],
        ["--resume"],
        ["--agent", "ga", "--show", "3"],
    ],
)
def test_failed_commands_leave_no_files(tmp_path, args):
    r = cosmic_cli("explore", COLLECTIVE, "--budget", "5", "--out", "o", *args, cwd=tmp_path)
    assert r.returncode == 2 and r.stderr.startswith("error: ")
    assert list(tmp_path.iterdir()) == []


def test_paths_are_absolute_and_cosmic_home_moves_them(tmp_path):
    import os

    home = tmp_path / "home"
    env = {**os.environ, "COSMIC_HOME": str(home)}
    r = subprocess.run([str(BIN), "explore", COLLECTIVE, "--agent", "random", "--budget", "8", "--seed", "0"],
                       capture_output=True, text=True, cwd=tmp_path, timeout=300, env={**env, "COLUMNS": "300"})
    assert r.returncode == 0, r.stderr
    report = home / "reports" / f"{COLLECTIVE}-random-s0" / "report.html"
    assert f"report: {report}" in r.stdout and report.is_file()
    assert (home / "runs" / f"{COLLECTIVE}-random-s0.db").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home"]
