"""Case studies: settings, objectives, speedups and flags, "what changed", outputs, CLI, backends."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import cosmic
from cosmic.errors import ConfigError
from cosmic.explore.backends import LocalBackend, make_backend
from cosmic.study import Job, baseline_config, knob_changes, make_jobs, run_case_study, run_job, study_space


def test_cosmic_setting_is_four_layers_gpipe_two_micro_batches() -> None:
    full = study_space("s1", "gpt3-175b", "full")
    space = study_space("s1", "gpt3-175b", "full", setting="cosmic")
    assert space.cardinalities == full.cardinalities  # same encoding, same agents' view
    pts = space.sample(np.random.default_rng(3), 40)
    dps = set()
    for p in pts:
        cfg = space.decode(p)
        dps.add(cfg.parallel.dp)
        assert cfg.model.layers == 4 and cfg.training.schedule.value == "gpipe"
        assert cfg.training.global_batch == 2048
        assert cfg.parallel.dp * cfg.training.micro_batch * 2 == 2048
        assert cosmic.simulate(cfg).micro_batches == 2
        assert np.array_equal(space.encode(cfg), p)
    assert len(dps) > 3
    base = baseline_config(space)
    assert base.training.micro_batch == 2048 // (2 * 8) and cosmic.simulate(base).micro_batches == 2
    assert full.decode(pts[0]).model.layers == 96


def test_objectives_map_to_psa_objectives() -> None:
    assert study_space("s3", "vit-base", "full", objective="runtime*cost").objectives[0].name == \
        "step_time*network_cost"
    assert study_space("s3", "vit-base", "full", objective="runtime*bw").objectives[0].name == \
        "step_time*total_bandwidth"
    with pytest.raises(ConfigError, match="did you mean 'runtime'"):
        make_jobs("cosmic-paper", objective="runtim")


def test_scaling_grid_and_llama_space() -> None:
    jobs = make_jobs("scaling", agents=["ga"], budget=10)
    assert len(jobs) == 3 * 5 * 4
    assert {(j.model, j.system) for j in jobs} == {("gpt3-175b", "s2"), ("llama-7b", "s2"), ("vit-large", "s2")}
    sp = study_space("s2", "llama-7b", "full", global_batch=16384)
    assert sp.base.model.name == "llama-7b" and sp.base.training.global_batch == 16384
    assert cosmic.simulate(baseline_config(sp)).step_time_s > cosmic.simulate(
        baseline_config(study_space("s2", "llama-7b", "full", global_batch=1024))).step_time_s


def test_knob_changes() -> None:
    base = {"dp": 8, "npu_bandwidth_gibps": [375.0, 200.0], "scheduling": "LIFO"}
    got = knob_changes(base, {"dp": 8, "npu_bandwidth_gibps": [375.0000000001, 250.0], "scheduling": "FIFO"})
    assert got == {"npu_bandwidth_gibps": [[375.0, 200.0], [375.0000000001, 250.0]], "scheduling": ["LIFO", "FIFO"]}


def test_s1_baseline_lies_outside_the_full_space() -> None:
    """S1's dimension-0 ring gives 2 x 187.5 = 375 GB/s per NPU: not on the searched 50..500 step 50 grid."""
    full = study_space("s1", "vit-base", "full")
    with pytest.raises(ConfigError, match="npu_bandwidth_gibps"):
        full.encode(baseline_config(full))
    s3 = study_space("s3", "vit-base", "full")
    s3.encode(baseline_config(s3))  # S3's baseline is in its full space


