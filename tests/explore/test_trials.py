"""Compact trials: a stored trial holds knobs and figures, not its configuration; the configuration is rebuilt by
decoding the point and the result from the figures, both exactly what was evaluated. Studies stored the old way
(full ``config`` and ``result`` attributes) still open, show and resume."""

from __future__ import annotations

import copy
import dataclasses
import json
import math

import numpy as np
import pytest

import cosmic
import cosmic.explore._study as study_mod
from cosmic.agents import BaseAgent
from cosmic.errors import StudyError
from cosmic.explore import (
    Evaluator,
    StudyStore,
    figures,
    load_trial,
    result_from_figures,
    run_study,
    space_fingerprint,
)
from cosmic.explore._storage import TrialRow
from cosmic.explore._study import _space_info, jsonable
from cosmic.psa import load_psa
from cosmic.psa.presets import preset_data
from cosmic.psa.space import Space

FULL = "cosmic-s1-gpt3-175b-full"


@pytest.fixture(scope="module")
def full():
    return load_psa(FULL)


@pytest.fixture(scope="module")
def astra():
    """The S1 full space at ASTRA-sim fidelity: points whose algorithms ASTRA-sim cannot run are rejected by the
    simulator (the PSA's constraint keeps sampling agents away from them; the box agent below asks them)."""
    _, data = preset_data(FULL)
    d = copy.deepcopy(data)
    d["name"] = "s1-full-astra"
    d["base"].setdefault("collective", {})["fidelity"] = "astra-sim"
    return Space(d)


class BoxAgent(BaseAgent):
    """Asks uniform points of the encoded box, feasible or not (so the simulator rejects some)."""

    name = "box"

    def ask(self, n: int = 1) -> np.ndarray:
        return np.stack([self.rng.integers(0, c, n) for c in self.space.cardinalities], axis=1)


class UntimedBoxAgent(BoxAgent):
    """The same, but points over memory are not timed (as in exhaustive studies): no result, no figures."""

    times_unfit_points = False


def _recording(monkeypatch) -> list:
    """Record every Evaluation the study loop makes (the real evaluator, subclassed only to keep them)."""
    seen: list = []

    class Recording(Evaluator):
        def evaluate_batch(self, points):
            eb = super().evaluate_batch(points)
            seen.extend(eb.evaluation(i) for i in range(len(eb)))
            return eb

    monkeypatch.setattr(study_mod, "Evaluator", Recording)
    return seen


def _check_rebuilt(space, url, name, evaluated) -> dict[str, int]:
    store = StudyStore(url, name)
    store.open()
    store.set_dimensions(space.dim_names, space.cardinalities)
    counts = {"ok": 0, "memory": 0, "rejected": 0, "untimed": 0}
    try:
        assert len(store.history()) == len(evaluated)
        for n, e in enumerate(evaluated):
            t = store.trial(n)
            assert t.point.tolist() == e.point.tolist()
            assert (t.status, t.values, t.reason) == (e.status, e.values, e.reason)
            assert t.violation == e.violation
            assert not {"config", "result"} & set(t.attrs) and not t.legacy
            assert t.knobs == jsonable(space.knobs(e.point))
            cfg = t.config(space)
            assert cfg.to_yaml_dict() == space.decode(e.point).to_yaml_dict()
            if e.config is not None:  # what the evaluator simulated
                assert cfg.to_yaml_dict() == e.config.to_yaml_dict()
            if e.result is None:
                assert t.figures is None and t.result() is None
                counts["untimed" if e.status == "memory" else "rejected"] += 1
            else:
                assert t.result().to_dict() == e.result.to_dict()  # exact: floats round-trip through JSON
                assert t.result_dict() == jsonable(e.result.to_dict())
                counts[e.status] += 1
    finally:
        store.close()
    return counts


def test_300_ga_trials_rebuild_the_evaluated_configs_and_results(tmp_path, full, monkeypatch):
    seen = _recording(monkeypatch)
    url = f"sqlite:///{tmp_path / 'ga.db'}"
    s = run_study(full, "ga", budget=300, seed=0, storage=url, study_name="ga")
    assert len(seen) == 300
    counts = _check_rebuilt(full, url, "ga", seen)
    assert counts["ok"] > 100 and counts["memory"] > 10  # S1 175B: many layouts exceed 80 GB
    best = seen[s.best_index]
    assert s.best_config == best.config.to_yaml_dict() and s.best_result == jsonable(best.result.to_dict())


def test_rejected_and_untimed_trials_rebuild_too(tmp_path, astra, monkeypatch):
    seen = _recording(monkeypatch)
    url = f"sqlite:///{tmp_path / 'box.db'}"
    run_study(astra, BoxAgent(astra, seed=1), budget=120, storage=url, study_name="timed")
    timed = list(seen)
    counts = _check_rebuilt(astra, url, "timed", timed)
    assert counts["rejected"] > 10 and counts["memory"] > 0 and counts["ok"] > 0
    assert all(e.reason.startswith("InfeasibleError: collective.") for e in timed if e.status == "rejected")
    seen.clear()
    run_study(astra, UntimedBoxAgent(astra, seed=2), budget=120, storage=url, study_name="untimed")
    counts = _check_rebuilt(astra, url, "untimed", seen)
    assert counts["untimed"] > 0 and counts["rejected"] > 10


