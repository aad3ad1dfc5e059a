"""Mixture-of-experts models in serving: the dense limit, EP over the TP group, memory, touched experts."""

from __future__ import annotations

import copy
import itertools
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from cosmic.catalog import get_model
from cosmic.errors import ConfigError
from cosmic.serving import serve_dict, serving_config_from_dict
from cosmic.serving.cost import touched_experts
from cosmic.serving.engine import replica_cost
from cosmic.units import BYTES_PER_ELEMENT

ROOT = Path(__file__).resolve().parents[2]
MIXTRAL = ROOT / "examples" / "serving" / "mixtral-8x7b-8xh100.yaml"


def _config(model: Any, *, tp: int = 2, ep: int = 1, link_gbps: float | None = None) -> dict[str, Any]:
    dim: dict[str, Any] = {"topology": "Switch", "npus": tp, "fabric": "nvlink4"}
    if link_gbps is not None:
        dim["link_gbps"] = link_gbps
    return {
        "model": model, "accelerator": "h100-sxm",
        "network": {"dims": [dim]},
        "serving": {"replicas": {"tp": tp, "ep": ep, "count": 1},
                    "scheduler": {"max_num_seqs": 32, "max_num_batched_tokens": 2048},
                    "workload": {"requests": 120, "arrival": "poisson", "rate": 8.0,
                                 "input": {"dist": "lognormal", "mean": 500, "sigma": 0.5, "max": 2000},
                                 "output": {"dist": "lognormal", "mean": 100, "sigma": 0.5, "max": 400},
                                 "seed": 1}},
    }


def test_one_expert_top1_serves_exactly_like_its_dense_model() -> None:
    dense = get_model("llama3-8b")
    moe = copy.deepcopy(dense) | {"moe": {"experts": 1, "top_k": 1, "expert_ffn_hidden": dense["ffn_hidden"]}}
    a, b = serve_dict(_config(dense)), serve_dict(_config(moe))
    assert b.completed == a.completed == 120
    assert b.latency.keys() == a.latency.keys()
    for key, value in a.latency.items():
        assert b.latency[key] == pytest.approx(value, rel=1e-9), key
    assert b.memory_bytes == pytest.approx(a.memory_bytes, rel=1e-12)


@pytest.mark.parametrize("ep", [1, 2, 4])
def test_more_bandwidth_on_the_ep_group_is_never_slower(ep: int) -> None:
    times = []
    for gbps in (50.0, 150.0, 450.0, 900.0):
        cost = replica_cost(*_cost_args(_config("mixtral-8x7b", tp=4, ep=ep, link_gbps=gbps)))
        times.append([cost.dense_s(t, t) for t in (1, 16, 256, 2048)])
    for slow, fast in itertools.pairwise(times):
        assert all(f <= s for f, s in zip(fast, slow, strict=True))
    assert times[-1][-1] < times[0][-1]


def _cost_args(data: dict[str, Any]) -> tuple[Any, Any]:
    cfg = serving_config_from_dict(data)
    return cfg, cfg.serving.replicas


def test_mixtral_example_parameter_memory_is_the_catalog_total_over_the_replica() -> None:
    data = yaml.safe_load(MIXTRAL.read_text())
    cfg = serving_config_from_dict(data)
    lay = cfg.serving.replicas
    assert lay is not None and lay.ep > 1
    cost = replica_cost(cfg, lay)
    total = cfg.model.n_params * BYTES_PER_ELEMENT[cfg.serving.precision]
    assert cost.memory.weights_bytes * lay.tp == pytest.approx(total, rel=1e-12)
    assert cfg.model.n_params == pytest.approx(get_model("mixtral-8x7b")["published_params_b"] * 1e9, rel=0.01)
    result = serve_dict(data)
    assert result.completed == result.requests


def test_few_decode_tokens_read_only_the_experts_they_touch() -> None:
    assert touched_experts(8, 2, 1) == pytest.approx(2.0)
    assert touched_experts(64, 6, 0) == 0.0
    assert touched_experts(8, 2, 1000) == pytest.approx(8.0)
    cfg, lay = _cost_args(_config("mixtral-8x7b", tp=2, ep=2))
    cost = replica_cost(cfg, lay)
    # one decode token reads two of eight experts: far less than a batch that touches all of them
    assert cost.layer_s(1) < 0.5 * cost.layer_s(64)


@pytest.mark.parametrize(("model", "ep", "message"), [
    ("llama3-8b", 2, r"serving\.replicas\.ep: ep=2 needs a mixture-of-experts model"),
    ("mixtral-8x7b", 3, r"serving\.replicas\.ep: ep=3 must divide tp=2"),
    ("deepseek-v2", 1, r"Multi-head Latent Attention"),
])
def test_ep_and_mla_errors_are_one_line(model: str, ep: int, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as exc:
        serving_config_from_dict(_config(model, ep=ep))
    assert "\n" not in str(exc.value)


def test_the_mixtral_preset_searches_ep_only_where_it_divides_tp() -> None:
    from cosmic.psa import load_psa

    space = load_psa("serve-mixtral-8x7b-8xh100")
    assert "ep" in space.dim_names
    seen = set()
    for p in space.sample(np.random.default_rng(0), 200):
        cfg = space.decode(p)
        for lay in cfg.serving.layouts.values():
            assert lay.tp % lay.ep == 0
            seen.add((lay.tp, lay.ep))
    assert {(8, 8), (2, 2), (8, 1)} <= seen
