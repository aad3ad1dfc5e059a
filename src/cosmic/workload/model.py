"""Transformer shapes and their parameter counts.

A :class:`ModelSpec` is a decoder (GPT/Llama) or encoder (ViT) transformer stack described by the usual shape
numbers. Parameter counts follow the layer structure exactly (QKV with grouped-query attention, output projection,
plain or gated MLP, norms, biases, embeddings, learned positions, output head) so they can be checked against the
published counts in the catalog.

Mixture-of-Experts models (:class:`MoESpec`: routed and shared experts, which layers are MoE, capacity) and
Multi-head Latent Attention (:class:`MLASpec`, DeepSeek-V2/V3 and Kimi K2) are optional sections; a model without
them is exactly the dense model it always was. See docs/moe.md.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Embedding(StrEnum):
    """How inputs enter the stack: token lookup (language models) or a linear patch projection (ViT)."""

    TOKEN = "token"
    PATCH = "patch"


class Position(StrEnum):
    LEARNED = "learned"
    ROTARY = "rotary"


class Norm(StrEnum):
    LAYERNORM = "layernorm"
    RMSNORM = "rmsnorm"


PositiveInt = Annotated[int, Field(gt=0)]
MAX_LAYERS = 10_000
"""Upper bounds on the shape: far above any trained model, low enough that a step is priced in well under a
second (the timeline is linear in the pipeline stages, and PP <= layers)."""
MAX_HIDDEN = 1_000_000
MAX_SEQ_LEN = 10_000_000
MAX_VOCAB = 100_000_000
Finite = Annotated[float, Field(ge=0, le=1e9, allow_inf_nan=False)]


class MoESpec(BaseModel):
    """The Mixture-of-Experts blocks of a model (Shazeer et al. 2017; Fedus et al. 2022; DeepSeek-V3 report).

    A MoE layer replaces the MLP with a router (a `hidden x experts` linear), `experts` routed experts of width
    `expert_ffn_hidden` of which each token uses `top_k`, and `shared_experts` experts every token uses. Layer i
    (from 0) is MoE when ``i >= first_dense_layers`` and ``(i + 1) % every == 0`` (Llama 4's
    ``interleave_moe_layer_step``; DeepSeek's ``first_k_dense_replace``); the other layers keep the dense MLP of
    width `ffn_hidden`.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    experts: Annotated[int, Field(gt=0, le=1 << 20)]
    top_k: Annotated[int, Field(gt=0, le=1 << 20)]
    expert_ffn_hidden: Annotated[int, Field(gt=0, le=16 * MAX_HIDDEN)]
    shared_experts: Annotated[int, Field(ge=0, le=1024)] = 0
    shared_ffn_hidden: Annotated[int, Field(gt=0, le=16 * MAX_HIDDEN)] | None = Field(
        default=None, description="width of one shared expert; default expert_ffn_hidden")
    first_dense_layers: Annotated[int, Field(ge=0, le=MAX_LAYERS)] = Field(
        default=0, description="the first k layers keep the dense MLP (DeepSeek first_k_dense_replace)")
    every: Annotated[int, Field(gt=0, le=MAX_LAYERS)] = Field(
        default=1, description="every n-th layer is MoE (Llama 4 interleave_moe_layer_step); 1 = all")
    capacity_factor: Annotated[float, Field(gt=0, le=1e3, allow_inf_nan=False)] | None = Field(
        default=None, description="tokens an expert takes at most, in units of its balanced share (GShard); "
        "none = dropless routing")

    @model_validator(mode="after")
    def _check(self) -> MoESpec:
        if self.top_k > self.experts:
            raise ValueError(f"top_k ({self.top_k}) must not exceed experts ({self.experts})")
        return self

    @property
    def shared_ffn(self) -> int:
        return self.shared_ffn_hidden if self.shared_ffn_hidden is not None else self.expert_ffn_hidden

    def moe_layers(self, layers: int) -> int:
        """How many of `layers` layers are MoE."""
        return sum(1 for i in range(self.first_dense_layers, layers) if (i + 1) % self.every == 0)


class MLASpec(BaseModel):
    """Multi-head Latent Attention (DeepSeek-V2, arXiv 2405.04434, sec. 2.1): queries and keys/values pass through
    low-rank projections; each head's query/key is a `qk_nope_head_dim` part plus a `qk_rope_head_dim` rotary part
    (the rotary key is shared by all heads), its value `v_head_dim` wide."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    q_lora_rank: Annotated[int, Field(gt=0, le=MAX_HIDDEN)] | None = Field(
        default=None, description="rank of the query down-projection; none = full-rank queries (V2-Lite)")
    kv_lora_rank: Annotated[int, Field(gt=0, le=MAX_HIDDEN)]
    qk_nope_head_dim: Annotated[int, Field(gt=0, le=MAX_HIDDEN)]
    qk_rope_head_dim: Annotated[int, Field(gt=0, le=MAX_HIDDEN)]
    v_head_dim: Annotated[int, Field(gt=0, le=MAX_HIDDEN)]


class ModelSpec(BaseModel):
    """Shape of a transformer model.

    Example:
        >>> m = ModelSpec(layers=96, hidden=12288, heads=96, seq_len=2048, vocab=50257, tied_embeddings=True)
        >>> round(m.n_params / 1e9, 1)
        174.6
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = "custom"
    layers: Annotated[int, Field(gt=0, le=MAX_LAYERS)]
    hidden: Annotated[int, Field(gt=0, le=MAX_HIDDEN)]
    ffn_hidden: Annotated[int, Field(gt=0, le=16 * MAX_HIDDEN)] | None = Field(
        default=None, description="MLP inner size; default 4*hidden"
    )
    heads: Annotated[int, Field(gt=0, le=MAX_HIDDEN)]
    head_dim: Annotated[int, Field(gt=0, le=MAX_HIDDEN)] | None = Field(
        default=None, description="width of one attention head; default hidden/heads (Gemma, Qwen3 set their own)"
    )
    kv_heads: Annotated[int, Field(gt=0, le=MAX_HIDDEN)] | None = Field(
        default=None, description="key/value heads (GQA); default = heads"
    )
    seq_len: Annotated[int, Field(gt=0, le=MAX_SEQ_LEN)]
    vocab: Annotated[int, Field(gt=0, le=MAX_VOCAB)] = Field(
        description="vocabulary size (classes of the head for ViT)"
    )
    gated_mlp: bool = Field(default=False, description="SwiGLU-style MLP with three matrices")
    tied_embeddings: bool = False
    embedding: Embedding = Embedding.TOKEN
    patch_dim: Annotated[int, Field(gt=0, le=MAX_HIDDEN)] | None = Field(
        default=None, description="flattened patch size (ViT), e.g. 16*16*3"
    )
    position: Position = Position.LEARNED
    norm: Norm = Norm.LAYERNORM
    bias: bool = True
    causal: bool = Field(default=True, description="causal attention (decoders); ViT is not causal")
    qk_norm: bool = Field(default=False, description="RMSNorm on each query and key head (Qwen3, Gemma 3)")
    moe: MoESpec | None = Field(default=None, description="Mixture-of-Experts blocks (none = dense)")
    mla: MLASpec | None = Field(default=None, description="Multi-head Latent Attention (none = standard/GQA)")
    published_active_params_b: Finite | None = Field(
        default=None, description="published parameters active per token, billions (MoE)")
    active_params_tolerance_pct: Finite = 1.0
    published_active_excludes_embedding: bool = Field(
        default=False, description="the published active count leaves out the input embedding (gpt-oss)")
    published_params_b: Finite | None = Field(default=None, description="published parameter count, billions")
    params_tolerance_pct: Finite = 1.0
    source: str | None = None

    @model_validator(mode="after")
    def _check(self) -> ModelSpec:
        if self.head_dim is None and self.mla is None and self.hidden % self.heads:
            raise ValueError(f"hidden ({self.hidden}) must be divisible by heads ({self.heads})")
        if self.heads % self.n_kv_heads:
            raise ValueError(f"heads ({self.heads}) must be divisible by kv_heads ({self.n_kv_heads})")
        if self.embedding is Embedding.PATCH and self.patch_dim is None:
            raise ValueError("embedding 'patch' needs patch_dim (e.g. 768 for 16x16x3 patches)")
        if self.mla is not None and self.n_kv_heads != self.heads:
            raise ValueError("mla: MLA gives every head its own key and value, so kv_heads must equal heads")
        return self

    # ---- derived shape -------------------------------------------------------------------------------------
    @property
    def ffn(self) -> int:
        return self.ffn_hidden if self.ffn_hidden is not None else 4 * self.hidden

    @property
    def n_kv_heads(self) -> int:
        return self.kv_heads if self.kv_heads is not None else self.heads

    @property
    def head_size(self) -> int:
        """Width of one attention head: `head_dim`, else hidden/heads."""
        return self.head_dim if self.head_dim is not None else self.hidden // self.heads

    @property
    def qk_head_dim(self) -> int:
        """Width of one query/key head (MLA: nope + rope parts)."""
        return self.mla.qk_nope_head_dim + self.mla.qk_rope_head_dim if self.mla is not None else self.head_size

    @property
    def v_head_dim(self) -> int:
        return self.mla.v_head_dim if self.mla is not None else self.head_size

    @property
    def q_dim(self) -> int:
        """Width of Q (and of the attention output for standard attention): heads * head width."""
        return self.heads * self.qk_head_dim

    @property
    def attn_out_dim(self) -> int:
        """Width of the attention output entering the output projection: heads * value head width."""
        return self.heads * self.v_head_dim

    @property
    def attn_width(self) -> float:
        """Mean of the QK and AV widths (heads * (qk + v head widths) / 2); hidden for standard attention."""
        w2 = self.heads * (self.qk_head_dim + self.v_head_dim)
        return w2 // 2 if w2 % 2 == 0 else w2 / 2

    @property
    def kv_dim(self) -> float:
        """Width of K (and of V; with MLA the mean of the two): kv_heads * head width."""
        if self.mla is None:
            return self.n_kv_heads * self.head_size
        return self.n_kv_heads * (self.qk_head_dim + self.v_head_dim) / 2

    @property
    def is_dense(self) -> bool:
        """Neither MoE nor MLA (the layer of every model cosmic priced before MoE)."""
        return self.moe is None and self.mla is None

    @property
    def n_moe_layers(self) -> int:
        return self.moe.moe_layers(self.layers) if self.moe is not None else 0

    @property
    def moe_fraction(self) -> float:
        """Share of the layers that are MoE."""
        return self.n_moe_layers / self.layers

    @property
    def mlp_matrices(self) -> int:
        return 3 if self.gated_mlp else 2

    # ---- parameter counts ----------------------------------------------------------------------------------
    @property
    def norm_params(self) -> int:
        return 2 * self.hidden if self.norm is Norm.LAYERNORM else self.hidden

    @property
    def attention_params(self) -> int:
        """Parameters of one layer's attention (QKV or MLA projections, output projection, q/k norms)."""
        h = self.hidden
        mla = self.mla
        if mla is None:
            q, kv = self.q_dim, self.n_kv_heads * self.head_size
            attn = h * (q + 2 * kv) + self.attn_out_dim * h
            if self.bias:
                attn += (q + 2 * kv) + h
        else:
            # DeepSeek-V2 eqs. 9-14: q down (+ norm) and up; kv down (with the shared rotary key, + norm) and up
            q_head = self.qk_head_dim
            if mla.q_lora_rank is None:
                attn = h * self.heads * q_head
            else:
                attn = h * mla.q_lora_rank + mla.q_lora_rank + mla.q_lora_rank * self.heads * q_head
            attn += h * (mla.kv_lora_rank + mla.qk_rope_head_dim) + mla.kv_lora_rank
            attn += mla.kv_lora_rank * self.heads * (mla.qk_nope_head_dim + mla.v_head_dim)
            attn += self.attn_out_dim * h
        if self.qk_norm:
            attn += 2 * self.qk_head_dim
        return attn

    def mlp_params(self, width: int) -> int:
        """Parameters of one MLP (or expert) of inner width `width`."""
        h = self.hidden
        mlp = self.mlp_matrices * h * width
        if self.bias:
            mlp += width * (2 if self.gated_mlp else 1) + h
        return mlp

    @property
    def dense_layer_params(self) -> int:
        """Parameters of one layer with the dense MLP (attention + MLP + two norms)."""
        return self.attention_params + self.mlp_params(self.ffn) + 2 * self.norm_params

    @property
    def routed_expert_params(self) -> int:
        """Parameters of one MoE layer's routed experts (0 for a dense model)."""
        moe = self.moe
        return 0 if moe is None else moe.experts * self.mlp_params(moe.expert_ffn_hidden)

    @property
    def moe_layer_params(self) -> int:
        """Parameters of one MoE layer: attention, router (with its bias when the model has biases), routed and
        shared experts, two norms."""
        moe = self.moe
        if moe is None:
            return self.dense_layer_params
        # a router chooses among the experts; with one expert its gate is the constant 1 and there is none
        router = self.hidden * moe.experts + (moe.experts if self.bias else 0) if moe.experts > 1 else 0
        shared = moe.shared_experts * self.mlp_params(moe.shared_ffn)
        return self.attention_params + router + self.routed_expert_params + shared + 2 * self.norm_params

    @property
    def all_layer_params(self) -> int:
        """Parameters of all transformer layers."""
        n_moe = self.n_moe_layers
        return (self.layers - n_moe) * self.dense_layer_params + n_moe * self.moe_layer_params

    @property
    def layer_params(self) -> int | float:
        """Parameters of one transformer layer (attention + MLP + two norms); for a MoE model the mean over its
        layers (the simulator spreads the dense and MoE layers evenly over the pipeline stages)."""
        if self.moe is None:
            return self.dense_layer_params
        return self.all_layer_params / self.layers

    @property
    def expert_layer_params(self) -> float:
        """Mean routed-expert parameters per layer: the part sharded over EP x ETP (the rest over TP)."""
        return self.n_moe_layers * self.routed_expert_params / self.layers

    @property
    def embedding_params(self) -> int:
        """Input embedding (token table or patch projection) plus learned positions."""
        h = self.hidden
        if self.embedding is Embedding.PATCH:
            emb = (self.patch_dim or 0) * h + h
        else:
            emb = self.vocab * h
        if self.position is Position.LEARNED:
            emb += self.seq_len * h
        return emb

    @property
    def head_params(self) -> int:
        """Final norm and output projection (logits or classifier)."""
        h = self.hidden
        out = self.norm_params
        if self.embedding is Embedding.PATCH:
            out += self.vocab * h + self.vocab
        elif not self.tied_embeddings:
            out += self.vocab * h
        return out

    @property
    def n_params(self) -> int:
        if self.moe is None:
            return self.layers * self.dense_layer_params + self.embedding_params + self.head_params
        return self.all_layer_params + self.embedding_params + self.head_params

    @property
    def n_active_params(self) -> int:
        """Parameters one token uses: all but the routed experts it is not sent to (embeddings included)."""
        moe = self.moe
        if moe is None:
            return self.n_params
        idle = (moe.experts - moe.top_k) * self.mlp_params(moe.expert_ffn_hidden)
        return self.n_params - self.n_moe_layers * idle

    # ---- FLOPs (2 FLOPs per multiply-accumulate) ----------------------------------------------------------
    def layer_gemm_flops(self, tokens: int) -> int | float:
        """Forward FLOPs of the weight GEMMs of one layer for `tokens` tokens (QKV, out-proj, MLP); for a MoE model
        the mean over its layers of the GEMMs a token uses (router, top-k routed and the shared experts)."""
        h = self.hidden
        attn = self.attention_gemm_weights
        dense = attn + self.mlp_matrices * h * self.ffn
        moe = self.moe
        if moe is None:
            return 2 * tokens * dense
        used = (h * moe.experts * (moe.experts > 1) + self.mlp_matrices * h * (moe.top_k * moe.expert_ffn_hidden
                                                          + moe.shared_experts * moe.shared_ffn))
        n_moe = self.n_moe_layers
        return 2 * tokens * ((self.layers - n_moe) * dense + n_moe * (attn + used)) / self.layers

    @property
    def attention_gemm_weights(self) -> int:
        """Multiply-accumulates per token of the attention's weight GEMMs (its projection matrices)."""
        h = self.hidden
        mla = self.mla
        if mla is None:
            return h * (self.q_dim + 2 * self.n_kv_heads * self.head_size) + self.attn_out_dim * h
        q_in = h * self.heads * self.qk_head_dim if mla.q_lora_rank is None else \
            mla.q_lora_rank * (h + self.heads * self.qk_head_dim)
        kv = h * (mla.kv_lora_rank + mla.qk_rope_head_dim) + mla.kv_lora_rank * self.heads * (
            mla.qk_nope_head_dim + mla.v_head_dim)
        return q_in + kv + self.attn_out_dim * h

    def layer_attention_flops(self, batch: int) -> int | float:
        """Forward FLOPs of QK^T and attention x V for `batch` sequences (the s^2 terms), full (non-causal) count."""
        return 4 * batch * self.seq_len * self.seq_len * self.attn_width

    def logits_flops(self, tokens: int) -> int:
        return 2 * tokens * self.hidden * self.vocab

    def model_flops_per_step(self, global_batch: int) -> float:
        """Model FLOPs of one training step (forward + backward = 3x forward), no recompute.

        Counts every GEMM (incl. logits) and the attention s^2 terms, as PaLM's MFU definition does.
        """
        tokens = global_batch * self.seq_len
        fwd = self.layers * (self.layer_gemm_flops(tokens) + self.layer_attention_flops(global_batch))
        if self.embedding is Embedding.PATCH:
            fwd += 2 * tokens * (self.patch_dim or 0) * self.hidden
            fwd += 2 * global_batch * self.hidden * self.vocab  # classifier on the [CLS] token
        else:
            fwd += self.logits_flops(tokens)
        return 3.0 * fwd
