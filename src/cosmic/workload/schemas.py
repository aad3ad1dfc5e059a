"""The workload stack's schemas: parallel layout, training step (batch, schedule, recompute, precision).

They are validated by pydantic and appear as the ``parallel`` and ``training`` sections of a config.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from cosmic._enums import LenientStrEnum
from cosmic.workload.parallel import PARALLEL_DIMS
from cosmic.workload.stack import attention_kernel_name, execution_name, fp8_recipe_name


class Schedule(LenientStrEnum):
    GPIPE = "gpipe"
    ONE_F_ONE_B = "1f1b"
    INTERLEAVED = "interleaved"
    ZB_H1 = "zb-h1"  # zero bubble H1 (Qi et al. 2023, arXiv 2401.10241): 1F1B with the weight gradients deferred

    @classmethod
    def _aliases(cls) -> dict[str, str]:
        return {"interleaved1f1b": "interleaved", "zbh1": "zb-h1", "zerobubble": "zb-h1", "zerobubbleh1": "zb-h1"}


class Recompute(StrEnum):
    NONE = "none"
    SELECTIVE = "selective"
    FULL = "full"


class Precision(StrEnum):
    BF16 = "bf16"
    FP16 = "fp16"
    FP8 = "fp8"


class Framework(LenientStrEnum):
    """The software stack that runs the step, by family (`training.framework`).

    It names the validated regime a prediction falls in (docs/validation.md, Evidence), and it selects the kernels
    a key left at ``auto`` runs (`cosmic.workload.stack`: attention kernel, fp8 recipe, kernel launches).
    ``unspecified`` (the default) claims no stack: the evidence then pools the published runs of every stack on the
    same accelerator generation, and the step runs the accelerator's best kernels.
    """

    UNSPECIFIED = "unspecified"
    MEGATRON_LM = "megatron-lm"
    """Megatron-LM before Megatron-Core (2019-2022: PTD-P, the SC21 and MLSys'23 papers' stack)."""
    MEGATRON_CORE = "megatron-core"
    """Megatron-Core and the stacks built on it: NeMo, Megatron-Bridge."""
    DEEPSPEED = "deepspeed"
    """DeepSpeed's engine (ZeRO), also with Megatron's model code (Megatron-DeepSpeed)."""
    PYTORCH_FSDP = "pytorch-fsdp"
    """PyTorch-native sharded data parallelism: Composer / llm-foundry, torchtitan."""
    JAX = "jax"
    """JAX/XLA stacks: MaxText, PAX."""

    @classmethod
    def _aliases(cls) -> dict[str, str]:
        return {
            "nemo": "megatron-core", "mcore": "megatron-core", "megatronbridge": "megatron-core",
            "megatron": "megatron-lm", "megatrondeepspeed": "deepspeed", "fsdp": "pytorch-fsdp",
            "composer": "pytorch-fsdp", "llmfoundry": "pytorch-fsdp", "torchtitan": "pytorch-fsdp",
            "maxtext": "jax", "pax": "jax", "xla": "jax",
        }


PosInt = Annotated[int, Field(gt=0, le=1 << 40)]


def rank_order_names(v: list[Any] | tuple[Any, ...]) -> tuple[str, ...]:
    """The dimension names of a rank order, lower-cased; a ValueError unless they are a permutation of tp, sp, dp, pp.

    Example:
        >>> rank_order_names(["DP", "tp", "sp", "pp"])
        ('dp', 'tp', 'sp', 'pp')
    """
    names = tuple(str(x).lower() for x in v)
    if sorted(names) != sorted(PARALLEL_DIMS):
        shown = ", ".join(n if n.isidentifier() else repr(n) for n in names)
        raise ValueError(f"must be a permutation of {', '.join(PARALLEL_DIMS)}, got {shown}")
    return names


class ParallelConfig(BaseModel):
    """Parallel layout. DP*TP*PP*SP must equal the number of NPUs.

    `sp` is the sequence (context) parallel degree: the sequence is split over `sp` ranks, which exchange keys and
    values in attention. `sequence_parallel` is Megatron's sequence parallelism inside the TP group (norm and dropout
    activations sharded; all-reduces become reduce-scatter + all-gather). `zero` is the weight-sharding stage over
    the data-parallel group: 1 optimizer states, 2 + gradients, 3 + weights (FSDP).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    dp: PosInt = 1
    tp: PosInt = 1
    pp: PosInt = 1
    sp: PosInt = 1
    sequence_parallel: bool = False
    zero: Annotated[int, Field(ge=0, le=3)] = 0
    shard_group: PosInt | None = Field(
        default=None, description="hybrid sharded data parallelism (HSDP): the ranks of the DP x SP group that "
        "shard the ZeRO states, innermost first; the groups of ranks holding the same shard all-reduce the "
        "gradient shards across them (FSDP HYBRID_SHARD, FSDP2 2-D mesh, DeepSpeed MiCS, Megatron partial "
        "distributed optimizer); default (none) = the whole DP x SP group. Needs zero >= 1 and divides dp*sp")
    ep: PosInt = Field(default=1, description="expert parallelism (MoE models): experts split over ep ranks, "
                       "folded onto the TP x SP x DP ranks of a pipeline stage (Megatron-Core MoE parallel folding)")
    etp: PosInt | None = Field(default=None, description="expert tensor parallelism: each expert split over etp "
                               "ranks; default tp (Megatron-Core's expert_tensor_parallel_size default)")
    moe_dispatcher: Literal["alltoall", "allgather"] = Field(
        default="alltoall", description="token dispatch and combine: all-to-all over EP, or all-gather and "
        "reduce-scatter over EP x ETP (Megatron --moe-token-dispatcher-type)")
    cp_algorithm: Literal["p2p", "allgather", "a2a"] = Field(
        default="p2p", description="how the sp (context-parallel) ranks exchange keys and values: p2p = ring "
        "attention, K/V passed to the ring neighbour behind each step's attention (Megatron-Core/TransformerEngine "
        "cp_comm_type default); allgather = all-gather K/V, attend locally (Llama 3; PyTorch/torchtitan default); "
        "a2a = DeepSpeed-Ulysses all-to-all from a sequence split to a head split (needs heads divisible by tp*sp)")
    rank_order: tuple[str, ...] = Field(
        default=("tp", "sp", "dp", "pp"),
        description="parallel dimensions innermost first (Megatron: tp,sp,dp,pp; COSMIC: dp,tp,sp,pp)",
    )

    @field_validator("zero", mode="before")
    @classmethod
    def _zero_alias(cls, v: Any) -> Any:
        if isinstance(v, str) and v.strip().lower() in ("fsdp", "zero3", "zero-3"):
            return 3
        if isinstance(v, bool):
            return 3 if v else 0
        return v

    @field_validator("rank_order", mode="before")
    @classmethod
    def _order(cls, v: Any) -> Any:
        if isinstance(v, str):
            v = [x.strip() for x in v.split(",")]
        if not isinstance(v, (list, tuple)):
            return v
        return rank_order_names(v)

    @property
    def degrees(self) -> dict[str, int]:
        return {"tp": self.tp, "sp": self.sp, "dp": self.dp, "pp": self.pp}

    @property
    def n_npus(self) -> int:
        return self.dp * self.tp * self.pp * self.sp

    @property
    def shard_degree(self) -> int:
        """Ranks that shard the ZeRO states: `shard_group`, else the whole DP x SP group."""
        return self.shard_group if self.shard_group is not None else self.dp * self.sp

    @property
    def expert_tp(self) -> int:
        """ETP: `etp`, else tp."""
        return self.etp if self.etp is not None else self.tp

    @property
    def expert_dp(self) -> int:
        """Expert data parallelism: EP x ETP x EDP = TP x SP x DP (the folding rule; exact when checked)."""
        return self.tp * self.sp * self.dp // (self.ep * self.expert_tp)


