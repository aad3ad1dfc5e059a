"""Study storage on SQLite and on a real PostgreSQL server: read back by Optuna, resume, 8 concurrent workers on one
study, kill -9 of the driver or of a worker followed by a resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import optuna
import pytest
import sqlalchemy as sa

from cosmic.explore import run_study
from cosmic.psa import load_psa

COLLECTIVE = "cosmic-s1-gpt3-175b-collective"
N_DIMS = 7


@pytest.fixture(scope="module")
def collective():
    return load_psa(COLLECTIVE)


def _trials(url: str, name: str) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=name, storage=url).get_trials(deepcopy=False)


def _key(t: optuna.trial.FrozenTrial) -> tuple:
    return (t.number, t.state.name, tuple(sorted(t.params.items())), tuple(t.values or ()),
            json.dumps(t.user_attrs, sort_keys=True))


def _count(url: str, pid: int | None = None) -> int:
    """Stored trials (written by worker process `pid`, if given)."""
    q = "select count(*) from trials" if pid is None else (
        "select count(*) from trial_user_attributes where key = 'worker' and value_json like :pat")
    eng = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with eng.connect() as c:
            return int(c.execute(sa.text(q), {"pat": f'%:{pid}"'}).scalar())
    except sa.exc.SQLAlchemyError:  # the tables are not created yet
        return 0
    finally:
        eng.dispose()


def _whole(url: str) -> None:
    """Every stored trial is whole: its parameters, its attributes, a value when complete; none is RUNNING."""
    eng = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with eng.connect() as c:
        q = lambda s: c.execute(sa.text(s)).scalar()  # noqa: E731
        n = q("select count(*) from trials")
        assert q("select count(*) from trial_params") == n * N_DIMS
        assert q("select count(distinct trial_id) from trial_user_attributes") == n
        assert q("select count(*) from trials where state = 'COMPLETE'") == q(
            "select count(distinct trial_id) from trial_values")
        assert q("select count(*) from trials where state not in ('COMPLETE', 'FAIL')") == 0
    eng.dispose()


def test_study_on_both_backends_reads_back_and_resumes(any_url, collective):
    first = run_study(collective, "ga", budget=40, seed=1, storage=any_url, study_name="s")
    assert first.storage == any_url
    before = [_key(t) for t in _trials(any_url, "s")]
    assert [k[0] for k in before] == list(range(40))
    more = run_study(collective, "ga", budget=90, storage=any_url, study_name="s", resume=True)
    assert more.evaluations == 90 and more.new_evaluations == 50 and more.seed == 1
    after = _trials(any_url, "s")
    assert [t.number for t in after] == list(range(90))
    assert [_key(t) for t in after[:40]] == before
    assert all(list(t.params) == list(collective.dim_names) for t in after)
    best = optuna.load_study(study_name="s", storage=any_url).best_trial
    assert best.values[0] == pytest.approx(more.best_objective)
    _whole(any_url)


WORKER = """
import sys, time
from pathlib import Path
import cosmic.explore._study as st
from cosmic.cli import main
st.FLUSH_TRIALS = int(sys.argv[1])  # a transaction every few trials: many interleaved commits
delay = float(sys.argv[2])
evaluate = st.Evaluator.evaluate
def slow(self, pts):  # a slower simulator: the workers overlap for longer
    time.sleep(delay)
    return evaluate(self, pts)
st.Evaluator.evaluate = slow
go = Path(sys.argv[3])
while not go.exists():
    time.sleep(0.01)
