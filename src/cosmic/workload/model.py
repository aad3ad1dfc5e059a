"""Transformer shapes and their parameter counts.

A :class:`ModelSpec` is a decoder (GPT/Llama) or encoder (ViT) transformer stack described by the usual shape
numbers. Parameter counts follow the layer structure exactly (QKV with grouped-query attention, output projection,
plain or gated MLP, norms, biases, embeddings, learned positions, output head) so they can be checked against the
published counts in the catalog.
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
    published_params_b: Finite | None = Field(default=None, description="published parameter count, billions")
    params_tolerance_pct: Finite = 1.0
    source: str | None = None

    @model_validator(mode="after")
    def _check(self) -> ModelSpec:
        if self.hidden % self.heads:
            raise ValueError(f"hidden ({self.hidden}) must be divisible by heads ({self.heads})")
        if self.heads % self.n_kv_heads:
            raise ValueError(f"heads ({self.heads}) must be divisible by kv_heads ({self.n_kv_heads})")
        if self.embedding is Embedding.PATCH and self.patch_dim is None:
            raise ValueError("embedding 'patch' needs patch_dim (e.g. 768 for 16x16x3 patches)")
        return self

    # ---- derived shape -------------------------------------------------------------------------------------
    @property
    def ffn(self) -> int:
        return self.ffn_hidden if self.ffn_hidden is not None else 4 * self.hidden

    @property
    def n_kv_heads(self) -> int:
        return self.kv_heads if self.kv_heads is not None else self.heads

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads

    @property
    def kv_dim(self) -> int:
        """Width of K (and of V): kv_heads * head_dim."""
        return self.n_kv_heads * self.head_dim

    @property
    def mlp_matrices(self) -> int:
        return 3 if self.gated_mlp else 2

    # ---- parameter counts ----------------------------------------------------------------------------------
    @property
    def norm_params(self) -> int:
        return 2 * self.hidden if self.norm is Norm.LAYERNORM else self.hidden

    @property
    def layer_params(self) -> int:
        """Parameters of one transformer layer (attention + MLP + two norms)."""
        h, f, kv = self.hidden, self.ffn, self.kv_dim
        attn = h * (h + 2 * kv) + h * h
        mlp = self.mlp_matrices * h * f
        if self.bias:
            attn += (h + 2 * kv) + h
            mlp += f * (2 if self.gated_mlp else 1) + h
        return attn + mlp + 2 * self.norm_params

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
        return self.layers * self.layer_params + self.embedding_params + self.head_params

    # ---- FLOPs (2 FLOPs per multiply-accumulate) ----------------------------------------------------------
    def layer_gemm_flops(self, tokens: int) -> int:
        """Forward FLOPs of the weight GEMMs of one layer for `tokens` tokens (QKV, out-proj, MLP)."""
        h = self.hidden
        return 2 * tokens * (h * (h + 2 * self.kv_dim) + h * h + self.mlp_matrices * h * self.ffn)

    def layer_attention_flops(self, batch: int) -> int:
        """Forward FLOPs of QK^T and attention x V for `batch` sequences (the s^2 terms), full (non-causal) count."""
        return 4 * batch * self.seq_len * self.seq_len * self.hidden

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
