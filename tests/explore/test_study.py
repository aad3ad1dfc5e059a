"""Studies: storage in Optuna's schema, reproducibility, resume (also after kill -9), infeasible points, reports."""

from __future__ import annotations

import json
import math
import os
import signal
import sqlite3
import subprocess
import sys
import time

import numpy as np
import optuna
import pytest

import cosmic
from cosmic.errors import ConfigError, StudyError
from cosmic.explore import Evaluator, StudyStore, pareto_front, run_study, storage_url, with_objectives
from cosmic.psa import load_psa
from cosmic.report import render_html, write_outputs

WORKLOAD = "cosmic-s1-gpt3-175b-workload"
COLLECTIVE = "cosmic-s1-gpt3-175b-collective"
FULL = "cosmic-s1-gpt3-175b-full"


@pytest.fixture(scope="module")
def collective():
    return load_psa(COLLECTIVE)


@pytest.fixture(scope="module")
def full():
    return load_psa(FULL)


def _params(url: str, name: str) -> list[tuple[int, ...]]:
    study = optuna.load_study(study_name=name, storage=url)
    return [tuple(int(t.params[k]) for k in sorted(t.params)) for t in study.get_trials(deepcopy=False)]


def test_storage_url_defaults(tmp_path):
    assert storage_url(None, "s", tmp_path) == f"sqlite:///{tmp_path / 's.db'}"
    assert storage_url(tmp_path / "x.db", "s") == f"sqlite:///{tmp_path / 'x.db'}"
    assert storage_url("postgresql://u@h/db", "s") == "postgresql://u@h/db"


def test_every_evaluation_is_an_optuna_trial_with_its_config(tmp_path, full):
    s = run_study(full, "random", budget=60, seed=0, runs_dir=tmp_path, study_name="r")
    assert s.evaluations == 60 and s.storage == f"sqlite:///{tmp_path / 'r.db'}"
    study = optuna.load_study(study_name="r", storage=s.storage)
    trials = study.get_trials(deepcopy=False)
    assert [t.number for t in trials] == list(range(60))
    states = {t.state for t in trials}
    assert states <= {optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.FAIL}
    n_fail = sum(t.state == optuna.trial.TrialState.FAIL for t in trials)
    assert n_fail == s.counts["memory"] + s.counts["rejected"] > 0  # S1 175B: many layouts exceed 80 GB
    for t in trials:
        assert list(t.params) == list(full.dim_names)
        assert set(t.user_attrs) >= {"knobs", "figures", "violation", "status"}
        assert not {"config", "result"} & set(t.user_attrs)  # no configuration per trial: decode rebuilds it
        point = [t.params[k] for k in full.dim_names]
        cfg = cosmic.config_from_dict(full.decode(point).to_yaml_dict())  # accepted by `cosmic simulate`
        r = cosmic.simulate(cfg)
        assert r.step_time_s == t.user_attrs["figures"]["step_time_s"]
        if t.state == optuna.trial.TrialState.COMPLETE:
            assert t.values[0] == pytest.approx(r.step_time_s, rel=1e-12)
            assert r.fits_memory and t.user_attrs["violation"] == 0
        else:
            assert not r.fits_memory
            assert t.user_attrs["reason"].startswith("memory:")
            assert t.system_attrs["fail_reason"] == t.user_attrs["reason"]
            assert t.user_attrs["violation"] == pytest.approx(
                r.memory.total_bytes / r.memory_capacity_bytes - 1.0)
    best = study.best_trial
    assert best.values[0] == pytest.approx(s.best_objective)


def test_same_seed_same_trials_different_seed_different(tmp_path, collective):
    a = run_study(collective, "ga", budget=80, seed=7, runs_dir=tmp_path, study_name="a")
    b = run_study(collective, "ga", budget=80, seed=7, runs_dir=tmp_path, study_name="b")
    c = run_study(collective, "ga", budget=80, seed=8, runs_dir=tmp_path, study_name="c")
    assert _params(a.storage, "a") == _params(b.storage, "b")
    assert _params(a.storage, "a") != _params(c.storage, "c")
    assert a.values == b.values


