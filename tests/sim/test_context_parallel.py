"""Context parallelism (`parallel.sp`) by algorithm: ring attention (p2p), all-gather K/V (Llama 3) and Ulysses
all-to-all, against their closed forms on one switch (ring algorithms), and the invariants between them."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import cosmic
from cosmic.errors import CosmicError
from cosmic.sim import engine
from cosmic.sim.batch import simulate_columns
from cosmic.sim.columns import CP_ALGORITHMS, StepColumns
from cosmic.sim.step import CP_ACC_BYTES, cp_comm, overlap_cost_s, plan

BW, LAT = 100e9, 1e-6  # bytes/s per link and seconds per link of the test switch
HOP = 2 * LAT  # NPU - switch - NPU


def _cfg(sp: int = 4, algo: str = "p2p", tp: int = 1, model: Any = "llama3-8b", seq: int = 32768,
         **par: Any) -> Any:
    n = tp * sp * par.get("dp", 1)
    return cosmic.config_from_dict({
        "model": model, "accelerator": "h100-sxm",
        "network": {"dims": [{"topology": "Switch", "npus": n, "link_gbps": BW / 1e9, "latency_ns": LAT * 1e9}]},
        "collective": {"all_gather": "ring", "reduce_scatter": "ring", "all_to_all": "ring", "all_reduce": "ring",
                       "chunks": 1},
        "parallel": {"tp": tp, "sp": sp, "cp_algorithm": algo, **par},
        "training": {"global_batch": 8, "seq_len": seq, "recompute": "full"},
    })


def _cp(cfg: Any) -> tuple[Any, Any, Any]:
    x = engine.step_inputs(cfg)
    p = plan(x)
    return x, p, cp_comm(x, p, p.act_bytes, engine.communicator(cfg))


def _kv_bytes(cfg: Any) -> float:
    """K and V of one rank's tokens: 2 x kv heads x head size x seq/cp, bf16."""
    m = cfg.model
    return 2 * m.n_kv_heads * m.head_size * cfg.seq_len / cfg.parallel.sp * 2


@pytest.mark.parametrize("sp", [2, 4, 8])
def test_ring_attention_exposes_each_step_by_what_it_outlasts(sp: int) -> None:
    """p2p: cp-1 neighbour sends, each beside one step's attention (1/cp of it), plus a merge per step; the
    backward sends K/V and dK/dV (twice the bytes)."""
    cfg = _cfg(sp)
    x, _, cp = _cp(cfg)
    kv = _kv_bytes(cfg)
    send = HOP + kv / BW  # one hop to the ring neighbour
    assert cp.parts[0][0].total_s == pytest.approx(send, rel=1e-12)
    assert cp.parts[1][0].total_s == pytest.approx(HOP + 2 * kv / BW, rel=1e-12)
    q_elems = cfg.seq_len / sp * cfg.model.q_dim
    merge = q_elems * (2 + 2 * CP_ACC_BYTES) / x.mem_bw + x.kernel_overhead_s
    fwd = (sp - 1) * (overlap_cost_s(send, x.attn_fwd / sp, x.share) + merge)
    assert cp.fwd == pytest.approx(fwd, rel=1e-12)
    assert cp.raw == pytest.approx((sp - 1) * (send + HOP + 2 * kv / BW), rel=1e-12)


@pytest.mark.parametrize("sp", [2, 4, 8])
def test_allgather_moves_every_other_ranks_keys_and_values(sp: int) -> None:
    """allgather: a ring all-gather of the K/V shards ((p-1) hops of one shard) and a reduce-scatter of their
    gradients ((p-1) hops of 1/p of the full gradient), each beside the local block."""
    cfg = _cfg(sp, "allgather")
    x, _, cp = _cp(cfg)
    kv = _kv_bytes(cfg)
    ag = (sp - 1) * (HOP + kv / BW)
    assert cp.parts[0][0].total_s == pytest.approx(ag, rel=1e-12)
    assert cp.parts[1][0].total_s == pytest.approx(ag, rel=1e-12)  # RS of sp shards: the same volume
    assert cp.fwd == pytest.approx(overlap_cost_s(ag, x.attn_fwd / sp, x.share), rel=1e-12)


