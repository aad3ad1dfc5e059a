"""The command line: readable output, JSON keys, one-line errors with exit code 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cosmic.cli", *args], capture_output=True, text=True, cwd=cwd, timeout=120
    )


def test_simulate_json_keys() -> None:
    p = run("simulate", str(EXAMPLES / "cosmic-s1-gpt3-175b.yaml"), "--json")
    assert p.returncode == 0, p.stderr
    d = json.loads(p.stdout)
    for key in ("step_time_s", "tokens_per_s", "mfu", "memory_per_device_gb", "fits_memory", "network_cost_usd",
                "breakdown"):
        assert key in d
    assert sum(d["breakdown"].values()) == pytest.approx(d["step_time_s"], rel=1e-9)


def test_simulate_table() -> None:
    p = run("simulate", str(EXAMPLES / "megatron-gpt3-175b-1024xa100.yaml"))
    assert p.returncode == 0, p.stderr
    assert "step time" in p.stdout and "bubble" in p.stdout


def test_schema_is_json_schema() -> None:
    p = run("schema")
    d = json.loads(p.stdout)
    assert d["type"] == "object" and "model" in d["properties"]


BAD = {
    "unknown key": ("model: gpt3-175b\nsystem: cosmic-s1\ntraining: {global_batch: 2048, turbo: 1}\n",
                    "training.turbo"),
    "degree mismatch": ("system: cosmic-s1\nmodel: gpt3-175b\nparallel: {dp: 8, tp: 4}\n"
                        "training: {global_batch: 2048}\n", "parallel"),
    "zero bandwidth": ("model: gpt3-175b\naccelerator: a100-80gb\nnetwork: {dims: [{topology: Switch, npus: 1, "
                       "link_gbps: 0}]}\ntraining: {global_batch: 8}\n", "network.dims[0].link_gbps"),
    "unknown model": ("system: cosmic-s1\nmodel: gpt5\nparallel: {dp: 1024}\ntraining: {global_batch: 2048}\n",
                      "unknown model 'gpt5'"),
    "unknown accelerator": ("model: gpt3-13b\naccelerator: a1000\nnetwork: {dims: [{topology: Switch, npus: 1, "
                            "link_gbps: 1}]}\ntraining: {global_batch: 8}\n", "a100"),
    "bad topology": ("model: gpt3-13b\naccelerator: a100-80gb\nnetwork: {dims: [{topology: Swich, npus: 1, "
                     "link_gbps: 1}]}\ntraining: {global_batch: 8}\n", "network.dims[0].topology"),
    "layers vs interleaved": ("system: cosmic-s1\nmodel: gpt3-175b\nparallel: {dp: 64, tp: 4, pp: 4}\n"
                              "training: {global_batch: 2048, schedule: interleaved, virtual_stages: 25}\n",
                              "training.virtual_stages"),
    "tp divides heads": ("system: cosmic-s1\nmodel: gpt3-175b\nparallel: {dp: 16, tp: 64}\n"
                         "training: {global_batch: 2048}\n", "parallel.tp"),
    "npus total": ("model: gpt3-13b\naccelerator: a100-80gb\nnetwork: {npus: 16, dims: [{topology: Switch, "
                   "npus: 8, link_gbps: 1}]}\nparallel: {dp: 8}\ntraining: {global_batch: 8}\n", "network.npus"),
    "not a mapping": ("- 1\n- 2\n", "mapping"),
    "yaml syntax": ("model: [gpt3\n", "line"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_config_one_line_error(case: str, tmp_path: Path) -> None:
    text, needle = BAD[case]
    f = tmp_path / "bad.yaml"
    f.write_text(text)
    p = run("simulate", str(f))
    assert p.returncode == 2
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, p.stderr
    assert lines[0].startswith("error: ") and str(f) in lines[0]
    assert needle in lines[0], lines[0]
    assert "Traceback" not in p.stderr


def test_missing_file() -> None:
    p = run("simulate", "no/such/file.yaml")
    assert p.returncode == 2 and "file not found" in p.stderr


def test_an_error_echoing_a_value_with_a_line_break_stays_one_line() -> None:
    """Found by the fuzzer: a rank order holding 'a\\nb' made a two-line error. Every CosmicError prints on one line,
    with the break escaped, and the rank-order message quotes the odd name."""
    import cosmic
    from cosmic.errors import ConfigError

    assert str(ConfigError("bad\nvalue\r", file="f.yaml", key="a.b")) == "f.yaml: a.b: bad\\nvalue\\r"
    cfg = {
        "model": "gpt3-13b",
        "accelerator": "a100-80gb",
        "network": {"dims": [{"topology": "Switch", "npus": 8, "fabric": "nvlink3"}]},
        "parallel": {"tp": 8, "rank_order": ["a\nb", "tp", "sp", "pp"]},
        "training": {"global_batch": 8},
    }
    with pytest.raises(cosmic.CosmicError) as info:
        cosmic.config_from_dict(cfg)
    text = str(info.value)
    assert "\n" not in text
    assert "parallel.rank_order: must be a permutation of tp, sp, dp, pp, got 'a\\nb', tp, sp, pp" in text


def test_commands_never_import_the_cli_module() -> None:
    """The sub-commands take their output helpers from cosmic.commands._output (not cosmic.cli, which imports
    them), at module level or inside a function."""
    import ast

    import cosmic.commands

    for path in Path(cosmic.commands.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [node.module] if isinstance(node, ast.ImportFrom) else \
                [a.name for a in node.names] if isinstance(node, ast.Import) else []
            assert not any(n and (n == "cosmic.cli" or n.startswith("cosmic.cli.")) for n in names), path.name
            if isinstance(node, ast.ImportFrom) and node.module == "cosmic":
                assert "cli" not in {a.name for a in node.names}, path.name