class TrainingConfig(BaseModel):
    """Batch, schedule, recompute and precision of the training step."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    global_batch: PosInt = Field(description="sequences per optimizer step")
    micro_batch: PosInt = Field(default=1, description="sequences per micro-batch per model replica")
    schedule: Schedule = Schedule.ONE_F_ONE_B
    virtual_stages: PosInt = Field(default=1, description="model chunks per pipeline rank (interleaved schedule)")
    first_stage_layers: PosInt | None = Field(
        default=None, description="layers of the first pipeline stage (Megatron --decoder-first-pipeline-num-layers); "
        "default: as even a split as the layers allow, a remainder to the middle stages")
    last_stage_layers: PosInt | None = Field(
        default=None, description="layers of the last pipeline stage (Megatron --decoder-last-pipeline-num-layers); "
        "one of the two left unset takes the balanced share of what the other leaves")
    recompute: Recompute = Recompute.NONE
    precision: Precision = Precision.BF16
    dp_overlap: bool = Field(default=True, description="overlap gradient reduction with the last backward")
    param_gather_overlap: bool = Field(
        default=False,
        description="ZeRO-1/2: the all-gather of the updated weights overlaps the next step's first forward "
        "(Megatron --overlap-param-gather) instead of following the optimizer step",
    )
    flash_attention: bool = Field(default=True, description="fused attention (no s^2 score matrix in memory)")
    attention_kernel: Literal["auto", "unfused", "flash1", "flash2", "flash3", "cudnn"] = Field(
        default="auto",
        description="attention kernel: unfused, FlashAttention 1/2/3, cudnn (cuDNN fused attention, Transformer "
        "Engine's FusedAttention); PyTorch SDPA backends as sdpa-flash (= flash2), sdpa-cudnn, sdpa-math (= unfused). "
        "auto = the default of the framework on this accelerator generation at stack_date (docs/simulator.md, "
        "Software stack defaults); its efficiency comes from the accelerator catalog",
    )
    fp8_recipe: Literal["auto", "delayed", "current", "rowwise", "blockwise", "mxfp8"] = Field(
        default="auto",
        description="fp8 scaling recipe (precision fp8): delayed (tensorwise, amax history), current (tensorwise from "
        "this tensor's amax; alias tensorwise, FP8-CS), rowwise, blockwise (1x128 / 128x128, DeepSeek-V3), mxfp8 "
        "(1x32 blocks, Blackwell); each GEMM operand's quantisation is priced by its shape. auto = the framework's "
        "default (docs/simulator.md, Software stack defaults)",
    )
    execution: Literal["auto", "eager", "compiled"] = Field(
        default="auto",
        description="how the host launches the kernels: eager (one PyTorch operator per kernel, 8.6 us of host time "
        "each: small layers become launch bound) or compiled (CUDA graphs, torch.compile, XLA: no host time per "
        "kernel). auto = the framework's default (eager for Megatron, DeepSpeed and PyTorch FSDP stacks, compiled "
        "for JAX and unspecified stacks)",
    )
    stack_date: Annotated[str, Field(pattern=r"^(19|20)\d\d-(0[1-9]|1[0-2])$")] | None = Field(
        default=None,
        description="release (YYYY-MM) of the software stack that runs the step; selects the framework's default "
        "kernels of that time (FlashAttention-3 exists from 2024-07 ...). None = today's stack",
    )
    grad_accumulation_fusion: bool = Field(
        default=True,
        description="weight-gradient GEMMs accumulate straight into the fp32 gradient buffer (Megatron-LM since "
        "2022); false adds a separate accumulation pass per micro-batch, as 2021 Megatron-LM and plain PyTorch",
    )
    grad_reduce_fp32: bool = Field(
        default=False,
        description="gradients are reduced over data parallelism in fp32 (PyTorch FSDP MixedPrecision "
        "reduce_dtype=float32, as Composer's DEFAULT mode): with ZeRO-3 each micro-batch's 16-bit gradient is cast "
        "to fp32 first, and every gradient collective moves 4 bytes per parameter instead of 2",
    )
    zero3_gathers: Literal["layer", "parameter"] = Field(
        default="layer",
        description="ZeRO-3/FSDP: how many collectives gather a layer's weights (and reduce-scatter its "
        "gradients): 'layer' = one per transformer layer (PyTorch FSDP1's flat parameter per wrapped block, FSDP2's "
        "grouped all-gather per module, XLA); 'parameter' = one per weight matrix, 4 per layer (DeepSpeed ZeRO-3 "
        "gathers each parameter above stage3_param_persistence_threshold on its own)",
    )
    zero3_prefetch: Annotated[int, Field(ge=0, le=64)] = Field(
        default=1,
        description="ZeRO-3/FSDP: gathers issued ahead of the unit being computed: 1 = the next gather runs behind "
        "the current compute (FSDP2's implicit prefetch, FSDP1 BACKWARD_PRE, DeepSpeed's prefetch bucket); 0 = "
        "every gather waits for the compute before it and is exposed; deeper prefetch is never slower",
    )
    reshard_after_forward: bool = Field(
        default=True,
        description="ZeRO-3/FSDP: free the gathered weights after each layer's forward and gather them again "
        "for its backward (FSDP FULL_SHARD, FSDP2's default); false keeps them to the backward (FSDP SHARD_GRAD_OP "
        "semantics for the weights: one gather per micro-batch, the stage's whole weights in memory)",
    )
    param_gather_per_step: bool = Field(
        default=False,
        description="ZeRO-3/FSDP: gather the weights once per step and keep them over all micro-batches, "
        "accumulating gradients unsharded and reduce-scattering them once (torchtitan with pipelining: FSDP2 "
        "reshard_after_forward=False, gradient sync on the last micro-batch only); false = per micro-batch",
    )
    seq_len: PosInt | None = Field(default=None, description="override the model's sequence length")
    framework: Framework = Field(
        default=Framework.UNSPECIFIED,
        description="software stack family (megatron-lm, megatron-core, deepspeed, pytorch-fsdp, jax; aliases nemo, "
        "composer, torchtitan, maxtext ...): names the validated regime whose published runs give the prediction's "
        "evidence, and the stack's default kernels (attention_kernel, fp8_recipe, execution: auto); unspecified = pool "
        "every stack's runs on this accelerator generation, and the accelerator's best kernels",
    )
    moe_imbalance: Annotated[float, Field(ge=1.0, le=1e3, allow_inf_nan=False)] = Field(
        default=1.0, description="MoE: tokens of the busiest expert rank over the balanced share (1 = balanced "
        "routing, as MoE benchmarks force it; see docs/moe.md for measured values); capped by a capacity factor")
    moe_overlap: bool = Field(
        default=False, description="MoE: token dispatch and combine overlap other compute (DeepEP/DualPipe-style "
        "two-micro-batch overlap, Megatron --overlap-moe-expert-parallel-comm); false = on the critical path")
    tp_comm_overlap: Literal["off", "userbuffers", "async_tp"] = Field(
        default="off", description="tensor-parallel communication overlap under sequence parallelism: off (the "
        "all-gathers and reduce-scatters wait for their GEMMs), userbuffers (Megatron --tp-comm-overlap with "
        "Transformer Engine: ring-exchange all-gathers split into tp chunks, pipelined reduce-scatters in 4 chunks, "
        "bulk overlap in the backward) or async_tp (PyTorch async TP, torchtitan: every all-gather and "
        "reduce-scatter micro-pipelined with its matmul in tp chunks); priced chunk by chunk (docs/simulator.md); no "
        "effect without sequence parallelism")

    @field_validator("attention_kernel", mode="before")
    @classmethod
    def _kernel_alias(cls, v: Any) -> Any:
        return attention_kernel_name(v) if isinstance(v, str) else v

    @field_validator("execution", mode="before")
    @classmethod
    def _execution_alias(cls, v: Any) -> Any:
        return execution_name(v) if isinstance(v, str) else v

    @field_validator("fp8_recipe", mode="before")
    @classmethod
    def _recipe_alias(cls, v: Any) -> Any:
        return fp8_recipe_name(v) if isinstance(v, str) else v

    @model_validator(mode="after")
    def _fused_or_not(self) -> TrainingConfig:
        if not self.flash_attention and self.attention_kernel not in ("auto", "unfused"):
            raise ValueError(f"flash_attention is false but attention_kernel is {self.attention_kernel!r} (a fused "
                             "kernel); set attention_kernel: unfused, or drop flash_attention: false")
        return self

    @property
    def fused_attention(self) -> bool:
        """Whether attention runs fused (no score matrix in memory)."""
        return self.flash_attention and self.attention_kernel != "unfused"

    @field_validator("recompute", mode="before")
    @classmethod
    def _recompute_alias(cls, v: Any) -> Any:
        if isinstance(v, bool):
            return "full" if v else "none"
        return v


__all__ = ["Framework", "ParallelConfig", "PosInt", "Precision", "Recompute", "Schedule", "TrainingConfig",
           "rank_order_names"]
