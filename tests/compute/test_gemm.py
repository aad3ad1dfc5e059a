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
