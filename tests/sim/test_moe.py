"""Mixture-of-Experts steps: one expert is the dense model, both paths agree, and the invariants of expert
parallelism (all-to-all bandwidth, load imbalance, expert sharding)."""

from __future__ import annotations

from typing import Any

import pytest

import cosmic
from cosmic import catalog
from cosmic.errors import ConfigError, CosmicError
from cosmic.sim.batch import simulate_columns
from cosmic.sim.columns import StepColumns
from cosmic.workload.model import ModelSpec

NET = {"dims": [{"topology": "Switch", "npus": 8, "link_gbps": 450, "latency_ns": 500},
                {"topology": "Switch", "npus": 32, "link_gbps": 50, "latency_ns": 2000}]}


def _cfg(model: Any = "qwen3-30b-a3b", net: dict[str, Any] | None = None, **over: Any) -> Any:
    par = {"tp": 2, "pp": 2, "dp": 64, "ep": 8, "sequence_parallel": True}
    tr = {"global_batch": 512}
    for k, v in over.items():
        (tr if k in ("global_batch", "micro_batch", "moe_imbalance", "moe_overlap", "recompute") else par)[k] = v
    return cosmic.config_from_dict({"model": model, "accelerator": "h100-sxm", "network": net or NET,
                                    "parallel": par, "training": tr})


def _same(a: Any, b: Any, rel: float = 1e-12) -> None:
    assert a.step_time_s == pytest.approx(b.step_time_s, rel=rel)
    assert a.memory.total_bytes == pytest.approx(b.memory.total_bytes, rel=rel)
    assert a.mfu == pytest.approx(b.mfu, rel=rel)


@pytest.mark.parametrize("zero", [0, 1, 3])
@pytest.mark.parametrize("dispatcher", ["alltoall", "allgather"])
def test_one_expert_is_the_dense_model(zero: int, dispatcher: str) -> None:
    """EP 1 with one expert of the dense width: the same step, memory and MFU as the dense model, both paths."""
    dense = dict(catalog.get_model("llama3-8b"))
    one = {**dense, "moe": {"experts": 1, "top_k": 1, "expert_ffn_hidden": dense["ffn_hidden"]}}
    a = _cfg(dense, ep=1, zero=zero)
    b = _cfg(one, ep=1, zero=zero, moe_dispatcher=dispatcher, moe_imbalance=1.5)
    ra, rb = cosmic.simulate(a), cosmic.simulate(b)
    _same(ra, rb)
    assert rb.breakdown["comm_ep_s"] == 0.0
    batch = simulate_columns(StepColumns.from_configs([a, b]))
    _same(batch.result(0), ra)
    _same(batch.result(1), rb)


def test_batch_path_equals_scalar_path() -> None:
    cfgs = [_cfg(ep=ep, etp=etp, zero=z, moe_dispatcher=d, moe_overlap=o, moe_imbalance=imb)
            for ep in (1, 4, 8) for etp in (1, 2) for z in (0, 1, 3) for d in ("alltoall", "allgather")
            for o in (False, True) for imb in (1.0, 1.3)]
    cfgs += [_cfg("deepseek-v2", tp=1, sequence_parallel=False, ep=32, pp=4, dp=64),
             _cfg("gpt3-13b", ep=1, tp=8, dp=16, pp=2)]
    batch = simulate_columns(StepColumns.from_configs(cfgs))
    assert batch.ok.all()
    for i, c in enumerate(cfgs):
        assert batch.result(i) == cosmic.simulate(c), i


def test_breakdown_adds_up_and_names_the_dispatch() -> None:
    r = cosmic.simulate(_cfg(ep=16))
    assert sum(r.breakdown.values()) == pytest.approx(r.step_time_s, rel=1e-12)
    assert r.breakdown["comm_ep_s"] > 0
    assert sum(r.comm_by_network_dim_s) <= r.step_time_s


