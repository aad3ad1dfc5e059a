"""Properties of the whole simulator (hypothesis over COSMIC's S1/S2 systems and DGX clusters)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import cosmic
from cosmic.errors import InfeasibleError
from cosmic.sim.result import BREAKDOWN_KEYS

POW2 = [1, 2, 4, 8, 16, 32, 64]


@st.composite
def configs(draw: Any) -> dict[str, Any]:
    system = draw(st.sampled_from(["cosmic-s1", "cosmic-s2", "cosmic-s3"]))
    n = {"cosmic-s1": 1024, "cosmic-s2": 2048, "cosmic-s3": 512}[system]
    model = draw(st.sampled_from(["gpt3-13b", "gpt3-175b", "vit-large", "llama-7b"]))
    heads = {"gpt3-13b": 40, "gpt3-175b": 96, "vit-large": 16, "llama-7b": 32}[model]
    layers = {"gpt3-13b": 40, "gpt3-175b": 96, "vit-large": 24, "llama-7b": 32}[model]
    tp = draw(st.sampled_from([t for t in POW2 if heads % t == 0 and t <= 16]))
    pp = draw(st.sampled_from([p for p in (1, 2, 4, 8) if layers % p == 0]))
    sp = draw(st.sampled_from([1, 2, 4]))
    assume(n % (tp * pp * sp) == 0)
    dp = n // (tp * pp * sp)
    mb = draw(st.sampled_from([1, 2]))
    gb = dp * mb * draw(st.sampled_from([1, 2, 8]))
    schedule = draw(st.sampled_from(["gpipe", "1f1b", "interleaved"]))
    v = 2 if (schedule == "interleaved" and layers % (2 * pp) == 0 and (gb // (dp * mb)) % pp == 0) else 1
    if schedule == "interleaved" and v == 1:
        schedule = "1f1b"
    return {
        "system": system,
        "model": model,
        "parallel": {
            "dp": dp, "tp": tp, "pp": pp, "sp": sp,
            "zero": draw(st.sampled_from([0, 1, 2, 3])),
            "sequence_parallel": draw(st.booleans()),
            "rank_order": draw(st.sampled_from(["tp,sp,dp,pp", "dp,tp,sp,pp"])),
        },
        "training": {
            "global_batch": gb, "micro_batch": mb, "schedule": schedule, "virtual_stages": v,
            "recompute": draw(st.sampled_from(["none", "selective", "full"])),
            "dp_overlap": draw(st.booleans()),
        },
        "collective": {
            "chunks": draw(st.sampled_from([1, 2, 4, 8, 16])),
            "scheduling": draw(st.sampled_from(["LIFO", "FIFO"])),
            "multidim": draw(st.sampled_from(["baseline", "local_bw_aware"])),
            "all_reduce": draw(st.sampled_from(["ring", "direct", "halving_doubling", "double_binary_tree"])),
        },
    }


def _sim(d: dict[str, Any]) -> cosmic.Result:
    try:
        return cosmic.simulate(cosmic.config_from_dict(d))
    except (InfeasibleError, cosmic.ConfigError):
        assume(False)
        raise


def _scale_network(d: dict[str, Any], *, bw: float = 1.0, lat: float = 1.0) -> dict[str, Any]:
    sysd = cosmic.catalog.get_system(d["system"])
    dims = []
    for dim in sysd["network"]["dims"]:
        dim = dict(dim)
        dim["link_gibps"] = dim["link_gibps"] * bw
        dim["latency_ns"] = dim["latency_ns"] * lat
        dims.append(dim)
    return {**d, "network": {"dims": dims}}


SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])


@SETTINGS
@given(configs())
def test_breakdown_adds_up_to_step_time(d: dict[str, Any]) -> None:
    r = _sim(d)
    assert set(r.breakdown) == set(BREAKDOWN_KEYS)
    assert all(v >= 0 for v in r.breakdown.values())
    assert sum(r.breakdown.values()) == pytest.approx(r.step_time_s, rel=1e-9)
    assert sum(r.comm_by_network_dim_s) <= (
        r.breakdown["comm_tp_s"] + r.breakdown["comm_sp_s"] + r.breakdown["comm_pp_s"] + r.breakdown["comm_dp_s"]
    ) * (1 + 1e-9) + 1e-12
    assert 0 < r.mfu <= r.hfu < 1.0


@SETTINGS
@given(configs(), st.floats(1.0, 8.0))
def test_more_bandwidth_or_less_latency_is_never_slower(d: dict[str, Any], k: float) -> None:
    base = _sim(_scale_network(d))
    assert _sim(_scale_network(d, bw=k)).step_time_s <= base.step_time_s * (1 + 1e-9)
    assert _sim(_scale_network(d, lat=1 / k)).step_time_s <= base.step_time_s * (1 + 1e-9)


@SETTINGS
@given(configs(), st.floats(1.0, 8.0))
def test_more_flops_is_never_slower(d: dict[str, Any], k: float) -> None:
    try:
        base_cfg = cosmic.config_from_dict(d)
    except cosmic.ConfigError:
        assume(False)
        return
    acc = base_cfg.accelerator
    faster = acc.model_copy(update={"peak_tflops": {p: v * k for p, v in acc.peak_tflops.items()}})
    try:
        t0 = cosmic.simulate(base_cfg).step_time_s
        t1 = cosmic.simulate(base_cfg.model_copy(update={"accelerator": faster})).step_time_s
    except InfeasibleError:
        assume(False)
        return
    assert t1 <= t0 * (1 + 1e-9)


@SETTINGS
@given(configs())
def test_zero3_never_uses_more_memory_than_zero0(d: dict[str, Any]) -> None:
    d0 = {**d, "parallel": {**d["parallel"], "zero": 0}}
    d3 = {**d, "parallel": {**d["parallel"], "zero": 3}}
    assert _sim(d3).memory.total_bytes <= _sim(d0).memory.total_bytes


@SETTINGS
@given(configs())
def test_doubling_global_batch_doubles_compute(d: dict[str, Any]) -> None:
    r1 = _sim(d)
    d2 = {**d, "training": {**d["training"], "global_batch": 2 * d["training"]["global_batch"]}}
    r2 = _sim(d2)
    c1 = r1.breakdown["forward_s"] + r1.breakdown["backward_s"] + r1.breakdown["recompute_s"]
    c2 = r2.breakdown["forward_s"] + r2.breakdown["backward_s"] + r2.breakdown["recompute_s"]
    assert c2 == pytest.approx(2 * c1, rel=1e-9)
    assert r2.step_time_s <= 2 * r1.step_time_s * (1 + 1e-9)


def _with_sms(cfg: cosmic.SystemConfig, collective_sms: int) -> cosmic.SystemConfig:
    acc = cfg.accelerator.model_copy(update={"sm_count": 108, "collective_sms": collective_sms})
    return cfg.model_copy(update={"accelerator": acc})


@SETTINGS
@given(configs(), st.integers(1, 54), st.floats(1.0, 8.0))
def test_collectives_that_take_compute_units_never_speed_a_step_up(d: dict[str, Any], sms: int, k: float) -> None:
    try:
        cfg = cosmic.config_from_dict(d)
        free = cosmic.simulate(_with_sms(cfg, 0))
        busy = cosmic.simulate(_with_sms(cfg, sms))
        wider = cosmic.simulate(_with_sms(cosmic.config_from_dict(_scale_network(d, bw=k)), sms))
        narrow = cosmic.simulate(_with_sms(cosmic.config_from_dict(_scale_network(d)), sms))
    except (InfeasibleError, cosmic.ConfigError):
        assume(False)
        return
    assert busy.step_time_s >= free.step_time_s * (1 - 1e-9)
    # each overlap costs at most share x the compute it overlaps; a stretch of compute can be overlapped by the
    # SP exchange and the ZeRO-3 gathers at once, so twice the share bounds the whole step
    assert busy.step_time_s <= free.step_time_s * (1 + 2 * sms / 108) + 1e-12
    # more bandwidth is still never slower when overlapped collectives slow compute down
    assert wider.step_time_s <= narrow.step_time_s * (1 + 1e-9)
