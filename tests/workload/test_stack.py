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


# ---- fp8 recipes ------------------------------------------------------------------------------------------------

RECIPES = ("delayed", "current", "rowwise", "blockwise", "mxfp8")


@pytest.mark.parametrize("recipe", RECIPES)
def test_a_narrow_gqa_projection_is_slower_in_fp8(recipe: str) -> None:
    """Llama-3-70B's K projection at TP 8 (one KV head of 128 per rank) over 8,192 tokens: the GEMM reads its
    8192 x 8192 input and barely computes, so quantising that input costs more than fp8 saves; the 8192-wide
    MLP-sized GEMM of the same input is faster in fp8 under every recipe."""
    from cosmic.workload.layers import linear_fwd_bwd_s

    for n in (16, 32, 64, 128, 256):
        bf16 = linear_fwd_bwd_s(H100, 8192, 8192, n, precision="bf16")
        assert linear_fwd_bwd_s(H100, 8192, 8192, n, precision="fp8", fp8_recipe=recipe) > bf16, n
    wide = 8192 * 4
    assert (linear_fwd_bwd_s(H100, 8192, 8192, wide, precision="fp8", fp8_recipe=recipe)
            < linear_fwd_bwd_s(H100, 8192, 8192, wide, precision="bf16"))


def test_quantise_bytes_follow_the_gemm_shape() -> None:
    """Closed form of one linear layer's quantisation under current scaling on Hopper (TN only): input, weight and
    output gradient each cost read 2 (amax) + read 2 (cast) + write 1 + 1 (transposed copy) bytes per element."""
    from cosmic.workload.layers import linear_fwd_bwd_s

    m, k, n = 4096.0, 8192.0, 1024.0
    gemms = 3 * H100.gemm_time_s(m, k, n, precision="fp8", bytes_per_element=1)
    q = (m * k + k * n + m * n) * 6 / H100.achievable_mem_bytes_per_s
    got = linear_fwd_bwd_s(H100, m, k, n, precision="fp8", fp8_recipe="current")
    assert got == pytest.approx(gemms + q, rel=1e-12)


def _fp8_cfg(recipe: str, framework: str = "megatron-core", accelerator: str = "h100-sxm", gb: int = 64,
             **over: Any) -> Any:
    return dgx_config(model="llama3-70b" if "model" not in over else over.pop("model"), accelerator=accelerator,
                      tp=8, pp=2, dp=2, global_batch=gb, precision="fp8", fp8_recipe=recipe, framework=framework,
                      **over)


def test_recipes_order_by_the_bytes_they_move() -> None:
    times = {r: cosmic.simulate(_fp8_cfg(r)).step_time_s for r in RECIPES}
    # Hopper: delayed fuses the norm and activation casts; block scales write both layouts in one pass; current
    # adds an amax pass before a cast-transpose, as many bytes as rowwise's two passes (6 per element)
    assert times["delayed"] < times["blockwise"] == times["mxfp8"] < times["current"] == times["rowwise"]
    # Blackwell takes fp8 operands in either layout: current scaling writes one copy, rowwise still two
    blackwell = {r: cosmic.simulate(_fp8_cfg(r, accelerator="b200")).step_time_s for r in ("current", "rowwise")}
    assert blackwell["current"] < blackwell["rowwise"]
    bf16 = cosmic.simulate(dgx_config(model="llama3-70b", accelerator="h100-sxm", tp=8, pp=2, dp=2, global_batch=64,
                                      precision="bf16", framework="megatron-core")).step_time_s
    assert max(times.values()) < bf16  # a 70B model's GEMMs are wide: fp8 still pays


def test_transformer_engine_casts_weights_once_per_step() -> None:
    """More micro-batches: Transformer Engine's per-step weight cast stays the same (in the optimizer tail),
    torchao's per-micro-batch cast grows with them."""
    def opt(framework: str, gb: int) -> float:
        return cosmic.simulate(_fp8_cfg("current", framework, gb=gb)).breakdown["optimizer_s"]

    assert opt("megatron-core", 64) == pytest.approx(opt("megatron-core", 256), rel=1e-12)
    bf16 = dgx_config(model="llama3-70b", accelerator="h100-sxm", tp=8, pp=2, dp=2, global_batch=64,
                      framework="megatron-core")
    assert opt("megatron-core", 64) > cosmic.simulate(bf16).breakdown["optimizer_s"]
    te = cosmic.simulate(_fp8_cfg("current", "megatron-core", gb=256))
    tao = cosmic.simulate(_fp8_cfg("current", "pytorch-fsdp", gb=256))
    assert tao.breakdown["forward_s"] > te.breakdown["forward_s"]


def test_recipe_defaults_and_names() -> None:
    def recipe(framework: str, accelerator: str, date: str | None = None) -> str:
        cfg = _fp8_cfg("auto", framework, accelerator, stack_date=date)
        return layer_shard(cfg).fp8_recipe

    assert recipe("megatron-core", "h100-sxm") == "delayed"
    assert recipe("pytorch-fsdp", "h100-sxm") == "current"
    assert recipe("unspecified", "b200") == "mxfp8" and recipe("unspecified", "b200", "2024-11") == "delayed"
    assert mapping.fp8_recipe("FP8-CS") == "current" and mapping.fp8_recipe("fp8 (blockwise 1x128)") == "blockwise"
    with pytest.raises(ConfigError, match="unknown fp8 recipe 'nvfp4'"):
        _fp8_cfg("nvfp4")


