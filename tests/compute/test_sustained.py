"""Sustained (power-saturated) matmul rates: the catalog's variants follow their formula, training sees them, serving
does not."""

from __future__ import annotations

import pytest

import cosmic
from cosmic import catalog
from cosmic.compute.accelerator import Accelerator

# ml-engineering MSMF of the GH100 die at 700 W (H200 SXM, stas00/ml-engineering 082816f): bf16 and fp8 TFLOP/s
MSMF_BF16, MSMF_FP8, SMS_REF, TDP_REF = 708.5, 1288.7, 132, 700.0


def _acc(name: str) -> Accelerator:
    return Accelerator(**catalog.get_accelerator(name))


def _scaled(msmf: float, sms: int, tdp: float) -> float:
    """The catalog header's rule: same die, the settled clock as the cube root of the power per SM."""
    return msmf * sms / SMS_REF * min(1.0, ((tdp / sms) / (TDP_REF / SMS_REF)) ** (1 / 3))


@pytest.mark.parametrize("name", ["h100-sxm", "h800", "h200", "h100-sxm-500w", "h100-nvl", "h100-pcie"])
def test_gh100_variants_follow_the_power_rule(name: str) -> None:
    a = _acc(name)
    assert a.sm_count is not None and a.tdp_w is not None
    bf16 = _scaled(MSMF_BF16, a.sm_count, a.tdp_w) / a.peak_tflops["bf16"]
    fp8 = _scaled(MSMF_FP8, a.sm_count, a.tdp_w) / a.peak_tflops["fp8"]
    assert a.sustained_gemm_efficiency == pytest.approx(bf16, abs=6e-4)
    assert a.fp8_sustained_gemm_efficiency == pytest.approx(fp8, abs=6e-4)


def test_lower_power_per_sm_sustains_less() -> None:
    full, capped, nvl = (_acc(n).sustained_gemm_efficiency * _acc(n).peak_tflops["bf16"]  # type: ignore[operator]
                         for n in ("h100-sxm", "h100-sxm-500w", "h100-nvl"))
    assert full > capped > nvl


@pytest.mark.parametrize("name", catalog.accelerator_names())
def test_sustained_never_beats_the_burst(name: str) -> None:
    a = _acc(name)
    s = a.sustained()
    assert s.gemm_efficiency <= a.gemm_efficiency
    assert s.attention_efficiency <= a.attention_efficiency
    assert s.achievable_mem_bytes_per_s == a.achievable_mem_bytes_per_s  # HBM has its own clock
    assert s.sustained() == s


def test_sustained_scales_attention_by_the_clock_ratio() -> None:
    a = _acc("h100-sxm")
    s = a.sustained()
    ratio = 0.716 / 0.803
    assert s.gemm_efficiency == pytest.approx(0.716)
    assert s.fp8_gemm_efficiency == pytest.approx(0.651)
    for k, v in a.attention_efficiency_by_kernel.items():
        assert s.attention_efficiency_by_kernel[k] == pytest.approx(v * ratio)


def test_no_sustained_figure_keeps_the_burst_rate() -> None:
    a = _acc("mi300x")  # its MAMF is already power-saturated
    assert a.sustained() == a


def _train(acc: dict) -> float:
    cfg = cosmic.config_from_dict({
        "model": "gpt3-13b", "accelerator": acc,
        "network": {"dims": [{"topology": "Switch", "npus": 8, "fabric": "nvlink4"}]},
        "parallel": {"tp": 8, "pp": 1, "dp": 1, "sequence_parallel": True},
        "training": {"global_batch": 8, "micro_batch": 1, "precision": "bf16"},
    })
    return cosmic.simulate(cfg).breakdown["forward_s"]


def test_training_runs_at_the_sustained_rate() -> None:
    spec = dict(catalog.get_accelerator("h100-sxm"))
    burst_only = {**spec, "sustained_gemm_efficiency": None, "fp8_sustained_gemm_efficiency": None}
    slow, fast = _train(spec), _train(burst_only)
    # compute-bound layers slow down by at most the clock ratio, and by something
    assert fast < slow <= fast * 0.803 / 0.716 * (1 + 1e-9)