def test_same_seed_same_trials_in_another_process(tmp_path, collective):
    code = (
        "from cosmic.psa import load_psa; from cosmic.explore import run_study\n"
        f"run_study(load_psa('{COLLECTIVE}'), 'aco', budget=50, seed=3, runs_dir=r'{tmp_path}', study_name='p')\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    here = run_study(collective, "aco", budget=50, seed=3, runs_dir=tmp_path, study_name="q")
    assert _params(here.storage, "q") == _params(f"sqlite:///{tmp_path / 'p.db'}", "p")


def test_existing_study_needs_resume_and_missing_cannot_resume(tmp_path, collective):
    run_study(collective, "random", budget=5, seed=0, runs_dir=tmp_path, study_name="x")
    with pytest.raises(StudyError, match="--resume"):
        run_study(collective, "random", budget=5, seed=0, runs_dir=tmp_path, study_name="x")
    with pytest.raises(StudyError, match="no study 'y'"):
        run_study(collective, "random", budget=5, seed=0, runs_dir=tmp_path, study_name="y", resume=True)
    with pytest.raises(StudyError, match="agent 'random'"):
        run_study(collective, "ga", budget=9, runs_dir=tmp_path, study_name="x", resume=True)
    other = load_psa(WORKLOAD)
    with pytest.raises(StudyError, match="another space"):
        run_study(other, "random", budget=9, runs_dir=tmp_path, study_name="x", resume=True)


def test_resume_continues_to_the_budget(tmp_path, collective):
    first = run_study(collective, "ga", budget=40, seed=1, runs_dir=tmp_path, study_name="g")
    before = _params(first.storage, "g")
    more = run_study(collective, "ga", budget=100, runs_dir=tmp_path, study_name="g", resume=True)
    assert more.evaluations == 100 and more.new_evaluations == 60 and more.seed == 1
    after = _params(first.storage, "g")
    assert after[:40] == before and len(after) == 100
    assert len(set(after)) == 100  # the rebuilt GA does not re-ask stored points
    # resuming is reproducible too
    run_study(collective, "ga", budget=40, seed=1, runs_dir=tmp_path, study_name="h")
    run_study(collective, "ga", budget=100, runs_dir=tmp_path, study_name="h", resume=True)
    assert _params(f"sqlite:///{tmp_path / 'h.db'}", "h") == after


KILL_SCRIPT = """
import sys, time
from cosmic.psa import load_psa
from cosmic.explore import run_study
import cosmic.explore._study as st
st.FLUSH_TRIALS = 16
def slow(p):
    time.sleep(0.02)
run_study(load_psa(sys.argv[1]), sys.argv[2], budget=int(sys.argv[3]), seed=0, storage=sys.argv[4],
          study_name="k", batch=8, progress=slow)
"""


@pytest.mark.parametrize("agent", ["ga", "tpe"])
def test_kill_9_then_resume_keeps_every_completed_trial_once(tmp_path, agent):
    db = tmp_path / "k.db"
    budget = 400
    proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, COLLECTIVE, agent, str(budget), str(db)])
    try:
        deadline = time.time() + 120
        n = 0
        while time.time() < deadline:
            time.sleep(0.2)
            if db.exists():
                try:
                    with sqlite3.connect(db) as con:
                        n = con.execute("select count(*) from trials").fetchone()[0]
                except sqlite3.OperationalError:
                    n = 0
            if n >= 48:
                break
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    url = f"sqlite:///{db}"
    killed = _params(url, "k")
    assert 48 <= len(killed) < budget
    with sqlite3.connect(db) as con:  # every committed trial is whole: params, value or reason, attributes
        assert con.execute("select count(*) from trial_params").fetchone()[0] == len(killed) * 7
        assert con.execute("select count(distinct trial_id) from trial_user_attributes").fetchone()[0] == len(killed)
    s = run_study(load_psa(COLLECTIVE), agent, budget=budget, storage=str(db), study_name="k", resume=True)
    final = _params(url, "k")
    assert s.evaluations == budget and len(final) == budget
    assert final[: len(killed)] == killed  # completed trials kept, exactly once, unchanged
    study = optuna.load_study(study_name="k", storage=url)
    assert sorted(t.number for t in study.trials) == list(range(budget))
    assert len(set(final)) == budget


def test_memory_infeasible_points_are_counted_and_told_not_minus_infinity(full):
    s = run_study(full, "ga", budget=300, seed=0, persist=False)
    assert s.counts["memory"] > 0 and s.counts["ok"] + s.counts["memory"] + s.counts["rejected"] == 300
    assert all(v is None or math.isfinite(v[0]) for v in s.values)
    assert s.best_result["fits_memory"] is True


def test_exhaustive_certifies_the_best():
    space = load_psa(WORKLOAD)
    s = run_study(space, "exhaustive", budget=10**6, seed=0, persist=False)
    assert s.complete and s.stopped == "exhausted" and s.evaluations == space.size_feasible
    # points that cannot fit are ruled out before timing; the optimum is the same as when every point is timed
    assert s.counts["memory"] > 0 and s.counts["ok"] > 0
    ev = Evaluator(space)
    brute = [e.values[0] for e in ev.evaluate(np.stack([space.encode(space.decode(p)) for p in _all(space)]))
             if e.values is not None]
    assert s.best_objective == min(brute)


