"""npus_quotient lists only the searched degrees; unknown keys suggest the nearest allowed key."""

from __future__ import annotations

import copy

import numpy as np
import pytest

import cosmic
from cosmic.errors import ConfigError
from cosmic.psa import load_psa

from .psa_testdata import TINY_PSA, write_psa


def _without_sp_knob(src: list[str]) -> dict:
    data = copy.deepcopy(TINY_PSA)
    del data["knobs"]["workload"]["sp"]  # sp is not searched: it stays at the base's 1
    data["derived"] = {"tp": {"rule": "npus_quotient", "from": src}}
    return data


def test_an_unsearched_degree_need_not_be_listed(tmp_path):
    short = load_psa(write_psa(tmp_path, _without_sp_knob(["dp", "pp"]), "short.yaml"))
    full = load_psa(write_psa(tmp_path, _without_sp_knob(["dp", "sp", "pp"]), "full.yaml"))
    assert short.describe()["space_size_feasible"] == full.describe()["space_size_feasible"]
    pts = short.sample(np.random.default_rng(0), 20)
    for p in pts:
        a, b = short.decode(p), full.decode(p)
        assert a == b
        par = a.parallel
        assert par.sp == 1 and par.dp * par.tp * par.pp * par.sp == a.n_npus  # tp = n_npus / (dp * sp * pp)
        assert cosmic.simulate(a).step_time_s > 0


def test_a_searched_degree_must_be_listed(tmp_path):
    data = copy.deepcopy(TINY_PSA)
    data["derived"] = {"tp": {"rule": "npus_quotient", "from": ["dp", "pp"]}}  # sp is searched
    with pytest.raises(ConfigError, match=r"derived\.tp\.from: npus_quotient for tp must list every searched "
                                          r"degree: add sp"):
        load_psa(write_psa(tmp_path, data))


def test_a_degree_that_is_not_one_is_refused(tmp_path):
    data = _without_sp_knob(["dp", "pp", "tp"])
    with pytest.raises(ConfigError, match=r"takes from: \[dp, pp, sp\] \(not 'tp'\)"):
        load_psa(write_psa(tmp_path, data))


def test_unknown_psa_key_suggests_the_nearest(tmp_path):
    data = copy.deepcopy(TINY_PSA)
    data["constraint"] = data.pop("constraints")
    with pytest.raises(ConfigError, match=r"constraint: unknown key \(did you mean 'constraints'\? allowed: "):
        load_psa(write_psa(tmp_path, data))


@pytest.mark.parametrize(("text", "key", "hint"), [
    ("model: gpt3-175b\nsystem: cosmic-s1\ntraining: {global_batch: 2048, micro_bach: 1}\n", "training.micro_bach",
     "micro_batch"),
    ("model: gpt3-175b\nsystem: cosmic-s1\nparalel: {dp: 1024}\ntraining: {global_batch: 2048}\n", "paralel",
     "parallel"),
    ("model: gpt3-13b\naccelerator: a100-80gb\nnetwork: {dims: [{topology: Switch, npus: 8, link_gpbs: 100}]}\n"
     "training: {global_batch: 8}\n", "network.dims[0].link_gpbs", "link_gbps"),
])
def test_unknown_config_key_suggests_the_nearest(tmp_path, text, key, hint):
    p = tmp_path / "c.yaml"
    p.write_text(text)
    with pytest.raises(ConfigError) as e:
        cosmic.load_config(p)
    assert str(e.value) == f"{p}: {key}: unknown key (did you mean {hint!r}? see `cosmic schema`)"


def test_unknown_key_without_a_near_one_says_so(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("model: gpt3-175b\nsystem: cosmic-s1\ntraining: {global_batch: 2048, zzzzzz: 1}\n")
    with pytest.raises(ConfigError, match=r"training\.zzzzzz: unknown key \(not allowed here; see `cosmic schema`\)"):
        cosmic.load_config(p)
