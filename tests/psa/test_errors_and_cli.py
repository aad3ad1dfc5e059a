"""PSA errors (one line: file, key, problem; exit code 2), the expression language, and `cosmic psa` commands."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from cosmic.cli import app
from cosmic.errors import ConfigError
from cosmic.psa import load_psa
from cosmic.psa.expr import ExprError, compile_expr

from .psa_testdata import TINY_PSA, write_psa

runner = CliRunner()


def _mutated(**changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(TINY_PSA)
    for path, value in changes.items():
        node = data
        keys = path.split("__")
        for k in keys[:-1]:
            node = node[k]
        if value is None:
            node.pop(keys[-1], None)
        else:
            node[keys[-1]] = value
    return data


CASES = [
    pytest.param(
        _mutated(knobs__network__topolgy={"values": ["Ring"]}),
        "knobs.network.topolgy", "unknown knob 'topolgy' (did you mean 'topology'?)", id="unknown-knob"),
    pytest.param(
        _mutated(knobs__workload__dp={"values": []}),
        "knobs.workload.dp.values", "empty domain", id="empty-list"),
    pytest.param(
        _mutated(knobs__workload__dp={"pow2": [3, 3]}),
        "knobs.workload.dp.pow2", "empty domain", id="empty-pow2"),
    pytest.param(
        _mutated(derived={"tp": {"rule": "npus_quotient"}, "all_reduce": {"rule": "copy", "from": "all_gather"},
                          "all_gather": {"rule": "copy", "from": "all_reduce"}}),
        "derived", "derived knobs form a cycle", id="cycle"),
    pytest.param(
        _mutated(constraints={"few_dp": "dp <= 2", "many_dp": "dp >= 8", "ok": "pp >= 1"}),
        "constraints", "constraints 'few_dp' and 'many_dp' conflict", id="unsat-pair"),
    pytest.param(
        _mutated(constraints={"no_ring0": "topology[0] != 'Ring'", "no_fc0": "topology[0] != 'FullyConnected'",
                              "dim0_not_switch": "topology[0] != 'Switch'"}),
        "constraints", "'no_ring0', 'no_fc0' and 'dim0_not_switch' conflict", id="unsat-triple"),
    pytest.param(
        _mutated(knobs__workload__pp={"values": [8]}),
        "constraints", "'pp <= layers'", id="unsat-builtin"),
    pytest.param(
        _mutated(objectives=["step_time", "latency"]),
        "objectives[1]", "unknown objective 'latency'", id="unknown-objective"),
    pytest.param(
        _mutated(constraints={"evil": "__import__('os').system('true')"}),
        "constraints.evil", "not allowed", id="no-eval"),
    pytest.param(
        _mutated(constraints={"typo": "dpp > 1"}),
        "constraints.typo", "unknown name 'dpp'", id="unknown-name-in-constraint"),
    pytest.param(
        _mutated(knobs__workload__dp={"pow2": [1, 16], "mode": "per_dim"}),
        "knobs.workload.dp.mode", "use scalar", id="bad-mode"),
    pytest.param(
        _mutated(derived={"tp": {"rule": "magic"}}),
        "derived.tp.rule", "unknown rule 'magic'", id="unknown-rule"),
    pytest.param(
        _mutated(base__parallel__tp=3),
        "base.parallel", "dp*tp*pp*sp", id="bad-base"),
]


@pytest.mark.parametrize(("data", "key", "problem"), CASES)
def test_errors_name_file_key_and_problem(tmp_path: Path, data: dict[str, Any], key: str, problem: str) -> None:
    f = write_psa(tmp_path, data)
    with pytest.raises(ConfigError) as info:
        load_psa(f)
    msg = str(info.value)
    assert "\n" not in msg
    assert msg.startswith(f"{f}: {key}: "), msg
    assert problem in msg


@pytest.mark.parametrize(("data", "key", "problem"), CASES[:8])
def test_cli_errors_exit_2_with_one_line(tmp_path: Path, data: dict[str, Any], key: str, problem: str) -> None:
    import subprocess
    import sys

    f = write_psa(tmp_path, data)
    proc = subprocess.run([sys.executable, "-m", "cosmic.cli", "psa", "show", str(f)], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"error: {f}: {key}: ") and problem in lines[0]


def test_unknown_preset_suggests() -> None:
    with pytest.raises(ConfigError, match="did you mean 'cosmic-s1-gpt3-175b-full'"):
        load_psa("cosmic-s1-gpt3-175b-ful")


@pytest.mark.parametrize(
    "text",
    ["().__class__", "open('x')", "dp.real", "[x for x in npus]", "lambda: 1", "npus[dp]", "2 ** 1000"],
)
def test_expression_language_rejects_python(text: str) -> None:
    with pytest.raises(ExprError):
        e = compile_expr(text, {"dp", "npus"})
        e.fn({"dp": 1, "npus": (4, 4)})


def test_expression_language_evaluates() -> None:
    e = compile_expr("prod(npus) == 16 and count(topology, Switch) <= 1 and min(npus) in [2, 4] and not dp > 8",
                     {"npus", "topology", "Switch", "dp"})
    v = {"npus": (4, 4), "topology": ("Ring", "Switch"), "Switch": "Switch", "dp": 8}
    assert e.fn(v) is True
    assert e.fn({**v, "dp": 16}) is False
    assert e.fn({**v, "topology": ("Switch", "Switch")}) is False
    assert compile_expr("1 < dp <= 4 if sp == 1 else dp == 1", {"dp", "sp"}).fn({"dp": 1, "sp": 2}) is True


def test_cli_show_json_reports_both_sizes() -> None:
    res = runner.invoke(app, ["psa", "show", "cosmic-s1-gpt3-175b-full", "--json"])
    assert res.exit_code == 0, res.output
    d = json.loads(res.stdout)
    assert d["space_size_total"] == 10 * 10 * 3 * 2 * 4**4 * 4 * 2 * 2 * 3**4 * 3**4 * 10**4
    assert 0 < d["space_size_feasible"] < d["space_size_total"]
    assert d["space_size_method"] == "exact (DP)"
    assert set(d["knobs"]) == {"workload", "collective", "network"}
    assert {r["knob"] for r in d["derived"]} >= {"tp", "link_gibps", "all_gather"}
    assert "dim0_not_switch" in {c["name"] for c in d["constraints"]}
    assert d["objectives"] == [{"name": "step_time", "direction": "minimize"}]


def test_cli_show_text_and_list() -> None:
    res = runner.invoke(app, ["psa", "show", "cosmic-s2-vit-large-network"])
    assert res.exit_code == 0, res.output
    assert "space_size_feasible" in res.stdout and "exact (DP)" in res.stdout
    res = runner.invoke(app, ["psa", "list"])
    assert res.exit_code == 0
    assert len([n for n in res.stdout.split() if n.startswith("cosmic-")]) == 48


def test_cli_sample_configs_are_accepted_by_simulate(tmp_path: Path) -> None:
    out = tmp_path / "samples"
    res = runner.invoke(app, ["psa", "sample", "cosmic-s3-gpt3-13b-full", "-n", "3", "--seed", "7", "--out", str(out)])
    assert res.exit_code == 0, res.output
    files = sorted(out.glob("*.yaml"))
    assert len(files) == 3
    for f in files:
        sim = runner.invoke(app, ["simulate", str(f), "--json"])
        assert sim.exit_code == 0, sim.output
        assert json.loads(sim.stdout)["step_time_s"] > 0
    # YAML documents on stdout, and JSON with the encoded points
    res = runner.invoke(app, ["psa", "sample", "cosmic-s3-gpt3-13b-full", "-n", "3", "--seed", "7"])
    docs = list(yaml.safe_load_all(res.stdout))
    assert docs == [yaml.safe_load(f.read_text()) for f in files]  # same seed, same configurations
    res = runner.invoke(app, ["psa", "sample", "cosmic-s3-gpt3-13b-full", "-n", "2", "--seed", "7", "--json"])
    rows = json.loads(res.stdout)
    space = load_psa("cosmic-s3-gpt3-13b-full")
    assert [space.knobs(r["point"]) for r in rows] == [r["knobs"] for r in rows]


def test_cli_sample_from_file_with_base_by_reference(tmp_path: Path) -> None:
    base = tmp_path / "base.yaml"
    base.write_text(yaml.safe_dump(TINY_PSA["base"]), encoding="utf-8")
    data = copy.deepcopy(TINY_PSA)
    data["base"] = "base.yaml"
    f = write_psa(tmp_path, data)
    res = runner.invoke(app, ["psa", "sample", str(f), "-n", "4", "--json"])
    assert res.exit_code == 0, res.output
    for row in json.loads(res.stdout):
        assert row["knobs"]["topology"][0] != "Switch"
        assert row["knobs"]["dp"] * row["knobs"]["tp"] * row["knobs"]["pp"] * row["knobs"]["sp"] == 16
