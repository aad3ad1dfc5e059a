"""Memory of one device: weights, gradients, optimizer state (mixed-precision Adam, ZeRO stages) and activations.

Activations in flight per schedule follow Korthikanti et al. 2022 (section 4); weight, gradient and optimizer bytes
per parameter follow Rajbhandari et al. 2020 ("ZeRO", section 3.1). Every function takes floats or columns.
"""

from __future__ import annotations

from dataclasses import dataclass

from cosmic._xp import Num, vmax, vmin, where
from cosmic.workload.pipeline import StageRun

# Adam with mixed precision (ZeRO section 3.1): 2 B bf16/fp16 weights, 2 B gradients, 12 B fp32 master weights +
# momentum + variance per parameter.
WEIGHT_BYTES = 2
GRAD_BYTES = 2
OPTIMIZER_BYTES = 12
FP32_GRAD_BYTES = 4  # gradients reduced in fp32 (FSDP MixedPrecision reduce_dtype=float32)
MAIN_GRAD_BYTES = 4  # fp32 gradient accumulation buffer (Megatron-LM main_grad)
# The optimizer step streams master weights, both moments and the gradient in and writes the first three plus the
# low-precision weights back: 4+4+4+2 read, 4+4+4+2 written.
OPTIMIZER_TRAFFIC_BYTES_PER_PARAM = 28
# Full recompute: the layer being recomputed holds its full activations once, 34 bytes per token per hidden unit
# over TP (Korthikanti et al. 2022, eq. 2 without the attention scores).
FULL_LAYER_WORKING_BYTES = 34.0

GPIPE, ONE_F_ONE_B, INTERLEAVED, ZB_H1 = 0, 1, 2, 3
"""Schedule codes (`workload.schemas.Schedule` in this order)."""
RECOMPUTE_NONE, RECOMPUTE_SELECTIVE, RECOMPUTE_FULL = 0, 1, 2
"""Recompute codes (`workload.schemas.Recompute` in this order)."""


def zero3_grad_traffic_bytes(reduce_bytes: Num) -> Num:
    """HBM bytes per parameter moved on each micro-batch's unsharded gradient before the ZeRO-3 reduce-scatter.

    What PyTorch FSDP does after each backward (torch 2.x, ``torch/distributed/fsdp/_runtime_utils.py`` and
    ``_flat_param.py``):

    * the weights are views of one flat parameter, so autograd's backward of the split that made them
      (``split_with_sizes_backward``, a ``cat``) copies the per-weight gradients into one flat gradient: read and
      write ``GRAD_BYTES``;
    * ``_post_backward_hook`` casts it to the reduction dtype when that differs (``grad.to(reduce_dtype)``): read
      ``GRAD_BYTES``, write ``reduce_bytes``;
    * ``_reduce_grad`` divides it in place by the gradient pre-divide factor (``_div_if_needed``, a factor > 1 for
      every group of 2 or more ranks) before ``reduce_scatter_tensor``: read and write ``reduce_bytes``.

    Example:
        >>> zero3_grad_traffic_bytes(2), zero3_grad_traffic_bytes(4)
        (8, 18)
    """
    cast = where(reduce_bytes != GRAD_BYTES, GRAD_BYTES + reduce_bytes, 0)
    return 2 * GRAD_BYTES + cast + 2 * reduce_bytes


@dataclass(frozen=True, slots=True)
class Memory:
    """Peak memory of the most loaded device, bytes: floats for one configuration (the `Result` record), or
    columns for many."""

    weights_bytes: Num
    gradients_bytes: Num
    optimizer_bytes: Num
    activations_bytes: Num

    @property
    def total_bytes(self) -> Num:
        return self.weights_bytes + self.gradients_bytes + self.optimizer_bytes + self.activations_bytes


@dataclass(frozen=True, slots=True)
class ActivationBytes:
    """Activation bytes one rank stores per micro-batch: per layer, for the embedding, for the head, and the
    working set of the layer being recomputed under full recompute."""

    layer: Num
    embedding: Num
    head: Num
    full_working: Num


