"""The regime classifier and the evidence every Result carries (cosmic.sim.regime, cosmic.sim.evidence)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

import cosmic
from cosmic.caches import clear_caches
from cosmic.sim import evidence as ev_mod
from cosmic.sim.evidence import MIN_RUNS, Evidence, evidence_of_config, lookup, pessimistic_factor
from cosmic.sim.regime import LEVELS, Regime, classify_config, generation, level_key
from cosmic.workload.schemas import Framework

ROOT = Path(__file__).resolve().parents[2]
MEGATRON = ROOT / "examples" / "megatron-gpt3-175b-1024xa100.yaml"


def _cfg(path: Path = MEGATRON, **training: object) -> cosmic.SystemConfig:
    d = cosmic.load_config(path).to_yaml_dict()
    d["training"].update(training)
    return cosmic.config_from_dict(d)


def _table(entries: dict[int, dict[str, tuple[int, float, float]]]) -> tuple[dict[str, tuple[int, float, float]], ...]:
    return tuple(entries.get(i, {}) for i in range(len(LEVELS)))


@pytest.fixture
def table(monkeypatch: pytest.MonkeyPatch):
    """Install a given evidence table in place of the shipped one (caches cleared before and after)."""

    def use(entries: dict[int, dict[str, tuple[int, float, float]]]) -> None:
        clear_caches()
        monkeypatch.setattr(ev_mod, "_levels", lambda: _table(entries))
        ev_mod.worst_bound_pct.cache_clear()

    yield use
    monkeypatch.undo()
    clear_caches()


def test_generations_and_framework_aliases() -> None:
    assert [generation(a) for a in ("v100-32gb", "a100-80gb", "h200", "b300", "mi300x", "tpu-v5p", "custom")] == [
        "volta", "ampere", "hopper", "blackwell", "cdna3", "tpu-v5p", None]
    assert [Framework(x).value for x in ("NeMo", "torchtitan", "MaxText", "megatron_core", "Megatron-DeepSpeed")] == [
        "megatron-core", "pytorch-fsdp", "jax", "megatron-core", "deepspeed"]


def test_regime_reads_the_configuration() -> None:
    r = classify_config(_cfg(framework="megatron-lm"))
    assert r == Regime("megatron-lm", "ampere", "16-bit", "none", ("TP", "PP", "VPP", "recompute full"))
    assert level_key(r, 0) == "megatron-lm · ampere · 16-bit · none · no CP"
    fp8 = classify_config(_cfg(precision="fp8", framework="unspecified", recompute="none"))
    assert (fp8.precision, fp8.framework, fp8.features) == ("fp8", "unspecified", ("TP", "PP", "VPP"))
    # an unspecified stack has no key at the levels that name the framework: it falls back, never to a made-up one
    assert [level_key(fp8, i) is None for i in range(len(LEVELS))] == [True, True, True, False, False]
    s1 = classify_config(cosmic.load_config(ROOT / "examples" / "cosmic-s1-gpt3-175b.yaml"))
    assert s1.generation is None and all(level_key(s1, i) is None for i in range(len(LEVELS)))


def test_lookup_takes_the_finest_level_with_enough_runs(table) -> None:
    r = Regime("megatron-lm", "ampere", "16-bit", "none", ("TP",))
    fine, mid, coarse = level_key(r, 0), level_key(r, 1), level_key(r, 4)
    table({0: {fine: (MIN_RUNS, -5.0, -9.0)}, 1: {mid: (40, -7.0, -15.0)}, 4: {coarse: (90, -10.0, -25.0)}})
    assert lookup(r) == Evidence(fine, r.label, MIN_RUNS, -5.0, -9.0)
    table({0: {fine: (MIN_RUNS - 1, -5.0, -9.0)}, 1: {mid: (40, -7.0, -15.0)}, 4: {coarse: (90, -10.0, -25.0)}})
    assert lookup(r) == Evidence(mid, r.label, 40, -7.0, -15.0)
    # no level has MIN_RUNS runs: the level with the most runs, whose count says how few
    table({0: {fine: (2, -5.0, -9.0)}, 4: {coarse: (5, -10.0, -25.0)}})
    got = lookup(r)
    assert (got.regime, got.runs) == (coarse, 5) and "fewer than" in got.line()
    table({})
    none = lookup(r)
    assert not none.validated and none.p90_error_pct is None and none.line().startswith("no published run")


def test_pessimistic_factor_is_the_measured_time_of_the_bound(table) -> None:
    # signed error e = predicted/measured - 1: measured = predicted / (1 + e)
    assert pessimistic_factor(Evidence("r", "r", 30, -20.0, -50.0), "p90") == pytest.approx(2.0)
    assert pessimistic_factor(Evidence("r", "r", 30, -20.0, -50.0), "p50") == pytest.approx(1.25)
    assert pessimistic_factor(Evidence("r", "r", 30, 25.0, 10.0), "p90") == pytest.approx(1 / 1.1)
    # outside every validated regime: the most optimistic bound of any regime with enough runs
    table({4: {"ampere": (MIN_RUNS, -10.0, -20.0), "hopper": (MIN_RUNS, -5.0, -60.0), "volta": (2, 0.0, -90.0)}})
    assert pessimistic_factor(Evidence("x", "x", 0, None, None), "p90") == pytest.approx(1 / 0.4)
    with pytest.raises(ValueError, match="risk must be one of"):
        pessimistic_factor(Evidence("x", "x", 0, None, None), "p99")


def test_every_result_carries_its_evidence() -> None:
    cfg = _cfg(framework="megatron-lm")
    r = cosmic.simulate(cfg)
    assert r.evidence == evidence_of_config(cfg)
    d = json.loads(json.dumps(r.to_dict()))["evidence"]
    assert set(d) >= {"regime", "runs", "p50_error_pct", "p90_error_pct"}
    # the framework names the regime only: the step is the same
    plain = cosmic.simulate(_cfg(framework="unspecified"))
    assert plain.step_time_s == r.step_time_s and plain.breakdown == r.breakdown


def test_batch_evidence_equals_the_scalar_path() -> None:
    from cosmic.psa import load_psa
    from cosmic.sim.batch import simulate_columns
    from cosmic.sim.columns import StepColumns

    space = load_psa(ROOT / "benchmarks" / "spaces" / "gpt3-175b-1024-workload.yaml")
    cfgs = [space.decode(p) for p in space.sample(np.random.default_rng(3), 200)]
    cfgs += [cosmic.config_from_dict({**c.to_yaml_dict(), "training": {**c.to_yaml_dict()["training"],
                                                                       "framework": "pytorch-fsdp"}})
             for c in cfgs[:50]]
    b = simulate_columns(StepColumns.from_configs(cfgs))
    cols = b.evidence_columns()
    want = [evidence_of_config(c) for c in cfgs]
    assert len({e.regime for e in want}) > 2
    for i, e in enumerate(want):
        assert b.evidence(i) == e == cols["regimes"][cols["regime_index"][i]]
        assert cols["runs"][i] == e.runs
        assert (math.isnan(cols["p90_error_pct"][i]) if e.p90_error_pct is None
                else cols["p90_error_pct"][i] == e.p90_error_pct)
    assert all(b.result(i).evidence == want[i] for i in range(0, len(cfgs), 17))
