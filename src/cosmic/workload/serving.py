"""The serving workload: the `serving:` section of a config (replica layout, KV cache, scheduler, requests, SLO)
and the memory of one serving device (weights, activations, the KV cache that fills the rest).

A serving deployment is one or more model replicas (or a prefill pool and a decode pool, DistServe / Splitwise),
each split over TP x PP devices. Every replica runs iterations of a batch that mixes prefill and decode tokens;
their costs are the same layer op costs a training step uses (`cosmic.workload.layers`), and the request-level
loop that schedules them lives in `cosmic.serve`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from cosmic.units import BYTES_PER_ELEMENT
from cosmic.workload.layers import kv_width_per_rank
from cosmic.workload.model import ModelSpec
from cosmic.workload.requests import RequestWorkload

PosInt = Annotated[int, Field(gt=0, le=1 << 30)]
Seconds = Annotated[float, Field(gt=0, le=1e9, allow_inf_nan=False)]

DEFAULT_MEMORY_UTILIZATION = 0.9
"""Fraction of device memory the server may use (vLLM's ``gpu_memory_utilization`` default, vllm/config.py)."""


class Layout(BaseModel):
    """One kind of replica: its tensor-, pipeline- and expert-parallel degrees and how many of them run."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tp: PosInt = 1
    pp: PosInt = 1
    ep: PosInt = Field(default=1, description="expert-parallel degree (needs a MoE model; dense models take 1)")
    count: PosInt = Field(default=1, description="number of replicas of this layout")

    @property
    def devices(self) -> int:
        """Devices of one replica."""
        return self.tp * self.pp

    @property
    def n_devices(self) -> int:
        return self.devices * self.count


class KVCache(BaseModel):
    """The paged KV cache (Kwon et al. 2023, vLLM): its element precision and the tokens of one block."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    precision: Literal["auto", "bf16", "fp16", "fp8"] = Field(
        default="auto", description="KV element type; auto = the serving precision (fp8 serving keeps an fp8 cache, "
        "as TensorRT-LLM does)")
    block_size: Annotated[int, Field(gt=0, le=1 << 16)] = Field(default=16, description="tokens per KV block "
                                                                "(vLLM's default 16)")


