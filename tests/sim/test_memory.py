"""Memory per device against Korthikanti et al. 2022 ("Reducing Activation Recomputation in Large Transformer
Models", arXiv 2205.05198) and the ZeRO paper's 16 bytes per parameter."""

from __future__ import annotations

import pytest

import cosmic
from tests.sim.helpers import dgx_config

S, B, H, L, T = 2048, 1, 12288, 96, 8


def _act(cfg: cosmic.SystemConfig) -> float:
    return cosmic.simulate(cfg).memory.activations_bytes


def test_sequence_parallel_selective_is_34_sbh_over_t_per_layer() -> None:
    """Eq. 5 of Korthikanti et al.: with TP+SP and selective recompute, 34 sbh/t bytes per layer; 1F1B keeps
    p micro-batches of L/p layers on the first stage, i.e. L layers' worth (section 4.2.3)."""
    cfg = dgx_config(sequence_parallel=True, recompute="selective", flash_attention=False)
    expected_layers = 34 * S * B * H / T * L
    act = _act(cfg)
    # plus the embedding output of the in-flight micro-batches (2 sbh each, p of them)
    assert act == pytest.approx(expected_layers + 16 * 2 * S * B * H, rel=1e-6)
    assert expected_layers / 1e9 == pytest.approx(10.27, rel=0.01)


def test_tensor_parallel_without_sp_or_recompute() -> None:
    """Eq. 2: sbh(10 + 24/t + 5as/(ht)) per layer with TP only and no recompute."""
    cfg = dgx_config(recompute="none", flash_attention=False)
    per_layer = S * B * H * (10 + 24 / T + 5 * 96 * S / (H * T))
    assert _act(cfg) == pytest.approx(per_layer * L + 16 * 2 * S * B * H, rel=1e-6)


def test_full_recompute_keeps_layer_inputs() -> None:
    """Full recompute stores only each layer's input (2 sbh, sharded by SP) plus one layer being recomputed."""
    cfg = dgx_config(sequence_parallel=True, recompute="full")
    per_layer = 2 * S * B * H / T
    working = 34 * S * B * H / T
    assert _act(cfg) == pytest.approx(per_layer * L + working + 16 * 2 * S * B * H, rel=1e-6)


def test_zero_stages_shard_16_bytes_per_parameter() -> None:
    base = dict(model="gpt3-13b", tp=1, pp=1, dp=64, global_batch=512)
    mems = [cosmic.simulate(dgx_config(zero=z, **base)).memory for z in range(4)]
    n = cosmic.config_from_dict(
        {"model": "gpt3-13b", "accelerator": "a100-80gb", "network": {"dims": [{"topology": "Switch", "npus": 1,
         "link_gbps": 1}]}, "training": {"global_batch": 1}}
    ).model.n_params
    assert mems[0].weights_bytes + mems[0].gradients_bytes + mems[0].optimizer_bytes == pytest.approx(16 * n)
    assert mems[1].optimizer_bytes == pytest.approx(12 * n / 64)
    assert mems[2].gradients_bytes == pytest.approx(2 * n / 64)
    assert mems[3].weights_bytes < mems[2].weights_bytes
    totals = [m.total_bytes for m in mems]
    assert totals == sorted(totals, reverse=True)


def test_gpipe_holds_all_micro_batches() -> None:
    one = _act(dgx_config(schedule="1f1b", pp=4, dp=32))
    gp = _act(dgx_config(schedule="gpipe", pp=4, dp=32))
    assert gp > one * 5  # 48 micro-batches in flight instead of 4
