"""Serving rows: mapping cells to a serving configuration, and the published TensorRT-LLM figures."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from cosmic.validate import Kind, read_table, validate_file
from cosmic.validate.serving import compare_row, row_config

_COLUMNS = ("row_id,study,model,params_b,layers,hidden,ffn_hidden,heads,kv_heads,head_dim,vocab,moe,accel,num_accel,"
          "accel_mem_gb,intra_node_link,tp,pp,ep,dp,framework,precision_weights,precision_kv,precision_compute,"
          "scenario,input_len,output_len,input_len_dist,output_len_dist,batch_size,max_num_seqs,concurrency,"
          "request_rate,throughput_tokens_per_s,throughput_output_tokens_per_s,throughput_requests_per_s,"
          "ttft_ms_p50,ttft_ms_p99,tpot_ms_p50,tpot_ms_p99,latency_constraints,notes,source")
HEADER = _COLUMNS.split(",")
LLAMA8B = {"model": "Llama-3.1-8B", "layers": "32", "hidden": "4096", "ffn_hidden": "14336", "heads": "32",
           "kv_heads": "8", "head_dim": "128", "vocab": "128256", "accel": "NVIDIA H100 80GB", "framework":
           "TensorRT-LLM 0.17", "precision_weights": "fp8", "precision_compute": "fp8", "scenario": "Offline",
           "input_len": "128", "output_len": "128", "request_rate": "inf", "throughput_output_tokens_per_s": "1000",
           "notes": "--kv_cache_free_gpu_mem_fraction 0.95", "source": "x"}


def write(tmp_path: Path, *rows: dict[str, str]) -> Path:
    f = tmp_path / "s.csv"
    with f.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=HEADER)
        w.writeheader()
        for i, r in enumerate(rows):
            w.writerow({"row_id": f"R{i}", "study": "synthetic", **r})
    return f


def test_the_serving_header_is_recognised(tmp_path: Path) -> None:
    kind, rows = read_table(write(tmp_path, LLAMA8B | {"num_accel": "1", "tp": "1"}))
    assert kind is Kind.SERVING and rows[0].i("input_len") == 128


def test_replicas_multiply_one_replica_and_the_cells_set_the_config(tmp_path: Path) -> None:
    _, rows = read_table(write(tmp_path, LLAMA8B | {"num_accel": "1", "tp": "1"},
                               LLAMA8B | {"num_accel": "8", "tp": "1"},
                               LLAMA8B | {"num_accel": "1", "tp": "1", "notes": ""}))
    one, eight, default = (compare_row(r) for r in rows)
    assert eight.predicted == pytest.approx(8 * (one.predicted or 0), rel=1e-12)
    data, dp, _ = row_config(rows[0])
    assert dp == 1 and data["serving"]["kv_free_fraction"] == 0.95
    assert data["serving"]["precision"] == "fp8" and data["serving"]["workload"]["arrival"] == "offline"
    assert row_config(rows[2])[0]["serving"]["kv_free_fraction"] == 0.9  # TensorRT-LLM's default
    assert (default.predicted or 0) <= (one.predicted or 0)  # a smaller cache never batches more sequences


def test_a_rate_gives_poisson_arrivals_and_bounded_throughput(tmp_path: Path) -> None:
    _, rows = read_table(write(tmp_path, LLAMA8B | {"num_accel": "1", "tp": "1", "request_rate": "2",
                                                    "scenario": "Server", "notes": "with 500 requests"}))
    data, _, _ = row_config(rows[0])
    assert data["serving"]["workload"] == {"arrival": "poisson", "input": 128, "output": 128, "seed": 0,
                                           "rate": 2.0, "requests": 500}
    c = compare_row(rows[0])
    assert c.predicted == pytest.approx(2 * 128, rel=0.15)  # a system that keeps up serves the offered rate


@pytest.mark.parametrize(("cells", "reason"), [
    ({"moe": "experts=8; top_k=2"}, "needs experts, top_k and expert_ffn"),
    ({"input_len": ""}, "input or output length not stated"),
    ({"accel": "Some NPU"}, "not in the catalog"),
    ({"tp": ""}, "tp or num_accel not stated"),
])
def test_rows_that_cannot_be_compared_say_why(tmp_path: Path, cells: dict[str, str], reason: str) -> None:
    _, rows = read_table(write(tmp_path, LLAMA8B | {"num_accel": "1", "tp": "1"} | cells))
    c = compare_row(rows[0])
    assert c.skipped_reason is not None and reason in c.skipped_reason


@pytest.fixture(scope="module")
def serving_report(shared_dir: Path):  # type: ignore[no-untyped-def]
    return validate_file(shared_dir / "serving_runs.csv")


def test_published_serving_throughput(serving_report) -> None:  # type: ignore[no-untyped-def]
    """TensorRT-LLM offline and online figures, dense and mixture-of-experts: at least 80% of the rows compared,
    median |error| <= 15%, p90 <= 35%."""
    rep = serving_report
    s = rep.stats()
    assert s["median_ape_pct"] <= 15 and s["p90_ape_pct"] <= 35
    assert len(rep.compared) >= 0.8 * len(rep.rows)


def test_a_moe_row_is_served_with_its_experts(tmp_path: Path) -> None:
    cells = {"num_accel": "2", "tp": "2", "ep": "2", "moe": "experts=8;top_k=2;expert_ffn=14336;active_params_b=1"}
    _, rows = read_table(write(tmp_path, LLAMA8B | cells))
    data, _, _ = row_config(rows[0])
    assert data["model"]["moe"] == {"experts": 8, "top_k": 2, "expert_ffn_hidden": 14336}
    assert data["serving"]["replicas"]["ep"] == 2
    assert compare_row(rows[0]).skipped_reason is None

