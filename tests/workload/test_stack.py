"""Software-stack defaults: the attention kernel a framework runs on an accelerator generation at a date, its rate
by head dimension, and the same answer through the scalar and the batch paths."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import cosmic
from cosmic import catalog
from cosmic.compute.accelerator import Accelerator
from cosmic.errors import ConfigError
from cosmic.sim.batch import simulate_columns
from cosmic.sim.columns import StepColumns
from cosmic.sim.engine import layer_shard
from cosmic.validate import mapping
from cosmic.workload.layers import ATTENTION_HEAD_DIM_K0, attention_rate_flop_per_s
from cosmic.workload.model import ModelSpec
from cosmic.workload.stack import FA3_RELEASE, default_attention_kernel
from tests.sim.helpers import dgx_config

H100 = Accelerator(**catalog.get_accelerator("h100-sxm"))
FRAMEWORKS = ("unspecified", "megatron-lm", "megatron-core", "deepspeed", "pytorch-fsdp", "jax")
GENERATIONS = (None, "volta", "ampere", "hopper", "blackwell", "tpu-v5p")


def _kernel(framework_cell: str, accel: str, model: str = "GPT", notes: str = "", source: str = "") -> str:
    """The kernel a published run's cells give, resolved as the simulator resolves it."""
    cfg = dgx_config(model="gpt3-13b", accelerator=accel, tp=8, pp=1, dp=1, global_batch=8,
                     framework=mapping.framework_family(framework_cell),
                     stack_date=mapping.stack_date(framework_cell, notes, source),
                     attention_kernel=mapping.attention_kernel(framework_cell, model, accel, notes))
    return layer_shard(cfg).attention_kernel


@pytest.mark.parametrize(("cell", "accel", "model", "source", "kernel"), [
    ("NeMo 24.07 (Megatron-Core)", "h100-sxm", "Llama 3 70B", "", "cudnn"),
    ("NeMo (NGC 23.09) / Megatron-Core, TP comm overlap", "h100-sxm", "GPT3-175B", "", "flash2"),
    ("NeMo/Megatron (NGC 23.04)", "h100-sxm", "GPT3-175B", "", "flash1"),
    ("Megatron-Core r0.8.0", "h100-sxm", "GPT", "README (commit f2e5db402c, 2024-07-15)", "cudnn"),
    ("Megatron-Core r0.8.0", "a100-80gb", "GPT", "2024-07-15", "flash2"),
    ("Megatron-LM (Jan 2021)", "a100-80gb", "GPT", "", "unfused"),
    ("Megatron-DeepSpeed", "a100-80gb", "BLOOM", "https://arxiv.org/abs/2201.11990", "unfused"),
    ("Megatron-DeepSpeed", "h100-sxm", "GPT", "2024-03-01", "flash2"),
    ("Composer / llm-foundry (PyTorch FSDP, FlashAttention)", "a100-80gb", "MPT-7B", "2024-01-06", "flash1"),
    ("torchtitan (PyTorch FSDP2)", "h100-sxm", "Llama 3 8B", "2024-10-01", "flash2"),
    ("torchtitan, FlashAttention-3", "h100-sxm", "Llama 3 8B", "", "flash3"),
    ("MaxText (JAX)", "tpu-v5p", "GPT3-175B", "", "auto"),
])
def test_the_kernel_follows_the_cells(cell: str, accel: str, model: str, source: str, kernel: str) -> None:
    assert _kernel(cell, accel, model, source=source) == kernel


@given(st.sampled_from(FRAMEWORKS), st.sampled_from(GENERATIONS),
       st.integers(2019, 2026), st.integers(1, 12))
def test_flashattention3_is_never_a_default_before_its_release(fw: str, gen: str | None, year: int,
                                                               month: int) -> None:
    date = f"{year}-{month:02d}"
    kernel = default_attention_kernel(fw, gen, date)
    assert kernel != "flash3" or date >= FA3_RELEASE
    if gen not in ("hopper", "blackwell"):
        assert kernel != "cudnn"  # Transformer Engine prefers flash-attn below sm90


def test_head_dim_below_128_runs_at_the_closed_form_rate() -> None:
    """Same FLOPs, head dim 64 vs 128: the rate falls by (64 / (64 + K0)) / (128 / (128 + K0)); never rises above
    the measured head-dim-128 figure."""
    k0 = ATTENTION_HEAD_DIM_K0
    wide = ModelSpec(layers=2, hidden=4096, heads=32, seq_len=4096, vocab=32000)
    narrow = ModelSpec(layers=2, hidden=4096, heads=64, seq_len=4096, vocab=32000)
    huge = ModelSpec(layers=2, hidden=4096, heads=16, seq_len=4096, vocab=32000)
    r128, r64, r256 = (attention_rate_flop_per_s(m, H100, "flash3", "bf16") for m in (wide, narrow, huge))
    assert r128 == pytest.approx(989e12 * 0.58)
    assert r64 / r128 == pytest.approx((64 / (64 + k0)) / (128 / (128 + k0)), rel=1e-12)
    assert r256 == r128


def test_cudnn_on_hopper_sits_between_fa2_and_fa3() -> None:
    times = {}
    for kernel in ("flash2", "cudnn", "flash3"):
        r = cosmic.simulate(dgx_config(model="gpt3-13b", accelerator="h100-sxm", tp=8, pp=1, dp=1, global_batch=8,
                                       attention_kernel=kernel, seq_len=8192))
        times[kernel] = r.breakdown["forward_s"]
    assert times["flash2"] > times["cudnn"] > times["flash3"]


def test_kernel_names_and_their_conflicts_are_checked() -> None:
    base: dict[str, Any] = {"model": "gpt3-13b", "accelerator": "h100-sxm", "parallel": {"tp": 8},
                            "network": {"dims": [{"topology": "Switch", "npus": 8, "fabric": "nvlink4"}]}}
    ok = cosmic.config_from_dict({**base, "training": {"global_batch": 8, "attention_kernel": "SDPA-flash"}})
    assert ok.training.attention_kernel == "flash2"
    with pytest.raises(ConfigError, match="unknown attention kernel 'fa9'"):
        cosmic.config_from_dict({**base, "training": {"global_batch": 8, "attention_kernel": "fa9"}})
    with pytest.raises(ConfigError, match="flash_attention is false but attention_kernel is 'flash2'"):
        cosmic.config_from_dict({**base, "training": {"global_batch": 8, "attention_kernel": "flash2",
                                                      "flash_attention": False}})
    with pytest.raises(ConfigError, match="stack_date"):
        cosmic.config_from_dict({**base, "training": {"global_batch": 8, "stack_date": "July 2024"}})


def test_batch_path_resolves_the_same_kernels() -> None:
    cfgs = [dgx_config(model="gpt3-13b", accelerator=acc, tp=8, pp=2, dp=2, global_batch=16, framework=fw,
                       stack_date=date, seq_len=4096)
            for acc in ("a100-80gb", "h100-sxm") for fw in ("megatron-lm", "megatron-core", "pytorch-fsdp")
            for date in (None, "2023-04", "2023-10")]
    batch = simulate_columns(StepColumns.from_configs(cfgs))
    assert batch.ok.all()
    for i, c in enumerate(cfgs):
        assert batch.result(i) == cosmic.simulate(c), i
    forwards = {cosmic.simulate(c).breakdown["forward_s"] for c in cfgs}
    assert len(forwards) > 4  # the stacks really run different kernels