@pytest.mark.parametrize("sp", [2, 4, 8])
def test_ulysses_all_to_all_volume(sp: int) -> None:
    """a2a: Q, K, V (and then the output) of the local tokens go from a sequence split to a head split; on a
    ring algorithm the relay moves (p-1)/2 of each rank's buffer per link (Jacobs et al. 2023: 4Nh/P per link with
    Q, K, V and O of width h)."""
    cfg = _cfg(sp, "a2a")
    _, _, cp = _cp(cfg)
    m = cfg.model
    tokens_b = cfg.seq_len / sp * 2
    kv_w = max(m.n_kv_heads * m.head_size, sp * m.head_size)
    qkv = tokens_b * (m.q_dim + 2 * kv_w)
    assert cp.parts[0][0].total_s == pytest.approx((sp - 1) * HOP + qkv * (sp - 1) / 2 / BW, rel=1e-12)
    out = tokens_b * m.q_dim
    assert cp.parts[1][0].total_s == pytest.approx((sp - 1) * HOP + out * (sp - 1) / 2 / BW, rel=1e-12)
    assert cp.fwd == cp.bwd == pytest.approx(cp.parts[0][0].total_s + cp.parts[1][0].total_s, rel=1e-12)


@pytest.mark.parametrize("algo", CP_ALGORITHMS)
def test_cp_one_is_no_context_parallelism(algo: str) -> None:
    """With sp = 1 every algorithm is the same step as no context parallelism at all."""
    base = cosmic.simulate(_cfg(1, "p2p", dp=4))
    r = cosmic.simulate(_cfg(1, algo, dp=4))
    assert r.step_time_s == base.step_time_s and r.breakdown["comm_sp_s"] == 0.0


def test_ring_hides_more_than_allgather_where_compute_is_long() -> None:
    """At long sequences each ring step's attention outlasts its send: only the shared compute is lost; the
    breakdown names the exchange as comm_sp and adds up."""
    for algo in CP_ALGORITHMS:
        r = cosmic.simulate(_cfg(4, algo, seq=131072))
        assert r.breakdown["comm_sp_s"] > 0
        assert sum(r.breakdown.values()) == pytest.approx(r.step_time_s, rel=1e-9)
        assert sum(r.comm_by_network_dim_s) > 0


def test_ulysses_needs_heads_divisible_by_tp_times_sp() -> None:
    with pytest.raises(CosmicError, match=r"parallel\.cp_algorithm"):
        cosmic.simulate(_cfg(64, "a2a", seq=65536))  # llama3-8b has 32 heads


def test_bad_algorithm_names_the_choices() -> None:
    with pytest.raises(Exception, match="p2p"):
        _cfg(4, "ring")


def test_batch_path_equals_scalar_path() -> None:
    cfgs = [_cfg(sp, algo, tp=tp, seq=seq) for sp in (1, 2, 4) for algo in CP_ALGORITHMS for tp in (1, 2)
            for seq in (8192, 65536)]
    batch = simulate_columns(StepColumns.from_configs(cfgs))
    assert batch.ok.all()
    for i, c in enumerate(cfgs):
        assert batch.result(i) == cosmic.simulate(c), i
    times = np.array([batch.result(i).step_time_s for i in range(len(cfgs))])
    assert len(set(times.tolist())) > len(cfgs) // 3


PSA = """
name: cp-algorithms
base:
  model: llama3-8b
  accelerator: h100-sxm
  network:
    dims:
      - {topology: Switch, npus: 8, fabric: nvlink4}
      - {topology: Switch, npus: 4, fabric: ib-ndr}
  parallel: {tp: 2, sp: 8, dp: 2}
  training: {global_batch: 16, seq_len: 131072, recompute: full}
knobs:
  workload:
    cp_algorithm: {values: [p2p, allgather, a2a]}
objectives: [step_time]
"""


def test_psa_searches_the_cp_algorithm(tmp_path: Any) -> None:
    """The PSA knob decodes to the same step on both paths, and the algorithm changes the step."""
    from cosmic.psa import load_psa

    path = tmp_path / "cp.yaml"
    path.write_text(PSA)
    space = load_psa(str(path))
    pts = space.sample(np.random.default_rng(0), 12)
    cols, decoded = space.decode_columns(pts)
    batch = simulate_columns(cols)
    assert decoded.all() and batch.ok.all()
    results = [cosmic.simulate(space.decode(p)) for p in pts]
    assert all(batch.result(i) == r for i, r in enumerate(results))
    assert {space.decode(p).parallel.cp_algorithm for p in pts} == set(CP_ALGORITHMS)
    assert len({r.step_time_s for r in results}) == 3
