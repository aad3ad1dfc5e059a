"""Pipeline stages as frameworks build them: the first and last stage sizes (Megatron
--decoder-first/last-pipeline-num-layers), uneven interleaved chunks, and the slowest stage setting the step."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import cosmic
from cosmic.errors import CosmicError
from cosmic.sim.batch import simulate_columns
from cosmic.sim.columns import StepColumns
from cosmic.workload.pipeline import stage_layers
from tests.sim.helpers import dgx_config


def _cfg(**training: Any) -> Any:
    # GPT-3 175B (96 layers) on PP 8: 12 layers per stage when balanced
    return dgx_config(tp=8, pp=8, dp=2, global_batch=64, **training)


def test_stated_first_and_last_stages_that_equal_the_balanced_split_are_the_same_step() -> None:
    even = cosmic.simulate(_cfg())
    stated = cosmic.simulate(_cfg(first_stage_layers=12, last_stage_layers=12))
    only_first = cosmic.simulate(_cfg(first_stage_layers=12))
    assert stated.step_time_s == even.step_time_s == only_first.step_time_s
    assert stated.memory == even.memory


@pytest.mark.parametrize("first", [14, 16, 20])
def test_the_slowest_stage_sets_the_step(first: int) -> None:
    """A heavier first stage runs every micro-batch: the step grows with it and the first stage is critical."""
    even = cosmic.simulate(_cfg())
    heavy = cosmic.simulate(_cfg(first_stage_layers=first))
    assert heavy.step_time_s > even.step_time_s
    assert heavy.critical_stage == 0
    # the other stages are lighter: what they hold adds up to the model
    layers = stage_layers(96, 8, first, 0)
    assert sum(layers) == 96 and layers[0] == first and max(layers[1:]) < first


def test_lighter_end_stages_relieve_the_embedding_and_head() -> None:
    """Llama 3 405B: 126 layers on PP 16 put one layer fewer on the first and last stages, which hold the
    embedding and the head (the balanced split does so already); stating it is the same split."""
    assert stage_layers(126, 16) == [7] + [8] * 14 + [7] == stage_layers(126, 16, 7, 7)


def test_interleaving_accepts_uneven_chunks_and_divides_the_bubble() -> None:
    """Layers not divisible by pp*v: each stage still holds at least v layers (one per chunk); the interleaved
    bubble is smaller than 1F1B's."""
    base = dict(model="llama3-405b", accelerator="h100-sxm", tp=8, pp=16, dp=1, global_batch=64)
    one = cosmic.simulate(dgx_config(**base, schedule="1f1b"))
    inter = cosmic.simulate(dgx_config(**base, schedule="interleaved", virtual_stages=7))
    assert inter.breakdown["bubble_s"] < one.breakdown["bubble_s"]
    with pytest.raises(CosmicError, match="at least virtual_stages"):
        cosmic.simulate(dgx_config(**base, schedule="interleaved", virtual_stages=8))  # 7-layer end stages


@pytest.mark.parametrize(("training", "key"), [
    ({"first_stage_layers": 60, "last_stage_layers": 40}, "training.first_stage_layers"),
    ({"last_stage_layers": 90}, "training.last_stage_layers"),
])
def test_stage_sizes_that_do_not_split_the_model_say_why(training: dict[str, Any], key: str) -> None:
    with pytest.raises(CosmicError, match=key):
        cosmic.simulate(_cfg(**training))


def test_stage_sizes_need_a_pipeline() -> None:
    with pytest.raises(CosmicError, match="need pp > 1"):
        cosmic.simulate(dgx_config(model="gpt3-13b", tp=8, pp=1, dp=2, global_batch=64, first_stage_layers=10))


def test_batch_path_equals_scalar_path() -> None:
    cfgs = [_cfg(first_stage_layers=f, last_stage_layers=ll, schedule=s, virtual_stages=v)
            for f in (None, 6, 12, 15) for ll in (None, 9, 12) for s, v in (("1f1b", 1), ("interleaved", 2))]
    cfgs += [dgx_config(model="llama3-405b", accelerator="h100-sxm", tp=8, pp=16, dp=1, global_batch=64,
                        schedule="interleaved", virtual_stages=v) for v in (3, 7)]
    batch = simulate_columns(StepColumns.from_configs(cfgs))
    assert batch.ok.all()
    for i, c in enumerate(cfgs):
        assert batch.result(i) == cosmic.simulate(c), i
    # a PSA point whose stage sizes do not split the model is not priced (the checks of check_config on columns)
    import dataclasses

    two = StepColumns.from_configs([_cfg(first_stage_layers=12), _cfg(first_stage_layers=10)])
    bad_tr = two.trainings[1].model_copy(update={"first_stage_layers": 60, "last_stage_layers": 40})
    ok = simulate_columns(dataclasses.replace(two, trainings=(two.trainings[0], bad_tr), configs=None,
                                              rebuild=lambda i: None)).ok
    assert ok.tolist() == [True, False]
    # a batch where no point is priced returns NaN figures instead of failing
    none = simulate_columns(dataclasses.replace(two, trainings=(bad_tr, bad_tr), configs=None,
                                                rebuild=lambda i: None))
    assert none.ok.tolist() == [False, False] and np.isnan(none.figures["step_time_s"]).all()


def test_zero_bubble_h1_shrinks_the_fill_and_drain_by_the_deferred_weight_gradients() -> None:
    """ZB-H1 (Qi et al. 2023, sec. 3.1): per stage the bubble goes from (p-1)(F+B+W) to (p-1)(F+B-W), with the
    memory of 1F1B: here every stage holds 12 layers, so the bubble shrinks by 2 x 7 stages x 12 layers x W."""
    from cosmic.sim import engine

    one = cosmic.simulate(_cfg(schedule="1f1b"))
    zb = cosmic.simulate(_cfg(schedule="zb-h1"))
    w = engine.step_inputs(_cfg(schedule="zb-h1")).lc_wgrad
    assert w > 0
    assert one.breakdown["bubble_s"] - zb.breakdown["bubble_s"] == pytest.approx(2 * 7 * 12 * w, rel=1e-9)
    assert zb.memory == one.memory and zb.step_time_s < one.step_time_s
    assert sum(zb.breakdown.values()) == pytest.approx(zb.step_time_s, rel=1e-12)


def test_zero_bubble_without_a_pipeline_is_1f1b() -> None:
    a = cosmic.simulate(dgx_config(model="gpt3-13b", tp=8, pp=1, dp=2, global_batch=64, schedule="zb-h1"))
    b = cosmic.simulate(dgx_config(model="gpt3-13b", tp=8, pp=1, dp=2, global_batch=64, schedule="1f1b"))
    assert a.step_time_s == b.step_time_s


def test_zero_bubble_batch_path_equals_scalar_path() -> None:
    cfgs = [_cfg(schedule=s, first_stage_layers=f) for s in ("1f1b", "zb-h1", "gpipe") for f in (None, 15)]
    batch = simulate_columns(StepColumns.from_configs(cfgs))
    assert batch.ok.all()
    for i, c in enumerate(cfgs):
        assert batch.result(i) == cosmic.simulate(c), i
