"""The serving simulation: closed forms for one request, Little's law, invariants, disaggregation, errors."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import cosmic
from cosmic.errors import ConfigError
from cosmic.serving import serve_dict, serving_config_from_dict
from cosmic.serving.engine import replica_cost

ROOT = Path(__file__).resolve().parents[2]

BASE: dict[str, Any] = {
    "model": "llama3-8b",
    "accelerator": "h100-sxm",
    "network": {"dims": [{"topology": "Switch", "npus": 8, "fabric": "nvlink4"}]},
    "serving": {
        "replicas": {"tp": 2, "count": 4},
        "scheduler": {"max_num_seqs": 64, "max_num_batched_tokens": 4096},
        "workload": {"requests": 400, "arrival": "poisson", "rate": 20.0,
                     "input": {"dist": "lognormal", "mean": 600, "sigma": 0.5, "max": 4000},
                     "output": {"dist": "lognormal", "mean": 150, "sigma": 0.5, "max": 1000}, "seed": 3},
    },
}


def cfg_with(**serving: Any) -> dict[str, Any]:
    d = copy.deepcopy(BASE)
    for k, v in serving.items():
        if isinstance(v, dict) and isinstance(d["serving"].get(k), dict):
            d["serving"][k].update(v)
        else:
            d["serving"][k] = v
    return d


def one_request(inp: int, out: int, **serving: Any) -> dict[str, Any]:
    d = cfg_with(**serving)
    d["serving"]["workload"] = {"requests": 1, "arrival": "offline", "input": inp, "output": out}
    return d


@pytest.mark.parametrize("scheduler", [{}, {"chunked_prefill": True, "priority": "decode"},
                                       {"policy": "static"}, {"priority": "decode"}])
def test_one_request_closed_form(scheduler: dict[str, Any]) -> None:
    """TTFT = the prefill iteration; E2E = TTFT + the decode iterations, each reading one more cached token."""
    inp, out = 1000, 50
    d = one_request(inp, out, scheduler=scheduler)
    cfg = serving_config_from_dict(d)
    cost = replica_cost(cfg, cfg.serving.replicas)
    prefill = cost.dense_s(inp, 1) + cost.prefill_attention_s(inp, inp)
    decode = sum(cost.dense_s(1, 1) + cost.decode_attention_s(1, inp + 1 + i) for i in range(out - 1))
    r = cosmic.serve(cfg)
    assert r.latency["ttft_p50_s"] == pytest.approx(prefill, rel=1e-12)
    assert r.latency["e2e_p50_s"] == pytest.approx(prefill + decode, rel=1e-9)
    assert r.latency["tpot_p50_s"] == pytest.approx(decode / (out - 1), rel=1e-9)


def test_a_replicas_decode_attention_is_every_layers() -> None:
    from cosmic.workload.layers import decode_attention_s

    cfg = serving_config_from_dict(cfg_with(replicas={"tp": 2, "pp": 2, "count": 2}))
    cost = replica_cost(cfg, cfg.serving.replicas)
    one = decode_attention_s(cfg.model, cfg.accelerator, tp=2, seqs=7, context_tokens=7000, precision="bf16",
                             kv_bytes_per_element=2)
    assert cost.decode_attention_s(7, 7000) == pytest.approx(32 * one, rel=1e-12)
    run = cost.decode_run_s(7, 7000, 3)
    assert run[2] == pytest.approx(cost.dense_s(7, 7) + cost.decode_attention_s(7, 7014), rel=1e-12)


def test_chunked_prefill_of_one_request_adds_up_its_chunks() -> None:
    cfg = serving_config_from_dict(one_request(3000, 2, scheduler={"chunked_prefill": True,
                                                                   "max_num_batched_tokens": 1024}))
    cost = replica_cost(cfg, cfg.serving.replicas)
    chunks = [(1024, 1024), (1024, 2048), (952, 3000)]
    want = sum(cost.dense_s(q, 1 if kv == 3000 else 0) + cost.prefill_attention_s(q, kv) for q, kv in chunks)
    assert cosmic.serve(cfg).latency["ttft_p50_s"] == pytest.approx(want, rel=1e-12)


def test_littles_law_on_a_steady_state_run() -> None:
    """Mean requests in the system = arrival rate x mean time in the system, over a window of the run."""
    d = cfg_with(workload={"requests": 3000, "rate": 15.0})
    r = serve_dict(d)
    assert r.completed == 3000
    lat = r.samples
    from cosmic.workload.requests import generate

    reqs = generate(serving_config_from_dict(d).serving.workload)
    arr, fin = reqs.arrival_s, reqs.arrival_s + lat.e2e_s
    lo, hi = arr[500], arr[2500]  # away from the empty start and the drain
    grid = np.linspace(lo, hi, 20001)
    in_system = (arr[None, :] <= grid[:, None]) & (fin[None, :] > grid[:, None])
    mean_l = in_system.sum(axis=1).mean()
    inside = (arr >= lo) & (arr < hi)
    lam = inside.sum() / (hi - lo)
    assert mean_l == pytest.approx(lam * lat.e2e_s[inside].mean(), rel=0.05)


def test_a_higher_offered_rate_never_lowers_p99_latency() -> None:
    prev = {"ttft_p99_s": 0.0, "e2e_p99_s": 0.0}
    for rate in (2.0, 8.0, 20.0, 40.0, 80.0):
        r = serve_dict(cfg_with(workload={"rate": rate}))
        for k in prev:
            assert r.latency[k] >= prev[k] * (1 - 1e-9), (rate, k)
            prev[k] = r.latency[k]


@pytest.mark.parametrize("what", ["mem_bw_gbps", "peak_tflops"])
def test_more_bandwidth_or_flops_is_never_slower(what: str) -> None:
    base = serve_dict(cfg_with(workload={"rate": 30.0}))
    d = cfg_with(workload={"rate": 30.0})
    acc = dict(cosmic.catalog.get_accelerator("h100-sxm"))
    acc[what] = ({k: 2 * v for k, v in acc[what].items()} if what == "peak_tflops" else 2 * acc[what])
    d["accelerator"] = acc
    fast = serve_dict(d)
    for k in ("ttft_p50_s", "ttft_p99_s", "tpot_p50_s", "e2e_p99_s"):
        assert fast.latency[k] <= base.latency[k] * (1 + 1e-9), k
    assert fast.output_tokens_per_s >= base.output_tokens_per_s * (1 - 1e-9)


def test_more_network_bandwidth_is_never_slower() -> None:
    base = serve_dict(cfg_with(workload={"rate": 30.0}))
    d = cfg_with(workload={"rate": 30.0})
    d["network"] = {"dims": [{"topology": "Switch", "npus": 8, "link_gbps": 4500, "latency_ns": 1000}]}
    assert serve_dict(d).latency["e2e_p99_s"] <= base.latency["e2e_p99_s"]


def test_disaggregated_with_free_transfer_and_equal_pools_is_no_worse_at_low_load() -> None:
    d = cfg_with(replicas={"tp": 2, "count": 2}, workload={"rate": 0.5, "requests": 60})
    d["network"]["dims"][0]["npus"] = 4
    colo = serve_dict(d)
    dis = copy.deepcopy(d)
    del dis["serving"]["replicas"]
    dis["network"]["dims"][0]["npus"] = 8
    pool = {"tp": 2, "count": 2}
    dis["serving"]["disaggregation"] = {"prefill": pool, "decode": pool, "kv_transfer": "free"}
    sep = serve_dict(dis)
    for k in ("ttft_p50_s", "ttft_p99_s", "tpot_p99_s", "e2e_p50_s", "e2e_p99_s"):
        assert sep.latency[k] <= colo.latency[k] * (1 + 1e-9), k
    priced = copy.deepcopy(dis)
    priced["serving"]["disaggregation"]["kv_transfer"] = "priced"
    assert serve_dict(priced).latency["e2e_p50_s"] > sep.latency["e2e_p50_s"]


def test_disaggregation_moves_the_kv_cache_over_the_scale_out_network() -> None:
    d = cfg_with()
    del d["serving"]["replicas"]
    d["model"] = "llama3-70b"
    d["network"] = {"dims": [{"topology": "Switch", "npus": 8, "fabric": "nvlink4"},
                             {"topology": "Switch", "npus": 2, "link_gbps": 50, "latency_ns": 5000}]}
    d["serving"]["disaggregation"] = {"prefill": {"tp": 8}, "decode": {"tp": 8}}
    cfg = serving_config_from_dict(d)
    cost = replica_cost(cfg, cfg.serving.disaggregation.prefill)
    t = cost.kv_transfer_s(np.array([1000]))[0]
    # through the switch: two links of latency, the shard once at the link rate
    assert t == pytest.approx(2 * 5e-6 + 1000 * cost.memory.kv_bytes_per_token / 50e9, rel=1e-9)


def test_more_replicas_serve_more() -> None:
    d = cfg_with(replicas={"tp": 4, "count": 1}, workload={"arrival": "offline", "requests": 600})
    d["network"]["dims"][0]["npus"] = 4
    one = serve_dict(d)
    d["serving"]["replicas"]["count"] = 2
    d["network"]["dims"][0]["npus"] = 8
    assert serve_dict(d).output_tokens_per_s > 1.8 * one.output_tokens_per_s


def test_continuous_batching_beats_static_offline() -> None:
    base = cfg_with(workload={"arrival": "offline", "requests": 500})
    static = serve_dict(cfg_with(workload={"arrival": "offline", "requests": 500}, scheduler={"policy": "static"}))
    assert serve_dict(base).output_tokens_per_s > static.output_tokens_per_s


def test_pipeline_parallel_replicas_run_one_batch_per_stage() -> None:
    d = cfg_with(replicas={"tp": 2, "pp": 2, "count": 2})
    r = serve_dict(d)
    assert r.completed == 400
    cfg = serving_config_from_dict(d)
    cost = replica_cost(cfg, cfg.serving.replicas)
    assert cost.lanes == 2 and cost.lane_max_seqs == 32
    flat = serving_config_from_dict(cfg_with(replicas={"tp": 2, "count": 4}))
    # a lane's iteration passes both stages (every layer once) and one send between them
    one = replica_cost(flat, flat.serving.replicas)
    assert cost.pp_send_s(8) > 0
    assert cost.dense_s(8, 8) == pytest.approx(one.dense_s(8, 8) + cost.pp_send_s(8), rel=1e-12)


def test_a_deployment_that_does_not_fit_says_so() -> None:
    d = cfg_with(replicas={"tp": 1, "count": 8})
    d["model"] = "llama3-70b"
    r = serve_dict(d)
    assert not r.fits_memory and r.completed == 0
    assert "no room for the KV cache" in r.notes[0]


def test_requests_longer_than_the_cache_are_refused_not_dropped_silently() -> None:
    d = one_request(5000, 10, scheduler={"max_num_batched_tokens": 4096})
    r = serve_dict(d)
    assert r.refused == 1 and "refused" in r.notes[0]


@pytest.mark.parametrize(("change", "message"), [
    ({"replicas": {"tp": 3, "count": 2}}, "serving.replicas.tp: tp=3 must divide the model's 32 attention heads"),
    ({"replicas": {"tp": 2, "count": 3}}, "serving: replicas 3x(tp 2 x pp 1) = 6 devices but the network has 8"),
    ({"replicas": {"tp": 2, "ep": 2, "count": 4}}, "serving.replicas.ep: ep=2 needs a mixture-of-experts model"),
    ({"scheduler": {"policy": "static", "chunked_prefill": True}}, "chunked_prefill needs policy: continuous"),
    ({"disaggregation": {"prefill": {"tp": 4}, "decode": {"tp": 4}}}, "give replicas (colocated) or disaggreg"),
    ({"workload": {"rate": None}}, "poisson arrivals need rate"),
])
def test_config_errors_are_one_line_with_the_key(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as exc:
        serving_config_from_dict(cfg_with(**change), file="s.yaml")
    assert message in str(exc.value) and str(exc.value).startswith("s.yaml: ")


def test_a_trace_error_from_a_config_names_the_trace_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("arrival_s,input_tokens,output_tokens\n0,10,10\n0.5,ten,1\n")
    d = cfg_with()
    d["serving"]["workload"] = {"arrival": "trace", "trace": "t.csv"}
    f = tmp_path / "c.yaml"
    import yaml

    f.write_text(yaml.safe_dump(d))
    with pytest.raises(ConfigError, match=r"t\.csv: line 3: input_tokens 'ten' is not a number"):
        cosmic.serve(f)


def test_the_examples_run() -> None:
    for f in sorted((ROOT / "examples" / "serving").glob("*.yaml")):
        r = cosmic.serve(f)
        assert r.completed > 0 and r.goodput_requests_per_s > 0, f.name