sys.argv = ["cosmic", "explore", *sys.argv[4:]]
main()
"""


def _worker(url: str, tmp: Path, i: int, budget: int, flush: int = 4, delay: float = 0.01) -> subprocess.Popen:
    args = [COLLECTIVE, "--agent", "random", "--budget", str(budget), "--storage", url, "--study", "w", "--worker",
            "--seed", str(i), "--batch", "4", "--out", str(tmp / f"w{i}"), "--json"]
    return subprocess.Popen([sys.executable, "-c", WORKER, str(flush), str(delay), str(tmp / "go"), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _per_worker(url: str) -> Counter:
    return Counter(t.user_attrs["worker"] for t in _trials(url, "w"))


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
def test_eight_concurrent_workers_lose_and_duplicate_nothing(backend, request, tmp_path):
    url = request.getfixturevalue("pg_url") if backend == "postgresql" else f"sqlite:///{tmp_path / 'w.db'}"
    workers, budget = 8, 48
    procs = [_worker(url, tmp_path, i, budget) for i in range(workers)]
    time.sleep(0.5)
    (tmp_path / "go").touch()  # all start together: they race to create the study, then to write it
    outs = [p.communicate(timeout=120) for p in procs]
    for p, (out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err
    reported = [json.loads(out) for out, _ in outs]
    assert [r["new_evaluations"] for r in reported] == [budget] * workers
    trials = _trials(url, "w")
    numbers = [t.number for t in trials]
    lost = workers * budget - len(trials)
    duplicated = len(numbers) - len(set(numbers))
    print(f"\n[{backend}] workers={workers} trials={len(trials)} lost={lost} duplicated={duplicated}")
    assert lost == 0 and duplicated == 0
    assert sorted(numbers) == list(range(workers * budget))
    per = _per_worker(url)
    assert len(per) == workers and set(per.values()) == {budget}
    with sa.create_engine(url, poolclass=sa.pool.NullPool).connect() as c:  # one study: the creation race is won once
        assert c.execute(sa.text("select count(*) from studies")).scalar() == 1
    # the commits interleaved: some worker's trial numbers are not one contiguous run
    runs = {}
    for t in sorted(trials, key=lambda t: t.number):
        w = t.user_attrs["worker"]
        runs[w] = runs.get(w, 0) + (1 if t.number == 0 or trials[t.number - 1].user_attrs["worker"] != w else 0)
    assert max(runs.values()) > 1
    _whole(url)


def _wait_for(url: str, n: int, proc: subprocess.Popen, timeout: float = 60, worker: bool = False) -> int:
    deadline = time.time() + timeout
    got = 0
    while time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
        got = _count(url, proc.pid if worker else None)
        if got >= n:
            break
    return got


def test_kill_9_of_one_worker_keeps_its_committed_trials_and_a_new_worker_makes_up(pg_url, tmp_path):
    url, budget = pg_url, 96
    procs = [_worker(url, tmp_path, i, budget, flush=8, delay=0.05) for i in range(4)]
    time.sleep(0.5)
    (tmp_path / "go").touch()
    victim = procs[0]
    assert _wait_for(url, 16, victim, worker=True) >= 16  # kill it once it has committed some trials
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait(timeout=30)
    for p in procs[1:]:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    assert victim.returncode == -signal.SIGKILL
    per = _per_worker(url)
    tag = next((w for w in per if w.endswith(f":{victim.pid}")), None)
    kept = per.get(tag, 0)
    assert 16 <= kept < budget and kept % 4 == 0  # killed mid-run; what it committed are whole batches
    assert sorted(v for w, v in per.items() if w != tag) == [budget] * 3
    _whole(url)
    # make up the killed worker's share
    p = _worker(url, tmp_path, 9, budget - kept)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 0, err
    trials = _trials(url, "w")
    print(f"\n[postgresql worker kill] kills=1 kept={kept} final={len(trials)}")
    assert sorted(t.number for t in trials) == list(range(4 * budget))
    _whole(url)


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


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_kill_9_of_the_driver_then_resume_on_both_backends(backend, request, tmp_path, collective):
    url = request.getfixturevalue("pg_url") if backend == "postgresql" else f"sqlite:///{tmp_path / 'k.db'}"
    budget = 320
    proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, COLLECTIVE, "ga", str(budget), url])
    try:
        _wait_for(url, 48, proc, timeout=120)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    killed = [_key(t) for t in _trials(url, "k")]
    assert 48 <= len(killed) < budget and len(killed) % 16 == 0  # committed batches only, the one in flight is lost
    _whole(url)  # cosmic writes finished trials only: nothing is left RUNNING to mark failed
    s = run_study(collective, "ga", budget=budget, storage=url, study_name="k", resume=True)
    assert s.evaluations == budget and s.new_evaluations == budget - len(killed)
    final = _trials(url, "k")
    print(f"\n[{backend} driver kill] kills=1 kept={len(killed)} final={len(final)}")
    assert [_key(t) for t in final[: len(killed)]] == killed  # every committed trial once, unchanged
    assert [t.number for t in final] == list(range(budget))
    assert len({tuple(sorted(t.params.items())) for t in final}) == budget  # the in-flight batch is re-run, not copied
    _whole(url)
