"""GEMM pricing: the measured maximum achievable matmul rate (MAMF) is a ceiling no shape exceeds."""

from __future__ import annotations

import itertools

import pytest

from cosmic import catalog
from cosmic.compute.accelerator import MAMF_K, Accelerator

SIZES = (256, 1000, 2048, 4096, 5120, 8192, 16384, 65536)


@pytest.mark.parametrize("name", catalog.accelerator_names())
def test_no_gemm_shape_beats_the_measured_maximum(name: str) -> None:
    acc = Accelerator(**catalog.get_accelerator(name))
    for prec in acc.peak_tflops:
        ceiling = acc.achievable_flop_per_s(prec)
        for m, k, n in itertools.product(SIZES, repeat=3):
            t = acc.gemm_time_s(m, k, n, precision=prec, bytes_per_element=2)
            assert 2.0 * m * k * n / t <= ceiling * (1 + 1e-9), (name, prec, m, k, n)


def test_the_measured_shape_runs_at_the_measured_rate_and_short_inner_dimensions_run_slower() -> None:
    acc = Accelerator(**catalog.get_accelerator("a100-80gb"))
    rate = acc.achievable_flop_per_s("bf16")
    # 1024 x 10240 x 5120 is the shape at which the A100 maximum was measured; its tiles fill the SMs evenly
    m, n = 108 * 128, 256 * 40
    t = acc.gemm_time_s(m, MAMF_K, n, precision="bf16", bytes_per_element=2)
    assert 2.0 * m * MAMF_K * n / t == pytest.approx(rate, rel=1e-9)
    t_short = acc.gemm_time_s(m, 1024, n, precision="bf16", bytes_per_element=2)
    assert 2.0 * m * 1024 * n / t_short < 0.95 * rate


def test_each_precision_is_anchored_at_the_shape_it_was_measured_at() -> None:
    """H100's MAMF was found at k = 13312 (bf16) and 14336 (fp8): there the rate is the measured one, and a
    GEMM with the A100's best k (5120) is slower, more so in fp8 (its machine balance is twice as high)."""
    acc = Accelerator(**catalog.get_accelerator("h100-sxm"))
    m, n = 132 * 128, 256 * 40  # whole waves of 128x256 tiles
    for prec, k_best in (("bf16", 13312), ("fp8", 14336)):
        rate = acc.achievable_flop_per_s(prec)
        t = acc.gemm_time_s(m, k_best, n, precision=prec, bytes_per_element=2 if prec == "bf16" else 1)
        assert 2.0 * m * k_best * n / t == pytest.approx(rate, rel=1e-9)
    slow = {
        prec: 2.0 * m * MAMF_K * n / acc.gemm_time_s(m, MAMF_K, n, precision=prec, bytes_per_element=1)
        / acc.achievable_flop_per_s(prec)
        for prec in ("bf16", "fp8")
    }
    assert slow["fp8"] < slow["bf16"] < 0.97