def _all(space):
    import itertools

    for combo in itertools.product(*(range(c) for c in space.cardinalities)):
        p = np.array(combo, dtype=np.int64)
        if space.is_feasible(p):
            yield p


def test_time_limit_stops_the_study(collective):
    s = run_study(collective, "random", budget=10**7, seed=0, persist=False, time_limit_s=0.3, batch=16)
    assert s.stopped == "time_limit" and 0 < s.evaluations < 10**7


def test_bad_budget_is_a_config_error(collective):
    with pytest.raises(ConfigError, match="budget"):
        run_study(collective, "random", budget=0, persist=False)


def test_pareto_front():
    vals = [(1.0, 5.0), (2.0, 2.0), (3.0, 3.0), None, (5.0, 1.0), (2.0, 2.0)]
    assert pareto_front(vals, np.array([1.0, 1.0])) == [0, 1, 4, 5]  # equal values both kept
    assert pareto_front(vals, np.array([-1.0, -1.0])) == [0, 2, 4]  # maximise both


def test_multi_objective_study_and_report(tmp_path, collective):
    two = with_objectives(collective, ["step_time", "step_time*network_cost"])
    s = run_study(two, "nsga2", budget=96, seed=0, runs_dir=tmp_path, study_name="mo")
    assert s.pareto and all(s.values[i] is not None for i in s.pareto)
    study = optuna.load_study(study_name="mo", storage=s.storage)
    assert len(study.directions) == 2 and len(study.best_trials) == len(s.pareto)
    html = render_html(s)
    assert "Pareto front" in html and "Convergence" in html


def test_outputs_best_yaml_is_simulatable(tmp_path, collective):
    s = run_study(collective, "ga", budget=64, seed=0, persist=False)
    paths = write_outputs(s, tmp_path / "out")
    cfg = cosmic.load_config(paths["best_yaml"])
    assert cosmic.simulate(cfg).step_time_s == pytest.approx(s.best_objective, rel=1e-12)
    html = paths["report"].read_text()
    assert "step-time breakdown" in html and "Plotly.newPlot" in html
    assert 'src="http' not in html  # plotly.js is inlined: the report opens offline
    data = json.loads(paths["summary"].read_text())
    assert data["best_objective"] == s.best_objective and data["evaluations"] == 64


def test_store_history_round_trip(tmp_path, collective):
    s = run_study(collective, "random", budget=30, seed=2, runs_dir=tmp_path, study_name="h")
    store = StudyStore(s.storage, "h")
    store.open()
    store.set_dimensions(collective.dim_names, collective.cardinalities)
    h = store.history()
    store.close()
    assert len(h) == 30 and h.values == s.values
    trials = optuna.load_study(study_name="h", storage=s.storage).get_trials(deepcopy=False)
    assert h.points.tolist() == [[int(t.params[k]) for k in collective.dim_names] for t in trials]
    assert all(collective.is_feasible(p) for p in h.points)


def test_exhaustive_stores_untimed_memory_points_and_reports_them(tmp_path):
    space = load_psa(WORKLOAD)
    url = storage_url(tmp_path / "ex.db", "ex")
    s = run_study(space, "exhaustive", budget=10**6, seed=0, storage=url, study_name="ex")
    trials = optuna.load_study(study_name="ex", storage=url).get_trials(deepcopy=False)
    assert len(trials) == s.evaluations == space.size_feasible
    memory = [t for t in trials if t.user_attrs.get("status") == "memory"]
    assert len(memory) == s.counts["memory"] > 0
    for t in memory:
        assert "(not timed)" in t.user_attrs["reason"] and "figures" not in t.user_attrs
        assert "config" not in t.user_attrs  # decoding the point rebuilds it, so it can be simulated later
    html = render_html(s)
    assert "<html" in html.lower()


def test_study_pauses_the_cyclic_collector_and_restores_it(tmp_path, collective, monkeypatch):
    """The loop runs with automatic collection off (young generations collected on a period) and gives the
    collector back as it found it, also when the agent raises."""
    import gc

    import cosmic.explore._study as study_mod

    monkeypatch.setattr(study_mod, "GC_EVERY_S", 0.0)  # collect after every batch
    seen: list[bool] = []
    assert gc.isenabled()
    run_study(collective, "random", budget=20, seed=0, persist=False, batch=5,
              progress=lambda p: seen.append(gc.isenabled()))
    assert seen == [False] * 4 and gc.isenabled()

    class Boom(Exception):
        pass

    def explode(p):
        raise Boom

    with pytest.raises(Boom):
        run_study(collective, "random", budget=20, seed=0, persist=False, batch=5, progress=explode)
    assert gc.isenabled()
    gc.disable()
    try:
        run_study(collective, "random", budget=10, seed=0, persist=False, batch=5)
        assert not gc.isenabled()
    finally:
        gc.enable()
