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