@pytest.mark.parametrize("ep", [8, 16, 32])
def test_more_all_to_all_bandwidth_is_never_slower(ep: int) -> None:
    slow = cosmic.simulate(_cfg(ep=ep)).step_time_s
    for k in (1.5, 2.0, 4.0):
        net = {"dims": [{**d, "link_gbps": d["link_gbps"] * k} for d in NET["dims"]]}
        fast = cosmic.simulate(_cfg(ep=ep, net=net)).step_time_s
        assert fast <= slow
        slow = fast


@pytest.mark.parametrize("dispatcher", ["alltoall", "allgather"])
@pytest.mark.parametrize("overlap", [False, True])
def test_larger_imbalance_is_never_faster(dispatcher: str, overlap: bool) -> None:
    last = 0.0
    for imb in (1.0, 1.1, 1.25, 1.5, 2.0):
        t = cosmic.simulate(_cfg(ep=16, moe_dispatcher=dispatcher, moe_overlap=overlap,
                                 moe_imbalance=imb)).step_time_s
        assert t >= last
        last = t


def test_capacity_factor_caps_the_imbalance() -> None:
    m = dict(catalog.get_model("mixtral-8x7b"))
    capped = {**m, "moe": {**m["moe"], "capacity_factor": 1.25}}
    a = cosmic.simulate(_cfg(capped, ep=8, moe_imbalance=1.25)).step_time_s
    b = cosmic.simulate(_cfg(capped, ep=8, moe_imbalance=2.0)).step_time_s
    assert a == b


def test_overlap_never_slower() -> None:
    for ep in (8, 16, 32):
        assert cosmic.simulate(_cfg(ep=ep, moe_overlap=True)).step_time_s <= \
            cosmic.simulate(_cfg(ep=ep)).step_time_s


def test_expert_weights_shard_over_ep_times_etp() -> None:
    """Weights per rank (pp 1, ZeRO 0): dense part over TP, routed experts over EP x ETP (closed form)."""
    m = ModelSpec(**catalog.get_model("mixtral-8x7b"))
    for ep, etp in ((1, 1), (8, 1), (4, 2)):
        r = cosmic.simulate(_cfg("mixtral-8x7b", ep=ep, etp=etp, pp=1, dp=128))
        dense = m.all_layer_params - m.n_moe_layers * m.routed_expert_params + m.embedding_params + m.head_params
        want = 2 * (dense / 2 + m.n_moe_layers * m.routed_expert_params / (ep * etp))
        assert r.memory.weights_bytes == pytest.approx(want, rel=1e-12)


def test_optimizer_state_shards_over_expert_dp() -> None:
    """ZeRO-1: the routed experts' optimizer state is split over expert DP = TP*SP*DP / (EP*ETP)."""
    m = ModelSpec(**catalog.get_model("mixtral-8x7b"))
    r = cosmic.simulate(_cfg("mixtral-8x7b", ep=8, etp=1, pp=1, dp=128, zero=1))
    dense = m.all_layer_params - m.n_moe_layers * m.routed_expert_params + m.embedding_params + m.head_params
    edp = 2 * 128 // 8
    want = 12 * (dense / 2 / 128 + m.n_moe_layers * m.routed_expert_params / 8 / edp)
    assert r.memory.optimizer_bytes == pytest.approx(want, rel=1e-12)


def test_zero3_shards_experts_over_expert_dp_and_dense_weights_over_dp() -> None:
    """ZeRO-3 of a MoE model, closed form of the memory: the dense weights, gradients and optimizer state of a rank
    (1/tp of them) divided over DP x SP, its routed experts (1/(ep*etp)) over expert DP, plus two gathered layers of
    both in full (ZeRO section 3.1 bytes per parameter)."""
    m = ModelSpec(**catalog.get_model("mixtral-8x7b"))
    r = cosmic.simulate(_cfg("mixtral-8x7b", ep=8, etp=1, pp=1, dp=128, zero=3))
    dense = (m.all_layer_params - m.n_moe_layers * m.routed_expert_params + m.embedding_params
             + m.head_params) / 2
    experts = m.n_moe_layers * m.routed_expert_params / 8
    edp = 2 * 128 // 8
    sharded = dense / 128 + experts / edp
    assert r.memory.optimizer_bytes == pytest.approx(12 * sharded, rel=1e-12)
    assert r.memory.gradients_bytes == pytest.approx(2 * sharded, rel=1e-12)
    assert r.memory.weights_bytes == pytest.approx(2 * sharded + 2 * 2 * (dense + experts) / m.layers, rel=1e-12)
    z1 = cosmic.simulate(_cfg("mixtral-8x7b", ep=8, etp=1, pp=1, dp=128, zero=1))
    assert r.memory.total_bytes < z1.memory.total_bytes


