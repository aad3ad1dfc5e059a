"""`cosmic simulate` on a configuration that does not fit: by how much, and single changes that make it fit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import cosmic
from cosmic.commands._fit import fit_changes
from tests.conftest import EXAMPLES


def _llama_zero1(tmp_path: Path) -> Path:
    """The Llama 3 405B example with ZeRO-1 instead of the published ZeRO-2: 81.0 GB of 80 GB."""
    d = yaml.safe_load((EXAMPLES / "llama3-405b-16384xh100.yaml").read_text())
    d["parallel"]["zero"] = 1
    p = tmp_path / "llama-zero1.yaml"
    p.write_text(yaml.safe_dump(d))
    return p


def run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "100"}
    return subprocess.run([sys.executable, "-m", "cosmic.cli", *args], capture_output=True, text=True, timeout=120,
                          env=env)


def test_each_listed_change_is_one_change_and_its_simulation(tmp_path: Path) -> None:
    cfg = cosmic.load_config(_llama_zero1(tmp_path))
    assert not cosmic.simulate(cfg).fits_memory
    changes = fit_changes(cfg)
    names = [c.change for c in changes]
    assert "zero 1 -> 2" in names and "recompute none -> full" in names and "sequence_parallel" not in " ".join(names)
    fitting = [c for c in changes if c.fits]
    assert fitting and [c.step_time_s for c in fitting] == sorted(c.step_time_s for c in fitting)
    d = cfg.to_yaml_dict()
    d["parallel"]["zero"] = 2
    r2 = cosmic.simulate(cosmic.config_from_dict(d))
    z2 = next(c for c in changes if c.change == "zero 1 -> 2")
    assert z2.fits and z2.memory_bytes == r2.memory.total_bytes and z2.step_time_s == r2.step_time_s
    for c in changes:
        assert c.fits == (c.memory_bytes <= c.capacity_bytes)


def test_simulate_says_by_how_much_and_what_fits(tmp_path: Path) -> None:
    p = run("simulate", str(_llama_zero1(tmp_path)))
    assert p.returncode == 0, p.stderr
    assert "does not fit: 81.0 GB per device is 1.0 GB (1.2%) over the 80 GB capacity" in p.stdout
    assert "single changes that make it fit" in p.stdout and "zero 1 -> 2" in p.stdout
    assert run("simulate", str(_llama_zero1(tmp_path)), "--strict").returncode == 1
    j = run("simulate", str(_llama_zero1(tmp_path)), "--json")
    d = json.loads(j.stdout)
    assert d["fits_memory"] is False
    z2 = next(c for c in d["fit_changes"] if c["change"] == "zero 1 -> 2")
    assert z2["fits_memory"] and z2["memory_per_device_gb"] == pytest.approx(74.67, abs=0.01)


def test_a_fitting_configuration_has_no_hint() -> None:
    p = run("simulate", str(EXAMPLES / "llama3-405b-16384xh100.yaml"), "--strict")
    assert p.returncode == 0, p.stderr
    assert "does not fit" not in p.stdout
    assert "fit_changes" not in json.loads(run("simulate", str(EXAMPLES / "llama3-405b-16384xh100.yaml"),
                                                "--json").stdout)