@pytest.fixture(scope="module")
def small_study(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    d = tmp_path_factory.mktemp("study")
    summary = run_case_study("cosmic-paper", d, backend=LocalBackend(2), agents=["ga", "random"], seeds=1,
                             budget=150, models=["vit-base"], systems=["s1", "s3"])
    return d, summary


def test_summary_speedups_flags_and_changes(small_study: tuple[Path, dict]) -> None:
    d, summary = small_study
    assert {p.name for p in d.iterdir()} >= {"report.html", "summary.json", "trials.csv"}
    assert json.loads((d / "summary.json").read_text())["cells"] == json.loads(json.dumps(summary["cells"]))
    assert len(summary["cells"]) == 2
    for c in summary["cells"]:
        best = {m: e["best"] for m, e in c["modes"].items()}
        assert set(best) == {"workload", "collective", "network", "full"}
        for m in ("workload", "collective", "network"):
            assert c["speedup_full_over"][m] == pytest.approx(best[m] / best["full"])
            flagged = [f for f in c["flags"] if f["mode"] == m]
            assert bool(flagged) == (best[m] < best["full"] * (1 - 1e-9))
            for f in flagged:
                assert f["reason"] in ("budget", "outside_full_space")
        assert c["speedup_vs_baseline"]["full"] == pytest.approx(c["baseline"]["objective"] / best["full"])
        assert c["top"] and c["top"][0]["objective"] == pytest.approx(best["full"])
        for t in c["top"]:
            for k, (old, new) in t["changed"].items():
                assert c["baseline"]["knobs"][k] == old and t["knobs"][k] == new and old != new
            assert t["breakdown"]["step_time_s"][1] == pytest.approx(t["objective"])
        # a workload-only best moves workload knobs only
        assert set(c["modes"]["workload"]["changed"]) <= {"dp", "sp", "pp", "tp", "weight_sharded", "zero"}
    s1 = next(c for c in summary["cells"] if c["system"] == "s1")
    assert not s1["baseline"]["in_full_space"] and "npu_bandwidth_gibps" in s1["baseline"]["outside_full_space"]


def test_trials_csv_holds_every_evaluation(small_study: tuple[Path, dict]) -> None:
    d, summary = small_study
    with (d / "trials.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == summary["n_trials"] == 2 * 4 * 2 * 150
    assert len(rows) == sum(j["evaluations"] for j in summary["jobs"])
    for c in summary["cells"]:
        for mode, e in c["modes"].items():
            vals = [float(r["value"]) for r in rows if r["system"] == c["system"] and r["mode"] == mode
                    and r["status"] == "ok"]
            assert min(vals) == pytest.approx(e["best"])
    ok = next(r for r in rows if r["status"] == "ok" and r["mode"] == "full")
    assert float(ok["value"]) == pytest.approx(float(ok["step_time_s"]))
    assert json.loads(ok["knobs"])["dp"] >= 1


def test_local_backend_is_order_preserving_and_deterministic() -> None:
    jobs = [Job("cosmic-paper", "full-depth", "s3", "vit-base", m, "ga", 1, 120) for m in ("full", "network")]
    one = LocalBackend(1).map(run_job, jobs)
    two = LocalBackend(2).map(run_job, jobs)
    assert [r.job for r in two] == jobs
    for a, b in zip(one, two, strict=True):
        assert a.best_objective == b.best_objective and a.trials == b.trials


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cosmic.cli", *args], capture_output=True, text=True, timeout=300)


def test_cli_json_and_errors(tmp_path: Path) -> None:
    res = _cli("study", "cosmic-paper", "--budget", "30", "--agents", "ga", "--models", "vit-base", "--systems", "s3",
               "--setting", "cosmic", "--workers", "1", "--out", str(tmp_path), "--json")
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    assert [c["setting"] for c in data["cells"]] == ["cosmic"]
    assert (tmp_path / "report.html").exists()
    res = _cli("study", "cosmic-paper", "--objective", "latency", "--out", str(tmp_path))
    assert res.returncode == 2
    assert res.stderr.count("\n") == 1 and "unknown objective 'latency'" in res.stderr
    res = _cli("study", "scaling", "--backend", "spark", "--out", str(tmp_path))
    assert res.returncode == 2 and "unknown backend 'spark'" in res.stderr


def test_make_backend_rejects_address_without_ray() -> None:
    with pytest.raises(ConfigError, match="--ray-address needs --backend ray"):
        make_backend("local", address="ray://x:10001")


def test_store_keeps_each_run_as_an_optuna_study(tmp_path: Path) -> None:
    import optuna

    job = Job("cosmic-paper", "full-depth", "s3", "vit-base", "network", "ga", 0, 40, store_dir=str(tmp_path))
    res = run_job(job)
    study = optuna.load_study(study_name=job.key, storage=f"sqlite:///{tmp_path / (job.key + '.db')}")
    trials = study.get_trials(deepcopy=False)
    assert len(trials) == 40 == len(res.trials)
    ok = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert min(t.values[0] for t in ok) == pytest.approx(res.best_objective)
    assert res.trials == run_job(job).trials  # re-running into the same directory replaces the study


@pytest.mark.parametrize("mode", ["full", "workload"])
def test_cosmic_setting_decode_columns_carries_the_two_micro_batch_rule(mode):
    from cosmic.sim.columns import StepColumns

    space = study_space("s1", "gpt3-175b", mode, setting="cosmic")
    pts = space.sample(np.random.default_rng(2), 200)
    cols, ok = space.decode_columns(pts)
    assert ok.all()
    assert cols.same_as(StepColumns.from_configs([space.decode(p) for p in pts])) == []
    assert len({t.micro_batch for t in cols.trainings}) > 1


def test_report_marks_bests_outside_every_validated_regime(small_study: tuple[Path, dict]) -> None:
    from cosmic.study._report import UNVALIDATED, _unvalidated

    d, summary = small_study
    entries = [e for c in summary["cells"] for e in [*c["modes"].values(), *c["top"]] if e.get("best", True)]
    assert entries and all(e["evidence"]["runs"] == 0 for e in entries)  # COSMIC's NPUs: no published run
    html = (d / "report.html").read_text(encoding="utf-8")
    assert html.count(UNVALIDATED) >= len(entries)
    validated = {"evidence": {"regime": "megatron-lm · ampere", "runs": 31, "p50_error_pct": -10.6,
                              "p90_error_pct": -18.5}}
    assert _unvalidated(validated) == "" and UNVALIDATED in _unvalidated({"evidence": {"regime": "x", "runs": 0}})


def test_dense_vs_moe_study_searches_mixtral_and_its_dense_twin(tmp_path: Path) -> None:
    """The dense twin has Mixtral 8x22B's active parameters (the same FLOPs per token); both are searched in the
    four modes on the same 256-H100 cluster, and the report holds a cell for each."""
    from cosmic.workload.model import ModelSpec

    jobs = make_jobs("dense-vs-moe", agents=["random"], budget=12)
    assert {(j.model, j.system, j.mode) for j in jobs} == {
        (m, "h100x256", mode) for m in ("mixtral-8x22b-dense", "mixtral-8x22b")
        for mode in ("workload", "collective", "network", "full")}
    dense = study_space("h100x256", "mixtral-8x22b-dense", "full").base
    moe = study_space("h100x256", "mixtral-8x22b", "full").base
    assert dense.model.moe is None and moe.model.moe is not None
    assert dense.model.n_params == pytest.approx(ModelSpec(**cosmic.catalog.get_model("mixtral-8x22b")).n_active_params,
                                                 rel=1e-3)
    assert (dense.n_npus, dense.training.global_batch) == (moe.n_npus, moe.training.global_batch)
    summary = run_case_study("dense-vs-moe", tmp_path, backend=LocalBackend(1), agents=["random"], budget=12)
    cells = {c["model"]: c for c in summary["cells"]}
    assert set(cells) == {"mixtral-8x22b-dense", "mixtral-8x22b"}
    for c in cells.values():
        assert set(c["modes"]) == {"workload", "collective", "network", "full"}
    assert "mixtral-8x22b-dense" in (tmp_path / "report.html").read_text(encoding="utf-8")
    with pytest.raises(ConfigError, match="h100x256"):
        make_jobs("dense-vs-moe", agents=["random"], budget=12, systems=["h100x265"])


def test_certify_gives_each_agent_its_gap_to_the_certified_optimum() -> None:
    from cosmic.explore import run_study
    from cosmic.study import analyse_cells, run_jobs
    from cosmic.study._report import _certificate_table

    jobs = make_jobs("cosmic-paper", agents=["random"], budget=40, models=["gpt3-13b"], systems=["s1"],
                     modes=("workload", "collective"), certify_s=120)
    certs = [j for j in jobs if j.certify]
    assert [(j.mode, j.agent, j.time_limit_s) for j in certs] == [("workload", "bnb", 120), ("collective", "bnb", 120)]
    assert len({j.key for j in jobs}) == len(jobs)
    results = run_jobs(jobs, LocalBackend(1))
    assert all(not r.trials for r in results if r.job.certify)  # a proof's evaluations are not trials
    cell = analyse_cells(results)[0]
    for mode in ("workload", "collective"):
        e = cell["modes"][mode]
        assert set(e["by_agent"]) == {"random"}  # the certifying run is not one of the agents compared
        cert = e["certificate"]
        assert cert["certified"] and cert["by"] == "certify" and cert["lower_bound"] == cert["optimum"]
        exhaustive = run_study(study_space("s1", "gpt3-13b", mode), "exhaustive", budget=10**6, persist=False)
        assert cert["optimum"] == pytest.approx(exhaustive.best_objective, rel=1e-12)
        assert cert["gap_by_agent"]["random"] == pytest.approx(
            max(0.0, (e["by_agent"]["random"] / cert["optimum"] - 1) * 100), abs=1e-9)
    html_table = _certificate_table([cell])
    assert "How close each agent came" in html_table and "certified" in html_table


def test_an_unfinished_proof_bounds_every_agents_gap() -> None:
    from cosmic.study import JobResult
    from cosmic.study._analysis import certificate_entry

    def result(agent: str, best: float | None, cert: dict | None = None, certify: bool = False) -> JobResult:
        job = Job(study="cosmic-paper", setting="full-depth", system="s2", model="gpt3-13b", mode="full",
                  agent=agent, seed=0, budget=10, certify=certify)
        return JobResult(job=job, wall_s=1.0, evaluations=5, counts={}, best_objective=best, best_point=None,
                         trace=[], certificate=cert)

    proof = result("bnb", 0.31, {"certified": False, "lower_bound": 0.25, "gap_pct": 24.0}, certify=True)
    e = certificate_entry([proof, result("ga", 0.30), result("tpe", 0.33)], {"ga": 0.30, "tpe": 0.33})
    assert e is not None and not e["certified"] and e["optimum"] is None
    assert e["best_known"] == 0.30 and e["gap_pct"] == pytest.approx(20.0)  # the best any run found, over the bound
    assert e["gap_by_agent"] == pytest.approx({"ga": 20.0, "tpe": 32.0})
    assert certificate_entry([result("ga", 0.30)], {"ga": 0.30}) is None  # nothing proven, nothing claimed
    refused = result("bnb", None, {"certified": False, "lower_bound": None, "gap_pct": None, "error": "bnb: no"},
                     certify=True)
    e = certificate_entry([refused, result("ga", 0.30)], {"ga": 0.30})
    assert e is not None and e["lower_bound"] is None and e["gap_by_agent"] == {"ga": None}
    assert e["errors"] == ["bnb: no"]


def test_certify_refuses_what_bnb_cannot_bound() -> None:
    with pytest.raises(ConfigError, match=r"--certify.*step time only"):
        make_jobs("cosmic-paper", objective="runtime*cost", certify_s=10)
    with pytest.raises(ConfigError, match=r"--certify.*above 0"):
        make_jobs("cosmic-paper", certify_s=0)
