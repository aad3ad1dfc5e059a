"""Shared fixtures: paths to the repository, examples and the read-only validation data.

Property and fuzz tests draw the same examples on every run (Hypothesis profile ``repeatable``), so a red CI run is
reproducible and main does not turn red by chance. To look for new failures, run them with fresh random examples:
``HYPOTHESIS_PROFILE=explore .venv/bin/pytest tests/fuzz``, or ``benchmarks/fuzz.py --cases N --seed S``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

settings.register_profile("repeatable", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
SHARED = Path(os.environ.get("COSMIC_SHARED_DIR") or ROOT.parent / "shared")
"""The read-only data beside the repository (``../shared``; ``COSMIC_SHARED_DIR`` points elsewhere)."""
VALIDATION = SHARED / "validation"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say once, at the end of every run, when the published-data validation tests were skipped and why."""
    if not (VALIDATION / "training_runs.csv").exists():
        terminalreporter.write_sep("=", "validation data absent", yellow=True, bold=True)
        terminalreporter.write_line(
            f"{VALIDATION} has no training_runs.csv: the tests that compare against published runs were skipped "
            "(put shared/ beside the repository, or set COSMIC_SHARED_DIR)", yellow=True)


@pytest.fixture
def examples_dir() -> Path:
    return EXAMPLES
