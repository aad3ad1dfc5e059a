"""Parameter counts and FLOPs of the model catalog."""

from __future__ import annotations

import math

import pytest

from cosmic import catalog
from cosmic.workload.model import ModelSpec


def _published_ok(count_b: float, published_b: float, tol_pct: float) -> bool:
    """Within tol_pct of the published figure, or equal to it at the precision it was published with."""
    if abs(count_b / published_b - 1) * 100 <= tol_pct:
        return True
    text = repr(published_b)
    decimals = len(text.split(".")[1]) if "." in text else 0
    return round(count_b, decimals) == published_b


@pytest.mark.parametrize("name", catalog.model_names())
def test_parameter_count_matches_published(name: str) -> None:
    entry = catalog.get_model(name)
    m = ModelSpec(**entry)
    assert m.published_params_b is not None, f"{name} lacks a published count"
    assert _published_ok(m.n_params / 1e9, m.published_params_b, m.params_tolerance_pct), (
        name,
        m.n_params / 1e9,
        m.published_params_b,
    )


def test_required_models_present() -> None:
    names = set(catalog.model_names())
    for n in ("gpt3-13b", "gpt3-175b", "vit-base", "vit-large", "llama-7b", "llama2-70b", "llama3-8b",
              "llama3-70b", "llama3-405b", "megatron-gpt-1.7b", "megatron-gpt-1t"):
        assert n in names


def test_gpt3_175b_exact_closed_form() -> None:
    """12 l h^2 (1 + 13/12h) + (V + s) h + final norm: the GPT-3 count (Narayanan et al. 2021, section 5.1)."""
    m = ModelSpec(**catalog.get_model("gpt3-175b"))
    n_layers, h, V, s = m.layers, m.hidden, m.vocab, m.seq_len
    expected = 12 * n_layers * h * h * (1 + 13 / (12 * h)) + (V + s) * h + 2 * h
    assert m.tied_embeddings
    assert m.n_params == pytest.approx(expected, rel=1e-12)


def test_model_flops_six_nd_plus_attention() -> None:
    """Model FLOPs per step = 6 N_nonembedding T + attention 12 l s^2 h B + logits (PaLM appendix B)."""
    m = ModelSpec(**catalog.get_model("gpt3-175b"))
    B = 1536
    tokens = B * m.seq_len
    dense = 6 * tokens * m.layers * (12 * m.hidden**2)  # QKV, proj, MLP weights
    attn = 12 * m.layers * m.seq_len * m.hidden * tokens
    logits = 6 * tokens * m.hidden * m.vocab
    assert m.model_flops_per_step(B) == pytest.approx(dense + attn + logits, rel=1e-12)


def test_megatron_eq3_relation() -> None:
    """Megatron eq. (3), 96 B s l h^2 (1 + s/6h + V/16lh), counts the transformer layers four times (recompute
    forward included) and the logits three times; cosmic's model FLOPs count everything three times."""
    m = ModelSpec(**{**catalog.get_model("gpt3-175b"), "vocab": 51200})
    B, s, n_layers, h, V = 1536, m.seq_len, m.layers, m.hidden, m.vocab
    eq3 = 96 * B * s * n_layers * h * h * (1 + s / (6 * h) + V / (16 * n_layers * h))
    logits = 3 * m.logits_flops(B * s)
    assert eq3 == pytest.approx(4 / 3 * (m.model_flops_per_step(B) - logits) + logits, rel=1e-9)
    assert math.isclose(eq3, 4.51e18, rel_tol=0.01)  # "4.51e18 FLOPs per iteration" in the issue


def test_gqa_and_gated_shapes() -> None:
    m = ModelSpec(**catalog.get_model("llama3-70b"))
    assert m.kv_dim == 8 * 128
    assert m.mlp_matrices == 3
    with pytest.raises(ValueError):
        ModelSpec(layers=2, hidden=100, heads=3, seq_len=8, vocab=10)


MOE_MODELS = ("mixtral-8x7b", "mixtral-8x22b", "deepseek-v2", "deepseek-v3", "kimi-k2", "qwen3-30b-a3b",
              "qwen3-235b-a22b", "gpt-oss-20b", "gpt-oss-120b", "llama4-scout", "llama4-maverick", "dbrx")


