"""What a software stack runs by default: its attention kernel, its fp8 recipe, how it launches kernels.

A training step's kernels are a property of the stack (`training.framework`), of the accelerator generation it runs
on, and of the stack's release date (`training.stack_date`, ``YYYY-MM``): FlashAttention-3 did not exist before July
2024, and Transformer Engine preferred cuDNN's fused attention on Hopper only from v1.2 (December 2023). Each rule
below reads those three and nothing else; `cosmic.validate.mapping` derives the three from a published run's cells.
The rules and their sources are listed in docs/simulator.md ("Software stack defaults").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

ATTENTION_KERNELS = ("auto", "unfused", "flash1", "flash2", "flash3", "cudnn")
"""Attention kernels cosmic prices: ``auto`` (the stack's default, below), the unfused kernels (QK^T, softmax, dropout,
AV one after another), FlashAttention 1/2/3 (Dao et al. 2022, Dao 2023, Shah et al. 2024) and cuDNN's fused flash
attention (cuDNN >= 8.9, Transformer Engine's ``FusedAttention``)."""

ATTENTION_ALIASES = {
    # PyTorch scaled_dot_product_attention backends (torch.nn.attention.SDPBackend): FLASH_ATTENTION is
    # FlashAttention-2 since PyTorch 2.2 (release notes, Jan 2024), CUDNN_ATTENTION cuDNN's kernel, MATH the
    # unfused composite
    "sdpa-flash": "flash2", "sdpa-cudnn": "cudnn", "sdpa-math": "unfused", "sdpa": "flash2",
    "fa1": "flash1", "fa2": "flash2", "fa3": "flash3", "flashattention": "flash2", "te-fused": "cudnn",
    "none": "unfused", "eager": "unfused",
}
"""Other names for the kernels, accepted by `training.attention_kernel`."""

FA2_RELEASE = "2023-07"
"""flash-attn 2.0.0 was released on 2023-07-17 (Dao-AILab/flash-attention tag v2.0.0)."""
FA3_RELEASE = "2024-07"
"""FlashAttention-3 (Shah et al., arXiv 2407.08608, July 2024; Hopper only)."""
TE_CUDNN_ON_HOPPER = "2024-01"
"""Transformer Engine v1.2 (2023-12-15; in the NGC containers from 24.01) integrated the cuDNN frontend and selects
``FusedAttention`` over flash-attn on sm90 "for performance" (TransformerEngine commit 32db392, PR #497: "Select
FusedAttention on sm90 and FlashAttention on others"); later releases keep the preference for sm90 and newer."""
PYTORCH_SDPA_FA2 = "2024-01"
"""PyTorch 2.2 (January 2024) moved the SDPA flash backend from FlashAttention(-1) to FlashAttention-2."""
NEW_GPU = ("hopper", "blackwell")
"""Generations where Transformer Engine prefers cuDNN attention (sm90 and newer)."""
GPU = ("volta", "ampere", "hopper", "blackwell")


def before(date: str | None, release: str) -> bool:
    """Whether a stack of `date` (``YYYY-MM``; None = today's) predates `release`.

    Example:
        >>> before("2023-04", FA2_RELEASE), before(None, FA2_RELEASE), before("2024-07", FA3_RELEASE)
        (True, False, False)
    """
    return date is not None and date < release


def default_attention_kernel(framework: str, generation: str | None, date: str | None) -> str:
    """The attention kernel a stack runs by default (a name of `ATTENTION_KERNELS`; ``auto`` = the best kernel the
    accelerator's catalog entry has, for a stack cosmic does not know).

    - Megatron-LM before Megatron-Core (2019-2022) fused the softmax but not attention: ``unfused``.
    - DeepSpeed (Megatron-DeepSpeed) before FlashAttention-2: ``unfused`` (its ``--use-flash-attn-v2`` came with
      FA2); later FlashAttention-2.
    - Megatron-Core / NeMo (Transformer Engine): flash-attn (FA1 before July 2023, FA2 after) until TE 1.2, then
      cuDNN fused attention on Hopper and newer; FA2 on Ampere, where TE keeps preferring flash-attn.
    - PyTorch-native stacks (Composer, torchtitan: ``scaled_dot_product_attention``): FlashAttention-1 before
      PyTorch 2.2, FlashAttention-2 after; on Hopper PyTorch's flash backend is FA2-class, not FA3.
    - JAX/XLA and unspecified stacks: ``auto``.

    Example:
        >>> default_attention_kernel("megatron-core", "hopper", "2024-07"), default_attention_kernel(
        ...     "megatron-core", "hopper", "2023-09"), default_attention_kernel("megatron-core", "ampere", None)
        ('cudnn', 'flash2', 'flash2')
        >>> default_attention_kernel("pytorch-fsdp", "hopper", None), default_attention_kernel("megatron-lm", "ampere",
        ...     "2021-04"), default_attention_kernel("unspecified", "hopper", None)
        ('flash2', 'unfused', 'auto')
    """
    gpu = generation in GPU
    if framework == "megatron-lm":
        return "unfused"
    if framework == "deepspeed":
        return "unfused" if before(date, FA2_RELEASE) else ("flash2" if gpu else "auto")
    if framework == "megatron-core" and gpu:
        if generation in NEW_GPU and not before(date, TE_CUDNN_ON_HOPPER):
            return "cudnn"
        return "flash1" if before(date, FA2_RELEASE) else "flash2"
    if framework == "pytorch-fsdp" and gpu:
        return "flash1" if before(date, PYTORCH_SDPA_FA2) else "flash2"
    return "auto"


def attention_kernel_name(value: str) -> str:
    """A `training.attention_kernel` value in canonical form (aliases resolved); a ValueError names the allowed
    values.

    Example:
        >>> attention_kernel_name("SDPA-flash"), attention_kernel_name("flash3")
        ('flash2', 'flash3')
    """
    v = str(value).strip().lower().replace("_", "-")
    v = ATTENTION_ALIASES.get(v, v)
    if v not in ATTENTION_KERNELS:
        allowed = ", ".join(ATTENTION_KERNELS + tuple(ATTENTION_ALIASES))
        raise ValueError(f"unknown attention kernel {value!r}; allowed: {allowed}")
    return v


def resolved_attention_kernel(kernel: str, flash_attention: bool, framework: str, generation: str | None,
                              date: str | None) -> str:
    """The kernel a step runs: `kernel` when stated, else the stack's default; ``unfused`` whenever
    ``flash_attention`` is false.

    Example:
        >>> resolved_attention_kernel("auto", True, "megatron-core", "hopper", None)
        'cudnn'
        >>> resolved_attention_kernel("flash3", False, "unspecified", "hopper", None)
        'unfused'
    """
    if not flash_attention:
        return "unfused"
    if kernel != "auto":
        return kernel
    return default_attention_kernel(framework, generation, date)


FP8_RECIPES = ("auto", "delayed", "current", "rowwise", "blockwise", "mxfp8")
"""fp8 scaling recipes (`cosmic.workload.layers.fp8_operand_bytes` prices each): tensorwise with delayed (amax
history) or current scaling, per-row scales (torchao rowwise), 1x128 / 128x128 block scales (DeepSeek-V3,
Transformer Engine Float8BlockScaling), MXFP8 1x32 blocks (Blackwell)."""

FP8_ALIASES = {
    "tensorwise": "current", "dynamic": "current", "cs": "current", "fp8-cs": "current",
    "current-scaling": "current", "delayed-scaling": "delayed", "ds": "delayed", "mx": "mxfp8", "fp8-mx": "mxfp8",
    "mxfp8-block": "mxfp8", "block": "blockwise", "fp8-bs": "blockwise", "deepseek": "blockwise",
}
"""Other names for the recipes, accepted by `training.fp8_recipe` (torchao calls dynamic tensorwise scaling
"tensorwise"; Megatron-Bridge's tables write FP8-CS and FP8-MX)."""

TE_MXFP8_DEFAULT = "2025-02"
"""Transformer Engine 2.0 (February 2025) made MXFP8BlockScaling the default recipe where the GPU supports MXFP8
(Blackwell), DelayedScaling elsewhere (``get_default_fp8_recipe``)."""


def default_fp8_recipe(framework: str, generation: str | None, date: str | None) -> str:
    """The fp8 recipe a stack runs when its run states none.

    - Megatron-LM / Megatron-Core / NeMo / DeepSpeed (Transformer Engine): Megatron's ``--fp8-recipe`` defaults to
      ``delayed``.
    - PyTorch-native (torchao ``Float8Linear``, torchtitan's float8 converter): dynamic tensorwise scaling,
      ``current``.
    - JAX (Flax/Praxis fp8 ops keep an amax history) : ``delayed``.
    - unspecified: Transformer Engine's own default, ``mxfp8`` on Blackwell from TE 2.0, else ``delayed``.

    Example:
        >>> default_fp8_recipe("pytorch-fsdp", "hopper", None), default_fp8_recipe("megatron-core", "blackwell", None)
        ('current', 'delayed')
        >>> default_fp8_recipe("unspecified", "blackwell", None), default_fp8_recipe("unspecified", "blackwell",
        ...     "2024-10")
        ('mxfp8', 'delayed')
    """
    if framework == "pytorch-fsdp":
        return "current"
    if framework == "unspecified" and generation == "blackwell" and not before(date, TE_MXFP8_DEFAULT):
        return "mxfp8"
    return "delayed"


def fp8_recipe_name(value: str) -> str:
    """A `training.fp8_recipe` value in canonical form; a ValueError names the allowed values.

    Example:
        >>> fp8_recipe_name("FP8-CS"), fp8_recipe_name("tensorwise"), fp8_recipe_name("blockwise")
        ('current', 'current', 'blockwise')
    """
    v = str(value).strip().lower().replace("_", "-")
    v = FP8_ALIASES.get(v, v)
    if v not in FP8_RECIPES:
        raise ValueError(f"unknown fp8 recipe {value!r}; allowed: {', '.join(FP8_RECIPES + tuple(FP8_ALIASES))}")
    return v


EXECUTIONS = ("auto", "eager", "compiled")
"""How the host launches a step's kernels: one by one from eager PyTorch, or as compiled graphs (CUDA graphs,
``torch.compile``, an XLA program) whose launch costs the host nothing per kernel."""

EXECUTION_ALIASES = {
    "cuda-graphs": "compiled", "cudagraphs": "compiled", "graphs": "compiled", "graph": "compiled",
    "torch.compile": "compiled", "compile": "compiled", "xla": "compiled", "jit": "compiled",
}

EAGER_LAUNCH_US = 8.6
"""Host time of one eager PyTorch operator that launches one kernel: 8.6 µs, measured for a small CUDA op in eager
mode (pytorch/pytorch#114860, "Reduce cudagraphs overhead", 2023: torch.take on 262,144 elements, eager column) —
Python, the dispatcher, autograd and ``cudaLaunchKernel`` together. A layer whose kernels run shorter than that on
the GPU is launch bound in eager mode."""


def default_execution(framework: str) -> str:
    """How a stack launches kernels by default: JAX compiles the step (XLA); Megatron/NeMo, DeepSpeed and PyTorch
    FSDP stacks run eager PyTorch (CUDA graphs and ``torch.compile`` are opt-in: Megatron ``--enable-cuda-graph``,
    NeMo ``enable_cuda_graph``, torchtitan ``compile``); an unspecified stack is priced without a host bound.

    Example:
        >>> default_execution("pytorch-fsdp"), default_execution("jax"), default_execution("unspecified")
        ('eager', 'compiled', 'compiled')
    """
    return "eager" if framework in ("megatron-lm", "megatron-core", "deepspeed", "pytorch-fsdp") else "compiled"


def execution_name(value: str) -> str:
    """A `training.execution` value in canonical form; a ValueError names the allowed values.

    Example:
        >>> execution_name("CUDA graphs"), execution_name("eager")
        ('compiled', 'eager')
    """
    v = str(value).strip().lower().replace("_", "-").replace(" ", "-")
    v = EXECUTION_ALIASES.get(v, v)
    if v not in EXECUTIONS:
        raise ValueError(f"unknown execution {value!r}; allowed: {', '.join(EXECUTIONS + tuple(EXECUTION_ALIASES))}")
    return v


@dataclass(frozen=True, slots=True)
class StackChoice:
    """The software-stack keys of a training section that decide which kernels a layer runs (hashable, by value)."""

    framework: str
    stack_date: str | None
    flash_attention: bool
    attention_kernel: str
    fp8_recipe: str = "auto"
    execution: str = "auto"

    @classmethod
    def of(cls, training: Any) -> StackChoice:
        """The choice of a `TrainingConfig`."""
        return cls(str(training.framework.value), training.stack_date, bool(training.flash_attention),
                   str(training.attention_kernel), str(training.fp8_recipe), str(training.execution))

    @property
    def host_launch_s(self) -> float:
        """Host seconds per kernel launch: `EAGER_LAUNCH_US` in eager mode, 0 for compiled graphs."""
        mode = default_execution(self.framework) if self.execution == "auto" else self.execution
        return EAGER_LAUNCH_US * 1e-6 if mode == "eager" else 0.0

    @property
    def caches_fp8_weights(self) -> bool:
        """Whether fp8 weights are quantised once per step: Transformer Engine keeps them over the micro-batches
        (Megatron passes ``is_first_microbatch``); torchao's ``Float8Linear`` casts them in every forward."""
        return self.framework != "pytorch-fsdp"

    def recipe(self, generation: str | None) -> str:
        """The fp8 recipe the step runs on an accelerator of `generation`."""
        if self.fp8_recipe != "auto":
            return self.fp8_recipe
        return default_fp8_recipe(self.framework, generation, self.stack_date)

    def attention(self, generation: str | None) -> str:
        """The attention kernel the step runs on an accelerator of `generation`."""
        return resolved_attention_kernel(self.attention_kernel, self.flash_attention, self.framework, generation,
                                         self.stack_date)