def test_batch_path_prices_the_same_recipes() -> None:
    cfgs = [_fp8_cfg(r, fw, acc, model="gpt3-13b") for r in ("auto", *RECIPES)
            for fw in ("megatron-core", "pytorch-fsdp") for acc in ("h100-sxm", "b200")]
    batch = simulate_columns(StepColumns.from_configs(cfgs))
    assert batch.ok.all()
    for i, c in enumerate(cfgs):
        assert batch.result(i) == cosmic.simulate(c), i


# ---- host-side kernel launches -----------------------------------------------------------------------------------


SMALL = {"name": "gpt-125m", "layers": 12, "hidden": 768, "heads": 12, "seq_len": 2048, "vocab": 50257}
"""GPT-3 Small (Brown et al. 2020, Table 2.1)."""


def _small(execution: str, micro_batch: int = 1, framework: str = "pytorch-fsdp", **over: Any) -> Any:
    return dgx_config(model=SMALL if "model" not in over else over.pop("model"), accelerator="h100-sxm",
                      tp=1, pp=1, dp=8, global_batch=8 * micro_batch, micro_batch=micro_batch,
                      framework=framework, execution=execution, **over)


def test_eager_small_layers_are_launch_bound() -> None:
    """A 125M model at micro-batch 1 of 512 tokens on H100: its kernels run shorter than the 8.6 µs an eager
    operator takes on the host, so each layer takes kernels x 8.6 µs (closed form); compiled graphs remove the
    bound."""
    from cosmic.workload.layers import layer_cost, layer_kernels
    from cosmic.workload.stack import EAGER_LAUNCH_US

    eager, compiled = _small("eager", seq_len=512), _small("compiled", seq_len=512)
    shard_e, shard_c = layer_shard(eager), layer_shard(compiled)
    lc_e = layer_cost(eager.model, eager.accelerator, shard_e)
    lc_c = layer_cost(compiled.model, compiled.accelerator, shard_c)
    k_fwd, k_bwd = layer_kernels(eager.model, shard_e)
    assert lc_c.fwd_s < k_fwd * EAGER_LAUNCH_US * 1e-6
    assert lc_e.fwd_s == pytest.approx(k_fwd * EAGER_LAUNCH_US * 1e-6, rel=1e-12)
    assert lc_e.bwd_s == pytest.approx(max(lc_c.bwd_s, k_bwd * EAGER_LAUNCH_US * 1e-6), rel=1e-12)
    assert cosmic.simulate(eager).step_time_s > cosmic.simulate(compiled).step_time_s


@pytest.mark.parametrize("model", [SMALL, "gpt3-13b", "llama3-70b"], ids=["125m", "13b", "70b"])
@pytest.mark.parametrize("micro_batch", [1, 4])
def test_compiled_is_never_slower_than_eager(model: str, micro_batch: int) -> None:
    tp = 1 if model is SMALL else 8
    cfgs = {ex: dgx_config(model=model, accelerator="h100-sxm", tp=tp, pp=1, dp=8 // tp, global_batch=8 * micro_batch,
                           micro_batch=micro_batch, framework="megatron-core", execution=ex, precision="fp8")
            for ex in ("eager", "compiled")}
    eager, compiled = (cosmic.simulate(cfgs[k]).step_time_s for k in ("eager", "compiled"))
    assert compiled <= eager


def test_large_layers_hide_the_launches() -> None:
    """GPT-3 13B at micro-batch 4: every layer's GPU time exceeds its launches, eager equals compiled."""
    kw = {"model": "gpt3-13b", "accelerator": "h100-sxm", "tp": 8, "pp": 1, "dp": 1, "global_batch": 4,
          "micro_batch": 4}
    assert (cosmic.simulate(dgx_config(**kw, execution="eager")).step_time_s
            == cosmic.simulate(dgx_config(**kw, execution="compiled")).step_time_s)


def test_execution_defaults_and_cells() -> None:
    assert layer_shard(_small("auto")).host_launch_s > 0  # PyTorch FSDP: eager
    assert layer_shard(_small("auto", framework="jax")).host_launch_s == 0
    assert layer_shard(_small("auto", framework="unspecified")).host_launch_s == 0
    assert mapping.execution("NeMo (NGC 24.04), CUDA graphs") == "compiled"
    assert _small("CUDA graphs").training.execution == "compiled"
    with pytest.raises(ConfigError, match="unknown execution 'lazy'"):
        _small("lazy")


def test_batch_path_prices_the_same_launches() -> None:
    cfgs = [_small(ex, mb, fw) for ex in ("auto", "eager", "compiled") for mb in (1, 2, 8)
            for fw in ("pytorch-fsdp", "jax")]
    batch = simulate_columns(StepColumns.from_configs(cfgs))
    assert batch.ok.all()
    for i, c in enumerate(cfgs):
        assert batch.result(i) == cosmic.simulate(c), i