@pytest.mark.parametrize("name", MOE_MODELS)
def test_moe_active_parameters_match_published(name: str) -> None:
    m = ModelSpec(**catalog.get_model(name))
    assert m.moe is not None and m.published_active_params_b is not None
    active = m.n_active_params - (m.embedding_params if m.published_active_excludes_embedding else 0)
    assert abs(active / 1e9 / m.published_active_params_b - 1) * 100 <= m.active_params_tolerance_pct, (
        name, active / 1e9, m.published_active_params_b)
    assert m.n_active_params < m.n_params


def test_dense_models_with_own_head_width_present() -> None:
    for n in ("gemma2-9b", "gemma2-27b", "gemma3-27b"):
        m = ModelSpec(**catalog.get_model(n))
        assert m.head_dim is not None and m.q_dim != m.hidden


def test_moe_layer_selection() -> None:
    """All layers, every second (Llama 4 Maverick), the first k dense (DeepSeek)."""
    base = {"layers": 8, "hidden": 64, "heads": 4, "seq_len": 16, "vocab": 100, "gated_mlp": True}
    moe = {"experts": 4, "top_k": 2, "expert_ffn_hidden": 32}
    assert ModelSpec(**base, moe=moe).n_moe_layers == 8
    assert ModelSpec(**base, moe={**moe, "every": 2}).n_moe_layers == 4  # layers 1, 3, 5, 7
    assert ModelSpec(**base, moe={**moe, "first_dense_layers": 3}).n_moe_layers == 5


def test_moe_parameters_closed_form() -> None:
    """Router h*E, E routed experts of 3*h*f each, S shared experts, attention and two RMSNorms per layer."""
    h, f, e, k, layers = 64, 32, 4, 2, 2
    m = ModelSpec(layers=layers, hidden=h, heads=4, seq_len=16, vocab=100, gated_mlp=True, bias=False,
                  norm="rmsnorm", position="rotary",
                  moe={"experts": e, "top_k": k, "expert_ffn_hidden": f, "shared_experts": 1})
    attn = 4 * h * h
    layer = attn + h * e + (e + 1) * 3 * h * f + 2 * h
    assert m.n_params == layers * layer + 100 * h + h + 100 * h
    assert m.n_params - m.n_active_params == layers * (e - k) * 3 * h * f


def test_one_expert_is_the_dense_model() -> None:
    """One expert with top-1 and the dense width is the dense MLP (its gate is the constant 1: no router)."""
    base = {"layers": 4, "hidden": 64, "ffn_hidden": 256, "heads": 4, "seq_len": 16, "vocab": 100,
            "gated_mlp": True}
    dense = ModelSpec(**base)
    moe = ModelSpec(**base, moe={"experts": 1, "top_k": 1, "expert_ffn_hidden": 256})
    assert moe.n_params == moe.n_active_params == dense.n_params
    assert moe.layer_gemm_flops(10) == dense.layer_gemm_flops(10)
    two = ModelSpec(**base, moe={"experts": 2, "top_k": 1, "expert_ffn_hidden": 256})
    assert two.n_params - dense.n_params == 4 * (64 * 2 + 2 + dense.mlp_params(256))  # router (+bias), expert


def test_mla_parameters_closed_form() -> None:
    """DeepSeek-V2 eqs. 9-14: q down/up with a norm, kv down (with the shared rotary key) and up, output."""
    h, heads, ql, kvl, nope, rope, v = 256, 4, 48, 32, 16, 8, 16
    m = ModelSpec(layers=1, hidden=h, heads=heads, seq_len=16, vocab=10, bias=False, norm="rmsnorm",
                  mla={"q_lora_rank": ql, "kv_lora_rank": kvl, "qk_nope_head_dim": nope,
                       "qk_rope_head_dim": rope, "v_head_dim": v})
    want = h * ql + ql + ql * heads * (nope + rope) + h * (kvl + rope) + kvl + kvl * heads * (nope + v) \
        + heads * v * h
    assert m.attention_params == want
    assert m.attn_width == heads * (nope + rope + v) / 2
