"""Serving PSAs: the encoded space, decoding to `cosmic serve` configurations, and `cosmic explore` on them."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from cosmic.errors import ConfigError
from cosmic.explore import run_study
from cosmic.psa import list_presets, load_psa
from cosmic.psa.serving import ServingSpace
from cosmic.serving import ServingConfig

SMALL: dict[str, Any] = {
    "kind": "serving",
    "name": "serve-small",
    "base": {
        "model": "llama3-8b", "accelerator": "h100-sxm",
        "network": {"dims": [{"topology": "Switch", "npus": 4, "fabric": "nvlink4"}]},
        "serving": {"replicas": {"tp": 1, "count": 4},
                    "workload": {"requests": 60, "rate": 20, "input": 512, "output": 64},
                    "slo": {"ttft_s": 0.2, "tpot_s": 0.02}},
    },
    "knobs": {"serving": {"tp": [1, 2, 4], "pp": [1, 2], "disaggregation": [False, True],
                          "max_num_seqs": [8, 64], "chunked_prefill": [False, True]}},
    "objectives": ["goodput"],
}


def test_the_serving_presets_compile_and_decode() -> None:
    names = list_presets("serving")
    assert {"serve-llama3-70b-8xh100", "serve-llama3-405b-16xh100"} <= set(names)
    assert not set(names) & set(list_presets())  # training presets stay training presets
    for name in names:
        s = load_psa(name)
        assert isinstance(s, ServingSpace)
        for p in s.sample(np.random.default_rng(0), 20):
            cfg = s.decode(p)
            assert isinstance(cfg, ServingConfig) and cfg.serving.n_devices == s.n_npus


def test_the_layout_component_is_exact() -> None:
    s = ServingSpace(copy.deepcopy(SMALL))
    # colocated: tp*pp in {1,2,4} tiles 4 devices (tp 4 x pp 2 does not); disaggregated halves of 2 devices: tp*pp <= 2
    colocated = [(tp, pp) for tp in (1, 2, 4) for pp in (1, 2) if tp * pp <= 4]
    split = [(tp, pp) for tp in (1, 2, 4) for pp in (1, 2) if tp * pp <= 2]
    assert s.size_feasible == (len(colocated) + len(split)) * 2 * 2
    pts = s.sample(np.random.default_rng(1), 500)
    assert all(s.is_feasible(p) for p in pts)
    for q in s.neighbours(pts[0]):
        assert s.is_feasible(q) and int((q != pts[0]).sum()) == 1
    bad = np.array([2, 1, 0, 0, 0])  # tp 4, pp 2 on 4 devices
    assert s.violations(bad) == ["replica layout fits the network"]


def test_decoding_sets_the_knobs() -> None:
    s = ServingSpace(copy.deepcopy(SMALL))
    p = np.array([1, 0, 1, 1, 1])  # tp 2, pp 1, disaggregated, 64 seqs, chunked
    cfg = s.decode(p)
    dis = cfg.serving.disaggregation
    assert dis is not None and dis.prefill.tp == 2 and dis.prefill.count == 1 and dis.decode.count == 1
    assert cfg.serving.scheduler.max_num_seqs == 64 and cfg.serving.scheduler.chunked_prefill
    assert s.knobs(p) == {"tp": 2, "pp": 1, "disaggregation": True, "max_num_seqs": 64, "chunked_prefill": True}


def test_a_deployment_that_refuses_requests_is_rejected() -> None:
    from cosmic.explore._objective import Evaluator

    data = copy.deepcopy(SMALL)
    data["knobs"]["serving"]["max_num_batched_tokens"] = [256, 1024]  # prompts are 512 tokens
    s = ServingSpace(data)
    p = np.array([0, 0, 0, 0, 0, 0])  # tp 1, not chunked, budget 256: every prompt refused
    ev = Evaluator(s).evaluate_one(p)
    assert ev.status == "rejected" and "requests refused" in (ev.reason or "")
    p[-1] = 1
    assert Evaluator(s).evaluate_one(p).status == "ok"


@pytest.mark.parametrize(("change", "message"), [
    ({"knobs": {"serving": {"tq": [1]}}}, "knobs.serving.tq: unknown knob 'tq'"),
    ({"knobs": {"serving": {"tp": []}}}, "knobs.serving.tp: must be a non-empty list"),
    ({"knobs": {"serving": {"tp": [3]}}}, "no combination of the layout knobs fits the network"),
    ({"objectives": ["goodputt"]}, "unknown objective 'goodputt' (did you mean 'goodput'?)"),
    ({"bogus": 1}, "bogus: unknown key"),
])
def test_serving_psa_errors_are_one_line(change: dict[str, Any], message: str) -> None:
    data = copy.deepcopy(SMALL) | change
    with pytest.raises(ConfigError, match=None) as exc:
        ServingSpace(data, file="p.yaml")
    assert message in str(exc.value) and "\n" not in str(exc.value)


def test_explore_finds_a_configuration_that_meets_the_slo(tmp_path: Path) -> None:
    s = ServingSpace(copy.deepcopy(SMALL))
    summary = run_study(s, "ga", budget=48, seed=0, storage=tmp_path / "s.db")
    assert summary.best_values is not None and summary.best_config is not None
    best = s.decode(s.sample(np.random.default_rng(0), 1)[0])  # any point decodes; the best one is stored
    assert best.serving.workload.requests == 60
    from cosmic.serving import serve_dict

    r = serve_dict(summary.best_config)
    assert r.goodput_requests_per_s == pytest.approx(summary.best_values[0], rel=1e-12)
    assert r.slo_attainment >= 0.9


def test_cosmic_explore_and_show_on_a_serving_psa(tmp_path: Path) -> None:
    f = tmp_path / "p.yaml"
    f.write_text(yaml.safe_dump(SMALL))
    run = [sys.executable, "-m", "cosmic.cli", "explore", str(f), "--agent", "random", "--budget", "12",
           "--seed", "1", "--out", str(tmp_path)]
    p = subprocess.run(run, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert "cosmic serve" in p.stdout and "goodput" in p.stdout
    show = subprocess.run(run[:-6] + ["--seed", "1", "--out", str(tmp_path), "--show", "3", "--json"],
                          capture_output=True, text=True, timeout=300)
    assert show.returncode == 0, show.stderr
    d = json.loads(show.stdout)
    assert d["figures"]["kind"] == "serving" and "serving" in d["config"]