def test_zero3_of_experts_gathers_over_expert_dp() -> None:
    """The per-layer ZeRO-3 gather of a MoE layer is the dense gather over DP x SP and the experts' over expert DP."""
    from cosmic.collective.algorithms import Collective
    from cosmic.sim.engine import communicator, step_inputs
    from cosmic.sim.step import layer_comm, plan, stage_rows

    cfg = _cfg("mixtral-8x7b", ep=8, etp=1, pp=1, dp=128, zero=3)
    x = step_inputs(cfg)
    p = plan(x)
    comm = communicator(cfg)
    row = stage_rows(x, p, layer_comm(x, p, comm), comm)[0]
    assert row is not None
    layers = cfg.model.layers
    dense_ag = comm(Collective.ALL_GATHER, p.params[0] * 2 / layers / 128, "dpsp").total_s
    expert_ag = comm(Collective.ALL_GATHER, p.expert_params[0] * 2 / layers / 32, "edp").total_s
    assert row.z3_ag.total_s == pytest.approx(dense_ag + expert_ag, rel=1e-12)
    assert expert_ag > 0


@pytest.mark.parametrize(("over", "key"), [
    ({"model": "gpt3-13b", "ep": 2}, "parallel.ep"),
    ({"ep": 3}, "parallel.ep"),
    ({"ep": 8, "etp": 5}, "parallel.etp"),
    ({"sequence_parallel": False}, "parallel.sequence_parallel"),
    ({"zero": 3, "shard_group": 32}, "parallel.shard_group"),
    ({"rank_order": "tp,pp,dp,sp"}, "parallel.rank_order"),
])
def test_infeasible_layouts_say_why(over: dict[str, Any], key: str) -> None:
    model = over.pop("model", "qwen3-30b-a3b")
    with pytest.raises((CosmicError, ConfigError)) as err:
        cosmic.simulate(_cfg(model, **over))
    assert key in str(err.value)


PSA = """
name: moe-collective
base:
  model: qwen3-30b-a3b
  accelerator: h100-sxm
  network:
    dims:
      - {topology: Switch, npus: 8, fabric: nvlink4}
      - {topology: Switch, npus: 32, fabric: ib-ndr}
  parallel: {tp: 1, pp: 2, dp: 128, ep: 16, zero: 1, moe_dispatcher: alltoall}
  training: {global_batch: 1024, moe_imbalance: 1.2}
knobs:
  collective:
    all_to_all: {values: [ring, direct], mode: per_dim}
    chunks: {values: [1, 2, 4]}
objectives: [step_time]
"""


def test_psa_on_a_moe_base_searches_the_all_to_all(tmp_path: Any) -> None:
    """A PSA over a MoE base keeps its expert parallelism in both decodes, and the per-dimension all-to-all
    algorithm now changes the step."""
    import numpy as np

    from cosmic.psa import load_psa

    path = tmp_path / "moe.yaml"
    path.write_text(PSA)
    space = load_psa(str(path))
    pts = space.sample(np.random.default_rng(0), 12)
    cols, decoded = space.decode_columns(pts)
    batch = simulate_columns(cols)
    assert decoded.all() and batch.ok.all()
    results = [cosmic.simulate(space.decode(p)) for p in pts]
    assert all(batch.result(i) == r for i, r in enumerate(results))
    assert len({r.step_time_s for r in results}) > 1


