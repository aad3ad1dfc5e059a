"""Every example simulates; the Megatron GPT-3 175B example predicts the published step time."""

from __future__ import annotations

from pathlib import Path

import pytest

import cosmic
from tests.conftest import EXAMPLES

EXAMPLE_FILES = sorted(EXAMPLES.glob("*.yaml"))


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: p.stem)
def test_example_simulates(path: Path) -> None:
    r = cosmic.simulate(cosmic.load_config(path))
    assert r.step_time_s > 0
    assert sum(r.breakdown.values()) == pytest.approx(r.step_time_s, rel=1e-9)


def test_required_examples_exist() -> None:
    names = {p.name for p in EXAMPLE_FILES}
    for n in ("cosmic-s1-gpt3-175b.yaml", "cosmic-s2-gpt3-175b.yaml", "cosmic-s3-gpt3-175b.yaml",
              "megatron-gpt3-175b-1024xa100.yaml", "llama3-405b-16384xh100.yaml"):
        assert n in names


def test_megatron_175b_step_time_within_15_percent() -> None:
    """Narayanan et al. 2021 (arXiv 2104.04473): GPT-3 175B on 1024 A100s at ~140 TFLOP/s per GPU counting
    recompute (4.51e18 FLOPs per iteration by their eq. 3) -> ~31.5 s per step."""
    cfg = cosmic.load_config(EXAMPLES / "megatron-gpt3-175b-1024xa100.yaml")
    r = cosmic.simulate(cfg)
    measured_s = 4.51e18 / (1024 * 140e12)  # eq. (3) already counts the recompute forward pass
    assert measured_s == pytest.approx(31.5, abs=0.5)
    assert r.step_time_s == pytest.approx(measured_s, rel=0.15)
    assert r.fits_memory


def test_llama3_405b_example_is_the_published_layout_and_fits() -> None:
    """Llama 3 Herd of Models (arXiv 2407.21783) Table 4, 16,384 GPUs at 8K: TP 8, CP 1, PP 16, DP 128, 16M tokens
    per step; section 3.3.2: optimizer states and gradients sharded (ZeRO-2), order [TP, CP, PP, DP], no activation
    checkpointing. In that layout the model fits the H100's 80 GB."""
    cfg = cosmic.load_config(EXAMPLES / "llama3-405b-16384xh100.yaml")
    par, tr = cfg.parallel, cfg.training
    assert (par.tp, par.sp, par.pp, par.dp, par.zero) == (8, 1, 16, 128, 2)
    assert par.rank_order == ("tp", "sp", "pp", "dp")
    assert tr.global_batch * cfg.seq_len == 2048 * 8192  # 16M tokens
    assert tr.recompute.value == "none"
    r = cosmic.simulate(cfg)
    assert r.fits_memory
    assert r.memory_per_device_gb < 80