class Scheduler(BaseModel):
    """How a replica forms each iteration's batch.

    * ``static``: a batch of up to `max_num_seqs` waiting requests runs to its end before the next one starts
      (FasterTransformer-style request-level batching);
    * ``continuous``: requests join and leave at every iteration (Orca's iteration-level scheduling, vLLM), within
      `max_num_seqs` running sequences and `max_num_batched_tokens` tokens per iteration.

    `priority` says who goes first when both wait. Without chunked prefill, ``prefill`` runs waiting prompts in an
    iteration of their own before the running decodes continue (vLLM's default scheduler); ``decode`` runs the
    decodes and adds whole prompts that fit in the remaining token budget (Orca's mixed iterations). With
    `chunked_prefill` (Sarathi-Serve) prompts are cut into chunks that fill the budget left by the decodes
    (``decode`` priority, Sarathi's stall-free batching) or take the budget first (``prefill``).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    policy: Literal["static", "continuous"] = "continuous"
    max_num_seqs: PosInt = Field(default=256, description="running sequences per replica (vLLM's default 256)")
    max_num_batched_tokens: PosInt = Field(default=8192, description="tokens per iteration (prefill + decode)")
    chunked_prefill: bool = False
    priority: Literal["prefill", "decode"] = "prefill"

    @model_validator(mode="after")
    def _check(self) -> Scheduler:
        if self.chunked_prefill and self.policy == "static":
            raise ValueError("chunked_prefill needs policy: continuous")
        return self


class SLO(BaseModel):
    """Latency targets a request must meet to count towards goodput (DistServe's definition)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ttft_s: Seconds = Field(default=2.0, description="time to first token, s (default: MLPerf llama2-70b Server)")
    tpot_s: Seconds = Field(default=0.2, description="time per output token after the first, s (MLPerf's 200 ms)")


class Disaggregation(BaseModel):
    """Prefill and decode on separate pools (DistServe, Splitwise); the KV cache of each prompt moves from its
    prefill replica to a decode replica over the network."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    prefill: Layout
    decode: Layout
    kv_transfer: Literal["priced", "free"] = Field(
        default="priced", description="priced: the collective stack prices the transfer; free: an ideal link")


class ServingSpec(BaseModel):
    """The `serving:` section: how the model is served and the requests it serves."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    precision: Literal["bf16", "fp16", "fp8"] = Field(default="bf16", description="weights and GEMM precision")
    replicas: Layout | None = Field(default=None, description="colocated replicas (prefill and decode together)")
    disaggregation: Disaggregation | None = None
    kv_cache: KVCache = KVCache()
    scheduler: Scheduler = Scheduler()
    workload: RequestWorkload
    slo: SLO = SLO()
    memory_utilization: Annotated[float, Field(gt=0, le=1)] = Field(
        default=DEFAULT_MEMORY_UTILIZATION, description="fraction of device memory for weights, activations and KV")
    kv_free_fraction: Annotated[float, Field(gt=0, le=1)] | None = Field(
        default=None, description="the KV cache takes this fraction of the memory the weights and activations leave "
        "(TensorRT-LLM's kv_cache_free_gpu_mem_fraction); replaces memory_utilization")
    network_amortization_years: Annotated[float, Field(gt=0, le=100)] = Field(
        default=5.0, description="straight-line life of the network's capital cost in $ per hour figures")

    @model_validator(mode="after")
    def _one_layout(self) -> ServingSpec:
        if self.replicas is not None and self.disaggregation is not None:
            raise ValueError("give replicas (colocated) or disaggregation (prefill and decode pools), not both")
        if self.replicas is None and self.disaggregation is None:
            object.__setattr__(self, "replicas", Layout())
        return self

    @property
    def kv_precision(self) -> str:
        return self.precision if self.kv_cache.precision == "auto" else self.kv_cache.precision

    @property
    def layouts(self) -> dict[str, Layout]:
        """The pools: ``{"replicas": ...}`` colocated, ``{"prefill": ..., "decode": ...}`` disaggregated."""
        if self.disaggregation is not None:
            return {"prefill": self.disaggregation.prefill, "decode": self.disaggregation.decode}
        assert self.replicas is not None
        return {"replicas": self.replicas}

    @property
    def n_devices(self) -> int:
        return sum(lay.n_devices for lay in self.layouts.values())


# ---- memory of one serving device ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ServingMemory:
    """Memory of the most loaded device of a replica, bytes, and the KV cache it leaves room for."""

    weights_bytes: float
    activations_bytes: float
    kv_capacity_bytes: float
    capacity_bytes: float
    kv_bytes_per_token: float
    block_size: int

    @property
    def kv_blocks(self) -> int:
        """KV blocks of `block_size` tokens the device holds (the replica's cache: every device holds its share of
        every token)."""
        return max(0, int(self.kv_capacity_bytes // (self.kv_bytes_per_token * self.block_size)))

    @property
    def kv_tokens(self) -> int:
        return self.kv_blocks * self.block_size

    @property
    def fits(self) -> bool:
        """Weights and activations fit with room for at least one block."""
        return self.kv_blocks > 0

    @property
    def total_bytes(self) -> float:
        """Weights, activations and the whole KV cache (the budget the server allocates)."""
        return self.weights_bytes + self.activations_bytes + max(self.kv_capacity_bytes, 0.0)


def weight_bytes_per_device(model: ModelSpec, tp: int, pp: int, precision: str) -> float:
    """Weights of the most loaded device: its stage's layers over TP plus the larger of the embedding and the
    output head (first and last stage)."""
    layers = math.ceil(model.layers / pp)
    ends = max(model.embedding_params, model.head_params) if pp > 1 else model.embedding_params + model.head_params
    return (layers * model.layer_params + ends) / tp * BYTES_PER_ELEMENT[precision]


def kv_bytes_per_token(model: ModelSpec, tp: int, pp: int, kv_precision: str) -> float:
    """KV-cache bytes one token takes on one device: K and V of its stage's layers, its share of the KV heads."""
    return 2 * math.ceil(model.layers / pp) * kv_width_per_rank(model, tp) * BYTES_PER_ELEMENT[kv_precision]


def activation_bytes(model: ModelSpec, tp: int, tokens: int, seqs: int, precision: str) -> float:
    """Peak activations of one iteration of `tokens` batched tokens: one layer's working set at a time (the
    residual stream, QKV, the MLP's up projection and activation over TP) and the fp32 logits of the `seqs`
    sampled positions (vLLM sizes the cache after profiling such a run of `max_num_batched_tokens`)."""
    abpe = BYTES_PER_ELEMENT["bf16" if precision == "fp8" else precision]
    h, f, kv = model.hidden, model.ffn, model.kv_dim
    up = f * (2 if model.gated_mlp else 1)
    per_token = (2 * h + (h + 2 * kv) / tp + (up + f) / tp) * abpe
    return tokens * per_token + seqs * model.vocab / tp * 4


def serving_memory(model: ModelSpec, capacity_bytes: float, layout: Layout, spec: ServingSpec) -> ServingMemory:
    """Memory of one device of `layout` under `spec`: what is left of ``memory_utilization x capacity`` after the
    weights and the activations of the largest iteration is the KV cache (or `kv_free_fraction` of what they
    leave of the whole capacity)."""
    sch = spec.scheduler
    w = weight_bytes_per_device(model, layout.tp, layout.pp, spec.precision)
    a = activation_bytes(model, layout.tp, sch.max_num_batched_tokens, sch.max_num_seqs, spec.precision)
    if spec.kv_free_fraction is not None:
        kv = (capacity_bytes - w - a) * spec.kv_free_fraction
    else:
        kv = capacity_bytes * spec.memory_utilization - w - a
    return ServingMemory(w, a, kv, capacity_bytes, kv_bytes_per_token(model, layout.tp, layout.pp, spec.kv_precision),
                         spec.kv_cache.block_size)


__all__ = ["SLO", "Disaggregation", "KVCache", "Layout", "RequestWorkload", "Scheduler", "ServingMemory",
           "ServingSpec", "activation_bytes", "kv_bytes_per_token", "serving_memory", "weight_bytes_per_device"]