def test_deepseek_v3_example_matches_the_reported_throughput() -> None:
    """examples/moe/deepseek-v3-2048xh800.yaml, the DeepSeek-V3 report's layout (PP 16, EP 64, ZeRO-1 on 2,048
    H800): 180K GPU hours per trillion tokens (report, Table 1 and sec. 1) is 1e12 / (180e3 * 3600) * 2048 tokens/s
    on the whole job; cosmic is within 15% of it."""
    from tests.conftest import EXAMPLES

    r = cosmic.simulate(cosmic.load_config(EXAMPLES / "moe" / "deepseek-v3-2048xh800.yaml"))
    reported = 1e12 / (180e3 * 3600) * 2048
    assert r.tokens_per_s == pytest.approx(reported, rel=0.15)
    assert r.breakdown["comm_ep_s"] > 0 and sum(r.breakdown.values()) == pytest.approx(r.step_time_s, rel=1e-12)


# ---- per-layer MoE passes (docs/moe.md, "Per-layer MoE passes"): closed forms -------------------------------------


def _shard(**over: Any) -> Any:
    from cosmic.workload.layers import LayerShard
    from cosmic.workload.schemas import Recompute

    kw: dict[str, Any] = {"tp": 1, "sp": 1, "micro_batch": 2, "seq_len": 4096, "precision": "bf16",
                          "sequence_parallel": False, "flash": True, "recompute": Recompute.NONE, "ep": 8, "etp": 1}
    kw.update(over)
    return LayerShard(**kw)


def test_moe_passes_closed_form() -> None:
    """Qwen3-30B-A3B (128 experts, top-8, width 768, every layer MoE), micro-batch 2 x 4096 on one rank, EP 8:
    permutation 2 (T + 8T) h, the second permutation's two sorts 4 x 8T h (bf16), router 14 B forward and 12 B
    backward per score, fp8 casts 3 x 8T (h + 768)."""
    from cosmic.workload.layers import moe_elementwise_bytes

    m = ModelSpec(**catalog.get_model("qwen3-30b-a3b"))
    h, t, k, e = m.hidden, 2 * 4096, 8, 128
    perm, sort = 2 * (t + k * t) * h * 2, 4 * k * t * h * 2
    fwd, bwd = moe_elementwise_bytes(m, _shard())
    assert (fwd, bwd) == (perm + sort + 14 * t * e, perm + sort + 12 * t * e)
    fwd8, bwd8 = moe_elementwise_bytes(m, _shard(precision="fp8"))
    assert fwd8 - fwd == 3 * k * t * (h + 768)
    assert bwd8 == bwd
    # one local expert per rank: nothing to sort; the all-gather dispatcher does not sort either
    assert moe_elementwise_bytes(m, _shard(ep=128))[0] == perm + 14 * t * e
    assert moe_elementwise_bytes(m, _shard(dispatcher="allgather"))[0] == perm + 14 * t * e
    # imbalance: the busiest rank permutes, sorts and casts its larger share
    f15 = moe_elementwise_bytes(m, _shard(imbalance=1.5))[0]
    assert f15 == 2 * (t + 1.5 * k * t) * h * 2 + 1.5 * sort + 14 * t * e


def test_dispatch_gathers_the_token_counts_once_per_forward() -> None:
    """The all-to-all dispatcher's count all-gather (experts x 8 B over EP x ETP) runs in the forward only: the
    forward's exposed dispatch exceeds the backward's by exactly that collective (no overlap)."""
    from cosmic.sim import engine
    from cosmic.sim.step import AG, COUNT_BYTES, layer_comm, plan

    cfg = _cfg(ep=16)
    x, comm = engine.step_inputs(cfg), engine.communicator(cfg)
    c = layer_comm(x, plan(x), comm)
    assert c.moe is not None
    counts = comm(AG, 128 * COUNT_BYTES, "eptp").total_s
    assert counts > 0
    assert c.moe.fwd - c.moe.bwd == pytest.approx(x.moe_frac * counts, rel=1e-12)
    ag = _cfg(ep=16, moe_dispatcher="allgather")
    xa = engine.step_inputs(ag)
    ca = layer_comm(xa, plan(xa), engine.communicator(ag))
    assert ca.moe is not None and ca.moe.fwd == ca.moe.bwd
