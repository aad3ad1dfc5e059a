"""How frameworks run sharded data parallelism (ZeRO-3 / FSDP): collectives per layer, prefetch, resharding.

The simulator prices each layer's weight gather and gradient reduce-scatter (`cosmic.sim.step`); this module holds
what the frameworks decide about them, each from their code:

* **Gather granularity.** PyTorch FSDP1 flattens each wrapped module (a transformer block) into one
  ``FlatParameter`` and all-gathers it with one ``all_gather_into_tensor`` (``torch/distributed/fsdp/_flat_param.py``);
  FSDP2 keeps per-parameter ``DTensor`` shards but copies them into one buffer and issues one all-gather per module
  (``_fsdp_collectives.foreach_all_gather``); XLA fuses a layer's gathers. DeepSpeed ZeRO-3 gathers every parameter
  on its own (``partition_parameters.py`` ``_allgather_param``, v0.3-0.4, 2021), except those under
  ``stage3_param_persistence_threshold`` (1e5 elements by default, ``zero/constants.py``), which stay whole on
  every rank: of a GPT layer's 12 tensors the 4 weight matrices (fused QKV, attention output, the two MLP
  projections, Megatron's ``ParallelTransformerLayer``) are gathered, the biases and norms persist.
* **Gathers under recompute.** DeepSpeed hooks every submodule (``stage3.py`` ``_register_hooks_recursively``)
  and frees each one's weights after its forward, so the recompute pass of a checkpointed layer runs the forward
  hooks again and gathers the weights once more before the backward gathers them (three gathers per micro-batch).
  FSDP hooks the wrapped (checkpointed) block: its backward pre-hook gathers the weights once and the recompute
  inside it finds them gathered (FSDP2 ``_pre_forward`` returns early in ``PRE_BACKWARD``).
* **Prefetch.** With one gather in flight ahead (FSDP2's implicit prefetch, FSDP1 ``BACKWARD_PRE`` and its
  forward issue-ahead, DeepSpeed's ``stage3_prefetch_bucket_size``) the next unit's gather runs behind the current
  unit's compute; with none, each gather waits for the compute before it.
"""

from __future__ import annotations

from typing import Any

WEIGHT_MATRICES_PER_LAYER = 4
"""Weight matrices of a transformer layer that DeepSpeed ZeRO-3 gathers one by one (Megatron-LM's
``ParallelTransformerLayer``: query_key_value, dense, dense_h_to_4h, dense_4h_to_h; a gated MLP's gate and up
projections are one fused matrix). Biases and norms (under 1e5 elements) persist unsharded."""

GATHER_UNITS = {"layer": 1, "parameter": WEIGHT_MATRICES_PER_LAYER}
"""Collectives per layer and pass for each `training.zero3_gathers` value."""


def gather_units(kind: Any) -> int:
    """All-gathers (and reduce-scatters) per transformer layer for `training.zero3_gathers` = `kind`.

    Example:
        >>> gather_units("layer"), gather_units("parameter")
        (1, 4)
    """
    return GATHER_UNITS[str(kind)]


def regathers_on_recompute(kind: Any, full_recompute: bool) -> bool:
    """Whether the recompute pass gathers a layer's weights again: per-parameter (DeepSpeed) hooks under full
    recompute.

    Example:
        >>> regathers_on_recompute("parameter", True), regathers_on_recompute("layer", True)
        (True, False)
    """
    return str(kind) == "parameter" and full_recompute
