"""At 80 columns tables keep model, mode and knob names whole (nothing is cut with '…'), lines fit, and figures carry
their units."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from cosmic.agents import agent_names
from cosmic.commands._output import AGENTS_HELP
from tests.conftest import EXAMPLES

BIN = Path(sys.executable).parent / "cosmic"


def run80(*args: str, cwd: Path) -> str:
    env = {**os.environ, "COLUMNS": "80", "LINES": "50"}
    p = subprocess.run([str(BIN), *args], capture_output=True, text=True, cwd=cwd, timeout=600, env=env)
    assert p.returncode == 0, p.stderr
    return p.stdout


def assert_fits_80(text: str) -> None:
    """No cut cell and no line over 80 characters, except `label: /absolute/path` lines (kept whole so that they can
    be copied)."""
    assert "…" not in text
    lines = [line for line in text.splitlines() if ": /" not in line or line.startswith(("│", "┃"))]
    assert max(len(line) for line in lines) <= 80


@pytest.mark.parametrize("example", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.stem)
def test_simulate_at_80_columns(tmp_path: Path, example: Path) -> None:
    text = run80("simulate", str(example), cwd=tmp_path)
    assert_fits_80(text)


@pytest.mark.parametrize("kind", ["models", "accelerators", "fabrics", "systems"])
def test_catalog_at_80_columns(tmp_path: Path, kind: str) -> None:
    assert_fits_80(run80("catalog", kind, cwd=tmp_path))


def test_explore_at_80_columns_has_units_and_rounded_knobs(tmp_path: Path) -> None:
    text = run80("explore", "cosmic-s1-gpt3-175b-full", "--agent", "ga", "--budget", "200", "--seed", "0",
                 cwd=tmp_path)
    assert_fits_80(text)
    best = next(line for line in text.splitlines() if "best step_time" in line)
    assert best.rstrip(" │").endswith(" s")  # e.g. "508.457 s"
    assert "(" not in best.split("│")[2]  # not a Python tuple
    for line in text.splitlines():
        if "link_gibps" in line or "npu_bandwidth_gibps" in line:
            numbers = line.split("[")[1].split("]")[0].split(", ")
            assert all(len(n.split(".")[-1]) <= 6 for n in numbers), line  # rounded for display


def test_study_table_at_80_columns_keeps_model_names(tmp_path: Path) -> None:
    text = run80("study", "cosmic-paper", "--agents", "ga", "--models", "gpt3-13b,gpt3-175b", "--systems", "s1",
                 "--budget", "30", "--workers", "1", "--out", "p", cwd=tmp_path)
    assert_fits_80(text)
    rows = [line.split() for line in text.splitlines() if line.strip().startswith("gpt3-")]
    assert {r[0].rstrip("*") for r in rows} == {"gpt3-13b", "gpt3-175b"}
    assert "(1 worker)" in text and "(1 workers)" not in text
    assert f"report: {tmp_path / 'p' / 'report.html'}" in text


def test_help_lists_the_agents() -> None:
    listed = [a.split(" (")[0] for a in AGENTS_HELP.split(", ")]
    assert sorted(listed) == sorted(agent_names())
    env = {**os.environ, "COLUMNS": "200"}
    for args in (["explore", "--help"], ["study", "cosmic-paper", "--help"]):
        h = subprocess.run([str(BIN), *args], capture_output=True, text=True, timeout=120, env=env).stdout
        assert "cosmic.agents" not in h
        assert all(a in h for a in agent_names()) and "bo (needs the bo extra)" in " ".join(h.split())