def test_figures_round_trip_non_finite_and_non_default_fields(full):
    r = cosmic.simulate(full.decode(full.sample(np.random.default_rng(3), 1)[0]))
    odd = dataclasses.replace(r, step_time_s=math.inf, mfu=-math.inf, fidelity="astra-sim", notes=("a", "b"),
                              n_npus=np.int64(r.n_npus))
    f = json.loads(json.dumps(figures(odd)))  # as stored: plain JSON, no Infinity tokens
    assert f["step_time_s"] == "inf" and f["fidelity"] == "astra-sim" and f["notes"] == ["a", "b"]
    assert "fidelity" not in figures(r) and "notes" not in figures(r)
    back = result_from_figures(f)
    assert back.to_dict() == odd.to_dict() and back.memory == r.memory
    assert type(back.n_npus) is int
    with pytest.raises(StudyError, match="lack 'step_time_s'"):
        result_from_figures({k: v for k, v in f.items() if k != "step_time_s"})


def _write_old_style(space, url: str, name: str, n: int, seed: int) -> list:
    """A study written the way cosmic stored trials before: space info without a fingerprint, and every trial
    with the full configuration and Result.to_dict() as the user attributes `config` and `result`."""
    info = _space_info(space)
    del info["fingerprint"]
    store = StudyStore(url, name)
    store.create([d for _, d in info["objectives"]],
                 {"version": "0.9", "agent": "random", "hyper": {}, "seed": seed, "batch": 64, "budget": n,
                  "space": info})
    store.set_dimensions(info["dim_names"], info["cardinalities"])
    evs = Evaluator(space).evaluate(space.sample(np.random.default_rng(seed), n))
    rows = []
    for e in evs:
        attrs = {"knobs": jsonable(space.knobs(e.point)), "status": e.status}
        if e.config is not None:
            attrs["config"] = e.config.to_yaml_dict()
        if e.result is not None:
            attrs["result"] = jsonable(e.result.to_dict())
        if e.raw is not None and e.values is None:
            attrs["unconstrained_values"] = list(e.raw)
        rows.append(TrialRow(point=e.point, values=e.values, violation=e.violation, reason=e.reason, attrs=attrs))
    store.write(rows)
    store.close()
    return evs


def test_old_format_study_opens_shows_and_resumes(tmp_path, full):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    old = _write_old_style(full, url, "old", 40, seed=5)
    # reopened with no new evaluation: the best is one of the old trials, its config and result as stored
    s = run_study(full, "random", budget=40, storage=url, study_name="old", resume=True)
    assert s.new_evaluations == 0 and s.seed == 5
    best = old[s.best_index]
    assert s.best_config == best.config.to_yaml_dict() and s.best_result == jsonable(best.result.to_dict())
    # resumed: new trials are stored compactly next to the old ones, and both read back
    more = run_study(full, "random", budget=70, storage=url, study_name="old", resume=True)
    assert more.evaluations == 70 and more.new_evaluations == 30
    t_old = load_trial(full, 3, study_name="old", storage=url)
    assert t_old.legacy and t_old.figures is None and t_old.result() is None
    assert t_old.config(full).to_yaml_dict() == old[3].config.to_yaml_dict()
    assert t_old.result_dict() == jsonable(old[3].result.to_dict())
    t_new = load_trial(full, 50, study_name="old", storage=url)
    assert not t_new.legacy and t_new.figures is not None
    assert t_new.result().to_dict() == cosmic.simulate(t_new.config(full)).to_dict()
    # an old trial read with a PSA that decodes its point differently is refused (it has no fingerprint)
    _, data = preset_data(FULL)
    d = copy.deepcopy(data)
    d["base"]["training"]["global_batch"] = 4096
    other = Space(d)
    assert list(other.cardinalities) == list(full.cardinalities)
    with pytest.raises(StudyError, match="decodes its point to another configuration"):
        load_trial(other, 3, study_name="old", storage=url).config(other)


def test_study_of_another_psa_version_is_refused_in_one_line(tmp_path, full):
    url = f"sqlite:///{tmp_path / 'fp.db'}"
    run_study(full, "random", budget=10, seed=0, storage=url, study_name="fp")
    _, data = preset_data(FULL)
    d = copy.deepcopy(data)
    d["base"]["training"]["global_batch"] = 4096
    other = Space(d)
    assert other.dim_names == full.dim_names and space_fingerprint(other) != space_fingerprint(full)
    for call in (lambda: load_trial(other, 0, study_name="fp", storage=url),
                 lambda: run_study(other, "random", budget=20, storage=url, study_name="fp", resume=True)):
        with pytest.raises(StudyError, match="another version of space") as exc:
            call()
        assert "\n" not in str(exc.value)
    with pytest.raises(StudyError, match="no trial 10"):
        load_trial(full, 10, study_name="fp", storage=url)
    with pytest.raises(StudyError, match="no study file"):
        load_trial(full, 0, study_name="fp", storage=str(tmp_path / "missing.db"))
    assert not (tmp_path / "missing.db").exists()
