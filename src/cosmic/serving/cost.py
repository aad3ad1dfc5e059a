"""The cost of one iteration of a serving replica: a batch of prefill and decode tokens priced with the workload
stack's layer op costs and the collective stack's `Communicator`.

One iteration runs every layer once on the batch's tokens: the weight GEMMs and element-wise passes at the batch's
token count (`workload.layers.dense_layer_s`), the attention core per prefill chunk (`cached_attention_s`) and for
all decodes at once (`decode_attention_s`), two TP all-reduces of the hidden states per layer (Megatron's split,
Shoeybi et al. 2019), the output head for the sampled positions, and with PP the sends between stages. With PP a
replica keeps `pp` batches in flight, one per stage (Vidur's micro-batches of ``batch_size_cap // num_stages``):
each is a *lane* whose iteration passes through all stages, so its latency is ``pp x stage + sends``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from cosmic.collective.algorithms import Collective
from cosmic.collective.communicator import Communicator
from cosmic.units import BYTES_PER_ELEMENT
from cosmic.workload.layers import (
    LayerShard,
    cached_attention_s,
    decode_attention_coefficients,
    decode_attention_time,
    dense_layer_s,
    elementwise_s,
    logits_s,
    moe_mlp,
    routed_tokens,
    weight_gemms,
)
from cosmic.workload.model import ModelSpec
from cosmic.workload.schemas import Recompute
from cosmic.workload.serving import Layout, ServingMemory, ServingSpec, serving_memory


class ReplicaCost:
    """Iteration times of one replica layout (seconds, per lane; see the module docstring).

    Args:
        model, acc: the model and accelerator.
        layout: the replica's TP and PP.
        spec: the serving section (precision, KV precision, scheduler).
        comm: a `Communicator` of this layout on the deployment's network (``degrees = (tp, 1, replicas, pp)``).
    """

    def __init__(self, model: ModelSpec, acc: Any, layout: Layout, spec: ServingSpec, comm: Communicator) -> None:
        self.model, self.acc, self.layout, self.spec, self.comm = model, acc, layout, spec, comm
        self.tp, self.pp, self.ep = layout.tp, layout.pp, layout.ep
        self.precision = spec.precision
        self.kv_bpe = float(BYTES_PER_ELEMENT[spec.kv_precision])
        self.abpe = BYTES_PER_ELEMENT["bf16" if spec.precision == "fp8" else spec.precision]
        self.stage_layers = math.ceil(model.layers / layout.pp)
        self.memory: ServingMemory = serving_memory(model, acc.mem_bytes, layout, spec)
        self._layers: dict[int, float] = {}
        self._logits: dict[int, float] = {}
        f, s, k = decode_attention_coefficients(model, acc, tp=self.tp, precision=self.precision,
                                                kv_bytes_per_element=self.kv_bpe)
        n_layers = self.stage_layers * self.pp
        self._attn = (n_layers * f, n_layers * s, n_layers * k)  # every layer's decode attention, per token

    def tp_allreduce_s(self, tokens: int) -> float:
        """One all-reduce of `tokens` hidden states over the replica's TP group."""
        return float(self.comm(Collective.ALL_REDUCE, tokens * self.model.hidden * self.abpe, "tp").total_s)

    def pp_send_s(self, tokens: int) -> float:
        """One send of `tokens` hidden states between neighbouring stages."""
        return float(self.comm.p2p(tokens * self.model.hidden * self.abpe).total_s)

    def dense_s(self, tokens: int, seqs: int) -> float:
        """A lane's iteration time without the attention core: `tokens` batched tokens, `seqs` of them sampled."""
        t = self._layers.get(tokens)
        if t is None:
            layer = self.layer_s(tokens) + 2 * self.tp_allreduce_s(tokens)
            t = self._layers[tokens] = self.stage_layers * layer * self.pp + (self.pp - 1) * self.pp_send_s(tokens)
        h = self._logits.get(seqs)
        if h is None:
            h = self._logits[seqs] = logits_s(self.model, self.acc, self.tp, max(seqs, 1), self.precision)
        return t + h

    def layer_s(self, tokens: int) -> float:
        """One layer's weight GEMMs and element-wise passes at `tokens` batched tokens on one device (a MoE model's
        layer with its experts priced by `serving_moe_layer_s`)."""
        if self.model.moe is None:
            return dense_layer_s(self.model, self.acc, self.tp, tokens, self.precision)
        return serving_moe_layer_s(self.model, self.acc, self.tp, self.ep, tokens, self.precision)

    def decode_attention_s(self, seqs: Any, context_tokens: Any) -> Any:
        """The attention core of every layer for `seqs` decodes over `context_tokens` cached tokens in all
        (floats or arrays): `workload.layers.decode_attention_s` for each layer."""
        return decode_attention_time(self._attn, seqs, context_tokens)

    def prefill_attention_s(self, q_tokens: int, kv_tokens: int) -> float:
        """The attention core of every layer for one prefill chunk of `q_tokens` over `kv_tokens` keys."""
        return self.stage_layers * self.pp * cached_attention_s(
            self.model, self.acc, tp=self.tp, q_tokens=q_tokens, kv_tokens=kv_tokens, precision=self.precision,
            kv_bytes_per_element=self.kv_bpe)

    def decode_run_s(self, seqs: int, context0: int, steps: int) -> np.ndarray:
        """Times of `steps` consecutive decode iterations of the same `seqs` sequences, the first reading
        `context0` cached tokens in all (each step adds one token per sequence): one vector, no Python loop."""
        ctx = context0 + seqs * np.arange(steps, dtype=np.float64)
        return self.dense_s(seqs, seqs) + self.decode_attention_s(seqs, ctx)

    def kv_transfer_s(self, prompt_tokens: np.ndarray) -> np.ndarray:
        """Seconds to move each prompt's KV cache to a decode replica: every device sends its shard, in parallel,
        between neighbouring replicas over the dimensions they span (the slowest sets the pace)."""
        per_token = self.memory.kv_bytes_per_token
        return np.array([float(self.comm.send(float(n) * per_token, "dp").total_s) for n in prompt_tokens.tolist()])

    @property
    def lanes(self) -> int:
        """Batches one replica keeps in flight (one per pipeline stage)."""
        return self.pp

    @property
    def lane_max_seqs(self) -> int:
        return max(1, self.spec.scheduler.max_num_seqs // self.pp)

    @property
    def lane_blocks(self) -> int:
        return self.memory.kv_blocks // self.pp


def touched_experts(experts: int, top_k: int, tokens: float) -> float:
    """Expected number of the `experts` that receive at least one of `tokens` tokens, each routed to `top_k`
    distinct experts uniformly: ``E x (1 - (1 - k/E)^T)`` (a given expert is missed by one token with probability
    1 - k/E). Few decode tokens leave experts idle whose weights are then never read."""
    return experts * (1.0 - (1.0 - top_k / experts) ** tokens)


def serving_moe_layer_s(model: ModelSpec, acc: Any, tp: int, ep: int, tokens: int, precision: str) -> float:
    """Seconds of one layer of a MoE model for `tokens` batched tokens on one device of a replica whose TP group
    of `tp` devices holds the experts as ``ep`` expert-parallel x ``tp/ep`` expert-tensor-parallel ranks (vLLM's
    FusedMoE and TensorRT-LLM's ``moe_tp_size x moe_ep_size = tp_size``).

    The training path's own functions price it (`workload.layers.weight_gemms`, `elementwise_s`, `moe_mlp` and
    `routed_tokens` on a `LayerShard` with ``ep`` and ``etp = tp/ep``), except that a MoE layer's routed experts
    run as two grouped GEMMs (`ComputeModel.grouped_gemm_time_s`) over the experts the batch *touches*
    (`touched_experts` of the rank's ``E/ep``), each at its share of the rank's ``T x top_k / ep`` token-expert
    assignments: the grouped kernel's roofline makes a decode step read exactly those experts' weights at memory
    speed. Attention's TP all-reduce leaves every device with every token, so dispatch moves no data; the
    combine is the layer's second all-reduce over the TP group, as for a dense MLP (`ReplicaCost.dense_s`)."""
    moe = model.moe
    assert moe is not None
    shard = LayerShard(tp=tp, sp=1, micro_batch=1, seq_len=tokens, precision=precision, sequence_parallel=False,
                       flash=True, recompute=Recompute.NONE, ep=ep, etp=tp // ep)
    frac = model.moe_fraction
    base = weight_gemms(model, acc, shard)[0] + elementwise_s(model, acc, shard)[0]
    return base - frac * moe_mlp(model, acc, shard)[0] + frac * _serving_moe_mlp_s(model, acc, shard, tokens)


def _serving_moe_mlp_s(model: ModelSpec, acc: Any, shard: LayerShard, tokens: int) -> float:
    """`moe_mlp` with the routed experts over the experts the batch touches (see `serving_moe_layer_s`)."""
    moe = model.moe
    assert moe is not None
    precision, bpe, h = shard.precision, BYTES_PER_ELEMENT[shard.precision], model.hidden
    t = 0.0
    if moe.experts > 1:  # the router's linear over the batch (replicated on every device)
        t += acc.gemm_time_s(tokens, h, moe.experts, precision=precision, bytes_per_element=bpe)
    groups = touched_experts(moe.experts, moe.top_k, tokens) / shard.ep  # of the rank's E/ep experts
    per_expert = routed_tokens(model, shard) / groups
    width = moe.expert_ffn_hidden / shard.etp
    up = width * (2 if model.gated_mlp else 1)
    t += acc.grouped_gemm_time_s(groups, per_expert, h, up, precision=precision, bytes_per_element=bpe)
    t += acc.grouped_gemm_time_s(groups, per_expert, width, h, precision=precision, bytes_per_element=bpe)
    if moe.shared_experts:
        s_width = moe.shared_experts * moe.shared_ffn
        gate = 2 if model.gated_mlp else 1
        t += acc.gemm_time_s(tokens, h, s_width * gate / shard.tp, precision=precision, bytes_per_element=bpe)
        t += acc.gemm_time_s(tokens, s_width / shard.tp, h, precision=precision, bytes_per_element=bpe)
    return t
