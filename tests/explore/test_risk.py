"""`cosmic explore --risk p90`: the pessimistic estimate, step time / (1 + p90 signed error of the regime)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import cosmic
from cosmic.caches import clear_caches
from cosmic.explore import Evaluator, run_study, with_risk
from cosmic.psa import Objective
from cosmic.psa.space import Space
from cosmic.sim import evidence as ev_mod
from cosmic.sim.evidence import MIN_RUNS, evidence_of_config, pessimistic_factor
from cosmic.sim.regime import LEVELS, classify_config, level_key

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent / "cosmic"


def _space() -> Space:
    base = cosmic.load_config(ROOT / "examples" / "megatron-gpt3-175b-1024xa100.yaml").to_yaml_dict()
    base["training"]["framework"] = "unspecified"
    return Space({
        "name": "risk-zero", "base": base,
        "knobs": {"workload": {"zero": {"values": [0, 1, 2, 3]}, "tp": {"values": [4, 8]},
                               "micro_batch": {"values": [1, 2]}}},
        "derived": {"dp": {"rule": "npus_quotient", "from": ["tp", "pp", "sp"]}},
        "objectives": ["step_time"], "memory_fit": True,
    })


def _all_points(space: Space) -> np.ndarray:
    import itertools

    return np.array(list(itertools.product(*(range(c) for c in space.cardinalities))), dtype=np.int64)


@pytest.fixture
def table(monkeypatch: pytest.MonkeyPatch):
    def use(entries: dict[int, dict[str, tuple[int, float, float]]]) -> None:
        clear_caches()
        monkeypatch.setattr(ev_mod, "_levels", lambda: tuple(entries.get(i, {}) for i in range(len(LEVELS))))
        ev_mod.worst_bound_pct.cache_clear()

    yield use
    monkeypatch.undo()
    clear_caches()
    ev_mod.worst_bound_pct.cache_clear()


def test_risk_moves_the_best_out_of_the_regime_cosmic_is_optimistic_in(table) -> None:
    space = _space()
    plain = run_study(space, "exhaustive", budget=10**6, seed=0, persist=False)
    best_cfg = space.decode(space.encode(cosmic.config_from_dict(plain.best_config)))
    worse = level_key(classify_config(best_cfg), 3)  # generation · precision · sharding of the plain best
    keys = {level_key(classify_config(space.decode(p)), 3) for p in _all_points(space)}
    assert worse is not None and len(keys) > 1
    # cosmic was 60% too fast in the plain best's regime (p90), 1% in every other
    table({3: {k: (MIN_RUNS, -30.0 if k == worse else 0.0, -60.0 if k == worse else -1.0) for k in keys}})
    risky = with_risk(space, "p90")
    assert [o.name for o in risky.objectives] == ["step_time@p90"]
    got = run_study(risky, "exhaustive", budget=10**6, seed=0, persist=False)
    assert level_key(classify_config(cosmic.config_from_dict(got.best_config)), 3) != worse
    # the risk best is the brute-force minimum of predicted / (1 + p90) over the feasible points
    want = []
    for p in _all_points(space):
        cfg = space.decode(p)
        r = cosmic.simulate(cfg)
        if r.fits_memory:
            want.append(r.step_time_s * pessimistic_factor(evidence_of_config(cfg), "p90"))
    assert got.best_objective == pytest.approx(min(want), rel=1e-12)
    assert got.best_objective > plain.best_objective
    # the scalar and the batch evaluation agree on the pessimistic values
    pts = _all_points(space)[:16]
    ev = Evaluator(risky)
    batch = ev.evaluate(pts)
    one = [ev.evaluate_one(p) for p in pts]
    assert sum(b.values is not None for b in batch) > 4
    for b, o in zip(batch, one, strict=True):
        assert b.status == o.status
        assert b.values == o.values or b.values == pytest.approx(o.values, rel=1e-12)


def test_risk_spec_forms() -> None:
    assert Objective.from_spec("step_time@p90") == Objective.from_spec({"name": "step_time", "risk": "p90"})
    assert Objective.from_spec("step_time*network_cost").with_risk("p50").name == "step_time*network_cost@p50"
    assert Objective.from_spec("memory").with_risk("p90").name == "memory"  # memory has no risk form
    with pytest.raises(cosmic.ConfigError, match="risk must be one of p50, p90"):
        Objective.from_spec("step_time@p99")
    with pytest.raises(cosmic.ConfigError, match="risk must be one of"):
        Objective.from_spec({"name": "memory", "risk": "p90"})


def test_cli_risk(tmp_path: Path) -> None:
    psa = tmp_path / "space.yaml"
    psa.write_text(json.dumps({
        "name": "risk-zero", "base": str(ROOT / "examples" / "megatron-gpt3-175b-1024xa100.yaml"),
        "knobs": {"workload": {"zero": {"values": [0, 1, 3]}}},
        "derived": {"dp": {"rule": "npus_quotient", "from": ["tp", "pp", "sp"]}}, "objectives": ["step_time"]}))
    run = subprocess.run([str(BIN), "explore", str(psa), "--agent", "exhaustive", "--budget", "10", "--risk", "p90",
                          "--out", "o", "--json"], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert run.returncode == 0, run.stderr
    d = json.loads(run.stdout)
    assert d["objectives"] == [{"name": "step_time@p90", "direction": "minimize"}]
    ev = d["best_result"]["evidence"]
    f = 1.0 / (1.0 + ev["p90_error_pct"] / 100.0)
    assert d["best_objective"] == pytest.approx(d["best_result"]["step_time_s"] * f, rel=1e-12)
    bad = subprocess.run([str(BIN), "explore", str(psa), "--risk", "p99"], capture_output=True, text=True,
                         cwd=tmp_path, timeout=300)
    assert bad.returncode == 2 and bad.stderr.strip() == "error: --risk must be p50 or p90, got 'p99'"
