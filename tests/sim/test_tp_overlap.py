"""Tensor-parallel communication overlap (`training.tp_comm_overlap`): the chunked closed form, its invariants, both
paths agree, and the validation mapping reads the flag from the cell text."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import cosmic
from cosmic.sim.batch import simulate_columns
from cosmic.sim.columns import StepColumns
from cosmic.sim.step import chunked_overlap_cost_s, overlap_cost_s
from cosmic.validate import mapping

NET = {"dims": [{"topology": "Switch", "npus": 8, "fabric": "nvlink4"},
                {"topology": "Switch", "npus": 16, "fabric": "ib-ndr"}]}


def test_pipelined_closed_form_by_hand() -> None:
    # comm 10 s, GEMM 6 s, 4 chunks, a fifth of the SMs: c = 2.5, g = 1.5; first chunk 2.5 exposed, then 3 steps
    # of max(2.5 - 1.5, 0.2 * 2.5) = 1.0
    assert chunked_overlap_cost_s(10.0, 6.0, 4, 0.2, 1) == pytest.approx(2.5 + 3 * 1.0)
    # compute-bound chunks: each step costs the SM share, 3 x 0.2 x 2.5
    assert chunked_overlap_cost_s(10.0, 40.0, 4, 0.2, 1) == pytest.approx(2.5 + 3 * 0.5)


def test_ring_exchange_closed_form_by_hand() -> None:
    # tp 8: 7 transfers of 1 s behind GEMM pieces of 0.5 s; the local shard's piece hides the first transfer
    assert chunked_overlap_cost_s(7.0, 4.0, 8, 0.0, 0) == pytest.approx(7 * 0.5)
    assert chunked_overlap_cost_s(7.0, 16.0, 8, 0.0, 0) == 0.0


sizes = st.floats(min_value=0.0, max_value=10.0, allow_nan=False)


@given(sizes, sizes, st.integers(1, 64), st.floats(0.0, 1.0), st.sampled_from([0, 1]))
def test_overlap_is_never_slower_than_none(comm: float, gemm: float, chunks: int, share: float, lead: int) -> None:
    added = chunked_overlap_cost_s(comm, gemm, chunks, share, lead)
    assert 0.0 <= added <= comm * (1 + 1e-12)
    # and never better than a perfect (bulk) overlap with the whole GEMM
    assert added >= overlap_cost_s(comm, gemm, share) * (1 - 1e-12) - 1e-12


@given(sizes, sizes, st.integers(1, 63), st.floats(0.0, 1.0))
def test_more_pipelined_chunks_never_add_time(comm: float, gemm: float, chunks: int, share: float) -> None:
    assert chunked_overlap_cost_s(comm, gemm, chunks + 1, share, 1) <= \
        chunked_overlap_cost_s(comm, gemm, chunks, share, 1) * (1 + 1e-12) + 1e-15


def _cfg(overlap: str, *, sp: bool = True, tp: int = 8, model: Any = "gpt3-175b", recompute: str = "full") -> Any:
    return cosmic.config_from_dict({
        "model": model, "accelerator": "h100-sxm", "network": NET,
        "parallel": {"tp": tp, "pp": 16, "dp": 128 // (tp * 16) or 1, "sequence_parallel": sp},
        "training": {"global_batch": 64, "micro_batch": 1, "recompute": recompute, "tp_comm_overlap": overlap},
    })


def test_overlap_hides_tp_communication_and_keeps_compute() -> None:
    off, ub, atp = (cosmic.simulate(_cfg(o)) for o in ("off", "userbuffers", "async_tp"))
    assert atp.breakdown["comm_tp_s"] < ub.breakdown["comm_tp_s"] < off.breakdown["comm_tp_s"]
    assert atp.step_time_s < ub.step_time_s < off.step_time_s
    for r in (ub, atp):
        assert r.breakdown["forward_s"] == off.breakdown["forward_s"]
        assert sum(r.breakdown.values()) == pytest.approx(r.step_time_s, rel=1e-12)


def test_no_effect_without_sequence_parallelism_or_tp() -> None:
    for kw in ({"sp": False}, {"tp": 1, "sp": False}):
        assert cosmic.simulate(_cfg("userbuffers", **kw)) == cosmic.simulate(_cfg("off", **kw))


def test_batch_path_equals_scalar_path() -> None:
    cfgs = [_cfg(o, sp=sp, tp=tp, recompute=rec) for o in ("off", "userbuffers", "async_tp") for sp in (True, False)
            for tp in (2, 8) for rec in ("none", "full")]
    cfgs += [_cfg(o, model="qwen3-30b-a3b", tp=2) for o in ("off", "userbuffers")]
    batch = simulate_columns(StepColumns.from_configs(cfgs))
    for i, c in enumerate(cfgs):
        if batch.ok[i]:
            assert batch.result(i) == cosmic.simulate(c), i
    assert batch.ok.sum() >= len(cfgs) - 2


@pytest.mark.parametrize(("framework", "notes", "expected"), [
    ("Megatron-Core r0.8.0", "TP comm overlap (--tp-comm-overlap), PP comm overlap", "userbuffers"),
    ("NeMo (NGC 23.09) / Megatron-Core, TP comm overlap, distributed optimizer", "", "userbuffers"),
    ("NeMo", "tp_comm_overlap: true; ub_cfgs from the recipe", "userbuffers"),
    ("torchtitan", "FSDP2 + TP 8 with async TP (torch.compile)", "async_tp"),
    ("torchtitan", "enable_async_tensor_parallel = true", "async_tp"),
    ("Megatron-LM (PTD-P)", "scatter/gather optimization on", "off"),
    ("NeMo 24.07 (Megatron-Core)", "Pre-training benchmark table", "off"),
    ("Megatron-Core", "no TP comm overlap", "off"),
])
def test_mapping_reads_the_flag_from_cell_text(framework: str, notes: str, expected: str) -> None:
    assert mapping.tp_comm_overlap(framework, notes) == expected


def test_psa_knob_decodes_the_same_in_both_paths(tmp_path: Any) -> None:
    import copy

    import numpy as np

    from cosmic.psa import load_psa
    from tests.psa.psa_testdata import TINY_PSA, write_psa

    spec = copy.deepcopy(TINY_PSA)
    spec["base"]["parallel"]["sequence_parallel"] = True
    spec["knobs"]["workload"]["tp_comm_overlap"] = {"values": ["off", "userbuffers", "async_tp"]}
    space = load_psa(write_psa(tmp_path, spec, "tpo.yaml"))
    pts = space.sample(np.random.default_rng(3), 200)
    cols, ok = space.decode_columns(pts)
    cfgs = [space.decode(p) for p in pts]
    assert cols.same_as(StepColumns.from_configs(cfgs)) == []
    assert {c.training.tp_comm_overlap for c in cfgs} == {"off", "userbuffers", "async_tp"}
    batch = simulate_columns(cols)
    for i, c in enumerate(cfgs[:40]):
        if ok[i] and batch.ok[i]:
            assert batch.result(i) == cosmic.simulate(c), i
