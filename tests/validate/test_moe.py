"""MoE rows of a training-runs CSV: the notes' `moe:` block becomes the model's MoE shape and expert layout."""

from __future__ import annotations

from pathlib import Path

import pytest

from cosmic import catalog
from cosmic.validate import moe, validate_file
from cosmic.validate.table import read_table
from cosmic.validate.training import compare_row, plan_row
from cosmic.workload.model import ModelSpec


def _rows(data_dir: Path) -> dict:  # type: ignore[type-arg]
    _, rows = read_table(data_dir / "synthetic_moe.csv")
    return {r.row_id: r for r in rows}


def _catalog_spec(name: str) -> ModelSpec:
    cat = catalog.get_model(name)
    drop = {"published_params_b", "published_active_params_b", "source", "params_tolerance_pct",
            "active_params_tolerance_pct", "published_active_excludes_embedding"}
    return ModelSpec(**{k: v for k, v in cat.items() if k not in drop})


@pytest.mark.parametrize(("row_id", "catalog_name"), [("X01", "deepseek-v3"), ("X02", "qwen3-30b-a3b")])
def test_the_notes_moe_shape_gives_the_catalog_models_parameter_counts(data_dir: Path, row_id: str,
                                                                       catalog_name: str) -> None:
    m = plan_row(_rows(data_dir)[row_id]).config.model
    ref = _catalog_spec(catalog_name)
    assert m.moe is not None
    assert abs(m.n_params / ref.n_params - 1) <= 0.01
    assert abs(m.n_active_params / ref.n_active_params - 1) <= 0.01
    # the published totals too (671B / 37B for DeepSeek-V3, 30.5B / 3.3B for Qwen3-30B-A3B)
    cat = catalog.get_model(catalog_name)
    assert abs(m.n_params / 1e9 / cat["published_params_b"] - 1) <= 0.01


def test_the_block_sets_expert_parallelism_mla_and_the_balanced_routing(data_dir: Path) -> None:
    plan = plan_row(_rows(data_dir)["X01"])
    c = plan.config
    assert (c.parallel.ep, c.parallel.moe_dispatcher, c.training.moe_imbalance) == (16, "alltoall", 1.0)
    assert c.model.moe is not None and c.model.moe.first_dense_layers == 3 and c.model.moe.shared_experts == 1
    assert c.model.mla is not None and (c.model.mla.kv_lora_rank, c.model.mla.q_lora_rank) == (512, 1536)
    assert c.accelerator.name == "h800"
    assert "routing force-balanced (notes): moe_imbalance 1.0" in plan.defaults
    # a row that does not say how routing was balanced states the default it runs with
    other = plan_row(_rows(data_dir)["X02"])
    assert other.config.training.moe_imbalance == 1.0
    assert any("routing balance not stated" in d for d in other.defaults)
    assert other.config.model.head_dim == 128


def test_a_bad_notes_field_skips_that_row_naming_line_column_and_value(data_dir: Path) -> None:
    rows = _rows(data_dir)
    bad = compare_row(rows["X03"])
    assert bad.skipped_reason == (f"line {rows['X03'].line}, column notes: moe field experts='eight' is not a "
                                  "positive integer")
    layers = compare_row(rows["X04"]).skipped_reason
    assert layers is not None and "moe_layers='sometimes'" in layers and f"line {rows['X04'].line}" in layers
    key = compare_row(rows["X06"]).skipped_reason
    assert key is not None and "'capacity=1'" in key and "column notes" in key


def test_an_moe_row_without_a_block_is_skipped_with_its_reason(data_dir: Path) -> None:
    reason = compare_row(_rows(data_dir)["X05"]).skipped_reason
    assert reason is not None and "without a `moe:` block" in reason


def test_the_report_has_a_per_study_table_and_keeps_the_good_rows(data_dir: Path) -> None:
    rep = validate_file(data_dir / "synthetic_moe.csv").to_dict()
    by = rep["by_study"]
    assert set(by) == {"synth_moe_a", "synth_moe_b"}
    assert (by["synth_moe_a"]["rows"], by["synth_moe_a"]["compared"]) == (1, 1)
    assert (by["synth_moe_b"]["rows"], by["synth_moe_b"]["compared"]) == (5, 1)
    assert rep["rows_compared"] == 2
    for r in rep["rows"]:
        assert (r.get("skipped_reason") is None) == (r.get("error_pct") is not None)


def test_etp_unstated_falls_back_to_one_only_when_tp_does_not_fold() -> None:
    block = moe.MoERow(moe={}, ep=8, etp=None)
    notes: list[str] = []
    assert moe.expert_layout({"ep": 8}, block, 16, 2, notes) == {"ep": 8}
    assert moe.expert_layout({"ep": 8}, block, 8, 2, notes) == {"ep": 8, "etp": 1}
    assert notes == ["etp not stated: 1 (ep*tp = 8*2 does not fold onto 8 ranks)"]


def test_dispatcher_and_overlap_read_the_framework_and_notes(data_dir: Path) -> None:
    from dataclasses import replace

    row = _rows(data_dir)["X02"]
    assert (moe.dispatcher(row), moe.overlaps(row)) == ("alltoall", False)
    row2 = replace(row, text=dict(row.text, framework="Megatron-Core, allgather dispatcher",
                                  notes=row.text["notes"] + "; DeepEP"))
    assert (moe.dispatcher(row2), moe.overlaps(row2)) == ("allgather", True)
    # the schedule cell names DualPipe, which overlaps dispatch and combine with the other micro-batch's compute
    row3 = replace(row, text=dict(row.text, vpp="DualPipe (bidirectional; not interleaved 1F1B)"))
    assert moe.overlaps(row3)


def test_moe_cp_runs_every_row_is_compared_or_explained(shared_dir: Path) -> None:
    path = shared_dir / "moe_cp_runs.csv"
    if not path.exists():
        pytest.skip(f"{path} not present")
    rep = validate_file(path)
    assert len(rep.rows) >= 50
    assert len(rep.compared) >= 40
    for r in rep.rows:
        assert (r.skipped_reason is None) != (r.error_pct is None)
    assert {r.study for r in rep.compared} >= {"mbridge_2511_moe", "mbridge_2604_moe"}