def in_flight(schedule: Num, m: Num, v: Num, pp: Num, first: Num) -> Num:
    """Micro-batches whose activations stage `first` holds at its peak (Korthikanti et al. 2022, section 4)."""
    inter = vmin(m * v, _ceil((pp - first) * (1 + (pp - 1) / (pp * v))))
    inter = vmin(m, inter)
    return where(schedule == GPIPE, m, where(schedule == INTERLEAVED, inter, vmin(m, pp - first)))


def _ceil(x: Num) -> Num:
    if hasattr(x, "shape"):
        import numpy as np

        return np.ceil(x)
    import math

    return math.ceil(x)


def stage_memory(run: StageRun, params: Num, *, pp: Num, zero: Num, dp_group: Num, schedule: Num, m: Num, v: Num,
                 recompute: Num, act: ActivationBytes, expert_params: Num = 0.0, expert_group: Num = 1,
                 keep_gathered: Num = False, keep_grads: Num = False) -> Memory:
    """Peak memory of the first stage of `run` holding `params` parameters (within a run of identical stages the
    activations in flight never grow with the stage index, so the first stage of each run is the one to check).

    A MoE model's routed experts (`expert_params` on this rank) shard their gradients and optimizer state over
    the expert data-parallel group `expert_group` instead (Megatron-Core's distributed optimizer keeps one
    expert-DP buffer per expert group).

    ZeRO-3 that keeps the gathered weights from the forward to the backward (`keep_gathered`: FSDP
    reshard_after_forward false, or weights gathered once per step) holds the stage's whole weights besides its
    shard; one that accumulates gradients unsharded over the micro-batches (`keep_grads`) holds them whole too."""
    w = params * WEIGHT_BYTES / where(zero >= 3, dp_group, 1)
    g = params * GRAD_BYTES / where(zero >= 2, dp_group, 1)
    o = params * OPTIMIZER_BYTES / where(zero >= 1, dp_group, 1)
    if expert_params is not None and not (type(expert_params) is float and expert_params == 0.0):
        w = w + expert_params * WEIGHT_BYTES / where(zero >= 3, expert_group, 1)
        g = g + expert_params * GRAD_BYTES / where(zero >= 2, expert_group, 1)
        o = o + expert_params * OPTIMIZER_BYTES / where(zero >= 1, expert_group, 1)
    # FSDP keeps one gathered layer (plus a prefetched one) in full, or the whole stage when it keeps them
    z3 = zero >= 3
    w = w + where(z3, where(keep_gathered, params, 2 * params / vmax(1, run.layers)) * WEIGHT_BYTES, 0.0)
    g = g + where(z3 & keep_grads, params * GRAD_BYTES, 0.0)
    if expert_params is not None and not (type(expert_params) is float and expert_params == 0.0):
        # and the routed experts of the gathered layers (their shards are over expert DP; with an expert DP of
        # one rank they are whole already and nothing is gathered)
        e_z3 = z3 & (expert_group > 1)
        w = w + where(e_z3, where(keep_gathered, expert_params, 2 * expert_params / vmax(1, run.layers))
                      * WEIGHT_BYTES, 0.0)
        g = g + where(e_z3 & keep_grads, expert_params * GRAD_BYTES, 0.0)
    k = in_flight(schedule, m, v, pp, run.first)
    a = k * run.layers * act.layer
    a = a + where((recompute == RECOMPUTE_FULL) & (run.layers > 0), act.full_working, 0.0)
    a = a + where(run.first == 0, k * act.embedding, 0.0)
    a = a + where(run.first + run.count == pp, act.head, 0.0)
    return Memory(w, g, o, a)


def peak_memory(parts: list[Memory], present: list[Num]) -> Memory:
    """The largest of the stages' memories (the first one on ties), over the slots that are `present`."""
    best = parts[0]
    best_total = where(present[0], best.total_bytes, -1.0)
    for p, here in zip(parts[1:], present[1:], strict=True):
        total = p.total_bytes
        better = here & (total > best_total)
        best = Memory(*(where(better, getattr(p, f), getattr(best, f)) for f in _FIELDS))
        best_total = where(better, total, best_total)
    return best


_FIELDS = ("weights_bytes", "gradients_bytes", "optimizer_bytes", "activations_bytes")
