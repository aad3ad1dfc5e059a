"""Per-agent budgets, names checked before any worker starts, the pilot's estimate and the ETA, base-install
defaults."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from cosmic.errors import ConfigError, UnknownNameError
from cosmic.study import DEFAULT_AGENTS, Eta, Job, budgets_for, make_jobs, parse_budget, study_space
from cosmic.study._eta import GP_HISTORY_OFFSET, Rate, pilot, pilot_budget, units
from cosmic.study._jobs import effective_budget


def _cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cosmic.cli", *args], capture_output=True, text=True, timeout=600,
                          cwd=cwd)


def test_budget_text_forms() -> None:
    assert parse_budget("200") == 200
    assert parse_budget("ga=2000,bo=48") == {"ga": 2000, "bo": 48}
    assert parse_budget(" 500 , BO = 48 ") == {"*": 500, "bo": 48}


@pytest.mark.parametrize(("text", "message"), [
    ("ga=abc", "--budget: 'abc' for agent 'ga' is not a whole number of evaluations (e.g. 200 or ga=2000,bo=48)"),
    ("2.5", "--budget: '2.5' is not a whole number of evaluations (e.g. 200 or ga=2000,bo=48)"),
    ("=48", "--budget: '=48': name the agent before '=' (e.g. bo=48)"),
    ("ga=1,ga=2", "--budget: agent 'ga' is given twice"),
    ("10,20", "--budget: a plain number is given twice"),
    ("ga=0", "--budget: budget must be >= 1, got 'ga=0'"),
    ("", "--budget: expected a number of evaluations or agent=N pairs (e.g. 200 or ga=2000,bo=48)"),
])
def test_budget_text_errors(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as exc:
        parse_budget(text)
    assert str(exc.value) == message


def test_budgets_per_agent_with_defaults_and_a_number_for_the_rest() -> None:
    assert budgets_for(["ga", "tpe"], None) == {"ga": 2000, "tpe": 100}
    assert budgets_for(["ga", "bo", "random"], "ga=300,bo=12") == {"ga": 300, "bo": 12, "random": 1000}
    assert budgets_for(["ga", "bo"], "100,bo=10") == {"ga": 100, "bo": 10}
    assert budgets_for(["ga", "bo"], 7) == {"ga": 7, "bo": 7}
    with pytest.raises(UnknownNameError) as exc:
        budgets_for(["ga", "tpe"], "gaa=10")
    assert str(exc.value) == "--budget: unknown agent 'gaa' (did you mean 'ga'?); known: ga, tpe"
    jobs = make_jobs("cosmic-paper", agents=["ga", "random"], budget="ga=30,random=5", models=["vit-base"],
                     systems=["s3"])
    assert {(j.agent, j.budget) for j in jobs} == {("ga", 30), ("random", 5)} and len(jobs) == 8


@pytest.mark.parametrize(("kw", "message"), [
    ({"models": ["gpt3-17b"]}, "--models: unknown model 'gpt3-17b' (did you mean 'gpt3-175b'?); known: gpt3-13b, "
                               "gpt3-175b, llama-7b, vit-base, vit-large"),
    ({"systems": ["s4"]}, "--systems: unknown system 's4'; known: s1, s2, s3"),
    ({"agents": ["ga", "tpee"]}, "--agents: unknown agent 'tpee' (did you mean 'tpe'?); known: aco, bnb, bo, "
                                 "cmaes, exhaustive, ga, ils, memetic, nsga2, random, rl, tpe, ..."),
    ({"modes": ["ful"]}, "unknown mode 'ful' (did you mean 'full'?); known: collective, full, network, workload"),
])
def test_names_are_checked_when_the_jobs_are_made(kw: dict, message: str) -> None:
    with pytest.raises(UnknownNameError) as exc:
        make_jobs("cosmic-paper", **kw)
    assert str(exc.value) == message


def test_a_typo_in_a_model_is_one_line_before_any_worker_and_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "out"
    res = _cli("study", "cosmic-paper", "--agents", "ga", "--models", "gpt3-17b", "--out", str(out))
    assert res.returncode == 2, res.stderr
    assert res.stderr == ("error: --models: unknown model 'gpt3-17b' (did you mean 'gpt3-175b'?); known: gpt3-13b, "
                          "gpt3-175b, llama-7b, vit-base, vit-large\n")
    assert not out.exists()
    res = _cli("study", "scaling", "--agents", "ga", "--budget", "ga=10,bo=5", "--out", str(out))
    assert res.returncode == 2 and "--budget: unknown agent 'bo'; known: ga" in res.stderr and not out.exists()


def test_cost_rules() -> None:
    assert units("ga", 2000) == 2000.0 and units("random", 5) == 5.0
    # bo: free startup asks, then c * (n + H) per GP ask, capped at max_history
    assert units("bo", 10) == 0.0
    assert units("bo", 12) == pytest.approx((10 + GP_HISTORY_OFFSET) + (11 + GP_HISTORY_OFFSET))
    assert units("bo", 402) - units("bo", 401) == pytest.approx(400 + GP_HISTORY_OFFSET)
    # a never-repeating agent in a small space: min(17, S / (S - k)) asks per evaluation, and at most S evaluations
    size = 20
    assert units("tpe", 20, size) == pytest.approx(sum(min(17, size / (size - k)) for k in range(20)))
    assert units("tpe", 500, size) == units("tpe", 20, size)
    assert units("ga", 500, size) == 500.0  # GA may revisit points: its budget is kept
    assert pilot_budget("bo", 48) == 14 and pilot_budget("ga", 2000) >= 8 and pilot_budget("tpe", 5) == 5


def test_never_repeating_agents_stop_at_the_size_of_a_small_space() -> None:
    from cosmic.agents import make_agent

    space = study_space("s3", "vit-base", "workload")
    assert space.size_feasible == 142
    job = Job("cosmic-paper", "full-depth", "s3", "vit-base", "workload", "tpe", 0, 500)
    assert effective_budget(job, make_agent("tpe", space, seed=0), space) == 142
    assert effective_budget(job, make_agent("ga", space, seed=0), space) == 500


def _result(job: Job, seconds: float) -> SimpleNamespace:
    return SimpleNamespace(job=job, job_s=seconds)


def test_eta_replaces_the_pilot_by_measured_times_and_calibrates_the_rest() -> None:
    jobs = make_jobs("cosmic-paper", agents=["ga", "random"], budget=100, models=["vit-base"], systems=["s3"])
    eta = Eta(jobs, 2, {"ga": Rate(1.0, 0.01), "random": Rate(0.5, 0.0)})
    assert eta.estimate(jobs[0]) == pytest.approx(2.0)  # 1 s fixed + 100 evaluations at 0.01 s
    assert eta.total_s() == pytest.approx((4 * 2.0 + 4 * 0.5) / 2)
    ga = [i for i, j in enumerate(jobs) if j.agent == "ga"]
    eta.finish(ga[0], _result(jobs[ga[0]], 6.0))  # three times slower than the pilot said
    assert eta.estimate(jobs[ga[0]]) == 6.0
    assert eta.estimate(jobs[ga[1]]) == pytest.approx(6.0)  # another mode of ga: pilot figure x 3
    assert eta.estimate(next(j for j in jobs if j.agent == "random")) == pytest.approx(1.5)  # no random done: x 3
    assert eta.remaining_s() == pytest.approx((3 * 6.0 + 4 * 1.5) / 2)
    for i in range(len(jobs)):
        if i not in eta.done:
            eta.finish(i, _result(jobs[i], 1.0))
    assert eta.remaining_s() == 0.0


def test_pilot_prices_an_evaluation_from_real_runs() -> None:
    from cosmic.study import run_job

    jobs = make_jobs("cosmic-paper", agents=["ga"], budget=400, models=["vit-base"], systems=["s3"])
    calls: list[int] = []

    def run(job: Job) -> object:
        calls.append(job.budget)
        return run_job(job)

    rates = pilot(jobs, run)
    n = pilot_budget("ga", 400)
    assert calls == [n, 2 * n] and set(rates) == {"ga"}
    assert rates["ga"].unit_s > 0 and rates["ga"].fixed_s > 0


def test_cli_prints_the_estimate_and_the_eta_after_the_first_jobs(tmp_path: Path) -> None:
    res = _cli("study", "cosmic-paper", "--agents", "ga,random", "--budget", "ga=40,random=20", "--models",
               "vit-base", "--systems", "s3", "--workers", "1", "--out", str(tmp_path), "--json")
    assert res.returncode == 0, res.stderr
    assert "8 agent runs (ga 4 × ~" in res.stderr and "estimated wall time" in res.stderr
    assert "(from a pilot run of each agent)" in res.stderr
    assert res.stderr.count("ETA: ~") == 1 and "left after 1 of 8 agent runs (measured: " in res.stderr
    import json

    data = json.loads(res.stdout)
    assert data["options"]["budgets"] == {"ga": 40, "random": 20} and data["estimated_wall_s"] > 0
    assert {j["agent"]: j["evaluations"] for j in data["jobs"]} == {"ga": 40, "random": 20}


def test_a_run_of_hours_is_announced_before_it_starts() -> None:
    from rich.console import Console

    from cosmic.commands.study import _Progress

    jobs = make_jobs("cosmic-paper", agents=["ga", "bo"], budget="ga=10,bo=200")
    eta = Eta(jobs, 2, {"ga": Rate(0.1, 0.001), "bo": Rate(1.0, 0.01)})
    bo = [1.0 + 0.01 * units("bo", 200, j.space().size_feasible) for j in jobs if j.agent == "bo"]
    assert eta.total_s() == pytest.approx((48 * (0.1 + 0.01) + sum(bo)) / 2) and eta.total_s() > 3600
    console = Console(record=True, width=200)
    p = _Progress(console, "t", quiet=True)
    p.start(eta)
    text = console.export_text()
    assert "warning: this run will take hours" in text and "mostly 'bo': lower its budget (--budget bo=N)" in text


def test_the_default_agents_run_without_torch_or_scipy(tmp_path: Path) -> None:
    """The base install has neither (the [bo] and [rl] extras bring them): block their import and run the
    defaults."""
    code = ("import sys; sys.modules['torch'] = None; sys.modules['scipy'] = None\n"
            "from cosmic.cli import main; main()")
    res = subprocess.run([sys.executable, "-c", code, "study", "cosmic-paper", "--budget", "ga=20,tpe=12",
                          "--models", "vit-base", "--systems", "s3", "--workers", "1", "--out", str(tmp_path),
                          "--json"], capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    assert DEFAULT_AGENTS == ("ga", "tpe") and (tmp_path / "report.html").exists()
    blocked = subprocess.run([sys.executable, "-c", code, "study", "cosmic-paper", "--agents", "bo", "--models",
                              "vit-base", "--systems", "s3", "--workers", "1", "--out", str(tmp_path / "bo")],
                             capture_output=True, text=True, timeout=600)
    assert blocked.returncode == 2 and "agent 'bo' needs" in blocked.stderr and "cosmic[bo]" in blocked.stderr
